"""The import wizard, driven through its real pages: preview, mapping, report, import, cancel."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QWizard

from ui.datasets.import_wizard import ImportWizard
from workbench.store import datasets as R
from workbench.store.workspace import Workspace

TABLES = ("datasets", "records", "sources", "prompts", "candidates", "rankings")


@pytest.fixture
def ws(tmp_path):
    w = Workspace.init(tmp_path / "ws")
    yield w
    w.close()


def state(ws: Workspace) -> dict:
    return {t: ws.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def open_wizard(qtbot, ws) -> ImportWizard:
    wizard = ImportWizard(ws.root)
    qtbot.addWidget(wizard)
    wizard.show()
    qtbot.waitExposed(wizard)
    return wizard


def click(qtbot, wizard: ImportWizard, which: QWizard.WizardButton) -> None:
    button = wizard.button(which)
    qtbot.waitUntil(button.isEnabled)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def choose_file(qtbot, wizard: ImportWizard, path: Path) -> None:
    qtbot.keyClicks(wizard.file_page.path_edit, str(path))
    click(qtbot, wizard, QWizard.WizardButton.NextButton)
    assert wizard.currentPage() is wizard.preview_page
    qtbot.waitUntil(lambda: wizard.preview_page.preview is not None and not wizard.preview_page.panel.busy)


def set_name(qtbot, wizard: ImportWizard, name: str) -> None:
    edit = wizard.name_page.name_edit
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Backspace)
    qtbot.keyClicks(edit, name)


def report_rows(wizard: ImportWizard) -> list[tuple[str, str, str]]:
    t = wizard.preview_page.report
    return [tuple(t.item(i, j).text() for j in range(3)) for i in range(t.rowCount())]


def test_preview_remap_and_import(qtbot, ws, tmp_path):
    rows = [{"question": f"How do I sort a list in Python, case {i}?",
             "chosen": "Use sorted(xs) for a new list, or xs.sort() in place.",
             "rejected": "Lists cannot be sorted."} for i in range(120)]
    path = write_jsonl(tmp_path / "helpful.jsonl", rows)
    wizard = open_wizard(qtbot, ws)
    choose_file(qtbot, wizard, path)
    page = wizard.preview_page

    # Without a prompt column the rows look like implicit-prompt pairs that share no prompt.
    assert page.preview.shape == "implicit-preference"
    assert page.table.rowCount() == 50 and page.preview.more
    assert page.table.horizontalHeaderItem(0).text() == "question"
    assert page.mapping_table.item(0, 2).text() == "ignored"
    assert ("helpful.jsonl:1", "chosen") == report_rows(wizard)[0][:2]

    # Map question -> prompt by typing into its combo box, as a keyboard user would.
    combo = page.mapping_combo("question")
    combo.setFocus()
    qtbot.keyClicks(combo, "prompt")
    assert combo.currentData() == "prompt"
    qtbot.waitUntil(lambda: page.preview is not None and page.preview.shape == "preference"
                    and not page.panel.busy)
    assert "preference {prompt, chosen, rejected}" in page.detected.text()
    assert page.table.horizontalHeaderItem(0).text() == "question → prompt"
    assert page.mapping_table.item(0, 2).text() == "as prompt"
    assert page.report.rowCount() == 0
    assert "No problems in the 50 previewed rows" in page.report_label.text()

    click(qtbot, wizard, QWizard.WizardButton.NextButton)
    assert wizard.currentPage() is wizard.name_page
    assert wizard.name_page.name_edit.text() == "helpful"
    assert "question → prompt" in wizard.name_page.summary.text()
    set_name(qtbot, wizard, "helpful-prefs")
    with qtbot.waitSignal(wizard.imported, timeout=30_000) as sig:
        click(qtbot, wizard, QWizard.WizardButton.NextButton)
    assert sig.args == ["helpful-prefs"]
    page4 = wizard.import_page
    qtbot.waitUntil(lambda: wizard.button(QWizard.WizardButton.FinishButton).isEnabled())
    assert "Imported 120 records into “helpful-prefs”" in page4.outcome.text()
    assert not wizard.button(QWizard.WizardButton.BackButton).isEnabled()
    assert not wizard.button(QWizard.WizardButton.CancelButton).isVisible()   # nothing left to cancel

    info = R.get_dataset(ws.conn, "helpful-prefs")
    assert (info.kind, info.rows) == ("preference", 120)
    recs = list(R.iter_records(ws.conn, info))
    assert recs[7].prompt == rows[7]["question"] and recs[7].chosen == rows[7]["chosen"]
    assert recs[7].lineage.line == 8

    qtbot.mouseClick(wizard.button(QWizard.WizardButton.FinishButton), Qt.MouseButton.LeftButton)
    assert not wizard.isVisible()


def test_bad_line_is_reported_and_nothing_is_imported(qtbot, ws, tmp_path):
    rows = [{"prompt": f"Summarise item {i}", "completion": f"Item {i} in one line."} for i in range(80)]
    rows[2]["completion"] = 42                      # line 3: shown by the preview
    lines = [json.dumps(r) for r in rows]
    lines[69] = '{"prompt": "cut off'               # line 70: beyond the preview, found by the import
    path = tmp_path / "sft.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = state(ws)

    wizard = open_wizard(qtbot, ws)
    choose_file(qtbot, wizard, path)
    assert wizard.preview_page.preview.shape == "prompt-completion"
    assert report_rows(wizard) == [("sft.jsonl:3", "completion",
                                    "expected a string or a list of messages, got integer")]
    assert "1 of the 50 previewed rows" in wizard.preview_page.report_label.text()
    assert wizard.preview_page.table.verticalHeaderItem(2).text() == "3"
    assert not wizard.preview_page.table.verticalHeaderItem(2).icon().isNull()

    click(qtbot, wizard, QWizard.WizardButton.NextButton)
    click(qtbot, wizard, QWizard.WizardButton.NextButton)   # Import, without skipping invalid rows
    page = wizard.import_page
    qtbot.waitUntil(lambda: page.error is not None, timeout=30_000)
    assert f"{path}:3: field 'completion': expected a string or a list of messages, got integer" \
        in page.outcome.text()
    assert "nothing was stored" in page.outcome.text()
    assert not wizard.button(QWizard.WizardButton.FinishButton).isEnabled()
    assert state(ws) == before and ws.integrity_check() == "ok"

    # Back, skip invalid rows, import again: both bad lines are listed with file, line and field.
    qtbot.waitUntil(wizard.button(QWizard.WizardButton.BackButton).isEnabled)
    click(qtbot, wizard, QWizard.WizardButton.BackButton)
    click(qtbot, wizard, QWizard.WizardButton.BackButton)
    skip = wizard.preview_page.skip_check
    qtbot.mouseClick(skip, Qt.MouseButton.LeftButton, pos=QPoint(6, skip.height() // 2))
    assert wizard.preview_page.skip_check.isChecked()
    click(qtbot, wizard, QWizard.WizardButton.NextButton)
    with qtbot.waitSignal(wizard.imported, timeout=30_000):
        click(qtbot, wizard, QWizard.WizardButton.NextButton)
    assert "Imported 78 records" in page.outcome.text() and "2 rows skipped" in page.outcome.text()
    skipped = [tuple(page.skipped.item(i, j).text() for j in range(2)) for i in range(page.skipped.rowCount())]
    assert skipped == [("sft.jsonl:3", "completion"), ("sft.jsonl:70", "—")]
    assert "invalid JSON" in page.skipped.item(1, 2).text()
    assert R.get_dataset(ws.conn, "sft").rows == 78


def test_existing_name_is_refused(qtbot, ws, tmp_path):
    path = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "Write a haiku about rain."}])
    from workbench.data.importer import import_file
    import_file(ws, path, "prompts")
    wizard = open_wizard(qtbot, ws)
    qtbot.waitUntil(lambda: "prompts" in wizard.existing_names)
    choose_file(qtbot, wizard, path)
    click(qtbot, wizard, QWizard.WizardButton.NextButton)
    page = wizard.name_page
    assert "already exists" in page.message.text()
    assert not wizard.button(QWizard.WizardButton.NextButton).isEnabled()
    set_name(qtbot, wizard, "bad@name")
    assert "'@'" in page.message.text()
    assert not wizard.button(QWizard.WizardButton.NextButton).isEnabled()
    set_name(qtbot, wizard, "prompts-2")
    assert page.message.text() == ""
    assert wizard.button(QWizard.WizardButton.NextButton).isEnabled()


def test_cancel_mid_import_leaves_nothing(qtbot, ws, tmp_path):
    # CSV goes through the precise reader: a cancel check every 2,000 rows.
    path = tmp_path / "big.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "completion"])
        w.writerows((f"Question number {i}: what is {i} squared?", f"It is {i * i}.") for i in range(200_000))
    before = state(ws)
    wizard = open_wizard(qtbot, ws)
    choose_file(qtbot, wizard, path)
    click(qtbot, wizard, QWizard.WizardButton.NextButton)
    click(qtbot, wizard, QWizard.WizardButton.NextButton)
    page = wizard.import_page
    qtbot.waitUntil(lambda: page.panel.bar.maximum() > 0 and page.panel.bar.value() > 0, timeout=30_000)
    assert page.panel.bar.value() < 1000
    assert not wizard.button(QWizard.WizardButton.BackButton).isEnabled()
    qtbot.mouseClick(page.panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.cancelled, timeout=30_000)
    assert page.outcome.text() == "Import cancelled: nothing was stored."
    assert page.report is None
    assert state(ws) == before and ws.integrity_check() == "ok"
    assert not ws.conn.execute("SELECT 1 FROM datasets WHERE name = 'big'").fetchone()


def test_closing_during_import_cancels_it(qtbot, ws, tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["prompt"])
        w.writerows([f"Prompt {i}"] for i in range(100_000))
    before = state(ws)
    wizard = open_wizard(qtbot, ws)
    choose_file(qtbot, wizard, path)
    click(qtbot, wizard, QWizard.WizardButton.NextButton)
    click(qtbot, wizard, QWizard.WizardButton.NextButton)
    qtbot.waitUntil(lambda: wizard.import_page.panel.bar.value() > 0, timeout=30_000)
    qtbot.mouseClick(wizard.button(QWizard.WizardButton.CancelButton), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not wizard.isVisible(), timeout=30_000)
    assert wizard.import_page.cancelled
    assert state(ws) == before


def test_preview_tooltips_show_the_files_text_never_markup(qtbot, ws, tmp_path):
    """Cell tooltips quote the file: a value that looks like HTML (an <img> naming /dev/zero)
    must be shown as text, or Qt renders it and reads the file it names on hover."""
    from PySide6.QtGui import Qt as GuiQt  # QtGui's Qt namespace holds mightBeRichText

    hostile = "<img src='/dev/zero'> <b>bold</b> — Grüße"
    path = write_jsonl(tmp_path / "hostile.jsonl",
                       [{"prompt": hostile, "chosen": f"<img src='{tmp_path}/x.png'>", "rejected": "<i>no</i>"}])
    wizard = open_wizard(qtbot, ws)
    choose_file(qtbot, wizard, path)
    page = wizard.preview_page
    assert page.preview.shape == "preference"
    tips = [t.item(i, j).toolTip() for t in (page.table, page.stored_table)
            for i in range(t.rowCount()) for j in range(t.columnCount()) if t.item(i, j) is not None]
    assert hostile in [tip.replace("\u200b", "") for tip in tips]
    assert [tip for tip in tips if GuiQt.mightBeRichText(tip)] == []
