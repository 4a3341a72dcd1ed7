"""Run directory layout, run ids, atomic checkpoints and marker files."""

import os
import time

import pytest
import yaml

from workbench.jobs import rundir as R


def test_run_ids_are_sortable_and_parse_back():
    t = 1795400000.0
    a, b = R.new_run_id("sft", now=t), R.new_run_id("ppo", now=t + 1)
    assert a < b
    assert R.parse_run_id(a) == (t, "sft")
    assert R.parse_run_id("not-a-run") is None
    with pytest.raises(ValueError, match="invalid stage name"):
        R.new_run_id("../x")


def test_new_run_dir_writes_config_with_stage_first(tmp_path):
    rd = R.new_run_dir(tmp_path / "runs", "sft", {"lr": 1e-4, "data": tmp_path / "d.jsonl",
                                                  "layers": (1, 2)})
    assert rd.path.parent == tmp_path / "runs" and rd.run_id.split("-")[2] == "sft"
    text = rd.config.read_text()
    assert text.startswith("stage: sft\n")
    assert yaml.safe_load(text) == {"stage": "sft", "lr": 1e-4, "data": str(tmp_path / "d.jsonl"),
                                    "layers": [1, 2]}
    assert rd.read_config()["stage"] == "sft"
    assert rd.control.is_dir() and rd.checkpoints.is_dir() and not rd.queued.exists()
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [rd.run_id]  # no temp dir left
    assert os.fspath(rd) == str(rd.path)


def test_new_run_dir_rejects_a_conflicting_stage_and_non_plain_config(tmp_path):
    with pytest.raises(ValueError, match="config says stage"):
        R.new_run_dir(tmp_path, "sft", {"stage": "ppo"})
    with pytest.raises(ValueError, match="not plain data"):
        R.new_run_dir(tmp_path, "sft", {"x": object()})


def test_queued_marker(tmp_path):
    rd = R.new_run_dir(tmp_path, "sft", {}, queued=True, resume=True)
    marker = R.read_queued(rd)
    assert marker["resume"] is True and marker["time"] <= time.time()
    R.clear_queued(rd)
    assert R.read_queued(rd) is None


def test_atomic_checkpoint_commits_with_a_complete_marker(tmp_path):
    rd = R.new_run_dir(tmp_path, "sft", {})
    with R.atomic_checkpoint(rd, 5) as tmp:
        assert tmp.parent == rd.checkpoints and tmp.name.startswith(".tmp-step-5-")
        (tmp / "model").mkdir()
        (tmp / "model" / "weights.bin").write_bytes(b"w")
        assert R.latest_complete_checkpoint(rd) is None  # not visible while being written
    final = rd.checkpoints / "step-5"
    assert (final / "model" / "weights.bin").read_bytes() == b"w"
    assert (final / R.COMPLETE).is_file()
    assert R.latest_complete_checkpoint(rd) == final and R.checkpoint_step(final) == 5
    assert sorted(p.name for p in rd.checkpoints.iterdir()) == ["step-5"]


def test_a_crash_inside_the_checkpoint_leaves_no_step_dir(tmp_path):
    rd = R.new_run_dir(tmp_path, "sft", {})
    with pytest.raises(RuntimeError, match="disk on fire"):
        with R.atomic_checkpoint(rd, 7) as tmp:
            (tmp / "half.bin").write_bytes(b"x")
            raise RuntimeError("disk on fire")
    assert list(rd.checkpoints.iterdir()) == []


def test_latest_complete_checkpoint_ignores_incomplete_and_temp_dirs(tmp_path):
    rd = R.new_run_dir(tmp_path, "sft", {})
    for step in (2, 10):
        with R.atomic_checkpoint(rd, step) as tmp:
            (tmp / "w").write_text(str(step))
    (rd.checkpoints / "step-12").mkdir()  # a crash after mkdir, e.g. HF's own writer
    (rd.checkpoints / ".tmp-step-15-abc").mkdir()  # a crash inside atomic_checkpoint
    (rd.checkpoints / "notes").mkdir()
    assert R.latest_complete_checkpoint(rd) == rd.checkpoints / "step-10"
    assert [s for s, _ in R.list_checkpoints(rd)] == [2, 10]
    R.remove_stale_temp_checkpoints(rd)
    assert not (rd.checkpoints / ".tmp-step-15-abc").exists()
    assert R.latest_complete_checkpoint(tmp_path / "nowhere") is None


def test_saving_the_same_step_again_replaces_it(tmp_path):
    rd = R.new_run_dir(tmp_path, "sft", {})
    for text in ("old", "new"):
        with R.atomic_checkpoint(rd, 3) as tmp:
            (tmp / "w").write_text(text)
    assert (rd.checkpoints / "step-3" / "w").read_text() == "new"
    assert sorted(p.name for p in rd.checkpoints.iterdir()) == ["step-3"]


def test_cancel_and_pid_files(tmp_path):
    rd = R.new_run_dir(tmp_path, "sft", {})
    assert not R.cancel_requested(rd)
    R.request_cancel(rd)
    assert R.cancel_requested(rd) and rd.cancel.is_file()
    R.clear_cancel(rd)
    assert not R.cancel_requested(rd)
    assert R.read_pid(rd) is None
    rec = R.write_pid(rd, os.getpid())
    assert R.read_pid(rd) == rec and rec.create_time is not None
