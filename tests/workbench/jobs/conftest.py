"""Fixtures for the job tests: test recipes on the path, and a supervisor that
leaves no process behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from workbench.jobs.events import EventTailer
from workbench.jobs.run import EXTRA_RECIPES_ENV
from workbench.jobs.supervisor import Supervisor

HERE = Path(__file__).resolve().parent
TEST_RECIPES = ("fail", "oom", "report_env", "report_all", "steps", "ignore_cancel",
                "ignore_sigterm")


@pytest.fixture
def test_recipes(monkeypatch):
    """Register :mod:`jobs_test_recipes` for this process and for the jobs it spawns."""
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv(EXTRA_RECIPES_ENV,
                       ";".join(f"{name}=jobs_test_recipes:{name}" for name in TEST_RECIPES))


@pytest.fixture
def sup(tmp_path, test_recipes):
    supervisor = Supervisor(tmp_path / "ws")
    yield supervisor
    # Kill whatever a failed test left running, and reap it.
    for info in supervisor.list_runs():
        if info.alive and info.pid:
            try:
                os.killpg(info.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            supervisor.wait(info.run_id, timeout=10)


@pytest.fixture
def wait_for():
    """``wait_for(tailer, predicate, timeout)``: read events until one matches; returns all read."""
    return _wait_for


def _wait_for(tailer: EventTailer, predicate, timeout: float = 30.0) -> list:
    events: list = []
    deadline = time.monotonic() + timeout
    while True:
        events.extend(tailer.read())
        if any(predicate(e) for e in events):
            return events
        if time.monotonic() > deadline:
            raise AssertionError(f"no matching event within {timeout} s; got {events}")
        time.sleep(0.02)
