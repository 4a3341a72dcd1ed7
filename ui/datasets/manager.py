"""The Datasets page: browse, search, filter, read and edit a workspace's datasets.

Left, the dataset list; right, a search field and filters over a lazy
record table (:class:`~ui.datasets.table_model.RecordTableModel`), and the
detail pane under it. The toolbar opens the import wizard, the export
dialog, the dedup / split / freeze actions and the stats (their modules
are imported when first used), and edits, deletes or restores the
selected records on the page's :attr:`DatasetManagerPanel.undo_stack`.

Page contract: :mod:`ui.common.page`. Threading: id lists, facets, the
dataset summaries and the search index are read or written on worker
threads, each with its own connection; previews of the rows on screen and
the short write transactions of an edit use the page's own connection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QPalette, QShortcut, QUndoStack
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QMessageBox, QProgressBar, QSplitter, QStyledItemDelegate, QTableView,
                               QToolBar, QVBoxLayout, QWidget)

from workbench.store import browse
from workbench.store.browse import NO_SPLIT, BrowseQuery, DatasetSummary
from workbench.store.workspace import Workspace

from ..common.text import plural
from ..common.worker import Task, run_in_thread
from .commands import EditRecordCommand, RecordChanger, SetDeletedCommand, push
from .dataset_list import DatasetListView
from .detail import RecordDetailView
from .indexer import SearchIndexer
from .table_model import RecordTableModel

#: Typing pauses this long before the search runs.
SEARCH_DEBOUNCE_MS = 250
_ANY = None

KEYS = [
    ("Ctrl+F", "Search the records of the dataset"),
    ("Enter / F2", "Edit the selected record"),
    ("Delete", "Delete the selected records (soft: Restore or Undo brings them back)"),
    ("Ctrl+Z / Ctrl+Shift+Z", "Undo / redo an edit, delete or restore"),
    ("Ctrl+I", "Import a dataset file"),
]


class MiddleElideDelegate(QStyledItemDelegate):
    """Elides a cell's text in the middle (for file:line sources)."""

    def initStyleOption(self, option, index) -> None:  # noqa: N802 - Qt override
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideMiddle


