"""The candidate responses side by side: 2-4 columns with synchronized scrolling and a word diff.

:class:`ComparisonColumnsView` owns four :class:`ResponseColumnView`\\ s
built once and shows as many as the item has (building widgets per item
would cost the frame budget). Scrolling one column scrolls the others to
the same relative position. With the diff on and two responses shown, each
is drawn as plain text with the words the other lacks highlighted (a
blend of the palette's highlight and base colours, so it works in light and
dark themes). ``painted`` is emitted once after a new item has been painted:
what the latency benchmark and the prefetching wait for.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont, QPalette, QTextCharFormat, QTextCursor, QTextFormat
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from ui.common.render import DISPLAY_LIMIT, MarkdownView, value_to_markdown

from .diff import word_diff

MAX_COLUMNS = 4


def response_markdown(value: Any) -> str:
    """Markdown of a response: a lone assistant message shows as its content, no role heading."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict) \
            and value[0].get("role") == "assistant" and isinstance(value[0].get("content"), str):
        return value[0]["content"]
    return value_to_markdown(value)


def response_text(value: Any) -> str:
    """Plain text of a response (chat turns' contents joined), for the diff and for editing."""
    if isinstance(value, list):
        parts = [m.get("content") for m in value if isinstance(m, dict)]
        return "\n\n".join(p for p in parts if isinstance(p, str))
    return "" if value is None else str(value)


def blend(a: QColor, b: QColor, share_a: float) -> QColor:
    """``share_a`` of colour ``a`` over ``b``."""
    s = max(0.0, min(1.0, share_a))
    return QColor(int(a.red() * s + b.red() * (1 - s)), int(a.green() * s + b.green() * (1 - s)),
                  int(a.blue() * s + b.blue() * (1 - s)))


class ResponseTextView(MarkdownView):
    """A response: Markdown, or plain text with highlighted spans (the diff)."""

    painted = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self._announce = False
        self.highlights: list[tuple[int, int]] = []

    def expect_paint(self) -> None:
        """Emit ``painted`` after the next paint."""
        self._announce = True

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().paintEvent(event)
        if self._announce:
            self._announce = False
            self.painted.emit()

    def set_highlighted(self, text: str, spans: Sequence[tuple[int, int]]) -> None:
        self._markdown = ""
        self._joins = None
        if len(text) > DISPLAY_LIMIT:  # a huge response: diff its start (long lines freeze the layout)
            text = text[:DISPLAY_LIMIT]
            spans = [(a, min(b, DISPLAY_LIMIT)) for a, b in spans if a < DISPLAY_LIMIT]
        self.highlights = list(spans)
        self.setPlainText(text)
        if not spans:
            return
        pal = self.palette()
        fmt = QTextCharFormat()
        fmt.setBackground(blend(pal.color(QPalette.ColorRole.Highlight), pal.color(QPalette.ColorRole.Base), 0.35))
        cursor = QTextCursor(self.document())
        for start, end in spans:
            cursor.setPosition(start)
            cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
            cursor.mergeCharFormat(fmt)

    def set_markdown(self, markdown: str) -> None:
        self.highlights = []
        super().set_markdown(markdown)
        if "```" in markdown or "~~~" in markdown:
            self._shade_code_blocks()

    def _shade_code_blocks(self) -> None:
        """Code blocks on the palette's alternate base, indented a little: easier to tell from prose."""
        shade = self.palette().color(QPalette.ColorRole.AlternateBase)
        cursor = QTextCursor(self.document())
        block = self.document().begin()
        while block.isValid():
            fmt = block.blockFormat()
            if fmt.hasProperty(QTextFormat.Property.BlockCodeFence):
                fmt.setBackground(shade)
                fmt.setLeftMargin(6)
                cursor.setPosition(block.position())
                cursor.setBlockFormat(fmt)
            block = block.next()


