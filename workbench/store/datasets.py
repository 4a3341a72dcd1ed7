"""Dataset repository: named, typed datasets, their records, splits and snapshots.

Functions take an open connection; the ones that write expect to run inside
:func:`~workbench.store.db.write_transaction` (they never commit on their own,
so a caller can group several into one all-or-nothing change).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from typing import Iterable, Iterator, Optional, Sequence

from ..errors import NotFoundError, WorkbenchError
from .records import (CONTENT_FIELDS, KINDS, SPLITS, STYLES, TEXT_FIELDS, DatasetInfo, Lineage, Record,
                      SnapshotInfo, decode_text, dumps_canonical, encode_text)

#: Columns of ``records`` written by :func:`insert_rows`, in order.
ROW_COLUMNS: tuple[str, ...] = CONTENT_FIELDS + (
    "tags", "split", "source_id", "source_line", "ranking_id", "candidate_id", "replaces_id", "created_at")

_SELECT = ("SELECT r.id, r.split, r.deleted, " + ", ".join(f"r.{c}" for c in CONTENT_FIELDS)
           + ", r.tags, r.source_id, s.kind, s.path, r.source_line, r.ranking_id, r.candidate_id, r.replaces_id"
           " FROM records r LEFT JOIN sources s ON s.id = r.source_id")


def validate_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise WorkbenchError("dataset name is empty")
    if len(name) > 200 or any(ch in name for ch in "\n\r\t@"):
        raise WorkbenchError(f"dataset name {name!r}: use at most 200 characters, no tabs, newlines or '@'")
    return name


def create_dataset(conn: sqlite3.Connection, name: str, kind: str, style: str,
                   description: str = "") -> int:
    """Create an empty dataset and return its id."""
    name = validate_name(name)
    if kind not in KINDS:
        raise WorkbenchError(f"dataset kind {kind!r}: expected one of {', '.join(KINDS)}")
    if style not in STYLES:
        raise WorkbenchError(f"dataset style {style!r}: expected one of {', '.join(STYLES)}")
    if conn.execute("SELECT 1 FROM datasets WHERE name = ?", (name,)).fetchone():
        raise WorkbenchError(f"dataset {name!r} already exists; choose another --name or delete it first")
    now = time.time()
    cur = conn.execute(
        "INSERT INTO datasets(name, kind, style, description, created_at, updated_at) VALUES (?,?,?,?,?,?)",
        (name, kind, style, description, now, now))
    return cur.lastrowid


def touch(conn: sqlite3.Connection, dataset_id: int) -> None:
    conn.execute("UPDATE datasets SET updated_at = ? WHERE id = ?", (time.time(), dataset_id))


def _info(conn: sqlite3.Connection, row: sqlite3.Row | tuple) -> DatasetInfo:
    ds_id = row[0]
    counts = conn.execute(
        "SELECT sum(deleted = 0), sum(deleted = 0 AND split = 'train'),"
        " sum(deleted = 0 AND split = 'validation'), sum(deleted = 1)"
        " FROM records WHERE dataset_id = ?", (ds_id,)).fetchone()
    snaps = tuple(h for (h,) in conn.execute(
        "SELECT hash FROM snapshots WHERE dataset_id = ? ORDER BY id", (ds_id,)))
    return DatasetInfo(id=ds_id, name=row[1], kind=row[2], style=row[3], description=row[4],
                       created_at=row[5], updated_at=row[6], rows=counts[0] or 0, train=counts[1] or 0,
                       validation=counts[2] or 0, deleted=counts[3] or 0, snapshots=snaps)


_DS_COLS = "id, name, kind, style, description, created_at, updated_at"


def get_dataset(conn: sqlite3.Connection, name: str) -> DatasetInfo:
    """The dataset called ``name``, with row and split counts."""
    row = conn.execute(f"SELECT {_DS_COLS} FROM datasets WHERE name = ?", (name,)).fetchone()
    if row is None:
        names = [n for (n,) in conn.execute("SELECT name FROM datasets ORDER BY name LIMIT 20")]
        hint = f"; datasets here: {', '.join(names)}" if names else "; the workspace has no datasets yet"
        raise NotFoundError(f"no dataset named {name!r}{hint}")
    return _info(conn, row)


def list_datasets(conn: sqlite3.Connection) -> list[DatasetInfo]:
    rows = conn.execute(f"SELECT {_DS_COLS} FROM datasets ORDER BY name").fetchall()
    return [_info(conn, r) for r in rows]


def delete_dataset(conn: sqlite3.Connection, name: str) -> None:
    info = get_dataset(conn, name)
    # Prompts made from this dataset's records keep their text but lose the link.
    conn.execute("UPDATE prompts SET record_id = NULL WHERE record_id IN "
                 "(SELECT id FROM records WHERE dataset_id = ?)", (info.id,))
    conn.execute("DELETE FROM snapshots WHERE dataset_id = ?", (info.id,))
    conn.execute("UPDATE records SET replaces_id = NULL WHERE dataset_id = ?", (info.id,))
    conn.execute("DELETE FROM records WHERE dataset_id = ?", (info.id,))
    conn.execute("DELETE FROM datasets WHERE id = ?", (info.id,))


# -- writing records -----------------------------------------------------------------------

_INSERT_SQL = (f"INSERT INTO records(dataset_id, {', '.join(ROW_COLUMNS)}) "
               f"VALUES ({', '.join('?' * (len(ROW_COLUMNS) + 1))})")


def insert_rows(conn: sqlite3.Connection, dataset_id: int, rows: Iterable[Sequence]) -> None:
    """Bulk-insert already-encoded rows, each a tuple in :data:`ROW_COLUMNS` order.

    This is the fast path the importer uses; values must be encoded for
    storage (messages as JSON text, labels as 0/1, tags as JSON text).
    """
    conn.executemany(_INSERT_SQL, ((dataset_id, *r) for r in rows))


def insert_columns(conn: sqlite3.Connection, dataset_id: int, columns: Sequence[str],
                   rows: Iterable[Sequence], **constants) -> None:
    """Bulk-insert rows that carry only ``columns``; ``constants`` fill the rest.

    Python's sqlite3 binds every parameter of every row one by one, which
    dominates bulk inserts; columns that are the same for the whole batch
    (dataset, source, split) are therefore written as SQL literals instead.
    Constants must be ints, floats, ``None`` or a split name.
    """
    for c in list(columns) + list(constants):
        if c not in ROW_COLUMNS:
            raise ValueError(f"unknown records column {c!r}")
    literals = []
    for name, value in constants.items():
        if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
            literals.append("NULL" if value is None else repr(value))
        elif name == "split" and value in SPLITS:
            literals.append(f"'{value}'")
        else:
            raise ValueError(f"constant {name}={value!r} cannot be inlined")
    names = ["dataset_id", *constants, *columns]
    sql = (f"INSERT INTO records({', '.join(names)}) VALUES "
           f"({', '.join([str(int(dataset_id)), *literals] + ['?'] * len(columns))})")
    conn.executemany(sql, rows)


def encode_record(rec: Record, *, source_id: Optional[int] = None, source_line: Optional[int] = None,
                  ranking_id: Optional[int] = None, candidate_id: Optional[int] = None,
                  replaces_id: Optional[int] = None, created_at: Optional[float] = None) -> tuple:
    """A :class:`Record` as a row tuple for :func:`insert_rows`."""
    values = []
    for name in CONTENT_FIELDS:
        v = getattr(rec, name)
        if name in TEXT_FIELDS:
            v = encode_text(v)
        elif name == "label" and v is not None:
            v = int(bool(v))
        values.append(v)
    tags = json.dumps(list(rec.tags), ensure_ascii=False) if rec.tags else None
    return (*values, tags, rec.split, source_id, source_line, ranking_id, candidate_id, replaces_id,
            created_at)


def add_record(conn: sqlite3.Connection, dataset_id: int, rec: Record, **lineage) -> int:
    """Insert one record and return its id."""
    cur = conn.execute(_INSERT_SQL, (dataset_id, *encode_record(rec, created_at=time.time(), **lineage)))
    touch(conn, dataset_id)
    return cur.lastrowid


def replace_record(conn: sqlite3.Connection, record_id: int, new: Record) -> int:
    """Edit a record: insert ``new`` as its replacement and soft-delete the original.

    Records are immutable so that snapshots keep what they froze; the
    replacement's lineage points back at the original (``replaces_id``).
    """
    row = conn.execute("SELECT dataset_id, split, deleted FROM records WHERE id = ?", (record_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no record #{record_id}")
    dataset_id, split, deleted = row
    if deleted:
        raise WorkbenchError(f"record #{record_id} is deleted; restore it before editing")
    new_id = conn.execute(_INSERT_SQL, (dataset_id, *encode_record(
        Record(**{**{f: getattr(new, f) for f in CONTENT_FIELDS}, "tags": new.tags, "split": split}),
        source_id=None, replaces_id=record_id, created_at=time.time()))).lastrowid
    conn.execute("UPDATE records SET deleted = 1 WHERE id = ?", (record_id,))
    touch(conn, dataset_id)
    return new_id


def set_deleted(conn: sqlite3.Connection, record_ids: Iterable[int], deleted: bool) -> int:
    """Soft-delete (or restore) records; returns how many changed."""
    ids = list(record_ids)
    changed = 0
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        changed += conn.execute(
            f"UPDATE records SET deleted = ? WHERE deleted != ? AND id IN ({','.join('?' * len(chunk))})",
            (int(deleted), int(deleted), *chunk)).rowcount
    return changed


def set_splits(conn: sqlite3.Connection, assignments: Iterable[tuple[int, Optional[str]]]) -> None:
    """Assign ``(record_id, split)`` pairs (split ``None`` clears it)."""
    def checked():
        for rid, split in assignments:
            if split is not None and split not in SPLITS:
                raise WorkbenchError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
            yield split, rid
    conn.executemany("UPDATE records SET split = ? WHERE id = ?", checked())


# -- reading records -----------------------------------------------------------------------

def _decode(row: tuple, style: str) -> Record:
    rid, split, deleted = row[0], row[1], row[2]
    vals = row[3:3 + len(CONTENT_FIELDS)]
    content = {}
    for name, v in zip(CONTENT_FIELDS, vals):
        if v is not None and name in TEXT_FIELDS:
            v = decode_text(v, "conversational" if name == "messages" else style)
        elif name == "label" and v is not None:
            v = bool(v)
        content[name] = v
    rest = row[3 + len(CONTENT_FIELDS):]
    tags = tuple(json.loads(rest[0])) if rest[0] else None
    lineage = Lineage(source_id=rest[1], source_kind=rest[2], path=rest[3], line=rest[4],
                      ranking_id=rest[5], candidate_id=rest[6], replaces_id=rest[7])
    return Record(**content, tags=tags, id=rid, split=split, deleted=bool(deleted), lineage=lineage)


def iter_records(conn: sqlite3.Connection, info: DatasetInfo, *, split: Optional[str] = None,
                 include_deleted: bool = False, page_size: int = 2000) -> Iterator[Record]:
    """Stream a dataset's records in id order, one page of SQL at a time."""
    where = "r.dataset_id = ? AND r.id > ?"
    if not include_deleted:
        where += " AND r.deleted = 0"
    if split is not None:
        where += " AND r.split = ?"
    last = 0
    while True:
        args = [info.id, last] + ([split] if split is not None else [])
        rows = conn.execute(f"{_SELECT} WHERE {where} ORDER BY r.id LIMIT {int(page_size)}", args).fetchall()
        if not rows:
            return
        for row in rows:
            yield _decode(row, info.style)
        last = rows[-1][0]


