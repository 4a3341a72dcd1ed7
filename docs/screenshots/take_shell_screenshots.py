"""Screenshots of the app shell: the welcome screen and the main window.

Run under Xvfb with a real window (not offscreen), from the repo root:

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python docs/screenshots/take_shell_screenshots.py DEMO_WS

DEMO_WS is a demo workspace (``rlhf-workbench demo --build-only --workspace DEMO_WS``).
It creates three empty example workspaces in ``~/rlhf`` for the recent list, so
run it with ``HOME`` set to a scratch folder. Settings live in a temporary
folder; the GPU label shows what a real probe job found on this machine.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

TMP = Path(tempfile.mkdtemp(prefix="wb-shots-"))
os.environ["XDG_CONFIG_HOME"] = str(TMP / "config")
os.environ["XDG_DATA_HOME"] = str(TMP / "data")

from PySide6.QtWidgets import QApplication  # noqa: E402

from ui.main_window import MainWindow  # noqa: E402
from ui.settings import Settings  # noqa: E402
from ui.theme import app_icon, apply_stylesheet  # noqa: E402
from workbench.store.workspace import Workspace  # noqa: E402

OUT = Path(__file__).resolve().parent


def wait(app: QApplication, condition, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        app.processEvents()
        time.sleep(0.02)


def main() -> int:
    demo = Path(sys.argv[1]).absolute()
    app = QApplication(sys.argv[:1])
    app.setWindowIcon(app_icon())
    apply_stylesheet(app)

    # A believable recent list: the demo, two projects, one moved away.
    projects = Path.home() / "rlhf"
    for name in ("helpfulness-v2", "code-review-prefs", "summaries-2026q3"):
        Workspace.init(projects / name).close()
    settings = Settings()
    for path in (projects / "summaries-2026q3", projects / "code-review-prefs", demo, projects / "helpfulness-v2"):
        settings.add_recent_workspace(path)
    settings.add_recent_workspace(Path.home() / "archive" / "hh-rlhf-baseline")  # missing
    settings.add_recent_workspace(projects / "helpfulness-v2")

    window = MainWindow(settings=settings, gpu_probe_delay_ms=0)
    window.show()
    wait(app, lambda: window.isVisible())
    for _ in range(20):
        app.processEvents()
    window.grab().save(str(OUT / "welcome.png"))

    settings.set_last_page("Datasets")
    window.open_workspace(demo)
    wait(app, lambda: window.page("Datasets") is not None)
    wait(app, lambda: not window.status_bar_view.gpu_label.text().startswith("GPU:"), 180)
    for _ in range(40):
        app.processEvents()
        time.sleep(0.02)
    window.grab().save(str(OUT / "main_window.png"))
    print("gpu label:", window.status_bar_view.gpu_label.text())
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
