"""The Rank page's views and dialogs through the real widgets: reveal, diff, scrolling, cheat sheet,
edit, queue set-up, export, quality, the job dialogs' checks."""

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QLabel, QTableWidget

from workbench.store import datasets as D
from workbench.store.queue import PromptSource
from workbench.store.records import Record
from workbench.store.workspace import Workspace

from ui.ranking.diff import similarity, word_diff

from .conftest import activate, create_queue, make_workspace


def test_word_diff():
    a, b = "the cat sat on the mat", "the dog sat on a mat today"
    da, db = word_diff(a, b)
    assert [a[s:e] for s, e in da] == ["cat", "the"]
    assert [b[s:e] for s, e in db] == ["dog", "a", "today"]
    assert word_diff("same words", "same words") == ([], [])
    assert word_diff("one two three", "zero") == ([(0, 13)], [(0, 4)])   # a changed run is one highlight
    assert similarity("a b c d", "a b c d") == 1.0 and similarity("", "") == 1.0 and similarity("a", "b") == 0.0


def test_models_hidden_until_revealed_after_deciding(qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=3)
    create_queue(root)
    panel = open_panel(root)
    texts = [w.text() for w in panel.findChildren(QLabel)]
    assert not any("m0" in t or "m1" in t for t in texts)         # model names are nowhere on screen
    assert not panel.reveal_button.isEnabled()
    qtbot.keyClick(panel, Qt.Key_R)
    assert panel.reveal_label.text() == ""
    decided = panel.current
    qtbot.keyClick(panel, Qt.Key_2)
    assert panel.reveal_button.isEnabled() and panel.reveal_label.text() == ""
    qtbot.keyClick(panel, Qt.Key_R)
    models = [c.model for c in decided.candidates]
    assert panel.reveal_label.text() == f"A: {models[0]}   B: {models[1]}"
    qtbot.keyClick(panel, Qt.Key_R)
    assert panel.reveal_label.text() == ""


def test_the_saved_line_says_the_rationale_and_flags_were_stored(qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=3)
    create_queue(root)
    panel = open_panel(root)
    panel.note.setText("B cites the docs")
    qtbot.keyClick(panel, Qt.Key_U)
    qtbot.keyClick(panel, Qt.Key_2)
    assert panel.last_label.text().startswith("Saved: B preferred with rationale and flag unsafe \u00b7 ranking #")
    assert panel.last_label.toolTip() == "Rationale: B cites the docs"
    qtbot.keyClick(panel, Qt.Key_1)
    assert panel.last_label.text().startswith("Saved: A preferred \u00b7 ranking #")


