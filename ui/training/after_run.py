"""What to do with a finished run's checkpoint (view only; the panel wires the actions).

"Generate candidates for ranking from this checkpoint" and "Compare with
base" hand over to the Rank page; "Merge adapter and export" starts a
``merge`` job (:mod:`workbench.train.merge`) and shows its progress and the
folder it wrote.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from workbench.train.outputs import RunOutput

_GENERATE_TIP = ("Sample responses from this checkpoint into the ranking queue (Rank page); "
                 "a LoRA adapter is applied to its base model")
_COMPARE_TIP = "A blind side-by-side comparison of this checkpoint and the model it started from (Rank page)"


class AfterRunView(QGroupBox):
    """The "After the run" box for the selected stage's latest completed run."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__("After the run", parent)
        self.summary = QLabel()
        self.summary.setObjectName("afterRunSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.generate_button = QPushButton("Generate candidates for ranking\u2026")
        self.generate_button.setObjectName("generateButton")
        self.generate_button.setToolTip(_GENERATE_TIP)
        self.compare_button = QPushButton("Compare with base\u2026")
        self.compare_button.setObjectName("compareButton")
        self.compare_button.setToolTip(_COMPARE_TIP)
        self.merge_button = QPushButton("Merge adapter and export")
        self.merge_button.setObjectName("mergeButton")
        self.merge_progress = QProgressBar()
        self.merge_progress.setRange(0, 0)  # busy: the merge job reports phases, not fractions
        self.merge_progress.setTextVisible(False)
        self.merge_progress.setMaximumHeight(8)
        self.merge_progress.hide()
        self.merge_status = QLabel()
        self.merge_status.setObjectName("mergeStatus")
        self.merge_status.setWordWrap(True)
        self.merge_status.setTextFormat(Qt.TextFormat.PlainText)
        self.merge_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setSpacing(6)
        layout.addWidget(self.summary)
        layout.addWidget(self.generate_button)
        layout.addWidget(self.compare_button)
        layout.addWidget(self.merge_button)
        layout.addWidget(self.merge_progress)
        layout.addWidget(self.merge_status)
        self.output: Optional[RunOutput] = None
        self.set_output(None, stage="sft")

    def set_output(self, output: Optional[RunOutput], *, stage: str, exported: Optional[str] = None) -> None:
        """Show what the stage's latest completed run produced (``None``: nothing yet);
        ``exported`` is the folder a merge job wrote for it."""
        self.output = output
        has = output is not None
        for button in (self.generate_button, self.compare_button, self.merge_button):
            button.setEnabled(has)
        self.generate_button.setToolTip(_GENERATE_TIP)
        self.compare_button.setToolTip(_COMPARE_TIP)
        if not has:
            self.summary.setText("No completed run of this stage yet.")
            return
        what = {"model": "all weights", "adapter": "LoRA adapter"}.get(output.kind, output.kind)
        if output.kind == "adapter" and output.model_folder is not None:
            what += " (merged copy saved)"
        self.summary.setText(f"Run {output.run_id}, step {output.step}: {what}."
                             + (f"\nExported: {exported}" if exported else ""))
        self.merge_button.setText("Merge adapter and export" if output.kind == "adapter" else "Export model")
        if stage == "reward":  # a reward model scores; it does not generate
            for button in (self.generate_button, self.compare_button):
                button.setEnabled(False)
                button.setToolTip("A reward model scores responses; it does not write them")

    def set_merge_state(self, running: bool, text: str) -> None:
        self.merge_progress.setVisible(running)
        self.merge_status.setText(text)
        if running:
            self.merge_button.setEnabled(False)
