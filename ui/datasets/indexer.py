"""Keeps the workspace's search index caught up, off the GUI thread.

:class:`SearchIndexer` runs :func:`workbench.store.search.catch_up` on a
worker thread (its own connection) after a workspace opens and after an
import, reporting progress. When another writer holds the write lock (a
long import in another process), it retries a little later instead of
failing; a second request while it runs is folded into the running one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, QTimer, Signal

from workbench.errors import WorkspaceBusyError
from workbench.store import db, search
from workbench.store.workspace import DB_NAME

from ..common.worker import Task, run_in_thread

RETRY_MS = 3000


class SearchIndexer(QObject):
    """Background catch-up of the search index of one workspace."""

    progressed = Signal(float, str)
    #: Indexing finished: how many records were added (0 when already up to date).
    finished = Signal(int)
    failed = Signal(str)

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._root: Optional[Path] = None
        self._task: Optional[Task] = None
        self._again = False
        self._retry = QTimer(self)
        self._retry.setSingleShot(True)
        self._retry.setInterval(RETRY_MS)
        self._retry.timeout.connect(self.start)

    @property
    def running(self) -> bool:
        return self._task is not None and self._task.running

    def set_workspace(self, root: Optional[Path]) -> None:
        self.stop()
        self._root = Path(root) if root is not None else None

    def start(self) -> None:
        """Index what is pending now (or right after the run in progress)."""
        root = self._root
        if root is None:
            return
        if self.running:
            self._again = True
            return

        def work(progress, cancel):
            conn = db.connect(root / DB_NAME, lock_timeout_s=2.0)
            try:
                if search.pending(conn) == 0:
                    return 0
                return search.catch_up(conn, progress, cancel)
            finally:
                conn.close()

        self._task = run_in_thread(work, parent=self, on_success=self._on_succeeded,
                                   on_failure=self._on_failed, on_progress=self.progressed.emit)
        self._task.done.connect(self._on_done)

    def stop(self) -> None:
        """Cancel and wait (workspace change or shutdown); what was indexed stays indexed."""
        self._retry.stop()
        self._again = False
        if self._task is not None:
            self._task.cancel()
            self._task.wait(30_000)
            self._task = None

    def _on_succeeded(self, added: int) -> None:
        self.finished.emit(added)

    def _on_failed(self, exc: BaseException) -> None:
        if isinstance(exc, WorkspaceBusyError):
            self._retry.start()   # an import holds the write lock: try again shortly
        else:
            self.failed.emit(f"search index: {exc}")

    def _on_done(self) -> None:
        if self._again:
            self._again = False
            self.start()
