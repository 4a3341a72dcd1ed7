"""Quality of the labels, at a glance: counts, agreement, self-consistency, position bias, comparisons.

Computed by :func:`workbench.data.quality.quality_report` on a worker
thread (its own connection) each time the dialog opens or Refresh is
pressed; the tables only show it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView, QLabel, QPushButton,
                               QScrollArea, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from workbench.data.quality import QualityReport, quality_report
from workbench.store.workspace import Workspace

from ui.common.names import model_name
from ui.common.render import plain_tooltip
from ui.common.screen_fit import screen_bounded
from ui.common.worker import Task, run_in_thread

from .verdict import comparison_verdict


def compute_report(root: Path) -> QualityReport:
    with Workspace.open(root) as ws:
        return quality_report(ws.conn)


def _pct(x: Optional[float]) -> str:
    return "—" if x is None else f"{x:.0%}"


def _ci(lo: float, hi: float) -> str:
    return "—" if lo != lo else f"{lo:.0%}–{hi:.0%}"  # lo != lo: NaN, no data


def _table(name: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> QTableWidget:
    t = QTableWidget(len(rows), len(headers))
    t.setObjectName(name)
    t.setHorizontalHeaderLabels(list(headers))
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    t.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            if c:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            t.setItem(r, c, item)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(False)
    # Room for the horizontal scroll bar too: a wide table (long queue names) shows one, and it
    # covered the last row.
    height = (t.horizontalHeader().height() + sum(t.rowHeight(r) for r in range(len(rows))) + 4
              + t.horizontalScrollBar().sizeHint().height())
    t.setFixedHeight(max(height, t.horizontalHeader().height() + 28))
    return t


class QualityDialog(QDialog):
    """The label-quality report of a workspace."""

    def __init__(self, root: Path, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Quality of the labels")
        self.setObjectName("qualityDialog")
        self.root = root
        self.report: Optional[QualityReport] = None
        self.status = QLabel("Computing\u2026")
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.body = QWidget()
        self.body_layout = QVBoxLayout(self.body)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.body)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        refresh = QPushButton("Refresh")
        buttons.addButton(refresh, QDialogButtonBox.ButtonRole.ActionRole)
        refresh.clicked.connect(self.refresh)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.status)
        lay.addWidget(scroll, 1)
        lay.addWidget(buttons)
        self.task: Optional[Task] = None
        self.resize(screen_bounded(self, QSize(960, 660)))  # the comparison table's columns fit
        self.refresh()

    def refresh(self) -> None:
        if self.task is not None and self.task.running:
            return
        self.status.setText("Computing\u2026")
        root = self.root
        self.task = run_in_thread(lambda progress, cancel: compute_report(root), parent=self,
                                  on_success=self._on_report, on_failure=lambda e: self.status.setText(f"\u26a0 {e}"))

    def _heading(self, text: str, note: str = "") -> None:
        label = QLabel(text)
        label.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        font = QFont(label.font())
        font.setWeight(QFont.Weight.DemiBold)
        font.setPointSizeF(font.pointSizeF() * 1.1)
        label.setFont(font)
        self.body_layout.addSpacing(8)
        self.body_layout.addWidget(label)
        if note:
            hint = QLabel(note)
            hint.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
            hint.setWordWrap(True)
            self.body_layout.addWidget(hint)

    def _on_report(self, report: QualityReport) -> None:
        self.report = report
        while self.body_layout.count():
            item = self.body_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        total = sum(c.rankings for c in report.counts)
        self.status.setText(f"{total:,} rankings by {len(report.counts)} annotator(s)")
        # First: the verdicts are what a comparison was run for (they were the last section).
        self._heading("Blind comparisons",
                      "Model B's wins among the decisive comparisons, with a Wilson 95% interval; ties include "
                      "\u201cboth bad\u201d.")
        if report.comparisons:
            table = _table("comparisonTable", ["Queue", "A", "B", "Decisions", "B wins", "95% interval", "Ties"], [
                [name, model_name(r.label_a), model_name(r.label_b), f"{r.n:,}", _pct(r.win_rate_b),
                 _ci(r.low, r.high), _pct(r.tie_rate)] for _qid, name, r in report.comparisons])
            for row, (_qid, _name, r) in enumerate(report.comparisons):
                # The full model paths (user data: a tooltip that looks like HTML is rendered as HTML).
                table.item(row, 1).setToolTip(plain_tooltip(r.label_a))
                table.item(row, 2).setToolTip(plain_tooltip(r.label_b))
                table.item(row, 0).setToolTip(plain_tooltip(comparison_verdict(r)))
            self.body_layout.addWidget(table)
        else:
            self.body_layout.addWidget(QLabel("No comparison queue yet (Compare\u2026 on the Rank page)."))
        self._heading("Annotators")
        self.body_layout.addWidget(_table("countsTable", ["Annotator", "Rankings", "Prompts", "Pairwise", "K-wise",
                                                          "Ties", "All bad", "Repeats", "Skips", "Flags"], [
            [c.annotator, f"{c.rankings:,}", f"{c.prompts:,}", f"{c.pairwise:,}", f"{c.kwise:,}", f"{c.ties:,}",
             f"{c.all_bad:,}", f"{c.repeats:,}", f"{c.skips:,}",
             ", ".join(f"{k} {v}" for k, v in c.flags.items()) or "—"] for c in report.counts]))
        self._heading("Agreement between annotators",
                      "On the comparisons both ranked: the share of equal verdicts (better, worse or tie) and "
                      "Cohen's kappa (1 = perfect, 0 = chance).")
        if report.agreement:
            self.body_layout.addWidget(_table("agreementTable", ["Annotators", "Prompts", "Comparisons", "Agree",
                                                                 "Kappa"], [
                [f"{a.a} · {a.b}", f"{a.items:,}", f"{a.shared:,}", _pct(a.agree),
                 "—" if a.kappa is None else f"{a.kappa:.2f}"] for a in report.agreement]))
        else:
            self.body_layout.addWidget(QLabel("No item ranked by two annotators yet."))
        self._heading("Self-consistency",
                      "Items shown again later with the positions swapped. \u201cSame side\u201d counts answers "
                      "that followed the position rather than the response.")
        if report.consistency:
            self.body_layout.addWidget(_table("consistencyTable", ["Annotator", "Repeats", "Consistent", "Rate",
                                                                   "Same side"], [
                [s.annotator, f"{s.repeats:,}", f"{s.consistent:,}", _pct(s.rate), f"{s.same_side:,}"]
                for s in report.consistency]))
        else:
            self.body_layout.addWidget(QLabel("No repeats judged yet."))
        self._heading("Position bias",
                      "How often the left response wins a pairwise decision (ties left out); 50% is no bias.")
        self.body_layout.addWidget(_table("positionTable", ["Annotator", "Decisions", "Left wins", "95% interval"], [
            [p.annotator or "Everyone", f"{p.n:,}", _pct(p.rate), _ci(p.low, p.high)] for p in report.position]))
        self.body_layout.addStretch(1)

    def done(self, result: int) -> None:  # noqa: D401 - Qt override
        if self.task is not None:
            self.task.wait(30_000)
        super().done(result)
