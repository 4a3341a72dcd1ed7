"""Browsing a dataset: the queries behind the dataset manager, Qt-free.

The manager never loads a dataset whole. It asks for the ordered ids of the
records a :class:`BrowseQuery` selects (:func:`record_ids`: a million ids
are an 8 MB ``array('q')``, computed off the GUI thread) and then fetches
one-line previews for the page of ids on screen (:func:`fetch_previews`).
:func:`list_summaries`, :func:`dataset_tags` and :func:`dataset_sources`
feed the dataset list and the filter choices.

**Ranked.** A record is *ranked* when a human ordering stands behind it:
it was derived from a ranking (``records.ranking_id`` is set, as for the
pairs of a k-wise import or of the ranking view), or a prompt made from it
(``prompts.record_id``) has at least one ranking. Every other record is
*unranked*.

Every reading function takes a connection; run the slow ones
(:func:`record_ids`, the facets) on the worker thread's own connection.
"""

from __future__ import annotations

import json
import os
import sqlite3
from array import array
from dataclasses import dataclass, field
from typing import Optional, Sequence

from ..errors import Cancelled, NotFoundError, WorkbenchError
from ..progress import CancelToken
from .records import SPLITS, DatasetInfo, Record
from .search import fts_query

#: ``BrowseQuery.source`` value selecting records with no source (edited in the workbench).
NO_SOURCE = 0
#: ``BrowseQuery.split`` value selecting records not assigned to a split.
NO_SPLIT = "none"
#: Characters of each text preview (a table cell shows one line of it).
PREVIEW_CHARS = 300
#: Characters of a text column that decide its sort order.
SORT_CHARS = 64

_ID_COLUMN = ("id", "#")
_TRAILING = (("split", "Split"), ("tags", "Tags"), ("source", "Source"))
_KIND_TEXT = {
    "preference": (("prompt", "Prompt"), ("chosen", "Chosen"), ("rejected", "Rejected")),
    "sft": (("prompt", "Prompt"), ("completion", "Completion")),
    "unpaired": (("prompt", "Prompt"), ("completion", "Completion"), ("label", "Label")),
    "prompts": (("prompt", "Prompt"),),
}
#: Keys :attr:`BrowseQuery.sort` accepts.
SORT_KEYS = ("id", "prompt", "completion", "chosen", "rejected", "label", "split", "tags", "source")


def columns(kind: str) -> list[tuple[str, str]]:
    """The table columns for a dataset kind: ``[(key, title), ...]``, id first."""
    return [_ID_COLUMN, *_KIND_TEXT.get(kind, _KIND_TEXT["sft"]), *_TRAILING]


# -- the query -----------------------------------------------------------------------------

@dataclass(frozen=True)
class BrowseQuery:
    """Which records of a dataset to show, and in what order.

    Filters combine with AND. ``text`` is full-text search (see
    :func:`workbench.store.search.fts_query`; run
    :func:`workbench.store.search.catch_up` first or recent records are
    missed). ``split`` is ``"train"``, ``"validation"`` or :data:`NO_SPLIT`;
    ``source`` a ``sources.id`` or :data:`NO_SOURCE`; ``ranked`` ``True`` or
    ``False`` (see the module docstring); ``None`` means any. ``sort`` is one
    of :data:`SORT_KEYS`; text columns sort by their first
    :data:`SORT_CHARS` characters, case-insensitively, ties by id.
    """
    dataset_id: int
    style: str = "standard"
    text: str = ""
    tag: Optional[str] = None
    source: Optional[int] = None
    split: Optional[str] = None
    ranked: Optional[bool] = None
    show_deleted: bool = False
    sort: str = "id"
    descending: bool = False

    def validate(self) -> None:
        if self.sort not in SORT_KEYS:
            raise WorkbenchError(f"sort {self.sort!r}: expected one of {', '.join(SORT_KEYS)}")
        if self.split is not None and self.split not in (*SPLITS, NO_SPLIT):
            raise WorkbenchError(f"split {self.split!r}: expected train, validation or {NO_SPLIT}")

    @property
    def needs_table(self) -> bool:
        """Whether the query must read the records' pages (else indexes alone answer it)."""
        return bool(self.text.strip() or self.tag is not None or self.source is not None
                    or self.ranked is not None or self.sort != "id")


