"""The welcome screen: first launch, create / open through the real buttons and Qt's
file dialog, the recent list (open by double-click or Enter, missing entries marked
and removable)."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from ui.welcome import MISSING_ROLE


def _answer_folder_dialog(folder: Path, seen: list[str]) -> None:
    """Pick ``folder`` in the next (non-native, see conftest) folder dialog once it shows,
    as a user does: go into the folder, press Choose (no name typed: the dialog then
    returns the folder it shows)."""
    def attempt() -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, QFileDialog):
            seen.append(dialog.windowTitle())
            dialog.setDirectory(str(folder))
            assert dialog.selectedFiles() == [str(folder)], dialog.selectedFiles()
            dialog.accept()
        elif isinstance(dialog, QMessageBox):  # an unexpected error: record it, never hang
            seen.append(dialog.text())
            dialog.close()
        else:
            QTimer.singleShot(20, attempt)
    QTimer.singleShot(20, attempt)


def _answer_message_box(seen: list[str]) -> None:
    def attempt() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            box.button(QMessageBox.StandardButton.Ok).click()
        else:
            QTimer.singleShot(20, attempt)
    QTimer.singleShot(20, attempt)


def test_first_launch_shows_the_welcome_screen(make_window):
    window = make_window()
    assert window.is_welcome_shown() and window.welcome.isVisible()
    assert window.workspace_path is None
    assert not window.import_action.isEnabled()
    assert window.welcome.empty_label.isVisible() and not window.welcome.recent_list.isVisible()
    assert window.status_bar_view.workspace_label.text() == "No workspace open"


def test_new_workspace_button_and_folder_dialog_create_it(qtbot, make_window, tmp_path):
    window = make_window()
    target = tmp_path / "fresh-project"
    target.mkdir()  # what the dialog's "Create New Folder" button leaves
    seen: list[str] = []
    _answer_folder_dialog(target, seen)
    qtbot.mouseClick(window.welcome.new_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.workspace_path is not None)
    assert seen and seen[0].startswith("New Workspace")
    assert window.workspace_path == target
    assert (target / "workspace.sqlite").is_file() and (target / "runs").is_dir()
    assert not window.is_welcome_shown() and window.current_title() == "Rank"
    assert window.settings.recent_workspaces() == [target]
    assert window.settings.last_workspace() == target


def test_new_workspace_refuses_a_folder_with_other_files(qtbot, make_window, tmp_path):
    window = make_window()
    busy = tmp_path / "documents"
    busy.mkdir()
    (busy / "thesis.txt").write_text("not a workspace")
    seen: list[str] = []
    _answer_message_box(seen)
    assert not window.create_workspace(busy)
    assert seen and "is not empty" in seen[0]
    assert not (busy / "workspace.sqlite").exists() and window.is_welcome_shown()


def test_open_workspace_button_opens_an_existing_one(qtbot, make_window, workspace):
    window = make_window()
    seen: list[str] = []
    _answer_folder_dialog(workspace, seen)
    qtbot.mouseClick(window.welcome.open_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.workspace_path == workspace)
    assert seen == ["Open Workspace"]
    assert window.windowTitle().endswith("my-workspace")


def test_recent_list_opens_by_double_click_and_by_enter(qtbot, make_window, workspace, tmp_path):
    from workbench.store.workspace import Workspace

    other = tmp_path / "other"
    Workspace.init(other).close()
    window = make_window()
    window.settings.add_recent_workspace(other)
    window.settings.add_recent_workspace(workspace)
    window.close_workspace()  # nothing open: a no-op
    window.refresh_recent()
    recent = window.welcome.recent_list
    assert recent.count() == 2 and recent.item(0).text().startswith("my-workspace\n")

    rect = recent.visualItemRect(recent.item(1))
    # A real double-click is press, release, double-click press, release.
    qtbot.mouseClick(recent.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(recent.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: window.workspace_path == other)

    window.close_workspace()
    assert recent.item(0).data(Qt.ItemDataRole.UserRole) == str(other)  # most recent first now
    recent.setCurrentRow(1)
    recent.setFocus()
    qtbot.keyClick(recent, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.workspace_path == workspace)


def test_missing_recent_workspace_is_marked_and_removable(qtbot, make_window, workspace, tmp_path):
    from workbench.store.workspace import Workspace

    gone = tmp_path / "moved-away"
    Workspace.init(gone).close()
    window = make_window()
    for path in (gone, workspace):
        window.settings.add_recent_workspace(path)
    shutil.rmtree(gone)
    window.refresh_recent()
    recent = window.welcome.recent_list
    item = window.welcome.item_for(gone)
    assert item.data(MISSING_ROLE) is True and "missing" in item.text()
    assert window.welcome.item_for(workspace).data(MISSING_ROLE) is False
    missing_menu = [a for a in window.recent_menu.actions() if a.data() == str(gone)][0]
    assert not missing_menu.isEnabled() and "(missing)" in missing_menu.text()

    recent.setCurrentItem(item)
    assert not window.welcome.open_recent_button.isEnabled()
    qtbot.mouseClick(window.welcome.remove_button, Qt.MouseButton.LeftButton)
    assert window.settings.recent_workspaces() == [workspace]
    assert window.welcome.item_for(gone) is None

    recent.setCurrentRow(0)
    window.activateWindow()  # shortcuts reach the focused widget of the active window
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    recent.setFocus()
    qtbot.waitUntil(recent.hasFocus)
    qtbot.keyClick(recent, Qt.Key.Key_Delete)
    assert window.settings.recent_workspaces() == []
    assert window.welcome.empty_label.isVisible()
    assert workspace.exists()  # removing an entry never touches the folder
