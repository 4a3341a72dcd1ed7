"""Edit a response, then keep it as a demonstration (SFT data) or as a better candidate.

"Save as demonstration" adds (prompt, edited response) to an SFT dataset
(created if missing) and leaves the item on screen. "Save as preferred
response" stores the edit as a new candidate of the prompt (its parent is
the response it was edited from), ranked above every shown response, as
this item's decision. The dialog only collects the text; the panel writes.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (QComboBox, QDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
                               QPushButton, QVBoxLayout, QWidget)

from ..common.render import wrap_mode_for
from .columns import response_text


class EditResponseDialog(QDialog):
    """``demonstration_requested(text, dataset)`` / ``preferred_requested(text, candidate_id)``."""

    demonstration_requested = Signal(str, str)
    preferred_requested = Signal(str, int)

    def __init__(self, labels: Sequence[str], candidates: Sequence[Any], column: int = 0, *,
                 dataset: str = "demonstrations", parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit a response")
        self.setObjectName("editResponseDialog")
        self.candidates = list(candidates)
        self.which = QComboBox()
        for label in labels:
            self.which.addItem(f"Response {label}")
        self.text = QPlainTextEdit()
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.GeneralFont))
        self.dataset = QLineEdit(dataset)
        self.error = QLabel()
        self.error.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.setVisible(False)
        self.demo_button = QPushButton("Save as demonstration")
        self.demo_button.setToolTip("Add the prompt and this response to the SFT dataset named here")
        self.preferred_button = QPushButton("Save as preferred response")
        self.preferred_button.setToolTip("Store it as a new candidate ranked above the shown responses, "
                                         "and move on")
        self.preferred_button.setDefault(True)
        cancel = QPushButton("Cancel")
        self.which.currentIndexChanged.connect(self._on_which_changed)
        self.demo_button.clicked.connect(self._on_demo_clicked)
        self.preferred_button.clicked.connect(self._on_preferred_clicked)
        cancel.clicked.connect(self.reject)
        form = QFormLayout()
        form.addRow("Start from", self.which)
        buttons = QHBoxLayout()
        buttons.addWidget(QLabel("SFT dataset:"))
        buttons.addWidget(self.dataset, 1)
        buttons.addWidget(self.demo_button)
        buttons.addSpacing(12)
        buttons.addWidget(self.preferred_button)
        buttons.addWidget(cancel)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.text, 1)
        lay.addWidget(self.error)
        lay.addLayout(buttons)
        self.resize(760, 460)
        self.which.setCurrentIndex(column)
        self._on_which_changed(column)

    @property
    def candidate_id(self) -> int:
        return self.candidates[self.which.currentIndex()].id

    def show_error(self, message: str) -> None:
        self.error.setText("\u26a0 " + message)
        self.error.setVisible(True)

    def _on_which_changed(self, index: int) -> None:
        if 0 <= index < len(self.candidates):
            text = response_text(self.candidates[index].response)
            self.text.setWordWrapMode(wrap_mode_for(text))  # a long line must not freeze the dialog
            self.text.setPlainText(text)

    def _on_demo_clicked(self) -> None:
        if not self.text.toPlainText().strip():
            self.show_error("the response is empty")
            return
        self.demonstration_requested.emit(self.text.toPlainText(), self.dataset.text().strip())

    def _on_preferred_clicked(self) -> None:
        if not self.text.toPlainText().strip():
            self.show_error("the response is empty")
            return
        self.preferred_requested.emit(self.text.toPlainText(), self.candidate_id)
