"""UI test set-up: run Qt without a display unless the caller chose a platform,
and never touch the real user's settings or data folders."""

import os

import pytest

# Set before pytest-qt creates the QApplication; `make test` sets it too, but a
# bare `pytest tests/ui` on a desktop should not flash windows.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def isolated_user_settings(tmp_path_factory, monkeypatch):
    """Per test: QSettings (ui.settings uses INI, user scope) and the per-user data
    folder (platformdirs: default and demo workspaces) live in a fresh temp dir;
    file dialogs are Qt's own widgets, so a test can answer them."""
    from PySide6.QtCore import QCoreApplication, QSettings, Qt

    root = tmp_path_factory.mktemp("user")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(root / "config"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(root / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(root / "data"))
    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_DontUseNativeDialogs, True)
    yield root


# -- small real pages for main-window tests (the product's pages are built by others) -------

def _make_test_pages_module():
    import types

    from PySide6.QtGui import QUndoStack
    from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

    class RecordingPage(QWidget):
        """A page that records what the window asks of it (the page contract)."""

        def __init__(self, parent=None):
            super().__init__(parent)
            self.undo_stack = QUndoStack(self)
            self.workspaces = []  # every set_workspace() argument, in order
            self.shut_down = 0
            self.imports = 0
            self.exports = 0
            QVBoxLayout(self).addWidget(QLabel(type(self).__name__))

        def set_workspace(self, root):
            self.workspaces.append(root)

        def shutdown(self):
            self.shut_down += 1

        @staticmethod
        def shortcuts():
            return [("Ctrl+Return", "Submit the ranking")]

    class DatasetsPage(RecordingPage):
        def open_import_wizard(self):
            self.imports += 1

        def open_export_dialog(self):
            self.exports += 1

        def shortcuts(self):  # an instance method: listed once the page is built
            return [("Ctrl+F", "Search records")]

    class PlainPage(RecordingPage):
        shortcuts = None  # no shortcuts of its own

    class BrokenPage(QWidget):
        def __init__(self, parent=None):
            raise RuntimeError("this page is broken on purpose")

    module = types.ModuleType("_workbench_test_pages")
    for cls in (RecordingPage, DatasetsPage, PlainPage, BrokenPage):
        cls.__module__ = module.__name__
        setattr(module, cls.__name__, cls)
    return module


@pytest.fixture
def test_page_specs(monkeypatch):
    """Page specs for Rank / Datasets / Train / Runs backed by recording test pages."""
    import sys

    from ui.pages import PageSpec

    monkeypatch.setitem(sys.modules, "_workbench_test_pages", _make_test_pages_module())
    return [PageSpec("Rank", "Rank responses.", "_workbench_test_pages:RecordingPage"),
            PageSpec("Datasets", "Manage datasets.", "_workbench_test_pages:DatasetsPage"),
            PageSpec("Train", "Train models.", "_workbench_test_pages:PlainPage"),
            PageSpec("Runs", "Follow runs.", "_workbench_test_pages:RecordingPage")]


@pytest.fixture
def make_window(qtbot, test_page_specs, tmp_path):
    """``make_window(workspace=None, **kwargs)``: a shown MainWindow over the test pages,
    with the GPU probe off unless asked for, and the demo under tmp_path."""
    from ui.main_window import MainWindow

    def make(workspace=None, **kwargs):
        kwargs.setdefault("page_specs", test_page_specs)
        kwargs.setdefault("gpu_probe_delay_ms", None)
        kwargs.setdefault("demo_dir", tmp_path / "demo-workspace")
        window = MainWindow(workspace_path=workspace, **kwargs)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        if window.workspace_path is not None:  # the start-up page is built after the first paint
            qtbot.waitUntil(lambda: window.page(window.current_title()) is not None)
        return window

    return make


@pytest.fixture
def workspace(tmp_path):
    """A fresh, real workspace folder."""
    from workbench.store.workspace import Workspace

    root = tmp_path / "my-workspace"
    Workspace.init(root).close()
    return root