class ResponseColumnView(QFrame):
    """One candidate: a heading (its letter or number, the keys that pick it, its rank) and its text."""

    edit_requested = Signal(int)

    def __init__(self, index: int, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.index = index
        self.setObjectName(f"responseColumn{index}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        font = QFont(self.title.font())
        font.setPointSizeF(font.pointSizeF() * 1.15)
        font.setWeight(QFont.Weight.DemiBold)
        self.title.setFont(font)
        self.keys = QLabel()
        self.keys.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.rank = QLabel()
        self.rank.setObjectName("rankBadge")
        self.rank.setFont(font)
        self.rank.setForegroundRole(QPalette.ColorRole.Highlight)
        self.edit = QToolButton()
        self.edit.setText("Edit…")
        self.edit.setToolTip("Edit this response: save it as a demonstration or as a better candidate (E)")
        self.edit.setAutoRaise(True)
        self.edit.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.edit.clicked.connect(lambda: self.edit_requested.emit(self.index))
        head = QHBoxLayout()
        head.setContentsMargins(12, 8, 8, 4)
        head.addWidget(self.title)
        head.addSpacing(6)
        head.addWidget(self.keys)
        head.addStretch(1)
        head.addWidget(self.rank)
        head.addWidget(self.edit)
        self.body = ResponseTextView()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(1, 1, 1, 1)
        lay.setSpacing(0)
        lay.addLayout(head)
        lay.addWidget(self.body, 1)

    def set_heading(self, title: str, keys: str) -> None:
        self.title.setText(title)
        self.keys.setText(keys)

    def set_rank(self, rank: Optional[int]) -> None:
        self.rank.setText("" if rank is None else _ordinal(rank))


def _ordinal(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


class ComparisonColumnsView(QWidget):
    """2-4 responses side by side (see the module docstring)."""

    painted = Signal()
    edit_requested = Signal(int)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.columns = [ResponseColumnView(i) for i in range(MAX_COLUMNS)]
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(10)
        self._syncing = False
        for col in self.columns:
            lay.addWidget(col, 1)
            col.edit_requested.connect(self.edit_requested)
            col.body.painted.connect(self._on_column_painted)
            col.body.verticalScrollBar().valueChanged.connect(
                lambda value, c=col: self._on_scrolled(c, value))
        self._values: list[Any] = []
        self._diff = False
        self._waiting = False

    @property
    def count(self) -> int:
        return len(self._values)

    def show_responses(self, values: Sequence[Any], headings: Sequence[tuple[str, str]], *,
                       diff: bool = False) -> None:
        """Show ``values`` (stored responses) under ``headings`` (title, keys hint)."""
        self._values = list(values)
        self._diff = diff
        for i, col in enumerate(self.columns):
            if i < len(values):
                col.set_heading(*headings[i])
                col.set_rank(None)
                col.setVisible(True)
            else:
                col.setVisible(False)
        self._render()
        self._waiting = True
        for col in self.columns[:len(values)]:
            col.body.verticalScrollBar().setValue(0)
            col.body.expect_paint()

    def set_diff(self, on: bool) -> None:
        if on != self._diff:
            self._diff = on
            self._render()

    @property
    def diff_on(self) -> bool:
        return self._diff

    def _render(self) -> None:
        values = self._values
        if self._diff and len(values) == 2:
            a, b = response_text(values[0]), response_text(values[1])
            da, db = word_diff(a, b)
            self.columns[0].body.set_highlighted(a, da)
            self.columns[1].body.set_highlighted(b, db)
            return
        for col, value in zip(self.columns, values):
            col.body.set_markdown(response_markdown(value))

    def set_ranks(self, ranks: dict[int, int]) -> None:
        """Rank badges: ``{column: rank}`` (1 = best); columns not in it show none."""
        for i, col in enumerate(self.columns[:self.count]):
            col.set_rank(ranks.get(i))

    def clear(self) -> None:
        self._values = []
        for col in self.columns:
            col.setVisible(False)

    def _on_column_painted(self) -> None:
        if self._waiting:
            self._waiting = False
            self.painted.emit()

    def _on_scrolled(self, source: ResponseColumnView, value: int) -> None:
        if self._syncing:
            return
        bar = source.body.verticalScrollBar()
        fraction = value / bar.maximum() if bar.maximum() > 0 else 0.0
        self._syncing = True
        try:
            for col in self.columns[:self.count]:
                if col is not source:
                    other = col.body.verticalScrollBar()
                    other.setValue(round(fraction * other.maximum()))
        finally:
            self._syncing = False
