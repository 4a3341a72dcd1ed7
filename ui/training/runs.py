"""The Runs page: run history and queue, live curves, health, samples, logs and failures.

Data flow (nothing here blocks the window):

- The run list comes from the shared :class:`~ui.common.jobs.JobMonitor`
  (``runs_changed``, polled off-thread); each run's key metric and queue
  position come from a worker scanning the events files incrementally
  (:class:`~workbench.jobs.metrics.KeyMetricScanner`).
- Each shown run has a :class:`~workbench.jobs.metrics.RunFeed`. Its first
  read (a long run's events file can be large) happens on a worker thread
  (:func:`~ui.common.worker.run_in_thread`), in small chunks with short
  pauses so the window keeps the GIL often enough; from then on one timer
  (:data:`TICK_MS`, 10 Hz) tails every shown run's ``events.jsonl`` and
  ``stderr.log`` (a ``stat`` each when nothing changed) and redraws only
  plots whose data changed, at most :data:`VIEWS_PER_TICK` per tick, so a
  tick stays short however fast a job writes or however long its curves.
- Re-attach: a page opened on a running job (also after the app restarts)
  rebuilds every curve from ``events.jsonl`` and continues from the byte
  where that read ended: no gap and no duplicate.

Multi-select rows in the history to overlay runs; the current row is the
primary run (its samples, logs, health and failure are shown).
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QFont, QPalette
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QHeaderView,
                               QInputDialog, QLabel, QMessageBox, QPushButton, QSlider, QSplitter, QTableView,
                               QTabWidget, QVBoxLayout, QWidget)

from workbench.jobs.metrics import KeyMetricScanner, RunFeed, TextTail, format_key_metric, stores_to_csv
from workbench.jobs.rundir import RunDir, read_queued
from workbench.jobs.supervisor import CANCELLED, FAILED, QUEUED, RUNNING, TERMINAL, RunInfo
from workbench.train.health import HealthMonitor

from ..common.elided_label import ElidedLabel
from ..common.jobs import JobMonitor
from ..common.worker import Task, run_in_thread
from .health_view import HealthView
from .log_view import FailurePanel, LogView
from .plots import MetricPlotView, PlotGridView, preload_pyqtgraph
from .run_history import RunHistoryModel, delete_run_folder, short_run_name
from .samples_view import SamplesView
from .stages import STAGES

#: Tail-and-redraw period (10 Hz). Each tick updates at most :data:`VIEWS_PER_TICK` plots,
#: so a plot is redrawn at most 10 times a second and a PPO grid of 8 every 0.4 s.
TICK_MS = 100
VIEWS_PER_TICK = 2
#: Runs drawn together at most (the primary and its overlays).
MAX_SHOWN = 6
#: Feeds kept in memory (the shown ones and the recently shown).
FEED_CACHE = 10


def default_run(runs: list[RunInfo]) -> RunInfo:
    """The run to show when the user has chosen none: the running training run (a Train-page
    stage), else the newest training run that has started, else a running job, else the first."""
    training = [r for r in runs if r.stage in STAGES]
    return next((r for r in training if r.status == RUNNING), None) \
        or next((r for r in training if r.status != QUEUED), None) \
        or next((r for r in runs if r.status == RUNNING), None) or runs[0]


# -- one watched run ------------------------------------------------------------------------------
class _RunWatch:
    """A run's feed, health monitor and stderr tail; ``loaded`` once the first read is done.

    Until then a worker thread owns the feed and the GUI thread must not touch it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.feed = RunFeed(path)
        self.health = HealthMonitor()
        self.stderr = TextTail(path / "stderr.log")
        self.loaded = False
        self.task: Optional[Task] = None
        self.error: Optional[str] = None