def test_diff_highlight_and_synchronized_scrolling(qtbot, tmp_path, open_panel):
    from workbench.store import annotations as A

    root = tmp_path / "ws"
    with Workspace.init(root) as ws:
        with ws.transaction() as c:
            pid = A.add_prompt(c, "Write a long answer.")
            A.add_candidate(c, pid, "\n\n".join(f"Paragraph {i} says the river is calm." for i in range(80)))
            A.add_candidate(c, pid, "\n\n".join(f"Paragraph {i} says the river is wild." for i in range(40)))
    create_queue(root)
    panel = open_panel(root)
    cols = panel.columns.columns
    qtbot.keyClick(panel, Qt.Key_D)
    assert panel.diff_button.isChecked()
    for col in cols[:2]:
        text = col.body.toPlainText()
        own = "calm." if "calm" in text else "wild."
        marked = [text[s:e] for s, e in col.body.highlights]
        assert own in marked and not any(("calm" if own == "wild." else "wild") in m for m in marked)
    qtbot.keyClick(panel, Qt.Key_D)
    assert cols[0].body.highlights == [] and cols[0].body.markdown_text.startswith("Paragraph 0")
    # Scrolling one column scrolls the other to the same relative place.
    qtbot.waitUntil(lambda: cols[0].body.verticalScrollBar().maximum() > 0
                    and cols[1].body.verticalScrollBar().maximum() > 0)
    bar0, bar1 = cols[0].body.verticalScrollBar(), cols[1].body.verticalScrollBar()
    bar0.setValue(bar0.maximum() // 2)
    assert abs(bar1.value() / bar1.maximum() - 0.5) < 0.05
    bar1.setValue(bar1.maximum())
    assert bar0.value() == bar0.maximum()


def test_cheat_sheet_toggles_and_lists_every_key(qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=2)
    create_queue(root)
    panel = open_panel(root)
    assert panel.cheatsheet.isVisible() and not panel.cheatsheet.expanded
    qtbot.keyClick(panel, Qt.Key_Question, Qt.ShiftModifier)
    assert panel.cheatsheet.expanded
    qtbot.keyClick(panel, Qt.Key_Question, Qt.ShiftModifier)
    assert not panel.cheatsheet.expanded
    keys = dict(panel.shortcuts())
    assert {"1 or A", "2 or B", "T", "X", "S", "Ctrl+Z", "Enter"} <= set(keys)


def test_edit_a_response_into_a_demonstration_and_a_preferred_candidate(qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=3)
    create_queue(root)
    panel = open_panel(root)
    item = panel.current
    qtbot.keyClick(panel, Qt.Key_E)
    dialog = panel._dialogs[-1]
    qtbot.waitExposed(dialog)
    assert dialog.text.toPlainText() == item.candidates[0].response
    dialog.which.setCurrentIndex(1)
    assert dialog.text.toPlainText() == item.candidates[1].response
    dialog.text.setPlainText("Use `items[::-1]`; it copies. `items.reverse()` works in place.")
    dialog.dataset.setText("my-demos")
    qtbot.mouseClick(dialog.demo_button, Qt.LeftButton)
    assert not dialog.isVisible() and panel.current.prompt_id == item.prompt_id   # not a decision
    with Workspace.open(root) as ws:
        (rec,) = list(D.iter_records(ws.conn, D.get_dataset(ws.conn, "my-demos")))
        assert rec.completion.startswith("Use `items[::-1]`") and rec.lineage.candidate_id == item.shown[1]
    activate(qtbot, panel)
    dialog = panel.open_edit_dialog(0)
    dialog.text.setPlainText("A better answer written by hand.")
    qtbot.mouseClick(dialog.preferred_button, Qt.LeftButton)
    assert panel.current.prompt_id != item.prompt_id
    assert panel.last_decision.describe() == "edited response preferred"
    with Workspace.open(root) as ws:
        ordering, shown = ws.conn.execute("SELECT ordering, shown FROM rankings").fetchone()
        new_id, parent = ws.conn.execute("SELECT id, parent_id FROM candidates WHERE parent_id IS NOT NULL").fetchone()
    assert json.loads(ordering) == [[new_id], sorted(item.shown)] and parent == item.shown[0]
    assert json.loads(shown) == list(item.shown) + [new_id]
    activate(qtbot, panel)
    qtbot.keyClick(panel, Qt.Key_Z, Qt.ControlModifier)      # undo removes the edited candidate too
    with Workspace.open(root) as ws:
        assert ws.conn.execute("SELECT count(*) FROM candidates WHERE parent_id IS NOT NULL").fetchone()[0] == 0


def test_queue_setup_dialog_and_switching_queues(qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=3, k=3, tag="alpha")
    panel = open_panel(root)
    assert panel.queue is None and panel.empty_title.text() == "Nothing to rank yet"
    qtbot.mouseClick(panel.new_queue_button, Qt.LeftButton)
    dialog = panel._dialogs[-1]
    dialog.annotator.setText("")
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.LeftButton)
    assert dialog.isVisible() and "annotator" in dialog.error.text()
    dialog.annotator.setText("bo")
    dialog.kwise.setChecked(True)
    dialog.k.setValue(3)
    assert dialog.source.select(PromptSource("tag", "alpha"))
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.LeftButton)
    assert panel.queue.spec.mode == "kwise" and panel.queue.spec.annotator == "bo"
    assert panel.queue.spec.source.name == "alpha" and len(panel.current.candidates) == 3
    first_queue = panel.queue.id
    second = create_queue(root, annotator="cy")
    panel._reload_queues(select=first_queue)
    assert panel.queue_combo.count() == 2
    index = panel.queue_combo.findData(second)
    panel.queue_combo.activated.emit(index)
    assert panel.queue.id == second and panel.queue.spec.mode == "pairwise"
    qtbot.waitUntil(lambda: "3 left" in panel.progress_label.text())


