"""The VRAM estimate: known figures, the parameter count of a real model folder, monotonicity,
the PPO and DPO extras, the probe reading and the fit verdict. No torch import anywhere."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.train import vram as V

GB = 1e9


def weights(hub_id: str, quantization=None, **kw) -> float:
    return V.estimate(V.Setup(model=hub_id, quantization=quantization, **kw)).part("weights") / GB


def test_known_weight_figures():
    # Qwen2.5-0.5B in bf16: 494M parameters, about 1 GB.
    assert V.known_shape("Qwen/Qwen2.5-0.5B-Instruct").num_params() == pytest.approx(494e6, rel=0.01)
    assert 0.95 <= weights("Qwen/Qwen2.5-0.5B-Instruct") <= 1.02
    # A 7B Llama-architecture model in 4-bit NF4: 3.5-4 GB (embeddings and head stay 16-bit).
    assert V.known_shape("meta-llama/Llama-2-7b-hf").num_params() == pytest.approx(6.74e9, rel=0.01)
    assert 3.5 <= weights("meta-llama/Llama-2-7b-hf", "4bit") <= 4.0
    assert 3.8 <= weights("mistralai/Mistral-7B-Instruct-v0.3", "4bit") <= 4.4
    # Qwen2.5-7B's 152k vocabulary: ~1.1B embedding + head parameters stay bf16.
    assert V.known_shape("Qwen/Qwen2.5-7B-Instruct").num_params() == pytest.approx(7.62e9, rel=0.01)
    assert 5.2 <= weights("Qwen/Qwen2.5-7B-Instruct", "4bit") <= 5.9
    assert 14.5 <= weights("Qwen/Qwen2.5-7B-Instruct") <= 15.5  # bf16
    assert V.known_shape("meta-llama/Meta-Llama-3-8B-Instruct").num_params() == pytest.approx(8.03e9, rel=0.01)
    assert V.known_shape("meta-llama/Llama-3.1-8B-Instruct") is V.known_shape("meta-llama/Llama-3.1-8B")
    assert V.known_shape("someone/unknown-model") is None
    # 8-bit sits between 4-bit and bf16.
    assert weights("Qwen/Qwen2.5-1.5B-Instruct", "4bit") < weights("Qwen/Qwen2.5-1.5B-Instruct", "8bit") \
        < weights("Qwen/Qwen2.5-1.5B-Instruct")


def _safetensors_params(path: Path) -> int:
    """Parameter count from a safetensors header (8-byte length + JSON), without torch."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    total = 0
    for name, info in header.items():
        if name != "__metadata__":
            count = 1
            for d in info["shape"]:
                count *= d
            total += count
    return total


def test_a_local_folder_is_read_from_its_config_and_counts_exactly(tiny_model, tmp_path):
    shape = V.model_shape(str(tiny_model))
    cfg = json.loads((tiny_model / "config.json").read_text())
    assert (shape.hidden_size, shape.num_layers, shape.vocab_size) == (cfg["hidden_size"], cfg["num_hidden_layers"],
                                                                      cfg["vocab_size"])
    assert shape.num_params() == _safetensors_params(tiny_model / "model.safetensors")
    # A relative folder is found in the workspace; an adapter or checkpoint folder by its base model.
    ws = tmp_path / "ws"
    (ws / "models").mkdir(parents=True)
    (ws / "models" / "tiny").symlink_to(tiny_model)
    assert V.model_shape("./models/tiny", ws) == shape
    ckpt = tmp_path / "step-3"
    ckpt.mkdir()
    (ckpt / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tiny_model)}))
    assert V.model_shape(str(ckpt)) == shape
    (ckpt / "adapter_config.json").unlink()
    (ckpt / "workbench.json").write_text(json.dumps({"base_model": {"id": "Qwen/Qwen2.5-0.5B-Instruct"}}))
    assert V.model_shape(str(ckpt)).hidden_size == 896
    # GPT-2 key names and an ungated MLP.
    gpt2 = V.shape_from_config({"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12,
                                "vocab_size": 50257})
    assert gpt2.num_params() == pytest.approx(124e6, rel=0.02) and not gpt2.gated_mlp


