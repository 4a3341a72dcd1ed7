"""How good are the labels: counts, agreement, self-consistency, position bias, blind comparisons.

Every measure works on comparisons of two candidates. A ranking (tie
groups, best first) says, for every pair of candidates it orders, which one
won or that they tied: :func:`pair_labels` turns it into labels keyed by the
pair ``(low id, high id)``: ``"lo"`` (the lower id won), ``"hi"`` or
``"tie"``. "Both bad" is a tie.

- **Counts** per annotator (:func:`annotator_counts`).
- **Agreement** between two annotators on the pairs both labelled
  (:func:`agreement`): the share of equal labels and Cohen's kappa
  (``None`` where undefined: one label throughout for both).
- **Self-consistency** (:func:`self_consistency`): a repeat (a ranking with
  ``repeat_of``) shows an earlier item with positions swapped; consistent
  means the same labels. "Same side" counts repeats where the annotator
  picked the same *position* both times although the responses swapped
  sides, which is what a position habit looks like.
- **Position bias** (:func:`position_bias`): in pairwise decisions with a
  winner, how often the left response won, with a Wilson 95% interval
  (0.5 is no bias).
- **Blind comparison** (:func:`blind_comparison`): in a comparison queue,
  the win rate of model B over A among decisive comparisons with a Wilson
  95% interval, and the tie rate (ties and "both bad" over all decisions).

Pure functions over :class:`RankingRow` lists, plus loaders from the
workspace (:func:`load_rankings`, :func:`quality_report`,
:func:`comparison_result`). No Qt, no numpy.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from typing import Iterable, Optional, Sequence

#: Two-sided 95% normal quantile.
Z95 = 1.959963984540054


# =========================================================================== basics


@dataclass(frozen=True)
class RankingRow:
    """A ranking as the quality measures need it."""

    id: int
    prompt_id: int
    annotator: str
    ordering: tuple[tuple[int, ...], ...]
    all_bad: bool = False
    flags: tuple[str, ...] = ()
    shown: Optional[tuple[int, ...]] = None
    repeat_of: Optional[int] = None
    queue_id: Optional[int] = None
    created_at: float = 0.0
    edited: int = 0  # responses the annotator wrote (an edit preferred) among ``shown``

    @property
    def shown_count(self) -> int:
        """How many model responses the annotator compared: the mode of the decision. An edited
        response preferred over a pair adds a third candidate, but the decision was pairwise."""
        seen = len(self.shown) if self.shown is not None else sum(len(g) for g in self.ordering)
        return seen - self.edited

    @property
    def decisive_pair(self) -> bool:
        """Two candidates shown, one better (not tied, not "both bad")."""
        return (self.shown is not None and len(self.shown) == 2 and len(self.ordering) == 2
                and not self.all_bad)


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (``(nan, nan)`` for ``n == 0``)."""
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def pair_labels(ordering: Sequence[Sequence[int]], *, all_bad: bool = False) -> dict[tuple[int, int], str]:
    """``{(lo, hi): "lo" | "hi" | "tie"}`` for every pair of candidates the ranking orders."""
    rank = {c: i for i, g in enumerate(ordering) for c in g}
    out = {}
    for a, b in combinations(sorted(rank), 2):
        if all_bad or rank[a] == rank[b]:
            out[(a, b)] = "tie"
        else:
            out[(a, b)] = "lo" if rank[a] < rank[b] else "hi"
    return out


def cohen_kappa(labels_1: Sequence[str], labels_2: Sequence[str]) -> Optional[float]:
    """Cohen's kappa of two label sequences; ``None`` when chance agreement is 1 (undefined)."""
    n = len(labels_1)
    if n == 0 or n != len(labels_2):
        return None
    observed = sum(a == b for a, b in zip(labels_1, labels_2)) / n
    c1, c2 = Counter(labels_1), Counter(labels_2)
    expected = sum(c1[k] * c2[k] for k in set(c1) | set(c2)) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1 - expected)


# =========================================================================== measures


@dataclass(frozen=True)
class AnnotatorCounts:
    annotator: str
    rankings: int
    pairwise: int
    kwise: int
    ties: int
    all_bad: int
    repeats: int
    skips: int
    flags: dict[str, int] = field(default_factory=dict)
    prompts: int = 0


def annotator_counts(rows: Iterable[RankingRow], skips: Optional[dict[str, int]] = None) -> list[AnnotatorCounts]:
    """Per-annotator counts, by annotator name."""
    by: dict[str, list[RankingRow]] = defaultdict(list)
    for r in rows:
        by[r.annotator].append(r)
    skips = skips or {}
    out = []
    for name in sorted(set(by) | set(skips)):
        rs = by.get(name, [])
        flags: Counter = Counter(f for r in rs for f in r.flags)
        out.append(AnnotatorCounts(
            annotator=name, rankings=len(rs),
            pairwise=sum(r.shown_count == 2 for r in rs),
            kwise=sum(r.shown_count > 2 for r in rs),
            ties=sum(len(r.ordering) == 1 and not r.all_bad for r in rs),
            all_bad=sum(r.all_bad for r in rs), repeats=sum(r.repeat_of is not None for r in rs),
            skips=skips.get(name, 0), flags=dict(sorted(flags.items())),
            prompts=len({r.prompt_id for r in rs if r.repeat_of is None})))
    return out


