"""The main window: lazy pages from the registry, the page contract (set_workspace,
shutdown, undo stacks), menus and their shortcuts, and errors shown, not raised."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QColor, QPalette, QUndoCommand
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox

from ui.common.resources import resource_path
from ui.page_panels import PageErrorPanel, PlaceholderPanel
from ui.pages import DEFAULT_PAGES, PageSpec
from ui.shortcuts_dialog import ShortcutsDialog


def _answer_message_box(seen: list[str], button=QMessageBox.StandardButton.Ok) -> None:
    """Close the next modal message box (recording its text) once it shows."""
    def attempt() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            box.button(button).click()
        else:
            QTimer.singleShot(20, attempt)
    QTimer.singleShot(20, attempt)


def _press(qtbot, window, key, modifiers=Qt.KeyboardModifier.ControlModifier) -> None:
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.keyClick(window, key, modifiers)


class _Push(QUndoCommand):
    def __init__(self, log: list, value: str):
        super().__init__(f"push {value}")
        self.log, self.value = log, value

    def redo(self):
        self.log.append(self.value)

    def undo(self):
        self.log.remove(self.value)


def test_default_registry_names_the_real_pages() -> None:
    assert [(s.title, s.target) for s in DEFAULT_PAGES] == [
        ("Rank", "ui.ranking.panel:RankingPanel"),
        ("Datasets", "ui.datasets.manager:DatasetManagerPanel"),
        ("Train", "ui.training.panel:TrainingPanel"),
        ("Runs", "ui.training.runs:RunsPanel"),
    ]


def test_navigation_builds_pages_lazily_and_binds_them_to_the_workspace(qtbot, make_window, workspace):
    window = make_window(workspace)
    nav = window.navigation
    assert [nav.item(i).text() for i in range(nav.count())] == ["Rank", "Datasets", "Train", "Runs"]
    assert window.current_title() == "Rank"
    assert window.page("Rank") is not None
    assert all(window.page(t) is None for t in ("Datasets", "Train", "Runs"))  # not visited yet

    for row, title in ((1, "Datasets"), (3, "Runs"), (0, "Rank")):
        center = nav.visualItemRect(nav.item(row)).center()
        qtbot.mouseClick(nav.viewport(), Qt.MouseButton.LeftButton, pos=center)
        qtbot.waitUntil(lambda: window.pages.currentIndex() == row)
        page = window.page(title)
        assert page is not None and page.isVisible()
        assert page.workspaces == [workspace]
    assert window.page("Train") is None
    assert window.show_page("Train") is window.page("Train")


def test_view_shortcuts_switch_pages(qtbot, make_window, workspace):
    window = make_window(workspace)
    _press(qtbot, window, Qt.Key.Key_3)
    qtbot.waitUntil(lambda: window.current_title() == "Train")
    _press(qtbot, window, Qt.Key.Key_2)
    qtbot.waitUntil(lambda: window.current_title() == "Datasets")
    assert window.page_actions[1].isChecked()


def test_a_page_shortcut_gives_the_page_the_keyboard(qtbot, make_window, workspace):
    """After Ctrl+1 the Rank page's own keys must work: focus left in the navigation list
    swallowed them (and a letter there jumped to another page)."""
    window = make_window(workspace)
    window._navigation.setFocus()
    qtbot.waitUntil(lambda: window._navigation.hasFocus())
    _press(qtbot, window, Qt.Key.Key_1)
    qtbot.waitUntil(lambda: window.current_title() == "Rank")
    rank = window.show_page("Rank")  # the built page (already current)
    assert rank.isAncestorOf(QApplication.focusWidget()) or rank.hasFocus()


def test_edit_undo_follows_the_current_page_stack(qtbot, make_window, workspace):
    window = make_window(workspace)
    rank = window.show_page("Rank")
    log: list[str] = []
    rank.undo_stack.push(_Push(log, "a"))
    assert window.undo_action.isEnabled() and log == ["a"]

    window.show_page("Datasets")  # its stack is empty: nothing to undo there
    assert window.undo_group.activeStack() is window.page("Datasets").undo_stack
    assert not window.undo_action.isEnabled()

    window.show_page("Rank")
    _press(qtbot, window, Qt.Key.Key_Z)
    qtbot.waitUntil(lambda: log == [])
    assert window.redo_action.isEnabled()
    _press(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: log == ["a"])


def test_pages_follow_workspace_changes_and_shut_down_on_close(qtbot, make_window, workspace, tmp_path):
    from workbench.store.workspace import Workspace

    other = tmp_path / "other"
    Workspace.init(other).close()
    window = make_window(workspace)
    rank, runs = window.page("Rank"), window.show_page("Runs")
    assert window.open_workspace(other)
    assert rank.workspaces[-1] == runs.workspaces[-1] == other
    assert window.current_title() == "Runs"  # the page stays across workspaces
    window.close_workspace()
    assert rank.workspaces[-1] is None and runs.workspaces[-1] is None
    window.close()
    assert rank.shut_down == runs.shut_down == 1


def test_close_workspace_shortcut_shows_the_welcome_screen(qtbot, make_window, workspace):
    window = make_window(workspace)
    assert not window.is_welcome_shown() and window.close_action.isEnabled()
    _press(qtbot, window, Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(window.is_welcome_shown)
    assert window.workspace_path is None
    assert window.windowTitle() == "RLHF Workbench"
    assert not window.import_action.isEnabled() and not window.close_action.isEnabled()
    assert window.settings.last_workspace() is None
    assert window.welcome.recent_paths() == [workspace]


def test_open_recent_menu_opens_and_clears(qtbot, make_window, workspace, tmp_path):
    from workbench.store.workspace import Workspace

    second = tmp_path / "second"
    Workspace.init(second).close()
    window = make_window(second)
    window.open_workspace(workspace)
    window.close_workspace()
    entries = [a for a in window.recent_menu.actions() if a.data()]
    assert [Path(a.data()) for a in entries] == [workspace, second]

    entries[1].trigger()
    assert window.workspace_path == second and not window.is_welcome_shown()
    assert "second" in window.windowTitle()

    clear = [a for a in window.recent_menu.actions() if a.text() == "&Clear Menu"][0]
    clear.trigger()
    assert window.settings.recent_workspaces() == []
    assert [a for a in window.recent_menu.actions() if a.data()] == []


def test_import_and_export_open_the_datasets_page(qtbot, make_window, workspace):
    window = make_window(workspace)
    _press(qtbot, window, Qt.Key.Key_I)
    qtbot.waitUntil(lambda: window.current_title() == "Datasets")
    datasets = window.page("Datasets")
    assert datasets.imports == 1
    window.show_page("Rank")
    window.export_action.trigger()
    assert window.current_title() == "Datasets" and datasets.exports == 1


def test_keyboard_shortcuts_dialog_lists_menus_and_pages(qtbot, make_window, workspace):
    window = make_window(workspace)
    _press(qtbot, window, Qt.Key.Key_Slash)
    qtbot.waitUntil(lambda: isinstance(QApplication.activeModalWidget(), ShortcutsDialog)
                    or any(isinstance(w, ShortcutsDialog) and w.isVisible() for w in window.findChildren(ShortcutsDialog)))
    dialog = [w for w in window.findChildren(ShortcutsDialog) if w.isVisible()][0]
    entries = dialog.entries
    assert ("File", "Ctrl+O", "Open Workspace") in entries
    assert ("Edit", "Ctrl+Z", "Undo") in entries
    assert ("View", "Ctrl+4", "Runs") in entries
    assert ("Help", "Ctrl+/ or F1", "Keyboard Shortcuts") in entries
    # Static shortcuts are listed before a page is built; instance ones once it is.
    assert ("Rank page", "Ctrl+Return", "Submit the ranking") in entries
    assert ("Runs page", "Ctrl+Return", "Submit the ranking") in entries
    assert not any(section == "Datasets page" for section, _, _ in entries)
    assert not any(section == "Train page" for section, _, _ in entries)

    qtbot.keyClicks(dialog.filter_edit, "workspace")
    shown = dialog.visible_entries()
    assert shown and all("workspace" in what.lower() for _, _, what in shown)
    dialog.close()

    window.show_page("Datasets")
    assert ("Datasets page", "Ctrl+F", "Search records") in window.shortcut_entries()


def test_a_missing_or_broken_page_becomes_a_panel_saying_so(qtbot, make_window, workspace, test_page_specs):
    specs = [test_page_specs[0],
             PageSpec("Missing", "Not shipped.", "_no_such_module.page:Page"),
             PageSpec("Broken", "Raises.", "_workbench_test_pages:BrokenPage")]
    window = make_window(workspace, page_specs=specs)
    missing = window.show_page("Missing")
    assert isinstance(missing, PlaceholderPanel) and "not available" in missing.description
    broken = window.show_page("Broken")
    assert isinstance(broken, PageErrorPanel) and "broken on purpose" in broken.details
    window.show_page("Rank")  # the window still works


def test_open_workspace_explains_why_not(qtbot, make_window, workspace, tmp_path):
    window = make_window(workspace)
    not_a_workspace = tmp_path / "plain"
    not_a_workspace.mkdir()
    for folder, expected in ((not_a_workspace, "is not a workspace"),
                             (tmp_path / "gone", "does not exist")):
        seen: list[str] = []
        _answer_message_box(seen)
        assert not window.open_workspace(folder)
        assert seen and expected in seen[0]
        assert window.workspace_path == workspace  # the open workspace stays


def test_title_and_status_bar_show_workspace(make_window, workspace):
    window = make_window(workspace)
    assert window.windowTitle() == "RLHF Workbench \u2014 my-workspace"
    label = window.statusBar().findChild(QLabel, "workspaceLabel")
    assert label is not None and str(workspace) in label.text()


def test_stylesheet_follows_a_palette_change(qtbot, make_window, workspace):
    """A dark palette arriving at run time (the desktop switched themes) re-colours
    the palette()-styled navigation."""
    from ui.theme import apply_stylesheet

    app = QApplication.instance()
    old_palette, old_sheet = QPalette(app.palette()), app.styleSheet()
    try:
        apply_stylesheet(app)
        window = make_window(workspace)
        nav = window.navigation
        probe = QPoint(5, nav.height() - 5)  # below the items: the list's own background
        before = nav.grab().toImage().pixelColor(probe)
        assert before == app.palette().color(QPalette.ColorRole.Window)

        dark = QPalette(app.palette())
        dark.setColor(QPalette.ColorRole.Window, QColor("#1e1f22"))
        dark.setColor(QPalette.ColorRole.WindowText, QColor("#e6e6e6"))
        app.setPalette(dark)
        qtbot.waitUntil(lambda: nav.grab().toImage().pixelColor(probe) == QColor("#1e1f22"))
    finally:
        app.setPalette(old_palette)
        app.setStyleSheet(old_sheet)


def test_app_icon_and_stylesheet_exist(qapp) -> None:
    from ui.theme import ICON_SIZES, app_icon

    assert resource_path("icons", "app.svg").is_file()
    sizes = {s.width() for s in app_icon().availableSizes()}
    assert sizes == set(ICON_SIZES)  # PNG renderings of the SVG (packaging/render_icons.py)
    qss = resource_path("style.qss").read_text(encoding="utf-8")
    # Colours only from the palette: no hex, rgb() or named colours in the sheet.
    import re
    assert not re.search(r"#[0-9a-fA-F]{3,8}\b|rgba?\(|\b(white|black|gray|grey)\b", qss)


def test_the_shown_page_is_highlighted_in_the_navigation_after_opening_from_welcome(qtbot, make_window,
                                                                                     workspace):
    window = make_window(page_specs=DEFAULT_PAGES)  # the welcome screen, then the app's own pages
    assert window.is_welcome_shown()
    qtbot.wait(300)  # past the first paint
    assert window.open_workspace(workspace)
    qtbot.waitUntil(lambda: window.page(window.current_title()) is not None)
    nav = window.navigation
    assert [i.text() for i in nav.selectedItems()] == [window.current_title()]
    window.close_workspace()
    assert window.open_workspace(workspace)  # and again, the same page already current
    qtbot.waitUntil(lambda: window.page(window.current_title()) is not None)
    assert [i.text() for i in nav.selectedItems()] == [window.current_title()]