def test_export_dialog_ties_setting(qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=3)
    create_queue(root)
    panel = open_panel(root)
    for key in (Qt.Key_1, Qt.Key_T, Qt.Key_2):
        qtbot.keyClick(panel, key)
    qtbot.mouseClick(panel.export_button, Qt.LeftButton)
    dialog = panel._dialogs[-1]
    dialog.name.setText("prefs-no-ties")
    with qtbot.waitSignal(dialog.exported, timeout=10000) as sig:
        qtbot.mouseClick(dialog.export_button, Qt.LeftButton)
    assert sig.args == ["prefs-no-ties", 2]
    dialog.name.setText("prefs-ties")
    dialog.keep_ties.setChecked(True)
    with qtbot.waitSignal(dialog.exported, timeout=10000) as sig:
        qtbot.mouseClick(dialog.export_button, Qt.LeftButton)
    assert sig.args == ["prefs-ties", 4] and "4 preference pairs" in dialog.result.text()
    qtbot.mouseClick(dialog.export_button, Qt.LeftButton)              # the name is taken now
    qtbot.waitUntil(lambda: "already exists" in dialog.result.text(), timeout=10000)
    with Workspace.open(root) as ws:
        assert D.get_dataset(ws.conn, "prefs-ties").kind == "preference"


def test_quality_dialog_reports(qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=4)
    create_queue(root)
    panel = open_panel(root)
    for key in (Qt.Key_1, Qt.Key_1, Qt.Key_2, Qt.Key_T):
        qtbot.keyClick(panel, key)
    qtbot.mouseClick(panel.quality_button, Qt.LeftButton)
    dialog = panel._dialogs[-1]
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=10000)
    counts = dialog.body.findChild(QTableWidget, "countsTable")
    assert counts.item(0, 0).text() == "ana" and counts.item(0, 1).text() == "4"
    position = dialog.body.findChild(QTableWidget, "positionTable")
    assert position.item(0, 1).text() == "3"                       # three decisive pairs
    dialog.close()


def test_job_dialogs_prefill_and_check_before_starting(qtbot, tmp_path, open_panel):
    root = tmp_path / "ws"
    make_workspace(root, prompts=2)
    with Workspace.open(root) as ws:
        with ws.transaction() as c:
            d = D.create_dataset(c, "asks", "prompts", "standard")
            D.add_record(c, d, Record(prompt="Hi"))
    panel = open_panel(root)
    dialog = panel.open_generation_dialog(model="./runs/none/checkpoints/step-3")
    assert dialog.model.ref() == "./runs/none/checkpoints/step-3"
    qtbot.mouseClick(dialog.start_button, Qt.LeftButton)
    assert dialog.isVisible() and "does not exist" in dialog.error.text()   # checked before any job
    dialog.sampling.n.setValue(3)
    dialog.sampling.temperature.setValue(0.0)
    dialog.model.set_ref("Qwen/Qwen2.5-0.5B-Instruct")
    qtbot.mouseClick(dialog.start_button, Qt.LeftButton)
    assert "greedy" in dialog.error.text()
    assert not (root / "runs").exists() or not any((root / "runs").iterdir())
    dialog.close()
    cmp_ = panel.open_comparison_dialog("Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B")
    assert cmp_.model_a.ref() == cmp_.model_b.ref() == "Qwen/Qwen2.5-0.5B"
    qtbot.mouseClick(cmp_.start_button, Qt.LeftButton)
    assert "different model" in cmp_.error.text()
    cmp_.close()


def test_generate_and_compare_do_not_offer_reward_models(qtbot, tmp_path, open_panel):
    """A reward model scores text; it cannot write candidates (the pickers listed its checkpoints)."""
    root = tmp_path / "ws"
    make_workspace(root, prompts=2)
    for run_id, stage in (("20261203-110000-sft-5f7a", "sft"), ("20261203-120000-reward-0c1d", "reward")):
        ck = root / "runs" / run_id / "checkpoints" / "step-40"
        ck.mkdir(parents=True)
        (root / "runs" / run_id / "config.yaml").write_text(f"stage: {stage}\n", encoding="utf-8")
        (ck / "config.json").write_text("{}", encoding="utf-8")
        (ck / "COMPLETE").write_text("", encoding="utf-8")
    panel = open_panel(root)
    generate = panel.open_generation_dialog()
    compare = panel.open_comparison_dialog()
    for picker in (generate.model, compare.model_a, compare.model_b):
        refs = [picker.combo.itemData(i) for i in range(picker.combo.count())]
        assert "./runs/20261203-110000-sft-5f7a/checkpoints/step-40" in refs
        assert not any("reward" in r for r in refs), refs
    generate.reject()
    compare.reject()