def get_record(conn: sqlite3.Connection, info: DatasetInfo, record_id: int) -> Record:
    row = conn.execute(f"{_SELECT} WHERE r.id = ? AND r.dataset_id = ?", (record_id, info.id)).fetchone()
    if row is None:
        raise NotFoundError(f"dataset {info.name!r} has no record #{record_id}")
    return _decode(row, info.style)


# -- snapshots -----------------------------------------------------------------------------

def content_hash(records: Iterable[Record]) -> tuple[str, int]:
    """SHA-256 over the canonical JSON of each record's split and content, in order."""
    h = hashlib.sha256()
    n = 0
    for rec in records:
        h.update(dumps_canonical({"split": rec.split, **rec.content()}).encode("utf-8"))
        h.update(b"\n")
        n += 1
    return h.hexdigest(), n


def freeze(conn: sqlite3.Connection, name: str, note: str = "") -> SnapshotInfo:
    """Freeze the dataset's current live records (and their splits) as a snapshot.

    The snapshot is identified by the content hash, so freezing unchanged
    content twice returns the existing snapshot.
    """
    info = get_dataset(conn, name)
    digest, n = content_hash(iter_records(conn, info))
    existing = conn.execute("SELECT id, created_at, note FROM snapshots WHERE dataset_id = ? AND hash = ?",
                            (info.id, digest)).fetchone()
    if existing:
        return SnapshotInfo(existing[0], info.name, digest, n, existing[2], existing[1])
    now = time.time()
    snap_id = conn.execute("INSERT INTO snapshots(dataset_id, hash, rows, note, created_at) VALUES (?,?,?,?,?)",
                           (info.id, digest, n, note, now)).lastrowid
    conn.execute(
        "INSERT INTO snapshot_records(snapshot_id, seq, record_id, split) "
        "SELECT ?, row_number() OVER (ORDER BY id), id, split FROM records "
        "WHERE dataset_id = ? AND deleted = 0", (snap_id, info.id))
    return SnapshotInfo(snap_id, info.name, digest, n, note, now)


