"""The one Qt-side helper for in-process background work (DESIGN.md section 6).

:func:`run_in_thread` runs a core function ``fn(progress, cancel)`` on a
worker thread and reports back through Qt signals delivered on the GUI
thread. The contract:

- ``fn`` gets a plain ``progress(fraction, message)`` callable and a
  :class:`workbench.progress.CancelToken`; it must never touch a widget.
- ``progress`` is throttled (at most ~20 signals a second, plus the last
  one), so a core loop may call it per row without flooding the event loop.
- Exactly one of ``succeeded(result)``, ``failed(exception)`` or
  ``cancelled()`` is emitted, then ``done()``. A core function that raises
  :class:`workbench.errors.Cancelled` ends as ``cancelled``.
- Keep a reference to the returned :class:`Task` (or give it a parent)
  until ``done`` to hear from it. Dropping or deleting the Task early is
  safe: the worker thread belongs to the application object until it
  ends and then deletes itself, so closing a page (or a test tearing one
  down) while a worker runs never destroys a running ``QThread`` (which
  Qt answers by aborting the process).

Work that needs torch or a GPU does not belong here: it runs in a job
process (:mod:`workbench.jobs`), the GUI only tails its events.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal

from workbench.errors import Cancelled
from workbench.progress import CancelToken, ProgressFn

TaskFn = Callable[[ProgressFn, CancelToken], Any]

_MIN_PROGRESS_INTERVAL_S = 0.05


class _TaskThread(QThread):
    # Signals live on the QThread object, which belongs to the GUI thread:
    # emitting them from run() queues the call onto the GUI thread.
    progressed = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(object)
    cancelled = Signal()

    def __init__(self, fn: TaskFn, cancel: CancelToken, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._fn = fn
        self._cancel = cancel
        self._last_emit = 0.0

    def _progress(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if fraction >= 1.0 or now - self._last_emit >= _MIN_PROGRESS_INTERVAL_S:
            self._last_emit = now
            self.progressed.emit(float(fraction), str(message))

    def run(self) -> None:  # noqa: D401 - QThread entry point
        try:
            result = self._fn(self._progress, self._cancel)
        except Cancelled:
            self.cancelled.emit()
        except BaseException as exc:  # noqa: BLE001 - reported to the GUI, never lost
            self.failed.emit(exc)
        else:
            if self._cancel.cancelled:
                self.cancelled.emit()
            else:
                self.succeeded.emit(result)


class Task(QObject):
    """A running background call; see the module docstring for the contract."""

    progressed = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    done = Signal()

    def __init__(self, fn: TaskFn, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.token = CancelToken()
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.finished_ok = False
        self._running = False
        self._ended = False
        # Owned by the application, not by this Task or by Python: a Task deleted with its
        # page, or garbage-collected, must not take a running thread with it.
        self._thread = _TaskThread(fn, self.token, QCoreApplication.instance())
        self._thread.progressed.connect(self.progressed)
        self._thread.succeeded.connect(self._on_thread_succeeded)
        self._thread.failed.connect(self._on_thread_failed)
        self._thread.cancelled.connect(self._on_thread_cancelled)
        self._thread.finished.connect(self._on_thread_finished)
        self._thread.finished.connect(self._thread.deleteLater)  # queued: runs on the GUI thread

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> "Task":
        self._running = True
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the core function to stop at its next safe point."""
        self.token.cancel()

    def wait(self, timeout_ms: int = -1) -> bool:
        """Block until the thread ends (tests and shutdown only)."""
        if self._ended:
            return True
        try:
            return self._thread.wait() if timeout_ms < 0 else self._thread.wait(timeout_ms)
        except RuntimeError:  # the thread already ended and deleted itself
            return True

    def _on_thread_succeeded(self, result: Any) -> None:
        self.result = result
        self.finished_ok = True
        self.succeeded.emit(result)

    def _on_thread_failed(self, exc: BaseException) -> None:
        self.error = exc
        self.failed.emit(exc)

    def _on_thread_cancelled(self) -> None:
        self.cancelled.emit()

    def _on_thread_finished(self) -> None:
        self._ended = True
        self._running = False
        self.done.emit()


def wait_for_workers(timeout_ms: int = 10000) -> bool:
    """Cancel-free wait for every worker thread still running (the window is closing, so the
    application object that owns them is about to go). True when all ended in time."""
    app = QCoreApplication.instance()
    if app is None:
        return True
    deadline = time.monotonic() + timeout_ms / 1000
    ok = True
    for thread in app.findChildren(_TaskThread):
        try:
            ok = thread.wait(max(0, int((deadline - time.monotonic()) * 1000))) and ok
        except RuntimeError:  # deleted meanwhile
            pass
    return ok


def run_in_thread(fn: TaskFn, *, parent: Optional[QObject] = None,
                  on_success: Optional[Callable[[Any], None]] = None,
                  on_failure: Optional[Callable[[BaseException], None]] = None,
                  on_progress: Optional[Callable[[float, str], None]] = None,
                  on_cancelled: Optional[Callable[[], None]] = None) -> Task:
    """Start ``fn(progress, cancel)`` on a worker thread and return its :class:`Task`."""
    task = Task(fn, parent)
    if on_success is not None:
        task.succeeded.connect(on_success)
    if on_failure is not None:
        task.failed.connect(on_failure)
    if on_progress is not None:
        task.progressed.connect(on_progress)
    if on_cancelled is not None:
        task.cancelled.connect(on_cancelled)
    return task.start()
