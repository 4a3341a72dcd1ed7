"""A slim strip above the queue that follows a generation job: progress, Cancel, outcome.

It tails the run's ``events.jsonl`` (:class:`~workbench.jobs.events.EventTailer`,
a few ``stat`` calls when nothing changed) whenever :meth:`poll` is called
(the panel's timer). Cancel runs :meth:`Supervisor.cancel` on a worker
thread: it blocks until the job has stopped (cooperatively at its next
batch, else by signal).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QProgressBar, QPushButton, QToolButton, QWidget

from workbench.jobs.events import EventTailer, FinishedEvent, LogEvent, MetricEvent, StartedEvent, WarningEvent

from ui.common.elided_label import ElidedLabel
from ui.common.worker import Task, run_in_thread


class JobStripView(QFrame):
    """Follows one run; hidden until :meth:`follow`. ``finished(status)`` once it ends."""

    finished = Signal(str)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("jobStrip")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.label = ElidedLabel(mode=Qt.TextElideMode.ElideMiddle)  # two checkpoint paths and a count
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedWidth(180)
        self.bar.setMaximumHeight(10)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelJob")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        self.close_button = QToolButton()
        self.close_button.setText("\u2715")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Hide")
        self.close_button.clicked.connect(self.hide)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 6, 4)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.bar)
        lay.addWidget(self.cancel_button)
        lay.addWidget(self.close_button)
        self.hide()
        self.run_id: Optional[str] = None
        self.status: Optional[str] = None
        self._tailer: Optional[EventTailer] = None
        self._supervisor = None
        self._what = ""
        self._progress = 0.0
        self._candidates = 0
        self._cancel_task: Optional[Task] = None

    def follow(self, supervisor, run_id: str, path: Path, what: str) -> None:
        """Start following run ``run_id`` (its folder ``path``), described as ``what``."""
        self._supervisor = supervisor
        self.run_id = run_id
        self.status = "queued"
        self._tailer = EventTailer(Path(path) / "events.jsonl")
        self._what = what
        self._progress = 0.0
        self._candidates = 0
        self.cancel_button.setEnabled(True)
        self.cancel_button.setVisible(True)
        self.close_button.setVisible(False)
        self._render("waiting for the job to start (queued behind any running job)")
        self.show()

    @property
    def running(self) -> bool:
        return self.run_id is not None and self.status in ("queued", "running")

    def poll(self) -> None:
        if self._tailer is None or not self.running:
            return
        note = None
        for ev in self._tailer.read():
            if isinstance(ev, StartedEvent):
                self.status = "running"
                note = "loading the model"
            elif isinstance(ev, MetricEvent):
                self._progress = ev.values.get("generate/progress", self._progress)
                self._candidates = int(ev.values.get("generate/candidates", self._candidates))
                note = f"{self._candidates:,} candidates so far"
            elif isinstance(ev, (LogEvent, WarningEvent)) and self._progress == 0:
                note = ev.message
            elif isinstance(ev, FinishedEvent):
                self._end(ev.status, ev.error)
                return
        if note is not None:
            self._render(note)

    def _render(self, note: str) -> None:
        self.bar.setValue(int(self._progress * 1000))
        self.label.setText(f"{self._what} — {self._progress:.0%} · {note}")

    def _end(self, status: str, error: Optional[str]) -> None:
        self.status = status
        self.cancel_button.setVisible(False)
        self.close_button.setVisible(True)
        if status == "completed":
            self._progress = 1.0
            self._render(f"done: {self._candidates:,} candidates")
        elif status == "cancelled":
            self._render(f"cancelled; the {self._candidates:,} candidates already made are kept")
        else:
            self.label.setText(f"{self._what} failed: {error or 'see the run log'}")
        self.finished.emit(status)

    def _on_cancel_clicked(self) -> None:
        if not self.running or self._supervisor is None:
            return
        self.cancel_button.setEnabled(False)
        self._render("cancelling after the current batch")
        sup, run_id = self._supervisor, self.run_id
        self._cancel_task = run_in_thread(lambda progress, cancel: sup.cancel(run_id), parent=self)

    def shutdown(self) -> None:
        if self._cancel_task is not None:
            self._cancel_task.wait(30_000)
