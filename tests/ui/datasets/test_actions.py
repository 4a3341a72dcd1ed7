"""Dedup, split and freeze through their dialogs, with the confirmation answered."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from ui.datasets.actions import DedupDialog, FreezeDialog, SplitDialog
from workbench.data import ops
from workbench.data.importer import import_file
from workbench.store import datasets as R
from workbench.store.workspace import Workspace


@pytest.fixture
def ws(tmp_path):
    w = Workspace.init(tmp_path / "ws")
    rows = []
    for i in range(40):
        # Each prompt has two answers, so the split has groups of two to keep together.
        rows.append({"prompt": f"How do I reverse a list? (variant {i})", "completion": "Use xs[::-1]."})
        rows.append({"prompt": f"How do I reverse a list? (variant {i})", "completion": "Call xs.reverse()."})
    rows += rows[:6]                                                     # 6 exact duplicates
    rows.append({"prompt": "HOW do I reverse a list?  (variant 7)", "completion": "use xs[::-1]."})  # normalized
    path = tmp_path / "sft.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_file(w, path, "sft")
    yield w
    w.close()


def show(qtbot, dialog):
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.info is not None and not dialog.panel.busy, timeout=10_000)
    return dialog


def answer(qtbot, dialog, accept: bool) -> None:
    """Answer the confirmation box the dialog opened (found as the active modal widget)."""
    qtbot.waitUntil(lambda: isinstance(QApplication.activeModalWidget(), QMessageBox))
    box = QApplication.activeModalWidget()
    assert box is dialog.confirm_box
    button = box.defaultButton() if accept else box.button(QMessageBox.StandardButton.Cancel)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_dedup_counts_first_then_removes_on_confirmation(qtbot, ws):
    dialog = show(qtbot, DedupDialog(ws.root, "sft"))
    assert "87 rows" in dialog.summary.text()
    qtbot.waitUntil(lambda: dialog.duplicates is not None)
    assert dialog.duplicates == 6
    assert "6 of 87 rows are exact duplicates" in dialog.preview.text()
    assert dialog.primary.text() == "Remove 6 duplicates…"

    # Normalized mode also catches the re-cased, re-spaced copy.
    dialog.mode_combo.setFocus()
    qtbot.keyClick(dialog.mode_combo, Qt.Key.Key_Down)
    assert dialog.mode == "normalized"
    qtbot.waitUntil(lambda: dialog.duplicates == 7 and not dialog.panel.busy)

    # Cancelling the confirmation changes nothing.
    qtbot.mouseClick(dialog.primary, Qt.MouseButton.LeftButton)
    answer(qtbot, dialog, accept=False)
    assert R.get_dataset(ws.conn, "sft").rows == 87

    qtbot.mouseClick(dialog.primary, Qt.MouseButton.LeftButton)
    assert "Remove 7 normalized duplicate rows" in dialog.confirm_box.text()
    assert "restore" in dialog.confirm_box.informativeText()
    with qtbot.waitSignal(dialog.changed, timeout=10_000) as sig:
        answer(qtbot, dialog, accept=True)
    assert sig.args == ["sft"]
    assert "Removed 7 normalized duplicates" in dialog.result.text()
    assert "87 to 80 rows" in dialog.result.text() and "restore" in dialog.result.text()
    info = R.get_dataset(ws.conn, "sft")
    assert (info.rows, info.deleted) == (80, 7)
    assert not dialog.primary.isEnabled()


def test_split_previews_grouping_then_applies(qtbot, ws):
    dialog = show(qtbot, SplitDialog(ws.root, "sft"))
    qtbot.waitUntil(lambda: dialog.plan is not None)
    plan = dialog.plan
    assert plan.total == 87 and plan.shared_prompts == 40 and plan.largest_group >= 2
    assert "prompts have several rows" in dialog.preview.text()

    # Type a new share: 25 %, and a seed; the preview follows (debounced, off the GUI thread).
    dialog.fraction_spin.selectAll()
    qtbot.keyClicks(dialog.fraction_spin, "25")
    dialog.seed_spin.selectAll()
    qtbot.keyClicks(dialog.seed_spin, "7")
    qtbot.waitUntil(lambda: dialog.plan is not None and dialog.plan.validation_fraction == 0.25
                    and dialog.plan.seed == 7, timeout=10_000)
    expected = ops.plan_split(ws.conn, R.get_dataset(ws.conn, "sft"), validation=0.25, seed=7)
    assert (dialog.plan.train, dialog.plan.validation) == (expected.train, expected.validation)
    assert f"Train {expected.train:,} rows" in dialog.preview.text()

    qtbot.waitUntil(dialog.primary.isEnabled)
    qtbot.mouseClick(dialog.primary, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(dialog.changed, timeout=10_000):
        answer(qtbot, dialog, accept=True)
    info = R.get_dataset(ws.conn, "sft")
    assert (info.train, info.validation) == (expected.train, expected.validation)
    assert f"{expected.validation:,} validation rows" in dialog.result.text()
    # No prompt on both sides.
    sides = {}
    for rec in R.iter_records(ws.conn, info):
        sides.setdefault(ops.prompt_key(rec.prompt), set()).add(rec.split)
    assert all(len(s) == 1 for s in sides.values())


def test_freeze_creates_then_reports_existing_snapshot(qtbot, ws):
    dialog = show(qtbot, FreezeDialog(ws.root, "sft"))
    assert "No snapshot yet" in dialog.preview.text()
    qtbot.keyClicks(dialog.note_edit, "SFT run 1")
    with qtbot.waitSignal(dialog.changed, timeout=10_000):
        qtbot.mouseClick(dialog.primary, Qt.MouseButton.LeftButton)
    snap = R.list_snapshots(ws.conn, "sft")[0]
    assert dialog.created is True
    assert f"Snapshot {snap.hash[:12]} created: 87 rows frozen (“SFT run 1”)" in dialog.result.text()
    # The full hash is readable whole (a 64-character word in the wrapped label was clipped) ...
    field = dialog.hash_field
    assert field.isVisible() and field.text() == snap.hash and field.isReadOnly()
    assert field.width() >= field.fontMetrics().horizontalAdvance(snap.hash)
    assert snap.hash not in dialog.result.text()
    # ... and the dialog no longer says "No snapshot yet".
    qtbot.waitUntil(lambda: not dialog.panel.busy and "No snapshot yet" not in dialog.preview.text(), timeout=10_000)
    assert f"{snap.hash[:12]}, made now" in dialog.preview.text()

    # Freezing the unchanged dataset again makes no new snapshot and says which one holds it.
    qtbot.waitUntil(dialog.primary.isEnabled)
    with qtbot.assertNotEmitted(dialog.changed):
        qtbot.mouseClick(dialog.primary, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dialog.created is False, timeout=10_000)
    assert f"Nothing changed since snapshot {snap.hash[:12]}" in dialog.result.text()
    assert len(R.list_snapshots(ws.conn, "sft")) == 1


def test_closing_while_scanning_cancels(qtbot, ws):
    dialog = DedupDialog(ws.root, "sft")
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.reject()                      # right away: the info load may still run
    qtbot.waitUntil(lambda: not dialog.isVisible() and not dialog.panel.busy, timeout=10_000)
    assert R.get_dataset(ws.conn, "sft").rows == 87


def test_one_duplicate_is_worded_in_the_singular(qtbot, tmp_path):
    w = Workspace.init(tmp_path / "one")
    path = tmp_path / "one.jsonl"
    rows = [{"prompt": "Wie heißt du?", "completion": "Ich heiße Ada."}] * 2 + \
        [{"prompt": "¿Qué hora es?", "completion": "Son las tres."}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    import_file(w, path, "one")
    try:
        dialog = show(qtbot, DedupDialog(w.root, "one"))
        qtbot.waitUntil(lambda: dialog.duplicates is not None)
        assert dialog.primary.text() == "Remove 1 duplicate…"       # was "Remove 1 duplicates…"
        assert dialog.preview.text().startswith("1 of 3 rows is an exact duplicate of an earlier row.")
        assert "the later copy will be removed" in dialog.preview.text()
        qtbot.mouseClick(dialog.primary, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: isinstance(QApplication.activeModalWidget(), QMessageBox))
        box = QApplication.activeModalWidget()
        assert box.defaultButton().text() == "Remove 1 row"          # was "Remove 1 rows"
        assert "Remove 1 exact duplicate row from" in box.text()
        answer(qtbot, dialog, accept=False)
    finally:
        w.close()



def test_export_says_when_the_current_rows_are_a_snapshot(qtbot, ws):
    """After Freeze, the rows *are* the snapshot: "Current rows (87, not frozen)" beside it misled;
    now the entry says which snapshot they equal."""
    from ui.datasets.export_dialog import ExportDialog

    # One dialog, re-read after each change (as choosing the dataset again does): a fresh
    # dialog per state left several half-torn-down dialogs beside a running load.
    dialog = ExportDialog(ws.root, "sft")
    qtbot.addWidget(dialog)
    dialog.show()

    def items():
        if dialog.info is not None:
            qtbot.waitUntil(lambda: not dialog.panel.busy, timeout=10_000)
            dialog.info = None
            dialog._on_dataset_changed(dialog.dataset_combo.currentIndex())
        qtbot.waitUntil(lambda: dialog.info is not None and not dialog.panel.busy, timeout=10_000)
        return [(dialog.snapshot_combo.itemText(i), dialog.snapshot_combo.itemData(i))
                for i in range(dialog.snapshot_combo.count())]

    assert items() == [("Current rows (87, not frozen)", None)]
    with ws.transaction() as conn:
        snap = R.freeze(conn, "sft")
    listed = items()
    assert listed[0] == (f"Current rows (87, the same as snapshot {snap.hash[:8]})", None)
    assert [data for _text, data in listed] == [None, snap.hash]
    assert R.is_current(ws.conn, R.get_dataset(ws.conn, "sft"), snap)
    ops.dedup(ws, "sft")                                   # changed since: the current rows are offered again
    assert not R.is_current(ws.conn, R.get_dataset(ws.conn, "sft"), snap)
    listed = items()
    assert listed[0] == ("Current rows (81, not frozen)", None) and listed[1][1] == snap.hash
    with ws.transaction() as conn:                          # a re-split also differs from the snapshot
        snap2 = R.freeze(conn, "sft")
        first = next(R.iter_records(conn, R.get_dataset(conn, "sft")))
        R.set_splits(conn, [(first.id, "validation" if first.split != "validation" else "train")])
    assert snap2.hash != snap.hash and not R.is_current(ws.conn, R.get_dataset(ws.conn, "sft"), snap2)
