"""The demo pipeline through the main window's Train page, with real job processes on the tiny model.

On a demo workspace (tiny base model, demonstrations, ranked preference pairs),
the Train page runs SFT, then the reward model, then PPO, each from the real
form widgets, each a real job process. Each later stage's model fields are fed
by the earlier stage's run (the pipeline hand-off a user relies on); starting a
run switches to the Runs page with that run selected, and its curves get their
points; at the end "Compare with base" opens the Rank page's blind comparison
between the SFT model and the PPO checkpoint, which samples both models and
is ranked with the keyboard: the whole loop, back to ranking.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QCheckBox, QComboBox

from ui.main_window import MainWindow
from ui.ranking.generation_dialog import ComparisonDialog
from ui.training.panel import TrainingPanel
from ui.training.runs import RunsPanel
from workbench.jobs.supervisor import COMPLETED
from workbench.store.queue import PromptSource

from .conftest import JOB_ENV, choose, type_into

pytestmark = pytest.mark.slow
TIMEOUT_MS = 240_000
PPO_STEPS = 4


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory):
    """The demo seed (what "Open the demo workspace" builds), at a size the suite can afford."""
    from workbench.train.demo import QUICK, build_demo

    mp = pytest.MonkeyPatch()
    for key, value in JOB_ENV.items():
        mp.setenv(key, value)
    root = tmp_path_factory.mktemp("pipeline") / "ws"
    sizes = replace(QUICK, sft_examples=320, sft_epochs=1.0, candidates_per_prompt=4)
    yield root, build_demo(root, sizes=sizes)
    mp.undo()


def set_field(qtbot, form, path: str, text: str) -> None:
    """Enter a value the way a user does: pick it in a closed combo, or select all and type."""
    widget = form.editor(path)
    if isinstance(widget, QComboBox) and not widget.isEditable():
        choose(qtbot, widget, text)
    else:
        type_into(qtbot, widget, text)


def set_checked(qtbot, form, path: str, checked: bool) -> None:
    box = form.editor(path)
    assert isinstance(box, QCheckBox), path
    if box.isChecked() != checked:
        box.setFocus()
        qtbot.keyClick(box, Qt.Key.Key_Space)
    assert box.isChecked() == checked


def start(qtbot, window: MainWindow, train: TrainingPanel) -> str:
    """Click Start; the window switches to the Runs page with the new run selected."""
    with qtbot.waitSignal(train.run_started, timeout=TIMEOUT_MS) as started:
        qtbot.mouseClick(train.run_control.start_button, Qt.MouseButton.LeftButton)
    run_id = started.args[0]
    runs = window.page("Runs")
    assert window.current_title() == "Runs"
    qtbot.waitUntil(lambda: runs.primary_run == run_id, timeout=30000)
    return run_id


def status(runs: RunsPanel, run_id: str) -> str:
    row = runs.model.row_of(run_id)
    return runs.model.index(row, 2).data() if row >= 0 else ""


def points(runs: RunsPanel, run_id: str, metric: str) -> int:
    view = runs.plots.view_for(metric)
    return 0 if view is None else view.point_count(run_id, metric)


def finish(qtbot, runs: RunsPanel, run_id: str, metric: str) -> None:
    """The run completes, and the Runs page's ``metric`` curve has points."""
    qtbot.waitUntil(lambda: status(runs, run_id) == COMPLETED, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: points(runs, run_id, metric) > 0, timeout=60000)


def open_stage(qtbot, window: MainWindow, stage: str):
    train = window.show_page("Train")
    train.select_stage(stage)
    return train, train.form


