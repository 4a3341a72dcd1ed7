"""Shared fixtures for the training tests: a tiny model and a workspace with small datasets.

Both are built once per session (about 3 s). Tests must not change them:
jobs only add snapshots to the workspace, which is harmless. Heavy imports
happen inside fixtures and tests, so collecting this folder stays cheap.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

#: Set for this process and every job it spawns: jobs never reach the network, and a
#: tiny model trains ~100x faster on one thread when another process holds a core.
JOB_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _job_env():
    mp = pytest.MonkeyPatch()
    for key, value in JOB_ENV.items():
        mp.setenv(key, value)
    return mp


@pytest.fixture(scope="module", autouse=True)
def train_env():
    """:data:`JOB_ENV` for each module here (module scope: it never leaks past this folder)."""
    mp = _job_env()
    yield
    mp.undo()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny causal LM folder (model, tokenizer, chat template); do not modify it."""
    from workbench.models.tiny import build_tiny_model

    mp = _job_env()
    try:
        return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    finally:
        mp.undo()


def _chat(prompt: str, response: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


@pytest.fixture(scope="session")
def train_ws(tmp_path_factory, tiny_model) -> Path:
    """A workspace folder with the tiny model in ``models/`` and these datasets:

    - ``demos``: 30 chat demonstrations (sft, conversational), every 5th in validation;
    - ``demos_text``: 20 prompt/completion demonstrations (sft, standard), no splits;
    - ``pairs``: 40 preference pairs (standard), every 5th in validation;
    - ``pairs_noval``: 10 preference pairs without a validation split;
    - ``prompts``: 5 prompts (a kind no training stage takes).
    """
    from workbench.models.tiny import NEGATIVE_WORDS, NEUTRAL_WORDS, POSITIVE_WORDS, demo_prompts
    from workbench.store import datasets as R
    from workbench.store.records import Record
    from workbench.store.workspace import Workspace

    root = tmp_path_factory.mktemp("train") / "ws"
    rng = random.Random(0)

    def words(pool, lo=2, hi=6):
        return " ".join(rng.choice(pool) for _ in range(rng.randint(lo, hi)))

    prompts = demo_prompts()
    with Workspace.init(root) as ws:
        shutil.copytree(tiny_model, ws.models_dir / "tiny")
        with ws.transaction() as c:
            d = R.create_dataset(c, "demos", "sft", "conversational")
            for i, p in enumerate(prompts):
                R.add_record(c, d, Record(messages=_chat(p, words(POSITIVE_WORDS + NEUTRAL_WORDS)),
                                          split="validation" if i % 5 == 0 else "train"))
            d = R.create_dataset(c, "demos_text", "sft", "standard")
            for p in prompts[:20]:
                R.add_record(c, d, Record(prompt=p + "\n", completion=words(POSITIVE_WORDS)))
            d = R.create_dataset(c, "pairs", "preference", "standard")
            for i, p in enumerate(prompts + prompts[:10]):
                R.add_record(c, d, Record(prompt=p + "\n", chosen=words(POSITIVE_WORDS),
                                          rejected=words(NEGATIVE_WORDS),
                                          split="validation" if i % 5 == 0 else "train"))
            d = R.create_dataset(c, "pairs_noval", "preference", "standard")
            for p in prompts[:10]:
                R.add_record(c, d, Record(prompt=p, chosen=words(POSITIVE_WORDS), rejected=words(NEGATIVE_WORDS)))
            d = R.create_dataset(c, "prompts", "prompts", "standard")
            for p in prompts[:5]:
                R.add_record(c, d, Record(prompt=p))
    return root


@pytest.fixture(scope="session")
def small_config():
    """``small_config(dataset, **training)``: a small config (no ``stage``) for the tiny model
    in ``train_ws``, LoRA r=8, 6 steps of 4 examples, a metric every step."""
    return _small_config


def _small_config(dataset: str = "demos", **training) -> dict:
    return {"model": {"ref": "./models/tiny", "lora": True, "lora_r": 8, "lora_alpha": 16},
            "data": {"dataset": dataset},
            "training": {"max_steps": 6, "batch_size": 4, "logging_steps": 1, "learning_rate": 1e-3,
                         "max_length": 128, "device": "cpu", **training}}


@pytest.fixture(scope="session")
def ppo_models(tmp_path_factory) -> dict[str, Path]:
    """Tiny model folders for the PPO tests, built once: ``policy`` (the plain tiny model),
    ``sharp`` (the same with its final norm x10, so PPO visibly moves it), ``gpt2`` (absolute
    positions) and ``reward`` (a reward model on the tiny backbone); do not modify them."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from workbench.models.tiny import build_tiny_model, build_tiny_reward_model

    root = tmp_path_factory.mktemp("ppo_models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        policy = build_tiny_model(root / "policy")
        reward = build_tiny_reward_model(root / "reward", policy, seed=1)
        lm = AutoModelForCausalLM.from_pretrained(policy, use_safetensors=True)
        with torch.no_grad():
            lm.model.norm.weight.mul_(10.0)
        lm.save_pretrained(root / "sharp", safe_serialization=True)
        tokenizer = AutoTokenizer.from_pretrained(policy)
        tokenizer.save_pretrained(root / "sharp")
        # Absolute position embeddings (and dropout layers): where left padding without
        # position_ids really shifts the numbers; RoPE models only see relative positions.
        gpt2 = GPT2LMHeadModel(GPT2Config(
            vocab_size=len(tokenizer), n_embd=64, n_layer=2, n_head=4, n_positions=256,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id))
        gpt2.save_pretrained(root / "gpt2", safe_serialization=True)
        tokenizer.save_pretrained(root / "gpt2")
    return {"policy": policy, "sharp": root / "sharp", "gpt2": root / "gpt2", "reward": reward}
