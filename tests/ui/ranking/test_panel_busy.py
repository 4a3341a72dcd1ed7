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
import time
from pathlib import Path

import contextlib

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

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


@contextlib.contextmanager
def holding_the_lock(root):
    """A real second process holds ``root``'s write lock until ``release()`` is called."""
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(root)], text=True,
                              cwd=Path(workbench.__file__).resolve().parents[1],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def release():
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "RELEASED"
        assert holder.wait(timeout=30) == 0

    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        yield release
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        holder.stdin.close()
        holder.stdout.close()


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


def _queue_names(root):
    with Workspace.open(root) as ws:
        return {qid: name for qid, name in ws.conn.execute("SELECT id, name FROM queues")}


def test_switching_queue_while_a_decision_waits_opens_the_new_queue_at_once_and_saves_it_later(
        qtbot, tmp_path, open_panel):
    # Before, switching queue waited on the GUI thread for the full lock timeout (10 s) and then
    # dropped the decision with an error.
    root = tmp_path / "ws"
    make_workspace(root, prompts=4)
    first = create_queue(root, name="first")
    second = create_queue(root, name="second")
    panel = open_panel(root)
    panel.open_queue(first)
    item = panel.current
    left, right = item.shown
    with holding_the_lock(root) as release:
        qtbot.keyClick(panel, Qt.Key_1)
        assert panel.saving
        started = time.monotonic()
        panel.open_queue(second)
        switched_in = time.monotonic() - started
        assert panel.queue.id == second and panel.current is not None
        assert panel.saving and "retrying" in panel.message.text()   # still pending, not dropped
        qtbot.wait(600)
        assert panel.saving and _rankings(root) == []
        release()
        qtbot.waitUntil(lambda: not panel.saving, timeout=10_000)
    assert switched_in < 5   # far below the 10 s lock timeout it used to wait (not a speed target)
    assert _rankings(root) == [[[left], [right]]]
    with Workspace.open(root) as ws:
        assert ws.conn.execute("SELECT queue_id FROM rankings").fetchone()[0] == first
    assert "\u26a0" not in panel.message.text() and "second" not in panel.message.text()
    assert "first" in panel.message.text() and "saved" in panel.message.text()
    assert panel.undo_stack.count() == 0   # the new queue's undo history holds none of the old queue's


def test_going_back_to_the_queue_while_its_decision_waits_does_not_decide_the_item_twice(
        qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=4)
    first = create_queue(root, name="first")
    second = create_queue(root, name="second")
    panel = open_panel(root)
    panel.open_queue(first)
    item = panel.current
    with holding_the_lock(root) as release:
        qtbot.keyClick(panel, Qt.Key_1)
        panel.open_queue(second)
        panel.open_queue(first)      # the item being saved is the first unranked one again
        assert panel.current.prompt_id == item.prompt_id and panel.saving
        qtbot.keyClick(panel, Qt.Key_2)   # refused while the decision is pending
        release()
        qtbot.waitUntil(lambda: not panel.saving, timeout=10_000)
    assert panel.queue.id == first and panel.current.prompt_id != item.prompt_id
    assert len(_rankings(root)) == 1


def test_closing_the_workspace_while_a_decision_waits_saves_it_in_the_background(qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=3)
    create_queue(root)
    panel = open_panel(root)
    left, right = panel.current.shown
    with holding_the_lock(root) as release:
        qtbot.keyClick(panel, Qt.Key_1)
        started = time.monotonic()
        panel.set_workspace(None)
        assert time.monotonic() - started < 5
        assert panel.ws is None and panel.saving
        kept = panel._pending.ws
        release()
        qtbot.waitUntil(lambda: not panel.saving, timeout=10_000)
    assert _rankings(root) == [[[left], [right]]]
    assert kept._conn is None   # the connection it kept open for the decision is closed once saved


def _rank_window(qtbot, make_window, root):
    from ui.pages import DEFAULT_PAGES

    window = make_window(root, page_specs=(DEFAULT_PAGES[0],))
    panel = window.page("Rank")
    qtbot.waitUntil(lambda: panel.current is not None)
    panel.activateWindow()
    panel.setFocus()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    return window, panel


def test_quitting_while_a_decision_waits_says_saving_and_closes_once_it_is_saved(qtbot, tmp_path, make_window):
    root = tmp_path / "ws"
    make_workspace(root, prompts=3)
    create_queue(root)
    window, panel = _rank_window(qtbot, make_window, root)
    left, right = panel.current.shown
    with holding_the_lock(root) as release:
        qtbot.keyClick(panel, Qt.Key_1)
        assert panel.saving
        assert window.close() is False          # not closed, not frozen, not dropped
        assert "Saving your last decision" in window.statusBar().currentMessage()
        qtbot.wait(600)
        assert window.isVisible() and panel.saving and window.save_box is None
        release()
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    assert _rankings(root) == [[[left], [right]]]


