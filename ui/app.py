"""GUI entry point: ``rlhf-workbench-gui [--workspace DIR]``.

This process must stay light: no torch, transformers, trl, peft or datasets
imports here or in anything the main window pulls in (first window in well
under 2 s). Training runs in child processes.
"""

from __future__ import annotations

import argparse
import sys

from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication

from ui.common.resources import resource_path
from ui.main_window import APP_NAME, MainWindow


def _parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="rlhf-workbench-gui", description=f"Start {APP_NAME}.")
    parser.add_argument("--workspace", metavar="DIR", help="workspace folder to open")
    # Unknown arguments are left for Qt (e.g. -platform offscreen, -style fusion).
    return parser.parse_known_args(argv)


def _apply_stylesheet(app: QApplication) -> None:
    qss = resource_path("style.qss")
    if qss.is_file():
        app.setStyleSheet(qss.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    """Run the GUI until the main window closes; return the exit status.

    ``argv`` excludes the program name (``sys.argv[1:]`` when ``None``).
    """
    args, qt_args = _parse_args(sys.argv[1:] if argv is None else list(argv))

    # A second call (e.g. from a test) must reuse the existing instance.
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APP_NAME, *qt_args])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    # Lets Wayland compositors match the window to packaging/rlhf-workbench.desktop.
    QGuiApplication.setDesktopFileName("rlhf-workbench")
    app.setWindowIcon(QIcon(str(resource_path("icons", "app.svg"))))
    _apply_stylesheet(app)

    # Open (creating on first launch) the chosen or the per-user default
    # workspace, so the window always shows a real, migrated workspace.
    from workbench.store.workspace import Workspace, default_workspace_dir
    workspace = Workspace.init(args.workspace or default_workspace_dir())
    window = MainWindow(workspace_path=str(workspace.root))
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
