"""Runs page: a recorded PPO run with an eval set shows its eval completions beside the
training samples (own tab, own step slider) and plots ``eval/score``; an older run without
eval events still reads as before.

``data/ppo_eval`` was recorded from a real job (see ``data/README.md``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from ui.training.runs import RunsPanel

DATA = Path(__file__).resolve().parent / "data"
RUNS = ("ppo_eval", "ppo_demo")


def run_id(name: str) -> str:
    return (DATA / name / "RUN_ID").read_text().strip()


EVAL, OLD = (run_id(n) for n in RUNS)
EVAL_STEPS = [1, 5, 10, 15, 20]


@pytest.fixture
def panel(qtbot, tmp_path):
    root = tmp_path / "ws"
    for name in RUNS:
        shutil.copytree(DATA / name, root / "runs" / run_id(name), ignore=shutil.ignore_patterns("RUN_ID"))
    p = RunsPanel()
    qtbot.addWidget(p)
    p.resize(1280, 720)
    p.show()
    p.set_workspace(root)
    qtbot.waitUntil(lambda: p.model.rowCount() == len(RUNS), timeout=10000)
    yield p
    p.shutdown()


def click_run(qtbot, panel: RunsPanel, rid: str) -> None:
    rect = panel.table.visualRect(panel.model.index(panel.model.row_of(rid), 0))
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def click_tab(qtbot, panel: RunsPanel, title: str) -> None:
    bar = panel.tabs.tabBar()
    index = next(i for i in range(bar.count()) if bar.tabText(i) == title)
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())


def test_eval_samples_show_in_their_own_tab_with_a_step_slider_and_eval_score_is_plotted(qtbot, panel):
    from workbench.train.demo_task import held_out_prompts

    held_out = set(held_out_prompts())
    click_run(qtbot, panel, EVAL)

    def plotted():
        view = panel.plots.view_for("eval/score")
        return view is not None and view.point_count(EVAL, "eval/score") == len(EVAL_STEPS) and not panel.plots.dirty
    qtbot.waitUntil(plotted, timeout=10000)
    view = panel.plots.view_for("eval/score")
    assert view.spec.title == "Reward" and view is panel.plots.view_for("objective/scores")
    x, _y = view.curve_data(EVAL, "eval/score")
    assert x.tolist() == EVAL_STEPS
    assert view.point_count(EVAL, "objective/scores") == 20

    # The training samples tab: rollouts on the training prompts only.
    train = panel.samples_view
    assert panel.tabs.currentWidget() is train and train.shown_step == 20
    assert train.rows() and not {r[0] for r in train.rows()} & held_out

    # The eval tab: every eval prompt at the newest eval step, then back to step 1.
    click_tab(qtbot, panel, "Eval samples")
    evals = panel.eval_view
    assert panel.tabs.currentWidget() is evals and evals.isVisible()
    assert evals.shown_step == 20 and evals.step_label.text() == "step 20 (latest) \u00b7 6 rows"
    assert {r[0] for r in evals.rows()} <= held_out and len(evals.rows()) == 6
    assert all(r[2] for r in evals.rows())  # scored
    assert evals.slider.maximum() == len(EVAL_STEPS) - 1
    evals.slider.setFocus()
    qtbot.keyClick(evals.slider, Qt.Key.Key_Home)
    assert evals.shown_step == 1 and evals.step_label.text() == "step 1 \u00b7 6 rows"
    qtbot.keyClick(evals.slider, Qt.Key.Key_Right)
    assert evals.shown_step == 5
    rect = evals.table.visualRect(evals.table.model().index(0, 1))
    qtbot.mouseClick(evals.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert "#### Prompt" in evals.detail.markdown_text and "Tell me about the" in evals.detail.markdown_text
    assert train.shown_step == 20  # the two sliders are independent

    # The run list sums the run up by its eval score.
    qtbot.waitUntil(lambda: bool(panel.model.key_metric(EVAL)), timeout=10000)
    assert panel.model.key_metric(EVAL) == "eval score 6.827"  # the last eval, not the training score

    # A run recorded before eval sets existed: its samples are training samples, no eval ones.
    click_run(qtbot, panel, OLD)
    qtbot.waitUntil(lambda: panel.primary_run == OLD and panel.samples_view.shown_step == 30, timeout=10000)
    assert panel.eval_view.shown_step is None and panel.eval_view.rows() == []
    assert panel.eval_view.step_label.text().startswith("No eval samples")
    assert panel.tabs.currentWidget() is panel.samples_view
