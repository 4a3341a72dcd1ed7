"""What the Rank page shows for one item, and what it shows when there is none.

:class:`ItemView`: the prompt (with its chat history) in a pane sized to
its text, the response columns below it (a splitter between them), the
k-wise ranking strip, the decision bar (flags, rationale note, diff toggle)
and the last-decision bar (with the reveal toggle). It only displays; the
panel decides what happens on a key or a click.

:class:`EmptyStateView`: a calm centred note saying why there is nothing to
rank, with the two ways forward.
"""

from __future__ import annotations

from typing import Optional, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSplitter, QToolButton,
                               QVBoxLayout, QWidget)

from workbench.store.queue import QueueItem

from ui.common.elided_label import ElidedLabel
from ui.common.render import MarkdownView

from .columns import ComparisonColumnsView
from .kwise import RankOrderView

#: Flag keys: key -> (flag stored with the decision, button text).
FLAG_KEYS = {"U": ("unsafe", "Unsafe"), "O": ("off-topic", "Off-topic"), "F": ("factual-error", "Factual error")}


def _toggle(text: str, tip: str, name: str = "") -> QToolButton:
    b = QToolButton()
    b.setText(text)
    b.setCheckable(True)
    b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    b.setToolTip(tip)
    if name:
        b.setObjectName(name)
    return b


