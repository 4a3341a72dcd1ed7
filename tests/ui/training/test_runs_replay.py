"""Runs page replay tests: recorded real runs drive the history, plots, health, samples and logs.

The run folders under ``data/`` were recorded from real jobs (see
``data/README.md``); ``ppo_demo_injected_nan_negative_kl`` is a copy of
``ppo_demo`` edited to hold a negative KL (steps 8-11) and a NaN value loss
(step 20).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QMessageBox

from ui.training.runs import RunsPanel
from workbench.store import annotations as A
from workbench.store.workspace import Workspace

DATA = Path(__file__).resolve().parent / "data"
RUNS = ("sft_demo", "reward_demo", "ppo_demo", "ppo_reward_hacking", "ppo_demo_injected_nan_negative_kl")


def run_id(name: str) -> str:
    return (DATA / name / "RUN_ID").read_text().strip()


SFT, REWARD, PPO, HACK, INJECTED = (run_id(n) for n in RUNS)


@pytest.fixture
def ws(tmp_path) -> Path:
    root = tmp_path / "ws"
    for name in RUNS:
        shutil.copytree(DATA / name, root / "runs" / run_id(name), ignore=shutil.ignore_patterns("RUN_ID"))
    return root


@pytest.fixture
def panel(qtbot, ws):
    p = RunsPanel()
    qtbot.addWidget(p)
    p.resize(1280, 800)
    p.show()
    p.set_workspace(ws)
    qtbot.waitUntil(lambda: p.model.rowCount() == len(RUNS), timeout=10000)
    yield p
    p.shutdown()


def click_run(qtbot, panel: RunsPanel, rid: str, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    row = panel.model.row_of(rid)
    assert row >= 0, rid
    rect = panel.table.visualRect(panel.model.index(row, 0))
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())


def wait_shown(qtbot, panel: RunsPanel, rid: str, metric: str, points: int) -> None:
    """Until ``metric``'s plot holds ``points`` of ``rid`` and every plot is up to date
    (the page redraws a few plots per tick)."""
    def ready():
        view = panel.plots.view_for(metric)
        return view is not None and view.point_count(rid, metric) == points and not panel.plots.dirty
    qtbot.waitUntil(ready, timeout=10000)


def answer_modal(action, tries: int = 250) -> None:
    """Call ``action(dialog)`` on the next modal dialog once it is up (gives up after ~5 s)."""
    def poll(left=tries):
        w = QApplication.activeModalWidget()
        if w is not None and w.isVisible():
            action(w)
        elif left:
            QTimer.singleShot(20, lambda: poll(left - 1))
    QTimer.singleShot(0, poll)


def press(text: str):
    def action(box: QMessageBox) -> None:
        button = next(b for b in box.buttons() if b.text() == text)
        button.click()
    return action


def save_as(path: Path):
    def action(dialog) -> None:
        dialog.selectFile(str(path))
        dialog.accept()
    return action


# -- history --------------------------------------------------------------------------------------
def test_history_lists_runs_newest_first_with_status_duration_and_key_metric(qtbot, panel):
    # Key metrics come from a worker reading the events files.
    qtbot.waitUntil(lambda: all(panel.model.key_metric(r.run_id) for r in panel.model.runs), timeout=10000)
    rows = [[panel.model.index(r, c).data() for c in range(7)] for r in range(panel.model.rowCount())]
    assert [r[0] for r in rows] == ["ppo-2233", "ppo-1bad", "ppo-ee28", "reward-ba17", "sft-b234"]
    assert {r[2] for r in rows} == {"completed"}
    assert all(r[4].endswith("s") for r in rows)  # durations like "26s" or "1m 02s"
    by_id = {r[0]: r for r in rows}
    assert by_id["ppo-ee28"][5] == "40" and by_id["ppo-ee28"][6] == "score 8.965"
    assert by_id["reward-ba17"][6] == "accuracy 1" and by_id["sft-b234"][6].startswith("loss 3.4")
    assert "5 runs, none running" in panel.queue_label.text()
    # Nothing chosen yet: the newest run is shown.
    assert panel.primary_run == PPO


# -- the replay: plots, health, samples ---------------------------------------------------------------
def test_replay_of_a_real_reward_hacking_run(qtbot, panel):
    click_run(qtbot, panel, HACK)
    wait_shown(qtbot, panel, HACK, "objective/scores", 40)
    titles = [v.spec.title for v in panel.plots.views]
    assert titles == ["Reward", "KL", "Entropy", "Clip fraction", "Value loss", "Policy ratio", "Response length",
                      "Policy loss"]
    for metric in ("objective/scores", "objective/rlhf_reward", "objective/kl", "objective/kl_k3",
                   "objective/entropy", "policy/clipfrac_avg", "loss/value_avg", "val/ratio",
                   "response/length_mean", "loss/policy_avg"):
        view = panel.plots.view_for(metric)
        assert view.point_count(HACK, metric) == 40, metric
        assert view.point_count(HACK, metric, "smooth") == 40, metric  # default smoothing 0.6
        x, _y = view.curve_data(HACK, metric)
        assert x.tolist() == list(range(1, 41))
    # The health rule fired where the length ran away, beside the plots and on the length plot.
    texts = panel.health_view.texts()
    assert len(texts) == 1 and texts[0].startswith("Reward rising with runaway length: Since step 24")
    assert panel.health_view.cards[0].when_label.text() == "since step 24"
    assert panel.plots.view_for("response/length_mean").marker_steps() == [24]
    assert panel.plots.view_for("objective/kl").marker_steps() == []
    # Samples: the latest step's 8 rows, then back to the first step with the slider.
    samples = panel.samples_view
    assert samples.shown_step == 40 and len(samples.rows()) == 8
    assert samples.step_label.text() == "step 40 (latest) \u00b7 8 rows"
    assert all(r[0].startswith("Tell me about") and float(r[2]) > 8 for r in samples.rows())
    samples.slider.setFocus()
    qtbot.keyClick(samples.slider, Qt.Key.Key_Home)
    assert samples.shown_step == 1 and samples.step_label.text() == "step 1 \u00b7 8 rows"
    first_scores = [float(r[2]) for r in samples.rows()]
    assert np.mean(first_scores) < 3  # before PPO learned to game the reward model
    # Clicking a row shows its whole text.
    rect = samples.table.visualRect(samples.table.model().index(0, 1))
    qtbot.mouseClick(samples.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert "#### Prompt" in samples.detail.markdown_text and "Tell me about" in samples.detail.markdown_text
    # The log tab holds the job's log events and its stderr.
    logs = panel.log_view.events_view.toPlainText()
    assert "policy" in logs and "reward model" in logs
    assert "Loading weights" in panel.log_view.stderr_view.toPlainText()
    assert not panel.failure_panel.isVisible()


def test_injected_negative_kl_and_nan_warn_and_leave_a_hole(qtbot, panel):
    click_run(qtbot, panel, INJECTED)
    wait_shown(qtbot, panel, INJECTED, "objective/kl", 30)
    texts = panel.health_view.texts()
    assert texts[0].startswith("KL is negative: The KL to the reference policy has been negative since step 8")
    assert texts[1].startswith("loss/value_avg is NaN: loss/value_avg became NaN at step 20")
    assert [c.when_label.text() for c in panel.health_view.cards] == [
        "steps 8\u201311, not seen since", "at step 20, not seen since"]
    _x, y = panel.plots.view_for("loss/value_avg").curve_data(INJECTED, "loss/value_avg")
    assert np.isnan(y[19]) and np.isfinite(np.delete(y, 19)).all()
    _x, ys = panel.plots.view_for("loss/value_avg").curve_data(INJECTED, "loss/value_avg", "smooth")
    assert np.isnan(ys[19]) and np.isfinite(ys[20:]).all()  # the NaN does not end the smoothed curve
    assert panel.plots.view_for("objective/kl").marker_steps() == [8]
    # The healthy original has no warnings.
    click_run(qtbot, panel, PPO)
    qtbot.waitUntil(lambda: panel.health_view.texts() == [] and panel.primary_run == PPO, timeout=10000)


def test_each_stage_gets_its_metric_set(qtbot, panel):
    click_run(qtbot, panel, SFT)
    wait_shown(qtbot, panel, SFT, "loss", 76)
    assert [v.spec.title for v in panel.plots.views] == ["Loss", "Learning rate", "Grad norm", "Tokens/s"]
    assert panel.plots.view_for("tokens/s").point_count(SFT, "tokens/s") == 75  # a rate needs two counts
    assert panel.tabs.currentWidget() is panel.log_view  # no samples outside PPO
    assert "saved the final model" in panel.log_view.events_view.toPlainText()
    click_run(qtbot, panel, REWARD)
    wait_shown(qtbot, panel, REWARD, "accuracy", 51)
    assert [v.spec.title for v in panel.plots.views] == ["Loss", "Accuracy", "Margin", "Grad norm"]
    assert panel.plots.view_for("eval/accuracy").point_count(REWARD, "eval/accuracy") == 1


# -- controls: smoothing, x axis, overlay, export ------------------------------------------------------
def test_smoothing_and_time_axis(qtbot, panel):
    click_run(qtbot, panel, HACK)
    wait_shown(qtbot, panel, HACK, "objective/kl", 40)
    view = panel.plots.view_for("objective/kl")
    _x, raw = view.curve_data(HACK, "objective/kl")
    _x, smooth = view.curve_data(HACK, "objective/kl", "smooth")
    assert np.abs(np.diff(smooth)).sum() < np.abs(np.diff(raw)).sum()  # smoothing smooths
    panel.smoothing_slider.setFocus()
    qtbot.keyClick(panel.smoothing_slider, Qt.Key.Key_Home)
    assert panel.smoothing_label.text() == "0.00"
    assert view.point_count(HACK, "objective/kl", "smooth") == 0
    qtbot.keyClick(panel.smoothing_slider, Qt.Key.Key_End)
    _x, heavy = view.curve_data(HACK, "objective/kl", "smooth")
    assert panel.smoothing_label.text() == "0.99" and heavy[-1] < smooth[-1]
    panel.axis_combo.setFocus()
    qtbot.keyClick(panel.axis_combo, Qt.Key.Key_Down)
    assert panel.axis_combo.currentData() == "time"
    x, _ = view.curve_data(HACK, "objective/kl")
    feed = panel.watch_for(HACK).feed
    expected = (feed.store.get("objective/kl").times - feed.started[0].time) / 60.0
    np.testing.assert_allclose(x, expected)
    assert 0 < x[0] < x[-1] < 2  # a 40-step run of about 30 s, in minutes
    assert view.marker_steps() == []  # warning markers are steps: not drawn on a time axis


def test_overlay_two_runs_and_export_png_and_csv(qtbot, panel, tmp_path):
    click_run(qtbot, panel, HACK)
    wait_shown(qtbot, panel, HACK, "objective/scores", 40)
    click_run(qtbot, panel, PPO, Qt.KeyboardModifier.ControlModifier)
    wait_shown(qtbot, panel, PPO, "objective/scores", 30)
    assert panel.primary_run == PPO and panel.overlay_runs == [HACK]  # the clicked row is current
    view = panel.plots.view_for("objective/scores")
    assert view.point_count(HACK, "objective/scores") == 40 and view.point_count(PPO, "objective/scores") == 30
    assert "+ 1 overlaid" in panel.run_label.text()

    png = tmp_path / "plots.png"
    answer_modal(save_as(png))
    qtbot.mouseClick(panel.png_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(png.exists, timeout=5000)
    image = QImage(str(png))
    assert not image.isNull() and image.width() > 600

    out = tmp_path / "metrics.csv"
    answer_modal(save_as(out))
    qtbot.mouseClick(panel.csv_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Saved the metrics" in panel.status_label.text(), timeout=10000)
    rows = list(csv.DictReader(out.open()))
    assert [r["run"] for r in rows].count(PPO) == 30 and [r["run"] for r in rows].count(HACK) == 40
    last = [r for r in rows if r["run"] == HACK][-1]
    assert last["step"] == "40" and float(last["objective/scores"]) == pytest.approx(8.965, abs=1e-3)


# -- delete -----------------------------------------------------------------------------------------
def test_delete_refuses_a_run_others_were_trained_from_and_deletes_a_free_one(qtbot, panel, ws):
    click_run(qtbot, panel, SFT)
    qtbot.waitUntil(lambda: panel.delete_button.isEnabled(), timeout=5000)
    answer_modal(press("Delete"))
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "failed" in panel.status_label.text(), timeout=10000)
    assert "was trained from this run's checkpoints" in panel.status_label.text()
    assert (ws / "runs" / SFT / "events.jsonl").exists()

    # Candidates in the ranking queue were generated from the demo PPO run's checkpoint.
    with Workspace.init(ws) as w, w.transaction() as conn:
        prompt = A.add_prompt(conn, "Tell me about river.")
        A.add_candidate(conn, prompt, "river lovely warm", model="demo-ppo",
                        checkpoint=f"runs/{PPO}/checkpoints/step-30")
    click_run(qtbot, panel, PPO)
    qtbot.waitUntil(lambda: panel.delete_button.isEnabled(), timeout=5000)
    answer_modal(press("Delete"))
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "1 candidate response was generated from this run" in panel.status_label.text(),
                    timeout=10000)
    assert (ws / "runs" / PPO / "events.jsonl").exists()

    click_run(qtbot, panel, INJECTED)
    qtbot.waitUntil(lambda: panel.delete_button.isEnabled(), timeout=5000)
    answer_modal(press("Keep it"))  # asked first; "Keep it" keeps it
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    assert (ws / "runs" / INJECTED).exists()
    qtbot.waitUntil(lambda: panel.delete_button.isEnabled(), timeout=5000)
    answer_modal(press("Delete"))
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.model.row_of(INJECTED) < 0, timeout=10000)
    assert not (ws / "runs" / INJECTED).exists()
    assert not [p for p in (ws / "runs").iterdir() if p.name.startswith(".deleted")]
    assert panel.model.rowCount() == len(RUNS) - 1


def test_importing_the_page_loads_neither_pyqtgraph_nor_torch():
    # pyqtgraph (~0.9 s) is imported when a page is built, on a worker thread; torch never.
    code = ("import sys, ui.training.runs; "
            "print(sorted(m for m in ('pyqtgraph', 'torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3])
    assert out.stdout.strip() == "[]"


def test_samples_slider_follows_the_newest_step_until_moved_back(qtbot, monkeypatch):
    from ui.training.samples_view import SamplesView
    from workbench.jobs.events import SamplesEvent

    monkeypatch.setattr(SamplesView, "MAX_EVENTS", 5)
    view = SamplesView()
    qtbot.addWidget(view)
    view.show()

    def ev(step):
        return SamplesEvent(step=step, rows=[{"prompt": f"p{step}", "response": f"r{step}", "score": step / 10}])
    view.append([ev(1), ev(2)])
    assert view.shown_step == 2
    view.append([ev(3)])
    assert view.shown_step == 3  # following the newest
    view.slider.setFocus()
    qtbot.keyClick(view.slider, Qt.Key.Key_Left)
    assert view.shown_step == 2 and view.rows() == [("p2", "r2", "0.200")]
    view.append([ev(4), ev(5)])
    assert view.shown_step == 2 and view.step_label.text() == "step 2 \u00b7 1 rows"  # stays put
    view.append([ev(6), ev(7)])  # over the limit of 5: steps 1 and 2 go
    assert view.shown_step == 3 and view.slider.maximum() == 4
    qtbot.keyClick(view.slider, Qt.Key.Key_End)
    assert view.shown_step == 7 and view.step_label.text().startswith("step 7 (latest)")


# -- GPU probes, default selection, durations ---------------------------------------------------
def _write_run(ws: Path, run_id: str, stage: str, segments: list[tuple[float, float, str]]) -> Path:
    """A run folder as the job writes it: one ``started``/``finished`` pair per process."""
    path = ws / "runs" / run_id
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(f"stage: {stage}\n", encoding="utf-8")
    lines = []
    for start, end, status in segments:
        lines.append({"type": "started", "run_id": run_id, "stage": stage, "pid": 1, "config": {},
                      "resume_from": None, "time": start})
        lines.append({"type": "finished", "status": status, "error": None, "traceback": None, "time": end})
    (path / "events.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def test_gpu_probes_stay_out_of_the_list_and_the_latest_training_run_is_shown(qtbot, ws):
    # Newer than every training run: each app start added one, and it became the selected run.
    for i, t in enumerate((1795500000.0, 1795600000.0)):
        _write_run(ws, f"2026120{i + 3}-11000{i}-probe-00{i}a", "probe", [(t, t + 4, "completed")])
    _write_run(ws, "20261203-115500-generate-77aa", "generate", [(1795590000.0, 1795590030.0, "completed")])
    p = RunsPanel()
    qtbot.addWidget(p)
    p.resize(1280, 720)
    p.show()
    p.set_workspace(ws)
    try:
        qtbot.waitUntil(lambda: p.model.rowCount() == len(RUNS) + 1, timeout=10000)
        assert not any(r.stage == "probe" for r in p.model.runs)
        qtbot.waitUntil(lambda: p.primary_run is not None, timeout=5000)
        newest_training = max((r for r in p.model.runs if r.stage in ("sft", "reward", "ppo")),
                              key=lambda r: r.run_id)
        assert p.primary_run == newest_training.run_id == PPO   # not the probe, not the generation job
        p.probes_check.setChecked(True)
        assert sum(r.stage == "probe" for r in p.model.runs) == 2
        assert p.primary_run == PPO  # showing the probes keeps the selection
        p.probes_check.setChecked(False)
        assert p.model.rowCount() == len(RUNS) + 1
        # The history is tall enough for several runs at 1280x720.
        rows = p.table.viewport().height() // p.table.verticalHeader().defaultSectionSize()
        assert rows >= 6, rows
    finally:
        p.shutdown()


def test_duration_leaves_out_the_time_a_run_sat_cancelled(qtbot, ws):
    rid = "20261203-100000-sft-c0de"
    # Ran 100 s, was cancelled, resumed a day later, ran 50 s more.
    _write_run(ws, rid, "sft", [(1795400000.0, 1795400100.0, "cancelled"),
                                (1795486400.0, 1795486450.0, "completed")])
    p = RunsPanel()
    qtbot.addWidget(p)
    p.show()
    p.set_workspace(ws)
    try:
        qtbot.waitUntil(lambda: p.model.row_of(rid) >= 0, timeout=10000)
        assert p.model.index(p.model.row_of(rid), 4).data() == "2m 30s"
    finally:
        p.shutdown()
