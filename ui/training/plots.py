"""Live metric plots of one or more runs (pyqtgraph, imported lazily).

:class:`PlotGridView` shows a grid of :class:`MetricPlotView`, one per
:class:`PlotSpec` of the primary run's stage (:data:`STAGE_PLOTS`), with
one colour per run (overlay) and one line style per metric of a plot.
It never redraws on its own: the runs page marks it dirty when new metric
events arrive and calls :meth:`PlotGridView.redraw` from its timer (at most
a few times a second), and each curve is re-set only when its series,
smoothing or x axis changed.

Long curves stay cheap: peak downsampling and clip-to-view (pyqtgraph
draws at most about two points per pixel column), pen width 1, no grid,
no antialiasing (FACTS.md: a grid made 1000 repaints 7x slower).

pyqtgraph costs ~0.9 s to import, so it is imported when the first plot
is built, never when this module is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QColor, QPalette
from PySide6.QtWidgets import QGridLayout, QLabel, QMenu, QSizePolicy, QVBoxLayout, QWidget

from workbench.jobs.metrics import TOKENS_PER_S, RunFeed


@dataclass(frozen=True)
class PlotSpec:
    """One plot: a title and the metrics it draws as ``(name, label)`` pairs (solid, dashed, ...)."""

    title: str
    metrics: tuple[tuple[str, str], ...]
    help: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.metrics)


#: The plots of each stage (the issue's metric sets), in grid order.
STAGE_PLOTS: dict[str, tuple[PlotSpec, ...]] = {
    "sft": (
        PlotSpec("Loss", (("loss", "train"), ("eval_loss", "held-out")), "cross-entropy of the demonstrations"),
        PlotSpec("Learning rate", (("learning_rate", "lr"),)),
        PlotSpec("Grad norm", (("grad_norm", "grad norm"),), "gradient norm before clipping"),
        PlotSpec("Tokens/s", ((TOKENS_PER_S, "tokens/s"),), "training throughput (from num_tokens)"),
    ),
    "reward": (
        PlotSpec("Loss", (("loss", "train"), ("eval/loss", "held-out")), "pairwise loss -log sigmoid(margin)"),
        PlotSpec("Accuracy", (("accuracy", "train"), ("eval/accuracy", "held-out")),
                 "share of pairs where the chosen response scores higher"),
        PlotSpec("Margin", (("margin", "train"), ("eval/margin", "held-out")), "chosen minus rejected score"),
        PlotSpec("Grad norm", (("grad_norm", "grad norm"),)),
    ),
    "ppo": (
        PlotSpec("Reward", (("objective/scores", "score"), ("objective/rlhf_reward", "RLHF"), ("eval/score", "eval")),
                 "reward-model score, score minus the KL penalty, and the score of the low-temperature "
                 "completions on the held-out eval prompts (eval_every)"),
        PlotSpec("KL", (("objective/kl", "penalized"), ("objective/kl_k1", "k1"), ("objective/kl_k3", "k3")),
                 "KL to the reference per response (penalized: the run's kl_estimator)"),
        PlotSpec("Entropy", (("objective/entropy", "entropy"),)),
        PlotSpec("Clip fraction", (("policy/clipfrac_avg", "clip fraction"),)),
        PlotSpec("Value loss", (("loss/value_avg", "value loss"),)),
        PlotSpec("Policy ratio", (("val/ratio", "ratio"),), "new / rollout policy probability (about 1)"),
        PlotSpec("Response length", (("response/length_mean", "tokens"),)),
        PlotSpec("Policy loss", (("loss/policy_avg", "policy loss"),)),
    ),
    "dpo": (
        PlotSpec("Loss", (("loss", "train"), ("eval_loss", "held-out"))),
        PlotSpec("Reward accuracy", (("rewards/accuracies", "train"), ("eval_rewards/accuracies", "held-out"))),
        PlotSpec("Reward margin", (("rewards/margins", "train"), ("eval_rewards/margins", "held-out"))),
        PlotSpec("Learning rate", (("learning_rate", "lr"),)),
    ),
}
#: Metrics never worth a plot of their own (end-of-training summaries, constants).
_SKIP_GENERIC = {"epoch", "total_flos", "train_runtime", "train_samples_per_second",
                 "train_steps_per_second", "train_loss", "num_tokens", "kl_coef", "time/step_s"}
MAX_GENERIC_PLOTS = 8


def plot_specs(stage: Optional[str], names: Sequence[str]) -> tuple[PlotSpec, ...]:
    """The plots for ``stage``; for a stage without a set, one plot per metric in ``names``."""
    if stage in STAGE_PLOTS:
        return STAGE_PLOTS[stage]
    picked = [n for n in names if n not in _SKIP_GENERIC][:MAX_GENERIC_PLOTS]
    return tuple(PlotSpec(n, ((n, n),)) for n in picked)


#: Curve colours after the first run's (which uses the palette's highlight): a qualitative
#: set readable on light and dark backgrounds (Tableau 10).
RUN_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7")
#: Line styles of the 1st, 2nd, ... metric of a plot.
_STYLES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine)


def run_colour(index: int, palette: QPalette) -> QColor:
    if index == 0:
        return palette.color(QPalette.ColorRole.Highlight)
    return QColor(RUN_COLOURS[(index - 1) % len(RUN_COLOURS)])


def _pg():
    import pyqtgraph as pg  # lazily: ~0.9 s

    return pg


def preload_pyqtgraph(parent=None):
    """Import pyqtgraph on a worker thread (returns the :class:`~ui.common.worker.Task`).

    The import takes ~0.5-0.9 s; done here it does not freeze the window when
    the first plot is built (a plot built before it ends waits for the import).
    Safe off the GUI thread: pyqtgraph creates no ``QObject`` or pixmap at import.
    """
    from ..common.worker import run_in_thread

    return run_in_thread(lambda progress, cancel: _pg() and None, parent=parent)


class MetricPlotView(QWidget):
    """One plot of a :class:`PlotSpec`: a raw and (when smoothing) a smoothed curve per run and metric."""

    export_requested = Signal(object)  # this view

    def __init__(self, spec: PlotSpec, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        pg = _pg()
        self.spec = spec
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.WindowText)
        self._text_colour = text
        self.plot_widget = pg.PlotWidget(parent=self, background=pal.color(QPalette.ColorRole.Base),
                                         axisItems={"left": _compact_axis("left")})
        self.plot_widget.setMinimumSize(160, 120)
        self.plot_widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        item = self.plot_item
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        item.hideButtons()
        item.setMenuEnabled(False)  # pyqtgraph's own menu opens its heavy export dialog
        item.showGrid(x=False, y=False)
        vb = item.getViewBox()
        vb.setDefaultPadding(0.04)  # room for the last tick's label at the right edge
        # The x range is ours, not pyqtgraph's auto range: with clip-to-view and peak
        # downsampling, an auto x range feeds back into the clipped, downsampled data it
        # is computed from, and on long curves the two can chase each other forever (a
        # repaint loop that froze the window). y stays automatic (x does not depend on it).
        vb.enableAutoRange(x=False, y=True)
        vb.sigRangeChangedManually.connect(self._on_view_range_changed_manually)
        self._follow_x = True  # until the user zooms or pans
        for name in ("left", "bottom"):
            axis = item.getAxis(name)
            axis.setPen(pg.mkPen(text.darker(110) if text.lightness() > 128 else text.lighter(160)))
            axis.setTextPen(pg.mkPen(text))
        item.getAxis("left").setWidth(46)
        self.plot_widget.setToolTip(spec.help or spec.title)
        self._title_for: Optional[tuple[str, ...]] = None
        self._set_title(())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)
        self.plot_widget.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.plot_widget.customContextMenuRequested.connect(self._on_context_menu)
        self._curves: dict[tuple[str, str, str], Any] = {}  # (run, metric, raw|smooth) -> PlotDataItem
        self._stamps: dict[tuple[str, str, str], tuple] = {}  # what each curve's data was set from
        self._pens: dict[tuple[str, str, str], tuple] = {}
        self._markers: list[Any] = []

    @property
    def plot_item(self):
        return self.plot_widget.getPlotItem()

    def _set_title(self, present: tuple[str, ...]) -> None:
        """The title, with a line-style legend when more than one of its metrics has points."""
        if present == self._title_for:
            return
        self._title_for = present
        labels = "   ".join(f"{label} {_style_glyph(i)}" for i, (n, label) in enumerate(self.spec.metrics)
                           if n in present) if len(present) > 1 else ""
        title = (f"{self.spec.title}<span style='font-weight:normal'>&nbsp;&nbsp;{labels}</span>"
                 if labels else self.spec.title)
        self.plot_item.setTitle(title, size="9pt", color=self._text_colour.name())

    # -- data -------------------------------------------------------------------------------------
    def update_curves(self, feeds: Sequence[RunFeed], colours: Sequence[QColor], smoothing: float,
                      axis: str) -> int:
        """Re-set the curves whose data changed; returns how many were re-set."""
        pg = _pg()
        wanted = set()
        changed = 0
        pending = []  # (key, curve, x, y, finite, stamp): new data, set after the x range
        for feed, colour in zip(feeds, colours):
            for i, name in enumerate(self.spec.names):
                series = feed.store.get(name)
                if series is None:
                    continue
                style = _STYLES[i % len(_STYLES)]
                kinds = ("raw", "smooth") if smoothing > 0 else ("raw",)
                for kind in kinds:
                    key = (feed.run_id, name, kind)
                    wanted.add(key)
                    curve = self._curves.get(key)
                    if curve is None:
                        curve = self._curves[key] = self.plot_item.plot()
                        curve.setZValue(1 if kind == "smooth" else 0)
                    faint = kind == "raw" and smoothing > 0  # raw values stay visible behind the smooth curve
                    pen = (colour.rgba(), style, faint)
                    if self._pens.get(key) != pen:
                        c = QColor(colour)
                        if faint:
                            c.setAlpha(70)
                        curve.setPen(pg.mkPen(c, width=1, style=style))
                        self._pens[key] = pen
                        changed += 1
                    stamp = (series.version, series.rewinds, axis, smoothing if kind == "smooth" else 0.0)
                    if self._stamps.get(key) == stamp:
                        continue
                    x = feed.store.x(name, axis)
                    if axis == "time":
                        x = x / 60.0
                    y = series.smoothed(smoothing) if kind == "smooth" else series.values
                    # (the smoothed curve of an all-finite series is all finite too)
                    finite = series.all_finite
                    if not finite:
                        y = np.where(np.isfinite(y), y, np.nan)  # inf would wreck the auto range
                    pending.append((key, curve, x, y, finite, stamp))
        for key in set(self._curves) - wanted:
            self.plot_item.removeItem(self._curves.pop(key))
            self._stamps.pop(key, None)
            self._pens.pop(key, None)
            changed += 1
        if pending and self._follow_x:
            # The x range first, with the changing curves emptied: each curve then clips and
            # downsamples its data once (in setData), not once for the old range and again
            # for the new one (half the cost of a redraw of a million points).
            for _key, curve, *_rest in pending:
                curve.setData([], [])
            self._fit_x([(x[0], x[-1]) for _k, _c, x, *_r in pending if len(x)])
        for key, curve, x, y, finite, stamp in pending:
            curve.setData(x, y, connect="all" if finite else "finite", skipFiniteCheck=finite)
            self._stamps[key] = stamp
            changed += 1
        self._set_title(tuple(n for n in self.spec.names if any(k[1] == n for k in wanted)))
        return changed

    def set_markers(self, steps: Sequence[int]) -> None:
        """Vertical lines at ``steps`` (where a health warning started), on the step axis only."""
        if [m.value() for m in self._markers] == list(steps):
            return
        pg = _pg()
        for line in self._markers:
            self.plot_item.removeItem(line)
        self._markers = []
        colour = QColor("#e15759")
        for step in steps:
            line = pg.InfiniteLine(pos=step, angle=90, pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine))
            self.plot_item.addItem(line, ignoreBounds=True)
            self._markers.append(line)

    def point_count(self, run_id: str, metric: str, kind: str = "raw") -> int:
        """Points the curve holds (not the drawn ones: downsampling draws fewer)."""
        curve = self._curves.get((run_id, metric, kind))
        if curve is None:
            return 0
        x, _y = curve.getOriginalDataset()
        return 0 if x is None else len(x)

    def curve_data(self, run_id: str, metric: str, kind: str = "raw") -> tuple[np.ndarray, np.ndarray]:
        x, y = self._curves[(run_id, metric, kind)].getOriginalDataset()
        return np.asarray(x), np.asarray(y)

    def marker_steps(self) -> list[float]:
        return [m.value() for m in self._markers]

    def _on_view_range_changed_manually(self, *_args) -> None:
        self._follow_x = False  # the user zoomed or panned: stop following new points

    def fit(self) -> None:
        """Show all the data again and follow new points (after a zoom, or an axis change)."""
        self._follow_x = True
        self.plot_item.getViewBox().enableAutoRange(x=False, y=True)
        self._fit_x()

    def _fit_x(self, extra: Sequence[tuple[float, float]] = ()) -> None:
        """Set the x range to the curves' data (x is sorted: first and last values), plus
        ``extra`` ``(first, last)`` spans of data about to be set."""
        spans = list(extra)
        for curve in self._curves.values():
            x = curve.xData
            if x is not None and len(x):
                spans.append((x[0], x[-1]))
        lo = min((a for a, _b in spans), default=None)
        hi = max((b for _a, b in spans), default=None)
        if lo is not None:
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
            self.plot_item.getViewBox().setXRange(float(lo), float(hi))

    def _on_context_menu(self, pos) -> None:
        menu = QMenu(self)
        reset = QAction("Fit to data", menu)
        reset.triggered.connect(self.fit)
        export = QAction("Export this plot as PNG…", menu)
        export.triggered.connect(lambda: self.export_requested.emit(self))
        menu.addAction(reset)
        menu.addAction(export)
        menu.popup(self.plot_widget.mapToGlobal(pos))


def _style_glyph(i: int) -> str:
    return ("\u2014", "- -", "\u00b7\u00b7\u00b7")[i % 3]


def _tick_text(v: float) -> str:
    """A tick label short enough for a narrow axis: ``5e-4`` rather than ``0.0005``."""
    if v == 0:
        return "0"
    if abs(v) < 1e-3 or abs(v) >= 1e5:
        mantissa, exp = f"{v:.1e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exp)}"
    return f"{v:.4g}"


_AXIS_CLASS = None


def _compact_axis(orientation: str):
    """A pyqtgraph ``AxisItem`` with :func:`_tick_text` labels (class built on first use: lazy import)."""
    global _AXIS_CLASS
    if _AXIS_CLASS is None:
        pg = _pg()

        class CompactAxisItem(pg.AxisItem):
            def tickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph API
                if any(v != 0 and (abs(v * scale) < 1e-3 or abs(v * scale) >= 1e5) for v in values):
                    return [_tick_text(v * scale) for v in values]
                return super().tickStrings(values, scale, spacing)

        _AXIS_CLASS = CompactAxisItem
    return _AXIS_CLASS(orientation)


class PlotGridView(QWidget):
    """The plots of the shown runs: the first feed is the primary run (its stage picks the plots)."""

    export_requested = Signal(object)  # a MetricPlotView to save

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._feeds: list[RunFeed] = []
        self._smoothing = 0.0
        self._axis = "step"
        self._dirty = False
        self._specs: tuple[PlotSpec, ...] = ()
        self._markers: dict[str, list[int]] = {}
        self._next_view = 0  # where a bounded redraw continues
        self.views: list[MetricPlotView] = []
        self._view_sets: dict[tuple[PlotSpec, ...], list[MetricPlotView]] = {}  # built plots, per stage
        self._placeholders: dict[int, QWidget] = {}  # grid cells of plots not built yet
        self._cols = 2
        self.redraws = 0  # redraws that re-set at least one curve (tests, benchmark)
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(6)
        self._empty = QLabel("Select a run to see its curves.")
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._empty.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self._grid.addWidget(self._empty, 0, 0)

    # -- what to show -----------------------------------------------------------------------------
    @property
    def feeds(self) -> list[RunFeed]:
        return list(self._feeds)

    def set_feeds(self, feeds: Sequence[RunFeed]) -> None:
        self._feeds = list(feeds)
        self._relayout()
        self.mark_dirty()

    def set_smoothing(self, weight: float) -> None:
        if weight != self._smoothing:
            self._smoothing = weight
            self.mark_dirty()

    def set_x_axis(self, axis: str) -> None:
        if axis != self._axis:
            self._axis = axis
            for view in self.views:
                view.fit()
            self._apply_markers()
            self.mark_dirty()

    def set_markers(self, markers: dict[str, list[int]]) -> None:
        """``{metric: [step, ...]}``: dashed lines where health warnings started."""
        if markers != self._markers:
            self._markers = dict(markers)
            self._apply_markers()

    def mark_dirty(self) -> None:
        self._dirty = True

    @property
    def dirty(self) -> bool:
        return self._dirty

    def redraw(self, max_views: Optional[int] = None) -> int:
        """Re-set the changed curves if anything was marked dirty; returns curves re-set.

        ``max_views`` bounds how many plots change in this call (each changed
        plot is repainted in the next paint: about 5-10 ms for a few thousand
        points); the others follow in later calls, in turn, so one timer tick
        never pays for the whole grid. ``None`` updates every plot now (after
        a user action).
        """
        if not self._dirty:
            return 0
        if self._feeds and self._specs != self._wanted_specs():
            self._relayout()
        self._build_pending(max_views)
        colours = [run_colour(i, self.palette()) for i in range(len(self._feeds))]
        changed = views_changed = 0
        n = len(self.views)
        order = [(self._next_view + i) % n for i in range(n)] if n else []
        finished = True
        for k, i in enumerate(order):
            c = self.views[i].update_curves(self._feeds, colours, self._smoothing, self._axis)
            changed += c
            views_changed += bool(c)
            if max_views is not None and views_changed >= max_views and k < n - 1:
                self._next_view = (i + 1) % n
                finished = False
                break
        self._dirty = not finished or len(self.views) < len(self._specs)
        if changed:
            self.redraws += 1
        return changed

    def view_for(self, metric: str) -> Optional[MetricPlotView]:
        return next((v for v in self.views if metric in v.spec.names), None)

    # -- layout -----------------------------------------------------------------------------------
    def _wanted_specs(self) -> tuple[PlotSpec, ...]:
        if not self._feeds:
            return ()
        primary = self._feeds[0]
        return plot_specs(primary.stage, primary.store.names())

    def _relayout(self) -> None:
        """Show the plot set of the primary run's stage (built views; the rest are placeholders
        until :meth:`_build_pending` builds them, a few per redraw)."""
        specs = self._wanted_specs()
        if specs == self._specs and self.views:
            return
        for view in self.views:  # kept for when a run of this stage is shown again
            self._grid.removeWidget(view)
            view.setVisible(False)
        for holder in self._placeholders.values():
            self._grid.removeWidget(holder)
            holder.deleteLater()
        self._placeholders = {}
        self._next_view = 0
        self._specs = specs
        self._empty.setVisible(not specs)
        if not specs:
            self.views = []
            self._empty.setText("Select a run to see its curves." if not self._feeds else
                                "No metrics yet: the curves appear with the first training step.")
            return
        self._cols = cols = 4 if len(specs) > 6 else (3 if len(specs) > 4 else 2)
        for c in range(max(4, self._grid.columnCount())):
            self._grid.setColumnStretch(c, 1 if c < cols else 0)
        views = self._view_sets.setdefault(specs, [])
        if len(self._view_sets) > 6:  # many generic stages seen: drop the oldest other set
            old = next(k for k in self._view_sets if k != specs)
            for view in self._view_sets.pop(old):
                view.deleteLater()
        for i, view in enumerate(views):
            self._grid.addWidget(view, i // cols, i % cols)
            view.setVisible(True)
        for i in range(len(views), len(specs)):  # keeps the grid's shape until the plot is built
            holder = QWidget(self)
            self._grid.addWidget(holder, i // cols, i % cols)
            self._placeholders[i] = holder
        self.views = views
        self._apply_markers()

    def _build_pending(self, limit: Optional[int]) -> None:
        """Build up to ``limit`` (``None``: all) of the current set's plots not built yet.

        A plot costs ~15 ms to build: a stage's first 8 at once would be one long stall."""
        while len(self.views) < len(self._specs) and (limit is None or limit > 0):
            i = len(self.views)
            holder = self._placeholders.pop(i, None)
            if holder is not None:
                self._grid.removeWidget(holder)
                holder.deleteLater()
            view = MetricPlotView(self._specs[i], self)
            view.export_requested.connect(self.export_requested)
            self._grid.addWidget(view, i // self._cols, i % self._cols)
            self.views.append(view)
            limit = None if limit is None else limit - 1
            self._apply_markers()

    def _apply_markers(self) -> None:
        for view in self.views:
            steps = [s for n in view.spec.names for s in self._markers.get(n, [])]
            view.set_markers(steps if self._axis == "step" else [])

    def save_png(self, path: Path) -> bool:
        """Save the whole grid as a PNG image (what is on screen)."""
        return self.grab().save(str(path), "PNG")
