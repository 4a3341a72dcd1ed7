"""The ranking queue: which item an annotator sees next, and every decision committed before the next.

A queue is a saved set-up (:class:`QueueSpec`, a ``queues`` row): a prompt
source (every prompt, the prompts of a dataset, or a tag), the mode
(``pairwise``: two candidates; ``kwise``: up to ``k``), the annotator, a
seed, how often an earlier item comes back with positions swapped
(self-consistency), and for a blind comparison the two arms (the candidates
of model A and of model B).

Its state is nothing but the rankings and skips in the workspace, so a
restarted app resumes exactly where the annotator left off. The order:

1. **fresh** prompts: nobody has ranked them yet, by prompt id;
2. **shared** prompts: ranked by someone else, not by this annotator (these
   measure agreement between annotators), by prompt id;
3. **skipped** prompts, in the order they were skipped;

with, when ``repeat_every`` is set, every ``repeat_every``-th decision
followed by a **repeat**: the oldest not-yet-repeated ranking of this
annotator in this queue, shown again with its positions reversed.

"Done" means: this annotator ranked the prompt (in a comparison queue: in
this queue). An item needs two or more candidates (a comparison: one of each
arm), so prompts whose candidates are still being generated join the queue
when they arrive. Which candidates are shown, and in which order, is drawn
from a random generator seeded by (queue seed, annotator, prompt): the same
item always shows the same way, and the order actually shown is stored with
the decision (``rankings.shown``) to measure position bias.

:class:`RankingQueue` walks the order with one cursor per tier (so the next
item costs a few index lookups even with 100,000 queued prompts) and keeps
a few items prefetched. Each decision is its own committed transaction
(``synchronous=FULL``) before the queue moves on.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Optional, Sequence

from ..errors import NotFoundError, WorkbenchError
from . import annotations as A
from .db import write_transaction
from .records import Candidate, Text, decode_text

MODES = ("pairwise", "kwise")
SOURCE_KINDS = ("all", "dataset", "tag")
FLAGS = ("unsafe", "off-topic", "factual-error")
#: Decisions this recent are never picked for a repeat (the annotator would remember them).
REPEAT_GAP = 3
#: Decisions the rate is measured over, and the pause that starts a new sitting.
RATE_WINDOW = 30
RATE_BREAK_S = 300.0
#: A rate over less time than this would be noise.
RATE_MIN_SPAN_S = 10.0


# =========================================================================== set-up


@dataclass(frozen=True)
class PromptSource:
    """Which prompts a queue draws from: ``all``, the prompts of ``dataset`` ``name``
    (prompts generated from its records or imported with it), or those tagged ``name``."""

    kind: str = "all"
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise WorkbenchError(f"prompt source {self.kind!r}: expected one of {', '.join(SOURCE_KINDS)}")
        if self.kind != "all" and not self.name.strip():
            raise WorkbenchError(f"prompt source {self.kind!r} needs a name")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name}

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "PromptSource":
        d = d or {}
        return cls(kind=d.get("kind", "all"), name=d.get("name", ""))

    def describe(self) -> str:
        return {"all": "all prompts", "dataset": f"dataset {self.name}", "tag": f"tag {self.name}"}[self.kind]


@dataclass(frozen=True)
class CompareArms:
    """The two sides of a blind comparison.

    ``run_id`` names a generation run whose candidates carry their arm
    (``"a"`` or ``"b"``) in their source; ``a_sources``/``b_sources`` add
    source ids explicitly. ``label_a``/``label_b`` (the models) stay hidden
    until a decision is revealed.
    """

    run_id: Optional[str] = None
    a_sources: tuple[int, ...] = ()
    b_sources: tuple[int, ...] = ()
    label_a: str = "A"
    label_b: str = "B"

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "a_sources": list(self.a_sources), "b_sources": list(self.b_sources),
                "label_a": self.label_a, "label_b": self.label_b}

    @classmethod
    def from_dict(cls, d: dict) -> "CompareArms":
        return cls(run_id=d.get("run_id"), a_sources=tuple(int(x) for x in d.get("a_sources", ())),
                   b_sources=tuple(int(x) for x in d.get("b_sources", ())),
                   label_a=d.get("label_a", "A"), label_b=d.get("label_b", "B"))


@dataclass(frozen=True)
class QueueSpec:
    """A queue set-up; see the module docstring."""

    annotator: str
    mode: str = "pairwise"
    source: PromptSource = field(default_factory=PromptSource)
    k: int = 4
    seed: int = 0
    repeat_every: int = 20
    compare: Optional[CompareArms] = None
    name: str = ""

    def validated(self) -> "QueueSpec":
        annotator = self.annotator.strip()
        if not annotator:
            raise WorkbenchError("annotator name is empty")
        if self.mode not in MODES:
            raise WorkbenchError(f"mode {self.mode!r}: expected pairwise or kwise")
        if not 2 <= int(self.k) <= 4:
            raise WorkbenchError(f"k={self.k}: a k-wise item shows 2 to 4 candidates")
        if int(self.repeat_every) < 0:
            raise WorkbenchError("repeat_every must be 0 (no repeats) or a positive number of decisions")
        if self.compare is not None and self.mode != "pairwise":
            raise WorkbenchError("a blind comparison is pairwise: one response of each model")
        name = self.name.strip() or self.default_name(annotator)
        return replace(self, annotator=annotator, name=name, k=int(self.k), repeat_every=int(self.repeat_every))

    def default_name(self, annotator: str) -> str:
        what = "compare" if self.compare else self.mode
        return f"{self.source.describe()} · {what} · {annotator}"


@dataclass(frozen=True)
class QueueInfo:
    id: int
    spec: QueueSpec
    created_at: float
    last_used: float = 0.0


def create_queue(conn: sqlite3.Connection, spec: QueueSpec) -> int:
    """Save a queue set-up and return its id (run inside a write transaction)."""
    spec = spec.validated()
    if spec.source.kind == "dataset" and not conn.execute(
            "SELECT 1 FROM datasets WHERE name = ?", (spec.source.name,)).fetchone():
        raise NotFoundError(f"no dataset named {spec.source.name!r}")
    return conn.execute(
        "INSERT INTO queues(name, annotator, mode, k, source, seed, repeat_every, compare, created_at)"
        " VALUES (?,?,?,?,?,?,?,?,?)",
        (spec.name, spec.annotator, spec.mode, spec.k, json.dumps(spec.source.to_dict()), spec.seed,
         spec.repeat_every, json.dumps(spec.compare.to_dict()) if spec.compare else None,
         time.time())).lastrowid


_Q_COLS = "id, name, annotator, mode, k, source, seed, repeat_every, compare, created_at"


def _queue_info(row, last_used: float = 0.0) -> QueueInfo:
    spec = QueueSpec(annotator=row[2], mode=row[3], k=row[4], source=PromptSource.from_dict(json.loads(row[5])),
                     seed=row[6], repeat_every=row[7],
                     compare=CompareArms.from_dict(json.loads(row[8])) if row[8] else None, name=row[1])
    return QueueInfo(id=row[0], spec=spec, created_at=row[9], last_used=max(row[9], last_used or 0.0))


def get_queue(conn: sqlite3.Connection, queue_id: int) -> QueueInfo:
    row = conn.execute(f"SELECT {_Q_COLS} FROM queues WHERE id = ?", (queue_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no ranking queue #{queue_id}")
    return _queue_info(row)


def list_queues(conn: sqlite3.Connection) -> list[QueueInfo]:
    """Every queue, most recently used first (last decision or skip, else creation)."""
    rows = conn.execute(
        f"SELECT {', '.join('q.' + c.strip() for c in _Q_COLS.split(','))},"
        " max(coalesce((SELECT max(created_at) FROM rankings r WHERE r.queue_id = q.id), 0),"
        "     coalesce((SELECT max(created_at) FROM queue_skips s WHERE s.queue_id = q.id), 0))"
        " FROM queues q").fetchall()
    infos = [_queue_info(r[:10], r[10]) for r in rows]
    return sorted(infos, key=lambda q: (q.last_used, q.id), reverse=True)


def generation_arms(conn: sqlite3.Connection, run_id: str) -> dict[str, list[int]]:
    """``{"a": [source ids], "b": [...]}`` of the candidates a generation run wrote, by arm."""
    out: dict[str, list[int]] = {}
    for sid, arm in conn.execute(
            "SELECT id, json_extract(detail, '$.arm') FROM sources WHERE kind = 'generation'"
            " AND json_extract(detail, '$.run_id') = ? ORDER BY id", (run_id,)):
        out.setdefault(str(arm), []).append(sid)
    return out


def arm_sources(conn: sqlite3.Connection, arms: CompareArms) -> dict[int, str]:
    """``{source id: "a" | "b"}`` of a blind comparison's two sides."""
    out = {sid: "a" for sid in arms.a_sources}
    out.update({sid: "b" for sid in arms.b_sources})
    if arms.run_id:
        for arm, sids in generation_arms(conn, arms.run_id).items():
            if arm in ("a", "b"):
                out.update({sid: arm for sid in sids})
    return out


