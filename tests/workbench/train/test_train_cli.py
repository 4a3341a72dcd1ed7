"""`rlhf-workbench train` through a real subprocess: validate first, then run and follow."""

import json
import os
import shutil
import subprocess
import sys

import yaml

from .conftest import JOB_ENV  # noqa: F401  (the folder's job environment, for the subprocess)


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **JOB_ENV, **(env or {})})


def test_train_sft_from_yaml_runs_to_completion(train_ws, small_config, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(train_ws, ws)
    cfg = tmp_path / "sft.yaml"
    cfg.write_text(yaml.safe_dump({"stage": "sft", **small_config("demos", max_steps=3)}), encoding="utf-8")
    proc = _cli("train", cfg, "--workspace", ws, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["status"] == "completed" and info["stage"] == "sft"
    shown = json.loads(_cli("runs", "show", info["run_id"], "--workspace", ws, "--json").stdout)
    assert "loss" in shown["last_metrics"] and shown["checkpoints"]


def test_train_bad_config_fails_before_any_run(train_ws, small_config, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(train_ws, ws)
    runs_before = sorted(p.name for p in (ws / "runs").iterdir())  # the shared fixture may hold runs
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"stage": "reward", **small_config("demos")}), encoding="utf-8")
    proc = _cli("train", cfg, "--workspace", ws)
    assert proc.returncode == 1
    assert "preference" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in (ws / "runs").iterdir()) == runs_before
