"""SQLite connections and write transactions for a workspace.

Every connection runs in WAL mode with foreign keys on and
``synchronous=FULL``: a committed ranking survives a kill -9 of the process
and a power cut. Writes go through :func:`write_transaction`, which takes the
write lock up front (``BEGIN IMMEDIATE``) so two processes never deadlock
half-way through a transaction, and turns a lock wait that runs out into a
:class:`~workbench.errors.WorkspaceBusyError` with a message a person can act on.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import DiskFullError, WorkspaceBusyError, WorkspaceError, WorkspaceReadOnlyError

#: How long a writer waits for another process's write lock before giving up.
DEFAULT_LOCK_TIMEOUT_S = 10.0


class WorkspaceConnection(sqlite3.Connection):
    """A connection that remembers how long it waits for the write lock, and its WAL file.

    ``wal_inode`` is the WAL file this connection writes to (SQLite keeps it
    open); ``wal_lost`` is set once that file was found deleted or replaced
    under it (see :func:`check_wal`), after which every write is refused.
    """
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
    db_path: Path | None = None
    wal_inode: int | None = None
    wal_lost: str | None = None
    read_only: str | None = None


def connect(path: Path | str, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
            read_only: bool | str | None = False) -> sqlite3.Connection:
    """Open ``path`` with the workspace's pragmas.

    The connection is in autocommit mode (``isolation_level=None``): statements
    outside :func:`write_transaction` commit on their own, and the module never
    opens implicit transactions behind the caller's back.

    ``read_only`` (true, or the reason as text) opens with ``mode=ro``, and
    also ``immutable=1`` when the WAL holds nothing (SQLite would otherwise
    need to create the ``-shm`` file, which a read-only folder or a full disk
    does not allow); writes then raise :class:`WorkspaceReadOnlyError`.
    """
    if not read_only and Path(path).exists():
        read_only = unwritable_reason(path)   # a read-only mount or folder: read it, do not fail
    if read_only:
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        if _size(wal_path(path)) == 0:
            uri += "&immutable=1"
    else:
        uri = str(path)
    conn = sqlite3.connect(uri, uri=bool(read_only), isolation_level=None,
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
    if read_only:
        conn.read_only = read_only if isinstance(read_only, str) else "it was opened read-only"
    else:
        conn.db_path = Path(path)
        conn.wal_inode = _wal_inode(conn.db_path)
    return conn


def unwritable_reason(db_path: Path | str) -> str | None:
    """Why the workspace database at ``db_path`` cannot be written, or ``None`` if it can.

    SQLite needs to write the database file and to create its ``-wal`` and
    ``-shm`` files next to it.
    """
    db_path = Path(db_path)
    folder = db_path.parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"{folder} is on a read-only file system"
    except (OSError, AttributeError):
        pass
    for p in (folder, db_path):
        if p.exists() and not os.access(p, os.W_OK):
            return f"no permission to write {p}"
    return None


def wal_path(db_path: Path | str) -> Path:
    """The write-ahead log file SQLite keeps beside ``db_path``."""
    return Path(str(db_path) + "-wal")


def _wal_inode(db_path: Path) -> int | None:
    try:
        st = os.stat(wal_path(db_path))
    except OSError:
        return None
    return st.st_ino


def check_wal(conn: sqlite3.Connection) -> None:
    """After a commit: is the WAL this connection wrote to still the workspace's WAL file?

    SQLite keeps writing to its open WAL file after someone deleted it (a
    clean-up script, a sync tool): commits then go to a file no other
    process can see, and are lost when this process dies. Checked by the
    file's inode (one ``stat`` per commit). When it is gone, what the WAL
    holds is copied into the database file (a checkpoint, so this change is
    on disk after all where that works), and :class:`WorkspaceError` is
    raised; later writes on this connection are refused with the same text.
    """
    path = getattr(conn, "db_path", None)
    if path is None:
        return
    now = _wal_inode(path)
    if now is not None and conn.wal_inode in (None, now):
        conn.wal_inode = now
        return
    try:
        busy, _log, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        saved = busy == 0
    except sqlite3.Error:
        saved = False
    conn.wal_lost = (
        f"{wal_path(path)} was deleted while the workspace was open, so changes were going to a file "
        + ("no other process sees; they were copied into the database file now"
           if saved else "that is lost when this process ends: the last changes may not be on disk")
        + "; close every window and command using this workspace, then open it again")
    raise WorkspaceError(conn.wal_lost)


def explain(exc: BaseException, db_path: Path | str) -> WorkspaceError | None:
    """A one-line :class:`WorkspaceError` saying what an SQLite or OS error on the workspace
    database ``db_path`` means for a person, or ``None`` when it is none of the known conditions."""
    db_path = Path(db_path)
    text = str(exc).lower()
    shm = Path(str(db_path) + "-shm")
    if is_disk_full(exc, db_path.parent):
        return DiskFullError(disk_full_message(db_path.parent))
    why = unwritable_reason(db_path) if "unable to open" in text else None
    if why and _size(wal_path(db_path)) > 0 and not shm.exists():
        return WorkspaceReadOnlyError(
            f"{wal_path(db_path)} holds changes not yet copied into {db_path.name}, and they cannot be read "
            f"without creating {shm.name} ({why}): copy the workspace folder somewhere writable and open the copy")
    if "readonly" in text or "read-only" in text or (
            isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM)):
        why = unwritable_reason(db_path) or (f"{exc.filename}: {exc.strerror}" if isinstance(exc, OSError)
                                             else "SQLite says so")
        return WorkspaceReadOnlyError(f"workspace {db_path.parent} is read-only ({why}); nothing was changed")
    if "disk i/o error" in text and _size(shm) >= 32768 and db_path.exists() and _size(wal_path(db_path)) == 0:
        # (opening re-creates an empty WAL file, so "missing" is "empty" by the time we look)
        return WorkspaceError(
            f"{wal_path(db_path)} is missing while {shm.name} says it holds changes: it was deleted while "
            f"the workspace was open; close every window and command using {db_path.parent}, then open it "
            "again (changes made since the deletion may be lost)")
    return None


def free_mb(folder: Path | str) -> float:
    """Free space on the disk holding ``folder``, in MB (-1 if it cannot be read)."""
    try:
        return shutil.disk_usage(folder).free / 1e6
    except OSError:
        return -1.0


def disk_full_message(folder: Path | str) -> str:
    """"the disk holding FOLDER is full (N MB free)", for a no-space error of any writer."""
    free = free_mb(folder)
    shown = "?" if free < 0 else (f"{free:.0f}" if free >= 10 else f"{free:.1f}")
    return f"the disk holding {folder} is full ({shown} MB free)"


def is_disk_full(exc: BaseException, folder: Path | str) -> bool:
    """Whether ``exc`` (SQLite's or the OS's) means there is no room left on ``folder``'s disk."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" or "database or disk is full" in text:
        return True
    # With no byte free, SQLite cannot even size its shared-memory index: "disk I/O error".
    return isinstance(exc, sqlite3.Error) and "disk i/o error" in text and 0 <= free_mb(folder) < 1


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


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
    if getattr(conn, "wal_lost", None):
        raise WorkspaceError(conn.wal_lost)
    if getattr(conn, "read_only", None):
        raise WorkspaceReadOnlyError(f"{what} is read-only ({conn.read_only}); nothing was changed")
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
        check_wal(conn)   # never report a commit as done that went to a deleted WAL


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
