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