def _json_text(expr: str, path: str) -> str:
    """``expr``'s message content at ``path`` if it is JSON, else ``expr`` itself."""
    return f"(CASE WHEN json_valid({expr}) THEN json_extract({expr}, '{path}') ELSE {expr} END)"


def _preview_sql(column: str, style: str) -> str:
    """SQL for the preview text of a record column (the last turn of a conversation)."""
    if column in ("prompt", "completion", "chosen", "rejected"):
        own = f"r.{column}" if style == "standard" else _json_text(f"r.{column}", "$[#-1].content")
        if column == "prompt":
            # {messages} records (conversational SFT): the turn before the final reply.
            return f"coalesce({own}, {_json_text('r.messages', '$[#-2].content')})"
        if column == "completion":
            return f"coalesce({own}, {_json_text('r.messages', '$[#-1].content')})"
        return own
    raise ValueError(column)


_RANKED_SQL = ("(r.ranking_id IS NOT NULL OR r.id IN (SELECT p.record_id FROM prompts p "
               "WHERE p.record_id IS NOT NULL AND EXISTS (SELECT 1 FROM rankings k WHERE k.prompt_id = p.id)))")


def _order_sql(q: BrowseQuery, *, searching: bool) -> str:
    d = " DESC" if q.descending else ""
    if q.sort == "id":
        # FTS5 hands out rowids in either order itself: no sort, so a LIMIT stops early.
        return f"f.rowid{d}" if searching else f"r.id{d}"
    if q.sort == "split":
        keys = ["r.split"]
    elif q.sort == "tags":
        # As displayed ("code, cs"), not as stored ('["code","cs"]' sorts before '["code"]').
        keys = ["replace(replace(replace(r.tags, '[\"', ''), '\",\"', ', '), '\"]', '') COLLATE NOCASE"]
    elif q.sort == "source":
        keys = ["r.source_id", "r.source_line"]
    elif q.sort == "label":
        keys = ["r.label"]
    else:
        keys = [f"substr({_preview_sql(q.sort, q.style)}, 1, {SORT_CHARS}) COLLATE NOCASE"]
    return ", ".join(f"{k}{d}" for k in keys) + f", r.id{d}"


def _select_sql(q: BrowseQuery, *, limit: Optional[int]) -> tuple[str, list]:
    q.validate()
    where, args = ["r.dataset_id = ?"], [q.dataset_id]
    query = fts_query(q.text) if q.text.strip() else None
    if q.text.strip() and query is None:
        where.append("0")   # only punctuation: nothing can match
    if query is not None:
        # FTS first (CROSS JOIN keeps that order): the planner would otherwise walk
        # the whole dataset and probe the index per row, seconds instead of milliseconds.
        source = "record_fts f CROSS JOIN records r ON r.id = f.rowid"
        where.insert(0, "record_fts MATCH ?")
        args.insert(0, query)
    else:
        source = "records r"
    index_only = query is None and not q.needs_table
    if q.split in SPLITS:
        # records_split holds (dataset, split, deleted) of every record with a split.
        where.append("r.split = ?")
        args.append(q.split)
        if not q.show_deleted:
            where.append("r.deleted = 0")
    else:
        if not q.show_deleted:
            if index_only:
                # The dataset's ids (records_by_dataset, in id order) minus its deleted
                # ones (records_deleted): neither reads a record's page.
                where.append("r.id NOT IN (SELECT id FROM records WHERE dataset_id = ? AND deleted = 1)")
                args.append(q.dataset_id)
            else:
                where.append("r.deleted = 0")
        if q.split == NO_SPLIT:
            if index_only:
                where.append("r.id NOT IN (SELECT id FROM records WHERE dataset_id = ? AND split IS NOT NULL)")
                args.append(q.dataset_id)
            else:
                where.append("r.split IS NULL")
    if q.tag is not None:
        where.append("r.tags IS NOT NULL AND EXISTS (SELECT 1 FROM json_each(r.tags) WHERE value = ?)")
        args.append(q.tag)
    if q.source == NO_SOURCE:
        where.append("r.source_id IS NULL")
    elif q.source is not None:
        where.append("r.source_id = ?")
        args.append(q.source)
    if q.ranked is not None:
        where.append(_RANKED_SQL if q.ranked else f"NOT {_RANKED_SQL}")
    sql = f"SELECT r.id FROM {source} WHERE {' AND '.join(where)} ORDER BY {_order_sql(q, searching=query is not None)}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return sql, args