def list_snapshots(conn: sqlite3.Connection, name: str) -> list[SnapshotInfo]:
    info = get_dataset(conn, name)
    return [SnapshotInfo(r[0], info.name, r[1], r[2], r[3], r[4]) for r in conn.execute(
        "SELECT id, hash, rows, note, created_at FROM snapshots WHERE dataset_id = ? ORDER BY id", (info.id,))]


def live_snapshot(conn: sqlite3.Connection, name: str) -> Optional[SnapshotInfo]:
    """The newest snapshot if it holds exactly the live rows with their splits (nothing added,
    deleted, edited or re-split since it was frozen), else ``None``. Records are immutable (an
    edit is a new record), so comparing ids and splits in order is comparing content; one pass."""
    snaps = list_snapshots(conn, name)
    if not snaps:
        return None
    newest = snaps[-1]
    info = get_dataset(conn, name)
    (same,) = conn.execute(
        "SELECT count(*) FROM (SELECT id, split, row_number() OVER (ORDER BY id) AS seq FROM records"
        " WHERE dataset_id = ? AND deleted = 0) l JOIN snapshot_records s"
        " ON s.snapshot_id = ? AND s.seq = l.seq AND s.record_id = l.id AND s.split IS l.split",
        (info.id, newest.id)).fetchone()
    return newest if same == newest.rows == info.rows else None


