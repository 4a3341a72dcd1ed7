"""The PPO config outside the engine: no torch, form metadata, presets, errors naming the field,
prompts from a workspace dataset (and a real PPO job that samples them and pins the snapshot)."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import yaml

from workbench.train import ppo_config as C


def test_every_field_has_help_a_section_and_valid_choices():
    names = [f.name for f in dataclasses.fields(C.PPOConfig)]
    in_sections = [n for fields in C.SECTIONS.values() for n in fields]
    assert sorted(in_sections) == sorted(names) and len(set(in_sections)) == len(in_sections)
    defaults = C.PPOConfig()
    for f in dataclasses.fields(C.PPOConfig):
        assert f.metadata["help"]
        if "choices" in f.metadata:
            assert getattr(defaults, f.name) in f.metadata["choices"]


def test_the_engine_re_exports_the_same_config():
    from workbench.train import ppo, ppo_math

    assert ppo.PPOConfig is C.PPOConfig and ppo.ConfigError is C.ConfigError
    assert C.KL_ESTIMATORS == ppo_math.KL_ESTIMATORS


def test_errors_carry_the_field_name():
    with pytest.raises(C.ConfigError) as err:
        C.load_ppo_config({"stage": "ppo", "policy_model": "m", "prompts": ["a"], "batch_size": 6,
                           "mini_batch_size": 4})
    assert err.value.field == "mini_batch_size"
    with pytest.raises(C.ConfigError) as err:
        C.load_ppo_config({"policy_model": "m", "prompts": ["a"], "kl_coeff": 0.1})
    assert err.value.field == "kl_coeff" and "did you mean 'kl_coef'" in str(err.value)
    with pytest.raises(C.ConfigError) as err:
        C.load_ppo_config({"policy_model": "m"})
    assert err.value.field == "prompt_dataset"
    with pytest.raises(C.ConfigError) as err:
        C.load_ppo_config({"policy_model": "m", "prompt_dataset": "p", "dtype": "fp8"})
    assert err.value.field == "dtype"
    cfg = C.load_ppo_config({"policy_model": "m", "prompt_dataset": "p", "snapshot": "abcdef12"})
    assert C.load_ppo_config(C.to_dict(cfg)) == cfg


def test_presets_carry_the_model_settings_over(tmp_path):
    cfg = C.ppo_preset_config("qwen2.5-7b-qlora-24gb", prompt_dataset="p")
    assert cfg.quantization == "4bit" and cfg.reward_quantization == "4bit" and cfg.gradient_checkpointing
    assert cfg.device is None and cfg.lora_dropout == 0.0 and cfg.prompt_dataset == "p"
    assert cfg.batch_size % cfg.mini_batch_size == 0
    # Memory-bound: one-sequence micro-batches, but not one-sequence optimizer updates.
    assert cfg.mini_batch_size // cfg.gradient_accumulation_steps == 1 and cfg.mini_batch_size > 1
    for name in ("qwen2.5-0.5b-8gb", "qwen2.5-1.5b-12gb", "qwen2.5-7b-qlora-24gb"):
        big = C.ppo_preset_config(name, prompt_dataset="p")
        assert big.normalize_scores and big.batch_size // big.mini_batch_size == 2, name
    tiny = C.ppo_preset_config("tiny-cpu", prompt_dataset="p")
    assert tiny.policy_model == "./models/demo-base" and tiny.device == "cpu" and tiny.dtype == "fp32"
    assert tiny.seed == 0 and tiny.lora_r == 16 and tiny.value_model == "reward_model"
    no_ppo = tmp_path / "sft-only.yaml"
    no_ppo.write_text("description: x\nmodel: {ref: m}\nstages:\n  sft: {}\n", encoding="utf-8")
    with pytest.raises(C.ConfigError, match="has no 'ppo' stage; it has sft"):
        C.ppo_preset_data(str(no_ppo))


def test_prompts_come_from_any_dataset_with_prompts(train_ws):
    for name, n in (("prompts", 5), ("pairs", 40), ("demos", 30)):
        cfg = C.load_ppo_config({"policy_model": "m", "prompt_dataset": name})
        prompts, snapshot = C.read_prompt_dataset(cfg, train_ws)
        assert len(prompts) == n and all(C.prompt_value(p) == p for p in prompts)
        assert len(snapshot) == 64
        again, same = C.read_prompt_dataset(dataclasses.replace(cfg, snapshot=snapshot[:8]), train_ws)
        assert (again, same) == (prompts, snapshot)
    # Chat records give their conversation up to the turn to answer.
    cfg = C.load_ppo_config({"policy_model": "m", "prompt_dataset": "demos"})
    first = C.read_prompt_dataset(cfg, train_ws)[0][0]
    assert first[-1]["role"] == "user" and first[-1]["content"].startswith("Tell me about")


def test_a_conversational_prompt_keeps_its_system_prompt_and_earlier_turns():
    chat = [{"role": "system", "content": "Tu es un assistant concis. 日本語も可。"},
            {"role": "user", "content": "Nenne einen Fluss."}, {"role": "assistant", "content": "Der Rhein."},
            {"role": "user", "content": "Und einen längeren? 🌊"}, {"role": "assistant", "content": "Die Donau."}]
    assert C.prompt_value(chat) == chat[:4]
    assert C.last_user_turn(C.prompt_value(chat)) == "Und einen längeren? 🌊"
    assert C.prompt_display(chat[:2]) == "system: Tu es un assistant concis. 日本語も可。\n\nuser: Nenne einen Fluss."
    for bad in ([], [{"role": "assistant", "content": "x"}], [{"role": "user"}], ["text"], "  ", 3):
        assert C.prompt_value(bad) is None, bad
    with pytest.raises(C.ConfigError, match="^prompts: item 2"):
        C.load_ppo_config({"policy_model": "m", "prompts": ["ok", [{"role": "system", "content": "no user"}]]})


def test_validation_before_load_names_the_field(train_ws, tiny_model):
    ok = {"policy_model": "./models/tiny", "reward_model": "./models/tiny", "prompt_dataset": "prompts"}
    assert C.validate_ppo_before_load(C.load_ppo_config(ok), train_ws) == []
    for change, field in (({"prompt_dataset": "nope"}, "prompt_dataset"),
                          ({"snapshot": "ffffff"}, "snapshot"),
                          ({"policy_model": "./models/missing"}, "policy_model"),
                          ({"reward_model": None}, "reward_model"),
                          ({"prompt_dataset": None, "prompts": "missing.jsonl"}, "prompts")):
        with pytest.raises(C.ConfigError) as err:
            C.validate_ppo_before_load(C.load_ppo_config({**ok, **change}), train_ws)
        assert err.value.field == field, (change, err.value)


@pytest.mark.slow
def test_a_ppo_job_samples_the_dataset_and_pins_its_snapshot(train_ws, ppo_models, tmp_path):
    from workbench.jobs.events import FinishedEvent, LogEvent, MetricEvent, read_events
    from workbench.jobs.rundir import new_run_dir
    from workbench.jobs.run import run_job

    config = {"policy_model": str(ppo_models["policy"]), "reward_model": str(ppo_models["reward"]),
              "prompt_dataset": "prompts", "device": "cpu", "dtype": "fp32", "batch_size": 4,
              "mini_batch_size": 2, "ppo_epochs": 1, "max_new_tokens": 4, "total_steps": 1, "save_every": 0,
              "samples_every": 1, "num_samples": 2}
    # A copy: the shared workspace must not keep a run whose recorded process (this
    # one, the job ran in-process) is alive, or later copies would queue behind it.
    ws = tmp_path / "ws"
    shutil.copytree(train_ws, ws)
    rd = new_run_dir(ws / "runs", "ppo", config)
    assert run_job(rd) == 0, [e for e in read_events(rd.events) if isinstance(e, FinishedEvent)]
    events = read_events(rd.events)
    assert any(isinstance(e, MetricEvent) for e in events)
    assert any(isinstance(e, LogEvent) and "prompts: dataset 'prompts' snapshot" in e.message for e in events)
    pinned = yaml.safe_load(rd.config.read_text())
    assert pinned["stage"] == "ppo" and len(pinned["snapshot"]) == 64 and pinned["prompts"] == []