# =========================================================================== items and decisions


@dataclass(frozen=True)
class QueueItem:
    """One thing to decide: a prompt and its candidates in display order (left to right).

    ``tier`` is ``fresh``, ``shared``, ``skipped`` or ``repeat``; a repeat
    names the ranking it repeats. ``arms`` gives each candidate's side in a
    blind comparison (``"a"``/``"b"``), else ``None``s.
    """

    prompt_id: int
    prompt: Text
    candidates: tuple[Candidate, ...]
    tier: str = "fresh"
    repeat_of: Optional[int] = None
    arms: tuple[Optional[str], ...] = ()

    @property
    def shown(self) -> tuple[int, ...]:
        return tuple(c.id for c in self.candidates)


@dataclass
class Decision:
    """What was done to an item, enough to undo and redo it.

    ``kind`` is ``"ranking"`` or ``"skip"``. ``edited`` holds ``(response,
    parent candidate id)`` for a decision that added an edited response as
    the preferred candidate; ``candidate_id`` is that new candidate.
    """

    kind: str
    item: QueueItem
    ordering: tuple[tuple[int, ...], ...] = ()
    all_bad: bool = False
    note: str = ""
    flags: tuple[str, ...] = ()
    edited: Optional[tuple[Text, int]] = None
    ranking_id: Optional[int] = None
    candidate_id: Optional[int] = None

    def describe(self, labels: Optional[Sequence[str]] = None) -> str:
        """A short label for the undo stack and the last-decision bar; ``labels`` name the shown
        candidates left to right (default A, B, C, D)."""
        if self.kind == "skip":
            return "skipped"
        names = list(labels) if labels else [chr(ord("A") + i) for i in range(len(self.item.candidates))]
        letters = {c.id: names[i] for i, c in enumerate(self.item.candidates)}
        if self.edited is not None:
            return "edited response preferred"
        if self.all_bad:
            return "both bad" if len(self.item.candidates) == 2 else "all bad"
        if len(self.ordering) == 1:
            return "tie"
        if len(self.item.candidates) == 2:
            return f"{letters.get(self.ordering[0][0], '?')} preferred"
        return " > ".join("=".join(letters.get(c, "?") for c in g) for g in self.ordering)


