"""The on-screen cheat sheet: the keys of the current mode as key caps, always visible.

A single calm row under the columns; ``?`` expands it to every key of
the page (the same list :meth:`RankingPanel.shortcuts` gives the main
window's Keyboard Shortcuts dialog).
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

#: (keys, what they do) shown in the one-line sheet, per mode.
PAIRWISE_KEYS = [("1 / A", "left better"), ("2 / B", "right better"), ("T", "tie"), ("X", "both bad"),
                 ("S", "skip"), ("Ctrl+Z", "undo"), ("?", "more keys")]
KWISE_KEYS = [("1–4", "next rank"), ("Enter", "save"), ("Backspace", "reset"), ("T", "all tied"),
              ("X", "all bad"), ("S", "skip"), ("Ctrl+Z", "undo"), ("?", "more keys")]
#: Every key of the page, for the expanded sheet and the shortcuts dialog.
ALL_KEYS = [
    ("1 or A", "pairwise: the left response is better"),
    ("2 or B", "pairwise: the right response is better"),
    ("1–4", "k-wise: give that response the next rank (best first)"),
    ("Enter", "k-wise: save the ranking"),
    ("Backspace", "k-wise: clear the ranks"),
    ("T", "tie: all equally good"),
    ("X", "all bad"),
    ("S", "skip: the item comes back at the end"),
    ("Ctrl+Z", "undo the last decision (it shows again)"),
    ("R", "reveal which models wrote the last decided item"),
    ("D", "highlight the words that differ"),
    ("E", "edit a response (demonstration or better candidate)"),
    ("N", "write a rationale note; Enter or Esc returns"),
    ("U / O / F", "flag unsafe / off-topic / factual error"),
    ("?", "show or hide all keys"),
]

_CAP_STYLE = ("QLabel { border: 1px solid palette(mid); border-radius: 4px; padding: 1px 6px;"
              " background: palette(button); color: palette(button-text); }")


def key_cap(text: str) -> QLabel:
    cap = QLabel(text)
    cap.setObjectName("keyCap")
    cap.setStyleSheet(_CAP_STYLE)
    return cap


class CheatSheetView(QWidget):
    """The key caps of a mode in one row, or (expanded) every key of the page."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("cheatSheet")
        # One prebuilt row per mode, switched by visibility (rebuilding rows per queue would leave
        # half-deleted labels painted until the event loop deletes them).
        self._rows = {mode: self._key_row(keys) for mode, keys in (("pairwise", PAIRWISE_KEYS),
                                                                  ("kwise", KWISE_KEYS))}
        self._full = QWidget()
        grid = QGridLayout(self._full)
        grid.setContentsMargins(0, 6, 0, 0)
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(4)
        half = (len(ALL_KEYS) + 1) // 2
        for i, (keys, what) in enumerate(ALL_KEYS):
            r, c = i % half, (i // half) * 2
            grid.addWidget(key_cap(keys), r, c)
            label = QLabel(what)
            grid.addWidget(label, r, c + 1)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        self._full.setVisible(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for row in self._rows.values():
            lay.addWidget(row)
        lay.addWidget(self._full)
        self.mode = ""
        self.set_mode("pairwise")

    @staticmethod
    def _key_row(keys) -> QWidget:
        row = QWidget()
        lay = QHBoxLayout(row)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        for cap, what in keys:
            lay.addWidget(key_cap(cap))
            label = QLabel(what)
            label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
            lay.addWidget(label)
            lay.addSpacing(8)
        lay.addStretch(1)
        return row

    def set_mode(self, mode: str) -> None:
        """Show the keys of ``mode`` (``pairwise`` or ``kwise``)."""
        self.mode = mode
        for name, row in self._rows.items():
            row.setVisible(name == mode)

    @property
    def expanded(self) -> bool:
        return self._full.isVisibleTo(self)

    def toggle(self) -> None:
        self._full.setVisible(not self.expanded)
