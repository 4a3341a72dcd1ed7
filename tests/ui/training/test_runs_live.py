"""Runs page against real PPO jobs on tiny models: live curves, and re-attach without gaps or duplicates.

Each test starts a real ``ppo`` job process (the workbench's engine on a
tiny Llama policy and reward model, CPU, one thread) through the
supervisor, exactly as the Train page does, and watches it through the page.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from workbench.jobs.events import LogEvent, MetricEvent, SamplesEvent, read_events
from workbench.jobs.supervisor import Supervisor
from ui.training.runs import RunsPanel

from .conftest import JOB_ENV

METRIC = "objective/scores"


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """A tiny policy and reward model, built in a child process (this GUI test process stays torch-free)."""
    root = tmp_path_factory.mktemp("tiny")
    code = textwrap.dedent(f"""
        from workbench.models.tiny import build_tiny_model, build_tiny_reward_model
        policy = build_tiny_model({str(root / 'policy')!r})
        build_tiny_reward_model({str(root / 'reward')!r}, policy, seed=1)
    """)
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, **JOB_ENV},
                   cwd=Path(__file__).resolve().parents[3], timeout=300)
    return {"policy": root / "policy", "reward": root / "reward"}


@pytest.fixture
def sup(tmp_path, monkeypatch):
    for key, value in JOB_ENV.items():
        monkeypatch.setenv(key, value)
    supervisor = Supervisor(tmp_path / "ws")
    yield supervisor
    for info in supervisor.list_runs():
        if info.alive:
            supervisor.cancel(info.run_id, timeout=5, term_timeout=2, kill_timeout=2)


def ppo_config(models, total_steps: int) -> dict:
    from workbench.models.tiny import demo_prompts

    return {"policy_model": str(models["policy"]), "reward_model": str(models["reward"]),
            "prompts": demo_prompts()[:12], "device": "cpu", "dtype": "fp32", "batch_size": 8,
            "mini_batch_size": 4, "ppo_epochs": 1, "max_new_tokens": 8, "lr": 1e-3, "lora_r": 4, "lora_alpha": 8,
            "total_steps": total_steps, "save_every": 0, "samples_every": 5, "num_samples": 4, "seed": 0}


@pytest.fixture
def open_panel(qtbot, sup):
    """``open_panel()``: a shown page on ``sup``'s workspace; every one is shut down at the end
    (its worker threads stopped) even when the test fails half-way."""
    panels = []

    def make() -> RunsPanel:
        panel = RunsPanel()
        qtbot.addWidget(panel)
        panel.resize(1280, 800)
        panel.show()
        panel.set_workspace(sup.root)
        panels.append(panel)
        return panel
    yield make
    for panel in panels:
        panel.shutdown()


def points(panel: RunsPanel, run_id: str) -> int:
    view = panel.plots.view_for(METRIC)
    return 0 if view is None else view.point_count(run_id, METRIC)


def status(panel: RunsPanel, run_id: str) -> str:
    row = panel.model.row_of(run_id)
    return panel.model.index(row, 2).data() if row >= 0 else ""


def file_metric_steps(path: Path) -> list[int]:
    return [e.step for e in read_events(path / "events.jsonl") if isinstance(e, MetricEvent) and METRIC in e.values]


def test_curves_grow_while_a_real_ppo_job_runs(qtbot, sup, tiny_models, open_panel):
    panel = open_panel()
    handle = sup.start("ppo", ppo_config(tiny_models, total_steps=40))
    panel.select_run(handle.run_id)  # what the Train page does after starting a run
    assert panel.primary_run == handle.run_id
    seen = []

    def grew():
        n = points(panel, handle.run_id)
        if n and (not seen or n != seen[-1]):
            seen.append(n)
        return len(seen) >= 3
    qtbot.waitUntil(grew, timeout=90000)
    assert status(panel, handle.run_id) == "running" and seen == sorted(seen) and seen[-1] < 40
    assert panel.model.row_of(handle.run_id) >= 0 and panel.table.currentIndex().row() == \
        panel.model.row_of(handle.run_id)  # its row got selected once listed
    qtbot.waitUntil(lambda: status(panel, handle.run_id) == "completed" and points(panel, handle.run_id) == 40,
                    timeout=90000)
    view = panel.plots.view_for(METRIC)
    x, y = view.curve_data(handle.run_id, METRIC)
    assert x.tolist() == list(range(1, 41)) and np.isfinite(y).all()
    assert file_metric_steps(handle.path) == list(range(1, 41))
    # Samples arrived as the job reported them (steps 1, 5, 10, ..., 40), the newest shown.
    qtbot.waitUntil(lambda: panel.samples_view.shown_step == 40, timeout=10000)
    assert len(panel.samples_view.rows()) == 4 and panel.samples_view.slider.maximum() == 8
    qtbot.waitUntil(lambda: panel.model.key_metric(handle.run_id).startswith("score "), timeout=10000)


def test_reattach_mid_run_continues_without_gaps_or_duplicates(qtbot, sup, tiny_models, open_panel):
    handle = sup.start("ppo", ppo_config(tiny_models, total_steps=80))
    first = open_panel()
    # Nothing chosen: the page shows the running run by itself.
    qtbot.waitUntil(lambda: first.primary_run == handle.run_id, timeout=30000)
    qtbot.waitUntil(lambda: points(first, handle.run_id) >= 5, timeout=90000)
    before = points(first, handle.run_id)
    first.shutdown()
    first.close()
    # While no page watches, the job keeps writing.
    qtbot.waitUntil(lambda: len(file_metric_steps(handle.path)) >= before + 10, timeout=60000)

    second = open_panel()
    qtbot.waitUntil(lambda: second.primary_run == handle.run_id and points(second, handle.run_id) >= before + 10,
                    timeout=30000)
    rebuilt = points(second, handle.run_id)
    assert status(second, handle.run_id) == "running"
    qtbot.waitUntil(lambda: points(second, handle.run_id) > rebuilt, timeout=60000)  # and it keeps tailing
    qtbot.waitUntil(lambda: status(second, handle.run_id) == "completed" and points(second, handle.run_id) == 80,
                    timeout=90000)
    x, _y = second.plots.view_for(METRIC).curve_data(handle.run_id, METRIC)
    assert x.tolist() == list(range(1, 81))  # contiguous: no gap, no duplicate
    events = read_events(handle.path / "events.jsonl")
    feed = second.watch_for(handle.run_id).feed
    assert len(feed.samples) == sum(isinstance(e, SamplesEvent) for e in events)
    assert [s.step for s in feed.samples] == sorted({s.step for s in feed.samples})
    logs = [e for e in events if isinstance(e, LogEvent)]
    shown = second.log_view.events_view.toPlainText().splitlines()
    assert len(shown) == len(logs) and all(e.message in line for e, line in zip(logs, shown))
