"""A run's log console (its ``log`` events and the tail of ``stderr.log``) and its failure panel.

Both consoles are append-only and bounded (the oldest lines go), and keep
their scroll position unless it was at the bottom, so reading an old line
is not interrupted by a chatty job. The failure panel shows the one-line,
actionable message from the job's ``finished`` event (e.g. the advice for
a GPU out of memory), with the traceback behind a button.
"""

from __future__ import annotations

import time
from typing import Optional, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontDatabase, QPalette
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QSplitter,
                               QStyle, QVBoxLayout, QWidget)

from workbench.jobs.events import FinishedEvent, LogEvent

#: Lines each console keeps.
MAX_LINES = 5000


def _console(parent: QWidget) -> QPlainTextEdit:
    view = QPlainTextEdit(parent)
    view.setReadOnly(True)
    view.setMaximumBlockCount(MAX_LINES)
    view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
    view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    return view


def _append(view: QPlainTextEdit, text: str) -> None:
    bar = view.verticalScrollBar()
    at_bottom = bar.value() >= bar.maximum() - 2
    view.appendPlainText(text)
    if at_bottom:
        bar.setValue(bar.maximum())


class LogView(QWidget):
    """The job's log events (left) and its stderr (right), side by side."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.events_view = _console(self)
        self.events_view.setPlaceholderText("The job's log messages appear here.")
        self.stderr_view = _console(self)
        self.stderr_view.setPlaceholderText("Nothing on stderr.")
        split = QSplitter(Qt.Orientation.Horizontal, self)
        for title, view in (("Job log", self.events_view), ("stderr.log", self.stderr_view)):
            box = QWidget(split)
            col = QVBoxLayout(box)
            col.setContentsMargins(0, 0, 0, 0)
            col.setSpacing(2)
            label = QLabel(title, box)
            label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
            col.addWidget(label)
            col.addWidget(view, 1)
            split.addWidget(box)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(split)

    def clear(self) -> None:
        self.events_view.clear()
        self.stderr_view.clear()

    def append_logs(self, events: Sequence[LogEvent]) -> None:
        if events:
            _append(self.events_view, "\n".join(format_log(e) for e in events))

    def append_stderr(self, text: str, *, skipped: int = 0) -> None:
        """Append stderr text; ``skipped`` bytes of an older part were not read (said once)."""
        if skipped > 0 and self.stderr_view.document().isEmpty():
            _append(self.stderr_view, f"[{skipped:,} earlier bytes not shown]")
        if text:
            _append(self.stderr_view, text.rstrip("\n"))


def format_log(event: LogEvent) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
    level = "" if event.level == "info" else f"{event.level.upper()}: "
    return f"{stamp}  {level}{event.message}"


class FailurePanel(QFrame):
    """Why the run failed (or was cancelled), from its ``finished`` event; hidden otherwise."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("failurePanel")
        self._icon = QLabel(self)
        self.title_label = QLabel(self)
        self.title_label.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        font = QFont(self.title_label.font())
        font.setWeight(QFont.Weight.DemiBold)
        self.title_label.setFont(font)
        self.message_label = QLabel(self)
        self.message_label.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.traceback_button = QPushButton("Show traceback", self)
        self.traceback_button.setCheckable(True)
        self.traceback_button.toggled.connect(self._on_traceback_button_toggled)
        self.traceback_view = _console(self)
        self.traceback_view.setVisible(False)
        self.traceback_view.setMinimumHeight(120)
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self.title_label)
        text.addWidget(self.message_label)
        top = QHBoxLayout()
        top.addWidget(self._icon, 0, Qt.AlignmentFlag.AlignTop)
        top.addLayout(text, 1)
        top.addWidget(self.traceback_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.addLayout(top)
        layout.addWidget(self.traceback_view)
        self.setVisible(False)

    def show_finished(self, event: Optional[FinishedEvent]) -> None:
        """Show a failed or cancelled run's message; hide for a running or completed run."""
        if event is None or event.status == "completed":
            self.setVisible(False)
            return
        failed = event.status == "failed"
        icon = QStyle.StandardPixmap.SP_MessageBoxCritical if failed else QStyle.StandardPixmap.SP_MessageBoxInformation
        self._icon.setPixmap(self.style().standardIcon(icon).pixmap(28, 28))
        self.title_label.setText("The run failed" if failed else "The run was cancelled")
        self.message_label.setText(event.error or ("no error message was reported" if failed else ""))
        self.traceback_view.setPlainText(event.traceback or "")
        self.traceback_button.setVisible(bool(event.traceback))
        self.traceback_button.setChecked(False)
        self.setVisible(True)

    def _on_traceback_button_toggled(self, checked: bool) -> None:
        self.traceback_view.setVisible(checked)
        self.traceback_button.setText("Hide traceback" if checked else "Show traceback")
