"""Prompt sources a user can pick (all prompts, a dataset, a tag), read from the workspace.

Shared by the queue, generation and comparison dialogs. Plain SQLite reads,
small enough for a dialog's opening (distinct tags are capped).
"""

from __future__ import annotations

import sqlite3
from typing import Optional

from PySide6.QtWidgets import QComboBox, QWidget

from workbench.store.queue import PromptSource

MAX_TAGS = 200


def datasets_with_prompts(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
    """``(name, kind, live rows)`` of every dataset (prompts can come from any kind's records)."""
    return [(r[0], r[1], r[2] or 0) for r in conn.execute(
        "SELECT d.name, d.kind, (SELECT count(*) FROM records r WHERE r.dataset_id = d.id AND r.deleted = 0)"
        " FROM datasets d ORDER BY d.name")]


def prompt_tags(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    """``(tag, prompts)`` of the tags on the workspace's prompts, most used first."""
    return [(r[0], r[1]) for r in conn.execute(
        "SELECT t.value, count(*) FROM prompts p, json_each(p.tags) t WHERE t.type = 'text'"
        " GROUP BY t.value ORDER BY count(*) DESC, t.value LIMIT ?", (MAX_TAGS,))]


class PromptSourceCombo(QComboBox):
    """A combo of prompt sources; :meth:`source` is the chosen :class:`PromptSource`.

    ``include_all`` adds "All prompts" (queues); ``include_tags`` the tags of
    stored prompts; datasets are always listed.
    """

    def __init__(self, conn: Optional[sqlite3.Connection], *, include_all: bool = True, include_tags: bool = True,
                 parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("promptSource")
        self._kinds: dict[str, str] = {}  # dataset name -> kind
        if include_all:
            self.addItem("All prompts in the workspace", PromptSource())
        if conn is not None:
            for name, kind, rows in datasets_with_prompts(conn):
                self._kinds[name] = kind
                self.addItem(f"Dataset: {name}  ({kind}, {rows:,} rows)", PromptSource("dataset", name))
            if include_tags:
                for tag, n in prompt_tags(conn):
                    self.addItem(f"Tag: {tag}  ({n:,} prompts)", PromptSource("tag", tag))

    def select_default(self) -> None:
        """Choose the source a generation should start from: a prompts dataset, else an SFT
        dataset, else the most used tag, else what is listed first. Not a preference dataset when
        anything else is there (its prompts are the ones already ranked, many times over)."""
        order = {"prompts": 0, "sft": 1}
        best, rank = -1, 99
        for i in range(self.count()):
            src = self.itemData(i)
            if src is None or src.kind == "all":
                continue
            r = order.get(self._kinds.get(src.name), 3) if src.kind == "dataset" else 2
            if r < rank:
                best, rank = i, r
        if best >= 0:
            self.setCurrentIndex(best)

    def source(self) -> Optional[PromptSource]:
        return self.currentData()

    def select(self, source: PromptSource) -> bool:
        for i in range(self.count()):
            if self.itemData(i) == source:
                self.setCurrentIndex(i)
                return True
        return False