def _answer(window, button: str, seen: list) -> None:
    def poll(left=400):
        box = window.save_box
        if isinstance(box, QMessageBox) and box.isVisible():
            seen.append([b.text() for b in box.buttons()])
            next(b for b in box.buttons() if b.text() == button).click()
        elif left:
            QTimer.singleShot(20, lambda: poll(left - 1))
    QTimer.singleShot(0, poll)


def test_quitting_while_the_lock_stays_held_asks_keep_waiting_or_discard(qtbot, tmp_path, make_window,
                                                                        monkeypatch):
    import ui.main_window

    monkeypatch.setattr(ui.main_window, "SAVE_WAIT_S", 0.5)
    root = tmp_path / "ws"
    make_workspace(root, prompts=3)
    create_queue(root)
    window, panel = _rank_window(qtbot, make_window, root)
    with holding_the_lock(root):
        qtbot.keyClick(panel, Qt.Key_1)
        seen: list = []
        _answer(window, "Keep waiting", seen)
        assert window.close() is False
        qtbot.waitUntil(lambda: bool(seen), timeout=10_000)
        assert seen[0] == ["Keep waiting", "Discard it and quit"]
        assert window.isVisible() and panel.saving          # kept, still retrying
        _answer(window, "Discard it and quit", seen)
        qtbot.waitUntil(lambda: len(seen) == 2 and not window.isVisible(), timeout=10_000)
        assert not panel.saving
    assert _rankings(root) == []   # discarded because the user said so, not silently


def test_a_termination_signal_waits_a_while_then_quits_naming_the_unsaved_decision(qtbot, tmp_path, make_window,
                                                                                   monkeypatch, capfd):
    import ui.main_window

    monkeypatch.setattr(ui.main_window, "SAVE_WAIT_S", 0.5)
    root = tmp_path / "ws"
    make_workspace(root, prompts=3)
    create_queue(root, name="evening")
    window, panel = _rank_window(qtbot, make_window, root)
    with holding_the_lock(root):
        qtbot.keyClick(panel, Qt.Key_1)
        assert window.close_without_asking() is False   # waits ("Saving…") first, without a question
        assert window.isVisible()
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
        assert window.save_box is None
    err = capfd.readouterr().err
    assert "last decision" in err and "evening" in err and "not saved" in err   # loud, not silent


def test_undo_and_redo_while_a_decision_waits_are_refused_and_never_move_it_to_another_item(
        qtbot, tmp_path, open_panel):
    # Before, undo while a decision waited brought the previous item back on screen and the
    # retry then applied the waiting decision to that item (the one the user pressed a key on
    # was never ranked); with the lock still held, undo froze the window for the 10 s lock timeout.
    root = tmp_path / "ws"
    make_workspace(root, prompts=4)
    create_queue(root)
    panel = open_panel(root)
    first = panel.current
    qtbot.keyClick(panel, Qt.Key_1)                 # saved at once
    second = panel.current
    assert second.prompt_id != first.prompt_id and panel.undo_stack.count() == 1
    left, right = second.shown
    with holding_the_lock(root) as release:
        started = time.monotonic()
        panel.undo_stack.undo()                     # nothing waits, but the lock is held
        assert time.monotonic() - started < 5       # refused at once, not after the lock timeout
        assert panel.current is second and "busy" in panel.message.text()
        qtbot.wait(50)
        assert panel.undo_stack.index() == 1        # put back: it can be undone later
        qtbot.keyClick(panel, Qt.Key_2)             # waits for the lock
        assert panel.saving
        release()
        panel.undo_stack.undo()                     # the lock is free, the retry has not run yet
        assert panel.current is second and panel.saving and "undo" in panel.message.text()
        qtbot.waitUntil(lambda: not panel.saving, timeout=10_000)
    qtbot.wait(50)
    assert panel.undo_stack.count() == 2 and panel.undo_stack.index() == 2   # history kept whole
    assert _rankings(root) == [[[first.shown[0]], [first.shown[1]]], [[right], [left]]]
    panel.undo_stack.undo()                         # and undo works again once nothing waits
    assert panel.current.prompt_id == second.prompt_id and len(_rankings(root)) == 1


def test_redo_while_a_decision_waits_is_refused(qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=4)
    create_queue(root)
    panel = open_panel(root)
    first = panel.current
    qtbot.keyClick(panel, Qt.Key_1)
    panel.undo_stack.undo()                         # the first item is back, its decision undone
    assert panel.current.prompt_id == first.prompt_id and _rankings(root) == []
    with holding_the_lock(root) as release:
        qtbot.keyClick(panel, Qt.Key_2)             # a new decision on it waits for the lock
        assert panel.saving
        release()
        panel.undo_stack.redo()                     # would rank it again, and the retry the next item
        assert panel.saving
        qtbot.waitUntil(lambda: not panel.saving, timeout=10_000)
    qtbot.wait(50)
    assert _rankings(root) == [[[first.shown[1]], [first.shown[0]]]]


