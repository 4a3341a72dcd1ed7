"""The pipeline strip: SFT -> reward model -> PPO, and DPO as the offline branch.

Each stage is a card with its inputs (model, dataset), its status from the
workspace's runs of that stage (not run / queued / running step N /
completed / failed / cancelled) and its output. Clicking a card (or Space on
a focused one) selects the stage; the panel shows its form. The panel
computes the texts (:func:`stage_status`); the view only shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QKeyEvent, QMouseEvent, QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from workbench.jobs.supervisor import CANCELLED, COMPLETED, FAILED, QUEUED, RUNNING, RunInfo

from ..common.render import plain_tooltip
from .stages import ORDER, STAGES

_STATUS_GLYPH = {"none": "\u25cb", QUEUED: "\u23f8", RUNNING: "\u25b6", COMPLETED: "\u2714", FAILED: "\u2716",
                 CANCELLED: "\u25a0"}


@dataclass(frozen=True)
class StageStatus:
    """What a card says about the stage's runs: ``level`` is ``none`` or a run status."""

    level: str
    text: str
    run: Optional[RunInfo] = None


def stage_status(runs: Sequence[RunInfo], stage: str) -> StageStatus:
    """The status of ``stage`` from the workspace's runs (oldest first): a running or queued run
    wins over finished ones; else the latest run's outcome."""
    mine = [r for r in runs if r.stage == stage]
    if not mine:
        return StageStatus("none", "not run yet")
    running = [r for r in mine if r.status == RUNNING]
    if running:
        r = running[-1]
        return StageStatus(RUNNING, f"running \u00b7 step {r.last_step}" if r.last_step is not None
                           else "running \u00b7 starting", r)
    queued = [r for r in runs if r.status == QUEUED]
    mine_queued = [r for r in queued if r.stage == stage]
    if mine_queued:
        r = mine_queued[0]
        return StageStatus(QUEUED, f"queued \u00b7 #{queued.index(r) + 1} in line", r)
    r = mine[-1]
    step = f" \u00b7 step {r.last_step}" if r.last_step is not None else ""
    return StageStatus(r.status, f"{r.status}{step}", r)


class StageCardView(QFrame):
    """One stage: title, status, inputs and output; ``clicked`` when chosen."""

    clicked = Signal(str)

    def __init__(self, stage: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.stage = stage
        sdef = STAGES[stage]
        self.setObjectName("stageCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip(f"{sdef.title}: {sdef.blurb}. Click to configure.")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setAutoFillBackground(True)
        self.title = QLabel(sdef.title)
        font = QFont(self.title.font())
        font.setWeight(QFont.Weight.DemiBold)
        font.setPointSizeF(font.pointSizeF() * 1.1)
        self.title.setFont(font)
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.status.setObjectName("stageStatus")
        self.inputs = QLabel()
        self.inputs.setObjectName("stageInputs")
        self.output = QLabel()
        self.output.setObjectName("stageOutput")
        for label in (self.inputs, self.output):
            label.setTextFormat(Qt.TextFormat.PlainText)
            label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
            label.setMinimumWidth(40)
        head = QHBoxLayout()
        head.setSpacing(6)
        head.addWidget(self.title)
        head.addStretch(1)
        head.addWidget(self.status)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(3)
        layout.addLayout(head)
        layout.addWidget(self.inputs)
        layout.addWidget(self.output)
        self.level = "none"
        self.set_status(StageStatus("none", "not run yet"))
        self.set_selected(False)

    def set_status(self, status: StageStatus) -> None:
        self.level = status.level
        self.status.setText(f"{_STATUS_GLYPH.get(status.level, '')} {status.text}")
        if status.run is not None:
            self.status.setToolTip(plain_tooltip(f"run {status.run.run_id}"
                                                 + (f": {status.run.error}" if status.run.error else "")))

    def set_io(self, inputs: Sequence[str], output: str) -> None:
        """Input lines (model, data) and the output line."""
        self.inputs.setText("\n".join(_elide(line) for line in inputs))
        self.inputs.setToolTip(plain_tooltip("\n".join(inputs)))
        self.output.setText(_elide(output))
        self.output.setToolTip(plain_tooltip(output))

    def set_selected(self, selected: bool) -> None:
        self.selected = selected
        # Highlight from the palette: the Highlight colour as the frame, a tint as the fill.
        pal = self.palette()
        base = self.parentWidget().palette() if self.parentWidget() else pal
        fill = base.color(QPalette.ColorRole.Base) if selected else base.color(QPalette.ColorRole.Window)
        pal.setColor(QPalette.ColorRole.Window, fill)
        self.setPalette(pal)
        self.setLineWidth(2 if selected else 1)
        self.setFrameShadow(QFrame.Shadow.Plain if selected else QFrame.Shadow.Raised)
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().paintEvent(event)
        if self.selected:
            from PySide6.QtGui import QPainter, QPen

            painter = QPainter(self)
            painter.setPen(QPen(self.palette().color(QPalette.ColorRole.Highlight), 2))
            painter.drawRoundedRect(self.rect().adjusted(1, 1, -1, -1), 4, 4)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(event.position().toPoint()):
            self.clicked.emit(self.stage)
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.clicked.emit(self.stage)
            return
        super().keyPressEvent(event)


def _elide(text: str, limit: int = 46) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


class PipelineView(QWidget):
    """The four stage cards with arrows; ``stage_clicked(stage)`` when one is chosen."""

    stage_clicked = Signal(str)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.cards: dict[str, StageCardView] = {}
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        for i, stage in enumerate(ORDER):
            if stage == "dpo":
                sep = QFrame()
                sep.setFrameShape(QFrame.Shape.VLine)
                sep.setFrameShadow(QFrame.Shadow.Sunken)
                layout.addSpacing(6)
                layout.addWidget(sep)
                branch = QLabel("or offline\nafter SFT:")
                branch.setAlignment(Qt.AlignmentFlag.AlignCenter)
                branch.setForegroundRole(QPalette.ColorRole.PlaceholderText)
                layout.addWidget(branch)
            elif i > 0:
                arrow = QLabel("\u2192")
                font = QFont(arrow.font())
                font.setPointSizeF(font.pointSizeF() * 1.6)
                arrow.setFont(font)
                arrow.setForegroundRole(QPalette.ColorRole.PlaceholderText)
                layout.addWidget(arrow)
            card = StageCardView(stage)
            card.clicked.connect(self._on_card_clicked)
            self.cards[stage] = card
            layout.addWidget(card, 1)

    def set_selected(self, stage: str) -> None:
        for key, card in self.cards.items():
            card.set_selected(key == stage)

    def _on_card_clicked(self, stage: str) -> None:
        self.set_selected(stage)
        self.stage_clicked.emit(stage)