def record_ids(conn: sqlite3.Connection, q: BrowseQuery, *, limit: Optional[int] = None,
               cancel: Optional[CancelToken] = None) -> array:
    """The ids of the records ``q`` selects, in its order, as an ``array('q')``.

    With ``limit``, only the first ``limit`` (the fast first page of a
    search or of a freshly opened dataset). A cancel interrupts even a
    running SQLite sort and raises :class:`~workbench.errors.Cancelled`.
    """
    sql, args = _select_sql(q, limit=limit)
    out = array("q")
    if cancel is not None:
        # Every ~0.5M SQLite VM steps (a few ms): often enough to stop a sort promptly,
        # rarely enough not to fight the GUI thread for the GIL.
        conn.set_progress_handler(lambda: 1 if cancel.cancelled else 0, 500_000)
    try:
        cur = conn.execute(sql, args)
        while True:
            # fetchmany (not one big JSON blob) keeps releasing the GIL, so the
            # GUI thread stays responsive while a million ids arrive.
            rows = cur.fetchmany(20_000)
            if not rows:
                break
            out.extend([r[0] for r in rows])
            if cancel is not None and cancel.cancelled:
                raise Cancelled("cancelled")
    except sqlite3.OperationalError as exc:
        if cancel is not None and cancel.cancelled and "interrupt" in str(exc).lower():
            raise Cancelled("cancelled") from None
        raise
    finally:
        if cancel is not None:
            conn.set_progress_handler(None, 0)
    return out


def query_plan(conn: sqlite3.Connection, q: BrowseQuery, *, limit: Optional[int] = None) -> list[str]:
    """SQLite's plan for ``q`` (tests use it to check the indexes are used)."""
    sql, args = _select_sql(q, limit=limit)
    return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args)]


# -- previews of a page of rows -------------------------------------------------------------

@dataclass(frozen=True)
class RowPreview:
    """What a table row shows: one-line cells keyed by column key."""
    id: int
    cells: dict[str, str]
    split: Optional[str]
    tags: tuple[str, ...]
    deleted: bool
    replaces_id: Optional[int] = None


def one_line(text: Optional[str], limit: int = 200) -> str:
    """Whitespace collapsed to single spaces, cut at ``limit`` characters with an ellipsis."""
    if not text:
        return ""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _source_label(kind: Optional[str], path: Optional[str], line: Optional[int], ranking_id: Optional[int],
                  replaces_id: Optional[int]) -> str:
    if path:
        name = os.path.basename(path)
        return f"{name}:{line}" if line else name
    if replaces_id:
        return f"edit of #{replaces_id}"
    if ranking_id:
        return f"ranking #{ranking_id}"
    return kind or ""


