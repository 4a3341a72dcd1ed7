"""The Rank page driven from the keyboard: decisions, commit-before-next, undo/redo, flags, notes, k-wise."""

import json

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow

from workbench.store import annotations as A
from workbench.store.workspace import Workspace

from .conftest import activate, create_queue, make_workspace


def rows(root):
    with Workspace.open(root) as ws:
        return ws.conn.execute("SELECT prompt_id, ordering, all_bad, note, flags, shown, queue_id FROM rankings"
                               " ORDER BY id").fetchall()


def test_pairwise_keys_record_each_decision_before_the_next_item(qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=8)
    qid = create_queue(root)
    panel = open_panel(root)
    assert panel.queue.id == qid and panel.stack.currentIndex() == 1
    seen = []

    def on_shown(item):
        # The decision that made this item appear is already in the workspace (another connection).
        seen.append((item.prompt_id if item else None, len(rows(root))))

    panel.item_shown.connect(on_shown)
    expected = []
    for key, mod in ((Qt.Key_1, None), (Qt.Key_B, None), (Qt.Key_A, None), (Qt.Key_2, None), (Qt.Key_T, None),
                     (Qt.Key_X, None)):
        item = panel.current
        with qtbot.waitSignal(panel.item_painted, timeout=5000):
            qtbot.keyClick(panel, key)
        a, b = item.shown
        expected.append({Qt.Key_1: [[a], [b]], Qt.Key_A: [[a], [b]], Qt.Key_2: [[b], [a]], Qt.Key_B: [[b], [a]],
                         Qt.Key_T: [sorted([a, b])], Qt.Key_X: [sorted([a, b])]}[key])
    got = rows(root)
    assert [json.loads(r[1]) for r in got] == [[sorted(g) for g in e] for e in expected]
    assert [r[2] for r in got] == [0, 0, 0, 0, 0, 1]
    assert all(r[6] == qid and len(json.loads(r[5])) == 2 for r in got)
    assert [n for _, n in seen] == [1, 2, 3, 4, 5, 6]
    # The shown order is what was on screen, left to right.
    assert "Saved: both bad" in panel.last_label.text()
    # Skip: nothing ranked, the item goes to the back.
    skipped = panel.current.prompt_id
    qtbot.keyClick(panel, Qt.Key_S)
    assert len(rows(root)) == 6 and panel.current.prompt_id != skipped
    qtbot.keyClick(panel, Qt.Key_1)
    assert panel.current.prompt_id == skipped and panel.tier_label.text() == "skipped earlier"
    qtbot.keyClick(panel, Qt.Key_1)
    assert panel.current is None and panel.empty_title.text() == "All done in this queue"


