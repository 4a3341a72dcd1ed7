"""PPO samples exactly from softmax(logits / temperature), whatever the model folder's
``generation_config.json`` says, and a run whose sampling and log-probs disagree fails loudly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from workbench.models import generation as G
from workbench.train import ppo
from workbench.train.ppo import PPOConfig, PPOTrainer

BATCH = ["Tell me about the river.", "Tell me about a lovely morning.", "Hi.", "Tell me about cats."]


@pytest.fixture(autouse=True)
def offline_env(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def folders(ppo_models, tmp_path_factory) -> dict[str, Path]:
    """``clean``: the sharp tiny model; ``shipped``: the same weights with a generation_config.json
    full of processors (as real chat models ship: Qwen sets repetition_penalty, others
    no_repeat_ngram_size, suppress_tokens...)."""
    root = tmp_path_factory.mktemp("gen_config_models")
    clean = ppo_models["sharp"]
    shipped = root / "with processors"
    shutil.copytree(clean, shipped)
    gen = json.loads((clean / "generation_config.json").read_text())
    common = [int(i) for i in range(3, 40)]  # frequent BPE merges of the tiny tokenizer
    gen.update({"no_repeat_ngram_size": 1, "suppress_tokens": common, "repetition_penalty": 1.8,
                "min_p": 0.05, "top_k": 7, "do_sample": True, "temperature": 0.3})
    (shipped / "generation_config.json").write_text(json.dumps(gen), encoding="utf-8")
    return {"clean": clean, "shipped": shipped}


def trainer_for(folder: Path, reward: Path, log=None) -> PPOTrainer:
    cfg = PPOConfig.from_dict({"policy_model": str(folder), "reward_model": str(reward), "prompts": BATCH,
                               "batch_size": 4, "mini_batch_size": 2, "max_new_tokens": 12,
                               "temperature": 1.0, "seed": 5})
    return PPOTrainer(cfg, log=log or (lambda m: None))


def test_a_folders_generation_config_changes_nothing_that_is_sampled(folders, ppo_models):
    lines: list[str] = []
    shipped = trainer_for(folders["shipped"], ppo_models["reward"], log=lines.append)
    clean = trainer_for(folders["clean"], ppo_models["reward"])
    torch.manual_seed(11)
    a = shipped.rollout(BATCH)
    torch.manual_seed(11)
    b = clean.rollout(BATCH)
    # Same weights, same random numbers: the same tokens, whatever the folder asked for.
    assert torch.equal(a.response_ids, b.response_ids)
    assert torch.allclose(a.logprobs, b.logprobs, atol=1e-6)
    assert shipped.sampling_checked and clean.sampling_checked
    note = next(m for m in lines if "ignoring the sampling defaults" in m)
    assert "no_repeat_ngram_size=1" in note and "suppress_tokens" in note and "repetition_penalty=1.8" in note
    # And the folder's processors would have mattered: with them, tokens repeat nowhere.
    ids = torch.cat([a.query_ids, a.response_ids], 1)
    assert any(len(set(row[m].tolist())) < int(m.sum()) for row, m in zip(ids, a.attention_mask.bool()))


def test_the_first_batch_fails_loudly_when_sampling_and_log_probs_disagree(folders, ppo_models, monkeypatch):
    trainer = trainer_for(folders["clean"], ppo_models["reward"])
    real = G.clean_generation_config

    def sneaky(**kwargs):  # a processor slipping in (a transformers change, a new default...)
        gen = real(**kwargs)
        gen.no_repeat_ngram_size = 1
        return gen

    monkeypatch.setattr(G, "clean_generation_config", sneaky)
    with pytest.raises(ppo.PPOStepError, match="differ from the distribution generate sampled from") as err:
        trainer.train_step()
    assert err.value.code == "sampling_mismatch" and trainer.step == 0
    monkeypatch.setattr(G, "clean_generation_config", real)
    metrics, _ = trainer.train_step()  # with the clean config the check passes and training goes on
    assert trainer.sampling_checked and trainer.step == 1 and metrics["objective/kl"] == 0.0


def test_top_k_and_top_p_are_refused():
    base = {"policy_model": "m", "prompts": ["a"]}
    with pytest.raises(ppo.ConfigError, match="^top_k: must be 0 for PPO"):
        PPOConfig.from_dict({**base, "top_k": 50})
    with pytest.raises(ppo.ConfigError, match="^top_p: must be 1.0 for PPO"):
        PPOConfig.from_dict({**base, "top_p": 0.9})
    assert PPOConfig.from_dict({**base, "top_k": 0, "top_p": 1.0}).top_k == 0


def test_shipped_processors_names_what_a_config_changes():
    gen = G.clean_generation_config(eos_token_id=2, pad_token_id=0)
    assert G.shipped_processors(gen) == {}
    gen.no_repeat_ngram_size, gen.top_p = 3, 0.8
    assert G.shipped_processors(gen) == {"no_repeat_ngram_size": 3, "top_p": 0.8}
