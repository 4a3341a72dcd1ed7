"""A relative workspace folder in a config is relative to the workspace the run belongs to,
and it is checked (that the dataset is there) before a run folder exists."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workbench.data.importer import import_file
from workbench.store.workspace import Workspace
from workbench.train import ppo_config as P
from workbench.train.config import ConfigError, load_config, resolve_workspace, validate_before_load

ROWS = [{"prompt": f"Question {i} \u00e9t\u00e9?", "completion": f"Answer {i}."} for i in range(8)]


@pytest.fixture
def two_workspaces(tmp_path):
    """``home`` (where runs are started, without the dataset) and ``../shared data`` holding ``sft-data``."""
    home = tmp_path / "home"
    Workspace.init(home).close()
    shared = tmp_path / "shared data"
    ws = Workspace.init(shared)
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), encoding="utf-8")
    import_file(ws, src, "sft-data")
    ws.close()
    return home, shared


def sft(workspace=None):
    data = {"dataset": "sft-data"} | ({"workspace": workspace} if workspace else {})
    return load_config({"stage": "sft", "model": {"ref": "Qwen/Qwen2.5-0.5B-Instruct"}, "data": data})


def test_a_relative_workspace_is_relative_to_the_runs_workspace_not_the_run_folder(two_workspaces):
    home, shared = two_workspaces
    cfg = sft("../shared data")
    run_dir = home / "runs" / "20261203-120000-sft-ab12"
    assert resolve_workspace(cfg, run_dir) == shared.resolve()   # was: RUN_DIR/../shared data
    assert resolve_workspace(cfg, home=home) == shared.resolve()
    assert resolve_workspace(sft(), run_dir) == home.resolve()
    assert resolve_workspace(sft(str(shared)), run_dir) == shared.resolve()
    ppo = P.load_ppo_config({"workspace": "../shared data", "policy_model": "a/b", "reward_model": "c/d",
                             "prompts": ["hi"]})
    assert P.resolve_workspace(ppo, run_dir) == shared.resolve()


def test_the_configs_workspace_is_checked_before_the_run(two_workspaces):
    home, shared = two_workspaces
    validate_before_load(sft("../shared data"), home)           # the dataset is in the shared workspace
    with pytest.raises(ConfigError, match="data.dataset"):
        validate_before_load(sft(), home)                        # ...and not in home
    with pytest.raises(ConfigError, match=r"data\.workspace: .*nowhere"):
        validate_before_load(sft("../nowhere"), home)


def test_train_cli_refuses_a_missing_relative_workspace_before_creating_a_run(two_workspaces, tmp_path):
    home, _shared = two_workspaces
    config = tmp_path / "sft.yaml"
    config.write_text("stage: sft\nmodel: {ref: Qwen/Qwen2.5-0.5B-Instruct}\n"
                      "data: {dataset: sft-data, workspace: ../nowhere}\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "train", str(config), "--workspace", str(home)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert str(config) in proc.stderr and "data.workspace" in proc.stderr and "nowhere" in proc.stderr
    assert not any((home / "runs").glob("*"))