class ItemView(QWidget):
    """The prompt, the responses and the decision controls of one item (see the module docstring)."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        # -- the prompt
        self.prompt_title = QLabel("Prompt")
        title_font = QFont(self.prompt_title.font())
        title_font.setWeight(QFont.Weight.DemiBold)
        self.prompt_title.setFont(title_font)
        self.tier_label = QLabel()
        self.tier_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        head = QHBoxLayout()
        head.setContentsMargins(2, 0, 2, 0)
        head.addWidget(self.prompt_title)
        head.addWidget(self.tier_label)
        head.addStretch(1)
        self.prompt_view = MarkdownView()
        self.prompt_view.setObjectName("promptView")
        self.prompt_view.setFrameShape(QFrame.Shape.StyledPanel)
        prompt_box = QWidget()
        pl = QVBoxLayout(prompt_box)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.setSpacing(4)
        pl.addLayout(head)
        pl.addWidget(self.prompt_view)
        # -- the responses
        self.columns = ComparisonColumnsView()
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(prompt_box)
        self.splitter.addWidget(self.columns)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setSizes([120, 520])
        self._prompt_manual = False  # the user moved the splitter: keep their prompt height
        self._fitting = False
        self.splitter.splitterMoved.connect(self._on_splitter_moved)
        # -- k-wise
        self.order_view = RankOrderView()
        self.kwise_commit = QPushButton("Save ranking")
        self.kwise_commit.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.order_row = QWidget()
        order = QHBoxLayout(self.order_row)
        order.setContentsMargins(0, 0, 0, 0)
        order.addWidget(self.order_view, 1)
        order.addWidget(self.kwise_commit)
        # -- flags, note, diff
        decision = QHBoxLayout()
        decision.setSpacing(6)
        self.flag_buttons: dict[str, QToolButton] = {}
        for key, (flag, text) in FLAG_KEYS.items():
            self.flag_buttons[flag] = _toggle(text, f"Flag this item as {text.lower()} ({key})", f"flag_{flag}")
            decision.addWidget(self.flag_buttons[flag])
        self.note = QLineEdit()
        self.note.setObjectName("note")
        self.note.setPlaceholderText("Rationale (optional, N) \u2014 saved with the decision")
        decision.addSpacing(8)
        decision.addWidget(self.note, 1)
        self.diff_button = _toggle("Diff", "Highlight the words that differ between the two responses (D)")
        self.diff_button.toggled.connect(self.columns.set_diff)
        decision.addWidget(self.diff_button)
        # -- the last decision
        self.last_label = ElidedLabel()
        self.last_label.setObjectName("lastDecision")
        self.last_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.reveal_button = _toggle("Reveal models", "Show which models wrote the last decided item (R)")
        # Revealed model paths are long: elided in the middle (run folder and step stay readable).
        self.reveal_label = ElidedLabel(mode=Qt.TextElideMode.ElideMiddle)
        self.reveal_label.setObjectName("revealLabel")
        self.reveal_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        last = QHBoxLayout()
        last.addWidget(self.last_label, 1)
        last.addWidget(self.reveal_button)
        last.addWidget(self.reveal_label, 1)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(8)
        lay.addWidget(self.splitter, 1)
        lay.addWidget(self.order_row)
        lay.addLayout(decision)
        lay.addLayout(last)

    def show_item(self, item: QueueItem, headings: Sequence[tuple[str, str]], *, kwise: bool) -> None:
        """Show ``item`` with column ``headings`` (title, keys); flags, note and ranks start empty."""
        self.prompt_view.set_value(item.prompt)
        turns = len(item.prompt) if isinstance(item.prompt, list) else 0
        self.prompt_title.setText(f"Prompt \u00b7 {turns} turns" if turns > 1 else "Prompt")
        self.tier_label.setText("skipped earlier" if item.tier == "skipped" else "")
        self.columns.show_responses([c.response for c in item.candidates], headings,
                                    diff=self.diff_button.isChecked())
        self.diff_button.setVisible(len(item.candidates) == 2)
        self.fit_prompt()
        self.order_row.setVisible(kwise)
        if kwise:
            self.order_view.reset([str(i + 1) for i in range(len(item.candidates))])
        for b in self.flag_buttons.values():
            b.setChecked(False)
        self.note.clear()

    def flags(self) -> list[str]:
        return [flag for flag, b in self.flag_buttons.items() if b.isChecked()]

    def fit_prompt(self) -> None:
        """Give the prompt the height it needs (a short question gets a short pane), at most 40% of
        the view, until the user moves the splitter."""
        if self._prompt_manual:
            return
        doc = self.prompt_view.document()
        doc.setTextWidth(self.prompt_view.viewport().width() or self.width())
        head = self.prompt_title.sizeHint().height() + 4
        frame = 2 * self.prompt_view.frameWidth() + 6
        sizes = self.splitter.sizes()
        total = sum(sizes) or self.splitter.height()
        want = int(min(max(doc.size().height() + head + frame, 72), 0.4 * total))
        if len(sizes) == 2 and abs(sizes[0] - want) > 6:
            self._fitting = True
            self.splitter.setSizes([want, total - want])
            self._fitting = False

    def _on_splitter_moved(self, *_args) -> None:
        if not self._fitting:
            self._prompt_manual = True


class EmptyStateView(QWidget):
    """A title, a line of explanation, and buttons for a new queue and for generating candidates."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        f = QFont(self.title.font())
        f.setPointSizeF(f.pointSizeF() * 1.4)
        f.setWeight(QFont.Weight.DemiBold)
        self.title.setFont(f)
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text = QLabel()
        self.text.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.text.setWordWrap(True)
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.verdict = QLabel()  # a blind comparison's result, where the comparison ends
        self.verdict.setTextFormat(Qt.TextFormat.PlainText)  # it names the models (user paths): never markup
        self.verdict.setObjectName("verdict")
        self.verdict.setWordWrap(True)
        self.verdict.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.verdict.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        vf = QFont(self.verdict.font())
        vf.setPointSizeF(vf.pointSizeF() * 1.15)
        self.verdict.setFont(vf)
        self.verdict.hide()
        self.new_queue = QPushButton("New queue\u2026")
        self.generate = QPushButton("Generate candidates\u2026")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.new_queue)
        buttons.addWidget(self.generate)
        buttons.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addStretch(1)
        lay.addWidget(self.title)
        lay.addWidget(self.verdict)
        lay.addWidget(self.text)
        lay.addSpacing(12)
        lay.addLayout(buttons)
        lay.addStretch(2)

    def set_verdict(self, text: str) -> None:
        self.verdict.setText(text)
        self.verdict.setVisible(bool(text))

    def show_state(self, title: str, text: str, *, actions: bool) -> None:
        self.title.setText(title)
        self.text.setText(text)
        self.new_queue.setVisible(actions)
        self.generate.setVisible(actions)
