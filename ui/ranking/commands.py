"""Decisions on the page's undo stack (Edit > Undo in the main window follows it).

A decision is committed *before* its command is pushed (so a failed write
never reaches the stack, and the next item only appears after the commit);
the command's first ``redo`` therefore does nothing. ``undo`` deletes the
ranking (or the skip) and shows the item again; a later ``redo`` records the
same decision anew. A decision that cannot be undone (its pairs were
exported meanwhile) says why and leaves the stack. While a decision waits for
another process's write lock (see :mod:`ui.ranking.panel`), undo and redo are
refused and the stack is put back as it was: either would move the queue to
another item, and the waiting decision would then be saved on that one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtGui import QUndoCommand

from workbench.errors import WorkbenchError, WorkspaceBusyError
from workbench.store.queue import Decision

if TYPE_CHECKING:  # pragma: no cover
    from .panel import RankingPanel


class DecisionCommand(QUndoCommand):
    """One decision of the ranking queue."""

    def __init__(self, panel: "RankingPanel", decision: Decision) -> None:
        super().__init__(f"Rank: {panel.describe(decision)}")
        self.panel = panel
        self.decision = decision
        self._first = True
        self._skip_undo = False

    def redo(self) -> None:
        if self._first:
            self._first = False
            return
        if self.panel.saving:
            self._refuse("redo")
            return
        try:
            self.panel.redo_decision(self.decision)
        except WorkspaceBusyError as exc:
            self._refuse("redo", exc)
        except WorkbenchError as exc:
            self.panel.show_error(f"Could not redo: {exc}")
            self.setObsolete(True)

    def undo(self) -> None:
        if self._skip_undo:
            self._skip_undo = False
            return
        if self.panel.saving:
            self._refuse("undo")
            return
        try:
            self.panel.undo_decision(self.decision)
        except WorkspaceBusyError as exc:
            self._refuse("undo", exc)
        except WorkbenchError as exc:
            self.panel.show_error(f"Could not undo: {exc}")
            self.setObsolete(True)

    def _refuse(self, what: str, exc: WorkbenchError | None = None) -> None:
        """Nothing was changed: say why, and step the stack back (next loop turn, once the
        stack has finished this step) without running this command again."""
        self.panel.show_error(f"Could not {what}: {exc}" if exc is not None else
                              f"Could not {what} yet: your last decision is still being saved "
                              "(another process is writing to the workspace)")
        stack = self.panel.undo_stack
        if what == "undo":
            self._first = True
            QTimer.singleShot(0, stack.redo)
        else:
            self._skip_undo = True
            QTimer.singleShot(0, stack.undo)
