"""The summaries and the verdict of benchmarks/ppo_parity.py (the runs themselves need trl 1.12.0
from PyPI, so they are the benchmark's, not the test suite's)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from benchmarks import ppo_parity as P  # noqa: E402


def _curve(scores, true, kl):
    n = len(scores)
    return {"scores": scores, "true": true, "kl": kl, "length": [5.0] * n, "eos_share": [1.0] * n,
            "s_per_step": 0.5}


def test_ends_average_the_first_and_last_fifth():
    assert P.ends([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) == (1.5, 9.5)
    assert P.ends([4.0]) == (4.0, 4.0)  # at least one value each


def test_summarize_gains_are_last_minus_first():
    s = P.summarize(_curve([0, 0, 1, 2, 3, 4, 5, 6, 8, 10], [0] * 8 + [2, 4], [0] * 9 + [3]))
    assert s["score_gain"] == pytest.approx(9.0 - 0.0)
    assert s["true_gain"] == pytest.approx(3.0) and s["true_last"] == pytest.approx(3.0)
    assert s["kl_last"] == pytest.approx(1.5)


@pytest.mark.parametrize("ours_gain, ours_kl, met", [
    (2.0, 3.0, True),    # same gain, less KL
    (1.5, 1.0, False),   # less gain
    (2.5, 5.0, False),   # more gain bought with more KL
])
def test_verdict_needs_the_gain_at_no_more_kl(ours_gain, ours_kl, met):
    def side(gain, kl):
        return {"score_gain": 1.0, "kl_last": kl, "true_gain": gain, "true_last": gain}

    seeds = [{"seed": s, "ours": side(ours_gain, ours_kl), "trl": side(2.0, 4.0)} for s in range(3)]
    v = P.verdict(seeds)
    assert v["target_met"] is met and v["seeds_met"] == (3 if met else 0)
    assert list(v)[:6] == ["score_gain_ours", "score_gain_trl", "kl_last_ours", "kl_last_trl",
                           "true_gain_ours", "true_gain_trl"]
    assert v["kl_last_ours"] == ours_kl and v["true_gain_trl"] == 2.0


def test_true_score_judges_each_response_against_its_own_prompt():
    prompts = ["Tell me about the river.", "Describe the castle."]
    # On-topic kindness counts only for the asked topic; a conversation's last turn is the prompt.
    assert P.true_score(prompts, ["The river is lovely.", "The castle is lovely."]) == 1.0
    assert P.true_score(prompts, ["The castle is lovely.", "The river is lovely."]) == -1.0
    assert P.true_score([[{"role": "system", "content": "Be kind."},
                          {"role": "user", "content": prompts[0]}]], ["The river is lovely. Go away."]) == 0.0
    with pytest.raises(P.BenchError, match="2 responses for 1 prompts"):
        P.true_score(prompts[:1], ["Happy to help.", "Go away."])


def test_trl_queries_map_back_to_their_prompts_through_the_left_padding():
    prompt_of = {(1, 5, 6): "Describe the river.", (1, 7): "Tell me about the park."}
    rows = [[0, 1, 5, 6], [0, 0, 1, 7]]  # pad id 0 on the left
    assert P.prompts_of_queries(rows, prompt_of, 0) == ["Describe the river.", "Tell me about the park."]
    with pytest.raises(P.BenchError, match="none of the prompts"):
        P.prompts_of_queries([[0, 1, 9]], prompt_of, 0)


def test_trl_cache_key_ignores_our_ablation_but_not_the_shared_settings():
    spec = {"lr": 3e-4, "seed": 0, "ours_set": {}, "threads": 1, "trl_dir": "/a", "out_dir": "/b"}
    key = P.spec_key(spec, P.TRL_IRRELEVANT)
    assert P.spec_key({**spec, "ours_set": {"vf_coef": 0.0}, "threads": 2}, P.TRL_IRRELEVANT) == key
    assert P.spec_key({**spec, "lr": 1e-4}, P.TRL_IRRELEVANT) != key
    assert P.spec_key({**spec, "seed": 1}, P.TRL_IRRELEVANT) != key
