"""Imports that commit in bounded chunks and stay invisible until they are published.

An import used to be one write transaction: it held the workspace's write
lock for its whole run, so a ranking decision in another process (or
thread) waited for it and failed "busy". A staged import instead:

1. :func:`begin` — one short transaction reserves a dataset id, writes the
   import's ``sources`` row and a ``meta`` entry ``pending_import:<id>``
   naming the owner (host and process id).
2. The importer writes records under the reserved id in chunks of at most
   :data:`CHUNK_ROWS`, each its own short transaction (:meth:`Pending.write`),
   with foreign keys off on its connection: the records point at a dataset
   that does not exist yet, and everything that shows records reaches them
   through a ``datasets`` row, so nothing sees them.
3. :func:`publish` — one short transaction creates the ``datasets`` row with
   the reserved id and drops the ``meta`` entry: the whole import appears at
   once. Its commit runs with ``synchronous=FULL``, which also makes the
   chunks (committed with ``NORMAL``) durable: they are earlier in the same WAL.

An error or cancel calls :func:`discard`, which deletes what was written
(in chunks too). A process killed half-way leaves its ``meta`` entry behind;
:func:`clean_leftovers` (run when a workspace is opened) discards entries
whose owner process is gone, so a crash leaves nothing visible and nothing
that stands in the way of later imports.

A k-wise import (one that stores prompts, candidates and rankings, which
ranking queues read directly) cannot hide its rows this way: its first
ranking calls :meth:`Pending.hold`, and the rest of that import is one
transaction, as before.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from ..errors import WorkbenchError
from .db import begin, write_transaction

PREFIX = "pending_import:"
#: Records per chunk transaction: a few ms of inserts on 2 cores, so a
#: decision that meets the import's lock waits no longer than that.
CHUNK_ROWS = 2_000
#: The pause between two chunk transactions.
CHUNK_PAUSE_S = 0.003
_DELETE_CHUNK = 5_000


@dataclass
class Pending:
    """An import in progress: its reserved dataset id and its ``sources`` row."""
    conn: sqlite3.Connection
    dataset_id: int
    source_id: int
    what: str = "workspace"
    held: bool = False   # a long transaction is open (a k-wise import, see hold())

    @property
    def key(self) -> str:
        return f"{PREFIX}{self.dataset_id}"

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A chunk's transaction (or nothing, inside a held one)."""
        if self.held:
            yield self.conn
            return
        with write_transaction(self.conn, what=self.what):
            yield self.conn
        # A gap before the next chunk, so that a waiting writer (a decision, polling every
        # LOCK_POLL_MS) gets the lock instead of the next chunk taking it straight back.
        time.sleep(CHUNK_PAUSE_S)

    def hold(self) -> None:
        """From here to :func:`publish`, everything is one transaction (durable at its commit)."""
        if not self.held:
            self.conn.execute("PRAGMA synchronous = FULL")
            begin(self.conn, what=self.what)
            self.held = True

    @contextmanager
    def writing(self) -> Iterator["Pending"]:
        """Chunk writes: foreign keys off (the dataset row comes at publish), commits not fsynced
        (publish fsyncs them all)."""
        self.conn.execute("PRAGMA foreign_keys = OFF")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        try:
            yield self
        finally:
            if self.conn.in_transaction:   # an error inside a held transaction
                self.conn.execute("ROLLBACK")
            self.held = False
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA synchronous = FULL")


def next_dataset_id(conn: sqlite3.Connection) -> int:
    """The id for a new dataset: above every existing one and every id a running import reserved."""
    return conn.execute(
        "SELECT max(coalesce((SELECT max(id) FROM datasets), 0),"
        " coalesce((SELECT max(CAST(substr(key, ?) AS INTEGER)) FROM meta WHERE key LIKE ?), 0)) + 1",
        (len(PREFIX) + 1, PREFIX + "%")).fetchone()[0]


def begin_import(conn: sqlite3.Connection, *, what: str, path: str, fmt: str, mapping: str | None,
                 size_bytes: int) -> Pending:
    """Reserve a dataset id and write the import's ``sources`` row (one short transaction)."""
    with write_transaction(conn, what=what):
        source_id = conn.execute(
            "INSERT INTO sources(kind, path, format, mapping, size_bytes, created_at) VALUES ('import',?,?,?,?,?)",
            (path, fmt, mapping, size_bytes, time.time())).lastrowid
        dataset_id = next_dataset_id(conn)
        owner = {"host": socket.gethostname(), "pid": os.getpid(), "source_id": source_id,
                 "started_at": time.time()}
        conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (f"{PREFIX}{dataset_id}", json.dumps(owner)))
    return Pending(conn, dataset_id, source_id, what)


