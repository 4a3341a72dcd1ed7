"""Loaders: dtype choice, tokenizer padding and chat templates, 4/8-bit on CPU, LoRA, reward models."""

from __future__ import annotations

import warnings

import pytest

from workbench.models import loading
from workbench.models.refs import ModelError

MESSAGES = [{"role": "user", "content": "Tell me about river."}]


def _quantization_skip_reason(quantization: str):
    try:
        loading.check_quantization_available(quantization, "cpu")
    except ModelError as err:
        return str(err)
    return None


# --- dtype -----------------------------------------------------------------

def test_pick_dtype(monkeypatch):
    import torch

    assert loading.pick_dtype("cpu") is torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert loading.pick_dtype("cuda") is torch.bfloat16
    assert loading.pick_dtype("cuda:1") is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert loading.pick_dtype(torch.device("cuda")) is torch.float16


# --- tokenizer -------------------------------------------------------------

def test_load_tokenizer_padding_side(tiny_dir):
    tok = loading.load_tokenizer(tiny_dir, padding_side="left", require_chat_template=True)
    assert tok.padding_side == "left"
    batch = tok(["Tell me about river.", "hi"], padding=True)
    assert batch["input_ids"][1][0] == tok.pad_token_id
    assert loading.load_tokenizer(tiny_dir).padding_side == "right"
    with pytest.raises(ModelError, match="padding_side"):
        loading.load_tokenizer(tiny_dir, padding_side="middle")


def test_missing_pad_token_becomes_eos(tiny_dir, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    tok.pad_token = None
    tok.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path).pad_token is None
    (tmp_path / "config.json").write_text((tiny_dir / "config.json").read_text())
    loaded = loading.load_tokenizer(tmp_path)
    assert loaded.pad_token == loaded.eos_token == "<|eos|>"


def test_chat_data_needs_a_chat_template(tiny_copy):
    (tiny_copy / "chat_template.jinja").unlink()
    tok = loading.load_tokenizer(tiny_copy)  # fine for plain-text data
    assert not loading.has_chat_template(tok)
    with pytest.raises(ModelError) as err:
        loading.load_tokenizer(tiny_copy, require_chat_template=True)
    assert str(err.value).startswith(f"the tokenizer of {tiny_copy} has no chat template")
    assert "chat messages" in str(err.value)


def test_hub_id_offline_is_a_clear_error(monkeypatch):
    import huggingface_hub.constants

    # The env var is read once at import; patch the constant too.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError) as err:
        loading.load_tokenizer("workbench-test/not-a-real-model")
    msg = str(err.value)
    assert msg.startswith("could not download workbench-test/not-a-real-model: no network access")
    assert msg.endswith("use a local folder")
    assert "\n" not in msg


def test_broken_local_folder_is_wrapped(tiny_copy):
    (tiny_copy / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match=f"could not load the model from {tiny_copy}"):
        loading.load_causal_lm(tiny_copy)


# --- plain loading, LoRA ---------------------------------------------------

def test_load_causal_lm_fp32_with_checkpointing(tiny_dir):
    import torch

    model = loading.load_causal_lm(tiny_dir, device="cpu", gradient_checkpointing=True)
    assert model.dtype is torch.float32 and model.device.type == "cpu"
    assert not loading.is_quantized(model)
    assert model.config.use_cache is False
    assert any(getattr(m, "gradient_checkpointing", False) for m in model.modules())
    assert loading.load_causal_lm(tiny_dir, dtype="bf16").dtype is torch.bfloat16


def test_apply_lora_named_targets(tiny_dir):
    model = loading.load_causal_lm(tiny_dir)
    peft_model = loading.apply_lora(model, r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and ("q_proj" in n or "v_proj" in n) for n in trainable)


def test_apply_lora_rejects_bad_settings(tiny_dir):
    model = loading.load_causal_lm(tiny_dir)
    with pytest.raises(ModelError, match=r"\['qkv'\] are not in the model; its linear layers are .*q_proj"):
        loading.apply_lora(model, target_modules=["qkv"])
    with pytest.raises(ModelError, match="rank and alpha must be positive"):
        loading.apply_lora(model, r=0)
    with pytest.raises(ModelError, match="dropout"):
        loading.apply_lora(model, dropout=1.0)


