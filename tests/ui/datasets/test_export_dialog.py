"""The export dialog, driven through its widgets: every format, snapshots, splits, cancel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from ui.datasets.export_dialog import ExportDialog
from workbench.data import ops
from workbench.data.importer import import_file
from workbench.store import datasets as R
from workbench.store.workspace import Workspace


@pytest.fixture
def ws(tmp_path):
    w = Workspace.init(tmp_path / "ws")
    rows = [{"prompt": f"Explain topic {i % 30} simply.", "chosen": f"A clear answer about topic {i % 30}.",
             "rejected": "I don't know.", "score_chosen": 0.9, "score_rejected": 0.1} for i in range(60)]
    rows += rows[:5]  # five exact duplicates, for the snapshot test
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_file(w, path, "pairs")
    ops.split(w, "pairs", validation=0.2, seed=3)
    yield w
    w.close()


def open_dialog(qtbot, ws, name="pairs") -> ExportDialog:
    dialog = ExportDialog(ws.root, name)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.info is not None and dialog.export_button.isEnabled())
    return dialog


def choose(qtbot, combo, data) -> None:
    """Pick an item the way a keyboard user does: focus the combo and step with the arrow keys."""
    target = combo.findData(data)
    assert target >= 0, data
    combo.setFocus()
    key = Qt.Key.Key_Down if target > combo.currentIndex() else Qt.Key.Key_Up
    while combo.currentIndex() != target:
        qtbot.keyClick(combo, key)


def set_path(qtbot, dialog: ExportDialog, path: Path) -> None:
    dialog.path_edit.selectAll()
    qtbot.keyClick(dialog.path_edit, Qt.Key.Key_Backspace)
    qtbot.keyClicks(dialog.path_edit, str(path))


def export(qtbot, dialog: ExportDialog):
    dialog.report = None
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.report is not None or (dialog.result.isVisible() and not dialog.panel.busy),
                    timeout=30_000)
    return dialog.report


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet", "hf"])
def test_export_each_format_reimports_with_same_rows(qtbot, ws, tmp_path, fmt):
    dialog = open_dialog(qtbot, ws)
    assert "65 rows" in dialog.summary.text()
    choose(qtbot, dialog.format_combo, fmt)
    # The default path follows the format: <workspace>/exports/pairs.<suffix>.
    suffix = {"jsonl": ".jsonl", "json": ".json", "csv": ".csv", "parquet": ".parquet", "hf": ""}[fmt]
    assert dialog.output == ws.root / "exports" / f"pairs{suffix}"
    report = export(qtbot, dialog)
    assert report is not None, dialog.result.text()
    out = Path(report.path)
    assert out.exists() and report.rows == 65
    assert str(out) in dialog.result.text() and report.sha256 in dialog.result.text()
    back = import_file(ws, out, f"back-{fmt}")
    assert back.rows == 65
    if fmt == "hf":  # a split dataset exports as a DatasetDict and comes back with its splits
        info = R.get_dataset(ws.conn, f"back-{fmt}")
        original = R.get_dataset(ws.conn, "pairs")
        assert (info.train, info.validation) == (original.train, original.validation)


def test_snapshot_and_split_choices(qtbot, ws, tmp_path):
    with ws.transaction() as conn:
        snap = R.freeze(conn, "pairs", "before dedup")
    ops.dedup(ws, "pairs")
    dialog = open_dialog(qtbot, ws)
    assert dialog.snapshot_combo.count() == 2
    assert dialog.snapshot_combo.itemText(1).startswith(f"Snapshot {snap.hash[:8]} · 65 rows")
    assert "before dedup" in dialog.snapshot_combo.itemText(1)

    choose(qtbot, dialog.snapshot_combo, snap.hash)
    assert dialog.output.name == f"pairs-{snap.hash[:8]}.jsonl"
    report = export(qtbot, dialog)
    assert (report.rows, report.snapshot) == (65, snap.hash)   # the frozen rows, duplicates included

    choose(qtbot, dialog.snapshot_combo, None)
    choose(qtbot, dialog.split_combo, "validation")
    out = tmp_path / "custom" / "val.jsonl"
    set_path(qtbot, dialog, out)
    choose(qtbot, dialog.format_combo, "csv")          # a typed path keeps its name, the suffix follows
    assert dialog.output == tmp_path / "custom" / "val.csv"
    report = export(qtbot, dialog)
    assert report.rows == R.get_dataset(ws.conn, "pairs").validation > 0
    assert Path(report.path).read_text(encoding="utf-8").count("\n") == report.rows + 1


def test_existing_output_asks_before_replacing(qtbot, ws, tmp_path):
    out = tmp_path / "exists.jsonl"
    out.write_text("keep me\n", encoding="utf-8")
    dialog = open_dialog(qtbot, ws)
    set_path(qtbot, dialog, out)
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: isinstance(QApplication.activeModalWidget(), QMessageBox))
    box = QApplication.activeModalWidget()
    assert "already exists" in box.text()
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    assert out.read_text(encoding="utf-8") == "keep me\n" and not dialog.panel.busy

    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: isinstance(QApplication.activeModalWidget(), QMessageBox))
    box = QApplication.activeModalWidget()
    replace = next(b for b in box.buttons() if b.text() == "Replace")
    qtbot.mouseClick(replace, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=30_000)
    assert out.read_text(encoding="utf-8").count("\n") == 65


def test_cancel_export_writes_nothing(qtbot, tmp_path):
    w = Workspace.init(tmp_path / "big-ws")
    try:
        path = tmp_path / "big.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for i in range(150_000):
                f.write(json.dumps({"prompt": f"Prompt number {i}", "completion": f"Answer number {i}"}) + "\n")
        import_file(w, path, "big")
        dialog = open_dialog(qtbot, w, "big")
        out = tmp_path / "out" / "big.jsonl"
        set_path(qtbot, dialog, out)
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dialog.panel.bar.maximum() > 0 and dialog.panel.bar.value() > 0, timeout=30_000)
        qtbot.mouseClick(dialog.panel.cancel_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not dialog.panel.busy, timeout=30_000)
        assert dialog.report is None
        assert dialog.result.text() == "Export cancelled; no file was written."
        assert not out.exists() and list(out.parent.iterdir()) == []   # no temporary left either
    finally:
        w.close()


def test_a_folder_that_is_not_an_export_is_refused_without_asking(qtbot, ws, tmp_path):
    """The dialog uses the core's rule: it asks only where a replace is allowed at all."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"JPEG")
    dialog = open_dialog(qtbot, ws)
    choose(qtbot, dialog.format_combo, "hf")
    for target in (photos, ws.root, tmp_path):   # a folder of the user's, the workspace, a folder holding it
        set_path(qtbot, dialog, target)
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
        assert dialog.confirm_box is None and not dialog.panel.busy
        assert dialog.result.isVisible() and dialog.result.text().startswith("Not exported:")
        assert str(target) in dialog.result.text()
    assert (photos / "holiday.jpg").read_bytes() == b"JPEG" and sorted(p.name for p in photos.iterdir()) == ["holiday.jpg"]

    # A previous export folder is offered for replacing, and replaced.
    out = tmp_path / "pairs_hf"
    set_path(qtbot, dialog, out)
    first = export(qtbot, dialog)
    assert first is not None, dialog.result.text()
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: isinstance(QApplication.activeModalWidget(), QMessageBox))
    box = QApplication.activeModalWidget()
    dialog.report = None
    qtbot.mouseClick(next(b for b in box.buttons() if b.text() == "Replace"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=30_000)
    assert dialog.report.sha256 == first.sha256


def test_csv_formula_option(qtbot, tmp_path):
    import csv

    w = Workspace.init(tmp_path / "ws")
    try:
        path = tmp_path / "f.jsonl"
        path.write_text(json.dumps({"prompt": "=cmd|' /C calc'!A0", "completion": "@SUM(1)"}) + "\n", encoding="utf-8")
        import_file(w, path, "f")
        dialog = open_dialog(qtbot, w, "f")
        assert not dialog.formulas_check.isVisibleTo(dialog)      # only a CSV option
        choose(qtbot, dialog.format_combo, "csv")
        assert dialog.formulas_check.isVisibleTo(dialog) and dialog.formulas_check.isChecked()
        with open(export(qtbot, dialog).path, encoding="utf-8", newline="") as f:
            assert next(csv.DictReader(f)) == {"prompt": "'=cmd|' /C calc'!A0", "completion": "'@SUM(1)"}
        qtbot.mouseClick(dialog.formulas_check, Qt.MouseButton.LeftButton)
        set_path(qtbot, dialog, tmp_path / "raw.csv")
        with open(export(qtbot, dialog).path, encoding="utf-8", newline="") as f:
            assert next(csv.DictReader(f)) == {"prompt": "=cmd|' /C calc'!A0", "completion": "@SUM(1)"}
    finally:
        w.close()


@pytest.mark.parametrize("fmt, suffix", [("llamafactory-sharegpt", ".llamafactory-sharegpt"),
                                         ("openrlhf", ".openrlhf.jsonl"), ("labelstudio", ".labelstudio.json")])
def test_tool_formats_from_the_dialog(qtbot, ws, fmt, suffix):
    dialog = open_dialog(qtbot, ws)
    choose(qtbot, dialog.format_combo, fmt)
    assert dialog.output == ws.root / "exports" / f"pairs{suffix}"
    report = export(qtbot, dialog)
    assert report is not None, dialog.result.text()
    assert report.rows == 65 and report.usage and report.usage in dialog.result.text()
    if fmt.startswith("llamafactory"):
        info = json.loads((Path(report.path) / "dataset_info.json").read_text(encoding="utf-8"))
        assert info["pairs"]["ranking"] is True


def test_formats_a_dataset_kind_cannot_use_are_greyed_out(qtbot, tmp_path):
    w = Workspace.init(tmp_path / "ws")
    try:
        path = tmp_path / "prompts.jsonl"
        path.write_text("".join(json.dumps({"prompt": f"Beschreibe Nr. {i} 🐦"}) + "\n" for i in range(3)),
                        encoding="utf-8")
        import_file(w, path, "prompts")
        dialog = open_dialog(qtbot, w, "prompts")
        model = dialog.format_combo.model()
        enabled = {dialog.format_combo.itemData(i): model.item(i).isEnabled() for i in range(model.rowCount())}
        assert enabled == {"jsonl": True, "json": True, "csv": True, "parquet": True, "hf": True,
                           "llamafactory-alpaca": True, "llamafactory-sharegpt": False, "openrlhf": True,
                           "labelstudio": False}
        index = dialog.format_combo.findData("labelstudio")
        assert "preference" in dialog.format_combo.itemData(index, Qt.ItemDataRole.ToolTipRole)
    finally:
        w.close()


def test_rows_just_frozen_are_offered_as_that_snapshot(qtbot, ws):
    """Right after Freeze the current rows are the snapshot's: the dialog says so and picks it."""
    with ws.transaction() as conn:
        snap = R.freeze(conn, "pairs")
    dialog = open_dialog(qtbot, ws)
    assert dialog.snapshot_combo.itemText(0) == f"Current rows (65, the same as snapshot {snap.hash[:8]})"
    assert dialog.snapshot == snap.hash and dialog.output.name == f"pairs-{snap.hash[:8]}.jsonl"
    assert export(qtbot, dialog).snapshot == snap.hash
    dialog.close()

    ops.split(ws, "pairs", validation=0.5, seed=11)      # a split changes: no longer the snapshot's rows
    info = R.get_dataset(ws.conn, "pairs")
    assert not R.is_current(ws.conn, info, snap)
    dialog = open_dialog(qtbot, ws)
    assert dialog.snapshot_combo.itemText(0) == "Current rows (65, not frozen)" and dialog.snapshot is None
    dialog.close()

    with ws.transaction() as conn:                       # delete one row: not the same either
        R.set_deleted(conn, [next(R.iter_records(conn, info)).id], True)
        again = R.freeze(conn, "pairs")
    assert R.is_current(ws.conn, R.get_dataset(ws.conn, "pairs"), again)
    assert not R.is_current(ws.conn, R.get_dataset(ws.conn, "pairs"), snap)
