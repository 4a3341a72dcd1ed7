"""Runs page actions on real job processes: the queue, cancel, resume, and the failure panel.

The jobs run the job tests' torch-free recipes (``tests/workbench/jobs/jobs_test_recipes.py``,
registered through ``$WORKBENCH_EXTRA_RECIPES``) under the real runner and
supervisor, so each starts in a fraction of a second.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from workbench.jobs.run import EXTRA_RECIPES_ENV, OOM_ADVICE
from workbench.jobs.supervisor import Supervisor
from ui.training.run_history import short_run_name
from ui.training.runs import RunsPanel

RECIPES = Path(__file__).resolve().parents[2] / "workbench" / "jobs"


@pytest.fixture
def sup(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(RECIPES))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(RECIPES), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv(EXTRA_RECIPES_ENV, "steps=jobs_test_recipes:steps;oom=jobs_test_recipes:oom;"
                       "report_all=jobs_test_recipes:report_all")
    supervisor = Supervisor(tmp_path / "ws")
    yield supervisor
    for info in supervisor.list_runs():
        if info.alive or info.status == "queued":
            supervisor.cancel(info.run_id, timeout=5, term_timeout=2, kill_timeout=2)


@pytest.fixture
def panel(qtbot, sup):
    p = RunsPanel()
    qtbot.addWidget(p)
    p.resize(1280, 800)
    p.show()
    p.set_workspace(sup.root)
    yield p
    p.shutdown()


def click_run(qtbot, panel: RunsPanel, rid: str) -> None:
    rect = panel.table.visualRect(panel.model.index(panel.model.row_of(rid), 0))
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.primary_run == rid


def status(panel: RunsPanel, rid: str) -> str:
    row = panel.model.row_of(rid)
    return panel.model.index(row, 2).data() if row >= 0 else ""


def answer(button_text: str, tries: int = 250, seen: dict | None = None) -> None:
    """Click ``button_text`` in the next message box once it is up (gives up after ~5 s); ``seen``
    gets the box's button texts and its default button's."""
    def poll(left=tries):
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and box.isVisible():
            if seen is not None:
                seen.update(buttons=sorted(b.text() for b in box.buttons()), default=box.defaultButton().text())
            next(b for b in box.buttons() if b.text() == button_text).click()
        elif left:
            QTimer.singleShot(20, lambda: poll(left - 1))
    QTimer.singleShot(0, poll)


def test_queue_cancel_and_resume(qtbot, sup, panel):
    slow = {"n_steps": 400, "step_s": 0.05, "every": 5}
    a = sup.start("steps", slow)
    b = sup.start("steps", slow)
    c = sup.start("steps", slow)
    qtbot.waitUntil(lambda: [status(panel, r.run_id) for r in (b, c, a)] == ["queued #1", "queued #2", "running"],
                    timeout=15000)
    assert [r.run_id for r in panel.model.runs] == [b.run_id, c.run_id, a.run_id]  # the queue on top, in order
    label = panel.queue_label.text()
    assert f"running: {short_run_name(a.run_id)}" in label
    assert f"queue: #1 {short_run_name(b.run_id)}, #2 {short_run_name(c.run_id)}" in label
    # The running run's curve is live (a stage without a plot set plots what it reports).
    qtbot.waitUntil(lambda: panel.plots.view_for("loss") is not None
                    and panel.plots.view_for("loss").point_count(a.run_id, "loss") > 3, timeout=15000)

    # Take the last queued run out of the queue.
    click_run(qtbot, panel, c.run_id)
    assert panel.cancel_button.isEnabled() and not panel.resume_button.isEnabled()
    answer("Remove from queue")
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: status(panel, c.run_id) == "cancelled", timeout=15000)

    # Stop the running one: it saves a checkpoint, and the queue moves on.
    click_run(qtbot, panel, a.run_id)
    seen: dict = {}
    answer("Stop run", seen=seen)
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    # Two unambiguous verbs (not "Cancel" beside "Cancel run"); Enter keeps it running.
    assert seen == {"buttons": ["Keep running", "Stop run"], "default": "Keep running"}
    qtbot.waitUntil(lambda: status(panel, a.run_id) == "cancelled" and status(panel, b.run_id) == "running",
                    timeout=20000)
    assert (a.path / "checkpoints").is_dir() and any((a.path / "checkpoints").iterdir())
    qtbot.waitUntil(lambda: panel.failure_panel.isVisible(), timeout=5000)
    assert panel.failure_panel.title_label.text() == "The run was cancelled"
    assert "step boundary" in panel.failure_panel.message_label.text()

    # Resume it: it waits behind the running run.
    qtbot.waitUntil(panel.resume_button.isEnabled, timeout=5000)
    qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: status(panel, a.run_id) == "queued #1", timeout=15000)
    assert not panel.failure_panel.isVisible()  # live again


def test_a_failed_run_shows_the_engines_advice_and_traceback(qtbot, sup, panel):
    handle = sup.start("oom", {})
    panel.select_run(handle.run_id)
    qtbot.waitUntil(lambda: status(panel, handle.run_id) == "failed", timeout=15000)
    qtbot.waitUntil(panel.failure_panel.isVisible, timeout=5000)
    fp = panel.failure_panel
    assert fp.title_label.text() == "The run failed"
    assert fp.message_label.text().startswith(OOM_ADVICE)
    assert not fp.traceback_view.isVisible()
    qtbot.mouseClick(fp.traceback_button, Qt.MouseButton.LeftButton)
    assert fp.traceback_view.isVisible() and "CUDA out of memory" in fp.traceback_view.toPlainText()
    assert panel.resume_button.isEnabled() and not panel.cancel_button.isEnabled()
    row = panel.model.row_of(handle.run_id)
    assert panel.model.index(row, 2).data(Qt.ItemDataRole.ToolTipRole).startswith(OOM_ADVICE)
    # The traceback also went to stderr.log, which the log console shows.
    qtbot.waitUntil(lambda: "RuntimeError" in panel.log_view.stderr_view.toPlainText(), timeout=5000)


def test_the_jobs_own_warnings_nan_metrics_and_odd_scores_are_shown(qtbot, sup, panel):
    # report_all: a metric event with a NaN loss, samples scored -inf and unscored, a kl_high warning.
    handle = sup.start("report_all", {})
    panel.select_run(handle.run_id)
    qtbot.waitUntil(lambda: status(panel, handle.run_id) == "completed", timeout=15000)
    qtbot.waitUntil(lambda: len(panel.health_view.cards) == 2, timeout=5000)
    texts = panel.health_view.texts()
    assert texts[0].startswith("loss is NaN: loss became NaN at step 1")  # the rule, then the job
    assert texts[1] == "KL high: KL is high"
    assert panel.health_view.cards[1].when_label.text() == "reported by the job at step 1"
    assert panel.samples_view.rows() == [("p", "r", "-inf"), ("q", "s", "")]
    assert "done" in panel.log_view.events_view.toPlainText()  # a debug-level log line