def test_load_reward_model(tiny_dir):
    import torch

    model = loading.load_reward_model(tiny_dir)  # from a causal-LM folder: fresh score head
    tok = loading.load_tokenizer(tiny_dir)
    assert model.config.num_labels == 1
    assert model.config.pad_token_id == tok.pad_token_id
    batch = tok(["good river calm", "bad"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert model(**batch).logits.shape == (2, 1)
    peft_model = loading.apply_lora(model, r=4, alpha=8)
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert any("score" in n for n in trainable)  # the head trains with the adapters


def test_reward_model_pad_id_from_tokenizer(tiny_copy):
    import json

    cfg = json.loads((tiny_copy / "config.json").read_text())
    cfg["pad_token_id"] = None
    (tiny_copy / "config.json").write_text(json.dumps(cfg))
    model = loading.load_reward_model(tiny_copy)
    assert model.config.pad_token_id == loading.load_tokenizer(tiny_copy).pad_token_id


# --- quantization ----------------------------------------------------------

def test_quantization_checked_before_any_model_loads(tiny_dir, monkeypatch):
    import transformers

    def no_loading(*args, **kwargs):
        raise AssertionError("from_pretrained must not run")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_loading)
    monkeypatch.setattr(loading.platform, "system", lambda: "Darwin")
    with pytest.raises(ModelError, match="does not run on macOS"):
        loading.load_causal_lm(tiny_dir, quantization="4bit")
    monkeypatch.setattr(loading.platform, "system", lambda: "Linux")
    monkeypatch.setattr(loading.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="bitsandbytes, which is not installed"):
        loading.load_causal_lm(tiny_dir, quantization="8bit")
    with pytest.raises(ModelError, match="unknown quantization"):
        loading.load_causal_lm(tiny_dir, quantization="3bit")
    loading.check_quantization_available(None)


def test_broken_bitsandbytes_is_reported(monkeypatch):
    bnb = pytest.importorskip("bitsandbytes")

    def broken(*args, **kwargs):
        raise RuntimeError("no kernel for this device\nlong traceback text")

    monkeypatch.setattr(bnb.nn, "Linear4bit", broken)
    with pytest.raises(ModelError) as err:
        loading.check_quantization_available("4bit", "cpu")
    assert str(err.value) == ("4bit quantization is not available on cpu: bitsandbytes failed "
                              "(RuntimeError: no kernel for this device); turn quantization off")


def _lora_grads(model, batch):
    import torch

    torch.manual_seed(1)
    peft_model = loading.apply_lora(model, r=4, alpha=8, dropout=0.0)
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:  # B starts at zero, which would hide gradient flow into A
            torch.nn.init.normal_(p, std=0.1)
    peft_model.train()
    out = peft_model(**batch, labels=batch["input_ids"])
    out.loss.backward()
    return peft_model, {n: p.grad.clone() for n, p in peft_model.named_parameters() if p.grad is not None}


def test_4bit_on_cpu_with_lora(tiny_dir):
    reason = _quantization_skip_reason("4bit")
    if reason:
        pytest.skip(reason)
    import torch

    tok = loading.load_tokenizer(tiny_dir, padding_side="left")
    model = loading.load_causal_lm(tiny_dir, quantization="4bit", device="cpu")
    assert loading.is_quantized(model)
    assert type(model.model.layers[0].self_attn.q_proj).__name__ == "Linear4bit"
    enc = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, return_dict=True, return_tensors="pt")
    with torch.no_grad():
        assert model.generate(**enc, max_new_tokens=3, do_sample=False).shape[1] == enc["input_ids"].shape[1] + 3

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peft_model, grads = _lora_grads(model, tok(["good river calm", "hi"], padding=True, return_tensors="pt"))
    trainable, total = loading.count_parameters(peft_model)
    assert 0 < trainable < total
    for name, p in peft_model.named_parameters():
        assert p.requires_grad == ("lora_" in name), name
    assert grads and all(g.abs().sum() > 0 for g in grads.values())


def _reload_then_generate_grads(tiny_dir, batch, *, allow_repacking):
    import torch

    model = loading.load_causal_lm(tiny_dir, quantization="4bit")
    if allow_repacking:  # what a plain from_pretrained gives
        for m in model.modules():
            if hasattr(m, "support_avx512bf16_for_cpu"):
                m.support_avx512bf16_for_cpu = True
    with torch.no_grad():
        model(**batch)  # eval-mode forward without grad (as in generation): repacks on AVX512-BF16 CPUs
    return _lora_grads(model, batch)[1]


def test_4bit_gradients_survive_an_earlier_generation(tiny_dir):
    """Regression: bitsandbytes' CPU inference repacking silently drops gradients (AVX512-BF16 CPUs).

    Loaded through the workbench, weights are never repacked: gradients match
    exactly. Repacked by someone else, apply_lora undoes it (bitsandbytes'
    inverse is lossy in the scales, so only close); unfixed, the first layer's
    LoRA gradients came out ~40% too small.
    """
    reason = _quantization_skip_reason("4bit")
    if reason:
        pytest.skip(reason)
    import torch

    tok = loading.load_tokenizer(tiny_dir)
    batch = tok(["Tell me about river. good calm", "hi there"], padding=True, return_tensors="pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, expected = _lora_grads(loading.load_causal_lm(tiny_dir, quantization="4bit"), batch)
        kept = _reload_then_generate_grads(tiny_dir, batch, allow_repacking=False)
        undone = _reload_then_generate_grads(tiny_dir, batch, allow_repacking=True)
    assert kept.keys() == undone.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(kept[name], expected[name], msg=name)
        rel = ((undone[name] - expected[name]).norm() / expected[name].norm()).item()
        assert rel < 0.05, (name, rel)


def test_8bit_on_cpu(tiny_dir):
    reason = _quantization_skip_reason("8bit")
    if reason:
        pytest.skip(reason)
    import torch

    model = loading.load_causal_lm(tiny_dir, quantization="8bit")
    assert loading.is_quantized(model)
    tok = loading.load_tokenizer(tiny_dir)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logits = model(**tok(["good river"], return_tensors="pt")).logits
    assert logits.shape[-1] == len(tok)
