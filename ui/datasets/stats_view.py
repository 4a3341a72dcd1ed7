"""Dataset statistics: counts, splits, unique prompts, duplicates, lengths and a histogram.

:class:`StatsView` computes :func:`workbench.data.ops.stats` on a worker
thread (with progress and Cancel) and shows the result; with a local
tokenizer folder it adds token lengths. pyqtgraph is imported only when the
first histogram is drawn: it costs about 0.9 s, and this module is imported
by the dataset manager, which the main window builds at start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (QAbstractItemView, QAbstractScrollArea, QComboBox, QDialogButtonBox, QFileDialog, QFormLayout,
                               QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from workbench.data import ops

from ..common.progress_panel import ProgressPanel, TaskDialog, error_text, with_workspace

_SUMMARY_COLUMNS = ("count", "min", "mean", "p50", "p90", "p99", "max")
_UNITS = {"length_chars": "characters", "length_tokens": "tokens"}


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _cell(text: str, align_right: bool = True) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if align_right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


class StatsView(QWidget):
    """Statistics of one dataset, computed off the GUI thread when first shown."""

    def __init__(self, workspace_root: Path, dataset_name: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.root = Path(workspace_root)
        self.dataset_name = dataset_name
        self.stats: Optional[dict] = None
        self.error: Optional[BaseException] = None
        self.plot = None            # pyqtgraph PlotWidget, built with the first histogram
        self.bars = None            # its BarGraphItem
        self._started = False
        self._show_tokens = False

        self.heading = QLabel(dataset_name)
        self.heading.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        font = QFont(self.heading.font())
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setWeight(QFont.Weight.DemiBold)
        self.heading.setFont(font)
        self.heading.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.panel = ProgressPanel()
        self.panel.done.connect(self._on_panel_done)

        self.overview = QFormLayout()
        self.overview.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        self.overview.setHorizontalSpacing(18)
        self._values: dict[str, QLabel] = {}
        for key, label in (("rows", "Rows"), ("kind", "Kind"), ("train", "Train"), ("validation", "Validation"),
                           ("unassigned", "Unassigned"), ("deleted", "Deleted (restorable)"),
                           ("unique_prompts", "Unique prompts"), ("dup_exact", "Exact duplicates"),
                           ("dup_normalized", "Normalized duplicates"), ("snapshots", "Snapshots"),
                           ("scores", "Scored pairs")):
            value = QLabel("—")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self._values[key] = value
            self.overview.addRow(label, value)
        self._set_row_visible("scores", False)
        overview_box = QGroupBox("Counts")
        overview_box.setLayout(self.overview)

        self.field_combo = QComboBox()
        self.field_combo.currentIndexChanged.connect(self._on_histogram_choice_changed)
        self.unit_combo = QComboBox()
        self.unit_combo.currentIndexChanged.connect(self._on_histogram_choice_changed)
        choice_row = QHBoxLayout()
        choice_row.addWidget(QLabel("Field"))
        choice_row.addWidget(self.field_combo, 1)
        choice_row.addWidget(QLabel("Length in"))
        choice_row.addWidget(self.unit_combo, 1)
        self.plot_holder = QVBoxLayout()
        self.plot_placeholder = QLabel("The histogram appears once the statistics are computed.")
        self.plot_placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.plot_placeholder.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.plot_holder.addWidget(self.plot_placeholder, 1)
        histogram_box = QGroupBox("Length histogram")
        histogram_layout = QVBoxLayout(histogram_box)
        histogram_layout.addLayout(choice_row)
        histogram_layout.addLayout(self.plot_holder, 1)

        self.lengths = QTableWidget(0, 2 + len(_SUMMARY_COLUMNS))
        self.lengths.setHorizontalHeaderLabels(["Field", "Unit", "Rows", "Min", "Mean", "P50", "P90", "P99", "Max"])
        self.lengths.verticalHeader().setVisible(False)
        self.lengths.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.lengths.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.lengths.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.lengths.setAlternatingRowColors(True)
        # As tall as its rows (a few fields), so the histogram gets the room.
        self.lengths.setSizeAdjustPolicy(QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)
        self.lengths.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        lengths_box = QGroupBox("Lengths")
        lengths_layout = QVBoxLayout(lengths_box)
        lengths_layout.addWidget(self.lengths)

        self.tokenizer_edit = QLineEdit()
        self.tokenizer_edit.setPlaceholderText("A local model or tokenizer folder with tokenizer.json")
        self.tokenizer_edit.textChanged.connect(self._on_tokenizer_text_changed)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        self.tokens_button = QPushButton("Count tokens")
        self.tokens_button.setEnabled(False)
        self.tokens_button.clicked.connect(self._on_tokens_clicked)
        tokenizer_row = QHBoxLayout()
        tokenizer_row.addWidget(QLabel("Tokenizer"))
        tokenizer_row.addWidget(self.tokenizer_edit, 1)
        tokenizer_row.addWidget(browse)
        tokenizer_row.addWidget(self.tokens_button)

        top = QHBoxLayout()
        top.addWidget(overview_box, 0)
        top.addWidget(histogram_box, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.panel)
        layout.addLayout(top, 1)
        layout.addWidget(lengths_box, 0)
        layout.addLayout(tokenizer_row)

    # -- computing ------------------------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._started:
            self._started = True
            self.compute()

    def compute(self, tokenizer: Optional[str] = None) -> None:
        """(Re)compute the statistics, with token lengths when ``tokenizer`` names a folder."""
        if self.panel.busy:
            return
        root, name = self.root, self.dataset_name
        self.error = None
        self._show_tokens = bool(tokenizer)
        self.tokens_button.setEnabled(False)
        self.panel.run(lambda progress, cancel: with_workspace(root, lambda ws: ops.stats(
            ws, name, tokenizer=tokenizer, progress=progress, cancel=cancel)),
            "Counting tokens…" if tokenizer else f"Reading “{name}”…",
            on_success=self._on_computed, on_failure=self._on_failed, on_cancelled=self._on_cancelled)

    def _on_panel_done(self) -> None:
        self._on_tokenizer_text_changed(self.tokenizer_edit.text())

    def _on_failed(self, exc: BaseException) -> None:
        self.error = exc
        self.panel.set_status(error_text(exc))

    def _on_cancelled(self) -> None:
        self.panel.set_status("Cancelled." if self.stats is None else "Cancelled; showing the last figures.")

    def _on_computed(self, stats: dict) -> None:
        self.stats = stats
        self.panel.set_status("")
        splits = stats["splits"]
        self._values["rows"].setText(f"{stats['rows']:,}")
        self._values["kind"].setText(f"{stats['kind']} ({stats['style']})")
        self._values["train"].setText(f"{splits['train']:,}")
        self._values["validation"].setText(f"{splits['validation']:,}")
        self._values["unassigned"].setText(f"{splits['unassigned']:,}")
        self._values["deleted"].setText(f"{stats['deleted']:,}")
        self._values["unique_prompts"].setText(f"{stats['unique_prompts']:,}")
        self._values["dup_exact"].setText(f"{stats['duplicates']['exact']:,}")
        self._values["dup_normalized"].setText(f"{stats['duplicates']['normalized']:,}")
        snaps = stats["snapshots"]
        self._values["snapshots"].setText(f"{len(snaps)}" + (f" (latest {snaps[-1][:8]})" if snaps else ""))
        if "scored_pairs" in stats:
            margin = f", mean margin {stats['mean_score_margin']:+.3f}" if "mean_score_margin" in stats else ""
            self._values["scores"].setText(f"{stats['scored_pairs']:,}{margin}")
        self._set_row_visible("scores", "scored_pairs" in stats)
        self._fill_lengths(stats)
        self._fill_histogram_choices(stats)

    def _set_row_visible(self, key: str, visible: bool) -> None:
        self.overview.setRowVisible(self._values[key], visible)

    def _fill_lengths(self, stats: dict) -> None:
        rows = [(field, unit_key, summary) for unit_key in _UNITS for field, summary in stats.get(unit_key, {}).items()]
        self.lengths.setRowCount(len(rows))
        for i, (field, unit_key, summary) in enumerate(rows):
            self.lengths.setItem(i, 0, _cell(field, align_right=False))
            self.lengths.setItem(i, 1, _cell(_UNITS[unit_key], align_right=False))
            for j, key in enumerate(_SUMMARY_COLUMNS):
                self.lengths.setItem(i, 2 + j, _cell(_number(summary[key]) if key in summary else "—"))

    def _fill_histogram_choices(self, stats: dict) -> None:
        field, unit = self.field_combo.currentData(), self.unit_combo.currentData()
        for combo in (self.field_combo, self.unit_combo):
            combo.blockSignals(True)
            combo.clear()
        for name, summary in stats["length_chars"].items():
            if summary.get("count"):
                self.field_combo.addItem(name, name)
        for unit_key, label in _UNITS.items():
            if unit_key in stats:
                self.unit_combo.addItem(label, unit_key)
        # Keep the user's choice, except that a token count just asked for is shown.
        self.field_combo.setCurrentIndex(max(0, self.field_combo.findData(field)))
        if self._show_tokens and "length_tokens" in stats:
            unit = "length_tokens"
        self._show_tokens = False
        self.unit_combo.setCurrentIndex(max(0, self.unit_combo.findData(unit)))
        for combo in (self.field_combo, self.unit_combo):
            combo.blockSignals(False)
        self.draw_histogram()

    # -- the histogram ----------------------------------------------------------------------
    def _ensure_plot(self) -> None:
        if self.plot is not None:
            return
        import pyqtgraph as pg  # lazy: ~0.9 s, paid only when a histogram is drawn

        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        self.plot = pg.PlotWidget(background=palette.color(QPalette.ColorRole.Base))
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        for side in ("left", "bottom"):
            axis = self.plot.getAxis(side)
            axis.setPen(pg.mkPen(text))
            axis.setTextPen(pg.mkPen(text))
        self.plot.setLabel("left", "rows")
        self.bars = pg.BarGraphItem(x=[], height=[], width=1.0,
                                    brush=pg.mkBrush(palette.color(QPalette.ColorRole.Highlight)),
                                    pen=pg.mkPen(palette.color(QPalette.ColorRole.Base)))
        self.plot.addItem(self.bars)
        self.plot_holder.removeWidget(self.plot_placeholder)
        self.plot_placeholder.hide()
        self.plot_holder.addWidget(self.plot, 1)
        self.plot.show()

    def histogram(self) -> Optional[dict]:
        """The histogram shown now: ``{"start", "bin_width", "counts"}`` or ``None``."""
        if self.stats is None or self.field_combo.currentData() is None:
            return None
        unit_key = self.unit_combo.currentData() or "length_chars"
        summary = self.stats.get(unit_key, {}).get(self.field_combo.currentData(), {})
        return summary.get("histogram")

    def draw_histogram(self) -> None:
        hist = self.histogram()
        if hist is None:
            return
        self._ensure_plot()
        start, width, counts = hist["start"], hist["bin_width"], hist["counts"]
        centres = [start + width * (i + 0.5) for i in range(len(counts))]
        self.bars.setOpts(x=centres, height=counts, width=width * 0.92)
        self.plot.setLabel("bottom", f"{self.field_combo.currentData()} length "
                                     f"({_UNITS[self.unit_combo.currentData() or 'length_chars']})")
        self.plot.setXRange(start, start + width * len(counts), padding=0.02)
        self.plot.setYRange(0, max(counts) * 1.05 if counts else 1, padding=0)

    def _on_histogram_choice_changed(self, _index: int) -> None:
        self.draw_histogram()

    # -- tokenizer ------------------------------------------------------------------------
    def _on_tokenizer_text_changed(self, text: str) -> None:
        self.tokens_button.setEnabled(bool(text.strip()) and not self.panel.busy)

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Tokenizer folder", str(Path.home()))
        if folder:
            self.tokenizer_edit.setText(folder)

    def _on_tokens_clicked(self) -> None:
        self.compute(self.tokenizer_edit.text().strip())

    def shutdown(self) -> None:
        self.panel.cancel()
        self.panel.wait()


class StatsDialog(TaskDialog):
    """A window around :class:`StatsView` for one dataset."""

    def __init__(self, workspace_root: Path, dataset_name: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Statistics · {dataset_name}")
        self.view = StatsView(workspace_root, dataset_name)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view, 1)
        layout.addWidget(buttons)
        self.resize(980, 680)
        self.view.panel.done.connect(self._on_panel_done)

    def _task_panel(self) -> ProgressPanel:
        return self.view.panel

    def _on_panel_done(self) -> None:
        self._close_if_requested()

    def shutdown(self) -> None:
        self.view.shutdown()
