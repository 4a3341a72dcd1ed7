"""The dataset list on the left of the dataset manager.

One row per dataset: name, kind and style, live rows, train / validation
counts, deleted rows, frozen snapshots (short hashes in the tooltip) and
when it last changed. The summaries come from
:func:`workbench.store.browse.list_summaries` (read off the GUI thread by
the page); this view only shows them.
"""

from __future__ import annotations

import time
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from workbench.store.browse import DatasetSummary

from ..common.render import plain_tooltip

COLUMNS = ("Name", "Kind", "Rows", "Train/val", "Deleted", "Snapshot", "Changed")
#: Columns hidden first, in this order, when the list is too narrow to show them all beside a
#: readable name (the card under the list shows the same facts for the selected dataset).
DROP_ORDER = (4, 6, 5, 3)
#: Narrowest the Name column gets before a column is dropped.
NAME_MIN = 120
#: Characters of a snapshot hash shown in the list (the tooltip and the card show more).
SHORT_HASH = 7


def changed_text(ts: float, now: Optional[float] = None) -> str:
    """A short "when": the time today, else the date."""
    now = time.time() if now is None else now
    local, today = time.localtime(ts), time.localtime(now)
    if local[:3] == today[:3]:
        return time.strftime("%H:%M", local)
    return time.strftime("%Y-%m-%d", local)


class _NumberItem(QTableWidgetItem):
    def __init__(self, value: int, text: Optional[str] = None) -> None:
        super().__init__(f"{value:,}" if text is None else text)
        self.setData(Qt.ItemDataRole.UserRole + 1, value)
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


class DatasetListView(QTableWidget):
    """Datasets of the workspace; emits ``dataset_selected(summary or None)``."""

    dataset_selected = Signal(object)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setObjectName("datasetList")
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().setVisible(False)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setWordWrap(False)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setMinimumSectionSize(36)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        header.setHighlightSections(False)
        header.setSectionsMovable(False)
        self.summaries: list[DatasetSummary] = []
        self._selected_id: Optional[int] = None
        self.itemSelectionChanged.connect(self._on_item_selection_changed)

    def set_summaries(self, summaries: list[DatasetSummary]) -> None:
        """Show ``summaries``, keeping the selected dataset selected when it is still there."""
        keep = self._selected_id
        self.summaries = list(summaries)
        self.blockSignals(True)
        try:
            self.setRowCount(len(summaries))
            for row, s in enumerate(summaries):
                name = QTableWidgetItem(s.name)
                name.setToolTip(plain_tooltip(s.description or s.name))
                kind = QTableWidgetItem(s.kind if s.style == "standard" else f"{s.kind} \u00b7 chat")
                kind.setToolTip(f"{s.kind} dataset, {s.style} style")
                splits = _NumberItem(s.train, f"{s.train:,} / {s.validation:,}")
                splits.setToolTip(f"train {s.train:,}, validation {s.validation:,}, "
                                  f"no split {s.unassigned:,}")
                snaps = QTableWidgetItem(s.snapshots[-1].hash[:SHORT_HASH] if s.snapshots else "\u2014")
                if s.snapshots:
                    if len(s.snapshots) > 1:
                        snaps.setText(f"{s.snapshots[-1].hash[:SHORT_HASH]} +{len(s.snapshots) - 1}")
                    snaps.setToolTip("\n".join(
                        f"{b.short_hash}  {b.rows:,} rows  {time.strftime('%Y-%m-%d %H:%M', time.localtime(b.created_at))}"
                        + (f"  {b.note}" if b.note else "") for b in s.snapshots))
                changed = QTableWidgetItem(changed_text(s.updated_at))
                changed.setToolTip(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.updated_at)))
                numbers = (_NumberItem(s.rows), splits, _NumberItem(s.deleted))
                if not s.counted:
                    numbers = tuple(QTableWidgetItem("\u2026") for _ in numbers)   # counting
                for col, item in enumerate((name, kind, *numbers[:1], *numbers[1:], snaps, changed)):
                    item.setData(Qt.ItemDataRole.UserRole, s.id)
                    self.setItem(row, col, item)
        finally:
            self.blockSignals(False)
        self.fit_columns()
        ids = [s.id for s in summaries]
        if keep in ids:
            self.selectRow(ids.index(keep))
        else:
            self.clearSelection()
            if keep is not None:
                self._selected_id = None
                self.dataset_selected.emit(None)

    def fit_columns(self) -> None:
        """Show every column that fits beside a readable name; drop the least useful ones first
        (never a horizontal scroll bar for the list at the window's default width)."""
        header = self.horizontalHeader()
        widths = {col: max(header.sectionSizeHint(col), self.sizeHintForColumn(col))
                  for col in range(1, len(COLUMNS))}
        need = NAME_MIN + sum(widths.values())
        hidden = set()
        for col in DROP_ORDER:
            if need <= self.viewport().width():
                break
            hidden.add(col)
            need -= widths[col]
        for col in range(1, len(COLUMNS)):
            header.setSectionHidden(col, col in hidden)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self.fit_columns()

    def current_summary(self) -> Optional[DatasetSummary]:
        for s in self.summaries:
            if s.id == self._selected_id:
                return s
        return None

    def select_name(self, name: str) -> bool:
        for row, s in enumerate(self.summaries):
            if s.name == name:
                self.selectRow(row)
                return True
        return False

    def _on_item_selection_changed(self) -> None:
        rows = {i.row() for i in self.selectedIndexes()}
        summary = self.summaries[min(rows)] if rows else None
        new_id = summary.id if summary else None
        if new_id != self._selected_id:
            self._selected_id = new_id
            self.dataset_selected.emit(summary)
