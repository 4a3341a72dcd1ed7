"""A blind comparison's verdict in words, with the two models named readably.

``B (ppo-9f3e step-120) wins 75% [52%, 90%] of 12 decisive · ties 2 · n 14 ·
against A (sft-b84c step-60)``: shown where the comparison ends (the Rank
page's "All done" screen) and at the top of Quality….
"""

from __future__ import annotations

from workbench.data.quality import ComparisonResult

from ui.common.names import model_name


def comparison_verdict(result: ComparisonResult) -> str:
    """One line: B's win rate among decisive comparisons, its Wilson 95% interval, ties and n."""
    a, b = f"A ({model_name(result.label_a)})", f"B ({model_name(result.label_b)})"
    if not result.n:
        return f"{b} against {a}: no decisions yet"
    ties = result.ties + result.both_bad
    tail = f"ties {ties:,} \u00b7 n {result.n:,}"
    if result.win_rate_b is None:
        return f"{b} against {a}: all {result.n:,} decisions were ties"
    decisive = result.a_wins + result.b_wins
    return (f"{b} wins {result.win_rate_b:.0%} [{result.low:.0%}, {result.high:.0%}] of {decisive:,} decisive "
            f"\u00b7 {tail} \u00b7 against {a}")


def comparison_queue_name(label_a: str, label_b: str, annotator: str) -> str:
    """A comparison queue's name: the two models, readably (was ``compare 3f2a · ana``)."""
    return f"{model_name(label_a)} vs {model_name(label_b)} \u00b7 {annotator}"
