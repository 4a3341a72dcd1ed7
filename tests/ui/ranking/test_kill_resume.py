"""A real GUI process records N decisions by key presses, is killed with SIGKILL, and the next start
finds all N in the workspace and resumes at item N+1."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from workbench.store import annotations as A
from workbench.store import queue as Q
from workbench.store.workspace import Workspace

from .conftest import create_queue, make_workspace

N = 7

CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication
    from ui.ranking.panel import RankingPanel

    app = QApplication([])
    panel = RankingPanel()
    panel.resize(1000, 700)
    panel.show()
    panel.set_workspace(Path(sys.argv[1]))
    panel.activateWindow()
    panel.setFocus()
    while QApplication.activeWindow() is not panel:
        app.processEvents()
    keys = [Qt.Key_1, Qt.Key_B, Qt.Key_T, Qt.Key_2, Qt.Key_A, Qt.Key_X, Qt.Key_1, Qt.Key_2, Qt.Key_1]
    painted = []
    panel.item_painted.connect(lambda: painted.append(panel.current.prompt_id if panel.current else None))
    for i in range(int(sys.argv[2])):
        before = len(painted)
        QTest.keyClick(panel, keys[i % len(keys)])
        while len(painted) == before:       # the next item is on screen
            app.processEvents()
        print(f"decided {i + 1}", flush=True)
    print("ready", flush=True)
    while True:                             # alive, window open, until killed
        app.processEvents()
        time.sleep(0.01)
""")


def test_sigkill_after_n_decisions_keeps_them_and_resumes_at_n_plus_1(qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=12)
    qid = create_queue(root, repeat_every=20)
    with Workspace.open(root) as ws:
        order = Q.RankingQueue(ws.conn, qid).upcoming(12)
    repo = str(Path(__file__).resolve().parents[3])
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "PYTHONPATH": os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(N)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = []
        for line in child.stdout:
            lines.append(line.strip())
            if line.strip() == "ready":
                break
        assert lines and lines[-1] == "ready", (lines, child.stderr.read() if child.poll() is not None else "")
        assert child.poll() is None                        # still running when killed
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    with Workspace.open(root) as ws:
        assert ws.integrity_check() == "ok"
        ranked = A.rankings(ws.conn, annotator="ana")
    assert [r.prompt_id for r in ranked] == order[:N]
    panel = open_panel(root)                               # the restart
    assert panel.queue.id == qid
    assert panel.current.prompt_id == order[N]
    assert panel.current.shown == panel.queue.build_item(order[N]).shown
