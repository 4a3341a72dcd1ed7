"""Expanding rankings into preference pairs."""

from __future__ import annotations

from typing import Iterator, Sequence, TypeVar

T = TypeVar("T")

TIE_POLICIES = ("skip", "both")


def pairs_from_ordering(ordering: Sequence[Sequence[T]], *, ties: str = "skip") -> Iterator[tuple[T, T, bool]]:
    """Yield ``(chosen, rejected, is_tie)`` for a ranking given as tie groups, best first.

    Every item of a better group beats every item of a worse group, so a
    k-wise ranking of distinct items gives k(k-1)/2 pairs. Items in the same
    group are tied: by default they give no pair; with ``ties="both"`` a tie
    gives the pair in both orders (for a Bradley-Terry reward model the two
    cancel, which is how a tie carries no preference but still counts as
    data for margin-free objectives).
    """
    if ties not in TIE_POLICIES:
        raise ValueError(f"ties={ties!r}: expected one of {TIE_POLICIES}")
    groups = [list(g) for g in ordering if len(g)]
    seen: set = set()
    for g in groups:
        for item in g:
            if item in seen:
                raise ValueError(f"item {item!r} appears twice in the ranking")
            seen.add(item)
    for i, better in enumerate(groups):
        for worse in groups[i + 1:]:
            for a in better:
                for b in worse:
                    yield a, b, False
        if ties == "both":
            for x in range(len(better)):
                for y in range(x + 1, len(better)):
                    yield better[x], better[y], True
                    yield better[y], better[x], True
