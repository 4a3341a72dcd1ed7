"""Dataset operations: dedup, seeded train/validation split, statistics."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..errors import WorkbenchError
from ..progress import CancelToken, ProgressFn, check, no_progress
from ..store import datasets as ds_repo
from ..store.records import Record, dumps_canonical
from ..store.workspace import Workspace

DEDUP_MODES = ("exact", "normalized")
_WS = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Whitespace collapsed and case folded: the key of ``normalized`` dedup."""
    return _WS.sub(" ", text).strip().casefold()


def _normalized(value: Any) -> Any:
    if isinstance(value, str):
        return normalize_text(value)
    if isinstance(value, list):
        return [{k: normalize_text(v) if k == "content" and isinstance(v, str) else v for k, v in m.items()}
                for m in value]
    return value


def record_key(rec: Record, mode: str) -> bytes:
    """A 16-byte digest identifying the record's content under ``mode``."""
    content = rec.content()
    if mode == "normalized":
        content = {k: _normalized(v) for k, v in content.items()}
    return hashlib.blake2b(dumps_canonical(content).encode("utf-8"), digest_size=16).digest()


def prompt_key(prompt: Any) -> bytes:
    """Identifies a prompt for splitting: the same prompt up to whitespace and case."""
    return hashlib.blake2b(dumps_canonical(_normalized(prompt)).encode("utf-8"), digest_size=16).digest()


@dataclass
class DedupReport:
    dataset: str
    mode: str
    rows_before: int
    removed: int
    removed_ids: list[int] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("removed_ids")
        return d


def find_duplicates(ws: Workspace, name: str, mode: str = "exact", *, conn=None,
                    cancel: Optional[CancelToken] = None) -> tuple[int, list[int]]:
    """``(rows scanned, ids of later duplicates)``; the first occurrence is kept."""
    if mode not in DEDUP_MODES:
        raise WorkbenchError(f"dedup mode {mode!r}: expected one of {', '.join(DEDUP_MODES)}")
    conn = conn or ws.conn
    info = ds_repo.get_dataset(conn, name)
    seen: set[bytes] = set()
    dupes: list[int] = []
    n = 0
    for rec in ds_repo.iter_records(conn, info):
        n += 1
        if n % 10000 == 0:
            check(cancel)
        key = record_key(rec, mode)
        if key in seen:
            dupes.append(rec.id)
        else:
            seen.add(key)
    return n, dupes


def dedup(ws: Workspace, name: str, mode: str = "exact", *, cancel: Optional[CancelToken] = None) -> DedupReport:
    """Soft-delete later duplicates (restorable; snapshots are unaffected)."""
    with ws.transaction() as conn:
        n, dupes = find_duplicates(ws, name, mode, conn=conn, cancel=cancel)
        ds_repo.set_deleted(conn, dupes, True)
        if dupes:
            ds_repo.touch(conn, ds_repo.get_dataset(conn, name).id)
    return DedupReport(dataset=name, mode=mode, rows_before=n, removed=len(dupes), removed_ids=dupes)


@dataclass
class SplitReport:
    dataset: str
    seed: int
    validation_fraction: float
    train: int
    validation: int
    prompts_train: int
    prompts_validation: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SplitPlan:
    """Which live records :func:`split` would send to validation (nothing written yet)."""
    seed: int
    validation_fraction: float
    groups: dict[bytes, list[int]] = field(repr=False)   # prompt key -> record ids
    validation_ids: set[int] = field(repr=False)
    prompts_validation: int = 0

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.groups.values())

    @property
    def validation(self) -> int:
        return len(self.validation_ids)

    @property
    def train(self) -> int:
        return self.total - self.validation

    @property
    def prompts_train(self) -> int:
        return len(self.groups) - self.prompts_validation

    @property
    def shared_prompts(self) -> int:
        """Prompts with more than one record: each such group stays on one side."""
        return sum(1 for ids in self.groups.values() if len(ids) > 1)

    @property
    def largest_group(self) -> int:
        return max((len(ids) for ids in self.groups.values()), default=0)


def plan_split(conn, info, *, validation: float = 0.1, seed: int = 0,
               cancel: Optional[CancelToken] = None) -> SplitPlan:
    """Group the live records of dataset ``info`` by prompt and choose the validation side.

    Records sharing a prompt (up to whitespace and case) always land on the
    same side, so validation never measures memorised prompts. Prompt groups
    are ordered by a seeded hash and taken into validation until the share
    of records reaches ``validation``: the same seed gives the same split.
    """
    if not 0.0 <= validation < 1.0:
        raise WorkbenchError(f"validation fraction {validation}: expected at least 0 and below 1")
    groups: dict[bytes, list[int]] = {}
    for i, rec in enumerate(ds_repo.iter_records(conn, info)):
        if i % 10000 == 0:
            check(cancel)
        prompt = rec.prompt if rec.prompt is not None else (rec.messages or [])[:-1]
        groups.setdefault(prompt_key(prompt), []).append(rec.id)
    salt = str(seed).encode()
    order = sorted(groups, key=lambda k: hashlib.blake2b(salt + k, digest_size=8).digest())
    target = round(sum(len(v) for v in groups.values()) * validation)
    val_ids: list[int] = []
    val_groups = 0
    for key in order:
        if len(val_ids) >= target:
            break
        val_ids.extend(groups[key])
        val_groups += 1
    return SplitPlan(seed=seed, validation_fraction=validation, groups=groups, validation_ids=set(val_ids),
                     prompts_validation=val_groups)