class DatasetManagerPanel(QWidget):
    """The dataset manager page (``ui.common.page`` contract)."""

    #: A dataset's records changed here or through an action (its name).
    dataset_changed = Signal(str)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("datasetManager")
        self.undo_stack = QUndoStack(self)
        self.root: Optional[Path] = None
        self._ws: Optional[Workspace] = None
        self._tasks: list[Task] = []           # summaries and facets being read
        self._summaries_seq = 0
        self._pending_select: Optional[str] = None
        self._index_message = ""
        self.import_wizard = None
        self.export_dialog = None
        self.action_dialog = None
        self.stats_dialog = None
        self.edit_dialog = None
        self._kept: Optional[tuple] = None

        self.changer = RecordChanger(lambda: self._ws.conn if self._ws is not None else None, self)
        self.changer.replaced.connect(self._on_changer_replaced)
        self.changer.deleted_changed.connect(self._on_changer_deleted_changed)
        self.changer.failed.connect(self._on_changer_failed)
        self.indexer = SearchIndexer(self)
        self.indexer.progressed.connect(self._on_indexer_progressed)
        self.indexer.finished.connect(self._on_indexer_finished)
        self.indexer.failed.connect(self._on_indexer_failed)

        self._build_toolbar()
        self._build_left()
        self._build_right()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.left)
        splitter.addWidget(self.right)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([300, 980])  # the dataset list needs its columns, the records the rest
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 8)
        layout.setSpacing(4)
        layout.addWidget(self.toolbar)
        layout.addWidget(splitter, 1)
        self._bind_keys()
        self._update_actions()
        self._show_no_workspace()

    # -- construction --------------------------------------------------------------------------
    def _action(self, text: str, slot, tip: str, shortcut: Optional[str] = None) -> QAction:
        action = QAction(text, self)
        action.setToolTip(tip + (f" ({shortcut})" if shortcut else ""))
        action.triggered.connect(slot)
        self.toolbar.addAction(action)
        return action

    def _build_toolbar(self) -> None:
        self.toolbar = QToolBar("Datasets")
        self.toolbar.setObjectName("datasetToolbar")
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.import_action = self._action("Import\u2026", self.open_import_wizard,
                                          "Import a JSONL, JSON, CSV, Parquet or Hugging Face dataset", "Ctrl+I")
        self.export_action = self._action("Export\u2026", self.open_export_dialog,
                                          "Export the selected dataset (or one of its snapshots)")
        self.toolbar.addSeparator()
        self.dedup_action = self._action("Dedup\u2026", self._on_dedup_triggered,
                                         "Find and remove duplicate records")
        self.split_action = self._action("Split\u2026", self._on_split_triggered,
                                         "Assign train / validation splits, grouped by prompt")
        self.freeze_action = self._action("Freeze\u2026", self._on_freeze_triggered,
                                          "Freeze the current records as a snapshot with a content hash")
        self.stats_action = self._action("Stats", self._on_stats_triggered,
                                         "Counts, lengths and duplicates of the dataset")
        self.toolbar.addSeparator()
        self.edit_action = self._action("Edit\u2026", self.edit_selected, "Edit the selected record", "Enter")
        self.delete_action = self._action("Delete", self.delete_selected,
                                          "Delete the selected records (Undo or Restore brings them back)", "Delete")
        self.restore_action = self._action("Restore", self.restore_selected,
                                           "Restore the selected deleted records")

    def _build_left(self) -> None:
        self.dataset_list = DatasetListView()
        self.dataset_list.dataset_selected.connect(self._on_dataset_list_dataset_selected)
        title = QLabel("Datasets")
        font = title.font()
        font.setBold(True)
        title.setFont(font)
        self.dataset_card = QLabel()
        self.dataset_card.setObjectName("datasetCard")
        self.dataset_card.setWordWrap(True)
        self.dataset_card.setTextFormat(Qt.TextFormat.PlainText)
        self.dataset_card.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.dataset_card.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.left = QWidget()
        self.left.setMinimumWidth(240)
        layout = QVBoxLayout(self.left)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(title)
        layout.addWidget(self.dataset_list, 1)
        layout.addWidget(self.dataset_card)

    def _build_right(self) -> None:
        self.search_edit = QLineEdit()
        self.search_edit.setObjectName("recordSearch")
        self.search_edit.setPlaceholderText("Search records (Ctrl+F)")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.textChanged.connect(self._on_search_edit_text_changed)
        self.search_edit.returnPressed.connect(self._on_search_edit_return_pressed)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DEBOUNCE_MS)
        self._search_timer.timeout.connect(self._apply_query)

        self.tag_combo = QComboBox()
        self.tag_combo.setObjectName("tagFilter")
        self.source_combo = QComboBox()
        self.source_combo.setObjectName("sourceFilter")
        self.split_combo = QComboBox()
        self.split_combo.setObjectName("splitFilter")
        for text, value in (("Any split", _ANY), ("Train", "train"), ("Validation", "validation"),
                            ("No split", NO_SPLIT)):
            self.split_combo.addItem(text, value)
        self.ranked_combo = QComboBox()
        self.ranked_combo.setObjectName("rankedFilter")
        for text, value in (("Any ranking", _ANY), ("Ranked", True), ("Unranked", False)):
            self.ranked_combo.addItem(text, value)
        self.ranked_combo.setToolTip("Ranked: derived from a ranking, or its prompt was ranked in the Rank page")
        self.deleted_check = QCheckBox("Show deleted")
        self.deleted_check.setObjectName("showDeleted")
        self._reset_facet_combos()
        for combo in (self.tag_combo, self.source_combo):
            # Long tag and file names must not squeeze the search field: the popup shows them whole.
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        for combo in (self.tag_combo, self.source_combo, self.split_combo, self.ranked_combo):
            combo.currentIndexChanged.connect(self._on_filter_changed)
        self.search_edit.setMinimumWidth(140)
        self.deleted_check.toggled.connect(self._on_filter_changed)
        filters = QHBoxLayout()
        filters.setSpacing(6)
        filters.addWidget(self.search_edit, 1)
        for w in (self.tag_combo, self.source_combo, self.split_combo, self.ranked_combo, self.deleted_check):
            filters.addWidget(w)

        self.model = RecordTableModel(self)
        self.model.busy_changed.connect(self._on_model_busy_changed)
        self.model.ids_ready.connect(self._on_model_ids_ready)
        self.model.failed.connect(self._on_model_failed)
        self.model.modelAboutToBeReset.connect(self._on_model_about_to_be_reset)
        self.model.modelReset.connect(self._on_model_reset)
        self.model.rowsInserted.connect(self._update_status)
        self.model.rowsRemoved.connect(self._update_status)
        self.table = QTableView()
        self.table.setObjectName("recordTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.verticalHeader().setVisible(False)
        # Fixed row heights: the view never asks a million rows for their size.
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.table.horizontalHeader().setSortIndicatorShown(True)
        self.table.horizontalHeader().setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        self.table.horizontalHeader().setHighlightSections(False)
        self.table.setSortingEnabled(True)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection_changed)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_current_row_changed)
        self.table.doubleClicked.connect(self._on_table_double_clicked)
        self._middle_elide = MiddleElideDelegate(self.table)

        self.busy_bar = QProgressBar()
        self.busy_bar.setObjectName("busyBar")
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(90)
        self.busy_bar.setMaximumHeight(12)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.setVisible(False)
        self.status_label = QLabel()
        self.status_label.setObjectName("recordStatus")
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        status = QHBoxLayout()
        status.setContentsMargins(0, 0, 0, 0)
        status.addWidget(self.busy_bar)
        status.addWidget(self.status_label, 1)

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.setSpacing(4)
        top_layout.addLayout(filters)
        top_layout.addWidget(self.table, 1)
        top_layout.addLayout(status)
        self.detail = RecordDetailView()
        self.right = QSplitter(Qt.Orientation.Vertical)
        self.right.addWidget(top)
        self.right.addWidget(self.detail)
        self.right.setChildrenCollapsible(False)
        self.right.setSizes([470, 330])  # about 15 record rows at 1280x720, the detail below

    def _bind_keys(self) -> None:
        def bind(key, slot, widget=None):
            sc = QShortcut(QKeySequence(key), widget or self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)
            return sc

        bind("Ctrl+F", self._focus_search)
        # Ctrl+I also belongs to File > Import in the main window: like undo below, the page's
        # own binding steps aside when a window action owns the key (two would cancel out).
        self._window_keys = [(QKeySequence("Ctrl+I"), bind("Ctrl+I", self.open_import_wizard))]
        for key in ("Return", "Enter", "F2"):
            bind(key, self.edit_selected, self.table)
        bind(QKeySequence.StandardKey.Delete, self.delete_selected, self.table)
        # Ctrl+Z / Ctrl+Shift+Z, only while no window action owns them (the main window's
        # Edit menu follows undo_stack; two shortcuts for one key cancel each other out).
        self._undo_shortcuts = []
        for key, slot in ((QKeySequence.StandardKey.Undo, self.undo_stack.undo),
                          (QKeySequence.StandardKey.Redo, self.undo_stack.redo)):
            for seq in QKeySequence.keyBindings(key):
                self._undo_shortcuts.append(bind(seq, slot))
                self._window_keys.append((seq, self._undo_shortcuts[-1]))

    def _sync_undo_shortcuts(self) -> None:
        window = self.window()
        if window is self:
            return
        owned = {seq.toString() for action in window.findChildren(QAction)
                 if not (isinstance(action.parent(), QWidget) and (action.parent() is self
                                                                   or self.isAncestorOf(action.parent())))
                 for seq in action.shortcuts()}
        for seq, sc in self._window_keys:
            sc.setEnabled(seq.toString() not in owned)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self._sync_undo_shortcuts()

    @staticmethod
    def shortcuts() -> list[tuple[str, str]]:
        """The page's keys, for the main window's Keyboard Shortcuts dialog."""
        return list(KEYS)

    # -- page contract --------------------------------------------------------------------------
    def set_workspace(self, root: Optional[Path]) -> None:
        """Bind to the workspace at ``root`` (``None``: none open)."""
        self._close_workspace()
        if root is None:
            self._show_no_workspace()
            return
        self._ws = Workspace.open(root)
        self.root = self._ws.root
        self.model.set_workspace(self.root, self._ws.conn)
        self.indexer.set_workspace(self.root)
        self.dataset_card.setText("")
        self.status_label.setText("Loading datasets\u2026")
        self.refresh_datasets(quick=True)
        self.indexer.start()
        self._update_actions()

    def shutdown(self) -> None:
        """Stop timers and workers, close the connection."""
        self._search_timer.stop()
        self._close_workspace()

    def _close_workspace(self) -> None:
        for dialog in (self.import_wizard, self.action_dialog):
            stop = getattr(dialog, "shutdown", None)
            if callable(stop):
                stop()
        self.indexer.set_workspace(None)
        self.model.shutdown()
        self._summaries_seq += 1
        for task in list(self._tasks):
            task.cancel()
            task.wait(10_000)
        self.undo_stack.clear()
        self.model.set_workspace(None, None)
        if self._ws is not None:
            self._ws.close()
        self._ws = None
        self.root = None

    def _show_no_workspace(self) -> None:
        self.dataset_list.set_summaries([])
        self.detail.clear("Open a workspace to see its datasets.")
        self.status_label.setText("No workspace is open.")
        self._update_actions()

    # -- datasets ---------------------------------------------------------------------------------
    @property
    def current_dataset(self) -> Optional[DatasetSummary]:
        return self.model.summary

    def refresh_datasets(self, select: Optional[str] = None, *, quick: bool = False) -> None:
        """Re-read the dataset list off-thread (counts, snapshots); select ``select`` when given.

        ``quick``: list the datasets without their counts first (a first dataset
        opens sooner), then count.
        """
        if self.root is None:
            return
        if select is not None:
            self._pending_select = select
        root = self.root
        self._summaries_seq += 1
        seq = self._summaries_seq

        def work(progress, cancel):
            ws_conn = Workspace(root).connect()
            try:
                return seq, browse.list_summaries(ws_conn, counts=not quick)
            finally:
                ws_conn.close()

        self._run(work, self._on_summaries_loaded)

    def _run(self, work, on_success) -> None:
        """Read off the GUI thread; the task is waited for when the workspace closes."""
        task = run_in_thread(work, parent=self, on_success=on_success, on_failure=self._on_model_failed)
        self._tasks.append(task)
        task.done.connect(lambda: self._tasks.remove(task) if task in self._tasks else None)

    def _on_summaries_loaded(self, result) -> None:
        seq, summaries = result
        if seq != self._summaries_seq:
            return   # a newer read (or another workspace) supersedes this one
        if summaries and not summaries[0].counted:
            QTimer.singleShot(0, self.refresh_datasets)   # now the counts
        self.dataset_list.set_summaries(summaries)
        if self._pending_select is not None:
            name, self._pending_select = self._pending_select, None
            self.dataset_list.select_name(name)
        elif self.dataset_list.current_summary() is None and summaries:
            self.dataset_list.selectRow(0)
        current = self.dataset_list.current_summary()
        if current is not None:
            self.model.update_summary(current)
            self._show_card(current)
        if not summaries:
            self.detail.clear("This workspace has no datasets yet: Import\u2026 brings one in.")
            self.status_label.setText("No datasets.")
        self._update_status()

    def _show_card(self, s: DatasetSummary) -> None:
        if s.counted:
            lines = [f"{s.name}: {s.kind}, {s.style} style, {s.rows:,} rows "
                     f"(train {s.train:,}, validation {s.validation:,}, no split {s.unassigned:,}), "
                     f"{s.deleted - s.edited:,} deleted"
                     + (f", {plural(s.edited, 'edited record')} (the originals are kept)." if s.edited else ".")]
        else:
            lines = [f"{s.name}: {s.kind}, {s.style} style; counting rows\u2026"]
        if s.snapshots:
            lines.append("Snapshots: " + ", ".join(f"{b.short_hash} ({b.rows:,})" for b in s.snapshots[-3:])
                         + (f" and {len(s.snapshots) - 3} older" if len(s.snapshots) > 3 else ""))
        if s.description:
            lines.append(s.description)
        self.dataset_card.setText("\n".join(lines))

    def _on_dataset_list_dataset_selected(self, summary: Optional[DatasetSummary]) -> None:
        self._reset_filters()
        self.detail.clear()
        if summary is None:
            self.model.set_dataset(None)
            self.dataset_card.setText("")
        else:
            self._show_card(summary)
            self.model.set_dataset(summary, self._query_for(summary))
            # After set_dataset: the indicator's sort request then matches the query (a no-op).
            self.table.horizontalHeader().setSortIndicator(0, Qt.SortOrder.AscendingOrder)
            self._size_columns()
            self._load_facets(summary)
        self._update_actions()
        self._update_status()

    def _size_columns(self) -> None:
        """Small columns get what their content needs; the text columns share the rest."""
        columns = self.model.columns()
        if not columns:
            return
        em = self.table.fontMetrics().horizontalAdvance("M")
        fixed = {"id": 5 * em, "split": 7 * em, "tags": 7 * em, "source": 10 * em, "label": 4 * em}
        header = self.table.horizontalHeader()
        header.setStretchLastSection(False)
        available = self.table.viewport().width() - sum(fixed.get(k, 0) for k, _ in columns) - 2
        texts = [k for k, _ in columns if k not in fixed]
        share = max(10 * em, available // max(1, len(texts)))
        for col, (key, _title) in enumerate(columns):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            self.table.setColumnWidth(col, fixed.get(key, share))
            # "a-long-file-name.jsonl:1234": keep both ends, the line number matters.
            self.table.setItemDelegateForColumn(col, self._middle_elide if key == "source" else None)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override: keep the text columns filling the view
        super().resizeEvent(event)
        QTimer.singleShot(0, self._size_columns)

    # -- filters and search ----------------------------------------------------------------------
    def _reset_facet_combos(self) -> None:
        for combo, text in ((self.tag_combo, "Any tag"), (self.source_combo, "Any source")):
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(text, _ANY)
            combo.blockSignals(False)

    def _reset_filters(self) -> None:
        widgets = (self.search_edit, self.tag_combo, self.source_combo, self.split_combo, self.ranked_combo,
                   self.deleted_check)
        for w in widgets:
            w.blockSignals(True)
        self._search_timer.stop()
        self.search_edit.clear()
        self._reset_facet_combos()
        self.split_combo.setCurrentIndex(0)
        self.ranked_combo.setCurrentIndex(0)
        self.deleted_check.setChecked(False)
        for w in widgets:
            w.blockSignals(False)

    def _load_facets(self, summary: DatasetSummary) -> None:
        root = self.root

        def work(progress, cancel):
            conn = Workspace(root).connect()
            try:
                return summary.id, browse.dataset_tags(conn, summary.id), browse.dataset_sources(conn, summary.id)
            finally:
                conn.close()

        self._run(work, self._on_facets_loaded)

    def _on_facets_loaded(self, result) -> None:
        ds_id, tags, sources = result
        if self.current_dataset is None or self.current_dataset.id != ds_id:
            return
        for combo, items in ((self.tag_combo, [(f"{t} ({n:,})", t) for t, n in tags]),
                             (self.source_combo, [(f"{s.label} ({s.rows:,})", s.id) for s in sources])):
            keep = combo.currentData()
            combo.blockSignals(True)
            while combo.count() > 1:
                combo.removeItem(1)
            for text, value in items:
                combo.addItem(text, value)
            index = combo.findData(keep) if keep is not None else 0
            combo.setCurrentIndex(max(0, index))
            combo.blockSignals(False)
        self.tag_combo.setEnabled(bool(tags))
        self.tag_combo.setToolTip("" if tags else "No record of this dataset has tags")

    def _query_for(self, summary: DatasetSummary) -> BrowseQuery:
        old = self.model.query if self.model.query is not None and self.model.query.dataset_id == summary.id \
            else None
        source = self.source_combo.currentData()
        return BrowseQuery(
            summary.id, style=summary.style, text=self.search_edit.text(),
            tag=self.tag_combo.currentData(), source=source if source is not None else None,
            split=self.split_combo.currentData(), ranked=self.ranked_combo.currentData(),
            show_deleted=self.deleted_check.isChecked(),
            sort=old.sort if old else "id", descending=old.descending if old else False)

    def _apply_query(self) -> None:
        summary = self.current_dataset
        if summary is None:
            return
        self._search_timer.stop()
        self.detail.clear()
        self.model.set_query(self._query_for(summary))
        self._update_status()

    def _on_search_edit_text_changed(self, text: str) -> None:
        self._search_timer.start()

    def _on_search_edit_return_pressed(self) -> None:
        self._apply_query()

    def _on_filter_changed(self, *args) -> None:
        self._apply_query()

    def _focus_search(self) -> None:
        self.search_edit.setFocus()
        self.search_edit.selectAll()

    # -- the table --------------------------------------------------------------------------------
    def _selected_rows(self, limit: Optional[int] = None) -> list[int]:
        # From the selection's ranges: selectedRows() would build one index per row
        # (seconds for a select-all over a million rows).
        rows: set[int] = set()
        for rng in sorted(self.table.selectionModel().selection(), key=lambda r: r.top()):
            if limit is not None and len(rows) >= limit:
                break
            rows.update(range(rng.top(), rng.bottom() + 1))
        return sorted(rows)[:limit]

    def _selected_count(self) -> int:
        # Qt keeps row selections as disjoint ranges (a toggle splits them).
        return sum(rng.height() for rng in self.table.selectionModel().selection())

    def selected_ids(self) -> list[int]:
        """Record ids of the selected rows, in table order."""
        return [rid for rid in (self.model.record_id(r) for r in self._selected_rows()) if rid is not None]

    def _selected_previews(self, limit: int = 200):
        return [p for p in (self.model.preview(r) for r in self._selected_rows(limit)) if p is not None]

    def select_record(self, record_id: int) -> bool:
        """Make ``record_id`` the current, selected row (scrolled into view)."""
        row = self.model.row_of(record_id)
        if row is None:
            return False
        index = self.model.index(row, 0)
        self.table.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        self.table.scrollTo(index)
        return True

    def _on_table_current_row_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        self._show_current_detail()

    def _on_table_selection_changed(self, *args) -> None:
        self._update_actions()
        self._update_status()

    def _on_table_double_clicked(self, index: QModelIndex) -> None:
        self.edit_selected()

    def _show_current_detail(self) -> None:
        summary = self.current_dataset
        rid = self.model.record_id(self.table.currentIndex().row()) if self.table.currentIndex().isValid() else None
        if summary is None or rid is None or self._ws is None:
            self.detail.clear()
            return
        try:
            self.detail.show_detail(browse.record_detail(self._ws.conn, summary, rid))
        except Exception as exc:  # noqa: BLE001 - e.g. the record was removed meanwhile
            self.detail.clear(f"Record #{rid} cannot be shown: {exc}")

    def _on_model_about_to_be_reset(self) -> None:
        self._kept = None
        if self.model.keeping_position:
            current = self.model.record_id(self.table.currentIndex().row()) \
                if self.table.currentIndex().isValid() else None
            self._kept = (current, self.table.verticalScrollBar().value())

    def _on_model_reset(self) -> None:
        kept, self._kept = self._kept, None
        if kept is not None:
            current, scroll = kept
            if current is not None:
                row = self.model.row_of(current)
                if row is not None:
                    self.table.selectionModel().setCurrentIndex(
                        self.model.index(row, 0),
                        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
            self.table.verticalScrollBar().setValue(scroll)
        self._update_status()

    def _on_model_busy_changed(self, busy: bool) -> None:
        self.busy_bar.setVisible(busy)
        self._update_status()

    def _on_model_ids_ready(self, count: int) -> None:
        self._update_status()

    def _on_model_failed(self, message) -> None:
        self.status_label.setText(f"Could not read the records: {message}")

    def _update_status(self, *args) -> None:
        summary = self.current_dataset
        if summary is None:
            return
        n = self.model.rowCount()
        q = self.model.query
        parts = []
        if self.model.busy and not self.model.complete:
            parts.append(f"first {n:,} records shown, counting the rest\u2026" if n else "searching\u2026")
        elif self.model.busy:
            parts.append(f"{n:,} records; sorting\u2026")
        else:
            filtered = q is not None and (q.text.strip() or q.tag is not None or q.source is not None
                                          or q.split is not None or q.ranked is not None)
            total = f" of {summary.rows:,}" if summary.counted else ""
            parts.append(f"{n:,}{total} records match" if filtered else f"{n:,} records")
        selected = self._selected_count()
        if selected > 1:
            parts.append(f"{selected:,} selected")
        if q is not None and q.text.strip() and self.model.unindexed:
            parts.append(f"{self.model.unindexed:,} new records not searchable yet (indexing)")
        if self._index_message:
            parts.append(self._index_message)
        self.status_label.setText("  \u00b7  ".join(parts))

    # -- edit, delete, restore ------------------------------------------------------------------
    def _update_actions(self) -> None:
        has_ws = self.root is not None
        has_ds = has_ws and self.current_dataset is not None
        self.import_action.setEnabled(has_ws)
        for action in (self.export_action, self.dedup_action, self.split_action, self.freeze_action,
                       self.stats_action):
            action.setEnabled(has_ds)
        previews = self._selected_previews() if has_ds else []
        self.edit_action.setEnabled(len(previews) == 1 and not previews[0].deleted)
        self.delete_action.setEnabled(any(not p.deleted for p in previews))
        self.restore_action.setEnabled(any(p.deleted for p in previews))

    def edit_selected(self) -> None:
        """Open the edit dialog on the current record (saving pushes an undoable edit)."""
        summary = self.current_dataset
        ids = self.selected_ids()
        if summary is None or len(ids) != 1 or self._ws is None:
            return
        detail = browse.record_detail(self._ws.conn, summary, ids[0])
        if detail.record.deleted:
            self.status_label.setText(f"Record #{ids[0]} is deleted: restore it before editing.")
            return
        from .edit_dialog import RecordEditDialog
        dialog = RecordEditDialog(summary.kind, summary.style, detail.record, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._on_edit_dialog_accepted(dialog))
        dialog.finished.connect(lambda _result: setattr(self, "edit_dialog", None))
        self.edit_dialog = dialog
        dialog.open()

    def _on_edit_dialog_accepted(self, dialog) -> None:
        if dialog.record is None:
            return
        self._push(EditRecordCommand(self.changer, dialog.original.id, dialog.record))

    def delete_selected(self) -> None:
        """Soft-delete the selected records (one undoable command; already deleted ones are left alone)."""
        ids = self.selected_ids()
        if ids:
            self._push(SetDeletedCommand(self.changer, ids, True))

    def restore_selected(self) -> None:
        """Restore the selected deleted records (one undoable command)."""
        ids = self.selected_ids()
        if ids:
            self._push(SetDeletedCommand(self.changer, ids, False))

    def _push(self, command) -> None:
        try:
            push(self.undo_stack, command)
        except Exception as exc:  # noqa: BLE001 - e.g. another process holds the write lock
            QMessageBox.warning(self, "Not saved", f"{command.text()} failed; nothing was changed.\n\n{exc}")
            return
        self.status_label.setText(f"{command.text()} \u2014 Ctrl+Z undoes it.")

    def _on_changer_replaced(self, old_id: int, new_id: int) -> None:
        current = self.model.record_id(self.table.currentIndex().row()) if self.table.currentIndex().isValid() \
            else None
        if self.model.query is not None and self.model.query.show_deleted:
            self.model.refresh()
        else:
            self.model.replace_id(old_id, new_id)
        if current == old_id:
            self.select_record(new_id)
            self._show_current_detail()
        self._after_change()

    def _on_changer_deleted_changed(self, ids: list, deleted: bool) -> None:
        show_deleted = self.model.query is not None and self.model.query.show_deleted
        if deleted and not show_deleted:
            self.model.remove_ids(ids)
        elif not deleted and not show_deleted:
            self.model.refresh()      # restored rows come back in their place
        else:
            self.model.forget(ids)
        current = self.table.currentIndex()
        if current.isValid() and not self.selected_ids():
            # The rows went away: the next one becomes the selection, so the detail pane shows the
            # selected record (it showed a neighbour nobody had selected).
            self.table.selectionModel().select(current, self.table.selectionModel().SelectionFlag.ClearAndSelect
                                               | self.table.selectionModel().SelectionFlag.Rows)
        self._show_current_detail()
        self._after_change()

    def _after_change(self) -> None:
        self._update_actions()
        self._update_status()
        self.refresh_datasets()
        if self.current_dataset is not None:
            self.dataset_changed.emit(self.current_dataset.name)

    def _on_changer_failed(self, message: str) -> None:
        QMessageBox.warning(self, "Not saved", message)

    # -- the search index -------------------------------------------------------------------------
    def _on_indexer_progressed(self, fraction: float, message: str) -> None:
        self._index_message = message
        self._update_status()

    def _on_indexer_finished(self, added: int) -> None:
        self._index_message = ""
        q = self.model.query
        if added and q is not None and q.text.strip() and self.model.unindexed:
            self.model.refresh()   # the search ran before these rows were searchable
        self._update_status()

    def _on_indexer_failed(self, message: str) -> None:
        self._index_message = message
        self._update_status()

    # -- dialogs of the other dataset actions ----------------------------------------------------
    def open_import_wizard(self) -> None:
        """Open the import wizard (a new dataset is selected once imported)."""
        if self.root is None:
            return
        from .import_wizard import ImportWizard
        wizard = ImportWizard(self.root, self)
        wizard.imported.connect(self._on_import_wizard_imported)
        self.import_wizard = wizard
        wizard.open()

    def open_export_dialog(self) -> None:
        """Open the export dialog on the selected dataset."""
        if self.root is None:
            return
        from .export_dialog import ExportDialog
        name = self.current_dataset.name if self.current_dataset is not None else None
        self.export_dialog = ExportDialog(self.root, name, self)
        self.export_dialog.open()

    def _open_action(self, class_name: str) -> None:
        summary = self.current_dataset
        if self.root is None or summary is None:
            return
        from . import actions
        dialog = getattr(actions, class_name)(self.root, summary.name, self)
        dialog.changed.connect(self._on_action_dialog_changed)
        self.action_dialog = dialog
        dialog.open()

    def _on_dedup_triggered(self) -> None:
        self._open_action("DedupDialog")

    def _on_split_triggered(self) -> None:
        self._open_action("SplitDialog")

    def _on_freeze_triggered(self) -> None:
        self._open_action("FreezeDialog")

    def _on_stats_triggered(self) -> None:
        summary = self.current_dataset
        if self.root is None or summary is None:
            return
        from .stats_view import StatsDialog
        self.stats_dialog = StatsDialog(self.root, summary.name, self)
        self.stats_dialog.open()

    def _on_import_wizard_imported(self, name: str) -> None:
        self.refresh_datasets(select=name)
        self.indexer.start()

    def _on_action_dialog_changed(self, name: str) -> None:
        # Dedup deletes, split reassigns, freeze adds a snapshot: re-read what is shown.
        # The undo stack stays valid: its commands name record ids, not rows.
        self.refresh_datasets()
        if self.current_dataset is not None and self.current_dataset.name == name:
            self.model.refresh()
            self._load_facets(self.current_dataset)
        self.dataset_changed.emit(name)