@dataclass(frozen=True)
class QueueProgress:
    """``done`` prompts this annotator ranked in the queue's scope, ``remaining`` (skipped
    included), ``skipped``, ``repeats`` made, and the current rate in decisions per hour
    (``None`` until there are a few)."""

    done: int
    remaining: int
    skipped: int
    repeats: int
    rate_per_hour: Optional[float]

    @property
    def total(self) -> int:
        return self.done + self.remaining


# =========================================================================== the queue


class RankingQueue:
    """Walks one queue for its annotator on ``conn`` (the thread's own connection).

    :attr:`current` is the item on screen (``None`` when nothing is left).
    :meth:`decide`, :meth:`skip` and :meth:`undo` each commit one
    transaction and then move on; :meth:`top_up` refills the prefetch buffer
    and is meant for idle time (after the new item is painted).
    """

    def __init__(self, conn: sqlite3.Connection, queue_id: int, *, prefetch: int = 3):
        self.conn = conn
        self.info = get_queue(conn, queue_id)
        self.id = queue_id
        self.spec = self.info.spec
        self.prefetch = max(1, int(prefetch))
        self._arms: dict[int, str] = {}
        self._dataset_id: Optional[int] = None
        if self.spec.source.kind == "dataset":
            row = conn.execute("SELECT id FROM datasets WHERE name = ?", (self.spec.source.name,)).fetchone()
            self._dataset_id = row[0] if row else -1  # a deleted dataset: an empty queue, not a crash
        self.refresh_arms()
        self._buffer: deque[QueueItem] = deque()
        self._cursor = {"fresh": 0, "shared": 0}
        self._skip_cursor: tuple[float, int] = (0.0, 0)
        self.current: Optional[QueueItem] = None
        self._originals, self._repeats = self._count_decisions()
        self._times: deque[float] = deque(
            t for (t,) in reversed(conn.execute(
                "SELECT created_at FROM rankings WHERE queue_id = ? AND annotator = ? ORDER BY id DESC LIMIT ?",
                (self.id, self.spec.annotator, RATE_WINDOW)).fetchall()))
        self._times = deque(self._times, maxlen=RATE_WINDOW)
        self._counts: Optional[tuple[int, int, int]] = None  # (done, remaining, skipped) as last counted
        self.current = self._next()

    # -- set-up ----------------------------------------------------------------------------
    @property
    def is_comparison(self) -> bool:
        return self.spec.compare is not None

    def refresh_arms(self) -> None:
        """Re-read which sources are arm A and arm B (a generation run adds them as it starts)."""
        if self.spec.compare is not None:
            self._arms = arm_sources(self.conn, self.spec.compare)

    def _arm_ids(self, arm: str) -> list[int]:
        return [sid for sid, a in self._arms.items() if a == arm] or [-1]

    # -- SQL pieces ------------------------------------------------------------------------
    def _eligible_sql(self) -> tuple[str, list]:
        """Conditions on ``p`` (a prompt row): in the source, with enough candidates."""
        sql, args = [], []
        src = self.spec.source
        if src.kind == "dataset":
            sql.append("(EXISTS (SELECT 1 FROM records rr WHERE rr.id = p.record_id AND rr.dataset_id = ?)"
                       " OR EXISTS (SELECT 1 FROM records rs WHERE rs.dataset_id = ? AND rs.source_id = p.source_id"
                       " AND p.source_id IS NOT NULL))")
            args += [self._dataset_id, self._dataset_id]
        elif src.kind == "tag":
            sql.append("EXISTS (SELECT 1 FROM json_each(p.tags) t WHERE t.value = ?)")
            args.append(src.name)
        if self.is_comparison:
            for arm in ("a", "b"):
                ids = self._arm_ids(arm)
                sql.append(f"EXISTS (SELECT 1 FROM candidates c WHERE c.source_id IN ({','.join('?' * len(ids))})"
                           " AND c.prompt_id = p.id)")
                args += ids
        else:
            sql.append("EXISTS (SELECT 1 FROM candidates c WHERE c.prompt_id = p.id LIMIT 1 OFFSET 1)")
        return " AND ".join(sql), args

    def _scope_sql(self) -> tuple[str, list]:
        """Restriction on ``r`` (a ranking row) to this queue's scope: a comparison counts its own
        decisions; a k-wise queue counts k-wise rankings only (a prompt decided pairwise elsewhere is
        still to rank k-wise: a new k-wise queue started at "10 done"); a pairwise queue counts any."""
        if self.is_comparison:
            return "AND r.queue_id = ?", [self.id]
        if self.spec.mode == "kwise":
            return "AND r.queue_id IN (SELECT q.id FROM queues q WHERE q.mode = 'kwise')", []
        return "", []

    def _not_done_sql(self) -> tuple[str, list]:
        scope, sargs = self._scope_sql()
        return (f"NOT EXISTS (SELECT 1 FROM rankings r WHERE r.prompt_id = p.id AND r.annotator = ? "
                f"AND r.repeat_of IS NULL {scope})", [self.spec.annotator, *sargs])

    def _scan(self, tier: str, after: int, limit: int) -> list[int]:
        """Prompt ids of ``tier`` with id >= ``after``, in id order."""
        elig, eargs = self._eligible_sql()
        nd, nargs = self._not_done_sql()
        scope, sargs = self._scope_sql()
        others = f"EXISTS (SELECT 1 FROM rankings r WHERE r.prompt_id = p.id {scope})"
        cond = f"NOT {others}" if tier == "fresh" else others
        rows = self.conn.execute(
            f"SELECT p.id FROM prompts p WHERE p.id >= ? AND {nd} AND {cond} AND {elig}"
            " AND NOT EXISTS (SELECT 1 FROM queue_skips s WHERE s.queue_id = ? AND s.prompt_id = p.id)"
            " ORDER BY p.id LIMIT ?",
            [after, *nargs, *sargs, *eargs, self.id, limit]).fetchall()
        return [r[0] for r in rows]

    def _scan_skipped(self, after: tuple[float, int], limit: int) -> list[tuple[float, int]]:
        elig, eargs = self._eligible_sql()
        nd, nargs = self._not_done_sql()
        rows = self.conn.execute(
            f"SELECT s.created_at, s.prompt_id FROM queue_skips s JOIN prompts p ON p.id = s.prompt_id"
            f" WHERE s.queue_id = ? AND (s.created_at > ? OR (s.created_at = ? AND s.prompt_id >= ?))"
            f" AND {nd} AND {elig} ORDER BY s.created_at, s.prompt_id LIMIT ?",
            [self.id, after[0], after[0], after[1], *nargs, *eargs, limit]).fetchall()
        return [(r[0], r[1]) for r in rows]

    # -- building items --------------------------------------------------------------------
    def _candidates(self, prompt_id: int) -> tuple[Any, list[tuple[Candidate, Optional[int]]]]:
        row = self.conn.execute("SELECT prompt, style FROM prompts WHERE id = ?", (prompt_id,)).fetchone()
        if row is None:
            return None, []
        style = row[1]
        cands = [(Candidate(id=r[0], prompt_id=prompt_id, response=decode_text(r[1], style), model=r[2],
                            checkpoint=r[3], params=json.loads(r[4]), parent_id=r[5], created_at=r[6]), r[7])
                 for r in self.conn.execute(
                     "SELECT id, response, model, checkpoint, params, parent_id, created_at, source_id"
                     " FROM candidates WHERE prompt_id = ? ORDER BY id", (prompt_id,))]
        return decode_text(row[0], style), cands

    def _rng(self, prompt_id: int) -> random.Random:
        # A str seed is hashed with SHA-512: the same on every run and platform.
        return random.Random(f"{self.spec.seed}:{self.spec.annotator}:{prompt_id}")

    def build_item(self, prompt_id: int, tier: str = "fresh") -> Optional[QueueItem]:
        """The item for ``prompt_id`` as this queue shows it (``None`` if it has too few candidates)."""
        prompt, cands = self._candidates(prompt_id)
        rng = self._rng(prompt_id)
        if self.is_comparison:
            side = {arm: [c for c, sid in cands if self._arms.get(sid) == arm] for arm in ("a", "b")}
            if not side["a"] or not side["b"]:
                return None
            picked = [(rng.choice(side["a"]), "a"), (rng.choice(side["b"]), "b")]
            rng.shuffle(picked)
            return QueueItem(prompt_id, prompt, tuple(c for c, _ in picked), tier,
                             arms=tuple(a for _, a in picked))
        if len(cands) < 2:
            return None
        n = 2 if self.spec.mode == "pairwise" else min(self.spec.k, len(cands))
        picked = rng.sample([c for c, _ in cands], n)
        return QueueItem(prompt_id, prompt, tuple(picked), tier, arms=(None,) * n)

    def _repeat_item(self) -> Optional[QueueItem]:
        """A repeat, when one is due: the oldest unrepeated ranking, positions reversed."""
        every = self.spec.repeat_every
        if not every or self._originals < (self._repeats + 1) * every:
            return None
        recent = [r for (r,) in self.conn.execute(
            "SELECT id FROM rankings WHERE queue_id = ? AND annotator = ? ORDER BY id DESC LIMIT ?",
            (self.id, self.spec.annotator, REPEAT_GAP))]
        row = self.conn.execute(
            "SELECT r.id, r.prompt_id, r.shown FROM rankings r WHERE r.queue_id = ? AND r.annotator = ?"
            " AND r.repeat_of IS NULL AND r.shown IS NOT NULL AND r.id < ?"
            " AND NOT EXISTS (SELECT 1 FROM rankings x WHERE x.repeat_of = r.id) ORDER BY r.id LIMIT 1",
            (self.id, self.spec.annotator, min(recent) if len(recent) >= REPEAT_GAP else -1)).fetchone()
        if row is None:
            return None
        ranking_id, prompt_id, shown = row
        prompt, cands = self._candidates(prompt_id)
        by_id = {c.id: (c, sid) for c, sid in cands}
        order = [by_id[c] for c in reversed(json.loads(shown)) if c in by_id]
        if len(order) < 2:
            return None
        return QueueItem(prompt_id, prompt, tuple(c for c, _ in order), "repeat", repeat_of=ranking_id,
                         arms=tuple(self._arms.get(sid) for _, sid in order))

    def _fetch(self, need: int, exclude: set[int]) -> list[QueueItem]:
        """Up to ``need`` next regular items after the cursors, skipping ``exclude``."""
        out: list[QueueItem] = []
        for tier in ("fresh", "shared"):
            while len(out) < need:
                ids = self._scan(tier, self._cursor[tier], need - len(out) + len(exclude) + 1)
                if not ids:
                    break
                progressed = False
                for pid in ids:
                    if pid in exclude:
                        continue
                    item = self.build_item(pid, tier)
                    self._cursor[tier] = pid + 1
                    progressed = True
                    if item is not None:
                        out.append(item)
                        exclude.add(pid)
                    if len(out) >= need:
                        break
                if not progressed:
                    break
        while len(out) < need:
            rows = self._scan_skipped(self._skip_cursor, need - len(out) + len(exclude) + 1)
            progressed = False
            for created, pid in rows:
                if pid in exclude:
                    continue
                self._skip_cursor = (created, pid + 1)
                progressed = True
                item = self.build_item(pid, "skipped")
                if item is not None:
                    out.append(item)
                    exclude.add(pid)
                if len(out) >= need:
                    break
            if not progressed:
                break
        return out

    def _in_flight(self) -> set[int]:
        ids = {it.prompt_id for it in self._buffer}
        if self.current is not None and self.current.tier != "repeat":
            ids.add(self.current.prompt_id)
        return ids

    def _next(self, *, allow_repeat: bool = True) -> Optional[QueueItem]:
        """The item to show next (call with :attr:`current` already cleared)."""
        repeat = self._repeat_item() if allow_repeat else None
        if repeat is not None:
            return repeat
        if not self._buffer:
            self._buffer.extend(self._fetch(1, self._in_flight()))
        return self._buffer.popleft() if self._buffer else None

    def top_up(self) -> int:
        """Prefetch items up to the buffer size; returns how many were added."""
        missing = self.prefetch - len(self._buffer)
        if missing <= 0:
            return 0
        got = self._fetch(missing, self._in_flight())
        self._buffer.extend(got)
        return len(got)

    def restart_scan(self) -> None:
        """Forget the cursors and the buffer: prompts whose candidates arrived behind the cursors
        (a generation adding to older prompts) are found again. The current item stays."""
        self.refresh_arms()
        self._buffer.clear()
        self._cursor = {"fresh": 0, "shared": 0}
        self._skip_cursor = (0.0, 0)
        if self.current is None:
            self.current = self._next()

    def upcoming(self, n: int) -> list[int]:
        """Prompt ids of the current item and the next ``n - 1`` regular ones (prefetching them)."""
        if self.current is None:
            return []
        missing = n - 1 - len(self._buffer)
        if missing > 0:
            self._buffer.extend(self._fetch(missing, self._in_flight()))
        return [self.current.prompt_id] + [it.prompt_id for it in list(self._buffer)[:n - 1]]

    # -- decisions -------------------------------------------------------------------------
    def _commit(self, decision: Decision) -> None:
        item = decision.item
        with write_transaction(self.conn, what="the ranking"):
            if decision.kind == "skip":
                self.conn.execute("INSERT OR REPLACE INTO queue_skips(queue_id, prompt_id, created_at)"
                                  " VALUES (?,?,?)", (self.id, item.prompt_id, time.time()))
                return
            ordering = decision.ordering
            shown = list(item.shown)
            if decision.edited is not None:
                response, parent = decision.edited
                # Written by a person: no model; the lineage is the response it was edited from.
                decision.candidate_id = A.add_candidate(
                    self.conn, item.prompt_id, response, params={"edited_by": self.spec.annotator},
                    parent_id=parent)
                ordering = ((decision.candidate_id,), tuple(shown))
                shown.append(decision.candidate_id)
            decision.ranking_id = A.record_ranking(
                self.conn, item.prompt_id, self.spec.annotator, ordering, all_bad=decision.all_bad,
                note=decision.note, flags=decision.flags, queue_id=self.id, shown=shown,
                repeat_of=item.repeat_of)

    def _apply(self, decision: Decision) -> Decision:
        self._commit(decision)
        if decision.kind == "ranking":
            if decision.item.repeat_of is not None:
                self._repeats += 1
            else:
                self._originals += 1
            self._times.append(time.time())
        self._adjust_counts(decision, +1)
        if self._is_current(decision.item):
            # Cleared first: a skipped item may come straight back when nothing else is left.
            self.current = None
            self.current = self._next()
        return decision

    def _is_current(self, item: QueueItem) -> bool:
        cur = self.current
        return cur is not None and cur.prompt_id == item.prompt_id and cur.repeat_of == item.repeat_of

    def decide(self, ordering: Sequence[Sequence[int]], *, all_bad: bool = False, note: str = "",
               flags: Iterable[str] = ()) -> Decision:
        """Rank the current item (``ordering``: tie groups of candidate ids, best first);
        committed before the queue moves on. Returns the :class:`Decision`."""
        if self.current is None:
            raise WorkbenchError("nothing to rank: the queue is empty")
        flags = tuple(sorted(set(flags)))
        unknown = [f for f in flags if f not in FLAGS]
        if unknown:
            raise WorkbenchError(f"unknown flags {unknown}: expected {', '.join(FLAGS)}")
        groups = tuple(tuple(int(c) for c in g) for g in ordering if len(g))
        ranked = sorted(c for g in groups for c in g)
        if ranked != sorted(self.current.shown):
            raise WorkbenchError("a decision must order every candidate shown, each once")
        return self._apply(Decision("ranking", self.current, groups, bool(all_bad), note.strip(), flags))

    def choose(self, position: int, **kwargs) -> Decision:
        """Pairwise: the candidate at ``position`` (0 = left) is better."""
        shown = self.current.shown if self.current else ()
        if len(shown) != 2 or position not in (0, 1):
            raise WorkbenchError("choose() needs a pairwise item and position 0 or 1")
        return self.decide([[shown[position]], [shown[1 - position]]], **kwargs)

    def tie(self, *, all_bad: bool = False, **kwargs) -> Decision:
        """All shown candidates equally good (or, with ``all_bad``, all bad)."""
        if self.current is None:
            raise WorkbenchError("nothing to rank: the queue is empty")
        return self.decide([list(self.current.shown)], all_bad=all_bad, **kwargs)

    def prefer_edited(self, response: Text, parent_id: int, *, note: str = "",
                      flags: Iterable[str] = ()) -> Decision:
        """Store ``response`` (an edit of candidate ``parent_id``) as a new candidate ranked above
        every shown one, as this item's decision."""
        if self.current is None:
            raise WorkbenchError("nothing to rank: the queue is empty")
        if parent_id not in self.current.shown:
            raise WorkbenchError(f"candidate #{parent_id} is not on screen")
        if isinstance(response, str) and not response.strip():
            raise WorkbenchError("the edited response is empty")
        return self._apply(Decision("ranking", self.current, (), False, note.strip(),
                                    tuple(sorted(set(flags))), edited=(response, parent_id)))

    def skip(self) -> Decision:
        """Put the current item at the back of the queue (remembered across restarts)."""
        if self.current is None:
            raise WorkbenchError("nothing to skip: the queue is empty")
        if self.current.tier == "repeat":
            # A repeat is not an item of its own: nothing is stored, it comes back after the next decision.
            decision = Decision("skip", self.current)
            self.current = None
            self.current = self._next(allow_repeat=False)
            return decision
        return self._apply(Decision("skip", self.current))

    def undo(self, decision: Decision) -> None:
        """Reverse ``decision`` in the workspace (one transaction) and show its item again."""
        if decision.kind == "skip" and decision.item.tier == "repeat":
            pass  # nothing was stored
        else:
            with write_transaction(self.conn, what="the ranking"):
                if decision.kind == "skip":
                    self.conn.execute("DELETE FROM queue_skips WHERE queue_id = ? AND prompt_id = ?",
                                      (self.id, decision.item.prompt_id))
                else:
                    if decision.ranking_id is None:
                        raise WorkbenchError("this decision was never stored")
                    used = self.conn.execute("SELECT count(*) FROM records WHERE ranking_id = ?",
                                             (decision.ranking_id,)).fetchone()[0]
                    if used:
                        raise WorkbenchError(f"ranking #{decision.ranking_id} is already in an exported dataset "
                                             f"({used} pairs); delete those pairs first")
                    # (a self-consistency repeat of it keeps its row: repeat_of is ON DELETE SET NULL)
                    A.delete_ranking(self.conn, decision.ranking_id)
                    if decision.candidate_id is not None:
                        self.conn.execute("DELETE FROM candidates WHERE id = ?", (decision.candidate_id,))
            if decision.kind == "ranking":
                if decision.item.repeat_of is not None:
                    self._repeats -= 1
                else:
                    self._originals -= 1
                if self._times:
                    self._times.pop()
            self._adjust_counts(decision, -1)
        decision.ranking_id = decision.candidate_id = None
        # The item comes back in front; whatever was on screen waits right behind it.
        if self.current is not None and self.current.tier != "repeat" and not self._is_current(decision.item):
            self._buffer.appendleft(self.current)
        tier = decision.item.tier
        if tier in self._cursor:
            self._cursor[tier] = min(self._cursor[tier], decision.item.prompt_id)
        self.current = decision.item

    def redo(self, decision: Decision) -> Decision:
        """Apply an undone decision again (to its own item)."""
        fresh = Decision(decision.kind, decision.item, decision.ordering, decision.all_bad, decision.note,
                         decision.flags, decision.edited)
        if decision.kind == "skip" and decision.item.tier == "repeat":
            if self._is_current(decision.item):
                self.current = None
                self.current = self._next(allow_repeat=False)
            return decision
        self._apply(fresh)
        decision.ranking_id, decision.candidate_id = fresh.ranking_id, fresh.candidate_id
        return decision

    # -- progress --------------------------------------------------------------------------
    def _count_decisions(self) -> tuple[int, int]:
        row = self.conn.execute(
            "SELECT sum(repeat_of IS NULL), sum(repeat_of IS NOT NULL) FROM rankings"
            " WHERE queue_id = ? AND annotator = ?", (self.id, self.spec.annotator)).fetchone()
        return int(row[0] or 0), int(row[1] or 0)

    def count(self, conn: Optional[sqlite3.Connection] = None) -> tuple[int, int, int]:
        """``(done, remaining, skipped)`` counted in SQL (tens of ms at 100,000 prompts: call it
        off the GUI thread with a connection of that thread, then :meth:`set_counts`)."""
        conn = conn or self.conn
        elig, eargs = self._eligible_sql()
        scope, sargs = self._scope_sql()
        done_sql = (f"EXISTS (SELECT 1 FROM rankings r WHERE r.prompt_id = p.id AND r.annotator = ? "
                    f"AND r.repeat_of IS NULL {scope})")
        row = conn.execute(
            f"SELECT sum({done_sql}), sum(NOT {done_sql}),"
            " sum(NOT " + done_sql + " AND EXISTS (SELECT 1 FROM queue_skips s WHERE s.queue_id = ?"
            " AND s.prompt_id = p.id))"
            f" FROM prompts p WHERE {elig}",
            [self.spec.annotator, *sargs, self.spec.annotator, *sargs, self.spec.annotator, *sargs, self.id,
             *eargs]).fetchone()
        return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)

    def set_counts(self, counts: tuple[int, int, int]) -> None:
        self._counts = tuple(counts)

    def _adjust_counts(self, decision: Decision, sign: int) -> None:
        if self._counts is None or decision.item.tier == "repeat":
            return
        done, remaining, skipped = self._counts
        if decision.kind == "skip":
            if decision.item.tier == "skipped":
                return  # skipped again: still one skipped item
            skipped += sign
        else:
            done += sign
            remaining -= sign
            if decision.item.tier == "skipped":
                skipped -= sign
        self._counts = (done, max(0, remaining), max(0, skipped))

    def rate_per_hour(self) -> Optional[float]:
        """Decisions per hour over the recent ones of the current sitting (a pause of
        five minutes or more starts a new sitting)."""
        times = list(self._times)
        start = 0
        for i in range(1, len(times)):
            if times[i] - times[i - 1] > RATE_BREAK_S:
                start = i
        times = times[start:]
        if len(times) < 3 or times[-1] - times[0] < RATE_MIN_SPAN_S:
            return None
        return (len(times) - 1) / (times[-1] - times[0]) * 3600.0

    def progress(self) -> QueueProgress:
        """Progress from the last count plus the decisions made since."""
        if self._counts is None:
            self._counts = self.count()
        done, remaining, skipped = self._counts
        return QueueProgress(done=done, remaining=remaining, skipped=skipped, repeats=self._repeats,
                             rate_per_hour=self.rate_per_hour())
