"""GUI entry point: ``rlhf-workbench-gui [--workspace DIR]`` (also ``rlhf-workbench [gui]``).

With ``--workspace DIR`` the app opens DIR (creating the workspace if
needed). Without it, it reopens the workspace open when it last closed, if
that still exists, and shows the welcome screen otherwise.

This process must stay light: no torch, transformers, trl, peft or datasets
imports here or in anything the main window pulls in at start-up (pages are
imported on first visit; ``tests/ui/test_startup.py`` checks, and
``benchmarks/startup.py`` measures time to the first paint).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QSocketNotifier, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from ui.main_window import APP_NAME, MainWindow
from ui.settings import ORGANIZATION, Settings
from ui.theme import app_icon, apply_stylesheet, follow_system_palette


def _parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="rlhf-workbench-gui", description=f"Start {APP_NAME}.")
    parser.add_argument("--workspace", metavar="DIR", help="workspace folder to open (created if needed)")
    # Unknown arguments are left for Qt (e.g. -platform offscreen, -style fusion).
    return parser.parse_known_args(argv)


def start_workspace(requested: Optional[str], settings: Settings) -> Optional[Path]:
    """The workspace to open at start: ``--workspace`` if given, else the last
    one if it still holds a workspace, else ``None`` (the welcome screen)."""
    if requested:
        return Path(requested).expanduser()
    last = settings.last_workspace()
    if last is not None and (last / "workspace.sqlite").is_file():
        return last
    return None


#: How often a termination signal's quit looks whether the windows have closed.
CLOSE_POLL_MS = 100


def close_all_and_quit(app: QApplication) -> None:
    """Close every main window without asking (each saves its settings, cancels a demo build,
    stops the monitors), then quit once all have closed. A window whose Rank page still saves
    a decision closes itself a little later (``SAVE_WAIT_S`` at most, then it names the decision
    on stderr); quitting at once would skip that and its settings."""
    import shiboken6

    windows = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow)]
    for window in windows:
        window.close_without_asking()

    def quit_once_closed() -> None:
        if any(shiboken6.isValid(w) and w.isVisible() for w in windows):
            QTimer.singleShot(CLOSE_POLL_MS, quit_once_closed)
        else:
            app.quit()

    quit_once_closed()


def close_on_termination_signals(app: QApplication) -> None:
    """Close the app's windows (the main window saves its settings and stops what it
    runs) on SIGINT or SIGTERM, e.g. Ctrl+C in the terminal that ran ``make run``.

    Python runs signal handlers only between bytecodes, and Qt's event loop is C++:
    the wake-up fd makes the loop notice the signal at once (no polling timer).
    """
    import signal
    import socket

    if not hasattr(signal, "SIGTERM") or not hasattr(socket, "socketpair"):
        return
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno())
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read, app)

    def drain() -> None:  # the handler itself runs as soon as Python gets control
        try:
            reader.recv(64)
        except OSError:
            pass

    notifier.activated.connect(drain)
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Deferred to the event loop: a signal during start-up must not run before the
        # window exists (it would close nothing and the window would then show).
        signal.signal(sig, lambda _signum, _frame: QTimer.singleShot(0, lambda: close_all_and_quit(app)))
    app._signal_sockets = (reader, writer, notifier)  # kept alive with the app


def main(argv: list[str] | None = None) -> int:
    """Run the GUI until the main window closes; return the exit status.

    ``argv`` excludes the program name (``sys.argv[1:]`` when ``None``).
    """
    args, qt_args = _parse_args(sys.argv[1:] if argv is None else list(argv))

    # A second call (e.g. from a test) must reuse the existing instance.
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APP_NAME, *qt_args])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORGANIZATION)
    # Lets Wayland compositors match the window to packaging/rlhf-workbench.desktop.
    QGuiApplication.setDesktopFileName("rlhf-workbench")
    app.setWindowIcon(app_icon())
    apply_stylesheet(app)
    follow_system_palette(app)

    close_on_termination_signals(app)
    settings = Settings()
    window = MainWindow(workspace_path=start_workspace(args.workspace, settings), settings=settings)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
