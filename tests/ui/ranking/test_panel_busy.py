"""A decision that meets another process's write lock is kept and retried, never dropped or doubled.

A real second process holds the workspace's write lock (as a long k-wise
import does); the key press returns with the decision pending on screen, and
once the lock is released the decision commits by itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
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


def test_a_read_only_workspace_says_so_and_a_decision_is_refused_not_lost(qtbot, tmp_path, open_panel):
    if not (sys.platform.startswith("linux") and os.geteuid() == 0):
        pytest.skip("a read-only bind mount needs root on Linux")
    src = tmp_path / "src"
    make_workspace(src / "ws", prompts=3)
    create_queue(src / "ws")
    view = tmp_path / "ro"
    view.mkdir()
    for cmd in (["mount", "--bind", str(src), str(view)], ["mount", "-o", "remount,bind,ro", str(view)]):
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(view)], capture_output=True)
            pytest.skip("cannot make a read-only bind mount here")
    try:
        panel = open_panel(view / "ws")
        assert panel.ws.read_only and panel.current is not None
        assert "read-only" in panel.message.text() and panel.message.isVisible()
        item = panel.current
        qtbot.keyClick(panel, Qt.Key_1)
        assert panel.current is item and not panel.saving   # refused with its reason, not retried forever
        assert "read-only" in panel.message.text()
        assert _rankings(src / "ws") == []
        panel.shutdown()
    finally:
        subprocess.run(["umount", "-l", str(view)], capture_output=True)
