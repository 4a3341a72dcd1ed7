"""Typed records: what the workspace stores, as plain frozen dataclasses.

Text values are either plain strings (the *standard* style) or lists of chat
messages ``{"role": ..., "content": ...}`` (the *conversational* style), as
in TRL's dataset formats. A dataset holds one style throughout. In SQLite a
conversational value is stored as compact JSON text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

Message = dict[str, Any]
Text = Union[str, list[Message]]
Kind = Literal["sft", "preference", "prompts", "unpaired"]
Style = Literal["standard", "conversational"]
Split = Literal["train", "validation"]

KINDS: tuple[str, ...] = ("sft", "preference", "prompts", "unpaired")
STYLES: tuple[str, ...] = ("standard", "conversational")
SPLITS: tuple[str, ...] = ("train", "validation")

#: Content columns of a dataset record, in export order (TRL's field names).
CONTENT_FIELDS: tuple[str, ...] = (
    "prompt", "completion", "messages", "chosen", "rejected",
    "score_chosen", "score_rejected", "label",
)
#: Content columns that hold text or messages.
TEXT_FIELDS: tuple[str, ...] = ("prompt", "completion", "messages", "chosen", "rejected")

#: Fields each kind's records carry; a tuple of alternatives for ``sft``.
KIND_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "sft": (("prompt", "completion"), ("messages",)),
    "preference": (("prompt", "chosen", "rejected"),),
    "unpaired": (("prompt", "completion", "label"),),
    "prompts": (("prompt",),),
}
OPTIONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "preference": ("score_chosen", "score_rejected"),
}


def dumps_canonical(value: Any) -> str:
    """Compact, key-sorted JSON: the form hashed for snapshots and dedup."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def encode_text(value: Optional[Text]) -> Optional[str]:
    """A text value as stored in SQLite (messages become compact JSON)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def decode_text(stored: Optional[str], style: str) -> Optional[Text]:
    if stored is None or style == "standard":
        return stored
    return json.loads(stored)


@dataclass(frozen=True)
class Lineage:
    """Where a record came from: a file and line, or a ranking or candidate."""
    source_id: Optional[int] = None
    source_kind: Optional[str] = None
    path: Optional[str] = None
    line: Optional[int] = None
    ranking_id: Optional[int] = None
    candidate_id: Optional[int] = None
    replaces_id: Optional[int] = None

    def describe(self) -> str:
        parts = []
        if self.path:
            parts.append(f"{self.path}:{self.line}" if self.line else self.path)
        elif self.source_kind:
            parts.append(self.source_kind)
        if self.ranking_id:
            parts.append(f"ranking #{self.ranking_id}")
        if self.candidate_id:
            parts.append(f"candidate #{self.candidate_id}")
        if self.replaces_id:
            parts.append(f"edit of record #{self.replaces_id}")
        return ", ".join(parts) or "unknown"


@dataclass(frozen=True)
class Record:
    """One dataset row. Fields a kind does not use stay ``None``."""
    prompt: Optional[Text] = None
    completion: Optional[Text] = None
    messages: Optional[list[Message]] = None
    chosen: Optional[Text] = None
    rejected: Optional[Text] = None
    score_chosen: Optional[float] = None
    score_rejected: Optional[float] = None
    label: Optional[bool] = None
    tags: Optional[tuple[str, ...]] = None
    id: Optional[int] = None
    split: Optional[str] = None
    deleted: bool = False
    lineage: Optional[Lineage] = field(default=None, compare=False)

    def content(self) -> dict[str, Any]:
        """The content fields that are set, in export order (TRL names)."""
        return {name: getattr(self, name) for name in CONTENT_FIELDS if getattr(self, name) is not None}


@dataclass(frozen=True)
class DatasetInfo:
    id: int
    name: str
    kind: str
    style: str
    description: str
    created_at: float
    updated_at: float
    rows: int = 0
    train: int = 0
    validation: int = 0
    deleted: int = 0
    snapshots: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["snapshots"] = list(self.snapshots)
        return d


@dataclass(frozen=True)
class SnapshotInfo:
    id: int
    dataset: str
    hash: str
    rows: int
    note: str
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Prompt:
    id: int
    prompt: Text
    tags: tuple[str, ...] = ()
    record_id: Optional[int] = None
    created_at: float = 0.0


@dataclass(frozen=True)
class Candidate:
    id: int
    prompt_id: int
    response: Text
    model: Optional[str] = None
    checkpoint: Optional[str] = None
    params: dict[str, Any] = field(default_factory=dict)
    parent_id: Optional[int] = None
    created_at: float = 0.0


@dataclass(frozen=True)
class Ranking:
    """An annotator's ordering of a prompt's candidates, best first.

    ``ordering`` is a list of tie groups: ``[[3], [1, 4], [2]]`` means 3 is
    best, 1 and 4 are tied second, 2 is last.
    """
    id: int
    prompt_id: int
    annotator: str
    ordering: tuple[tuple[int, ...], ...]
    all_bad: bool = False
    note: str = ""
    flags: tuple[str, ...] = ()
    created_at: float = 0.0