def _sft(**over) -> V.Estimate:
    model = {"ref": "Qwen/Qwen2.5-1.5B-Instruct", "lora": True, "lora_r": 16, **over.pop("model", {})}
    training = {"batch_size": 4, "max_length": 1024, **over.pop("training", {})}
    return V.estimate_config(over.pop("stage", "sft"), {"model": model, "training": training})


def test_the_estimate_grows_with_batch_length_rank_and_shrinks_with_savings():
    base = _sft()
    assert base.shape is not None and base.total > 0 and base.device == "cuda"
    keys = [p.key for p in base.parts]
    assert keys == ["weights", "adapters", "optimizer", "activations", "logits", "overhead"]
    for bigger in (_sft(training={"batch_size": 8}), _sft(training={"max_length": 2048}),
                   _sft(model={"lora_r": 64}), _sft(model={"lora": False})):
        assert bigger.total > base.total
    assert _sft(training={"batch_size": 8}).part("activations") == 2 * base.part("activations")
    assert _sft(model={"lora_r": 64}).part("adapters") == 4 * base.part("adapters")
    assert _sft(model={"gradient_checkpointing": True}).part("activations") < base.part("activations") / 5
    assert _sft(model={"quantization": "4bit"}).part("weights") < base.part("weights") / 2.5
    assert _sft(model={"quantization": "4bit"}).total < base.total
    # Full fine-tuning: gradients and AdamW moments for every parameter.
    full = _sft(model={"lora": False})
    assert full.part("optimizer") == pytest.approx(3 * full.part("weights"))
    assert full.part("adapters") == 0
    # Fewer target modules, fewer adapter parameters.
    assert _sft(model={"lora_target_modules": "q_proj,v_proj"}).part("adapters") < base.part("adapters") / 4
    # Reward and DPO forward chosen and rejected together; the reward model has no logits over the vocabulary.
    reward, dpo = _sft(stage="reward"), _sft(stage="dpo")
    assert reward.part("activations") == 2 * base.part("activations") and reward.part("logits") == 0
    assert dpo.part("logits") == 2 * base.part("logits")
    assert _sft(stage="dpo", model={"lora": False}).part("reference") == base.part("weights")
    # On the CPU the estimate is RAM in fp32 and has no CUDA overhead.
    cpu = _sft(training={"device": "cpu"})
    assert cpu.device == "cpu" and cpu.part("overhead") == 0 and cpu.part("weights") == 2 * base.part("weights")


def test_ppo_counts_the_kv_cache_value_head_and_reward_model():
    cfg = {"policy_model": "Qwen/Qwen2.5-0.5B-Instruct", "reward_model": "Qwen/Qwen2.5-1.5B-Instruct",
           "batch_size": 16, "mini_batch_size": 4, "max_new_tokens": 64}
    est = V.estimate_config("ppo", cfg)
    keys = {p.key for p in est.parts}
    assert {"weights", "adapters", "optimizer", "value_head", "kv_cache", "activations", "logits",
            "reward_model"} <= keys
    shape = V.known_shape("Qwen/Qwen2.5-0.5B-Instruct")
    assert est.part("kv_cache") == 2 * shape.num_layers * shape.kv_dim * (V.PPO_PROMPT_TOKENS + 64) * 16 * 2
    rm = V.known_shape("Qwen/Qwen2.5-1.5B-Instruct")
    assert est.part("reward_model") == rm.num_params(lm_head=False) * 2
    assert V.estimate_config("ppo", {**cfg, "batch_size": 32}).part("kv_cache") == 2 * est.part("kv_cache")
    assert V.estimate_config("ppo", {**cfg, "reward_quantization": "4bit"}).part("reward_model") \
        < est.part("reward_model") / 2.5
    assert V.estimate_config("ppo", {**cfg, "max_new_tokens": 256}).total > est.total
    full = V.estimate_config("ppo", {**cfg, "lora": False})  # all weights train, against a frozen copy
    assert full.part("reference") == full.part("weights") and "reference" not in keys
    assert full.part("optimizer") > 10 * est.part("optimizer")
    # Gradient accumulation: a micro-batch goes through the model at a time.
    accumulated = V.estimate_config("ppo", {**cfg, "gradient_accumulation_steps": 4})
    assert accumulated.part("logits") == est.part("logits") // 4
    assert accumulated.part("activations") < est.part("activations")