# -- the page -------------------------------------------------------------------------------------
class RunsPanel(QWidget):
    """The Runs page (see the module docstring and :mod:`ui.common.page`).

    ``monitor``: the window's shared :class:`JobMonitor`; by default the page
    uses ``window().job_monitor`` when there is one, else its own.
    """

    #: The primary run changed (its id, or "" when none).
    run_shown = Signal(str)

    def __init__(self, parent: Optional[QWidget] = None, *, monitor: Optional[JobMonitor] = None) -> None:
        super().__init__(parent)
        self.setObjectName("runsPanel")
        self._root: Optional[Path] = None
        self._monitor: Optional[JobMonitor] = monitor
        self._own_monitor = False
        self._monitor_connected = False
        self._watches: OrderedDict[str, _RunWatch] = OrderedDict()
        self._primary: Optional[str] = None
        self._overlays: list[str] = []
        self._disk: dict[str, tuple[float, str]] = {}  # run id -> (when measured, "1.2 GB on disk (3 checkpoints)")
        self._pending_select: Optional[str] = None
        self._user_selected = False
        self._scanner = KeyMetricScanner()
        self._scan_task: Optional[Task] = None
        self._scan_again = False
        self._action_task: Optional[Task] = None
        self._tasks: list[Task] = []
        preload = preload_pyqtgraph(self)
        self._tasks.append(preload)
        preload.done.connect(lambda: self._tasks.remove(preload) if preload in self._tasks else None)
        self._build()
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._on_timer_timeout)

    # -- construction -------------------------------------------------------------------------------
    def _build(self) -> None:
        title = QLabel("Runs", self)
        font = QFont(title.font())
        font.setPointSizeF(font.pointSizeF() * 1.15)
        font.setWeight(QFont.Weight.DemiBold)
        title.setFont(font)
        self.queue_label = QLabel("", self)
        self.queue_label.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.queue_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop the run at its next step (it saves a checkpoint), "
                                      "or take a queued run out of the queue")
        self.resume_button = QPushButton("Resume", self)
        self.resume_button.setToolTip("Continue a cancelled or failed run from its newest checkpoint that verifies "
                                      "(a damaged one is skipped with a warning)")
        self.resume_from_button = QPushButton("Resume from…", self)
        self.resume_from_button.setToolTip("Continue a cancelled or failed run from a checkpoint you choose")
        self.open_button = QPushButton("Open folder", self)
        self.open_button.setToolTip("Open the run folder (config, events, checkpoints, logs)")
        self.delete_button = QPushButton("Delete…", self)
        self.delete_button.setToolTip("Delete a finished run's folder (not while other runs were trained from it)")
        self.probes_check = QCheckBox("GPU probes", self)
        self.probes_check.setToolTip("Also list the short GPU probe job the app runs when it opens a workspace")
        self.probes_check.toggled.connect(self._on_probes_check_toggled)
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        self.resume_button.clicked.connect(self._on_resume_button_clicked)
        self.resume_from_button.clicked.connect(self._on_resume_from_button_clicked)
        self.open_button.clicked.connect(self._on_open_button_clicked)
        self.delete_button.clicked.connect(self._on_delete_button_clicked)
        top = QHBoxLayout()
        top.addWidget(title)
        top.addSpacing(12)
        top.addWidget(self.queue_label, 1)
        top.addWidget(self.probes_check)
        for b in (self.cancel_button, self.resume_button, self.resume_from_button, self.open_button,
                  self.delete_button):
            top.addWidget(b)

        self.model = RunHistoryModel(self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.setAlternatingRowColors(True)
        self.table.setToolTip("Select a run to see it; Ctrl/Shift-click more runs to overlay their curves")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for col, width in enumerate((150, 70, 110, 110, 80, 60)):
            self.table.setColumnWidth(col, width)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection_changed)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_selection_changed)
        history = QWidget(self)
        hl = QVBoxLayout(history)
        hl.setContentsMargins(0, 0, 0, 0)
        hl.addLayout(top)
        hl.addWidget(self.table, 1)

        # The shown run: header, controls, failure, plots beside health.
        # Elided: a long run name with its size and checkpoints must not widen the window past 1280.
        self.run_label = ElidedLabel("No run selected", self)
        rf = QFont(self.run_label.font())
        rf.setWeight(QFont.Weight.DemiBold)
        self.run_label.setFont(rf)
        self.run_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.smoothing_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.smoothing_slider.setRange(0, 99)
        self.smoothing_slider.setValue(60)
        self.smoothing_slider.setFixedWidth(140)
        self.smoothing_slider.setToolTip("Exponential moving average of the curves (0 = raw values)")
        self.smoothing_label = QLabel("0.60", self)
        self.smoothing_label.setMinimumWidth(self.fontMetrics().horizontalAdvance("0.000"))
        self.smoothing_slider.valueChanged.connect(self._on_smoothing_slider_value_changed)
        self.axis_combo = QComboBox(self)
        self.axis_combo.addItem("Step", "step")
        self.axis_combo.addItem("Time (min)", "time")
        self.axis_combo.setToolTip("x axis: optimizer step, or wall-clock minutes since the run started")
        self.axis_combo.currentIndexChanged.connect(self._on_axis_combo_current_index_changed)
        self.png_button = QPushButton("Export PNG…", self)
        self.png_button.setToolTip("Save the plots as a PNG image")
        self.png_button.clicked.connect(self._on_png_button_clicked)
        self.csv_button = QPushButton("Export CSV…", self)
        self.csv_button.setToolTip("Save every metric of the shown runs as CSV (one row per run and step)")
        self.csv_button.clicked.connect(self._on_csv_button_clicked)
        controls = QHBoxLayout()
        controls.addWidget(self.run_label, 1)
        controls.addWidget(QLabel("Smoothing", self))
        controls.addWidget(self.smoothing_slider)
        controls.addWidget(self.smoothing_label)
        controls.addSpacing(8)
        controls.addWidget(QLabel("x axis", self))
        controls.addWidget(self.axis_combo)
        controls.addSpacing(8)
        controls.addWidget(self.png_button)
        controls.addWidget(self.csv_button)

        self.failure_panel = FailurePanel(self)
        self.plots = PlotGridView(self)
        self.plots.set_smoothing(0.6)
        self.plots.export_requested.connect(self._on_plots_export_requested)
        self.health_view = HealthView(self)
        self.health_view.setMinimumWidth(220)
        plots_split = QSplitter(Qt.Orientation.Horizontal, self)
        plots_split.addWidget(self.plots)
        plots_split.addWidget(self.health_view)
        plots_split.setStretchFactor(0, 4)
        plots_split.setStretchFactor(1, 1)
        plots_split.setSizes([900, 270])
        plots_split.setChildrenCollapsible(False)
        detail = QWidget(self)
        dl = QVBoxLayout(detail)
        dl.setContentsMargins(0, 0, 0, 0)
        dl.addLayout(controls)
        dl.addWidget(self.failure_panel)
        dl.addWidget(plots_split, 1)

        self.samples_view = SamplesView(self)
        self.eval_view = SamplesView(self, kind="eval")  # completions on the held-out eval prompts
        self.log_view = LogView(self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.samples_view, "Samples")
        self.tabs.addTab(self.eval_view, "Eval samples")
        self.tabs.addTab(self.log_view, "Log")
        self.tabs.setDocumentMode(True)

        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(history)
        split.addWidget(detail)
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 5)
        split.setStretchFactor(2, 3)
        split.setSizes([250, 360, 200])  # the history shows about 7 runs at 1280x720
        split.setChildrenCollapsible(False)
        self.splitter = split
        self.status_label = QLabel("", self)
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.status_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 6)
        layout.addWidget(split, 1)
        layout.addWidget(self.status_label)
        self._update_actions()

    # -- the page contract --------------------------------------------------------------------------
    def set_workspace(self, root: Optional[Path]) -> None:
        """Show the runs of the workspace at ``root`` (``None``: nothing)."""
        self._root = Path(root).resolve() if root is not None else None
        pending = self._pending_select  # select_run() before the workspace was set
        self._stop_feeds()
        self._primary, self._overlays, self._pending_select = None, [], None
        self._user_selected = False
        self._scanner = KeyMetricScanner()
        self.plots.set_feeds([])
        self._show_primary()
        monitor = self._ensure_monitor()
        if self._own_monitor:
            monitor.set_workspace(self._root)
        if self._root is None:
            self._timer.stop()
            self.model.set_runs([])
        else:
            self._timer.start()
            self._on_runs_changed(monitor.runs)
            monitor.refresh()
            if pending:
                self.select_run(pending)
        self._update_actions()

    def shutdown(self) -> None:
        """Stop the timer, the workers and (when the page owns it) the job monitor."""
        self._timer.stop()
        self._stop_feeds()
        for task in [self._scan_task, self._action_task, *self._tasks]:
            if task is not None:
                task.cancel()
                task.wait(10000)
        if self._own_monitor and self._monitor is not None:
            self._monitor.stop()

    def select_run(self, run_id: str) -> None:
        """Show ``run_id`` (e.g. just started from the Train page), selecting its row once listed."""
        if self._root is None:
            self._pending_select = run_id  # shown once a workspace is set
            return
        self._user_selected = True
        if self._select_row(run_id):
            return
        self._pending_select = run_id
        self._set_shown(run_id, [])
        if self._monitor is not None:
            self._monitor.refresh()

    # -- monitor and history ------------------------------------------------------------------------
    def _ensure_monitor(self) -> JobMonitor:
        """The monitor given, else the window's shared one, else one of our own (standalone)."""
        if self._monitor is None:
            win = self.window()
            shared = getattr(win, "job_monitor", None) if win is not self else None
            if isinstance(shared, JobMonitor):
                self._monitor = shared
            else:
                self._monitor, self._own_monitor = JobMonitor(self), True
        if not self._monitor_connected:
            self._monitor.runs_changed.connect(self._on_runs_changed)
            self._monitor_connected = True
        return self._monitor

    def _on_runs_changed(self, runs: list) -> None:
        sup = self._monitor.supervisor if self._monitor is not None else None
        if self._root is None or sup is None or Path(sup.root).resolve() != self._root:
            return  # a shared monitor still on another workspace: its runs are not ours
        keep = self._selected_ids()
        current = self._primary
        reset = self.model.set_runs(runs)
        if reset:
            self._restore_selection(current, keep)
        if self._pending_select and self._select_row(self._pending_select):
            self._pending_select = None
        elif not self._user_selected and self._primary is None and self.model.rowCount():
            self._select_row(default_run(self.model.runs).run_id, user=False)
        self._update_queue_label()
        self._update_actions()
        self._update_header()
        self._sync_failure()
        self._scan_key_metrics()

    def _scan_key_metrics(self) -> None:
        if self._scan_task is not None and self._scan_task.running:
            self._scan_again = True
            return
        self._scan_again = False
        scanner = self._scanner
        runs = self.model.runs

        def work(progress, cancel):  # noqa: ARG001 - worker signature
            found = scanner.scan([r.path for r in runs], cancel)
            queued = {}
            for r in runs:
                if r.status == QUEUED:
                    marker = read_queued(RunDir(r.path))
                    if marker:
                        queued[r.run_id] = float(marker.get("time", 0.0))
            return scanner, {rid: format_key_metric(v) for rid, v in found.items()}, queued

        self._scan_task = run_in_thread(work, parent=self, on_success=self._on_key_metrics_scanned)
        self._scan_task.done.connect(self._on_scan_task_done)

    def _on_key_metrics_scanned(self, result) -> None:
        scanner, keys, queued = result
        if scanner is not self._scanner:
            return  # the workspace changed meanwhile
        keep, current = self._selected_ids(), self._primary
        if self.model.set_extras(keys, queued):
            self._restore_selection(current, keep)
        self._update_queue_label()

    def _on_scan_task_done(self) -> None:
        if self._scan_again:
            self._scan_key_metrics()

    def _update_queue_label(self) -> None:
        runs = self.model.runs
        running = [short_run_name(r.run_id) for r in runs if r.status == RUNNING]
        queued = [short_run_name(r.run_id) for r in runs if r.status == QUEUED]
        parts = []
        if running:
            parts.append(f"running: {', '.join(running)}")
        if queued:
            parts.append(f"queue: {', '.join(f'#{i + 1} {n}' for i, n in enumerate(queued))}")
        if not parts:
            parts.append(f"{len(runs)} run{'s' if len(runs) != 1 else ''}, none running" if runs
                         else "No runs yet: start one on the Train page.")
        self.queue_label.setText("  \u00b7  ".join(parts))

    # -- selection ----------------------------------------------------------------------------------
    def _selected_ids(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.run_at(r).run_id for r in rows if self.model.run_at(r) is not None]

    def _select_row(self, run_id: str, *, user: bool = True) -> bool:
        row = self.model.row_of(run_id)
        if row < 0:
            return False
        self._user_selected = self._user_selected or user
        self.table.selectionModel().setCurrentIndex(
            self.model.index(row, 0),
            self.table.selectionModel().SelectionFlag.ClearAndSelect | self.table.selectionModel().SelectionFlag.Rows)
        self.table.scrollTo(self.model.index(row, 0))
        return True

    def _restore_selection(self, current: Optional[str], ids: list[str]) -> None:
        sm = self.table.selectionModel()
        sm.blockSignals(True)
        try:
            sm.clearSelection()
            for rid in ids:
                row = self.model.row_of(rid)
                if row >= 0:
                    sm.select(self.model.index(row, 0), sm.SelectionFlag.Select | sm.SelectionFlag.Rows)
            if current is not None and self.model.row_of(current) >= 0:
                sm.setCurrentIndex(self.model.index(self.model.row_of(current), 0), sm.SelectionFlag.NoUpdate)
        finally:
            sm.blockSignals(False)
        self.table.viewport().update()

    def _on_table_selection_changed(self, *args) -> None:
        current = self.table.selectionModel().currentIndex()
        selected = self._selected_ids()
        primary = self.model.run_at(current.row()).run_id if current.isValid() and \
            self.model.run_at(current.row()) is not None else (selected[0] if selected else None)
        if primary is not None and primary not in selected and selected:
            primary = selected[0]
        overlays = [rid for rid in selected if rid != primary][:MAX_SHOWN - 1]
        if primary is not None and self._pending_select == primary:
            self._pending_select = None
        self._set_shown(primary, overlays)

    # -- feeds ----------------------------------------------------------------------------------------
    def _watch(self, run_id: str) -> Optional[_RunWatch]:
        if self._root is None:
            return None
        watch = self._watches.get(run_id)
        if watch is None:
            watch = self._watches[run_id] = _RunWatch(self._root / "runs" / run_id)
            self._load(watch)
            self._evict()
        else:
            self._watches.move_to_end(run_id)
        return watch

    def _evict(self) -> None:
        shown = set([self._primary, *self._overlays])
        for rid in list(self._watches):
            if len(self._watches) <= FEED_CACHE:
                break
            w = self._watches[rid]
            if rid not in shown and w.loaded:
                del self._watches[rid]

    def _load(self, watch: _RunWatch) -> None:
        """The first read of a run's events, on a worker thread (the file may be long)."""
        feed, health = watch.feed, watch.health

        def work(progress, cancel):
            feed.catch_up(progress, cancel, chunk=128 << 10, pause_s=0.003)  # see RunFeed.catch_up
            health.update(feed.store)
            return watch

        watch.task = run_in_thread(work, parent=self, on_success=self._on_watch_loaded,
                                   on_failure=lambda exc, w=watch: self._on_watch_failed(w, exc))
        self._update_header()

    def _on_watch_loaded(self, watch: _RunWatch) -> None:
        watch.loaded, watch.task = True, None
        if self._watches.get(watch.feed.run_id) is not watch:
            return  # dropped (workspace changed) while loading
        if watch.feed.run_id == self._primary:
            self._show_primary()
        if watch.feed.run_id in (self._primary, *self._overlays):
            self._update_plots_feeds()

    def _on_watch_failed(self, watch: _RunWatch, exc: BaseException) -> None:
        watch.task, watch.error = None, f"{type(exc).__name__}: {exc}"
        if self._watches.get(watch.feed.run_id) is watch:
            del self._watches[watch.feed.run_id]  # selecting the run again retries
        self.status_label.setText(f"Could not read {watch.feed.run_id}: {watch.error}")

    def _stop_feeds(self) -> None:
        for watch in self._watches.values():
            if watch.task is not None:
                watch.task.cancel()
                watch.task.wait(10000)
        self._watches.clear()

    def _set_shown(self, primary: Optional[str], overlays: list[str]) -> None:
        changed_primary = primary != self._primary
        self._primary, self._overlays = primary, overlays
        for rid in [primary, *overlays]:
            if rid is not None:
                self._watch(rid)
        if changed_primary:
            self._show_primary()
            self.run_shown.emit(primary or "")
        self._update_plots_feeds()
        self._update_actions()

    def _update_plots_feeds(self) -> None:
        feeds = [self._watches[r].feed for r in [self._primary, *self._overlays]
                 if r is not None and r in self._watches and self._watches[r].loaded]
        if [f.run_id for f in feeds] != [f.run_id for f in self.plots.feeds]:
            self.plots.set_feeds(feeds)
        # The first plots now, the rest over the next ticks: a long run's 8 plots at once
        # would be one long stall.
        self.plots.redraw(max_views=VIEWS_PER_TICK)

    def _show_primary(self) -> None:
        """Fill the samples, log, health and failure views from the primary run."""
        watch = self._watches.get(self._primary) if self._primary else None
        self.log_view.clear()
        if watch is None or not watch.loaded:
            self.samples_view.set_samples([])
            self.eval_view.set_samples([])
            self.health_view.set_warnings([], [])
            self.failure_panel.show_finished(None)
            self.plots.set_markers({})
            self._update_header()
            return
        feed = watch.feed
        self.samples_view.set_samples(list(feed.samples))
        self.eval_view.set_samples(list(feed.samples))
        if not feed.samples and feed.stage != "ppo":
            self.tabs.setCurrentWidget(self.log_view)  # only PPO reports samples
        elif feed.samples and not (self.tabs.currentWidget() is self.eval_view and self.eval_view.shown_step):
            self.tabs.setCurrentWidget(self.samples_view)  # unless looking at this run's eval samples
        self.log_view.append_logs(list(feed.logs))
        watch.stderr = TextTail(watch.path / "stderr.log")  # the new console starts at the log's tail
        self.log_view.append_stderr(watch.stderr.read(), skipped=watch.stderr.skipped)
        self._show_health(watch)
        self._sync_failure()
        self._update_header()

    def _show_health(self, watch: _RunWatch) -> None:
        watch.health.update(watch.feed.store)  # incremental: an overlay run that becomes primary is current
        self.health_view.set_warnings(watch.health.warnings, watch.feed.warnings)
        markers: dict[str, list[int]] = {}
        for w in watch.health.warnings:
            markers.setdefault(w.metric, []).append(w.step)
        self.plots.set_markers(markers)

    def _sync_failure(self) -> None:
        """The failure panel shows the primary run's ``finished`` event, unless the run is live
        again (resumed: queued or running)."""
        watch = self._watches.get(self._primary) if self._primary else None
        info = self._current_info()
        finished = watch.feed.finished if watch is not None and watch.loaded else None
        if info is not None and info.status in (QUEUED, RUNNING):
            finished = None
        self.failure_panel.show_finished(finished)

    def _update_header(self) -> None:
        rid = self._primary
        if rid is None:
            self.run_label.setText("No run selected")
            return
        info = next((r for r in self.model.runs if r.run_id == rid), None)
        watch = self._watches.get(rid)
        parts = [short_run_name(rid)]
        if info is not None:
            pos = self.model.queue_position(rid)
            parts.append(f"queued #{pos}" if pos else info.status)
        if watch is not None and not watch.loaded:
            parts.append("reading events…")
        elif watch is not None:
            steps = [s.last_step for s in watch.feed.store.series.values() if len(s)]
            if steps:
                parts.append(f"step {max(steps)}")
        if info is not None:
            parts.append(self._disk_text(rid, info.path))
        if self._overlays:
            parts.append(f"+ {len(self._overlays)} overlaid")
        self.run_label.setText("  \u00b7  ".join(parts))

    def _disk_text(self, run_id: str, path: Path) -> str:
        """The run folder's disk use, re-measured at most every few seconds (a few stat calls)."""
        from workbench.jobs.checkpoints import checkpoint_usage
        from workbench.train.vram import format_bytes

        now = time.monotonic()
        cached = self._disk.get(run_id)
        if cached is None or now - cached[0] > 5.0:
            total, checkpoints = checkpoint_usage(path)
            cached = (now, f"{format_bytes(total)} on disk ({len(checkpoints)} checkpoint"
                           f"{'' if len(checkpoints) == 1 else 's'})")
            self._disk[run_id] = cached
        return cached[1]

    # -- the timer: tail, then redraw -------------------------------------------------------------------
    def _on_timer_timeout(self) -> None:
        metrics = False
        for rid in [self._primary, *self._overlays]:
            watch = self._watches.get(rid) if rid else None
            if watch is None or not watch.loaded:
                continue
            upd = watch.feed.poll()
            if not upd:
                continue
            metrics |= upd.metrics
            if rid == self._primary:
                if upd.metrics or upd.warnings:
                    self._show_health(watch)
                self.samples_view.append(upd.samples)
                self.eval_view.append(upd.samples)
                self.log_view.append_logs(upd.logs)
                if upd.status:
                    self._sync_failure()
        primary = self._watches.get(self._primary) if self._primary else None
        if primary is not None and primary.loaded:
            text = primary.stderr.read()
            if text:
                self.log_view.append_stderr(text)
        if metrics:
            self.plots.mark_dirty()
            self._update_header()
        if self.isVisible():
            self.plots.redraw(max_views=VIEWS_PER_TICK)

    # -- controls -------------------------------------------------------------------------------------
    def _on_smoothing_slider_value_changed(self, value: int) -> None:
        weight = value / 100.0
        self.smoothing_label.setText(f"{weight:.2f}")
        self.plots.set_smoothing(weight)
        self.plots.redraw()

    def _on_axis_combo_current_index_changed(self, _index: int) -> None:
        self.plots.set_x_axis(self.axis_combo.currentData())
        self.plots.redraw()

    def _ask_save_path(self, title: str, name: str, filters: str) -> Optional[Path]:
        dialog = QFileDialog(self, title, str((self._root or Path.home()) / name), filters)
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        dialog.setDefaultSuffix(filters.rsplit("*.", 1)[-1].rstrip(")"))
        if dialog.exec() != QFileDialog.DialogCode.Accepted or not dialog.selectedFiles():
            return None
        return Path(dialog.selectedFiles()[0])

    def _on_png_button_clicked(self) -> None:
        if not self.plots.views:
            return
        path = self._ask_save_path("Export plots as PNG", f"{self._primary or 'runs'}-plots.png", "PNG image (*.png)")
        if path is not None:
            ok = self.plots.save_png(path)
            self.status_label.setText(f"Saved the plots to {path}" if ok else f"Could not write {path}")

    def _on_plots_export_requested(self, view: MetricPlotView) -> None:
        slug = "".join(c if c.isalnum() else "-" for c in view.spec.title.lower()).strip("-")
        path = self._ask_save_path("Export plot as PNG", f"{self._primary or 'run'}-{slug}.png", "PNG image (*.png)")
        if path is not None:
            ok = view.plot_widget.grab().save(str(path), "PNG")
            self.status_label.setText(f"Saved the plot to {path}" if ok else f"Could not write {path}")

    def _on_csv_button_clicked(self) -> None:
        feeds = self.plots.feeds
        if not feeds:
            return
        path = self._ask_save_path("Export metrics as CSV", f"{feeds[0].run_id}-metrics.csv", "CSV file (*.csv)")
        if path is None:
            return
        # Copies taken here: the timer keeps feeding the live stores while the worker writes.
        stores = [(f.run_id, f.store.copy()) for f in feeds]

        def work(progress, cancel):  # noqa: ARG001 - worker signature
            text = stores_to_csv(stores)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)  # never a half-written CSV under the chosen name
            return path

        self._start_task(work, lambda p: self.status_label.setText(f"Saved the metrics to {p}"),
                         "Could not write the CSV")

    # -- run actions ----------------------------------------------------------------------------------
    def _current_info(self) -> Optional[RunInfo]:
        return next((r for r in self.model.runs if r.run_id == self._primary), None)

    def _update_actions(self) -> None:
        info = self._current_info()
        busy = self._action_task is not None and self._action_task.running
        sup = self._monitor.supervisor if self._monitor is not None else None
        ok = info is not None and sup is not None and not busy
        self.cancel_button.setEnabled(ok and info.status in (QUEUED, RUNNING))
        self.resume_button.setEnabled(ok and info.status in (CANCELLED, FAILED) and not info.alive)
        self.resume_from_button.setEnabled(self.resume_button.isEnabled())
        self.open_button.setEnabled(info is not None)
        self.delete_button.setEnabled(ok and info.status in TERMINAL and not info.alive)
        has_plots = bool(self.plots.feeds)
        self.png_button.setEnabled(has_plots)
        self.csv_button.setEnabled(has_plots)

    def _start_task(self, work, on_success, failure_text: str) -> Task:
        task = run_in_thread(work, parent=self, on_success=on_success,
                             on_failure=lambda exc: self.status_label.setText(f"{failure_text}: {exc}"))
        self._tasks.append(task)
        task.done.connect(lambda t=task: self._tasks.remove(t) if t in self._tasks else None)
        return task

    def _run_action(self, what: str, work) -> None:
        self.status_label.setText(what + "…")

        def done_ok(message):
            self.status_label.setText(message)
            if self._monitor is not None:
                self._monitor.refresh()

        self._action_task = self._start_task(work, done_ok, f"{what} failed")
        self._action_task.done.connect(self._update_actions)
        self._update_actions()

    def _confirm(self, title: str, text: str, yes: str, no: str) -> bool:
        """Ask with two verbs (never "Cancel" beside "cancel run"); the safe one, ``no``, is the default."""
        box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton, self)
        box.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        yes_button = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
        no_button = box.addButton(no, QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(no_button)
        box.setEscapeButton(no_button)
        box.exec()
        return box.clickedButton() is yes_button

    def _on_probes_check_toggled(self, show: bool) -> None:
        keep, current = self._selected_ids(), self._primary
        if self.model.set_show_hidden(show):
            self._restore_selection(current, keep)
        self._update_queue_label()

    def _on_cancel_button_clicked(self) -> None:
        info, sup = self._current_info(), self._monitor.supervisor if self._monitor else None
        if info is None or sup is None:
            return
        queued = info.status == QUEUED
        text = (f"Take {short_run_name(info.run_id)} out of the queue?" if queued else
                f"Stop {short_run_name(info.run_id)}? It saves a checkpoint at its next step, "
                "so you can resume it later.")
        if not self._confirm("Remove from the queue" if queued else "Stop the run", text,
                             "Remove from queue" if queued else "Stop run",
                             "Keep in queue" if queued else "Keep running"):
            return
        run_id = info.run_id
        self._run_action(f"Cancelling {short_run_name(run_id)}",
                         lambda p, c: f"{short_run_name(run_id)}: {sup.cancel(run_id).status}")

    def _on_resume_button_clicked(self) -> None:
        info, sup = self._current_info(), self._monitor.supervisor if self._monitor else None
        if info is None or sup is None:
            return
        run_id = info.run_id
        self._run_action(f"Resuming {short_run_name(run_id)}",
                         lambda p, c: (sup.resume(run_id), f"{short_run_name(run_id)} resumed")[1])

    def _on_resume_from_button_clicked(self) -> None:
        from workbench.jobs.rundir import list_checkpoints

        info, sup = self._current_info(), self._monitor.supervisor if self._monitor else None
        if info is None or sup is None:
            return
        names = [path.name for _step, path in reversed(list_checkpoints(info.path))]
        if not names:
            self.status_label.setText(f"{short_run_name(info.run_id)} has no checkpoint yet: Resume starts it over")
            return
        chosen, ok = QInputDialog.getItem(self, "Resume from a checkpoint",
                                          f"Continue {short_run_name(info.run_id)} from:", names, 0, False)
        if not ok:
            return
        run_id = info.run_id  # a damaged choice is refused by the supervisor; the status line says why
        self._run_action(f"Resuming {short_run_name(run_id)} from {chosen}",
                         lambda p, c: (sup.resume(run_id, checkpoint=chosen),
                                       f"{short_run_name(run_id)} resumed from {chosen}")[1])

    def _on_open_button_clicked(self) -> None:
        info = self._current_info()
        if info is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(info.path)))

    def _on_delete_button_clicked(self) -> None:
        info, sup = self._current_info(), self._monitor.supervisor if self._monitor else None
        if info is None or sup is None or info.status not in TERMINAL or info.alive:
            return
        if not self._confirm("Delete run", f"Delete {info.run_id} and its checkpoints? This cannot be undone.",
                             "Delete", "Keep it"):
            return
        run_id, runs_dir = info.run_id, sup.runs_dir
        watch = self._watches.pop(run_id, None)
        if watch is not None and watch.task is not None:
            watch.task.cancel()
            watch.task.wait(10000)
        if self._primary == run_id:
            self._set_shown(None, [])

        def work(progress, cancel):  # noqa: ARG001 - worker signature
            delete_run_folder(runs_dir, run_id)
            return f"Deleted {run_id}"

        self._run_action(f"Deleting {short_run_name(run_id)}", work)

    # -- test and benchmark hooks ---------------------------------------------------------------------
    def watch_for(self, run_id: str) -> Optional[_RunWatch]:
        """The watch of a shown or cached run (``None`` if never shown)."""
        return self._watches.get(run_id)

    @property
    def primary_run(self) -> Optional[str]:
        return self._primary

    @property
    def overlay_runs(self) -> list[str]:
        return list(self._overlays)

