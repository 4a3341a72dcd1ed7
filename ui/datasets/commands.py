"""Record edits, deletions and restores as undoable commands.

Every change is a short write transaction on the GUI thread's connection
(one record, or a selection of ids: milliseconds) made by
:class:`RecordChanger`, which then announces it with a signal so the table,
the detail pane and the dataset list follow. Records are immutable: an edit
inserts a replacement and soft-deletes the original
(:func:`workbench.store.datasets.replace_record`); undoing it soft-deletes
the replacement and restores the original, redoing swaps them back, so
undo and redo never create rows.

Use :func:`push` rather than ``QUndoStack.push``: it applies the change
first and only puts the command on the stack when that succeeded (an
exception inside ``redo()`` cannot reach the caller through Qt).
"""

from __future__ import annotations

import sqlite3
from typing import Callable, Iterable, Optional

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from workbench.store import datasets as ds_repo
from workbench.store.db import write_transaction
from workbench.store.records import Record


class RecordChanger(QObject):
    """Writes record changes to SQLite and announces them."""

    #: An edit took effect (or was undone/redone): ``old id -> new id`` is now shown.
    replaced = Signal(int, int)
    #: Records were soft-deleted (``True``) or restored (``False``).
    deleted_changed = Signal(list, bool)
    #: A change could not be written (for the status line / a message box).
    failed = Signal(str)

    def __init__(self, connection: Callable[[], Optional[sqlite3.Connection]],
                 parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._connection = connection

    def _conn(self) -> sqlite3.Connection:
        conn = self._connection()
        if conn is None:
            raise RuntimeError("no workspace is open")
        return conn

    def _touch_datasets(self, conn: sqlite3.Connection, ids: list[int]) -> None:
        for (ds_id,) in conn.execute(
                f"SELECT DISTINCT dataset_id FROM records WHERE id IN ({','.join('?' * len(ids))})", ids):
            ds_repo.touch(conn, ds_id)

    def replace(self, record_id: int, record: Record) -> int:
        """Store ``record`` as the edit of ``record_id``; return the new record's id."""
        conn = self._conn()
        with write_transaction(conn, what="the workspace"):
            new_id = ds_repo.replace_record(conn, record_id, record)
        self.replaced.emit(record_id, new_id)
        return new_id

    def swap(self, hide_id: int, show_id: int) -> None:
        """Soft-delete ``hide_id`` and restore ``show_id`` in one transaction (edit undo/redo)."""
        conn = self._conn()
        with write_transaction(conn, what="the workspace"):
            ds_repo.set_deleted(conn, [hide_id], True)
            ds_repo.set_deleted(conn, [show_id], False)
            self._touch_datasets(conn, [show_id])
        self.replaced.emit(hide_id, show_id)

    def set_deleted(self, record_ids: Iterable[int], deleted: bool) -> list[int]:
        """Soft-delete (or restore) records; return the ids that actually changed."""
        ids = list(record_ids)
        conn = self._conn()
        changed: list[int] = []
        with write_transaction(conn, what="the workspace"):
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                changed += [r for (r,) in conn.execute(
                    f"SELECT id FROM records WHERE deleted != ? AND id IN ({','.join('?' * len(chunk))})",
                    (int(deleted), *chunk))]
            if changed:
                ds_repo.set_deleted(conn, changed, deleted)
                self._touch_datasets(conn, changed)
        if changed:
            self.deleted_changed.emit(changed, deleted)
        return changed


class _RecordCommand(QUndoCommand):
    """A command whose first ``redo`` is the :meth:`apply` that :func:`push` already ran."""

    def __init__(self, changer: RecordChanger, text: str) -> None:
        super().__init__(text)
        self.changer = changer
        self._applied = False

    def apply(self) -> None:
        raise NotImplementedError

    def redo(self) -> None:  # noqa: D401 - Qt override
        if not self._applied:
            self._applied = True
            return           # push() applied it already
        self._guard(self._redo)

    def undo(self) -> None:  # noqa: D401 - Qt override
        self._guard(self._undo)

    def _guard(self, fn: Callable[[], None]) -> None:
        # An exception cannot leave a Qt virtual call: report it instead.
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.changer.failed.emit(f"{self.text()}: {exc}")

    def _redo(self) -> None:
        raise NotImplementedError

    def _undo(self) -> None:
        raise NotImplementedError


class EditRecordCommand(_RecordCommand):
    """Replace record ``record_id`` with ``record`` (validated by the edit dialog)."""

    def __init__(self, changer: RecordChanger, record_id: int, record: Record) -> None:
        super().__init__(changer, f"Edit record #{record_id}")
        self.old_id = record_id
        self.record = record
        self.new_id: Optional[int] = None

    def apply(self) -> None:
        self.new_id = self.changer.replace(self.old_id, self.record)

    def _redo(self) -> None:
        self.changer.swap(self.old_id, self.new_id)

    def _undo(self) -> None:
        self.changer.swap(self.new_id, self.old_id)


class SetDeletedCommand(_RecordCommand):
    """Soft-delete (``deleted=True``) or restore records; undo reverses only what it changed."""

    def __init__(self, changer: RecordChanger, record_ids: Iterable[int], deleted: bool) -> None:
        self.record_ids = list(record_ids)
        self.deleted = deleted
        n = len(self.record_ids)
        what = f"record #{self.record_ids[0]}" if n == 1 else f"{n:,} records"
        super().__init__(changer, f"{'Delete' if deleted else 'Restore'} {what}")
        self.changed: list[int] = []

    def apply(self) -> None:
        self.changed = self.changer.set_deleted(self.record_ids, self.deleted)

    def _redo(self) -> None:
        self.changer.set_deleted(self.changed, self.deleted)

    def _undo(self) -> None:
        self.changer.set_deleted(self.changed, not self.deleted)


def push(stack: QUndoStack, command: _RecordCommand) -> None:
    """Apply ``command`` now; put it on ``stack`` only if that worked (else the error propagates)."""
    command.apply()
    if isinstance(command, SetDeletedCommand) and not command.changed:
        return   # nothing changed (already deleted / live): nothing to undo
    stack.push(command)
