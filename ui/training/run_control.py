"""Start, cancel and resume buttons, a status line, and the job queue (views only).

The panel decides what the buttons do and when they are enabled; this
module lays them out and shows the queue: the running job first, then the
queued ones, oldest run first (one GPU job at a time; the supervisor starts
them in the order they were queued).
"""

from __future__ import annotations

from typing import Optional, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (QGroupBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
                               QSizePolicy, QVBoxLayout, QWidget)

from workbench.jobs.supervisor import QUEUED, RUNNING, RunInfo

from .stages import STAGES


class RunControlView(QGroupBox):
    """The Run box of the Train page."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__("Run", parent)
        self.start_button = QPushButton("Start")
        self.start_button.setObjectName("startButton")
        self.start_button.setDefault(True)
        font = QFont(self.start_button.font())
        font.setWeight(QFont.Weight.DemiBold)
        self.start_button.setFont(font)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setObjectName("resumeButton")
        self.status_label = QLabel()
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.status_label.setObjectName("runStatus")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.queue_title = QLabel("Job queue")
        self.queue_list = QListWidget()
        self.queue_list.setObjectName("queueList")
        self.queue_list.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.queue_list.setMaximumHeight(86)
        self.queue_list.setAlternatingRowColors(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button, 2)
        buttons.addWidget(self.cancel_button, 1)
        buttons.addWidget(self.resume_button, 1)
        layout = QVBoxLayout(self)
        layout.setSpacing(6)
        layout.addLayout(buttons)
        layout.addWidget(self.status_label)
        layout.addWidget(self.queue_title)
        layout.addWidget(self.queue_list)
        self.set_queue([])

    def set_status(self, text: str) -> None:
        self.status_label.setText(text)

    def set_queue(self, runs: Sequence[RunInfo]) -> None:
        """Show the running and queued runs (``runs`` in any order)."""
        running = [r for r in runs if r.status == RUNNING]
        queued = [r for r in runs if r.status == QUEUED]
        self.queue_list.clear()
        for r in running:
            step = f"step {r.last_step}" if r.last_step is not None else "starting"
            self._add(f"\u25b6 {_title(r.stage)} \u00b7 {step} \u00b7 {r.run_id}", r.run_id)
        for i, r in enumerate(queued, 1):
            self._add(f"\u23f8 #{i} {_title(r.stage)} \u00b7 queued \u00b7 {r.run_id}", r.run_id)
        if not running and not queued:
            item = QListWidgetItem("No job running or waiting")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            item.setForeground(self.palette().color(QPalette.ColorRole.PlaceholderText))
            self.queue_list.addItem(item)
        self.queue_title.setText(f"Job queue ({len(running)} running, {len(queued)} waiting)")

    def queue_run_ids(self) -> list[str]:
        """The run ids listed, in order (tests)."""
        return [self.queue_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.queue_list.count())
                if self.queue_list.item(i).data(Qt.ItemDataRole.UserRole)]

    def _add(self, text: str, run_id: str) -> None:
        item = QListWidgetItem(text)
        item.setData(Qt.ItemDataRole.UserRole, run_id)
        item.setToolTip(run_id)
        self.queue_list.addItem(item)


def _title(stage: str) -> str:
    return STAGES[stage].title if stage in STAGES else stage
