"""The YAML presets: each loads for every stage, validates, and fits its hardware profile."""

import shutil

import pytest

from workbench.train import config as C

PRESETS = ("tiny-cpu", "qwen2.5-0.5b-8gb", "qwen2.5-1.5b-12gb", "qwen2.5-7b-qlora-24gb")
DATASETS = {"sft": "demos", "reward": "pairs", "dpo": "pairs"}


def test_the_four_presets_are_there():
    assert set(PRESETS) <= set(C.list_presets())
    for name in PRESETS:
        assert C.read_preset(name)["description"]


@pytest.fixture(scope="module")
def preset_ws(train_ws):
    """The session workspace with the tiny model also where the tiny preset looks for it."""
    target = train_ws / "models" / "demo-base"
    if not target.exists():
        shutil.copytree(train_ws / "models" / "tiny", target)
    return train_ws


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("stage", sorted(C.STAGES))
def test_each_preset_loads_and_validates_for_each_stage(preset_ws, name, stage):
    cfg = C.preset_config(name, stage, dataset=DATASETS[stage])
    assert isinstance(cfg, C.STAGES[stage]) and cfg.data.dataset == DATASETS[stage]
    # Against the workspace: dataset kind, model folder (tiny) or hub id syntax, bitsandbytes (QLoRA).
    assert C.validate_before_load(cfg, preset_ws) == []
    again = C.load_config(C.to_dict(cfg))
    assert again == cfg


def test_hardware_profiles_are_sensible():
    tiny = C.preset_config("tiny-cpu", "sft", dataset="d")
    assert tiny.training.device == "cpu" and tiny.model.quantization is None
    for name, gb in (("qwen2.5-0.5b-8gb", 8), ("qwen2.5-1.5b-12gb", 12), ("qwen2.5-7b-qlora-24gb", 24)):
        for stage in C.STAGES:
            cfg = C.preset_config(name, stage, dataset="d")
            assert cfg.model.ref.startswith("Qwen/Qwen2.5-") and cfg.model.lora
            assert cfg.model.gradient_checkpointing and cfg.training.device == "auto"
            effective = cfg.training.batch_size * cfg.training.gradient_accumulation_steps
            assert 8 <= effective <= 64
        assert (cfg.model.quantization == "4bit") == (gb == 24)
    dpo = C.preset_config("qwen2.5-7b-qlora-24gb", "dpo", dataset="d")
    sft = C.preset_config("qwen2.5-7b-qlora-24gb", "sft", dataset="d")
    assert dpo.training.learning_rate < sft.training.learning_rate


def test_overrides_and_unknown_presets():
    cfg = C.preset_config("qwen2.5-0.5b-8gb", "sft", dataset="d",
                          overrides={"training": {"max_steps": 5}, "packing": True})
    assert cfg.training.max_steps == 5 and cfg.packing and cfg.training.batch_size == 4
    with pytest.raises(C.ConfigError, match="^preset: no preset 'huge'"):
        C.preset_config("huge", "sft", dataset="d")
    with pytest.raises(C.ConfigError, match="^stage: expected one of sft, reward, dpo, got 'ppo'"):
        C.preset_config("tiny-cpu", "ppo", dataset="d")  # PPO's flat config comes from ppo_config


@pytest.mark.slow
def test_the_tiny_preset_validates_in_a_built_demo_workspace(tmp_path, monkeypatch):
    """What the demo builds (models/demo-base, its datasets, an SFT run) is what tiny-cpu names,
    for every stage, PPO included."""
    from dataclasses import replace

    from workbench.train import ppo_config as P
    from workbench.train.demo import BASE_MODEL, PAIRS_DATASET, QUICK, SFT_DATASET, build_demo

    for key, value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}.items():
        monkeypatch.setenv(key, value)
    root = tmp_path / "demo ws"
    built = build_demo(root, sizes=replace(QUICK, sft_examples=64, sft_epochs=1.0, candidates_per_prompt=2))
    assert built["base_model"] == root.resolve() / "models" / BASE_MODEL
    for stage, dataset in (("sft", SFT_DATASET), ("reward", PAIRS_DATASET), ("dpo", PAIRS_DATASET)):
        cfg = C.preset_config("tiny-cpu", stage, dataset=dataset)
        assert cfg.model.ref == f"./models/{BASE_MODEL}"
        assert C.validate_before_load(cfg, root) == [], stage
    ppo = P.ppo_preset_config("tiny-cpu", prompt_dataset=PAIRS_DATASET,
                              overrides={"reward_model": str(built["sft_model"])})
    assert P.validate_ppo_before_load(ppo, root) == []


def test_the_tiny_ppo_preset_is_the_demos_quick_ppo():
    """tiny-cpu's ppo section says it holds the demo's QUICK settings: every PPO knob the demo
    sets is the same there (the critic is the one stated difference)."""
    from workbench.train import ppo_config as P
    from workbench.train.demo import QUICK

    cfg = P.ppo_preset_config("tiny-cpu", prompt_dataset="p")
    assert {"batch_size": cfg.batch_size, "mini_batch_size": cfg.mini_batch_size, "ppo_epochs": cfg.ppo_epochs,
            "lr": cfg.lr, "max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature,
            "kl_coef": cfg.kl_coef, "total_steps": cfg.total_steps, "lora_r": cfg.lora_r,
            "lora_alpha": cfg.lora_alpha, "lr_scheduler": cfg.lr_scheduler, "dtype": cfg.dtype} == {
        "batch_size": QUICK.ppo_batch_size, "mini_batch_size": QUICK.ppo_mini_batch_size,
        "ppo_epochs": QUICK.ppo_epochs, "lr": QUICK.ppo_lr, "max_new_tokens": QUICK.max_new_tokens,
        "temperature": QUICK.temperature, "kl_coef": QUICK.kl_coef, "total_steps": QUICK.ppo_steps,
        "lora_r": QUICK.lora_r, "lora_alpha": 2 * QUICK.lora_r, "lr_scheduler": "constant", "dtype": "fp32"}
    assert "QUICK" in (C.PRESETS_DIR / "tiny-cpu.yaml").read_text("utf-8")
