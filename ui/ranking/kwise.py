"""The k-wise ranking strip: number keys assign ranks in order, or drag the chips into order.

Pressing a column's number gives it the next rank (the first press is the
best); when one column is left it takes the last rank. Dragging a chip sets
the whole order explicitly. Backspace starts over; Enter commits (in the
panel). Unranked columns are drawn muted.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QLabel, QListView, QListWidget, QListWidgetItem, QWidget


class RankOrderView(QWidget):
    """See the module docstring. ``changed`` fires on every change of the order."""

    changed = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.label = QLabel("Ranking, best first:")
        self.chips = QListWidget()
        self.chips.setObjectName("rankChips")
        self.chips.setFlow(QListView.Flow.LeftToRight)
        self.chips.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.chips.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.chips.setSpacing(4)
        self.chips.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.chips.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.chips.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.chips.setFixedHeight(self.fontMetrics().height() + 22)
        self.chips.setFrameShape(QListWidget.Shape.NoFrame)
        self.chips.viewport().setAutoFillBackground(False)
        self.chips.setStyleSheet(
            "QListWidget#rankChips { background: transparent; }"
            " QListWidget#rankChips::item { border: 1px solid palette(mid); border-radius: 4px;"
            " background: palette(base); }"
            " QListWidget#rankChips::item:selected { border-color: palette(highlight); color: palette(text); }")
        self.chips.model().rowsMoved.connect(self._on_rows_moved)
        self.hint = QLabel("number keys rank · drag to reorder · Backspace resets · Enter saves")
        self.hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.label)
        lay.addWidget(self.chips, 1)
        lay.addWidget(self.hint)
        self._labels: list[str] = []
        self._order: list[int] = []
        self._assigned = 0

    # -- state ----------------------------------------------------------------------------
    def reset(self, labels: Optional[list[str]] = None) -> None:
        """Start over with columns labelled ``labels`` (default: the current ones), none ranked."""
        if labels is not None:
            self._labels = list(labels)
        self._order = list(range(len(self._labels)))
        self._assigned = 0
        self._refresh()

    def assign(self, column: int) -> bool:
        """Give ``column`` the next rank; False if it is out of range or already ranked."""
        if not 0 <= column < len(self._labels) or column in self._order[:self._assigned]:
            return False
        self._order.remove(column)
        self._order.insert(self._assigned, column)
        self._assigned += 1
        if self._assigned == len(self._labels) - 1:
            self._assigned = len(self._labels)  # the one left is last
        self._refresh()
        return True

    @property
    def complete(self) -> bool:
        return bool(self._labels) and self._assigned >= len(self._labels)

    def order(self) -> list[int]:
        """Column indices, best first (only meaningful when :attr:`complete`)."""
        return list(self._order)

    def ranks(self) -> dict[int, int]:
        """``{column: rank}`` for the columns ranked so far (1 = best)."""
        return {c: i + 1 for i, c in enumerate(self._order[:self._assigned])}

    # -- view -----------------------------------------------------------------------------
    def _refresh(self) -> None:
        self._rebuild()
        self.changed.emit()

    def _rebuild(self) -> None:
        self.chips.blockSignals(True)
        self.chips.clear()
        muted = self.palette().color(QPalette.ColorRole.PlaceholderText)
        for pos, col in enumerate(self._order):
            item = QListWidgetItem(self._labels[col])
            item.setData(Qt.ItemDataRole.UserRole, col)
            item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            item.setSizeHint(QSize(self.fontMetrics().horizontalAdvance(self._labels[col]) + 34,
                                   self.fontMetrics().height() + 10))
            if pos >= self._assigned:
                item.setForeground(muted)
            self.chips.addItem(item)
        self.chips.blockSignals(False)

    def _on_rows_moved(self, *args) -> None:
        self._order = [self.chips.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.chips.count())]
        self._assigned = len(self._order)
        self.changed.emit()
        # Not from inside the model's signal: rebuilding the list there would pull the rows away
        # under the drag that is still finishing.
        QTimer.singleShot(0, self._rebuild)
