"""Checkpoint verification and the resume fallback: a damaged newest checkpoint is
skipped with a warning naming it, a chosen one is used (or refused if damaged)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import save_file

from workbench.jobs import run as J
from workbench.jobs.checkpoints import CheckpointError, resume_checkpoint, verify_checkpoint
from workbench.jobs.events import LogEvent, StartedEvent, WarningEvent, read_events
from workbench.jobs.rundir import COMPLETE, atomic_checkpoint, new_run_dir

REGISTRY = {"steps": "jobs_test_recipes:steps"}


def write_model_checkpoint(rd, step):
    """A checkpoint shaped like a TRL recipe's: manifest, adapter weights, optimizer, state."""
    import torch

    with atomic_checkpoint(rd, step) as d:
        save_file({"lora_A": np.ones((8, 4), np.float32), "lora_B": np.zeros((4, 8), np.float32)},
                  str(d / "adapter_model.safetensors"))
        (d / "adapter_config.json").write_text(json.dumps({"r": 4, "base_model_name_or_path": "m"}))
        (d / "workbench.json").write_text(json.dumps({"adapter": True, "step": step, "stage": "sft"}))
        torch.save({"state": {0: {"exp_avg": torch.zeros(8, 4)}}}, d / "optimizer.pt")
        (d / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return rd.checkpoints / f"step-{step}"


def forget_sizes(folder):
    """What a checkpoint written before sizes were recorded looks like."""
    marker = json.loads((folder / COMPLETE).read_text())
    marker.pop("files")
    (folder / COMPLETE).write_text(json.dumps(marker))


@pytest.fixture
def rd(tmp_path):
    return new_run_dir(tmp_path / "runs", "sft", {})


def truncate(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[:keep])


def test_a_whole_checkpoint_verifies(rd):
    assert verify_checkpoint(write_model_checkpoint(rd, 10)) is None


@pytest.mark.parametrize("sizes_recorded", [True, False])
def test_a_truncated_weights_file_is_found(rd, sizes_recorded):
    folder = write_model_checkpoint(rd, 10)
    if not sizes_recorded:
        forget_sizes(folder)
    truncate(folder / "adapter_model.safetensors", 100)
    problem = verify_checkpoint(folder)
    assert problem.startswith("adapter_model.safetensors")
    if not sizes_recorded:  # the header itself says what is wrong
        assert "bytes" in problem and ("header" in problem or "describes" in problem)


def test_damage_each_check_finds(rd):
    folder = write_model_checkpoint(rd, 1)
    forget_sizes(folder)
    with open(folder / "adapter_model.safetensors", "r+b") as f:
        f.write((10 ** 12).to_bytes(8, "little"))  # what "SafetensorError: invalid header length" meant
    assert "invalid header length" in verify_checkpoint(folder)

    folder = write_model_checkpoint(rd, 2)
    forget_sizes(folder)
    truncate(folder / "optimizer.pt", 200)
    assert verify_checkpoint(folder).startswith("optimizer.pt: not a readable torch archive")

    folder = write_model_checkpoint(rd, 3)
    (folder / "trainer_state.json").unlink()
    assert verify_checkpoint(folder) == "trainer_state.json is missing"

    folder = write_model_checkpoint(rd, 4)
    forget_sizes(folder)
    (folder / "adapter_model.safetensors").unlink()
    assert verify_checkpoint(folder) == "its weights (adapter_model.safetensors) are missing"

    folder = write_model_checkpoint(rd, 5)
    forget_sizes(folder)
    (folder / "trainer_state.json").write_text('{"global_step": 5')
    assert verify_checkpoint(folder) == "trainer_state.json: not valid JSON"


def test_resume_picks_the_newest_usable_or_the_chosen_one(rd):
    for step in (10, 20, 30):
        write_model_checkpoint(rd, step)
    truncate(rd.checkpoints / "step-30" / "adapter_model.safetensors", 50)
    path, warnings = resume_checkpoint(rd)
    assert path.name == "step-20"
    assert len(warnings) == 1 and str(rd.checkpoints / "step-30") in warnings[0]
    assert warnings[0].endswith("resuming from step-20 instead")
    assert resume_checkpoint(rd, "step-10") == (rd.checkpoints / "step-10", [])
    assert resume_checkpoint(rd, "10")[0].name == "step-10"
    with pytest.raises(CheckpointError, match="damaged: adapter_model.safetensors"):
        resume_checkpoint(rd, "step-30")
    with pytest.raises(CheckpointError, match=r"no complete checkpoint step-40 \(it has: step-10, step-20, step-30\)"):
        resume_checkpoint(rd, "step-40")
    with pytest.raises(CheckpointError, match="expected a checkpoint name like step-40"):
        resume_checkpoint(rd, "latest")


def _resumed_events(rd):
    events = read_events(rd.events)
    starts = [i for i, e in enumerate(events) if isinstance(e, StartedEvent)]
    return events[starts[-1]:]


def test_the_job_falls_back_past_a_damaged_checkpoint_with_a_warning(tmp_path, test_recipes):
    rd = new_run_dir(tmp_path / "runs", "steps", {"n_steps": 6, "step_s": 0, "every": 2})
    assert J.run_job(rd, registry=REGISTRY) == J.EXIT_COMPLETED
    assert sorted(p.name for p in rd.checkpoints.iterdir()) == ["step-1", "step-3", "step-5"]
    (rd.checkpoints / "step-5" / "step.txt").write_text("")  # the newest one damaged on disk
    assert J.run_job(rd, resume=True, registry=REGISTRY) == J.EXIT_COMPLETED
    resumed = _resumed_events(rd)
    assert resumed[0].resume_from == "checkpoints/step-3"
    warning = next(e for e in resumed if isinstance(e, WarningEvent))
    assert warning.code == "checkpoint_damaged" and str(rd.checkpoints / "step-5") in warning.message
    assert "step.txt is 0 bytes, 1 when it was written" in warning.message
    assert any(isinstance(e, LogEvent) and e.message == "resuming from checkpoints/step-3" for e in resumed)
    assert resumed[-1].status == "completed"

    assert J.run_job(rd, resume=True, checkpoint="step-1", registry=REGISTRY) == J.EXIT_COMPLETED
    assert _resumed_events(rd)[0].resume_from == "checkpoints/step-1"


def test_supervisor_and_cli_refuse_a_missing_or_damaged_chosen_checkpoint(sup):
    from workbench.store.workspace import Workspace

    Workspace.init(sup.root).close()
    handle = sup.start("steps", {"n_steps": 4, "step_s": 0, "every": 2})
    assert handle.wait(timeout=60).status == "completed"
    (handle.path / "checkpoints" / "step-1" / "step.txt").write_text("")
    with pytest.raises(CheckpointError, match="damaged"):
        sup.resume(handle.run_id, checkpoint="step-1")
    for chosen, message in (("step-7", "has no complete checkpoint step-7"), ("step-1", "damaged: step.txt")):
        proc = subprocess.run([sys.executable, "-m", "workbench.cli", "train", "--resume", str(handle.path),
                               "--checkpoint", chosen], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "train", "--resume", handle.run_id, "--checkpoint",
                           "step-7", "--workspace", str(sup.root)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "has no complete checkpoint step-7" in proc.stderr  # a run id works too
    assert not (handle.path / "QUEUED").exists()  # refused before anything was queued


# -- pruning and disk use ----------------------------------------------------------------------
def test_prune_keeps_the_newest_the_best_and_those_in_use(tmp_path):
    from workbench.jobs.checkpoints import prune_checkpoints
    from workbench.jobs.events import EventWriter, MetricEvent
    from workbench.jobs.rundir import list_checkpoints
    from workbench.store import annotations as A
    from workbench.store.workspace import Workspace

    ws = Workspace.init(tmp_path / "ws")
    rd = new_run_dir(ws.root / "runs", "sft", {})
    losses = {1: 2.0, 2: 0.5, 3: 1.5, 4: 1.4, 5: 1.3, 6: 1.2, 7: 1.1, 8: 1.0}  # step 2 is the best
    with EventWriter(rd.events) as w:
        for step, loss in losses.items():
            w.write(MetricEvent(step=step, values={"loss": loss, "eval_loss": float("nan")}))
    for step in losses:
        with atomic_checkpoint(rd, step) as d:
            (d / "weights.bin").write_bytes(b"\0" * 100)
    # A later stage trains from step-3; candidates were generated from step-4.
    new_run_dir(ws.root / "runs", "reward", {"model": {"ref": f"./runs/{rd.run_id}/checkpoints/step-3"}})
    with ws.transaction() as c:
        prompt = A.add_prompt(c, "Write a haiku about rain")
        A.add_candidate(c, prompt, "Soft rain.", model=f"./runs/{rd.run_id}",
                        checkpoint=f"runs/{rd.run_id}/checkpoints/step-4")
    ws.close()
    removed = prune_checkpoints(rd, keep_last=2, stage="sft")
    assert sorted(p.name for p in removed) == ["step-1", "step-5", "step-6"]
    assert [s for s, _p in list_checkpoints(rd)] == [2, 3, 4, 7, 8]
    assert not any(p.name.startswith(".old-") for p in rd.checkpoints.iterdir())
    assert prune_checkpoints(rd, keep_last=0, stage="sft") == []   # 0 keeps all


def test_a_job_prunes_after_each_save_and_logs_it(tmp_path, test_recipes):
    from workbench.jobs.rundir import list_checkpoints

    rd = new_run_dir(tmp_path / "runs", "steps", {"n_steps": 10, "step_s": 0, "every": 2, "keep": 2})
    assert J.run_job(rd, registry=REGISTRY) == J.EXIT_COMPLETED
    # The steps recipe's loss falls every step: the best is the newest, so exactly 2 stay.
    assert [s for s, _p in list_checkpoints(rd)] == [7, 9]
    logs = [e.message for e in read_events(rd.events) if isinstance(e, LogEvent)]
    assert any(m.startswith("removed older checkpoint(s) step-1 (keeping the newest 2") for m in logs)


def test_keep_checkpoints_is_a_checked_config_field():
    from workbench.train.config import ConfigError, load_config

    cfg = load_config({"stage": "sft", "model": {"ref": "a/b"}, "data": {"dataset": "d"}})
    assert cfg.training.keep_checkpoints == 3
    with pytest.raises(ConfigError, match="training.keep_checkpoints: must be 0 .keep all. or positive"):
        load_config({"stage": "sft", "model": {"ref": "a/b"}, "data": {"dataset": "d"},
                     "training": {"keep_checkpoints": -1}})


def test_runs_show_reports_disk_use(sup):
    from workbench.store.workspace import Workspace

    Workspace.init(sup.root).close()
    handle = sup.start("steps", {"n_steps": 4, "step_s": 0, "every": 2})
    assert handle.wait(timeout=60).status == "completed"
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "runs", "show", handle.run_id, "--workspace",
                           str(sup.root), "--json"], capture_output=True, text=True, timeout=60)
    shown = json.loads(proc.stdout)
    assert set(shown["checkpoint_bytes"]) == {"step-1", "step-3"}
    assert all(n > 0 for n in shown["checkpoint_bytes"].values())
    assert shown["disk_bytes"] > sum(shown["checkpoint_bytes"].values())  # events, config, logs too
    text = subprocess.run([sys.executable, "-m", "workbench.cli", "runs", "show", handle.run_id, "--workspace",
                           str(sup.root)], capture_output=True, text=True, timeout=60).stdout
    assert "in 2 checkpoints)" in text and "  disk: " in text


