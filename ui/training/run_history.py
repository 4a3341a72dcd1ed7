"""The Runs page's history: the table model of a workspace's runs, and deleting a finished run.

:class:`RunHistoryModel` orders the runs as the page lists them (the queue
first, in order; then the running run; then the others, newest first) and
shows each run's status, duration, last step and key metric (filled in by
the page from :class:`~workbench.jobs.metrics.KeyMetricScanner`).
:func:`delete_run_folder` removes a run only when nothing was made from it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtWidgets import QApplication, QStyle

from workbench.jobs.supervisor import CANCELLED, COMPLETED, FAILED, QUEUED, RUNNING, RunInfo
from workbench.store.workspace import DB_NAME

from ..common.render import plain_tooltip
from ui.common.names import short_run_name  # noqa: F401 - re-exported for the Runs page


def _duration(seconds: Optional[float]) -> str:
    if seconds is None or seconds < 0:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


#: Bookkeeping stages the list leaves out unless asked (the GPU probe runs at every app start).
HIDDEN_STAGES = frozenset({"probe"})


class RunHistoryModel(QAbstractTableModel):
    """The workspace's runs: queued first (in queue order), then running, then newest first;
    runs of :data:`HIDDEN_STAGES` only with :meth:`set_show_hidden`."""

    COLUMNS = ("Run", "Stage", "Status", "Started", "Duration", "Step", "Key metric")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._runs: list[RunInfo] = []  # the listed ones, in order
        self._all: list[RunInfo] = []   # as given, hidden stages included
        self._show_hidden = False
        self._key: dict[str, str] = {}
        self._queue_time: dict[str, float] = {}
        self._queue_pos: dict[str, int] = {}

    # -- feeding --------------------------------------------------------------------------------
    def set_runs(self, runs: list[RunInfo]) -> bool:
        """Replace the runs; returns whether rows were added, removed or reordered (a reset)."""
        self._all = list(runs)
        ordered = self._ordered([r for r in runs if self._show_hidden or r.stage not in HIDDEN_STAGES])
        same = [r.run_id for r in ordered] == [r.run_id for r in self._runs]
        if same:
            self._runs = ordered
            if ordered:
                self.dataChanged.emit(self.index(0, 0), self.index(len(ordered) - 1, len(self.COLUMNS) - 1))
            return False
        self.beginResetModel()
        self._runs = ordered
        self.endResetModel()
        return True

    def set_extras(self, key_metrics: dict[str, str], queue_times: dict[str, float]) -> bool:
        """Set the key metric texts and queue times; returns whether the rows were reordered."""
        self._key = dict(key_metrics)
        self._queue_time = dict(queue_times)
        return self.set_runs(self._all)

    def set_show_hidden(self, show: bool) -> bool:
        """List the bookkeeping runs too (or not); returns whether the rows changed (a reset)."""
        self._show_hidden = bool(show)
        return self.set_runs(self._all)

    @property
    def hidden_count(self) -> int:
        """Runs left out of the list now."""
        return len(self._all) - len(self._runs)

    def _ordered(self, runs: list[RunInfo]) -> list[RunInfo]:
        queued = sorted((r for r in runs if r.status == QUEUED),
                        key=lambda r: (self._queue_time.get(r.run_id, r.created), r.run_id))
        self._queue_pos = {r.run_id: i + 1 for i, r in enumerate(queued)}
        running = [r for r in runs if r.status == RUNNING]
        rest = sorted((r for r in runs if r.status not in (QUEUED, RUNNING)),
                      key=lambda r: r.run_id, reverse=True)
        return queued + running + rest

    # -- reading --------------------------------------------------------------------------------
    def run_at(self, row: int) -> Optional[RunInfo]:
        return self._runs[row] if 0 <= row < len(self._runs) else None

    def row_of(self, run_id: str) -> int:
        return next((i for i, r in enumerate(self._runs) if r.run_id == run_id), -1)

    @property
    def runs(self) -> list[RunInfo]:
        return list(self._runs)

    def queue_position(self, run_id: str) -> Optional[int]:
        return self._queue_pos.get(run_id)

    def key_metric(self, run_id: str) -> str:
        return self._key.get(run_id, "")

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self._runs)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802 - Qt API
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole) -> Any:
        run = self.run_at(index.row())
        if run is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(run, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 2 and run.error:
                return plain_tooltip(run.error)  # an error quotes user data: never markup
            return plain_tooltip(f"{run.run_id}\n{run.path}")
        if role == Qt.ItemDataRole.DecorationRole and col == 2:
            return _status_icon(run.status)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (4, 5):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.UserRole:
            return run.run_id
        return None

    def _text(self, run: RunInfo, col: int) -> str:
        if col == 0:
            return short_run_name(run.run_id)
        if col == 1:
            return run.stage
        if col == 2:
            pos = self._queue_pos.get(run.run_id)
            return f"queued #{pos}" if pos is not None else run.status
        if col == 3:
            t = run.started or run.created
            return time.strftime("%b %d %H:%M", time.localtime(t)) if t else ""
        if col == 4:
            if run.started is None:
                return ""
            if run.active_s is not None:  # summed over resumes: a stopped run's idle time is not counted
                return _duration(run.active_s)
            end = run.ended if run.ended is not None else (time.time() if run.status == RUNNING else None)
            return _duration(end - run.started) if end is not None else ""
        if col == 5:
            return "" if run.last_step is None else str(run.last_step)
        if col == 6:
            return self._key.get(run.run_id, "")
        return ""


_STATUS_ICONS = {RUNNING: QStyle.StandardPixmap.SP_MediaPlay, COMPLETED: QStyle.StandardPixmap.SP_DialogApplyButton,
                 FAILED: QStyle.StandardPixmap.SP_MessageBoxCritical, CANCELLED: QStyle.StandardPixmap.SP_MediaStop,
                 QUEUED: QStyle.StandardPixmap.SP_FileDialogDetailedView}


def _status_icon(status: str):
    kind = _STATUS_ICONS.get(status)
    return QApplication.style().standardIcon(kind) if kind is not None else None



def delete_run_folder(runs_dir: Path, run_id: str) -> None:
    """Delete a finished run's folder, unless something was made from it.

    Refused (``ValueError`` with the reason) when another run's config names
    this run (it was trained from this run's checkpoints) or when candidates
    in the workspace were generated from its checkpoints: deleting it would
    break their lineage. The folder is first renamed to a hidden name (atomic:
    watchers never see half a run), then removed.
    """
    for entry in os.scandir(runs_dir):
        if entry.name == run_id or entry.name.startswith("."):
            continue
        try:
            text = Path(entry.path, "config.yaml").read_text(encoding="utf-8")
        except OSError:
            continue
        if run_id in text:
            raise ValueError(f"run {entry.name} was trained from this run's checkpoints; "
                             "delete that run first")
    db = runs_dir.parent / DB_NAME
    if db.is_file():
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)  # read-only: no migration, no lock
        try:
            like = f"%{run_id}%"
            (n,) = conn.execute("SELECT COUNT(*) FROM candidates WHERE checkpoint LIKE ? OR model LIKE ?",
                                (like, like)).fetchone()
        except sqlite3.DatabaseError:
            n = 0  # no candidates table (an empty or foreign file): nothing refers to the run
        finally:
            conn.close()
        if n:
            raise ValueError(f"{n} candidate response{'s were' if n != 1 else ' was'} generated from this "
                             "run's checkpoints (their lineage needs it)")
    hidden = runs_dir / f".deleted-{run_id}-{secrets.token_hex(3)}"
    os.rename(runs_dir / run_id, hidden)
    shutil.rmtree(hidden, ignore_errors=True)
