"""A lazy Qt table model over one dataset's records.

:class:`RecordTableModel` holds only the ordered ids of the records the
current :class:`~workbench.store.browse.BrowseQuery` selects (an
``array('q')``: 8 MB for a million rows) and fetches one-line previews a
page at a time when the view paints them, keeping the most recent pages in
an LRU cache. Nothing else of the dataset is loaded.

Threading contract:

- Id lists are computed on worker threads (:func:`ui.common.worker.run_in_thread`),
  each on its own SQLite connection. A new query first fetches a short
  first page (``LIMIT``), shown at once, then the full list, which is
  appended without a reset when it starts with the same ids.
- Re-sorting and refreshing keep showing the old order until the new one
  arrives (``busy_changed(True)`` meanwhile). A newer request supersedes an
  older one: the older result is dropped and its worker cancelled.
- Page fetches run on the GUI thread's connection (``set_connection``):
  one indexed query of at most :attr:`page_size` rows, about a millisecond.
"""

from __future__ import annotations

import sqlite3
from array import array
from collections import OrderedDict
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import QApplication

from workbench.errors import WorkspaceBusyError
from workbench.store import browse, db, search
from workbench.store.browse import BrowseQuery, DatasetSummary, RowPreview
from workbench.store.workspace import DB_NAME

from ..common.render import plain_tooltip
from ..common.worker import Task, run_in_thread

#: Rows shown straight away for a new query, before the full id list arrives.
FIRST_PAGE = 200
#: A search first indexes up to this many new records itself (an edit, a small
#: import); a bigger backlog is the panel's background indexer's job.
INLINE_INDEX_LIMIT = 50_000

ID_ROLE = Qt.ItemDataRole.UserRole


def _worker_connection(root: Path) -> sqlite3.Connection:
    # A short lock wait: the only write here is the inline index catch-up, which
    # gives way to an import holding the write lock rather than delay the search.
    return db.connect(Path(root) / DB_NAME, lock_timeout_s=0.5)


