"""Watch a workspace's job queue from the GUI without blocking it.

:class:`JobMonitor` owns one :class:`workbench.jobs.supervisor.Supervisor`
and, on a timer, calls ``poll()`` (which starts the next queued run when the
GPU is free: queued runs only advance while some supervisor polls) and
``list_runs()`` on a worker thread; the first ``list_runs`` reads every
events file whole, which must not stall the window. Results arrive as
``runs_changed(list[RunInfo])`` on the GUI thread. Share one monitor per
window (``MainWindow.job_monitor``) rather than building one per panel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, QTimer, Signal

from workbench.jobs.supervisor import QUEUED, RUNNING, RunInfo, Supervisor

from .worker import Task, run_in_thread


class JobMonitor(QObject):
    """Periodic, off-thread view of the runs of one workspace."""

    runs_changed = Signal(list)  # list[RunInfo], oldest first
    failed = Signal(str)

    def __init__(self, parent: Optional[QObject] = None, *, interval_ms: int = 1000) -> None:
        super().__init__(parent)
        self._supervisor: Optional[Supervisor] = None
        self._runs: list[RunInfo] = []
        self._task: Optional[Task] = None
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.refresh)

    @property
    def supervisor(self) -> Optional[Supervisor]:
        """The supervisor of the current workspace (``None`` when none is open)."""
        return self._supervisor

    @property
    def runs(self) -> list[RunInfo]:
        """The runs as of the last refresh."""
        return list(self._runs)

    def active_runs(self) -> list[RunInfo]:
        """Running first, then queued (what the status bar shows)."""
        running = [r for r in self._runs if r.status == RUNNING]
        return running + [r for r in self._runs if r.status == QUEUED]

    def set_workspace(self, root: Optional[Path]) -> None:
        self._supervisor = Supervisor(root) if root is not None else None
        self._runs = []
        self.runs_changed.emit([])
        if self._supervisor is None:
            self._timer.stop()
        else:
            self._timer.start()
            self.refresh()

    def refresh(self) -> None:
        """Poll the queue and re-list runs now (skipped while a refresh runs)."""
        sup = self._supervisor
        if sup is None or (self._task is not None and self._task.running):
            return

        def work(progress, cancel):  # noqa: ARG001 - worker signature
            sup.poll()
            return sup, sup.list_runs()

        self._task = run_in_thread(work, parent=self, on_success=self._on_listed,
                                   on_failure=lambda exc: self.failed.emit(str(exc)))

    def stop(self) -> None:
        self._timer.stop()
        if self._task is not None:
            self._task.wait(5000)

    def _on_listed(self, result) -> None:
        sup, runs = result
        if sup is not self._supervisor:
            return  # the workspace changed while this refresh ran
        self._runs = runs
        self.runs_changed.emit(runs)