@dataclass(frozen=True)
class Agreement:
    """Two annotators on the comparisons both labelled (``shared``) over ``items`` prompts."""
    a: str
    b: str
    items: int
    shared: int
    agree: Optional[float]
    kappa: Optional[float]


def _latest_labels(rows: Iterable[RankingRow]) -> dict[str, dict[tuple[int, int, int], str]]:
    """Per annotator: ``{(prompt, lo, hi): label}`` from the latest non-repeat ranking of each prompt."""
    latest: dict[tuple[str, int], RankingRow] = {}
    for r in sorted(rows, key=lambda r: r.id):
        if r.repeat_of is None:
            latest[(r.annotator, r.prompt_id)] = r
    out: dict[str, dict[tuple[int, int, int], str]] = defaultdict(dict)
    for (name, pid), r in latest.items():
        for (lo, hi), label in pair_labels(r.ordering, all_bad=r.all_bad).items():
            out[name][(pid, lo, hi)] = label
    return out


def agreement(rows: Iterable[RankingRow]) -> list[Agreement]:
    """Agreement for every pair of annotators that share at least one comparison."""
    labels = _latest_labels(rows)
    out = []
    for a, b in combinations(sorted(labels), 2):
        keys = sorted(set(labels[a]) & set(labels[b]))
        if not keys:
            continue
        la, lb = [labels[a][k] for k in keys], [labels[b][k] for k in keys]
        out.append(Agreement(a=a, b=b, items=len({k[0] for k in keys}), shared=len(keys),
                             agree=sum(x == y for x, y in zip(la, lb)) / len(keys),
                             kappa=cohen_kappa(la, lb)))
    return out


@dataclass(frozen=True)
class SelfConsistency:
    annotator: str
    repeats: int
    consistent: int
    same_side: int

    @property
    def rate(self) -> Optional[float]:
        return self.consistent / self.repeats if self.repeats else None


def self_consistency(rows: Iterable[RankingRow]) -> list[SelfConsistency]:
    """Per annotator: repeats judged, how many gave the same labels, how many picked the same side."""
    rows = list(rows)
    by_id = {r.id: r for r in rows}
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        orig = by_id.get(r.repeat_of) if r.repeat_of is not None else None
        if orig is None:
            continue
        a = pair_labels(orig.ordering, all_bad=orig.all_bad)
        b = pair_labels(r.ordering, all_bad=r.all_bad)
        keys = set(a) & set(b)
        if not keys:
            continue
        s = stats[r.annotator]
        s[0] += 1
        s[1] += all(a[k] == b[k] for k in keys)
        if orig.decisive_pair and r.decisive_pair and orig.shown != r.shown:
            s[2] += orig.shown.index(orig.ordering[0][0]) == r.shown.index(r.ordering[0][0])
    return [SelfConsistency(name, *stats[name]) for name in sorted(stats)]


@dataclass(frozen=True)
class PositionBias:
    """Pairwise decisions with a winner (``n``), how many the left response won, and the rate."""
    annotator: Optional[str]
    n: int
    left_wins: int
    low: float
    high: float

    @property
    def rate(self) -> Optional[float]:
        return self.left_wins / self.n if self.n else None


def position_bias(rows: Iterable[RankingRow], annotator: Optional[str] = None) -> PositionBias:
    """Left-wins rate with a Wilson 95% interval, for one annotator or (``None``) everyone."""
    n = left = 0
    for r in rows:
        if annotator is not None and r.annotator != annotator:
            continue
        if r.decisive_pair:
            n += 1
            left += r.ordering[0][0] == r.shown[0]
    lo, hi = wilson_interval(left, n)
    return PositionBias(annotator, n, left, lo, hi)


@dataclass(frozen=True)
class ComparisonResult:
    """A blind comparison of model B against model A.

    ``win_rate_b`` is B's share of the decisive comparisons, with the
    Wilson 95% interval ``[low, high]``; ``tie_rate`` is ties plus "both
    bad" over all ``n`` decisions; ``score_b`` counts a tie as half a win.
    """
    label_a: str
    label_b: str
    n: int
    a_wins: int
    b_wins: int
    ties: int
    both_bad: int
    win_rate_b: Optional[float]
    low: float
    high: float
    tie_rate: Optional[float]
    score_b: Optional[float]

    def describe(self) -> str:
        if not self.n:
            return "no decisions yet"
        if self.win_rate_b is None:
            return f"{self.n} decisions, all ties ({self.tie_rate:.0%})"
        return (f"{self.label_b} wins {self.win_rate_b:.0%} (95% CI {self.low:.0%}-{self.high:.0%}) of "
                f"{self.a_wins + self.b_wins} decisive comparisons against {self.label_a}; "
                f"ties {self.tie_rate:.0%} of {self.n}")


