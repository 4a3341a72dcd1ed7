"""Generation and blind comparison from the Rank page: real ``generate`` job processes on a tiny model,
candidates streaming into the queue while the page stays responsive."""

import shutil

from PySide6.QtCore import Qt

from workbench.store import datasets as D
from workbench.store.queue import PromptSource
from workbench.store.records import Record
from workbench.store.workspace import Workspace

from .conftest import activate


def _ws_with_model(root, model, *, copies=("tiny",)):
    with Workspace.init(root) as ws:
        for name in copies:
            shutil.copytree(model, ws.models_dir / name)
        with ws.transaction() as c:
            d = D.create_dataset(c, "asks", "prompts", "standard")
            for topic in ("river", "garden", "music", "coffee"):
                D.add_record(c, d, Record(prompt=f"Tell me about {topic}."))


def test_generate_candidates_and_rank_them_as_they_arrive(qtbot, tmp_path, open_panel, tiny_chat_model, job_env):
    root = tmp_path / "ws"
    _ws_with_model(root, tiny_chat_model)
    panel = open_panel(root)
    dialog = panel.open_generation_dialog()
    qtbot.waitExposed(dialog)
    dialog.model.set_ref("./models/tiny")
    assert dialog.model.ref() == "./models/tiny"
    assert dialog.source.select(PromptSource("dataset", "asks"))
    dialog.sampling.n.setValue(2)
    dialog.sampling.temperature.setValue(1.0)
    dialog.sampling.max_new_tokens.setValue(8)
    qtbot.mouseClick(dialog.start_button, Qt.LeftButton)
    assert not dialog.isVisible(), dialog.error.text()
    assert panel.job_strip.isVisible() and panel.job_strip.running
    assert panel.queue is not None and panel.queue.spec.source == PromptSource("dataset", "asks")
    # The page notices the job's commits on its timer and shows the first item while the job may still run.
    qtbot.waitUntil(lambda: panel.current is not None, timeout=120_000)
    activate(qtbot, panel)
    qtbot.keyClick(panel, Qt.Key_1)
    qtbot.waitUntil(lambda: panel.job_strip.status == "completed", timeout=120_000)
    assert "done: 8 candidates" in panel.job_strip.label.text()
    while panel.current is not None:
        qtbot.keyClick(panel, Qt.Key_2)
    with Workspace.open(root) as ws:
        assert ws.conn.execute("SELECT count(*) FROM rankings").fetchone()[0] == 4
        assert ws.conn.execute("SELECT count(*) FROM candidates").fetchone()[0] == 8
    qtbot.waitUntil(lambda: "4 done" in panel.progress_label.text(), timeout=10_000)


def test_blind_comparison_from_the_dialog(qtbot, tmp_path, open_panel, tiny_chat_model, job_env):
    root = tmp_path / "ws"
    _ws_with_model(root, tiny_chat_model, copies=("base", "tuned"))
    panel = open_panel(root)
    dialog = panel.open_comparison_dialog("./models/base", "./models/tuned")
    qtbot.waitExposed(dialog)
    dialog.annotator.setText("ana")
    dialog.sampling.max_new_tokens.setValue(8)
    dialog.sampling.temperature.setValue(1.0)
    assert dialog.source.select(PromptSource("dataset", "asks"))
    qtbot.mouseClick(dialog.start_button, Qt.LeftButton)
    assert not dialog.isVisible(), dialog.error.text()
    spec = panel.queue.spec
    assert spec.compare is not None and spec.compare.label_b == "./models/tuned" and spec.annotator == "ana"
    assert spec.name == "base vs tuned \u00b7 ana"  # readable (was "compare 3f2a \u00b7 ana")
    qtbot.waitUntil(lambda: panel.job_strip.status == "completed", timeout=120_000)
    qtbot.waitUntil(lambda: panel.current is not None, timeout=10_000)
    activate(qtbot, panel)
    decisions = 0
    while panel.current is not None:
        item = panel.current
        assert sorted(item.arms) == ["a", "b"]
        qtbot.keyClick(panel, Qt.Key_1 if item.arms[0] == "b" else Qt.Key_2)   # B every time
        decisions += 1
    assert decisions == 4
    qtbot.keyClick(panel, Qt.Key_R)
    assert "model B: tuned" in panel.reveal_label.text()   # readable; the full path is the tooltip
    assert "model B: ./models/tuned" in panel.reveal_label.toolTip()
    qtbot.waitUntil(lambda: "B wins 100%" in panel.progress_label.text(), timeout=10_000)
    # Where the comparison ends: the verdict, with the models named.
    assert panel.empty_title.text() == "Comparison done"
    qtbot.waitUntil(lambda: panel.empty_view.verdict.text().startswith("B (tuned) wins 100% ["), timeout=10_000)
    assert "of 4 decisive \u00b7 ties 0 \u00b7 n 4 \u00b7 against A (base)" in panel.empty_view.verdict.text()


def test_cancel_a_generation_from_the_strip(qtbot, tmp_path, open_panel, tiny_chat_model, job_env):
    """Cancel is cooperative: the job stops at its next check (here before the model loads)."""
    root = tmp_path / "ws"
    _ws_with_model(root, tiny_chat_model)
    panel = open_panel(root)
    dialog = panel.open_generation_dialog(model="./models/tiny")
    assert dialog.source.select(PromptSource("dataset", "asks"))
    qtbot.mouseClick(dialog.start_button, Qt.LeftButton)
    assert panel.job_strip.running and panel.empty_title.text() == "Waiting for candidates"
    qtbot.mouseClick(panel.job_strip.cancel_button, Qt.LeftButton)
    assert not panel.job_strip.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: panel.job_strip.status == "cancelled", timeout=60_000)
    assert "cancelled" in panel.job_strip.label.text() and panel.job_strip.close_button.isVisible()
    assert panel.empty_title.text() == "All done in this queue"
    with Workspace.open(root) as ws:
        assert ws.conn.execute("SELECT count(*) FROM candidates").fetchone()[0] == 0
