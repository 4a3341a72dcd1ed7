"""Settings persist per user (in the test's temp location, see conftest) and a second
window restores what the first left: geometry, last page, last workspace."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from ui.app import start_workspace
from ui.main_window import MainWindow
from ui.settings import MAX_RECENT, Settings


def test_settings_live_in_the_test_location(isolated_user_settings):
    s = Settings()
    s.set_last_page("Runs")
    s.sync()
    assert Path(s.file_name).is_relative_to(isolated_user_settings)
    assert Path(s.file_name).is_file()


def test_recent_workspaces_are_most_recent_first_unique_and_bounded(tmp_path):
    s = Settings()
    assert s.recent_workspaces() == []
    s.add_recent_workspace(tmp_path / "a")
    assert Settings().recent_workspaces() == [tmp_path / "a"]  # one entry survives a re-read as a list
    s.add_recent_workspace(tmp_path / "b")
    s.add_recent_workspace(tmp_path / "a")
    assert Settings().recent_workspaces() == [tmp_path / "a", tmp_path / "b"]
    for i in range(MAX_RECENT + 5):
        s.add_recent_workspace(tmp_path / f"w{i}")
    recent = Settings().recent_workspaces()
    assert len(recent) == MAX_RECENT and recent[0] == tmp_path / f"w{MAX_RECENT + 4}"
    s.remove_recent_workspace(recent[0])
    assert recent[0] not in s.recent_workspaces()
    s.clear_recent_workspaces()
    assert Settings().recent_workspaces() == []


def test_a_damaged_recent_list_is_forgotten_not_fatal():
    q = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "rlhf-workbench", "rlhf-workbench")
    q.setValue("workspaces/recent", "[not json")
    q.sync()
    assert Settings().recent_workspaces() == []


def test_second_window_restores_geometry_page_and_workspace(qtbot, make_window, workspace):
    first = make_window(workspace)
    first.show_page("Train")
    first.resize(760, 580)  # within the offscreen screen (800x800): restoreGeometry clamps
    qtbot.waitUntil(lambda: first.size().width() == 760)
    first.close()

    settings = Settings()
    assert settings.last_workspace() == workspace and settings.last_page() == "Train"
    reopened = start_workspace(None, settings)
    assert reopened == workspace
    second = make_window(reopened)
    assert second.workspace_path == workspace
    assert second.current_title() == "Train" and second.page("Rank") is None
    assert (second.size().width(), second.size().height()) == (760, 580)


def test_without_settings_the_window_has_its_default_size(make_window):
    """1200x780, or less on a smaller screen (the offscreen test screen is 800x800)."""
    from ui.main_window import DEFAULT_SIZE, FRAME_ALLOWANCE

    window = make_window()
    avail = window.screen().availableGeometry().size() - FRAME_ALLOWANCE
    assert window.size() == DEFAULT_SIZE.boundedTo(avail)


def test_start_workspace_falls_back_to_the_welcome_screen(workspace, tmp_path):
    s = Settings()
    assert start_workspace(None, s) is None  # first launch
    s.set_last_workspace(workspace)
    assert start_workspace(None, s) == workspace
    assert start_workspace(str(tmp_path / "given"), s) == tmp_path / "given"  # --workspace wins
    shutil.rmtree(workspace)
    assert start_workspace(None, s) is None  # the last one is gone: welcome


def test_app_main_opens_the_workspace_argument(qtbot, tmp_path, test_page_specs, monkeypatch):
    """ui.app.main with --workspace creates and opens it (the event loop ends when the
    window is closed from a timer, as a user closing it would)."""
    import ui.app
    from ui import main_window

    monkeypatch.setattr(main_window, "DEFAULT_PAGES", tuple(test_page_specs))
    # Not in the test process: it would take over Ctrl+C (tests/ui/test_startup.py covers it).
    monkeypatch.setattr(ui.app, "close_on_termination_signals", lambda app: None)
    target = tmp_path / "from-cli"
    seen: dict = {}

    def inspect_and_close() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if not windows:
            QTimer.singleShot(20, inspect_and_close)
            return
        seen["workspace"] = windows[0].workspace_path
        seen["title"] = windows[0].windowTitle()
        windows[0].close()

    app = QApplication.instance()
    old_sheet = app.styleSheet()
    QTimer.singleShot(0, inspect_and_close)
    try:
        assert ui.app.main(["--workspace", str(target)]) == 0
    finally:
        app.setStyleSheet(old_sheet)
    assert seen["workspace"] == target and seen["title"].endswith("from-cli")
    assert (target / "workspace.sqlite").is_file()
    assert Settings().last_workspace() == target