def test_prefer_edited_while_a_decision_waits_is_refused_and_never_freezes(qtbot, tmp_path, open_panel):
    # Before, "prefer the edited response" committed on the item being saved and the retry then
    # decided the next item blindly; with the lock held it froze the window for the lock timeout.
    root = tmp_path / "ws"
    make_workspace(root, prompts=4)
    create_queue(root)
    panel = open_panel(root)
    item = panel.current
    left, right = item.shown
    with holding_the_lock(root) as release:
        dialog = panel.open_edit_dialog(0)
        started = time.monotonic()
        dialog.preferred_requested.emit("An edited answer", left)   # no decision waits: busy, at once
        assert time.monotonic() - started < 5
        assert not panel.saving and panel.current is item and dialog.isVisible()
        dialog.reject()
        qtbot.keyClick(panel, Qt.Key_1)
        assert panel.saving
        release()
        dialog = panel.open_edit_dialog(0)
        dialog.preferred_requested.emit("An edited answer", left)
        assert dialog.isVisible() and panel.current is item
        dialog.reject()
        qtbot.waitUntil(lambda: not panel.saving, timeout=10_000)
    assert _rankings(root) == [[[left], [right]]]


def test_redo_while_another_process_holds_the_lock_is_refused_at_once_and_kept(qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=3)
    create_queue(root)
    panel = open_panel(root)
    first = panel.current
    qtbot.keyClick(panel, Qt.Key_1)
    panel.undo_stack.undo()
    with holding_the_lock(root):
        started = time.monotonic()
        panel.undo_stack.redo()
        assert time.monotonic() - started < 5       # not the 10 s lock timeout on the GUI thread
        assert "busy" in panel.message.text() and panel.current.prompt_id == first.prompt_id
        qtbot.wait(50)
        assert panel.undo_stack.index() == 0 and panel.undo_stack.canRedo()   # can be redone later
    panel.undo_stack.redo()
    assert len(_rankings(root)) == 1 and panel.current.prompt_id != first.prompt_id


def test_a_termination_signal_quits_the_app_only_once_the_window_has_closed(qtbot, tmp_path, make_window,
                                                                            monkeypatch, capfd):
    # Before, the signal handler quit the event loop right after asking the window to close:
    # a window still saving a decision never ran its shutdown (no last try, no word on stderr,
    # no settings saved).
    import ui.main_window
    from ui.app import close_all_and_quit

    monkeypatch.setattr(ui.main_window, "SAVE_WAIT_S", 0.5)
    quits: list = []
    root = tmp_path / "ws"
    make_workspace(root, prompts=3)
    create_queue(root, name="night")
    window, panel = _rank_window(qtbot, make_window, root)
    with holding_the_lock(root):
        qtbot.keyClick(panel, Qt.Key_1)
        monkeypatch.setattr(QApplication, "quit", staticmethod(lambda: quits.append(window.isVisible())))
        close_all_and_quit(QApplication.instance())
        assert quits == [] and window.isVisible()       # the window says "Saving…" first
        qtbot.waitUntil(lambda: bool(quits), timeout=10_000)
    assert quits == [False] and window._shut_down
    err = capfd.readouterr().err
    assert "night" in err and "not saved" in err


def test_a_termination_signal_while_keep_waiting_is_asked_closes_and_names_the_decision(
        qtbot, tmp_path, make_window, monkeypatch, capfd):
    # Before, the question stayed up and the window never closed (the signal had nobody to answer it).
    import ui.main_window

    monkeypatch.setattr(ui.main_window, "SAVE_WAIT_S", 0.3)
    root = tmp_path / "ws"
    make_workspace(root, prompts=3)
    create_queue(root, name="late")
    window, panel = _rank_window(qtbot, make_window, root)
    with holding_the_lock(root):
        qtbot.keyClick(panel, Qt.Key_1)
        assert window.close() is False
        qtbot.waitUntil(lambda: window.save_box is not None and window.save_box.isVisible(), timeout=10_000)
        assert window.close_without_asking() is True
        assert not window.isVisible() and window.save_box is None
    err = capfd.readouterr().err
    assert "late" in err and "not saved" in err   # named, not discarded as if the user had said so
    assert "discarded" not in panel.message.text()


def test_saving_a_demonstration_while_another_process_writes_never_freezes(qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=3)
    create_queue(root)
    panel = open_panel(root)
    dialog = panel.open_edit_dialog(0)
    with holding_the_lock(root) as release:
        started = time.monotonic()
        dialog.demonstration_requested.emit("A better answer, written by hand.", "demos")
        assert time.monotonic() - started < 5     # not the 10 s lock timeout on the GUI thread
        assert dialog.isVisible() and "busy" in dialog.error.text()   # kept, to try again
        release()
    dialog.demonstration_requested.emit("A better answer, written by hand.", "demos")
    assert not dialog.isVisible()
    with Workspace.open(root) as ws:
        assert ws.conn.execute("SELECT count(*) FROM records").fetchone()[0] == 1
