"""Learn the machine's GPU without importing torch in the GUI process.

:class:`GpuProbe` starts the ``probe`` job (:mod:`workbench.jobs.probe`) in
a child process through the workspace's supervisor (``queue=False``: it
runs beside a training job, it does not wait behind it), waits for it on a
worker thread and reports the job's ``probe.json`` as a dict. The probe
imports torch and bitsandbytes, a few seconds of CPU, so the window starts
it a little after it is shown rather than during start-up.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, Signal

from workbench.errors import Cancelled, WorkbenchError

from .common.worker import Task, run_in_thread

#: The file the probe job writes (``workbench.jobs.probe.PROBE_FILE``; that
#: module imports torch at its top, so the name is repeated here).
PROBE_FILE = "probe.json"


class GpuProbe(QObject):
    """One probe at a time; ``finished(info)`` or ``failed(message)`` when it ends.

    ``info`` is the probe's dict (``gpu_name``, ``free_memory``,
    ``total_memory``, ``device_count``, ``torch``, ...; see
    :func:`workbench.jobs.probe.probe_device`) plus ``"run_id"``.
    """

    finished = Signal(dict)
    failed = Signal(str)

    def __init__(self, parent: Optional[QObject] = None, *, timeout_s: float = 180.0) -> None:
        super().__init__(parent)
        self._timeout_s = timeout_s
        self._task: Optional[Task] = None  # the current probe
        self._running: set[Task] = set()  # every worker not finished yet (stopped ones too)
        self._root: Optional[Path] = None

    @property
    def running(self) -> bool:
        return self._task is not None and self._task.running

    @property
    def root(self) -> Optional[Path]:
        """The workspace the current (or last) probe runs in."""
        return self._root

    def start(self, root: Path) -> None:
        """Probe from the workspace at ``root`` (cancels a probe still running)."""
        self.stop(wait_ms=0)
        self._root = root
        timeout_s = self._timeout_s

        def work(progress, cancel):  # noqa: ARG001 - worker signature
            from workbench.jobs.supervisor import COMPLETED, TERMINAL, Supervisor

            sup = Supervisor(root)
            handle = sup.start("probe", {}, queue=False)
            deadline = time.monotonic() + timeout_s
            while True:
                info = handle.info()
                if info.status in TERMINAL and not info.alive:
                    break
                if cancel.cancelled or time.monotonic() > deadline:
                    sup.cancel(handle.run_id, timeout=0.5, term_timeout=1.0, kill_timeout=2.0)
                    if cancel.cancelled:
                        raise Cancelled("GPU probe cancelled")
                    raise WorkbenchError(f"the GPU probe did not finish within {timeout_s:g} s")
                time.sleep(0.1)  # a worker thread waiting on a child process, not the GUI
            if info.status != COMPLETED:
                raise WorkbenchError(f"the GPU probe {info.status}: {info.error or 'no details'} "
                                     f"(see {handle.path / 'stderr.log'})")
            data = json.loads((handle.path / PROBE_FILE).read_text(encoding="utf-8"))
            sup.prune("probe", keep=1)  # one probe per workspace open: keep only this one
            return {**data, "run_id": handle.run_id}

        task = run_in_thread(work, parent=self)
        task.succeeded.connect(lambda info, t=task: self._on_task_succeeded(t, info))
        task.failed.connect(lambda exc, t=task: self._on_task_failed(t, exc))
        self._running.add(task)
        task.done.connect(lambda t=task: self._running.discard(t))
        task.done.connect(task.deleteLater)
        self._task = task

    def stop(self, wait_ms: int = 10000) -> None:
        """Cancel the running probe (the worker stops its job) and wait up to ``wait_ms``
        for every worker still running; with 0 they finish in the background, their
        results ignored. Call with a wait before the window goes away."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        if wait_ms > 0:
            for other in list(self._running):
                other.cancel()
                other.wait(wait_ms)

    def _on_task_succeeded(self, task: Task, info: dict) -> None:
        if task is self._task:  # a stopped probe's late result is not news
            self.finished.emit(info)

    def _on_task_failed(self, task: Task, exc: BaseException) -> None:
        if task is self._task:
            self.failed.emit(str(exc))
