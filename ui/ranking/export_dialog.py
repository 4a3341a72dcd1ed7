"""Turn the rankings into a preference dataset for the reward-model and DPO stages.

k-wise rankings expand to every (better, worse) pair; ties are left out or
kept (both orders) by a setting; "all bad" rankings are left out unless
asked for; self-consistency repeats never count twice
(:func:`workbench.store.annotations.rankings_to_dataset`). The export runs
on a worker thread with its own connection, as one transaction.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel,
                               QLineEdit, QRadioButton, QVBoxLayout, QWidget)

from workbench.store import annotations as A
from workbench.store.workspace import Workspace

from ui.common.worker import Task, run_in_thread


def export_rankings(root: Path, name: str, *, annotator: Optional[str], ties: str, include_all_bad: bool) -> int:
    """Write the preference dataset ``name``; returns the pair count (runs on a worker thread)."""
    with Workspace.open(root) as ws:
        with ws.transaction() as conn:
            return A.rankings_to_dataset(conn, name, annotator=annotator, ties=ties, include_all_bad=include_all_bad)


class ExportRankingsDialog(QDialog):
    """See the module docstring; ``exported(dataset, pairs)`` on success."""

    exported = Signal(str, int)

    def __init__(self, root: Path, annotators: list[str], *, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export rankings as preference pairs")
        self.setObjectName("exportRankingsDialog")
        self.root = root
        self.name = QLineEdit(time.strftime("prefs-%Y%m%d-%H%M"))
        self.annotator = QComboBox()
        self.annotator.addItem("All annotators", None)
        for a in annotators:
            self.annotator.addItem(a, a)
        self.skip_ties = QRadioButton("Leave ties out (no preference, no pair)")
        self.keep_ties = QRadioButton("Keep ties, as a pair in both orders")
        self.skip_ties.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.skip_ties)
        group.addButton(self.keep_ties)
        self.all_bad = QCheckBox("Include rankings marked \u201call bad\u201d")
        self.result = QLabel()
        self.result.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.result.setObjectName("result")
        self.result.setWordWrap(True)
        form = QFormLayout()
        form.addRow("New dataset", self.name)
        form.addRow("Rankings by", self.annotator)
        form.addRow("Ties", self.skip_ties)
        form.addRow("", self.keep_ties)
        form.addRow("", self.all_bad)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.export_button.setText("Export")
        self.buttons.accepted.connect(self._on_export_clicked)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.result)
        lay.addWidget(self.buttons)
        self.task: Optional[Task] = None
        self.resize(480, self.sizeHint().height())

    def _on_export_clicked(self) -> None:
        name = self.name.text().strip()
        kwargs = dict(annotator=self.annotator.currentData(), ties="both" if self.keep_ties.isChecked() else "skip",
                      include_all_bad=self.all_bad.isChecked())
        self.export_button.setEnabled(False)
        self.result.setText("Exporting\u2026")
        self.task = run_in_thread(lambda progress, cancel: export_rankings(self.root, name, **kwargs), parent=self,
                                  on_success=lambda n: self._on_done(name, n), on_failure=self._on_failed)

    def _on_done(self, name: str, pairs: int) -> None:
        self.export_button.setEnabled(True)
        self.result.setText(f"Wrote {pairs:,} preference pairs to the dataset \u201c{name}\u201d. "
                            "Train a reward model or DPO on it from the Train page.")
        self.exported.emit(name, pairs)

    def _on_failed(self, exc: BaseException) -> None:
        self.export_button.setEnabled(True)
        self.result.setText(f"\u26a0 {exc}")

    def done(self, result: int) -> None:  # noqa: D401 - Qt override
        if self.task is not None:
            self.task.wait(30_000)
        super().done(result)
