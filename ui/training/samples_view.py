"""The samples a PPO run reports: (prompt, response, score) rows, with a slider back through the steps.

One view shows one kind of samples event: the training rollouts' (``train``)
or the low-temperature completions on the held-out eval prompts (``eval``);
the Runs page has one view of each, side by side in its tabs.

While the slider sits at the newest step it follows the run (each new
``samples`` event shows at once); moved back, it stays where the user put
it and only its range grows. Cells show one line; the full prompt and
response are in the tooltip and in the pane under the table.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QSlider, QSplitter,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from workbench.jobs.events import SamplesEvent

from ..common.render import MarkdownView, plain_preview, plain_tooltip

COLUMNS = ("Prompt", "Response", "Score")


#: What a view shows before its first event, by kind.
EMPTY_TEXT = {"train": "No samples yet", "eval": "No eval samples (set eval_every and an eval set)"}


class SamplesView(QWidget):
    """Slider over the run's ``samples`` events of one ``kind`` (``train`` or ``eval``), a table
    of the chosen step's rows and a detail pane; events of the other kind are ignored.

    Keeps the newest :attr:`MAX_EVENTS` events (as :class:`~workbench.jobs.metrics.RunFeed` does).
    """

    MAX_EVENTS = 2000

    def __init__(self, parent: Optional[QWidget] = None, *, kind: str = "train") -> None:
        super().__init__(parent)
        self.kind = kind
        self._events: list[SamplesEvent] = []
        self._shown: Optional[int] = None  # index into _events
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, 0)
        self.slider.setEnabled(False)
        self.slider.setToolTip("Look back through the steps that reported samples")
        self.slider.valueChanged.connect(self._on_slider_value_changed)
        self.step_label = QLabel(EMPTY_TEXT[kind], self)
        self.step_label.setMinimumWidth(150)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setColumnWidth(0, 200)
        self.table.itemSelectionChanged.connect(self._on_table_item_selection_changed)
        self.detail = MarkdownView(self)
        self.detail.setPlaceholderText("Select a row to read the whole prompt and response.")
        row = QHBoxLayout()
        row.addWidget(QLabel("Step:", self))
        row.addWidget(self.slider, 1)
        row.addWidget(self.step_label)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.table)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(row)
        layout.addWidget(split, 1)

    # -- data -------------------------------------------------------------------------------------
    def set_samples(self, events: Sequence[SamplesEvent]) -> None:
        """Show a run's samples events of this view's kind (replacing what was shown), newest
        step selected."""
        self._events = self._own(events)[-self.MAX_EVENTS:]
        self._shown = None
        self._sync_slider(follow=True)

    def append(self, events: Sequence[SamplesEvent]) -> None:
        """Add newly read samples events (those of this view's kind); follows them if the newest
        step was shown."""
        events = self._own(events)
        if not events:
            return
        following = not self._events or self.slider.value() == len(self._events) - 1
        self._events.extend(events)
        drop = len(self._events) - self.MAX_EVENTS
        if drop > 0:  # the oldest go; a step looked back at keeps its place (or the oldest kept)
            del self._events[:drop]
            if self._shown is not None:
                self._shown = self._shown - drop if self._shown >= drop else None
            self.slider.blockSignals(True)
            self.slider.setValue(max(0, self.slider.value() - drop))
            self.slider.blockSignals(False)
        self._sync_slider(follow=following)

    @property
    def shown_step(self) -> Optional[int]:
        return self._events[self._shown].step if self._shown is not None else None

    def rows(self) -> list[tuple[str, str, str]]:
        """The table's cell texts (tests)."""
        return [tuple(self.table.item(r, c).text() for c in range(len(COLUMNS)))
                for r in range(self.table.rowCount())]

    # -- internals --------------------------------------------------------------------------------
    def _own(self, events: Sequence[SamplesEvent]) -> list[SamplesEvent]:
        return [e for e in events if e.kind == self.kind]

    def _sync_slider(self, *, follow: bool) -> None:
        n = len(self._events)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, n - 1))
        self.slider.setEnabled(n > 1)
        if follow and n:
            self.slider.setValue(n - 1)
        self.slider.blockSignals(False)
        self._show(self.slider.value() if n else None)

    def _on_slider_value_changed(self, value: int) -> None:
        self._show(value)

    def _show(self, index: Optional[int]) -> None:
        if index is None or not self._events:
            self._shown = None
            self.table.setRowCount(0)
            self.step_label.setText(EMPTY_TEXT[self.kind])
            self.detail.set_markdown("")
            return
        if index == self._shown:
            self._update_label()
            return
        self._shown = index
        event = self._events[index]
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(event.rows))
        for r, row in enumerate(event.rows):
            prompt, response = str(row.get("prompt", "")), str(row.get("response", ""))
            score = row.get("score")
            cells = (plain_preview(prompt, 300), plain_preview(response, 500), _score_text(score))
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c < 2:
                    item.setToolTip(plain_tooltip((prompt, response)[c][:4000]))  # dataset / model text: never markup
                else:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    if score is not None:
                        item.setData(Qt.ItemDataRole.UserRole, float(score))
                self.table.setItem(r, c, item)
        self.detail.set_markdown("")
        self._update_label()

    def _update_label(self) -> None:
        if self._shown is None:
            return
        event = self._events[self._shown]
        latest = " (latest)" if self._shown == len(self._events) - 1 else ""
        self.step_label.setText(f"step {event.step}{latest} \u00b7 {len(event.rows)} rows")

    def _on_table_item_selection_changed(self) -> None:
        rows = {i.row() for i in self.table.selectedItems()}
        if not rows or self._shown is None:
            return
        row = self._events[self._shown].rows[min(rows)]
        score = _score_text(row.get("score"))
        self.detail.set_markdown(f"#### Prompt\n\n{row.get('prompt', '')}\n\n#### Response"
                                 f"{' (score ' + score + ')' if score else ''}\n\n{row.get('response', '')}")


def _score_text(score) -> str:
    if score is None:
        return ""
    score = float(score)
    return f"{score:.3f}" if math.isfinite(score) else str(score)
