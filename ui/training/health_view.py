"""The run's health warnings, shown beside its plots.

Two sources, one list: the PPO health rules over the metric series
(:mod:`workbench.train.health`, evaluated by the runs page as events
arrive) and the ``warning`` events the job wrote itself (NaN loss, config
warnings...). Each card says what went wrong, since which step, whether it
is still going on, and what to do.
"""

from __future__ import annotations

from typing import Optional, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QStyle, QVBoxLayout,
                               QWidget)

from workbench.jobs.events import WarningEvent
from workbench.train.health import HealthWarning


class _WarningCard(QFrame):
    """One warning: icon, title, when, message."""

    def __init__(self, title: str, when: str, message: str, *, active: bool, parent: QWidget) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("healthCard")
        self._icon = QLabel(self)
        self._icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self._active: Optional[bool] = None
        self.title_label = QLabel(title, self)
        self.title_label.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        font = QFont(self.title_label.font())
        font.setWeight(QFont.Weight.DemiBold)
        self.title_label.setFont(font)
        self.title_label.setWordWrap(True)
        self.when_label = QLabel(when, self)
        self.when_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.when_label.setWordWrap(True)
        self.message_label = QLabel(message, self)
        self.message_label.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self.title_label)
        text.addWidget(self.when_label)
        text.addWidget(self.message_label)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 6, 8, 8)
        row.addWidget(self._icon, 0, Qt.AlignmentFlag.AlignTop)
        row.addLayout(text, 1)
        self.update_state(when, message, active)

    def update_state(self, when: str, message: str, active: bool) -> None:
        """New "when" text and message (a live warning's last step moves on every step)."""
        if self.when_label.text() != when:
            self.when_label.setText(when)
        if self.message_label.text() != message:
            self.message_label.setText(message)
        if active != self._active:
            self._active = active
            kind = QStyle.StandardPixmap.SP_MessageBoxWarning if active else \
                QStyle.StandardPixmap.SP_MessageBoxInformation
            self._icon.setPixmap(self.style().standardIcon(kind).pixmap(20, 20))


class HealthView(QWidget):
    """Cards for the health rules' warnings and the job's own warnings (newest step last)."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._key: tuple = ()
        self.cards: list[_WarningCard] = []
        header = QLabel("Health", self)
        font = QFont(header.font())
        font.setWeight(QFont.Weight.DemiBold)
        header.setFont(font)
        self._empty = QLabel("No problems detected.", self)
        self._empty.setWordWrap(True)
        self._empty.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self._list = QWidget(self)
        self._list_layout = QVBoxLayout(self._list)
        self._list_layout.setContentsMargins(0, 0, 4, 0)
        self._list_layout.setSpacing(6)
        self._list_layout.addWidget(self._empty)
        self._list_layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self._list)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(header)
        layout.addWidget(scroll, 1)

    def set_warnings(self, health: Sequence[HealthWarning], job: Sequence[WarningEvent]) -> None:
        """Show these warnings. Cards are rebuilt only when the set of warnings changes; a live
        warning whose last step moved on only gets its texts updated (this runs on every tick)."""
        items = []
        for w in health:
            if w.active:
                when = f"since step {w.step}" if w.last_step != w.step else f"at step {w.step}"
            else:
                when = f"steps {w.step}\u2013{w.last_step}, not seen since" if w.last_step != w.step \
                    else f"at step {w.step}, not seen since"
            items.append(((w.code, w.metric, w.step), w.step, w.title, when, w.message, w.active))
        for i, w in enumerate(job):
            when = f"reported by the job at step {w.step}" if w.step is not None else "reported by the job"
            items.append((("job", i, w.code), w.step if w.step is not None else -1, _job_title(w.code), when,
                          w.message, True))
        items.sort(key=lambda it: it[1])
        key = tuple((it[0], it[2]) for it in items)
        if key == self._key:
            for card, (_k, _step, _title, when, message, active) in zip(self.cards, items):
                card.update_state(when, message, active)
            return
        self._key = key
        for card in self.cards:
            self._list_layout.removeWidget(card)
            card.deleteLater()
        self.cards = []
        for i, (_k, _step, title, when, message, active) in enumerate(items):
            card = _WarningCard(title, when, message, active=active, parent=self._list)
            self._list_layout.insertWidget(i, card)
            self.cards.append(card)
        self._empty.setVisible(not items)

    def texts(self) -> list[str]:
        """``"title: message"`` of each card, in display order (tests)."""
        return [f"{c.title_label.text()}: {c.message_label.text()}" for c in self.cards]


_JOB_TITLES = {"kl_high": "KL high", "nan_loss": "Loss is NaN", "nan_score": "Score is NaN", "nan_grad": "Gradient is NaN",
               "config": "Configuration", "assistant_only_loss": "Whole conversations are learned"}


def _job_title(code: str) -> str:
    return _JOB_TITLES.get(code, code.replace("_", " ").capitalize())