def split(ws: Workspace, name: str, *, validation: float = 0.1, seed: int = 0,
          cancel: Optional[CancelToken] = None) -> SplitReport:
    """Assign every live record to train or validation, grouped by prompt (see :func:`plan_split`)."""
    if not 0.0 <= validation < 1.0:
        raise WorkbenchError(f"validation fraction {validation}: expected at least 0 and below 1")
    with ws.transaction() as conn:
        info = ds_repo.get_dataset(conn, name)
        plan = plan_split(conn, info, validation=validation, seed=seed, cancel=cancel)
        val_set = plan.validation_ids
        ds_repo.set_splits(conn, ((rid, "validation" if rid in val_set else "train")
                                  for ids in plan.groups.values() for rid in ids))
        ds_repo.touch(conn, info.id)
    return SplitReport(dataset=name, seed=seed, validation_fraction=validation, train=plan.train,
                       validation=plan.validation, prompts_train=plan.prompts_train,
                       prompts_validation=plan.prompts_validation)


# -- statistics ----------------------------------------------------------------------------

def text_length(value: Any) -> int:
    """Characters in a text value (a message list counts its contents)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(len(m.get("content") or "") for m in value)
    return 0


def _flatten(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(m.get("content") or "" for m in value)
    return value or ""


def _summary(values: list[int]) -> dict[str, Any]:
    if not values:
        return {"count": 0}
    values = sorted(values)
    n = len(values)

    def q(p: float) -> int:
        return values[min(n - 1, int(p * (n - 1) + 0.5))]

    # 20 equal-width bins between min and max: enough for a histogram.
    lo, hi = values[0], values[-1]
    width = max(1, -(-(hi - lo + 1) // 20))
    hist = [0] * (((hi - lo) // width) + 1)
    for v in values:
        hist[(v - lo) // width] += 1
    return {"count": n, "min": lo, "mean": round(sum(values) / n, 2), "p50": q(0.5), "p90": q(0.9),
            "p99": q(0.99), "max": hi, "histogram": {"start": lo, "bin_width": width, "counts": hist}}


def load_tokenizer(folder: Path | str):
    """A fast tokenizer from a model folder's ``tokenizer.json`` (no transformers import)."""
    from tokenizers import Tokenizer

    path = Path(folder)
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise WorkbenchError(f"{folder}: no tokenizer.json (give a model folder with a fast tokenizer)")
    return Tokenizer.from_file(str(file))


def stats(ws: Workspace, name: str, *, tokenizer: Optional[Path | str] = None,
          progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None) -> dict[str, Any]:
    """Counts, per-split counts, length distributions (characters, and tokens with a
    tokenizer folder), and duplicates found (exact and normalized)."""
    conn = ws.conn
    info = ds_repo.get_dataset(conn, name)
    tok = load_tokenizer(tokenizer) if tokenizer else None
    chars: dict[str, list[int]] = {}
    tokens: dict[str, list[int]] = {}
    exact: set[bytes] = set()
    norm: set[bytes] = set()
    dup_exact = dup_norm = n = 0
    prompts: set[bytes] = set()
    for rec in ds_repo.iter_records(conn, info):
        n += 1
        if n % 10000 == 0:
            check(cancel)
            progress(n / max(1, info.rows), f"{n:,} records scanned")
        content = rec.content()
        for fname, value in content.items():
            if fname in ("score_chosen", "score_rejected", "label"):
                continue
            chars.setdefault(fname, []).append(text_length(value))
            if tok is not None:
                tokens.setdefault(fname, []).append(len(tok.encode(_flatten(value), add_special_tokens=False).ids))
        k = record_key(rec, "exact")
        dup_exact += k in exact
        exact.add(k)
        k = record_key(rec, "normalized")
        dup_norm += k in norm
        norm.add(k)
        prompts.add(prompt_key(rec.prompt if rec.prompt is not None else (rec.messages or [])[:-1]))
    out: dict[str, Any] = {
        "dataset": info.name, "kind": info.kind, "style": info.style, "rows": info.rows,
        "splits": {"train": info.train, "validation": info.validation,
                   "unassigned": info.rows - info.train - info.validation},
        "deleted": info.deleted, "unique_prompts": len(prompts),
        "duplicates": {"exact": dup_exact, "normalized": dup_norm},
        "snapshots": list(info.snapshots),
        "length_chars": {f: _summary(v) for f, v in chars.items()},
    }
    if info.kind == "preference":
        scored = conn.execute("SELECT count(*), avg(score_chosen - score_rejected) FROM records "
                              "WHERE dataset_id = ? AND deleted = 0 AND score_chosen IS NOT NULL",
                              (info.id,)).fetchone()
        out["scored_pairs"] = scored[0]
        if scored[0]:
            out["mean_score_margin"] = round(scored[1], 4)
    if tok is not None:
        out["tokenizer"] = str(tokenizer)
        out["length_tokens"] = {f: _summary(v) for f, v in tokens.items()}
    return out