def fetch_previews(conn: sqlite3.Connection, kind: str, style: str, ids: Sequence[int]) -> dict[int, RowPreview]:
    """Previews of the records ``ids`` (one page; a few hundred at most), by id.

    Only the first :data:`PREVIEW_CHARS` characters of each text (of the
    last turn, for conversations) leave SQLite.
    """
    text_cols = [k for k, _ in _KIND_TEXT.get(kind, _KIND_TEXT["sft"]) if k != "label"]
    turn_sql = []
    for col in text_cols:
        if style == "conversational":
            # Number of turns of the stored conversation ({messages} for the SFT columns).
            own = f"CASE WHEN json_valid(r.{col}) THEN json_array_length(r.{col}) END"
            if col in ("prompt", "completion"):
                own = f"coalesce({own}, CASE WHEN json_valid(r.messages) THEN json_array_length(r.messages) END)"
            turn_sql.append(own)
        else:
            turn_sql.append("NULL")
    cols = ", ".join(f"substr({_preview_sql(c, style)}, 1, {PREVIEW_CHARS}), {t}"
                     for c, t in zip(text_cols, turn_sql))
    out: dict[int, RowPreview] = {}
    ids = list(ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        rows = conn.execute(
            f"SELECT r.id, r.split, r.tags, r.deleted, r.label, s.kind, s.path, r.source_line, r.ranking_id, "
            f"r.replaces_id{', ' + cols if cols else ''} FROM records r LEFT JOIN sources s ON s.id = r.source_id "
            f"WHERE r.id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
        for row in rows:
            rid, split, tags_json, deleted, label, skind, path, line, ranking_id, replaces_id = row[:10]
            tags = tuple(json.loads(tags_json)) if tags_json else ()
            cells = {"id": str(rid), "split": split or "", "tags": ", ".join(tags),
                     "source": _source_label(skind, path, line, ranking_id, replaces_id)}
            if kind == "unpaired":
                cells["label"] = "" if label is None else ("good" if label else "bad")
            rest = row[10:]
            for i, col in enumerate(text_cols):
                text, turns = rest[2 * i], rest[2 * i + 1]
                cell = one_line(text if isinstance(text, str) or text is None else json.dumps(text))
                if turns and turns > 1 and (col != "completion"):
                    cell = f"[{turns} turns] {cell}"
                cells[col] = cell
            out[rid] = RowPreview(id=rid, cells=cells, split=split, tags=tags, deleted=bool(deleted),
                                  replaces_id=replaces_id)
    return out


# -- the dataset list and the filter choices -----------------------------------------------

@dataclass(frozen=True)
class SnapshotBrief:
    hash: str
    rows: int
    note: str
    created_at: float

    @property
    def short_hash(self) -> str:
        return self.hash[:10]


@dataclass(frozen=True)
class DatasetSummary:
    """A row of the dataset list: what the dataset is and how many records it holds."""
    id: int
    name: str
    kind: str
    style: str
    description: str
    created_at: float
    updated_at: float
    rows: int = 0             # live records
    train: int = 0
    validation: int = 0
    deleted: int = 0
    #: Of the deleted: originals of edits (an edit stores a new record and hides the old one).
    edited: int = 0
    snapshots: tuple[SnapshotBrief, ...] = field(default=())
    #: False when read with ``counts=False``: the counts above are not known yet.
    counted: bool = True

    @property
    def unassigned(self) -> int:
        return self.rows - self.train - self.validation

    def info(self) -> DatasetInfo:
        """As the :class:`DatasetInfo` the dataset repository functions take."""
        return DatasetInfo(id=self.id, name=self.name, kind=self.kind, style=self.style,
                           description=self.description, created_at=self.created_at,
                           updated_at=self.updated_at, rows=self.rows, train=self.train,
                           validation=self.validation, deleted=self.deleted,
                           snapshots=tuple(s.hash for s in self.snapshots))


def list_summaries(conn: sqlite3.Connection, *, counts: bool = True) -> list[DatasetSummary]:
    """Every dataset with its counts and snapshots, by name.

    The counts come from indexes alone (all records per dataset, the
    deleted ones, the ones with a split), never from the records' pages,
    but that is still 0.1-0.5 s for a million records: ``counts=False``
    skips them (``counted`` is then False) so a page can show the list, and
    open a dataset, first.
    """
    counted: dict[int, dict] = {}
    if counts:
        def entry(ds_id):
            return counted.setdefault(ds_id, {"rows": 0, "train": 0, "validation": 0, "deleted": 0, "edited": 0})
        for ds_id, n in conn.execute("SELECT dataset_id, count(*) FROM records GROUP BY dataset_id"):
            entry(ds_id)["rows"] += n
        for ds_id, n in conn.execute("SELECT dataset_id, count(*) FROM records WHERE deleted = 1 "
                                     "GROUP BY dataset_id"):
            entry(ds_id)["rows"] -= n
            entry(ds_id)["deleted"] += n
        for ds_id, n in conn.execute("SELECT o.dataset_id, count(*) FROM records o WHERE o.deleted = 1 AND EXISTS"
                                     " (SELECT 1 FROM records e WHERE e.replaces_id = o.id) GROUP BY o.dataset_id"):
            entry(ds_id)["edited"] += n
        for ds_id, split, n in conn.execute(
                "SELECT dataset_id, split, count(*) FROM records WHERE split IS NOT NULL AND deleted = 0 "
                "GROUP BY dataset_id, split"):
            if split in SPLITS:
                entry(ds_id)[split] += n
    snaps: dict[int, list[SnapshotBrief]] = {}
    for ds_id, h, rows, note, created in conn.execute(
            "SELECT dataset_id, hash, rows, note, created_at FROM snapshots ORDER BY id"):
        snaps.setdefault(ds_id, []).append(SnapshotBrief(h, rows, note, created))
    out = []
    for row in conn.execute("SELECT id, name, kind, style, description, created_at, updated_at "
                            "FROM datasets ORDER BY name"):
        out.append(DatasetSummary(*row, **counted.get(row[0], {}), snapshots=tuple(snaps.get(row[0], ())),
                                  counted=counts))
    return out


def get_summary(conn: sqlite3.Connection, dataset_id: int) -> DatasetSummary:
    for s in list_summaries(conn):
        if s.id == dataset_id:
            return s
    raise NotFoundError(f"no dataset #{dataset_id}")


def dataset_tags(conn: sqlite3.Connection, dataset_id: int) -> list[tuple[str, int]]:
    """``[(tag, live records carrying it), ...]`` by tag (scans the dataset: run off the GUI thread)."""
    return [(t, n) for t, n in conn.execute(
        "SELECT j.value, count(*) FROM records r, json_each(r.tags) j "
        "WHERE r.dataset_id = ? AND r.tags IS NOT NULL AND r.deleted = 0 GROUP BY j.value ORDER BY j.value",
        (dataset_id,)) if isinstance(t, str)]


@dataclass(frozen=True)
class SourceFacet:
    """A source present in a dataset: ``id`` is :data:`NO_SOURCE` for edited records."""
    id: int
    label: str
    rows: int


def dataset_sources(conn: sqlite3.Connection, dataset_id: int) -> list[SourceFacet]:
    """The sources of a dataset's live records (scans the dataset: run off the GUI thread)."""
    out = []
    for sid, n, kind, path in conn.execute(
            "SELECT r.source_id, count(*), s.kind, s.path FROM records r LEFT JOIN sources s ON s.id = r.source_id "
            "WHERE r.dataset_id = ? AND r.deleted = 0 GROUP BY r.source_id ORDER BY r.source_id", (dataset_id,)):
        if sid is None:
            out.append(SourceFacet(NO_SOURCE, "edited here", n))
        else:
            label = os.path.basename(path) if path else kind
            out.append(SourceFacet(sid, f"{label} (#{sid})", n))
    return out


# -- one record in full ---------------------------------------------------------------------

@dataclass(frozen=True)
class RecordDetail:
    """A record with the lineage the detail pane shows."""
    record: Record
    dataset: str
    ranking: Optional[dict] = None       # {"id", "annotator", "created_at"} of ranking_id
    candidate: Optional[dict] = None     # {"id", "model", "checkpoint"} of candidate_id
    prompt_rankings: int = 0             # rankings of prompts made from this record
    replaced_by: Optional[int] = None    # the latest edit of this record, if it was edited


def record_detail(conn: sqlite3.Connection, summary: DatasetSummary, record_id: int) -> RecordDetail:
    """The full record ``record_id`` of the dataset, with its lineage (one indexed lookup each)."""
    from .datasets import get_record
    rec = get_record(conn, summary.info(), record_id)
    ranking = candidate = None
    lin = rec.lineage
    if lin is not None and lin.ranking_id:
        row = conn.execute("SELECT id, annotator, created_at FROM rankings WHERE id = ?",
                           (lin.ranking_id,)).fetchone()
        if row:
            ranking = {"id": row[0], "annotator": row[1], "created_at": row[2]}
    if lin is not None and lin.candidate_id:
        row = conn.execute("SELECT id, model, checkpoint FROM candidates WHERE id = ?",
                           (lin.candidate_id,)).fetchone()
        if row:
            candidate = {"id": row[0], "model": row[1], "checkpoint": row[2]}
    n = conn.execute("SELECT count(*) FROM rankings k JOIN prompts p ON p.id = k.prompt_id "
                     "WHERE p.record_id = ?", (record_id,)).fetchone()[0]
    edit = conn.execute("SELECT max(id) FROM records WHERE replaces_id = ?", (record_id,)).fetchone()[0]
    return RecordDetail(record=rec, dataset=summary.name, ranking=ranking, candidate=candidate,
                        prompt_rankings=n, replaced_by=edit)