def publish(pending: Pending, *, name: str, kind: str, style: str, description: str,
            shape: str, detail: dict) -> None:
    """Make the import visible: one short transaction (or the end of the held one).

    Call it inside :meth:`Pending.writing`."""
    conn = pending.conn
    if not pending.held:
        conn.execute("PRAGMA synchronous = FULL")
    with write_transaction(conn, what=pending.what, begun=pending.held):
        pending.held = False
        if conn.execute("SELECT 1 FROM datasets WHERE name = ?", (name,)).fetchone():
            raise WorkbenchError(f"dataset {name!r} already exists (created while this import ran); "
                                 "choose another --name")
        now = time.time()
        conn.execute("INSERT INTO datasets(id, name, kind, style, description, created_at, updated_at)"
                     " VALUES (?,?,?,?,?,?,?)", (pending.dataset_id, name, kind, style, description, now, now))
        conn.execute("UPDATE sources SET shape = ?, detail = ? WHERE id = ?",
                     (shape, json.dumps(detail), pending.source_id))
        conn.execute("DELETE FROM meta WHERE key = ?", (pending.key,))


def discard_rows(pending: Pending) -> None:
    """Delete everything the import wrote so far (it may go on writing afresh)."""
    conn = pending.conn
    if pending.held and conn.in_transaction:
        conn.execute("ROLLBACK")
    pending.held = False
    _delete_rows(conn, pending.dataset_id, pending.source_id, what=pending.what)


def discard(pending: Pending) -> None:
    """Undo the whole import: its rows, its ``sources`` row and its ``meta`` entry."""
    discard_rows(pending)
    _forget(pending.conn, pending.dataset_id, pending.source_id, what=pending.what)


def _delete_rows(conn: sqlite3.Connection, dataset_id: int, source_id: int, *, what: str) -> None:
    fk = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = ON")   # candidates and rankings go with their prompts
    try:
        while True:
            with write_transaction(conn, what=what):
                n = conn.execute("DELETE FROM records WHERE id IN (SELECT id FROM records WHERE dataset_id = ?"
                                 " ORDER BY id LIMIT ?)", (dataset_id, _DELETE_CHUNK)).rowcount
            if n < _DELETE_CHUNK:
                break
            time.sleep(CHUNK_PAUSE_S)   # as between import chunks: a waiting decision goes first
        with write_transaction(conn, what=what):
            conn.execute("DELETE FROM rankings WHERE source_id = ?", (source_id,))
            conn.execute("DELETE FROM candidates WHERE source_id = ?", (source_id,))
            conn.execute("DELETE FROM prompts WHERE source_id = ?", (source_id,))
    finally:
        conn.execute(f"PRAGMA foreign_keys = {'ON' if fk else 'OFF'}")


def _forget(conn: sqlite3.Connection, dataset_id: int, source_id: int, *, what: str) -> None:
    with write_transaction(conn, what=what):
        conn.execute("DELETE FROM sources WHERE id = ?", (source_id,))
        conn.execute("DELETE FROM meta WHERE key = ?", (f"{PREFIX}{dataset_id}",))


def _owner_gone(owner: dict) -> bool:
    if owner.get("host") != socket.gethostname() or sys.platform == "win32":
        return False   # cannot tell from here (on Windows, os.kill would end the process)
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError, ValueError, KeyError, TypeError):
        return False
    return False


def clean_leftovers(conn: sqlite3.Connection, *, what: str = "workspace") -> int:
    """Discard imports whose process died before publishing them; return how many.

    Best effort: when it cannot write now, the leftovers (invisible) wait for the next open."""
    rows = conn.execute("SELECT key, value FROM meta WHERE key LIKE ?", (PREFIX + "%",)).fetchall()
    cleaned = 0
    for key, value in rows:
        try:
            owner = json.loads(value)
            dataset_id = int(key[len(PREFIX):])
        except (ValueError, TypeError):
            continue
        if not isinstance(owner, dict) or not _owner_gone(owner):
            continue
        if conn.execute("SELECT 1 FROM datasets WHERE id = ?", (dataset_id,)).fetchone():
            continue   # never touch a published dataset's rows (publish drops the entry, so: no such case)
        try:
            _delete_rows(conn, dataset_id, int(owner.get("source_id", -1)), what=what)
            _forget(conn, dataset_id, int(owner.get("source_id", -1)), what=what)
        except (sqlite3.Error, WorkbenchError):
            break   # busy, a full disk, a read-only folder: invisible anyway, try again at the next open
        cleaned += 1
    return cleaned


def pending_dataset_ids(conn: sqlite3.Connection) -> list[int]:
    """Dataset ids reserved by imports that are not published (yet)."""
    return [int(k[len(PREFIX):]) for (k,) in conn.execute("SELECT key FROM meta WHERE key LIKE ?",
                                                          (PREFIX + "%",))]
