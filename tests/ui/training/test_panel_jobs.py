"""The Train page with real job processes on the tiny model: Start launches an SFT job, a second
start waits in the visible queue, Cancel stops the running job (checkpoint saved), the queued
one then runs to completion and its card says so, "Merge adapter and export" runs a real merge
job whose folder feeds the reward and PPO forms, Generate / Compare hand the checkpoint over,
and Resume continues the cancelled run from its checkpoint to the end."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from ui.training.panel import TrainingPanel
from workbench.jobs.rundir import list_checkpoints
from workbench.jobs.supervisor import CANCELLED, COMPLETED, QUEUED, RUNNING
from workbench.models.refs import check_model_ref

from .conftest import JOB_ENV, choose, type_into


pytestmark = pytest.mark.slow
TIMEOUT_MS = 120_000
LONG_STEPS = 400  # ~20 ms a step: long enough to be cancelled mid-run


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A workspace with the tiny model in models/tiny and 30 chat demonstrations; every job this
    module starts inherits :data:`JOB_ENV` (one thread per job: the suite shares two cores)."""
    from workbench.models.tiny import NEUTRAL_WORDS, POSITIVE_WORDS, build_tiny_model, demo_prompts
    from workbench.store import datasets as R
    from workbench.store.records import Record
    from workbench.store.workspace import Workspace

    mp = pytest.MonkeyPatch()
    for key, value in JOB_ENV.items():
        mp.setenv(key, value)
    root = tmp_path_factory.mktemp("train_jobs") / "ws"
    rng = random.Random(0)
    with Workspace.init(root) as w:
        build_tiny_model(w.models_dir / "tiny")
        with w.transaction() as c:
            d = R.create_dataset(c, "demos", "sft", "conversational")
            for i, p in enumerate(demo_prompts()):
                reply = " ".join(rng.choice(POSITIVE_WORDS + NEUTRAL_WORDS) for _ in range(4))
                R.add_record(c, d, Record(messages=[{"role": "user", "content": p},
                                                    {"role": "assistant", "content": reply}],
                                          split="validation" if i % 5 == 0 else "train"))
    yield root
    mp.undo()


def run_info(panel, run_id):
    return next((r for r in panel.monitor.runs if r.run_id == run_id), None)


def status_of(panel, run_id):
    info = run_info(panel, run_id)
    return info.status if info is not None else None


