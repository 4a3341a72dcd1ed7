"""Take ``docs/screenshots/training_runs.png``: the Runs page replaying the recorded real runs.

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python tests/ui/training/data/screenshot_runs_page.py

Copies the real recorded runs here (the demo's SFT and reward-model runs, the
demo-settings PPO run and the reward-hacking PPO run; not the edited copy)
into a temporary workspace, opens the page at 1280x800 in a real window,
selects the reward-hacking run (its length-runaway warning is real), opens
one sample and saves the window.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from ui.training.runs import RunsPanel  # noqa: E402

RUNS = ("sft_demo", "reward_demo", "ppo_demo", "ppo_reward_hacking")


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots" / "training_runs.png"
    ws = Path(tempfile.mkdtemp(prefix="runs-shot-")) / "ws"
    for name in RUNS:
        rid = (HERE / name / "RUN_ID").read_text().strip()
        shutil.copytree(HERE / name, ws / "runs" / rid, ignore=shutil.ignore_patterns("RUN_ID"))
    hacking = (HERE / "ppo_reward_hacking" / "RUN_ID").read_text().strip()

    app = QApplication(sys.argv[:1])
    panel = RunsPanel()
    panel.setWindowTitle("RLHF Workbench: Runs")
    panel.resize(1280, 800)
    panel.show()
    panel.set_workspace(ws)

    def select():
        panel.select_run(hacking)

    def pick_sample():
        table = panel.samples_view.table
        table.selectRow(2)

    def save():
        out.parent.mkdir(parents=True, exist_ok=True)
        ok = panel.grab().save(str(out))
        print(f"{'saved' if ok else 'could not save'} {out}")
        panel.shutdown()
        app.quit()

    QTimer.singleShot(1500, select)
    QTimer.singleShot(3500, pick_sample)
    QTimer.singleShot(5000, save)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
