"""kill -9 of a real PPO job process after a checkpoint, then resume through the supervisor:
the run continues from the checkpoint and, with the same seed, its metrics match an
uninterrupted run of the same config."""

from __future__ import annotations

import math
import os
import signal
import time

import pytest

from workbench.jobs import run as J
from workbench.jobs.events import CheckpointEvent, MetricEvent, StartedEvent, read_events
from workbench.jobs.rundir import new_run_dir
from workbench.jobs.supervisor import Supervisor

TIMING = {"time/step_s", "eps"}


@pytest.fixture(scope="module")
def models(ppo_models):
    """The sharpened tiny policy (PPO visibly moves it) and the tiny reward model."""
    return {"policy": ppo_models["sharp"], "reward": ppo_models["reward"]}


def _config(models) -> dict:
    from workbench.models.tiny import demo_prompts

    return {"policy_model": str(models["policy"]), "reward_model": str(models["reward"]),
            "prompts": demo_prompts()[:12], "batch_size": 8, "mini_batch_size": 4, "ppo_epochs": 2,
            "max_new_tokens": 8, "lr": 3e-3, "kl_coef": 0.1, "adaptive_kl": True, "kl_target": 0.5,
            "lora_r": 4, "lora_alpha": 8, "total_steps": 24, "save_every": 2, "samples_every": 100,
            "seed": 11}


def _by_step(events, *, after_last_start: bool = False) -> dict[int, dict]:
    if after_last_start:
        starts = [i for i, e in enumerate(events) if isinstance(e, StartedEvent)]
        events = events[starts[-1]:]
    return {e.step: e.values for e in events if isinstance(e, MetricEvent)}


def test_kill_9_after_a_checkpoint_then_resume_matches_an_uninterrupted_run(models, tmp_path):
    reference_dir = new_run_dir(tmp_path / "reference", "ppo", _config(models))
    assert J.run_job(reference_dir) == J.EXIT_COMPLETED
    expected = _by_step(read_events(reference_dir.events))
    assert sorted(expected) == list(range(1, 25))

    ws = tmp_path / "ws"
    (ws / "runs").mkdir(parents=True)
    sup = Supervisor(ws)
    handle = sup.start("ppo", _config(models))
    tailer = sup.tail(handle.run_id)
    deadline = time.monotonic() + 120
    checkpoint_step = None
    while checkpoint_step is None and time.monotonic() < deadline:
        for ev in tailer.read():
            if isinstance(ev, CheckpointEvent):
                checkpoint_step = ev.step
        time.sleep(0.02)
    assert checkpoint_step is not None, "no checkpoint within the time limit"
    info = sup.info(handle.run_id)
    assert info.alive and info.status == "running"
    os.kill(info.pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while sup.info(handle.run_id).alive and time.monotonic() < deadline:
        time.sleep(0.05)
    died = sup.info(handle.run_id)
    assert died.status == "failed" and not died.alive

    sup.resume(handle.run_id)
    final = sup.wait(handle.run_id, timeout=180, poll=True)
    assert final.status == "completed", final.error
    events = read_events(handle.path / "events.jsonl")
    starts = [e for e in events if isinstance(e, StartedEvent)]
    assert len(starts) == 2 and starts[-1].resume_from is not None
    resumed_from = int(str(starts[-1].resume_from).rstrip("/").rsplit("step-", 1)[1])
    assert resumed_from >= checkpoint_step
    resumed = _by_step(events, after_last_start=True)
    assert sorted(resumed) == list(range(resumed_from + 1, 25))
    for step, values in resumed.items():
        for name, want in expected[step].items():
            if name in TIMING:
                continue
            assert math.isclose(values[name], want, rel_tol=1e-4, abs_tol=1e-6), (step, name, values[name], want)