def test_start_queue_cancel_complete_merge_and_resume(qtbot, ws):
    panel = TrainingPanel(check_delay_ms=20)
    qtbot.addWidget(panel)
    panel.resize(1280, 800)
    panel.show()
    panel.set_workspace(ws)
    form = panel.form
    qtbot.waitUntil(lambda: form.editor("data.dataset").count() > 0, timeout=10000)

    # An SFT run long enough to cancel: the tiny model with LoRA on the CPU.
    type_into(qtbot, form.editor("model.ref"), "./models/tiny")
    type_into(qtbot, form.editor("data.dataset"), "demos")
    type_into(qtbot, form.editor("model.lora_r"), "8")
    type_into(qtbot, form.editor("model.lora_alpha"), "16")
    type_into(qtbot, form.editor("training.max_steps"), str(LONG_STEPS))
    type_into(qtbot, form.editor("training.batch_size"), "4")
    type_into(qtbot, form.editor("training.max_length"), "128")
    type_into(qtbot, form.editor("training.logging_steps"), "1")
    type_into(qtbot, form.editor("training.learning_rate"), "1e-3")
    choose(qtbot, form.editor("training.lr_scheduler"), "constant")
    choose(qtbot, form.editor("training.device"), "cpu")
    with qtbot.waitSignal(panel.run_started, timeout=TIMEOUT_MS) as started:
        qtbot.mouseClick(panel.run_control.start_button, Qt.MouseButton.LeftButton)
    run_a = started.args[0]
    card = panel.pipeline.cards["sft"]
    qtbot.waitUntil(lambda: card.level == RUNNING and "step" in card.status.text()
                    and "starting" not in card.status.text(), timeout=TIMEOUT_MS)

    # A second, short run waits in the queue behind it.
    type_into(qtbot, form.editor("training.max_steps"), "4")
    with qtbot.waitSignal(panel.run_started, timeout=TIMEOUT_MS) as started:
        qtbot.mouseClick(panel.run_control.start_button, Qt.MouseButton.LeftButton)
    run_b = started.args[0]
    assert "queued behind 1 job" in panel.run_control.status_label.text()
    qtbot.waitUntil(lambda: panel.run_control.queue_run_ids() == [run_a, run_b], timeout=TIMEOUT_MS)
    queue = panel.run_control.queue_list
    assert "\u25b6" in queue.item(0).text() and "#1" in queue.item(1).text()
    assert status_of(panel, run_b) == QUEUED and "1 running, 1 waiting" in panel.run_control.queue_title.text()

    # Cancel stops the running one (not the queued one) with a checkpoint; the queued one starts.
    assert panel.run_control.cancel_button.isEnabled()
    qtbot.mouseClick(panel.run_control.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: status_of(panel, run_a) == CANCELLED, timeout=TIMEOUT_MS)
    assert list_checkpoints(ws / "runs" / run_a)
    cancelled_step = run_info(panel, run_a).last_step
    assert 0 < cancelled_step < LONG_STEPS

    # The short run completes; the card shows it and its output (a LoRA adapter, not yet loadable).
    qtbot.waitUntil(lambda: status_of(panel, run_b) == COMPLETED, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: card.level == COMPLETED and "step 4" in card.status.text(), timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: "LoRA adapter (merge it" in card.output.toolTip(), timeout=TIMEOUT_MS)

    # Resume continues the cancelled run from its checkpoint (it runs while the merge below runs:
    # a merge is CPU work and does not wait for the GPU slot).
    assert panel.run_control.resume_button.isEnabled()
    qtbot.mouseClick(panel.run_control.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Resuming run" in panel.run_control.status_label.text(), timeout=TIMEOUT_MS)
    assert f"step-{cancelled_step}" in panel.run_control.status_label.text()

    # Merge adapter and export: a real merge job; its folder loads and feeds the later stages.
    assert panel.after_run.merge_button.isEnabled() and run_b in panel.after_run.summary.text()
    qtbot.mouseClick(panel.after_run.merge_button, Qt.MouseButton.LeftButton)
    # Where to: the dialog proposes models/<run>-merged; the user picks another name.
    qtbot.waitUntil(lambda: panel.merge_dialog is not None and panel.merge_dialog.isVisible(), timeout=5000)
    assert f"{run_b}-merged" in panel.merge_dialog.selectedFiles()[0]
    export = ws / "models" / "sft-final"
    panel.merge_dialog.selectFile(str(export))
    panel.merge_dialog.accept()
    qtbot.waitUntil(lambda: panel.after_run.merge_status.text().startswith("Exported:"), timeout=TIMEOUT_MS)
    assert str(export) in panel.after_run.merge_status.text()
    check_model_ref(export, require_tokenizer=True)
    ref = "./models/sft-final"
    qtbot.waitUntil(lambda: panel.forms["reward"].value("model.ref") == ref, timeout=TIMEOUT_MS)
    assert panel.forms["ppo"].value("policy_model") == ref and panel.forms["dpo"].value("model.ref") == ref
    assert "LoRA, exported" in card.output.text()
    assert "Model: ./models/tiny" in card.inputs.text()
    assert ref in panel.pipeline.cards["reward"].inputs.toolTip()

    # Generate and Compare hand the exported checkpoint over (to the Rank page in the window).
    with qtbot.waitSignal(panel.generation_requested, timeout=5000) as gen:
        qtbot.mouseClick(panel.after_run.generate_button, Qt.MouseButton.LeftButton)
    assert Path(gen.args[0]) == export
    with qtbot.waitSignal(panel.comparison_requested, timeout=5000) as cmp:
        qtbot.mouseClick(panel.after_run.compare_button, Qt.MouseButton.LeftButton)
    assert Path(cmp.args[0]) == (ws / "models" / "tiny").resolve() and Path(cmp.args[1]) == export

    # The resumed run reaches its last step.
    qtbot.waitUntil(lambda: status_of(panel, run_a) == COMPLETED, timeout=TIMEOUT_MS)
    assert run_info(panel, run_a).last_step == LONG_STEPS
    assert not panel.run_control.resume_button.isEnabled()
    panel.shutdown()

    # A new page on the same workspace (the GUI restarted) shows where the user left off: the
    # cards' states, and each form holding its stage's latest run config.
    again = TrainingPanel(check_delay_ms=20)
    qtbot.addWidget(again)
    again.set_workspace(ws)
    qtbot.waitUntil(lambda: again.forms["sft"].value("model.ref") == "./models/tiny", timeout=10000)
    assert again.forms["sft"].value("training.max_steps") == 4  # run B is the newest SFT run
    assert again.forms["sft"].value("data.snapshot") is None  # a new run freezes the data anew
    qtbot.waitUntil(lambda: again.pipeline.cards["sft"].level == COMPLETED, timeout=10000)
    assert again.forms["reward"].value("model.ref") == ref
    again.shutdown()
