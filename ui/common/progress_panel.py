"""A status line, progress bar and Cancel button over one background task,
plus the small helpers dialogs share around it (non-blocking confirmation,
error text, a framed result label).

Built for the dataset dialogs; any page can use it. See
:mod:`ui.common.worker` for the threading contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QDialog, QFrame, QHBoxLayout, QLabel, QMessageBox, QProgressBar, QPushButton,
                               QVBoxLayout, QWidget)

from workbench.progress import CancelToken, ProgressFn
from workbench.store.workspace import Workspace

from .worker import Task, run_in_thread

# Tasks stay referenced here until their thread ends, so closing (and deleting) a
# dialog while its worker runs never destroys a running QThread.
_LIVE_TASKS: set[Task] = set()


def with_workspace(root: Path, fn: Callable[[Workspace], Any]) -> Any:
    """Run ``fn(ws)`` on a workspace opened (and closed) by the calling thread."""
    ws = Workspace.open(root)
    try:
        return fn(ws)
    finally:
        ws.close()


def error_text(exc: BaseException) -> str:
    """What to show for a failed task: workbench errors verbatim, others with their type."""
    from workbench.errors import WorkbenchError
    if isinstance(exc, WorkbenchError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def confirm(parent: QWidget, title: str, text: str, informative: str, yes_text: str,
            on_yes: Callable[[], None]) -> QMessageBox:
    """Ask a yes/no question without a nested event loop; call ``on_yes`` if confirmed.

    The box is window-modal and opened with ``open()``, so the caller (and a
    test, through the returned box or ``QApplication.activeModalWidget()``)
    keeps the event loop.
    """
    box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
    box.setInformativeText(informative)
    yes = box.addButton(yes_text, QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(yes)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def _on_finished(_result: int) -> None:
        if box.clickedButton() is yes:
            on_yes()

    box.finished.connect(_on_finished)
    box.open()
    return box


class ProgressPanel(QWidget):
    """A status line, a progress bar and a Cancel button over one background task.

    :meth:`run` starts ``fn(progress, cancel)`` with :func:`run_in_thread`
    and calls back on the GUI thread. Functions that report no progress show
    a busy bar until they end.
    """

    done = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop at the next safe point; nothing half-done is kept")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.status)
        layout.addLayout(row)
        self.task: Optional[Task] = None
        self._callbacks: dict[str, Optional[Callable]] = {}
        self._outcome: tuple[str, Any] = ("cancelled", None)
        self._set_running(False)

    @property
    def busy(self) -> bool:
        return self.task is not None

    def run(self, fn: Callable[[ProgressFn, CancelToken], Any], message: str, *,
            on_success: Callable[[Any], None], on_failure: Optional[Callable[[BaseException], None]] = None,
            on_cancelled: Optional[Callable[[], None]] = None, cancellable: bool = True) -> Task:
        if self.task is not None:
            raise RuntimeError("a task is already running in this panel")
        self._callbacks = {"success": on_success, "failure": on_failure, "cancelled": on_cancelled}
        self.status.setText(message)
        self.bar.setRange(0, 0)  # busy until the first progress report
        self.cancel_button.setEnabled(cancellable)
        self.cancel_button.setText("Cancel")
        task = run_in_thread(fn)
        _LIVE_TASKS.add(task)
        task.progressed.connect(self._on_task_progressed)
        task.succeeded.connect(self._on_task_succeeded)
        task.failed.connect(self._on_task_failed)
        task.cancelled.connect(self._on_task_cancelled)
        task.done.connect(self._on_task_done)
        self.task = task
        self._set_running(True)
        return task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText("Cancelling…")

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Block until the running task ends (closing a window, tests)."""
        return self.task.wait(timeout_ms) if self.task is not None else True

    def set_status(self, text: str) -> None:
        """The line above the bar; an idle panel with no status takes no room."""
        self.status.setText(text)
        self._set_running(self.task is not None)

    def _set_running(self, running: bool) -> None:
        self.bar.setVisible(running)
        self.cancel_button.setVisible(running)
        self.status.setVisible(running or bool(self.status.text()))

    def _on_cancel_clicked(self) -> None:
        self.cancel()

    def _on_task_progressed(self, fraction: float, message: str) -> None:
        if self.bar.maximum() == 0:
            self.bar.setRange(0, 1000)
        self.bar.setValue(int(max(0.0, min(1.0, fraction)) * 1000))
        if message:
            self.status.setText(message)

    # The outcome is dispatched from ``done`` (which follows it), once ``self.task`` is
    # cleared, so a callback may start the next task straight away.
    def _on_task_succeeded(self, result: Any) -> None:
        self._outcome = ("success", result)

    def _on_task_failed(self, exc: BaseException) -> None:
        self._outcome = ("failure", exc)

    def _on_task_cancelled(self) -> None:
        self._outcome = ("cancelled", None)

    def _on_task_done(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            _LIVE_TASKS.discard(task)
            task.deleteLater()
        self._set_running(False)
        self.bar.setRange(0, 1000)
        outcome, value = self._outcome
        self._outcome = ("cancelled", None)
        callback = self._callbacks.get(outcome)
        if outcome == "success":
            callback(value)
        elif outcome == "failure":
            callback(value) if callback else self.set_status(error_text(value))
        elif callback:
            callback()
        else:
            self.set_status("Cancelled; nothing was changed.")
        self.done.emit()


def result_label() -> QLabel:
    """A framed, selectable label for an action's result summary."""
    label = QLabel()
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setFrameShape(QFrame.Shape.StyledPanel)
    label.setMargin(8)
    label.setVisible(False)
    return label


class TaskDialog(QDialog):
    """A dialog whose work runs in a :class:`ProgressPanel` (``self.panel`` unless
    :meth:`_task_panel` says otherwise).

    Closing while a task runs cancels it and closes once it has stopped: the
    subclass's handler of ``panel.done`` calls :meth:`_close_if_requested` first.
    """

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._close_when_idle = False

    def _task_panel(self) -> ProgressPanel:
        return self.panel

    def _close_if_requested(self) -> bool:
        """Finish a close that waited for the task to stop; say whether it did."""
        if not self._close_when_idle:
            return False
        self._close_when_idle = False
        super().reject()
        return True

    def reject(self) -> None:
        panel = self._task_panel()
        if panel.busy:
            self._close_when_idle = True
            panel.cancel()
            return
        super().reject()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._task_panel().busy:
            event.ignore()
            self.reject()
            return
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Cancel any running work and wait for it (the owner is closing)."""
        panel = self._task_panel()
        panel.cancel()
        panel.wait()