def test_undo_and_redo_with_ctrl_z(qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=4)
    create_queue(root)
    panel = open_panel(root)
    first = panel.current.prompt_id
    qtbot.keyClick(panel, Qt.Key_1)
    second = panel.current.prompt_id
    qtbot.keyClick(panel, Qt.Key_2)
    assert len(rows(root)) == 2 and panel.undo_stack.count() == 2
    qtbot.keyClick(panel, Qt.Key_Z, Qt.ControlModifier)
    assert panel.current.prompt_id == second and len(rows(root)) == 1
    assert panel.last_label.text().startswith("Undone")
    qtbot.keyClick(panel, Qt.Key_Z, Qt.ControlModifier)
    assert panel.current.prompt_id == first and rows(root) == []
    qtbot.keyClick(panel, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert panel.current.prompt_id == second and len(rows(root)) == 1
    # A new decision clears the redo history, as everywhere else.
    qtbot.keyClick(panel, Qt.Key_T)
    assert panel.undo_stack.count() == 2 and not panel.undo_stack.canRedo()


def test_undo_shortcut_yields_to_the_windows_edit_menu(qtbot, tmp_path):
    """Inside a window whose Edit > Undo owns Ctrl+Z, the page's own binding steps aside (else neither fires)."""
    from ui.ranking.panel import RankingPanel

    root = tmp_path / "ws"
    make_workspace(root, prompts=3)
    create_queue(root)
    window = QMainWindow()
    qtbot.addWidget(window)
    panel = RankingPanel()
    window.setCentralWidget(panel)
    undo = panel.undo_stack.createUndoAction(window)
    undo.setShortcuts(QKeySequence.StandardKey.Undo)
    window.addAction(undo)
    window.resize(1000, 700)
    window.show()
    qtbot.waitExposed(window)
    panel.set_workspace(root)
    activate(qtbot, panel)
    assert not any(sc.isEnabled() for sc in panel._undo_shortcuts)
    first = panel.current.prompt_id
    qtbot.keyClick(panel, Qt.Key_1)
    qtbot.keyClick(panel, Qt.Key_Z, Qt.ControlModifier)
    assert panel.current.prompt_id == first and rows(root) == []
    assert isinstance(undo, QAction)
    panel.shutdown()


def test_flags_note_and_typing_in_the_note_does_not_decide(qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=3)
    create_queue(root)
    panel = open_panel(root)
    qtbot.keyClick(panel, Qt.Key_U)
    qtbot.keyClick(panel, Qt.Key_F)
    assert panel.flag_buttons["unsafe"].isChecked() and panel.flag_buttons["factual-error"].isChecked()
    qtbot.keyClick(panel, Qt.Key_N)
    assert panel.note.hasFocus()
    qtbot.keyClicks(panel.note, "B is wrong about tabs")     # letters typed here are text, not decisions
    assert rows(root) == [] and panel.note.text() == "B is wrong about tabs"
    qtbot.keyClick(panel.note, Qt.Key_Return)                 # back to deciding
    assert not panel.note.hasFocus()
    qtbot.keyClick(panel, Qt.Key_A)
    (r,) = rows(root)
    assert r[3] == "B is wrong about tabs" and json.loads(r[4]) == ["factual-error", "unsafe"]
    # Flags and note start empty on the next item.
    assert panel.note.text() == "" and not any(b.isChecked() for b in panel.flag_buttons.values())


def test_kwise_number_keys_drag_enter_and_backspace(qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=3, k=4)
    create_queue(root, mode="kwise", k=4)
    panel = open_panel(root)
    assert panel._order_row.isVisible() and panel.cheatsheet.mode == "kwise"
    item = panel.current
    qtbot.keyClick(panel, Qt.Key_3)
    qtbot.keyClick(panel, Qt.Key_1)
    assert panel.order_view.ranks() == {2: 1, 0: 2}
    assert [c.rank.text() for c in panel.columns.columns[:4]] == ["2nd", "", "1st", ""]
    qtbot.keyClick(panel, Qt.Key_Return)              # incomplete: nothing saved
    assert rows(root) == []
    qtbot.keyClick(panel, Qt.Key_Backspace)
    assert panel.order_view.ranks() == {}
    for key in (Qt.Key_4, Qt.Key_2, Qt.Key_1):          # the last one left is ranked last
        qtbot.keyClick(panel, key)
    assert panel.order_view.complete and panel.kwise_commit.isEnabled()
    qtbot.keyClick(panel, Qt.Key_Return)
    (r,) = rows(root)
    assert json.loads(r[1]) == [[item.shown[3]], [item.shown[1]], [item.shown[0]], [item.shown[2]]]
    # Dragging a chip reorders (the drop moves the row in the list's model): the order is then explicit.
    item = panel.current
    chips = panel.order_view.chips
    assert chips.model().moveRow(QModelIndex(), 3, QModelIndex(), 0)
    qtbot.waitUntil(lambda: panel.order_view.complete)
    assert panel.order_view.order() == [3, 0, 1, 2]
    qtbot.mouseClick(panel.kwise_commit, Qt.LeftButton)
    assert json.loads(rows(root)[1][1]) == [[item.shown[i]] for i in (3, 0, 1, 2)]


def test_resume_where_the_annotator_left_off(qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=5)
    create_queue(root)
    panel = open_panel(root)
    order = panel.queue.upcoming(5)
    qid = panel.queue.id
    for key in (Qt.Key_1, Qt.Key_2, Qt.Key_S):
        qtbot.keyClick(panel, key)
    panel.shutdown()
    again = open_panel(root)
    assert again.queue.id == qid
    assert again.current.prompt_id == order[3]
    # Same item, same sides.
    assert again.current.shown == again.queue.build_item(order[3]).shown
    with Workspace.open(root) as ws:
        assert len(A.rankings(ws.conn)) == 2


def test_wal_checkpoint_runs_off_the_gui_thread(qtbot, tmp_path, open_panel, monkeypatch):
    """The page's connection never checkpoints inside a decision's commit; its timer does it on a thread."""
    import ui.ranking.panel as P

    root = tmp_path / "ws"
    make_workspace(root, prompts=4)
    create_queue(root)
    panel = open_panel(root)
    assert panel.ws.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    qtbot.keyClick(panel, Qt.Key_1)                       # committed to the WAL only
    db_file = panel.ws.db_path
    before = db_file.stat().st_mtime_ns
    panel._on_timer()
    assert panel._checkpoint is None                       # a small WAL is left alone
    monkeypatch.setattr(P, "CHECKPOINT_WAL_BYTES", 1)
    panel._on_timer()
    assert panel._checkpoint is not None and panel._checkpoint.name == "wal-checkpoint"
    panel._checkpoint.join(10)
    assert db_file.stat().st_mtime_ns != before            # the decision was copied into the database file


def test_a_job_ending_keeps_the_half_made_decision(qtbot, tmp_path, open_panel):
    """A generation job finishing (here a held probe job, cancelled from the strip) while the
    annotator has typed a note and set a flag must not re-show the item and wipe them."""
    from workbench.jobs.supervisor import Supervisor

    root = tmp_path / "ws"
    make_workspace(root, prompts=3)
    create_queue(root)
    panel = open_panel(root)
    sup = Supervisor(root)
    handle = sup.start("probe", {"hold_s": 60})
    panel.job_strip.follow(sup, handle.run_id, handle.path, "Holding the device")
    shown = panel.current
    qtbot.keyClick(panel, Qt.Key_U)
    qtbot.keyClick(panel, Qt.Key_N)
    qtbot.keyClicks(panel.note, "half written")
    qtbot.keyClick(panel.note, Qt.Key_Return)
    qtbot.mouseClick(panel.job_strip.cancel_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.job_strip.status == "cancelled", timeout=60_000)
    assert panel.current is shown
    assert panel.note.text() == "half written" and panel.flag_buttons["unsafe"].isChecked()
    activate(qtbot, panel)
    qtbot.keyClick(panel, Qt.Key_A)
    (r,) = rows(root)
    assert r[3] == "half written" and json.loads(r[4]) == ["unsafe"]


def test_f1_on_the_rank_page_opens_the_keyboard_shortcuts_dialog(qtbot, tmp_path):
    """The README promises F1 for Help > Keyboard Shortcuts; on the Rank page it toggled the cheat sheet."""
    from PySide6.QtWidgets import QApplication

    from ui.main_window import MainWindow
    from ui.shortcuts_dialog import ShortcutsDialog

    root = tmp_path / "ws"
    make_workspace(root, prompts=2)
    create_queue(root)
    window = MainWindow(workspace_path=root, gpu_probe_delay_ms=None, demo_dir=tmp_path / "demo")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    page = window.show_page("Rank")
    qtbot.waitUntil(lambda: page.current is not None)
    window.activateWindow()
    page.setFocus()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.keyClick(page, Qt.Key_F1)
    qtbot.waitUntil(lambda: any(d.isVisible() for d in window.findChildren(ShortcutsDialog)), timeout=5000)
    assert not page.cheatsheet.expanded
    for d in window.findChildren(ShortcutsDialog):
        d.close()
    window.shutdown()
