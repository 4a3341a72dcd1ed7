"""Quitting while a job runs says that it keeps running (and is re-attached), and offers to stop it.
Before, the window closed without a word. Real job processes (the job tests' torch-free recipe)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMessageBox

from workbench.jobs.rundir import cancel_requested
from workbench.jobs.run import EXTRA_RECIPES_ENV
from workbench.jobs.supervisor import Supervisor
from workbench.store.workspace import Workspace

RECIPES = Path(__file__).resolve().parents[1] / "workbench" / "jobs"


@pytest.fixture
def sup(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(RECIPES))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(RECIPES), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv(EXTRA_RECIPES_ENV, "steps=jobs_test_recipes:steps")
    Workspace.init(tmp_path / "ws").close()
    supervisor = Supervisor(tmp_path / "ws")
    yield supervisor
    for info in supervisor.list_runs():
        if info.alive or info.status == "queued":
            supervisor.cancel(info.run_id, timeout=5, term_timeout=2, kill_timeout=2)


def answer_quit(window, button: str, seen: dict) -> None:
    """Click ``button`` in the window's quit question once it is up (gives up after ~5 s)."""
    def poll(left=250):
        box = window.quit_box
        if isinstance(box, QMessageBox) and box.isVisible():
            seen.update(text=box.text(), more=box.informativeText(), default=box.defaultButton().text(),
                        buttons=[b.text() for b in box.buttons()])
            next(b for b in box.buttons() if b.text() == button).click()
        elif left:
            QTimer.singleShot(20, lambda: poll(left - 1))
    QTimer.singleShot(0, poll)


def _window(qtbot, make_window, sup):
    window = make_window(sup.root)
    qtbot.waitUntil(lambda: bool(window.active_jobs()), timeout=15000)
    return window


def test_quitting_while_a_job_runs_says_it_keeps_running_and_can_stay(qtbot, make_window, sup):
    run = sup.start("steps", {"n_steps": 400, "step_s": 0.05, "every": 5})
    queued = sup.start("steps", {"n_steps": 5, "step_s": 0.01})
    window = _window(qtbot, make_window, sup)
    qtbot.waitUntil(lambda: len(window.active_jobs()) == 2, timeout=15000)
    seen: dict = {}
    answer_quit(window, "Don't quit", seen)
    assert window.close() is False                              # asked first
    qtbot.waitUntil(lambda: window.quit_box is None and bool(seen))
    assert window.isVisible()                                   # stayed
    assert seen["text"].startswith("1 job still running: " + run.run_id.split("-", 2)[2])
    assert "keep running after you quit" in seen["more"] and "re-attaches" in seen["more"]
    assert "1 queued job starts once the workspace is open again" in seen["more"]
    assert sorted(seen["buttons"]) == ["Don't quit", "Quit, keep running", "Stop and quit"]
    assert seen["default"] == "Quit, keep running"
    answer_quit(window, "Quit, keep running", seen)
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible())
    assert sup.info(run.run_id).status == "running" and not cancel_requested(sup.run_dir(run.run_id))


def test_stop_and_quit_asks_the_job_to_stop(qtbot, make_window, sup):
    run = sup.start("steps", {"n_steps": 400, "step_s": 0.05, "every": 5})
    queued = sup.start("steps", {"n_steps": 5, "step_s": 0.01})
    window = _window(qtbot, make_window, sup)
    qtbot.waitUntil(lambda: len(window.active_jobs()) == 2, timeout=15000)
    answer_quit(window, "Stop and quit", {})
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible())
    assert cancel_requested(sup.run_dir(run.run_id))
    assert sup.info(queued.run_id).status == "cancelled"
    assert sup.wait(run.run_id, timeout=20).status == "cancelled"  # stopped by itself at a step


def test_no_question_without_jobs_or_on_a_termination_signal(qtbot, make_window, sup):
    window = make_window(sup.root)
    assert window.close() is True                               # nothing runs: closes at once
    sup.start("steps", {"n_steps": 400, "step_s": 0.05, "every": 5})
    other = _window(qtbot, make_window, sup)
    assert other.close_without_asking() is True and other.quit_box is None