def test_ppo_with_a_separate_critic_counts_its_adapter_head_and_activations():
    """value_model: reward_model trains a LoRA adapter and the score head on the reward model's
    weights (held once: the reward model scores through them with the adapter off) and runs the
    reward model's body forward and backward in every update."""
    cfg = {"policy_model": "Qwen/Qwen2.5-0.5B-Instruct", "reward_model": "Qwen/Qwen2.5-1.5B-Instruct",
           "batch_size": 16, "mini_batch_size": 4, "max_new_tokens": 64, "lora_r": 8}
    shared = V.estimate_config("ppo", cfg)
    critic = V.estimate_config("ppo", {**cfg, "value_model": "reward_model"})
    rm = V.known_shape("Qwen/Qwen2.5-1.5B-Instruct")
    n_lora, _ = V.lora_params(rm, 8, "all-linear")
    assert critic.part("critic") == (n_lora + rm.hidden_size + 1) * 16 and critic.part("value_head") == 0
    tokens = 4 * (V.PPO_PROMPT_TOKENS + 64)
    assert critic.part("critic_activations") == V._activation_bytes(rm, tokens, 2, False)
    assert critic.part("critic_activations") > critic.part("activations")  # the 1.5B body is the larger one
    assert critic.part("reward_model") == shared.part("reward_model")  # no second copy of its weights
    assert critic.total > shared.total + critic.part("critic_activations")


def test_an_unknown_model_says_so_and_bad_form_values_fall_back_to_defaults():
    est = V.estimate_config("sft", {"model": {"ref": "nobody/nothing"}})
    assert est.shape is None and est.total == 0 and "nobody/nothing" in est.notes[0]
    assert V.check_fit(est, None).level == "unknown"
    half_typed = V.estimate_config("sft", {"model": {"ref": "Qwen/Qwen2.5-0.5B", "lora_r": "abc"},
                                           "training": {"batch_size": None}})
    assert half_typed.total == V.estimate_config("sft", {"model": {"ref": "Qwen/Qwen2.5-0.5B"}}).total


def _probe(ws: Path, run: str, info: dict) -> None:
    folder = ws / "runs" / run
    folder.mkdir(parents=True)
    (folder / "probe.json").write_text(json.dumps(info))


def test_fit_against_the_probed_gpu(tmp_path):
    ws = tmp_path / "ws"
    assert V.read_probe(ws) is None
    est = _sft()
    assert V.check_fit(est, None).level == "unknown"
    _probe(ws, "20260101-000000-probe-aaaa", {"gpu_name": None, "total_memory": None, "free_memory": None})
    fit = V.check_fit(est, V.read_probe(ws))
    assert fit.level == "cpu" and "no CUDA GPU" in fit.message
    small = {"gpu_name": "NVIDIA T400", "total_memory": 2 * V.GIB, "free_memory": 2 * V.GIB}
    _probe(ws, "20260101-000100-probe-bbbb", small)
    import os
    os.utime(ws / "runs" / "20260101-000100-probe-bbbb" / "probe.json", (2e9, 2e9))  # the newest
    gpu = V.read_probe(ws)
    assert gpu.name == "NVIDIA T400"
    fit = V.check_fit(est, gpu)
    assert fit.level == "over" and "will not fit" in fit.message and "NVIDIA T400" in fit.message
    big = V.GpuInfo("NVIDIA H200", 140 * V.GIB, 139 * V.GIB)
    assert V.check_fit(est, big).level == "ok"
    assert V.check_fit(est, V.GpuInfo("X", int(est.total / 0.95), 0)).level == "tight"
    assert V.check_fit(_sft(training={"device": "cpu"}), big).level == "cpu"


def test_importing_the_estimate_imports_no_torch():
    code = "import sys, workbench.train.vram, workbench.train.ppo_config, workbench.train.outputs; " \
           "print(any(m in sys.modules for m in ('torch', 'transformers', 'PySide6')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
