"""A one-line label that never widens its window: long text is elided, the full text is its tooltip.

A plain ``QLabel`` without word wrap asks for its whole text's width as its
*minimum*; one long line (a queue summary, revealed model paths, a job
sampling two checkpoints) then raises the minimum width of the page, of the
page stack and so of the window, which Qt grows to fit. :class:`ElidedLabel`
asks for the full width only as its *preferred* size and for a few
characters as its minimum; when it gets less than the full width it paints
the text elided (``…``) and shows the full text as its tooltip.

:meth:`ElidedLabel.text` returns the full text, so callers and tests read
what was set, not what fits.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from .render import plain_tooltip

#: The least a label asks for, in average character widths (enough for "Sav…").
MIN_CHARS = 4


class ElidedLabel(QLabel):
    """See the module docstring. ``mode`` is where the ``…`` goes (paths read best elided in the middle)."""

    def __init__(self, text: str = "", parent: Optional[QWidget] = None, *,
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight) -> None:
        super().__init__(parent)
        self._full = ""
        self._mode = mode
        self._own_tip = ""  # a tooltip set by the caller: shown when the text is not elided
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setWordWrap(False)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setText(text)

    # -- the text -------------------------------------------------------------------------
    def text(self) -> str:  # noqa: D401 - QLabel API
        """The full text (not the elided one on screen)."""
        return self._full

    def setText(self, text: str) -> None:  # noqa: N802 - QLabel API
        self._full = text or ""
        self._fit()
        self.updateGeometry()

    def clear(self) -> None:
        """No text, and no tooltip of the caller's either."""
        self._own_tip = ""
        self.setText("")

    def setToolTip(self, tip: str) -> None:  # noqa: N802 - QLabel API
        self._own_tip = tip or ""
        self._fit()

    def is_elided(self) -> bool:
        return super().text() != self._full

    def shown_text(self) -> str:
        """The text as painted (elided when it does not fit)."""
        return super().text()

    # -- sizes ----------------------------------------------------------------------------
    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        fm = self.fontMetrics()
        m = self.contentsMargins()
        width = fm.horizontalAdvance(self._full) + m.left() + m.right() + 2 * self.margin() + 2
        return QSize(width, super().minimumSizeHint().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        hint = self.sizeHint()
        least = self.fontMetrics().averageCharWidth() * MIN_CHARS
        return QSize(min(hint.width(), least), hint.height())

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        m = self.contentsMargins()
        room = self.width() - m.left() - m.right() - 2 * self.margin()
        shown = self.fontMetrics().elidedText(self._full, self._mode, max(0, room)) \
            if self.fontMetrics().horizontalAdvance(self._full) > room else self._full
        if shown != super().text():
            QLabel.setText(self, shown)
        elided = shown != self._full
        # The full text is user data (paths, model names): shown literally, never as markup.
        QLabel.setToolTip(self, plain_tooltip(self._full if elided and not self._own_tip else
                                              (f"{self._own_tip}\n\n{self._full}" if elided else self._own_tip)))
