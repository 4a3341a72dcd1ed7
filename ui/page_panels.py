"""Panels shown in place of a page: not available yet, or failed to build (see :mod:`ui.pages`)."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from .pages import PageSpec


def _heading(text: str) -> QLabel:
    label = QLabel(text)
    font = QFont(label.font())
    font.setPointSizeF(font.pointSizeF() * 1.6)
    font.setWeight(QFont.Weight.DemiBold)
    label.setFont(font)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    return label


class PlaceholderPanel(QWidget):
    """A calm, centered note saying what a page will hold once it is available."""

    def __init__(self, title: str, description: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"placeholder_{title.lower()}")
        self.title = title
        self.description = description

        title_label = _heading(title)
        title_label.setObjectName("placeholderTitle")
        description_label = QLabel(description)
        description_label.setObjectName("placeholderDescription")
        description_label.setWordWrap(True)
        description_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # A muted palette role rather than a fixed grey: readable in dark themes too.
        description_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)

        # Labels go in without alignment flags: an aligned widget gets its
        # size hint, not its height-for-width, and a wrapped label is clipped.
        column = QWidget()
        column.setMaximumWidth(520)
        column_layout = QVBoxLayout(column)
        column_layout.setContentsMargins(0, 0, 0, 0)
        column_layout.setSpacing(10)
        column_layout.addWidget(title_label)
        column_layout.addWidget(description_label)

        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(column, 4)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(48, 48, 48, 48)
        layout.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(1)

    def set_workspace(self, root) -> None:  # noqa: D401 - page contract, nothing to bind
        pass

    def shutdown(self) -> None:
        pass


class PageErrorPanel(QWidget):
    """Shown instead of a page whose construction raised: the traceback, selectable."""

    def __init__(self, spec: PageSpec, details: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"pageError_{spec.title.lower()}")
        self.title = spec.title
        self.details = details
        message = QLabel(f"The {spec.title} page ({spec.target}) could not be opened. "
                         "The details below say why; the rest of the app still works.")
        message.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        message.setWordWrap(True)
        text = QPlainTextEdit(details)
        text.setReadOnly(True)
        text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 24, 24, 24)
        layout.addWidget(_heading(f"{spec.title}: failed to open"))
        layout.addWidget(message)
        layout.addWidget(text, 1)

    def set_workspace(self, root) -> None:
        pass

    def shutdown(self) -> None:
        pass
