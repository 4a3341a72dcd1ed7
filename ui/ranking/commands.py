"""Decisions on the page's undo stack (Edit > Undo in the main window follows it).

A decision is committed *before* its command is pushed (so a failed write
never reaches the stack, and the next item only appears after the commit);
the command's first ``redo`` therefore does nothing. ``undo`` deletes the
ranking (or the skip) and shows the item again; a later ``redo`` records the
same decision anew. A decision that cannot be undone (its pairs were
exported meanwhile) says why and leaves the stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QUndoCommand

from workbench.errors import WorkbenchError
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

    def redo(self) -> None:
        if self._first:
            self._first = False
            return
        try:
            self.panel.redo_decision(self.decision)
        except WorkbenchError as exc:
            self.panel.show_error(f"Could not redo: {exc}")
            self.setObsolete(True)

    def undo(self) -> None:
        try:
            self.panel.undo_decision(self.decision)
        except WorkbenchError as exc:
            self.panel.show_error(f"Could not undo: {exc}")
            self.setObsolete(True)
