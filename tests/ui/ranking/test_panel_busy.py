"""A decision that meets another process's write lock is kept and retried, never dropped or doubled.

A real second process holds the workspace's write lock (as a long k-wise
import does); the key press returns with the decision pending on screen, and
once the lock is released the decision commits by itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from PySide6.QtCore import Qt

import workbench
from workbench.store.workspace import Workspace

from .conftest import create_queue, make_workspace

LOCK_HOLDER = textwrap.dedent("""
    import sys
    from workbench.store.workspace import Workspace

    ws = Workspace.open(sys.argv[1])
    with ws.transaction():
        ws.conn.execute("INSERT INTO meta(key, value) VALUES ('held-by', 'another process')")
        print("LOCKED", flush=True)
        sys.stdin.readline()
    print("RELEASED", flush=True)
""")


def _rankings(root):
    with Workspace.open(root) as ws:
        return [json.loads(o) for (o,) in ws.conn.execute("SELECT ordering FROM rankings ORDER BY id")]


def test_a_decision_during_another_writers_lock_is_retried_until_it_commits(qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=4)
    create_queue(root)
    panel = open_panel(root)
    item = panel.current
    left, right = item.shown
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(root)], text=True,
                              cwd=Path(workbench.__file__).resolve().parents[1],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        qtbot.keyClick(panel, Qt.Key_1)
        # Not saved yet, not dropped: the item stays, the page says it is saving and retrying.
        assert panel.saving
        assert panel.current is item
        assert "retrying" in panel.message.text() and panel.message.isVisible()
        assert _rankings(root) == []
        # Another key while it waits does not decide the same item twice (or the next one blindly).
        qtbot.keyClick(panel, Qt.Key_2)
        qtbot.wait(600)   # a few retries meet the lock; the event loop keeps running meanwhile
        assert panel.saving and _rankings(root) == []

        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "RELEASED"
        assert holder.wait(timeout=30) == 0
        qtbot.waitUntil(lambda: not panel.saving, timeout=10_000)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        holder.stdin.close()
        holder.stdout.close()
    assert _rankings(root) == [[[left], [right]]]
    assert panel.current is not None and panel.current.prompt_id != item.prompt_id
    assert not panel.message.isVisible()
    assert "Saved" in panel.last_label.text()
    assert panel.undo_stack.count() == 1
