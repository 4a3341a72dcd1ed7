"""The import wizard previews what a public layout will store, lets the user name a layout, and
shows the ignored columns prominently."""

from __future__ import annotations

from PySide6.QtWidgets import QWizard

from workbench.store import datasets as R

from .test_import_wizard import click, choose_file, open_wizard, set_name, ws, write_jsonl  # noqa: F401

_Q = "Écris un haïku sur la mer 🌊"
UF = [{"prompt": _Q, "prompt_id": f"id{i}",
       "chosen": [{"role": "user", "content": _Q}, {"role": "assistant", "content": f"Vagues {i}"}],
       "rejected": [{"role": "user", "content": _Q}, {"role": "assistant", "content": "La mer est bleue."}],
       "messages": [{"role": "user", "content": _Q}, {"role": "assistant", "content": f"Vagues {i}"}],
       "score_chosen": 8.5, "score_rejected": 3.0} for i in range(3)]


def stored(page) -> list[list[str]]:
    t = page.stored_table
    return [[t.item(i, j).text() for j in range(t.columnCount())] for i in range(t.rowCount())]


def test_ultrafeedback_preview_shows_the_records_as_stored(qtbot, ws, tmp_path):
    path = write_jsonl(tmp_path / "uf.jsonl", UF)
    wizard = open_wizard(qtbot, ws)
    choose_file(qtbot, wizard, path)
    page = wizard.preview_page
    assert page.preview.shape == "ultrafeedback"
    assert "layout <b>ultrafeedback</b>" in page.detected.text() and "UltraFeedback binarized" in page.detected.text()
    assert page.tabs.currentWidget() is page.stored_table
    assert stored(page)[0] == [f"user: {_Q}", "assistant: Vagues 0", "assistant: La mer est bleue.",
                               "score_chosen 8.5; score_rejected 3"]
    assert [page.stored_table.verticalHeaderItem(i).text() for i in range(3)] == ["1", "2", "3"]
    # The one true extra is shown prominently, not buried in the detection line.
    assert page.ignored_label.isVisibleTo(page) and "prompt_id" in page.ignored_label.text()
    assert "Not imported" in page.ignored_label.text()


def test_choosing_a_layout_in_the_wizard_imports_with_it(qtbot, ws, tmp_path):
    rows = [{"prompt": "How do I pick a lock?", "response_0": "I can't help with that.",
             "response_1": "Use a tension wrench…", "better_response_id": 1, "safer_response_id": 0,
             "is_response_0_safe": True, "is_response_1_safe": False}]
    path = write_jsonl(tmp_path / "pku.jsonl", rows)
    wizard = open_wizard(qtbot, ws)
    choose_file(qtbot, wizard, path)
    page = wizard.preview_page
    assert page.preview.shape == "pku-saferlhf"
    assert stored(page)[0][1:3] == ["Use a tension wrench…", "I can't help with that."]
    page.layout_combo.setCurrentIndex(page.layout_combo.findData("pku-saferlhf-safer"))
    qtbot.waitUntil(lambda: page.preview is not None and page.preview.shape == "pku-saferlhf-safer"
                    and not page.panel.busy)
    assert stored(page)[0][1:3] == ["I can't help with that.", "Use a tension wrench…"]
    assert "asked for with --layout" in page.detected.text()
    click(qtbot, wizard, QWizard.WizardButton.NextButton)
    set_name(qtbot, wizard, "safer")
    with qtbot.waitSignal(wizard.imported, timeout=30_000):
        click(qtbot, wizard, QWizard.WizardButton.NextButton)
    recs = list(R.iter_records(ws.conn, R.get_dataset(ws.conn, "safer")))
    assert [(r.chosen, r.tags) for r in recs] == [("I can't help with that.",
                                                   ("better:rejected", "chosen:safe", "rejected:unsafe"))]


def test_arena_preview_lists_rankings_with_ties_and_a_refused_file_names_its_columns(qtbot, ws, tmp_path):
    conv = lambda a: [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": a}]  # noqa: E731
    rows = [{"conversation_a": conv("4"), "conversation_b": conv("5"), "model_a": "gpt-4", "model_b": "alpaca",
             "winner": "tie (bothbad)", "judge": "arena_user_1"}]
    path = write_jsonl(tmp_path / "arena.jsonl", rows)
    wizard = open_wizard(qtbot, ws)
    choose_file(qtbot, wizard, path)
    page = wizard.preview_page
    assert stored(page) == [["user: 2+2?", "", "", "ranking #1 = #2 of 2 responses by arena_user_1 (all bad)"]]

    bad = write_jsonl(tmp_path / "w.jsonl", [{"prompt": "p", "answer_a": "x", "answer_b": "y", "winner": "a"}])
    wizard2 = open_wizard(qtbot, ws)
    choose_file(qtbot, wizard2, bad)
    text = wizard2.preview_page.detected.text()
    assert "cannot import" in text and "preference signal" in text
    assert all(f"'{c}'" in text for c in ("answer_a", "answer_b", "winner"))
    assert not wizard2.button(QWizard.WizardButton.NextButton).isEnabled()
