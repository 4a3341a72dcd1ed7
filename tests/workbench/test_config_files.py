"""Config files are untrusted: alias bombs, self-references, deep nesting and huge values
are refused quickly with one line naming the file, by every reader of configs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from workbench.config_files import MAX_NODES, ConfigFileError, load_yaml_file, parse_yaml
from workbench.jobs.rundir import RunDir
from workbench.train.config import ConfigError, load_config


def billion_laughs(path, *, levels=9):
    """The classic alias bomb (~440 bytes, 9**9 'lol's once expanded), inside a real field."""
    lines = ["stage: sft", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghijk"[:levels - 1]:
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    lines.append(f"model: {{ref: *{prev}}}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_an_alias_bomb_is_refused_within_a_second(tmp_path):
    bomb = billion_laughs(tmp_path / "bomb.yaml")
    assert bomb.stat().st_size < 500
    start = time.monotonic()
    with pytest.raises(ConfigFileError, match=r"bomb\.yaml: the config expands to more than 100,000 values"):
        load_yaml_file(bomb)
    with pytest.raises(ConfigError, match="expands to more than"):
        load_config(bomb)
    assert time.monotonic() - start < 30  # sanity only: it took > 60 s and GBs before


def test_ordinary_aliases_still_work(tmp_path):
    data = parse_yaml("base: &b {lr: 1.0e-4, epochs: 1}\nsft: *b\nreward: *b\n", "x.yaml")
    assert data["sft"] == data["reward"] == {"lr": 1e-4, "epochs": 1}


@pytest.mark.parametrize("text, message", [
    ("a: &a [*a]\n", "refers to itself"),
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 50 levels"),
    ("a: " + "[" * 60 + "]" * 60 + "\n", "nested deeper than 50 levels"),
    ("a: [1, 2\n", "not valid YAML: line 2, column 1"),
    ("a: !!python/object:os.system {}\n", "not valid YAML"),
])
def test_hostile_yaml_is_refused_with_one_line(text, message):
    with pytest.raises(ConfigFileError, match=message) as err:
        parse_yaml(text, "c.yaml")
    assert str(err.value).startswith("c.yaml: ") and "\n" not in str(err.value)


def test_a_value_just_under_the_budget_loads():
    text = "xs: [" + ",".join(["1"] * (MAX_NODES - 10)) + "]\n"
    assert len(parse_yaml(text, "big.yaml")["xs"]) == MAX_NODES - 10


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_not_read(tmp_path):
    os.mkfifo(tmp_path / "cfg.yaml")
    with pytest.raises(ConfigFileError, match="not a regular file"):
        load_yaml_file(tmp_path / "cfg.yaml")


def test_error_messages_show_bounded_values(tmp_path):
    path = tmp_path / "long.yaml"
    path.write_text("stage: sft\ntraining: {learning_rate: [" + ",".join(['"' + "x" * 1000 + '"'] * 2000)
                    + "]}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith("training.learning_rate: expected") and len(message) < 300, message[:300]


def test_an_overlong_model_folder_is_a_config_error():
    with pytest.raises(ConfigError, match=r"model\.ref: 'xxx.*not a usable folder \(File name too long\)"):
        load_config({"stage": "sft", "model": {"ref": "x" * 5000}})


def test_run_config_reader_refuses_a_bomb(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    billion_laughs(rd.config)
    with pytest.raises(ValueError, match="expands to more than"):
        rd.read_config()


def test_train_cli_refuses_a_bomb_in_one_line(tmp_path):
    from workbench.store.workspace import Workspace

    Workspace.init(tmp_path / "ws").close()
    bomb = billion_laughs(tmp_path / "bomb.yaml")
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "train", str(bomb), "--workspace",
                           str(tmp_path / "ws")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and str(bomb) in proc.stderr and "Traceback" not in proc.stderr
    assert not any((tmp_path / "ws" / "runs").glob("*"))  # no run was created


@pytest.mark.parametrize("stage, body", [
    ("ppo", {"policy_model": ["x" * 1000] * 1000, "reward_model": "a/b", "prompts": ["p"]}),
    ("generate", {"model": "a/b", "prompts": "p" * 100_000, "device": ["x" * 1000] * 1000}),
])
def test_ppo_and_generate_errors_show_bounded_values(stage, body):
    from workbench.generate.config import GenerateConfig
    from workbench.train.ppo_config import load_ppo_config

    with pytest.raises(ConfigError) as err:
        load_ppo_config(body) if stage == "ppo" else GenerateConfig.from_dict(body)
    assert len(str(err.value)) < 300, str(err.value)[:300]