def blind_comparison(rows: Iterable[RankingRow], arm_of: dict[int, str], *, label_a: str = "A",
                     label_b: str = "B") -> ComparisonResult:
    """Tally decisions between the arms (``arm_of``: candidate id -> ``"a"``/``"b"``).

    Repeats are left out (they re-judge an item already counted); so are
    rankings that do not hold exactly one candidate of each arm.
    """
    a = b = ties = bad = 0
    for r in rows:
        ids = [c for g in r.ordering for c in g]
        if r.repeat_of is not None or len(ids) != 2 or sorted(arm_of.get(c, "?") for c in ids) != ["a", "b"]:
            continue
        if r.all_bad:
            bad += 1
        elif len(r.ordering) == 1:
            ties += 1
        elif arm_of[r.ordering[0][0]] == "a":
            a += 1
        else:
            b += 1
    n = a + b + ties + bad
    lo, hi = wilson_interval(b, a + b)
    return ComparisonResult(label_a=label_a, label_b=label_b, n=n, a_wins=a, b_wins=b, ties=ties, both_bad=bad,
                            win_rate_b=b / (a + b) if a + b else None, low=lo, high=hi,
                            tie_rate=(ties + bad) / n if n else None,
                            score_b=(b + 0.5 * (ties + bad)) / n if n else None)


# =========================================================================== from the workspace


def load_rankings(conn: sqlite3.Connection, *, queue_id: Optional[int] = None,
                  annotator: Optional[str] = None) -> list[RankingRow]:
    """Rankings as :class:`RankingRow`, oldest first (optionally one queue's or one annotator's)."""
    where, args = [], []
    if queue_id is not None:
        where.append("queue_id = ?")
        args.append(queue_id)
    if annotator is not None:
        where.append("annotator = ?")
        args.append(annotator)
    edited = ("(SELECT count(*) FROM json_each(rankings.shown) s JOIN candidates c ON c.id = s.value"
              " WHERE json_extract(c.params, '$.edited_by') IS NOT NULL)")  # see Queue.prefer_edited
    sql = ("SELECT id, prompt_id, annotator, ordering, all_bad, flags, shown, repeat_of, queue_id, created_at, "
           f"{edited} FROM rankings" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id")
    return [RankingRow(id=r[0], prompt_id=r[1], annotator=r[2],
                       ordering=tuple(tuple(g) for g in json.loads(r[3])), all_bad=bool(r[4]),
                       flags=tuple(json.loads(r[5] or "[]")),
                       shown=tuple(json.loads(r[6])) if r[6] else None, repeat_of=r[7], queue_id=r[8],
                       created_at=r[9], edited=r[10] or 0) for r in conn.execute(sql, args)]


def comparison_result(conn: sqlite3.Connection, queue_id: int) -> ComparisonResult:
    """The blind-comparison result of comparison queue ``queue_id``."""
    from ..store.queue import arm_sources, get_queue

    info = get_queue(conn, queue_id)
    if info.spec.compare is None:
        raise ValueError(f"queue #{queue_id} is not a blind comparison")
    arms = arm_sources(conn, info.spec.compare)
    rows = load_rankings(conn, queue_id=queue_id)
    cand_ids = sorted({c for r in rows for g in r.ordering for c in g})
    arm_of: dict[int, str] = {}
    for i in range(0, len(cand_ids), 500):
        chunk = cand_ids[i:i + 500]
        for cid, sid in conn.execute(f"SELECT id, source_id FROM candidates WHERE id IN ({','.join('?' * len(chunk))})",
                                     chunk):
            if sid in arms:
                arm_of[cid] = arms[sid]
    return blind_comparison(rows, arm_of, label_a=info.spec.compare.label_a, label_b=info.spec.compare.label_b)


@dataclass(frozen=True)
class QualityReport:
    counts: list[AnnotatorCounts]
    agreement: list[Agreement]
    consistency: list[SelfConsistency]
    position: list[PositionBias]  # everyone first, then per annotator
    comparisons: list[tuple[int, str, ComparisonResult]]  # (queue id, queue name, result)


def quality_report(conn: sqlite3.Connection) -> QualityReport:
    """Every measure over the whole workspace (and each comparison queue)."""
    rows = load_rankings(conn)
    skips = dict(conn.execute("SELECT q.annotator, count(*) FROM queue_skips s JOIN queues q ON q.id = s.queue_id"
                              " GROUP BY q.annotator").fetchall())
    names = sorted({r.annotator for r in rows})
    comparisons = [(qid, name, comparison_result(conn, qid)) for qid, name in conn.execute(
        "SELECT id, name FROM queues WHERE compare IS NOT NULL ORDER BY id")]
    return QualityReport(counts=annotator_counts(rows, skips), agreement=agreement(rows),
                         consistency=self_consistency(rows),
                         position=[position_bias(rows)] + [position_bias(rows, n) for n in names],
                         comparisons=comparisons)
