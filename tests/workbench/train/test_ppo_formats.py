"""What the policy and the reward model read: the format of the data each was trained on
(plain prompt + completion, or a chat template), whole conversations, and truncated responses
that reach the reward model cut off, with the subtract and replace penalties."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from workbench.train import ppo
from workbench.train.ppo import PPOConfig, PPOTrainer

CHAT = [{"role": "system", "content": "Réponds en une phrase."},
        {"role": "user", "content": "Tell me about the river."},
        {"role": "assistant", "content": "It is long."},
        {"role": "user", "content": "Tell me about the sea, 海."}]


@pytest.fixture(autouse=True)
def offline_env(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def with_manifest(src: Path, dest: Path, **manifest) -> Path:
    """A copy of model folder ``src`` that says it came out of a workbench run on ``manifest``'s data."""
    shutil.copytree(src, dest)
    (dest / "workbench.json").write_text(json.dumps({"stage": "sft", **manifest}), encoding="utf-8")
    return dest


def trainer(policy: Path, reward: Path, workspace=None, lines=None, **over) -> PPOTrainer:
    cfg = PPOConfig.from_dict({"policy_model": str(policy), "reward_model": str(reward),
                               "prompts": ["Tell me about cats.", CHAT], "batch_size": 2, "mini_batch_size": 2,
                               "max_new_tokens": 4, **over})
    return PPOTrainer(cfg, workspace=workspace, log=(lines.append if lines is not None else lambda m: None))


@pytest.fixture(scope="module")
def plain_models(ppo_models, tmp_path_factory) -> dict[str, Path]:
    """The tiny policy and reward model as if trained on plain-text (standard) datasets: one
    manifest says so itself, the other names a workspace dataset (``demos_text``)."""
    root = tmp_path_factory.mktemp("plain")
    return {"policy": with_manifest(ppo_models["policy"], root / "policy", dataset="demos_text"),
            "reward": with_manifest(ppo_models["reward"], root / "reward", dataset="pairs", conversational=False)}


def test_plain_text_training_data_means_plain_prompts_and_reward_texts(plain_models, train_ws):
    lines: list[str] = []
    t = trainer(plain_models["policy"], plain_models["reward"], workspace=train_ws, lines=lines)
    assert not t.prompt_chat and not t.reward_chat
    assert any("prompt_format: plain (trained on standard dataset 'demos_text')" in m for m in lines)
    assert any("reward_format: plain (trained on standard dataset 'pairs')" in m for m in lines)
    ids, _ = t._encode_prompts(["Tell me about cats."])
    assert t.tokenizer.decode(ids[0], skip_special_tokens=True) == "Tell me about cats."
    assert t.reward_text("Tell me about cats.", " soft") == "Tell me about cats. soft<|eos|>"
    # What TRL's reward trainer scored for plain data: prompt + response + EOS, raw.
    enc = t.rm_tokenizer("Tell me about cats. soft<|eos|>", return_tensors="pt")
    with torch.no_grad():
        direct = t.reward_model(**enc).logits[0, 0].item()
    assert t.score(["Tell me about cats."], [" soft"])[0].item() == pytest.approx(direct, abs=1e-5)
    # Without the workspace the policy's dataset cannot be looked up: its tokenizer decides (chat).
    assert trainer(plain_models["policy"], plain_models["reward"]).prompt_chat


def test_chat_training_data_or_an_explicit_override_means_the_chat_template(plain_models, ppo_models, train_ws,
                                                                             tmp_path):
    chat_policy = with_manifest(ppo_models["policy"], tmp_path / "chat policy", dataset="demos")
    t = trainer(chat_policy, plain_models["reward"], workspace=train_ws, reward_format="chat")
    assert t.prompt_chat and t.reward_chat
    # A conversation keeps its system prompt and earlier turns, for the policy and the reward model.
    ids, _ = t._encode_prompts([CHAT])
    assert t.tokenizer.decode(ids[0]) == ("<|system|>\nRéponds en une phrase.\n<|user|>\nTell me about the river.\n"
                                          "<|assistant|>\nIt is long.<|eos|><|user|>\nTell me about the sea, 海.\n"
                                          "<|assistant|>\n")
    assert t.reward_text(CHAT, "Blue.").startswith("<|system|>\nRéponds en une phrase.\n<|user|>\nTell me about "
                                                   "the river.\n<|assistant|>\nIt is long.<|eos|>")
    assert not trainer(chat_policy, plain_models["reward"], workspace=train_ws, prompt_format="plain").prompt_chat


def test_a_truncated_response_reaches_the_reward_model_cut_off(ppo_models):
    t = trainer(ppo_models["policy"], ppo_models["reward"])
    assert t.reward_chat  # no manifest: the tokenizer's template
    done = t.reward_text("Tell me about cats.", "soft fur", finished=True)
    cut = t.reward_text("Tell me about cats.", "soft fur", finished=False)
    assert done == "<|user|>\nTell me about cats.\n<|assistant|>\nsoft fur<|eos|>"
    assert cut == "<|user|>\nTell me about cats.\n<|assistant|>\nsoft fur"
    finished, truncated = t.score(["Tell me about cats."] * 2, ["soft fur"] * 2, [True, False]).tolist()
    assert finished != pytest.approx(truncated, abs=1e-6)


@pytest.mark.parametrize("mode, penalty", [("subtract", 0.7), ("replace", -1.0), ("subtract", None)])
def test_missing_eos_penalty_modes(ppo_models, mode, penalty):
    t = trainer(ppo_models["policy"], ppo_models["reward"], missing_eos_mode=mode, missing_eos_penalty=penalty)
    word = t.tokenizer.encode(" good", add_special_tokens=False)[0]
    eos, pad = t.eos_ids[0], t.pad_id
    prompts = ["Tell me about cats.", "Tell me about cats."]
    query_ids, query_mask = t._encode_prompts(prompts)
    ro = t.evaluate(prompts, query_ids, query_mask, torch.tensor([[word, eos, pad], [word, word, word]]))
    assert ro.contains_eos.tolist() == [True, False]
    raw = t.score(prompts, ro.responses, [True, False]).tolist()
    want_cut = {"subtract": raw[1] - (penalty or 0.0), "replace": penalty}[mode]
    assert ro.scores.tolist() == pytest.approx([raw[0], want_cut], abs=1e-5)


def test_the_defaults_penalize_unfinished_responses():
    cfg = PPOConfig.from_dict({"policy_model": "m", "prompts": ["a"]})
    assert cfg.missing_eos_mode == "subtract" and cfg.missing_eos_penalty == 1.0
    assert PPOConfig.from_dict({"policy_model": "m", "prompts": ["a"], "missing_eos_mode": "replace",
                                "missing_eos_penalty": -1}).missing_eos_penalty == -1.0
    with pytest.raises(ppo.ConfigError, match="^missing_eos_penalty: must be >= 0 with missing_eos_mode 'subtract'"):
        PPOConfig.from_dict({"policy_model": "m", "prompts": ["a"], "missing_eos_penalty": -1})
    with pytest.raises(ppo.ConfigError, match="^prompt_format"):
        PPOConfig.from_dict({"policy_model": "m", "prompts": ["a"], "prompt_format": "jinja"})
