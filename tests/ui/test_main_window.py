"""The main window: navigation switches pages, the title names the workspace,
and building it pulls no training libraries into the GUI process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from ui.common.resources import resource_path
from ui.main_window import MainWindow, PlaceholderPanel

HEAVY_MODULES = ("torch", "transformers", "trl", "peft", "datasets")


@pytest.fixture
def window(qtbot, tmp_path: Path) -> MainWindow:
    workspace = tmp_path / "my-workspace"
    workspace.mkdir()
    w = MainWindow(workspace_path=str(workspace))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_navigation_click_switches_page(qtbot, window: MainWindow) -> None:
    nav, pages = window.navigation, window.pages
    assert nav.count() == pages.count() == 4
    assert [nav.item(i).text() for i in range(nav.count())] == ["Rank", "Datasets", "Train", "Runs"]

    # Visit in an order that changes the page on every click, ending on the first.
    for row in (1, 2, 3, 0):
        item = nav.item(row)
        center = nav.visualItemRect(item).center()
        qtbot.mouseClick(nav.viewport(), Qt.MouseButton.LeftButton, pos=center)
        qtbot.waitUntil(lambda: pages.currentIndex() == row)
        page = pages.currentWidget()
        assert isinstance(page, PlaceholderPanel)
        assert page.title == item.text()


def test_title_and_status_bar_show_workspace(window: MainWindow) -> None:
    assert window.windowTitle() == "RLHF Workbench \u2014 my-workspace"
    label = window.statusBar().findChild(QLabel, "workspaceLabel")
    assert label is not None and str(window.workspace_path) in label.text()


def test_without_workspace(qtbot) -> None:
    w = MainWindow()
    qtbot.addWidget(w)
    assert w.windowTitle() == "RLHF Workbench"
    assert w.workspace_path is None
    assert w.size().width() == 1200 and w.size().height() == 780


def test_app_icon_exists() -> None:
    assert resource_path("icons", "app.svg").is_file()
    assert resource_path("style.qss").is_file()


def test_gui_does_not_import_training_stack() -> None:
    # A fresh interpreter: other tests in this session may have imported torch.
    code = (
        "import json, sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "import ui.app, ui.main_window\n"
        "app = QApplication([])\n"
        "w = ui.main_window.MainWindow(workspace_path='ws')\n"
        "w.show(); app.processEvents()\n"
        f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == [], f"GUI process imported {loaded}"


def test_open_workspace_creates_it_or_explains_why_not(qtbot, tmp_path) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    window = MainWindow(workspace_path=None)
    qtbot.addWidget(window)
    assert window.open_workspace(tmp_path / "fresh")
    assert (tmp_path / "fresh" / "workspace.sqlite").is_file()
    assert "fresh" in window.windowTitle()

    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    seen: list[str] = []

    def close_box() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            box.close()
        else:
            QTimer.singleShot(20, close_box)

    QTimer.singleShot(20, close_box)
    assert not window.open_workspace(not_a_folder)
    assert seen and "not a folder" in seen[0]
    assert "fresh" in window.windowTitle()  # the open workspace stays