class RecordTableModel(QAbstractTableModel):
    """Rows = the records a query selects, in its order; see the module docstring."""

    #: True while an id list is being computed (the view shows a busy indicator).
    busy_changed = Signal(bool)
    #: The full id list of the current query arrived: its row count.
    ids_ready = Signal(int)
    #: A query failed (message for the status line).
    failed = Signal(str)

    def __init__(self, parent: Optional[QObject] = None, *, page_size: int = 100, cache_pages: int = 64) -> None:
        super().__init__(parent)
        self.page_size = page_size
        self.cache_pages = cache_pages
        self._root: Optional[Path] = None
        self._conn: Optional[sqlite3.Connection] = None
        self._summary: Optional[DatasetSummary] = None
        self._query: Optional[BrowseQuery] = None
        self._columns: list[tuple[str, str]] = []
        self._ids = array("q")
        self._complete = True               # False while only the first page is known
        self._pages: OrderedDict[int, dict[int, RowPreview]] = OrderedDict()   # page no -> previews
        self._generation = 0
        self._tasks: list[Task] = []
        self._busy = False
        #: Previews read from SQLite so far (tests check it stays far below the row count).
        self.fetched_rows = 0
        #: Rows the search index could not cover yet when the last search ran.
        self.unindexed = 0
        #: True during a reset that replaces the rows of the same query (a refresh).
        self.keeping_position = False

    # -- binding ------------------------------------------------------------------------------
    def set_workspace(self, root: Optional[Path], conn: Optional[sqlite3.Connection]) -> None:
        """Bind to a workspace: ``conn`` is the GUI thread's connection for page fetches."""
        self._cancel_tasks()
        self.beginResetModel()
        self._root, self._conn = (Path(root) if root else None), conn
        self._summary, self._query, self._columns = None, None, []
        self._ids, self._complete = array("q"), True
        self._pages.clear()
        self.endResetModel()
        self._set_busy(False)

    @property
    def summary(self) -> Optional[DatasetSummary]:
        return self._summary

    @property
    def query(self) -> Optional[BrowseQuery]:
        return self._query

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def complete(self) -> bool:
        """Whether the full id list is loaded (not only the first page)."""
        return self._complete

    def columns(self) -> list[tuple[str, str]]:
        return list(self._columns)

    def column_of(self, key: str) -> int:
        return [k for k, _ in self._columns].index(key)

    def set_dataset(self, summary: Optional[DatasetSummary], query: Optional[BrowseQuery] = None) -> None:
        """Show ``summary``'s records (``query`` defaults to all live records by id)."""
        self._summary = summary
        self._columns = browse.columns(summary.kind) if summary is not None else []
        if summary is None:
            self._cancel_tasks()
            self.beginResetModel()
            self._query, self._ids, self._complete = None, array("q"), True
            self._pages.clear()
            self.endResetModel()
            self._set_busy(False)
            return
        self.set_query(query or BrowseQuery(summary.id, style=summary.style))

    def update_summary(self, summary: DatasetSummary) -> None:
        """New counts for the same dataset (no re-query)."""
        if self._summary is not None and summary.id == self._summary.id:
            self._summary = summary

    # -- queries ------------------------------------------------------------------------------
    def set_query(self, query: BrowseQuery) -> None:
        """A new selection: reset to its first page now, the rest when the full list arrives."""
        query.validate()
        self._query = query
        self._start(query, keep_old=False)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:  # noqa: D401
        """Qt override (a header click): recompute the order off-thread, keeping the old one meanwhile."""
        if self._query is None or not 0 <= column < len(self._columns):
            return
        key = self._columns[column][0]
        descending = order == Qt.SortOrder.DescendingOrder
        if key == self._query.sort and descending == self._query.descending:
            return
        self._query = BrowseQuery(**{**self._query.__dict__, "sort": key, "descending": descending})
        self._start(self._query, keep_old=True)

    def refresh(self) -> None:
        """Re-run the current query (after a change), keeping the current rows until it returns."""
        self._pages.clear()
        if self.rowCount():
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, self.columnCount() - 1))
        if self._query is not None:
            self._start(self._query, keep_old=True)

    def _start(self, query: BrowseQuery, *, keep_old: bool) -> None:
        self._cancel_tasks()
        self._generation += 1
        gen = self._generation
        root = self._root
        if root is None:
            return
        searching = bool(query.text.strip())
        if not keep_old:
            self.beginResetModel()
            self._ids, self._complete = array("q"), False
            self._pages.clear()
            self.endResetModel()
        self._set_busy(True)

        def ids_work(limit):
            def work(progress, cancel):
                conn = _worker_connection(root)
                try:
                    unindexed = 0
                    if searching:
                        unindexed = search.pending(conn)
                        if 0 < unindexed <= INLINE_INDEX_LIMIT:
                            try:
                                search.catch_up(conn, cancel=cancel)
                                unindexed = 0
                            except WorkspaceBusyError:
                                pass   # another writer (an import) holds the lock: search what is indexed
                    return browse.record_ids(conn, query, limit=limit, cancel=cancel), unindexed
                finally:
                    conn.close()
            return work

        def start_full():
            if gen != self._generation:
                return   # superseded while the first page was read
            full = run_in_thread(ids_work(None), parent=self,
                                 on_success=lambda result: self._on_full_list(gen, result, keep_old),
                                 on_failure=lambda exc: self._on_failed(gen, exc))
            self._track(full)

        if keep_old:
            start_full()
        else:
            # The full list starts once the first page is in: on two cores, running both
            # at once would slow the first page down, which is what the user waits for.
            first = run_in_thread(ids_work(FIRST_PAGE), parent=self,
                                  on_success=lambda result: self._on_first_page(gen, result))
            first.done.connect(lambda: None if self._complete else start_full())
            self._track(first)

    def _track(self, task: Task) -> None:
        self._tasks.append(task)
        task.done.connect(lambda t=task: self._tasks.remove(t) if t in self._tasks else None)

    def _cancel_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()

    def shutdown(self) -> None:
        """Cancel and wait for running queries (the page is closing)."""
        self._generation += 1
        for task in list(self._tasks):
            task.cancel()
            task.wait(10_000)

    def _on_first_page(self, gen: int, result) -> None:
        ids, unindexed = result
        if gen != self._generation or self._complete or len(self._ids):
            return
        self.unindexed = unindexed
        if len(ids):
            self.beginInsertRows(QModelIndex(), 0, len(ids) - 1)
            self._ids = array("q", ids)
            self.endInsertRows()
        if len(ids) < FIRST_PAGE:
            # Fewer than a page: that is everything, no second query needed.
            self._complete = True
            self._set_busy(False)
            self.ids_ready.emit(len(ids))

    def _on_full_list(self, gen: int, result, keep_old: bool) -> None:
        if gen != self._generation:
            return
        ids, unindexed = result
        self.unindexed = unindexed
        old = self._ids
        if not keep_old and len(ids) >= len(old) and ids[:len(old)] == old:
            # The first page is a prefix of the full list: append, so the view keeps
            # its scroll position and selection.
            if len(ids) > len(old):
                self.beginInsertRows(QModelIndex(), len(old), len(ids) - 1)
                self._ids = ids
                self.endInsertRows()
        elif keep_old and len(ids) == len(old):
            self._relayout(ids)
        else:
            # Views that want to keep their place across a refresh read this flag
            # in modelAboutToBeReset / modelReset.
            self.keeping_position = keep_old
            self.beginResetModel()
            self._ids = ids
            self.endResetModel()
            self.keeping_position = False
        self._complete = True
        self._set_busy(False)
        self.ids_ready.emit(len(ids))

    def _relayout(self, ids: array) -> None:
        """Same number of rows in a new order: move the selection and current row with their records."""
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        record_ids = [self._ids[i.row()] if i.isValid() and i.row() < len(self._ids) else None for i in old]
        self._ids = ids
        new = []
        for i, rid in zip(old, record_ids):
            row = self.row_of(rid) if rid is not None else None
            new.append(self.index(row, i.column()) if row is not None else QModelIndex())
        self.changePersistentIndexList(old, new)
        self.layoutChanged.emit()

    def _on_failed(self, gen: int, exc: BaseException) -> None:
        if gen != self._generation:
            return
        self._complete = True
        self._set_busy(False)
        self.failed.emit(str(exc))

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)

    # -- changes made by the page's commands ----------------------------------------------------
    def record_id(self, row: int) -> Optional[int]:
        return self._ids[row] if 0 <= row < len(self._ids) else None

    def row_of(self, record_id: Optional[int]) -> Optional[int]:
        """The row showing ``record_id`` (a linear scan: ~10 ms at a million rows)."""
        if record_id is None:
            return None
        try:
            return self._ids.index(record_id)
        except ValueError:
            return None

    def rows_of(self, record_ids) -> list[int]:
        """The rows showing any of ``record_ids``, ascending: one pass over the ids, however
        many are asked for (a row_of per id was ~20 ms each at a million rows)."""
        wanted = set(record_ids)
        if len(wanted) == 1:
            row = self.row_of(next(iter(wanted)))
            return [] if row is None else [row]
        return [row for row, rid in enumerate(self._ids) if rid in wanted]

    @staticmethod
    def _runs(rows: list[int]) -> list[tuple[int, int]]:
        """Ascending rows as contiguous ``(first, last)`` runs."""
        runs: list[tuple[int, int]] = []
        for row in rows:
            if runs and runs[-1][1] == row - 1:
                runs[-1] = (runs[-1][0], row)
            else:
                runs.append((row, row))
        return runs

    def forget(self, record_ids) -> None:
        """Drop cached previews of ``record_ids`` (they changed) and repaint their rows."""
        wanted = set(record_ids)
        for page in self._pages.values():
            for rid in wanted & page.keys():
                del page[rid]
        last_column = self.columnCount() - 1
        for first, last in self._runs(self.rows_of(wanted)):
            self.dataChanged.emit(self.index(first, 0), self.index(last, last_column))

    def replace_id(self, old_id: int, new_id: int) -> Optional[int]:
        """Show ``new_id`` where ``old_id`` was (an edit keeps its place); returns the row."""
        row = self.row_of(old_id)
        if row is not None:
            self._ids[row] = new_id
            self.forget([old_id, new_id])
        return row

    def remove_ids(self, record_ids) -> None:
        """Remove the rows of ``record_ids`` (deleted while deleted rows are hidden)."""
        # Contiguous runs, bottom up, so earlier rows keep their numbers.
        for first, last in reversed(self._runs(self.rows_of(record_ids))):
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._ids[first:last + 1]
            self.endRemoveRows()

    # -- Qt model ------------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._columns)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(self._columns):
            if role == Qt.ItemDataRole.DisplayRole:
                return self._columns[section][1]
            if role == Qt.ItemDataRole.ToolTipRole:
                return f"Sort by {self._columns[section][1].lower()} (click again to reverse)"
        return None

    def preview(self, row: int) -> Optional[RowPreview]:
        """The preview of ``row``, fetching its page if it is not cached."""
        rid = self.record_id(row)
        if rid is None or self._conn is None or self._summary is None:
            return None
        page_no = row // self.page_size
        page = self._pages.get(page_no)
        if page is not None:
            self._pages.move_to_end(page_no)
            hit = page.get(rid)
            if hit is not None:
                return hit
        page_ids = self._ids[page_no * self.page_size:(page_no + 1) * self.page_size]
        fetched = browse.fetch_previews(self._conn, self._summary.kind, self._summary.style, page_ids)
        self.fetched_rows += len(fetched)
        self._pages[page_no] = fetched
        self._pages.move_to_end(page_no)
        while len(self._pages) > self.cache_pages:
            self._pages.popitem(last=False)
        return fetched.get(rid)

    @property
    def cached_pages(self) -> int:
        return len(self._pages)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role == ID_ROLE:
            return self.record_id(index.row())
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.FontRole,
                        Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.TextAlignmentRole):
            return None
        key = self._columns[index.column()][0]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return (Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter) if key == "id" else None
        p = self.preview(index.row())
        if p is None:
            return "\u2026" if role == Qt.ItemDataRole.DisplayRole else None
        if role == Qt.ItemDataRole.DisplayRole:
            return p.cells.get(key, "")
        if role == Qt.ItemDataRole.ToolTipRole:
            text = p.cells.get(key, "")
            if p.deleted:
                return plain_tooltip(f"Deleted record #{p.id} (Restore brings it back). {text}")
            return plain_tooltip(text) if len(text) > 40 else None
        if role == Qt.ItemDataRole.FontRole and p.deleted:
            font = QFont(QApplication.font())
            font.setStrikeOut(True)
            return font
        if role == Qt.ItemDataRole.ForegroundRole and p.deleted:
            return QApplication.palette().brush(QPalette.ColorGroup.Active, QPalette.ColorRole.PlaceholderText)
        return None