def test_sft_reward_model_ppo_then_compare_through_the_main_window(qtbot, demo_ws, tmp_path) -> None:
    root, demo = demo_ws
    window = MainWindow(workspace_path=root, gpu_probe_delay_ms=None, demo_dir=tmp_path / "demo")
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    try:
        # SFT: all weights of the tiny base model on the demonstrations.
        train, form = open_stage(qtbot, window, "sft")
        qtbot.waitUntil(lambda: form.editor("data.dataset").count() > 0, timeout=30000)
        set_field(qtbot, form, "model.ref", f"./models/{demo['base_model'].name}")
        set_checked(qtbot, form, "model.lora", False)
        set_field(qtbot, form, "data.dataset", demo["sft_dataset"])
        set_field(qtbot, form, "training.num_epochs", "1")
        set_field(qtbot, form, "training.batch_size", "32")
        set_field(qtbot, form, "training.max_length", "64")
        set_field(qtbot, form, "training.logging_steps", "1")
        set_field(qtbot, form, "training.device", "cpu")
        sft_run = start(qtbot, window, train)
        runs = window.page("Runs")
        finish(qtbot, runs, sft_run, "loss")
        qtbot.waitUntil(lambda: train.pipeline.cards["sft"].level == COMPLETED, timeout=60000)

        # The reward model starts from the SFT run that just finished (fed by the pipeline).
        train, form = open_stage(qtbot, window, "reward")
        qtbot.waitUntil(lambda: sft_run in str(form.value("model.ref") or ""), timeout=60000)
        set_checked(qtbot, form, "model.lora", False)
        set_field(qtbot, form, "data.dataset", demo["pairs_dataset"])
        set_field(qtbot, form, "training.num_epochs", "1")
        set_field(qtbot, form, "training.batch_size", "16")
        set_field(qtbot, form, "training.max_length", "64")
        set_field(qtbot, form, "training.logging_steps", "1")
        set_field(qtbot, form, "training.learning_rate", "5e-4")
        set_field(qtbot, form, "training.device", "cpu")
        set_field(qtbot, form, "eval_steps", "0")
        reward_run = start(qtbot, window, train)
        finish(qtbot, runs, reward_run, "loss")
        qtbot.waitUntil(lambda: train.pipeline.cards["reward"].level == COMPLETED, timeout=60000)

        # PPO: the policy from the SFT run, the reward model from the reward run.
        train, form = open_stage(qtbot, window, "ppo")
        qtbot.waitUntil(lambda: reward_run in str(form.value("reward_model") or ""), timeout=60000)
        assert sft_run in str(form.value("policy_model") or "")
        set_field(qtbot, form, "prompt_dataset", demo["pairs_dataset"])
        set_field(qtbot, form, "device", "cpu")
        set_field(qtbot, form, "dtype", "fp32")
        set_field(qtbot, form, "batch_size", "8")
        set_field(qtbot, form, "mini_batch_size", "4")
        set_field(qtbot, form, "ppo_epochs", "1")
        set_field(qtbot, form, "max_new_tokens", "8")
        set_field(qtbot, form, "total_steps", str(PPO_STEPS))
        set_field(qtbot, form, "save_every", "0")
        set_field(qtbot, form, "samples_every", "1")
        set_field(qtbot, form, "num_samples", "4")
        ppo_run = start(qtbot, window, train)
        finish(qtbot, runs, ppo_run, "objective/scores")
        qtbot.waitUntil(lambda: points(runs, ppo_run, "objective/scores") == PPO_STEPS, timeout=60000)
        assert points(runs, ppo_run, "objective/kl") == PPO_STEPS

        # Back to ranking: a blind comparison of the SFT model against the PPO checkpoint.
        train, form = open_stage(qtbot, window, "ppo")
        qtbot.waitUntil(lambda: train.pipeline.cards["ppo"].level == COMPLETED, timeout=60000)
        compare = train.after_run.compare_button
        qtbot.waitUntil(lambda: compare.isEnabled() and train.after_run.output is not None
                        and train.after_run.output.run_id == ppo_run, timeout=60000)
        qtbot.mouseClick(compare, Qt.MouseButton.LeftButton)
        assert window.current_title() == "Rank"
        rank = window.page("Rank")
        qtbot.waitUntil(lambda: any(d.isVisible() for d in rank.findChildren(ComparisonDialog)), timeout=10000)
        dialog = next(d for d in rank.findChildren(ComparisonDialog) if d.isVisible())
        assert sft_run in dialog.model_a.ref() and ppo_run in dialog.model_b.ref()

        # ... which samples both (the PPO checkpoint is a LoRA adapter on the SFT model) and shows
        # one answer of each, blind; deciding them all gives model B's win rate.
        dialog.annotator.setText("me")
        assert dialog.source.select(PromptSource("dataset", demo["pairs_dataset"]))
        dialog.sampling.limit.setValue(3)
        dialog.sampling.max_new_tokens.setValue(8)
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
        assert not dialog.isVisible(), dialog.error.text()
        assert rank.queue.spec.compare is not None
        qtbot.waitUntil(lambda: rank.job_strip.status == "completed", timeout=TIMEOUT_MS)
        qtbot.waitUntil(lambda: rank.current is not None, timeout=30000)
        window.activateWindow()
        rank.setFocus()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
        decisions = 0
        while rank.current is not None and decisions < 10:
            item = rank.current
            assert sorted(item.arms) == ["a", "b"]
            qtbot.keyClick(rank, Qt.Key.Key_1 if item.arms[0] == "b" else Qt.Key.Key_2)  # B every time
            decisions += 1
        assert decisions == 3
        qtbot.waitUntil(lambda: "B wins 100%" in rank.progress_label.text(), timeout=10000)
    finally:
        window.close()