def test_after_resuming_from_an_earlier_checkpoint_pruning_keeps_the_new_continuation(tmp_path, test_recipes):
    """Resumed from step-3 while step-5..9 exist (a continuation the user went back from): the
    checkpoint the resumed run just wrote is kept, and a later resume continues from it."""
    import yaml

    from workbench.jobs.rundir import list_checkpoints

    rd = new_run_dir(tmp_path / "runs", "steps", {"n_steps": 10, "step_s": 0, "every": 2, "keep": 0})
    assert J.run_job(rd, registry=REGISTRY) == J.EXIT_COMPLETED
    assert [s for s, _p in list_checkpoints(rd)] == [1, 3, 5, 7, 9]
    # The resumed run stops after step 6 (its last save is step-5) and keeps 2 checkpoints.
    rd.config.write_text(yaml.safe_dump({"stage": "steps", "n_steps": 7, "step_s": 0, "every": 2, "keep": 2}))
    assert J.run_job(rd, resume=True, checkpoint="step-3", registry=REGISTRY) == J.EXIT_COMPLETED
    assert [s for s, _p in list_checkpoints(rd)] == [3, 5]
    assert (rd.checkpoints / "step-5" / "step.txt").read_text() == "5"
    assert resume_checkpoint(rd)[0].name == "step-5"


def test_pruning_is_not_blocked_by_a_fifo_as_another_runs_config(tmp_path):
    """Other run folders are read to find checkpoints in use; a FIFO there must not hang the job."""
    import os
    import threading

    from workbench.jobs.checkpoints import prune_checkpoints

    rd = new_run_dir(tmp_path / "runs", "sft", {})
    for step in (1, 2, 3):
        with atomic_checkpoint(rd, step) as d:
            (d / "weights.bin").write_bytes(b"\0" * 10)
    hostile = tmp_path / "runs" / "20260101-000000-sft-fifo"
    hostile.mkdir()
    os.mkfifo(hostile / "config.yaml")
    result = []
    worker = threading.Thread(target=lambda: result.append(prune_checkpoints(rd, keep_last=1, stage="sft")),
                              daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():   # blocked opening the FIFO: release it so the test process can end
        os.close(os.open(hostile / "config.yaml", os.O_WRONLY | os.O_NONBLOCK))
        worker.join(10)
        pytest.fail("pruning blocked on a FIFO config.yaml of another run folder")
    assert sorted(p.name for p in result[0]) == ["step-1", "step-2"]
