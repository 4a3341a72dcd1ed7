"""Start-up stays light: in a fresh interpreter, showing the welcome screen, opening
a workspace, and visiting every page that exists leave the training stack (torch,
transformers, trl, peft, datasets) out of the GUI process; pyqtgraph is not paid
for before a page that plots is shown. (Time to first paint: benchmarks/startup.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ui.pages import DEFAULT_PAGES

HEAVY_MODULES = ("torch", "transformers", "trl", "peft", "datasets")

_SCRIPT = r"""
import importlib, json, sys
from pathlib import Path

HEAVY = %(heavy)r

def loaded():
    return [m for m in HEAVY if m in sys.modules]

from PySide6.QtWidgets import QApplication
app = QApplication([])
import ui.app  # the entry module and everything it imports at start-up
from ui.main_window import MainWindow
from ui.pages import DEFAULT_PAGES, PageUnavailable, load_page_class

out = {}
window = MainWindow(gpu_probe_delay_ms=None)  # no last workspace: the welcome screen
window.show()
app.processEvents()
out["welcome_shown"] = window.is_welcome_shown()
out["welcome"] = loaded()
out["welcome_pyqtgraph"] = "pyqtgraph" in sys.modules

assert window.open_workspace(Path(sys.argv[1]), create=True)
app.processEvents()
out["first_page"] = window.current_title()
out["workspace"] = loaded()
out["workspace_pyqtgraph"] = "pyqtgraph" in sys.modules

out["visited"] = []
for spec in DEFAULT_PAGES:
    try:
        load_page_class(spec)
    except PageUnavailable:
        continue  # not built yet in this checkout
    window.show_page(spec.title)
    app.processEvents()
    out["visited"].append(spec.title)
out["pages"] = loaded()
window.close()
print(json.dumps(out))
"""


def test_gui_never_imports_the_training_stack(tmp_path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT % {"heavy": HEAVY_MODULES}, str(tmp_path / "ws")],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["welcome_shown"] is True
    assert out["welcome"] == [], f"the welcome screen imported {out['welcome']}"
    assert out["workspace"] == [], f"opening a workspace imported {out['workspace']}"
    assert out["pages"] == [], f"visiting {out['visited']} imported {out['pages']}"
    assert not out["welcome_pyqtgraph"], "pyqtgraph imported before any page was shown"
    assert out["first_page"] == DEFAULT_PAGES[0].title
    # The first page (Rank) does not plot: pyqtgraph (~0.9 s) must wait for a page that does.
    assert not out["workspace_pyqtgraph"], f"pyqtgraph imported at start-up by the {out['first_page']} page"


def test_sigterm_closes_the_app_cleanly_and_keeps_its_settings(tmp_path) -> None:
    """``rlhf-workbench --workspace DIR`` (the launcher path) then SIGTERM: the window
    closes as if the user closed it, so the settings it saves on close are written."""
    import signal
    import time

    if not hasattr(signal, "SIGTERM"):
        return
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}
    workspace = tmp_path / "ws"
    proc = subprocess.Popen([sys.executable, "-m", "ui.launcher", "--workspace", str(workspace)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        # The workspace is created after the handlers are installed: then SIGTERM is ours.
        deadline = time.monotonic() + 60
        while not (workspace / "workspace.sqlite").is_file():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the app did not open its workspace"
            time.sleep(0.05)  # waiting on another process, not on Qt
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    ini = (tmp_path / "config" / "rlhf-workbench" / "rlhf-workbench.ini").read_text()
    assert f"last={workspace}" in ini and "geometry=" in ini
