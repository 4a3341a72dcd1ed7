"""``rlhf-workbench demo --build-only``: the machine-readable progress the GUI parses,
and a cancel (SIGTERM) or a crashed attempt never leaves a half-built demo behind.

Real subprocesses and real jobs; the full build is exercised by the GUI test
(tests/ui/test_demo_builder.py), here the build is cancelled once its SFT job runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from workbench.cli import DEMO_BUILDING_MARKER, demo_is_complete, discard_partial_demo
from workbench.jobs.supervisor import Supervisor

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX process groups")

ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1",
       "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def _demo(target: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "demo", "--build-only", "--quick", "--progress-jsonl",
         "--workspace", str(target), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)


def _wait_gone(pid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_progress_lines_then_sigterm_stops_the_job_and_removes_the_build(tmp_path):
    target = tmp_path / "demo"
    proc = _demo(target)
    lines: list[dict] = []
    try:
        for raw in proc.stdout:  # blocks on the child's output, ends when it closes stdout
            lines.append(json.loads(raw))
            if "SFT: started run" in lines[-1].get("message", ""):
                break
        else:
            pytest.fail(f"no SFT run started; stderr: {proc.stderr.read()}")
        assert (target / DEMO_BUILDING_MARKER).is_file()
        assert not demo_is_complete(target)
        run_id = lines[-1]["message"].rsplit(" ", 1)[-1]
        job = Supervisor(target).info(run_id)
        assert job.alive and job.pid is not None

        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "cancelled" in proc.stderr.read()
    # The SFT job ran in its own session: the builder had to stop it itself.
    assert _wait_gone(job.pid), "the SFT job outlived the cancelled build"
    assert not target.exists()

    assert all(line["event"] == "progress" for line in lines)
    fractions = [line["fraction"] for line in lines]
    assert fractions == sorted(fractions) and 0.0 <= fractions[0] and fractions[-1] < 1.0
    assert lines[0]["message"] == "building the tiny base model"


def test_refuses_a_folder_that_is_not_empty(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    result = subprocess.run([sys.executable, "-m", "workbench.cli", "demo", "--build-only",
                             "--workspace", str(target)], capture_output=True, text=True, env=ENV,
                            timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {target}: not an empty folder; build the demo into a new folder"
    assert (target / "notes.txt").read_text() == "keep me"


def test_refuses_while_another_builder_is_alive(tmp_path):
    target = tmp_path / "demo"
    target.mkdir()
    me = psutil.Process()  # this test process plays the live builder
    (target / DEMO_BUILDING_MARKER).write_text(json.dumps(
        {"pid": me.pid, "create_time": me.create_time(), "started": time.time()}))
    result = subprocess.run([sys.executable, "-m", "workbench.cli", "demo", "--build-only",
                             "--workspace", str(target)], capture_output=True, text=True, env=ENV,
                            timeout=60)
    assert result.returncode == 1
    assert f"a demo build is already running there (pid {me.pid})" in result.stderr
    assert (target / DEMO_BUILDING_MARKER).is_file()


def test_discard_stops_a_leftover_job_and_only_touches_marked_folders(tmp_path):
    """What the next attempt (and the GUI after a SIGKILL) does with a crashed build."""
    partial = tmp_path / "demo"
    (partial / "models" / "demo-base").mkdir(parents=True)
    (partial / "models" / "demo-base" / "config.json").write_text("{}")
    (partial / DEMO_BUILDING_MARKER).write_text(json.dumps({"pid": 1, "create_time": 0.0}))
    held = Supervisor(partial).start("probe", {"hold_s": 120}, queue=False)
    deadline = time.monotonic() + 30
    while not held.info().alive and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = held.info().pid
    assert pid is not None and held.info().alive

    user_ws = tmp_path / "user"
    (user_ws / "runs").mkdir(parents=True)
    (user_ws / "workspace.sqlite").write_bytes(b"")
    assert discard_partial_demo(user_ws) is False
    assert (user_ws / "workspace.sqlite").exists() and demo_is_complete(user_ws)

    assert discard_partial_demo(partial) is True
    assert not partial.exists()
    assert _wait_gone(pid)
