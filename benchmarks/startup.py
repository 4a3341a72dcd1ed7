"""Time to first paint: the RLHF Workbench app beside a bare PySide6 window.

Each sample is a fresh interpreter, timed from just before the parent spawns
it to the first paint event of its top-level window. Both children start the
same way: ``python -c PRELUDE + BODY``, where the prelude wraps
``QApplication.exec`` so that, when the event loop starts, an event filter
on the visible top-level windows prints the wall-clock time of the first
``QEvent.Paint`` and ends the process (``os._exit``: nothing after the first
paint is timed). The bodies:

- app:  ``ui.launcher.main(["gui", "--workspace", WS])``, the code path of
  the ``rlhf-workbench`` console script (and ``python -m ui.launcher``),
  with a temporary workspace (created beforehand, so it is opened, not
  created) and temporary settings (``XDG_CONFIG_HOME``/``XDG_DATA_HOME``);
- bare: ``QApplication`` + an empty ``QMainWindow`` of the same size, shown.

Samples alternate (bare, app, bare, app, ...) after one unmeasured warm-up of
each (disk cache, and the bytecode cache: the children get
``PYTHONPYCACHEPREFIX`` in the temp folder and never
``PYTHONDONTWRITEBYTECODE``, so they run from ``.pyc`` files as an installed
app does, not compiling every module on every start), and the medians are
compared. Also printed, not in the
JSON: the app's welcome screen (no workspace, first launch).

Run under a real display for real figures, e.g.
``xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python benchmarks/startup.py``;
without ``DISPLAY`` it uses the offscreen platform. Ends with one JSON line:
``{"app_ms": ..., "bare_ms": ..., "ratio": ...}`` (target: ratio <= 1.5).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PRELUDE = r"""
import os, sys, time
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication

class _FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint:
            sys.stdout.write("FIRST_PAINT %.6f\n" % time.time())
            sys.stdout.flush()
            os._exit(0)
        return False

_exec = QApplication.exec

def _timed_exec(*args):
    app = QApplication.instance()
    watcher = _FirstPaint(app)
    for window in app.topLevelWidgets():
        if window.isVisible():
            window.installEventFilter(watcher)
    return _exec()

QApplication.exec = _timed_exec
"""

APP = PRELUDE + r"""
from ui.launcher import main
sys.exit(main(sys.argv[1:]))
"""

BARE = PRELUDE + r"""
from PySide6.QtWidgets import QMainWindow
app = QApplication(sys.argv[:1])
window = QMainWindow()
window.setWindowTitle("bare")
window.resize(1200, 780)
window.show()
sys.exit(app.exec())
"""


def _sample(code: str, args: list[str], env: dict) -> float:
    """Milliseconds from spawn to the child's first paint."""
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)
    for line in proc.stdout.splitlines():
        if line.startswith("FIRST_PAINT "):
            return (float(line.split()[1]) - t0) * 1000.0
    raise RuntimeError(f"no first paint (exit {proc.returncode}): {proc.stderr[-2000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="measured samples of each (default 7)")
    args = parser.parse_args()

    env = dict(os.environ)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    platform = env.get("QT_QPA_PLATFORM") or ("xcb" if env.get("DISPLAY") else "wayland")

    with tempfile.TemporaryDirectory(prefix="wb-startup-") as tmp:
        tmp_path = Path(tmp)
        env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
        env["XDG_DATA_HOME"] = str(tmp_path / "data")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
        workspace = tmp_path / "workspace"
        subprocess.run([sys.executable, "-m", "workbench.cli", "workspace", "init", str(workspace)],
                       check=True, capture_output=True, env=env, cwd=ROOT)
        app_args = ["gui", "--workspace", str(workspace)]

        _sample(BARE, [], env)  # warm-up: page cache, font cache
        _sample(APP, app_args, env)
        bare, app = [], []
        for _ in range(args.repeats):
            bare.append(_sample(BARE, [], env))
            app.append(_sample(APP, app_args, env))

        # First launch (no last workspace): the welcome screen. Fresh settings each time.
        welcome = []
        for i in range(max(3, args.repeats // 2)):
            env_w = {**env, "XDG_CONFIG_HOME": str(tmp_path / f"config-w{i}")}
            welcome.append(_sample(APP, ["gui"], env_w))

    bare_ms, app_ms = statistics.median(bare), statistics.median(app)
    ratio = app_ms / bare_ms
    print(f"platform: {platform}; {args.repeats} samples each, alternating; spawn -> first paint")
    print(f"  bare PySide6 window : median {bare_ms:7.1f} ms  (min {min(bare):.1f}, max {max(bare):.1f})")
    print(f"  app, workspace open : median {app_ms:7.1f} ms  (min {min(app):.1f}, max {max(app):.1f})")
    print(f"  app, welcome screen : median {statistics.median(welcome):7.1f} ms  "
          f"(first launch, {len(welcome)} samples)")
    print(f"  ratio app / bare    : {ratio:.2f}  (target <= 1.5)")
    print(json.dumps({"app_ms": round(app_ms, 1), "bare_ms": round(bare_ms, 1), "ratio": round(ratio, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
