"""The record detail pane: a record rendered the way a person reads it.

Chat turns get role headings, Markdown and code render (through
:class:`ui.common.render.MarkdownView`, which never interprets HTML from
the data). A preference pair shows its prompt on top and chosen / rejected
side by side; an SFT record its prompt and completion (or its whole
conversation); a line of metadata says split, tags, scores and lineage.
"""

from __future__ import annotations

import os
import time
from typing import Any, Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import QFrame, QLabel, QSplitter, QStackedWidget, QVBoxLayout, QWidget

from workbench.store.browse import RecordDetail
from workbench.store.records import Record

from ..common.render import MarkdownView


def _fmt_score(value: Optional[float]) -> str:
    return "" if value is None else f"{value:g}"


def lineage_text(detail: RecordDetail) -> str:
    """Where the record came from, as one line."""
    rec, lin = detail.record, detail.record.lineage
    parts = []
    if lin is not None:
        if lin.path:
            name = os.path.basename(lin.path)
            parts.append(f"{name}, line {lin.line}" if lin.line else name)
        elif lin.source_kind:
            parts.append(f"{lin.source_kind} source")
        if lin.replaces_id:
            parts.append(f"edit of record #{lin.replaces_id}")
        if lin.ranking_id:
            r = detail.ranking
            who = f" by {r['annotator']}" if r else ""
            when = f" on {time.strftime('%Y-%m-%d', time.localtime(r['created_at']))}" if r and r.get("created_at") else ""
            parts.append(f"ranking #{lin.ranking_id}{who}{when}")
        if lin.candidate_id:
            c = detail.candidate
            model = f" from {c['model']}" if c and c.get("model") else ""
            parts.append(f"candidate #{lin.candidate_id}{model}")
    if detail.prompt_rankings:
        parts.append(f"its prompt was ranked {detail.prompt_rankings}\u00d7")
    if detail.replaced_by:
        parts.append(f"edited into record #{detail.replaced_by}")
    if rec.id is not None and not parts:
        parts.append("no recorded source")
    return "; ".join(parts)


def meta_text(detail: RecordDetail) -> str:
    rec = detail.record
    bits = [f"Record #{rec.id}"]
    if rec.deleted:
        bits.append("DELETED")
    bits.append(f"split: {rec.split}" if rec.split else "no split")
    if rec.tags:
        bits.append("tags: " + ", ".join(rec.tags))
    if rec.label is not None:
        bits.append("label: " + ("good (desirable)" if rec.label else "bad (undesirable)"))
    return "  \u00b7  ".join(bits)


class _Section(QFrame):
    """A titled Markdown view (Prompt, Chosen, Rejected, ...)."""

    def __init__(self, title: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.title = QLabel(title)
        font = QFont(self.title.font())
        font.setWeight(QFont.Weight.DemiBold)
        self.title.setFont(font)
        self.view = MarkdownView()
        self.view.setMinimumHeight(60)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(3)
        layout.addWidget(self.title)
        layout.addWidget(self.view, 1)

    def show_value(self, title: str, value: Any) -> None:
        self.title.setText(title)
        self.view.set_value(value)


class RecordDetailView(QWidget):
    """Shows one record (or a hint when none is selected)."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.meta = QLabel()
        self.meta.setObjectName("recordMeta")
        self.meta.setTextFormat(Qt.TextFormat.PlainText)
        self.meta.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.lineage = QLabel()
        self.lineage.setObjectName("recordLineage")
        self.lineage.setTextFormat(Qt.TextFormat.PlainText)
        self.lineage.setWordWrap(True)
        self.lineage.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.lineage.setForegroundRole(QPalette.ColorRole.PlaceholderText)

        self.prompt = _Section("Prompt")
        self.chosen = _Section("Chosen")
        self.rejected = _Section("Rejected")
        self.completion = _Section("Completion")
        self.pair = QSplitter(Qt.Orientation.Horizontal)
        self.pair.addWidget(self.chosen)
        self.pair.addWidget(self.rejected)
        self.pair.setChildrenCollapsible(False)
        self.responses = QStackedWidget()
        self.responses.addWidget(self.pair)
        self.responses.addWidget(self.completion)
        self.body = QSplitter(Qt.Orientation.Vertical)
        self.body.addWidget(self.prompt)
        self.body.addWidget(self.responses)
        self.body.setChildrenCollapsible(False)
        self.body.setStretchFactor(0, 1)
        self.body.setStretchFactor(1, 3)

        self.placeholder = QLabel("Select a record to read it here.")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.stack = QStackedWidget()
        content = QWidget()
        content_layout = QVBoxLayout(content)
        content_layout.setContentsMargins(0, 0, 0, 0)
        content_layout.setSpacing(4)
        content_layout.addWidget(self.meta)
        content_layout.addWidget(self.lineage)
        content_layout.addWidget(self.body, 1)
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)
        self.detail: Optional[RecordDetail] = None

    def clear(self, message: str = "Select a record to read it here.") -> None:
        self.detail = None
        self.placeholder.setText(message)
        self.stack.setCurrentIndex(0)

    def show_detail(self, detail: RecordDetail) -> None:
        self.detail = detail
        rec: Record = detail.record
        self.meta.setText(meta_text(detail))
        self.lineage.setText("Source: " + lineage_text(detail))
        if rec.chosen is not None or rec.rejected is not None:
            self.prompt.setVisible(True)
            self.prompt.show_value("Prompt", rec.prompt)
            self.chosen.show_value(f"Chosen  (score {_fmt_score(rec.score_chosen)})"
                                   if rec.score_chosen is not None else "Chosen", rec.chosen)
            self.rejected.show_value(f"Rejected  (score {_fmt_score(rec.score_rejected)})"
                                     if rec.score_rejected is not None else "Rejected", rec.rejected)
            self.responses.setCurrentWidget(self.pair)
            self.responses.setVisible(True)
        elif rec.messages is not None:
            self.prompt.setVisible(True)
            self.prompt.show_value(f"Conversation ({len(rec.messages)} turns)", rec.messages)
            self.responses.setVisible(False)
        else:
            self.prompt.setVisible(True)
            self.prompt.show_value("Prompt", rec.prompt)
            if rec.completion is not None:
                title = "Completion"
                if rec.label is not None:
                    title += "  (labelled good)" if rec.label else "  (labelled bad)"
                self.completion.show_value(title, rec.completion)
                self.responses.setCurrentWidget(self.completion)
                self.responses.setVisible(True)
            else:
                self.responses.setVisible(False)
        self.stack.setCurrentIndex(1)
