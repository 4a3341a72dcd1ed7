"""Candidates are sampled exactly with the job's settings: a model folder's generation_config.json
(processors such as no_repeat_ngram_size, suppress_tokens, repetition_penalty) changes nothing."""

from __future__ import annotations

import json
import shutil

from workbench.generate.config import GenerateConfig
from workbench.generate.models import ResolvedModel
from workbench.generate.prompts import PromptRow
from workbench.generate.sampler import Sampler


def test_a_folders_sampling_defaults_are_ignored_and_named(gen_model, tmp_path):
    shipped = tmp_path / "model with defaults"
    shutil.copytree(gen_model, shipped)
    path = shipped / "generation_config.json"
    gen = json.loads(path.read_text())
    gen.update({"no_repeat_ngram_size": 1, "suppress_tokens": list(range(3, 60)), "repetition_penalty": 2.0,
                "top_k": 5})
    path.write_text(json.dumps(gen), encoding="utf-8")
    cfg = GenerateConfig.from_dict({"model": str(gen_model), "prompts": ["x"], "n": 3, "temperature": 1.0,
                                    "top_p": 1.0, "max_new_tokens": 16, "device": "cpu"})
    rows = [PromptRow("Tell me about the river."), PromptRow("Hi there, how are you today?")]
    plain = Sampler(ResolvedModel(label="a", base=str(gen_model)), cfg)
    dirty = Sampler(ResolvedModel(label="b", base=str(shipped)), cfg)
    assert plain.ignored_defaults == {}
    assert dirty.ignored_defaults["no_repeat_ngram_size"] == 1 and dirty.ignored_defaults["top_k"] == 5
    a, tokens_a = plain.sample(rows, seed=3)
    b, tokens_b = dirty.sample(rows, seed=3)
    assert a == b and tokens_a == tokens_b
    greedy = GenerateConfig.from_dict({"model": str(gen_model), "prompts": ["x"], "n": 1, "temperature": 0.0,
                                       "max_new_tokens": 16, "device": "cpu"})
    assert Sampler(ResolvedModel(label="a", base=str(gen_model)), greedy).sample(rows, 0)[0] == \
        Sampler(ResolvedModel(label="b", base=str(shipped)), greedy).sample(rows, 0)[0]