def test_generate_and_compare_start_from_a_prompt_set_not_the_ranked_pairs(qtbot, tmp_path, open_panel):
    """The first dataset by name was the default: in the demo, the preference pairs (one prompt
    per ten rows, every one of them already ranked)."""
    root = tmp_path / "ws"
    make_workspace(root, prompts=2)
    with Workspace.open(root) as ws, ws.transaction() as c:
        pairs = D.create_dataset(c, "demo-pairs", "preference", "standard")
        sft = D.create_dataset(c, "demo-sft", "sft", "conversational")
        for i in range(3):
            D.add_record(c, pairs, Record(prompt="Tell me about rivers.", chosen="calm", rejected="wet"))
            D.add_record(c, sft, Record(messages=[{"role": "user", "content": f"Tell me about hill {i}."},
                                                  {"role": "assistant", "content": "A quiet hill."}]))
    panel = open_panel(root)
    for dialog in (panel.open_generation_dialog(), panel.open_comparison_dialog()):
        assert dialog.source.source() == PromptSource("dataset", "demo-sft")
        dialog.reject()


def test_a_finished_comparison_shows_its_verdict_with_readable_model_names(qtbot, tmp_path, open_panel):
    from workbench.store import annotations as A
    from workbench.store import queue as Q

    root = tmp_path / "ws"
    base, tuned = "./models/demo-base", "./runs/20261203-121717-ppo-9f3e/checkpoints/step-120"
    with Workspace.init(root) as ws, ws.transaction() as c:
        src = {arm: c.execute("INSERT INTO sources(kind, path, detail, created_at) VALUES ('generation',?,?,0)",
                              (m, json.dumps({"run_id": "cmp", "arm": arm}))).lastrowid
               for arm, m in (("a", base), ("b", tuned))}
        for i in range(5):
            pid = A.add_prompt(c, f"Tell me about the hill number {i}.")
            for arm in "ab":
                c.execute("INSERT INTO candidates(prompt_id, response, model, source_id, created_at)"
                          " VALUES (?,?,?,?,0)", (pid, f"{arm}: a calm hill {i}", base if arm == "a" else tuned,
                                                  src[arm]))
        Q.create_queue(c, Q.QueueSpec(annotator="ana", repeat_every=0, compare=Q.CompareArms(
            run_id="cmp", label_a=base, label_b=tuned)))
    panel = open_panel(root)
    for i in range(5):
        item = panel.current
        if i == 4:
            panel.decide_tie()
        else:  # B three times, A once
            panel.choose(item.arms.index("b") if i < 3 else item.arms.index("a"))
    assert panel.current is None and panel.empty_title.text() == "Comparison done"
    qtbot.waitUntil(lambda: "wins" in panel.empty_view.verdict.text(), timeout=10_000)
    assert panel.empty_view.verdict.text() == (
        "B (ppo-9f3e step-120) wins 75% [30%, 95%] of 4 decisive \u00b7 ties 1 \u00b7 n 5 \u00b7 against A (demo-base)")
    assert panel.empty_view.verdict.isVisible()


def test_the_verdict_shows_the_model_names_literally(qtbot):
    from ui.ranking.item_view import EmptyStateView

    view = EmptyStateView()
    qtbot.addWidget(view)
    view.set_verdict("B (<b>models/<img src=x>tuned</b>) wins 75% · against A (base)")
    assert view.verdict.textFormat() == Qt.TextFormat.PlainText   # a model path is user data, never markup


def test_the_edit_dialog_leaves_the_prompt_in_view(qtbot, tmp_path, open_panel):
    """It opened centred on the page, over the (long, multi-turn) prompt the edit is about."""
    from workbench.store import annotations as A

    root = tmp_path / "ws"
    chat = [{"role": "system", "content": "You are a careful assistant. " * 6},
            {"role": "user", "content": "Here is my code:\n\n" + "\n".join(f"line {i} = {i} * 2" for i in range(12))},
            {"role": "assistant", "content": "What should it do?"},
            {"role": "user", "content": "Reverse the list without copying it."}]
    with Workspace.init(root) as ws, ws.transaction() as c:
        pid = A.add_prompt(c, chat)
        for text in ("Use `items.reverse()`.", "Use `items[::-1]` (this copies)."):
            A.add_candidate(c, pid, [{"role": "assistant", "content": text}], model="m")
    create_queue(root)
    panel = open_panel(root)
    panel.resize(1100, 760)
    qtbot.wait(50)
    panel.item_view.fit_prompt()
    qtbot.wait(20)
    dialog = panel.open_edit_dialog(1)
    qtbot.waitExposed(dialog)
    prompt = panel.item_view.prompt_view
    bottom = prompt.mapToGlobal(prompt.rect().bottomLeft()).y()
    assert dialog.frameGeometry().top() >= bottom, (dialog.frameGeometry(), bottom)
    dialog.reject()
