"""A workspace: one folder holding ``workspace.sqlite``, ``runs/`` and ``models/``.

Open one with :meth:`Workspace.open` (an existing workspace) or
:meth:`Workspace.init` (create it, or open it if it is already there).
Several processes may open the same workspace: SQLite's WAL mode lets
readers run beside one writer, and writers queue on the write lock
(:func:`~workbench.store.db.write_transaction`).
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from ..errors import DiskFullError, WorkspaceError
from . import db, migrations, staging

DB_NAME = "workspace.sqlite"
SUBDIRS = ("runs", "models")


def default_workspace_dir() -> Path:
    """The per-user default workspace, in the platform's user data folder."""
    return Path(platformdirs.user_data_dir("rlhf-workbench", appauthor=False)) / "default-workspace"


@dataclass(frozen=True)
class WorkspaceInfo:
    path: str
    schema_version: int
    datasets: int
    records: int
    prompts: int
    candidates: int
    rankings: int
    snapshots: int
    runs: int
    size_bytes: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class Workspace:
    """An open workspace folder.

    ``ws.conn`` is a connection for the thread that opened the workspace;
    other threads call :meth:`connect` for their own (SQLite connections
    must not be shared between threads that run statements concurrently).
    """

    def __init__(self, root: Path, *, lock_timeout_s: float = db.DEFAULT_LOCK_TIMEOUT_S,
                 read_only: str | None = None):
        self.root = Path(root).resolve()
        self.lock_timeout_s = lock_timeout_s
        #: Why this workspace is open for reading only (``None``: it is writable). See :meth:`open`.
        self.read_only = read_only
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._background: list[threading.Thread] = []

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def init(cls, root: Path | str, **kwargs) -> "Workspace":
        """Create the workspace folder (or open it if it exists) and migrate it."""
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"{root}: exists and is not a folder")
        if (root / DB_NAME).is_file():
            return cls.open(root, **kwargs)
        try:
            root.mkdir(parents=True, exist_ok=True)
            for sub in SUBDIRS:
                (root / sub).mkdir(exist_ok=True)
        except OSError as exc:
            raise db.explain(exc, root / DB_NAME) or WorkspaceError(
                f"{root}: cannot create the workspace ({exc.strerror or exc})") from None
        ws = cls(root, **kwargs)
        ws._prepare()
        return ws

    @classmethod
    def open(cls, root: Path | str, **kwargs) -> "Workspace":
        """Open an existing workspace, applying pending migrations.

        A workspace that cannot be written (a read-only mount, a folder or
        file without write permission, a full disk) opens for reading: its
        :attr:`read_only` says why, and every write raises
        :class:`~workbench.errors.WorkspaceReadOnlyError` with that reason.
        """
        root = Path(root)
        if not (root / DB_NAME).is_file():
            raise WorkspaceError(
                f"{root}: not a workspace (no {DB_NAME}); create one with "
                f"'rlhf-workbench workspace init {root}'")
        reason = kwargs.pop("read_only", None) or db.unwritable_reason(root / DB_NAME)
        if reason is None:
            ws = cls(root, **kwargs)
            try:
                for sub in SUBDIRS:
                    (ws.root / sub).mkdir(exist_ok=True)
                ws._prepare()
                return ws
            except (DiskFullError, OSError) as exc:
                if not db.is_disk_full(exc.__cause__ or exc, root):
                    raise
                ws.close()
                reason = db.disk_full_message(ws.root)
        ws = cls(root, read_only=reason, **kwargs)
        ws._prepare()
        return ws

    def _prepare(self) -> None:
        """Migrate, and discard what an import killed half-way left behind (invisible, but in the way)."""
        try:
            if self.read_only:
                version = migrations.schema_version(self.conn)
                if version < migrations.LATEST_VERSION:
                    raise WorkspaceError(
                        f"{self.root}: this workspace needs an upgrade (schema v{version} to "
                        f"v{migrations.LATEST_VERSION}) but cannot be written: {self.read_only}")
                migrations.migrate(self.conn)   # refuses a workspace newer than this app
                return
            migrations.migrate(self.conn)
            staging.clean_leftovers(self.conn, what=f"workspace {self.root}")
        except sqlite3.Error as exc:
            self.close()
            raise db.explain(exc, self.db_path) or WorkspaceError(f"{self.db_path}: {exc}") from exc
        except WorkspaceError:
            self.close()
            raise

    # -- connections ---------------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def conn(self) -> sqlite3.Connection:
        with self._lock:
            if self._conn is None:
                self._conn = self.connect()
            return self._conn

    def connect(self) -> sqlite3.Connection:
        """A new connection to this workspace's database."""
        return db.connect(self.db_path, lock_timeout_s=self.lock_timeout_s, read_only=self.read_only)

    def transaction(self, conn: sqlite3.Connection | None = None):
        """A write transaction on ``conn`` (default: :attr:`conn`)."""
        return db.write_transaction(conn or self.conn, what=f"workspace {self.root}")

    def add_background(self, thread: threading.Thread) -> None:
        """Track housekeeping work (e.g. a WAL checkpoint) that :meth:`close` waits for."""
        self._background = [t for t in self._background if t.is_alive()] + [thread]

    def close(self) -> None:
        for thread in self._background:
            thread.join()
        self._background = []
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- summary -------------------------------------------------------------------------
    def info(self) -> WorkspaceInfo:
        c = self.conn

        def count(sql: str) -> int:
            return c.execute(sql).fetchone()[0]

        size = sum(p.stat().st_size for p in self.root.glob(DB_NAME + "*") if p.is_file())
        runs = sum(1 for p in self.runs_dir.iterdir() if p.is_dir()) if self.runs_dir.exists() else 0
        return WorkspaceInfo(
            path=str(self.root),
            schema_version=migrations.schema_version(c),
            datasets=count("SELECT count(*) FROM datasets"),
            records=count("SELECT count(*) FROM records WHERE deleted = 0") - sum(
                count(f"SELECT count(*) FROM records WHERE dataset_id = {i} AND deleted = 0")
                for i in staging.pending_dataset_ids(c)),   # an import in progress is not there yet
            prompts=count("SELECT count(*) FROM prompts"),
            candidates=count("SELECT count(*) FROM candidates"),
            rankings=count("SELECT count(*) FROM rankings"),
            snapshots=count("SELECT count(*) FROM snapshots"),
            runs=runs,
            size_bytes=size,
        )

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` for a healthy database."""
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]