def find_snapshot(conn: sqlite3.Connection, name: str, hash_prefix: str) -> SnapshotInfo:
    """The snapshot of ``name`` whose hash starts with ``hash_prefix`` (at least 6 characters)."""
    if len(hash_prefix) < 6:
        raise WorkbenchError(f"snapshot {hash_prefix!r}: give at least 6 characters of the hash")
    matches = [s for s in list_snapshots(conn, name) if s.hash.startswith(hash_prefix.lower())]
    if not matches:
        raise NotFoundError(f"dataset {name!r} has no snapshot {hash_prefix!r}")
    if len(matches) > 1:
        raise WorkbenchError(f"snapshot {hash_prefix!r} is ambiguous in dataset {name!r}; give more characters")
    return matches[0]


def iter_snapshot(conn: sqlite3.Connection, info: DatasetInfo, snapshot: SnapshotInfo, *,
                  split: Optional[str] = None, page_size: int = 2000) -> Iterator[Record]:
    """Stream a snapshot's records in frozen order, with their frozen splits."""
    cols = _SELECT.replace("SELECT r.id, r.split,", "SELECT sr.seq, r.id, sr.split,")
    split_sql = "AND sr.split = ?" if split else ""
    last = 0
    while True:
        rows = conn.execute(
            f"{cols} JOIN snapshot_records sr ON sr.record_id = r.id "
            f"WHERE sr.snapshot_id = ? AND sr.seq > ? {split_sql} ORDER BY sr.seq LIMIT {int(page_size)}",
            [snapshot.id, last] + ([split] if split else [])).fetchall()
        if not rows:
            return
        for row in rows:
            rec = _decode(row[1:], info.style)
            yield Record(**{**rec.__dict__, "deleted": False})
        last = rows[-1][0]
