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


def _runs(ws):
    return sorted(p.name for p in (ws / "runs").iterdir())


def test_train_checks_ppo_generate_and_merge_configs_before_any_run(train_ws, tmp_path):
    """Each stage's config is checked before a run folder exists; the one-line error names the
    file and the field."""
    ws = tmp_path / "ws"
    shutil.copytree(train_ws, ws)
    before = _runs(ws)
    cases = {
        "ppo": ({"stage": "ppo", "policy_model": "./models/tiny", "reward_model": "./models/tiny",
                 "prompt_dataset": "demos", "kl_coeff": 0.1}, "kl_coeff"),
        "generate": ({"stage": "generate", "model": "./models/tiny", "prompt_dataset": "demos", "n": 0}, "n:"),
        "merge": ({"stage": "merge", "source": "runs/nothing-here"}, "source:"),
        "typo": ({"stage": "rewards"}, "'rewards'"),
    }
    for name, (config, field) in cases.items():
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump(config), encoding="utf-8")
        proc = _cli("train", cfg, "--workspace", ws)
        assert proc.returncode == 1, (name, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{name}.yaml" in lines[0] and field in lines[0], (name, lines)
    assert _runs(ws) == before


def test_train_config_check_does_not_import_torch(tmp_path):
    """`train` validates a PPO config with the torch-free config module (like the GUI does)."""
    code = ("import sys; from pathlib import Path; from workbench.cli import _stage_config\n"
            "try:\n    _stage_config(sys.argv[1], Path(sys.argv[2]))\nexcept Exception as e:\n    print(e)\n"
            "print(sorted(m for m in ('torch', 'transformers', 'trl', 'peft') if m in sys.modules))")
    cfg = tmp_path / "ppo.yaml"
    cfg.write_text(yaml.safe_dump({"stage": "ppo", "policy_model": "a", "reward_model": "b",
                                   "prompt_dataset": "demos", "batch_size": 0}), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", code, str(cfg), str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "batch_size" in proc.stdout and proc.stdout.strip().splitlines()[-1] == "[]"


def test_train_merge_stage_exports_a_model_folder(train_ws, tmp_path):
    """`stage: merge` from the CLI: a full-model folder is exported into models/ (a folder
    transformers loads: config, safetensors weights, tokenizer)."""
    ws = tmp_path / "ws"
    shutil.copytree(train_ws, ws)
    cfg = tmp_path / "merge.yaml"
    cfg.write_text(yaml.safe_dump({"stage": "merge", "source": "models/tiny", "output": "models/tiny-export"}),
                   encoding="utf-8")
    proc = _cli("train", cfg, "--workspace", ws, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["status"] == "completed" and info["stage"] == "merge"
    out = ws / "models" / "tiny-export"
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()
    assert list(out.glob("*.safetensors"))
    again = _cli("train", cfg, "--workspace", ws)  # the output exists now: refused up front
    assert again.returncode == 1 and "output:" in again.stderr and "already exists" in again.stderr
