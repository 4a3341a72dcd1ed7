"""The supervisor with real job processes: the probe end to end, failures,
cancel (cooperative, SIGTERM, SIGKILL), a killed job, the queue and resume."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from workbench.jobs.events import (CheckpointEvent, FinishedEvent, LogEvent, MetricEvent,
                                   StartedEvent, read_events)
from workbench.jobs.rundir import latest_complete_checkpoint, new_run_dir
from workbench.jobs.run import OFFLINE_ENV, UnknownStageError
from workbench.jobs.supervisor import JobStateError, Supervisor


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_probe_job_end_to_end(sup):
    handle = sup.start("probe", {})
    info = handle.wait(timeout=60)
    assert info.status == "completed" and not info.alive and info.error is None
    assert info.stage == "probe" and info.started <= info.ended
    events = read_events(handle.path / "events.jsonl")
    assert [type(e) for e in events] == [StartedEvent, LogEvent, FinishedEvent]
    assert events[0].pid == info.pid and events[0].run_id == handle.run_id
    assert events[1].message.startswith("torch ")
    assert events[2].status == "completed"
    probe = json.loads((handle.path / "probe.json").read_text())
    for key in ("torch", "cuda_available", "gpu_name", "total_memory", "free_memory",
                "bf16_supported", "bitsandbytes"):
        assert key in probe
    assert isinstance(probe["bitsandbytes"]["importable"], bool)
    env = json.loads((handle.path / "env.json").read_text())
    assert env["packages"]["torch"] and "cuda" in env and "gpu_name" in env
    assert [i.run_id for i in sup.list_runs()] == [handle.run_id]
    assert gone(info.pid)


def test_start_rejects_an_unknown_stage(sup):
    with pytest.raises(UnknownStageError, match="unknown stage 'warp'; known stages: .*probe"):
        sup.start("warp", {})
    assert sup.list_runs() == []


def test_a_config_with_an_unknown_stage_fails_in_the_job(sup):
    rd = new_run_dir(sup.runs_dir, "warp", {})  # e.g. a hand-written config
    rc = subprocess.run([sys.executable, "-m", "workbench.jobs.run", str(rd.path)],
                        timeout=60).returncode
    assert rc == 1
    info = sup.info(rd.run_id)
    assert info.status == "failed" and info.error.startswith("unknown stage 'warp'")
    assert "UnknownStageError" in rd.stderr.read_text()


def test_a_failing_recipe_records_its_traceback_in_events_and_stderr_log(sup):
    handle = sup.start("fail", {})
    info = handle.wait(timeout=30)
    assert info.status == "failed" and info.error == "RuntimeError: boom from a test recipe"
    finished = read_events(handle.path / "events.jsonl")[-1]
    assert "jobs_test_recipes.py" in finished.traceback
    assert finished.traceback.strip() in (handle.path / "stderr.log").read_text()


def test_jobs_run_offline_in_their_run_dir(sup, monkeypatch, wait_for):
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")  # a user's own setting wins
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    handle = sup.start("report_env", {})
    assert handle.wait(timeout=30).status == "completed"
    log = next(e for e in read_events(handle.path / "events.jsonl") if isinstance(e, LogEvent))
    report = json.loads(log.message)
    assert report["env"] == {**OFFLINE_ENV, "TRANSFORMERS_OFFLINE": "0"}
    assert os.path.samefile(report["cwd"], handle.path)


def test_cancel_a_probe_holding_the_device_from_a_restarted_supervisor(sup, wait_for):
    handle = sup.start("probe", {"hold_s": 60})
    wait_for(handle.tail(), lambda e: isinstance(e, LogEvent) and "holding" in e.message)
    pid = handle.info().pid
    # A restarted GUI: a new supervisor re-attaches through the run dir alone.
    other = Supervisor(sup.root)
    assert other.info(handle.run_id).status == "running"
    t0 = time.monotonic()
    info = other.cancel(handle.run_id, timeout=10)
    assert time.monotonic() - t0 < 5
    assert info.status == "cancelled" and not info.alive
    assert info.error == "cancelled by request"
    sup.info(handle.run_id)  # the parent reaps its child
    assert gone(pid) and not psutil.pid_exists(pid)


def test_cancel_escalates_to_sigterm(sup, wait_for):
    handle = sup.start("ignore_cancel", {})
    wait_for(handle.tail(), lambda e: isinstance(e, LogEvent))
    info = sup.cancel(handle.run_id, timeout=0.3, term_timeout=10)
    assert info.status == "cancelled" and "SIGTERM" in info.error and not info.alive


def test_cancel_escalates_to_sigkill_and_records_the_end(sup, wait_for):
    handle = sup.start("ignore_sigterm", {})
    wait_for(handle.tail(), lambda e: isinstance(e, LogEvent))
    info = sup.cancel(handle.run_id, timeout=0.2, term_timeout=0.3)
    assert info.status == "cancelled" and info.error.startswith("killed") and not info.alive
    assert isinstance(read_events(handle.path / "events.jsonl")[-1], FinishedEvent)
    assert gone(info.pid)


def test_a_job_killed_with_sigkill_is_reported_failed(sup, wait_for):
    handle = sup.start("steps", {"n_steps": 1000, "step_s": 0.05})
    wait_for(handle.tail(), lambda e: isinstance(e, MetricEvent))
    os.kill(handle.info().pid, signal.SIGKILL)
    info = handle.wait(timeout=10)
    assert info.status == "failed" and "died" in info.error and info.last_step is not None
    assert Supervisor(sup.root).info(handle.run_id).status == "failed"


def test_one_job_at_a_time_the_next_starts_on_poll(sup, wait_for):
    first = sup.start("steps", {"n_steps": 10, "step_s": 0.05})
    second = sup.start("steps", {"n_steps": 2, "step_s": 0})
    assert first.info().status == "running"
    assert second.info().status == "queued" and second.info().pid is None
    assert sup.poll() == [] and Supervisor(sup.root).poll() == []  # GPU busy
    assert first.wait(timeout=30).status == "completed"
    assert second.info().status == "queued"  # nobody polled yet
    assert sup.poll() == [second.run_id]
    assert Supervisor(sup.root).poll() == []  # another supervisor sees it running
    assert second.wait(timeout=30).status == "completed"
    assert [i.status for i in sup.list_runs()] == ["completed", "completed"]


def test_a_queued_run_can_be_cancelled_before_it_starts(sup):
    first = sup.start("steps", {"n_steps": 1000, "step_s": 0.05})
    second = sup.start("steps", {"n_steps": 2, "step_s": 0})
    info = second.cancel()
    assert info.status == "cancelled" and info.error == "cancelled before it started"
    assert first.cancel(timeout=10).status == "cancelled"
    assert sup.poll() == [] and second.info().status == "cancelled"


def test_resume_continues_from_the_latest_complete_checkpoint(sup, wait_for):
    handle = sup.start("steps", {"n_steps": 30, "step_s": 0.05})
    wait_for(handle.tail(), lambda e: isinstance(e, MetricEvent) and e.step >= 3)
    info = handle.cancel(timeout=10)
    assert info.status == "cancelled"
    ckpt = latest_complete_checkpoint(handle.path)
    stopped_at = int(ckpt.name.split("-")[1])
    with pytest.raises(JobStateError, match="only a cancelled or failed run"):
        sup.resume(sup.start("steps", {"n_steps": 1, "step_s": 0}).run_id, queue=False)

    sup.resume(handle.run_id)
    info = sup.wait(handle.run_id, timeout=30, poll=True)
    assert info.status == "completed" and info.last_step == 29
    events = read_events(handle.path / "events.jsonl")
    starts = [i for i, e in enumerate(events) if isinstance(e, StartedEvent)]
    assert len(starts) == 2
    resumed = events[starts[1]:]
    assert resumed[0].resume_from == f"checkpoints/step-{stopped_at}"
    assert resumed[1].message == f"resuming from checkpoints/step-{stopped_at}"
    steps = [e.step for e in resumed if isinstance(e, MetricEvent)]
    assert steps == list(range(stopped_at + 1, 30))
    assert any(isinstance(e, CheckpointEvent) for e in events[:starts[1]])
    with pytest.raises(JobStateError, match="is completed"):
        sup.resume(handle.run_id)


def test_prune_keeps_the_newest_finished_runs_of_a_stage_and_never_a_live_one(sup, wait_for):
    finished = []
    for _ in range(3):
        handle = sup.start("steps", {"n_steps": 1, "step_s": 0.0})
        assert handle.wait(timeout=60).status == "completed"
        finished.append(handle.run_id)
        time.sleep(1.05)  # run ids carry the start second: keep them in start order
    other = sup.start("report_env", {})
    assert other.wait(timeout=60).status == "completed"
    live = sup.start("steps", {"n_steps": 400, "step_s": 0.05})
    wait_for(live.tail(), lambda e: isinstance(e, MetricEvent))

    removed = sup.prune("steps", keep=1)

    assert removed == finished[:2]
    listed = [r.run_id for r in sup.list_runs()]
    assert listed == sorted([finished[2], other.run_id, live.run_id])
    assert not any(p.name.startswith(".deleted-") for p in sup.runs_dir.iterdir())
    assert sup.info(live.run_id).status == "running"
    sup.cancel(live.run_id)


def test_a_deeply_nested_events_line_breaks_neither_the_queue_nor_the_cli(sup):
    """One hostile line (~1000 levels) in an old run's events: listing, showing and
    starting a new run all work (they crashed with RecursionError, leaving the new run queued)."""
    from workbench.jobs.events import encode
    from workbench.store.workspace import Workspace

    Workspace.init(sup.root).close()
    old = new_run_dir(sup.runs_dir, "probe", {})
    deep = '{"type":"log","level":"info","message":' + "[" * 1000 + "]" * 1000 + "}"
    old.events.write_text(encode(StartedEvent(run_id=old.run_id, stage="probe", pid=1)) + "\n" + deep + "\n"
                          + encode(FinishedEvent(status="cancelled")) + "\n")
    assert [(i.run_id, i.status) for i in sup.list_runs()] == [(old.run_id, "cancelled")]
    info = sup.start("probe", {}).wait(timeout=60)
    assert info.status == "completed"
    for args in (["runs", "list"], ["runs", "show", old.run_id]):
        proc = subprocess.run([sys.executable, "-m", "workbench.cli", *args, "--workspace", str(sup.root)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        assert old.run_id in proc.stdout
