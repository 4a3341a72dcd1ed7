"""Set up a ranking queue: prompts, mode, annotator, seed, self-consistency repeats."""

from __future__ import annotations

import sqlite3
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QRadioButton, QSpinBox, QVBoxLayout, QWidget)

from workbench.errors import WorkbenchError
from workbench.store import queue as Q

from .sources import PromptSourceCombo


class QueueSetupDialog(QDialog):
    """Pick what to rank and how; ``created(queue_id)`` after the queue is saved.

    The dialog writes the queue itself (one small transaction on ``conn``)
    and stays open with the reason when the set-up is not valid.
    """

    created = Signal(int)

    def __init__(self, conn: sqlite3.Connection, *, annotator: str = "",
                 source: Optional[Q.PromptSource] = None, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New ranking queue")
        self.setObjectName("queueSetupDialog")
        self.conn = conn
        self.source = PromptSourceCombo(conn)
        if source is not None:
            self.source.select(source)
        self.pairwise = QRadioButton("Pairwise: two responses, pick the better")
        self.kwise = QRadioButton("K-wise: rank up to")
        self.pairwise.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.pairwise)
        group.addButton(self.kwise)
        self.k = QSpinBox()
        self.k.setRange(2, 4)
        self.k.setValue(4)
        self.k.setSuffix(" responses")
        kwise_row = QHBoxLayout()
        kwise_row.addWidget(self.kwise)
        kwise_row.addWidget(self.k)
        kwise_row.addStretch(1)
        self.annotator = QLineEdit(annotator)
        self.annotator.setPlaceholderText("your name, kept with every decision")
        self.repeat = QSpinBox()
        self.repeat.setRange(0, 1000)
        self.repeat.setValue(20)
        self.repeat.setSpecialValueText("never")
        self.repeat.setPrefix("every ")
        self.repeat.setSuffix(" decisions")
        self.repeat.setToolTip("Show an earlier item again with the positions swapped, to measure "
                               "self-consistency and position bias.")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.seed.setToolTip("Seeds which responses are shown and on which side (the same item always "
                             "looks the same)")
        self.name = QLineEdit()
        self.name.setPlaceholderText("default: source · mode · annotator")
        self.error = QLabel()
        self.error.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.setVisible(False)

        form = QFormLayout()
        form.addRow("Prompts", self.source)
        form.addRow("Mode", self.pairwise)
        form.addRow("", _wrap(kwise_row))
        form.addRow("Annotator", self.annotator)
        form.addRow("Repeat an item", self.repeat)
        form.addRow("Seed", self.seed)
        form.addRow("Name", self.name)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create queue")
        self.buttons.accepted.connect(self._on_accepted)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)
        self.resize(520, self.sizeHint().height())

    def spec(self) -> Q.QueueSpec:
        return Q.QueueSpec(annotator=self.annotator.text(), mode="kwise" if self.kwise.isChecked() else "pairwise",
                           source=self.source.source() or Q.PromptSource(), k=self.k.value(),
                           seed=self.seed.value(), repeat_every=self.repeat.value(), name=self.name.text())

    def _on_accepted(self) -> None:
        from workbench.store.db import write_transaction

        try:
            with write_transaction(self.conn, what="the workspace") as conn:
                queue_id = Q.create_queue(conn, self.spec())
        except WorkbenchError as exc:
            self.error.setText("\u26a0 " + str(exc))
            self.error.setVisible(True)
            return
        self.created.emit(queue_id)
        self.accept()


def _wrap(layout) -> QWidget:
    w = QWidget()
    layout.setContentsMargins(0, 0, 0, 0)
    w.setLayout(layout)
    return w
