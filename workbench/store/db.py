"""SQLite connections and write transactions for a workspace.

Every connection runs in WAL mode with foreign keys on and
``synchronous=FULL``: a committed ranking survives a kill -9 of the process
and a power cut. Writes go through :func:`write_transaction`, which takes the
write lock up front (``BEGIN IMMEDIATE``) so two processes never deadlock
half-way through a transaction, and turns a lock wait that runs out into a
:class:`~workbench.errors.WorkspaceBusyError` with a message a person can act on.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import WorkspaceBusyError

#: How long a writer waits for another process's write lock before giving up.
DEFAULT_LOCK_TIMEOUT_S = 10.0


class WorkspaceConnection(sqlite3.Connection):
    """A connection that remembers how long it waits for the write lock."""
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S


def connect(path: Path | str, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
            read_only: bool = False) -> sqlite3.Connection:
    """Open ``path`` with the workspace's pragmas.

    The connection is in autocommit mode (``isolation_level=None``): statements
    outside :func:`write_transaction` commit on their own, and the module never
    opens implicit transactions behind the caller's back.
    """
    uri = f"file:{Path(path)}?mode=ro" if read_only else str(path)
    conn = sqlite3.connect(uri, uri=read_only, isolation_level=None,
                           timeout=lock_timeout_s, check_same_thread=False,
                           factory=WorkspaceConnection)
    conn.execute(f"PRAGMA busy_timeout = {int(lock_timeout_s * 1000)}")
    if not read_only:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # FULL: the WAL is fsynced at every commit, so a ranking the UI reported
    # as saved is on disk before the next item appears.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.lock_timeout_s = lock_timeout_s
    return conn


def _is_lock_error(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


#: How often a writer waiting for the lock looks again. SQLite's own busy handler naps
#: longer and longer (up to 100 ms) and so keeps missing the short gaps a chunked
#: import leaves between its transactions (see :mod:`workbench.store.staging`).
LOCK_POLL_MS = 1


def begin(conn: sqlite3.Connection, *, what: str = "workspace") -> None:
    """``BEGIN IMMEDIATE``: take the write lock now, or raise :class:`WorkspaceBusyError`.

    Waits up to the connection's lock timeout, looking every :data:`LOCK_POLL_MS`.
    """
    timeout = getattr(conn, "lock_timeout_s", DEFAULT_LOCK_TIMEOUT_S)
    started = time.monotonic()
    conn.execute(f"PRAGMA busy_timeout = {LOCK_POLL_MS}")
    try:
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                waited = time.monotonic() - started
                if not _is_lock_error(exc):
                    raise
                if waited >= timeout:
                    raise WorkspaceBusyError(
                        f"{what} is busy: another process is writing to it and kept the write lock "
                        f"for more than {waited:.1f} s; try again when it has finished") from exc
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")


@contextmanager
def write_transaction(conn: sqlite3.Connection, *, what: str = "workspace",
                      begun: bool = False) -> Iterator[sqlite3.Connection]:
    """Run the body as one all-or-nothing write transaction.

    Raises :class:`WorkspaceBusyError` when another process keeps the write
    lock for longer than the connection's lock timeout. Any exception in the
    body (including :class:`~workbench.errors.Cancelled` and
    ``KeyboardInterrupt``) rolls everything back. ``begun=True`` joins a
    transaction the caller opened with :func:`begin` (it is committed or
    rolled back here all the same).
    """
    if not begun:
        begin(conn, what=what)
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    else:
        try:
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if _is_lock_error(exc):
                raise WorkspaceBusyError(f"{what} is busy: could not commit ({exc})") from exc
            raise


@contextmanager
def lock_timeout(conn: sqlite3.Connection, seconds: float) -> Iterator[sqlite3.Connection]:
    """Inside the body, writes on ``conn`` wait at most ``seconds`` for the write lock
    (a GUI thread that must not freeze: it retries later instead)."""
    before = getattr(conn, "lock_timeout_s", DEFAULT_LOCK_TIMEOUT_S)
    conn.lock_timeout_s = seconds
    try:
        yield conn
    finally:
        conn.lock_timeout_s = before
        conn.execute(f"PRAGMA busy_timeout = {int(before * 1000)}")


def checkpoint_in_background(path: Path | str) -> threading.Thread:
    """Copy the WAL back into the database file on a private connection, off this thread.

    A PASSIVE checkpoint never blocks readers or writers; whatever it cannot
    copy now is copied by a later checkpoint. The thread is not a daemon, so a
    short-lived CLI process finishes it before exiting.
    """
    def work() -> None:
        try:
            # mode=rw: never re-create a workspace that was removed meanwhile.
            conn = sqlite3.connect(f"file:{Path(path)}?mode=rw", uri=True, timeout=1.0)
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                conn.close()
        except sqlite3.Error:
            pass  # housekeeping only: the data is already committed in the WAL

    thread = threading.Thread(target=work, name="wal-checkpoint")
    thread.start()
    return thread
