"""The Rank page: the prompt on top, 2-4 responses side by side, decisions from the keyboard.

Layout, top to bottom: a toolbar (queue, New queue…, Generate…, Compare
models…, Quality…, Export…, progress), a strip following a running
generation job, the prompt (with its chat history), the response columns
(:class:`~ui.ranking.columns.ComparisonColumnsView`), a decision bar
(flags, rationale note, diff and reveal toggles; the k-wise ranking strip),
the last decision, and the cheat sheet.

Keys are ``QShortcut``\\ s on the page (:data:`~ui.ranking.cheatsheet.ALL_KEYS`);
a text field with the focus keeps its letters. Each decision goes to
:class:`~workbench.store.queue.RankingQueue`, which commits it in its own
transaction before the next item is taken from its prefetch buffer and
painted; the buffer is refilled after the paint. Decisions go on
:attr:`undo_stack` (the main window's Edit > Undo follows it; standalone, the
page binds Ctrl+Z itself).

Threading: the page's own connection is used on the GUI thread only
(decisions are sub-millisecond commits; one that meets another process's
write lock waits at most :data:`DECISION_LOCK_WAIT_S`, then stays on screen,
pending, and is retried on a timer until it commits: never dropped, and the
window never freezes; it carries its own queue and connection, so switching
queue or closing the workspace leaves it retrying, and quitting waits for it
with "Saving…" or asks whether to discard it; undo, redo and the edit dialog's saves
wait as briefly, and undo, redo and "prefer the edited response" are refused while a
decision is pending, since each would move the queue to another item); counting the queue's remaining
items and the quality report run on worker threads with their own
connections. Generation and comparison sampling run as ``generate`` jobs
(never torch in this process); the page notices their commits through
``PRAGMA data_version`` on a one-second timer and pulls new items in.
"""

from __future__ import annotations

import getpass
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut, QUndoStack
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QStackedWidget,
                               QVBoxLayout, QWidget)

from workbench.errors import WorkbenchError, WorkspaceBusyError
from workbench.store import annotations as A
from workbench.store import queue as Q
from workbench.store.db import checkpoint_in_background, lock_timeout
from workbench.store.workspace import Workspace

from ui.common.elided_label import ElidedLabel
from ui.common.names import model_name
from ui.common.wheel_guard import guard_wheel_in
from ui.common.worker import Task, run_in_thread

from .cheatsheet import ALL_KEYS, CheatSheetView
from .commands import DecisionCommand
from .item_view import FLAG_KEYS, EmptyStateView, ItemView
from .verdict import comparison_queue_name, comparison_verdict

POLL_MS = 1000
#: Checkpoint the WAL (off the GUI thread) once it holds this much.
CHECKPOINT_WAL_BYTES = 4 * 1024 * 1024
#: How long a decision's commit may wait on the GUI thread for another writer's lock; past
#: that the decision stays pending and is retried every DECISION_RETRY_MS.
DECISION_LOCK_WAIT_S = 0.05
DECISION_RETRY_MS = 250
SAVING_TEXT = ("Saving your decision\u2026 another process is writing to the workspace; retrying")


@dataclass
class _Pending:
    """A decision that met another process's write lock: retried until it commits."""

    ws: Workspace          # its workspace (kept open even if the page has closed it)
    queue: Q.RankingQueue  # its queue, whose current item is the one decided
    action: Any            # queue -> Decision


def default_annotator() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name on this system: ask in the dialog
        return ""


class RankingPanel(QWidget):
    """The Rank page (see the module docstring and :mod:`ui.common.page`)."""

    item_shown = Signal(object)        # the QueueItem now on screen, or None
    item_painted = Signal()            # the item shown last has been painted
    decision_made = Signal(object)     # a Decision, after its commit

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("rankingPanel")
        self.undo_stack = QUndoStack(self)
        self.root: Optional[Path] = None
        self.ws: Optional[Workspace] = None
        self.queue: Optional[Q.RankingQueue] = None
        self.last_decision: Optional[Q.Decision] = None
        self._own_supervisor = None
        self._count_task: Optional[Task] = None
        self._count_again = False
        self._data_version: Optional[int] = None
        self._dialogs: list[QWidget] = []
        self._comparison = None  # the blind-comparison result of the queue, as last counted
        self._checkpoint = None  # the background WAL checkpoint thread, while it runs
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self._build()
        self._bind_keys()
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._on_timer)
        self._recount_timer = QTimer(self)
        self._recount_timer.setSingleShot(True)
        self._recount_timer.setInterval(400)
        self._recount_timer.timeout.connect(self.refresh_counts)
        self._pending: Optional[_Pending] = None  # a decision waiting for the write lock
        self._retry_timer = QTimer(self)
        self._retry_timer.setSingleShot(True)
        self._retry_timer.setInterval(DECISION_RETRY_MS)
        self._retry_timer.timeout.connect(self._on_retry_timeout)
        self._show_state()

    # ================================================================== layout
    def _build(self) -> None:
        self.queue_combo = QComboBox()
        self.queue_combo.setObjectName("queueCombo")
        self.queue_combo.setMinimumContentsLength(20)  # long names elide; the popup shows them whole
        self.queue_combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.queue_combo.activated.connect(self._on_queue_combo_activated)
        guard_wheel_in(self.queue_combo)  # the wheel over it never switches the queue by accident
        self.new_queue_button = self._tool("New queue\u2026", "Set up what to rank and how", self.open_queue_dialog)
        self.generate_button = self._tool("Generate\u2026", "Sample candidates from a model into the queue (a job)",
                                          lambda: self.open_generation_dialog())
        self.compare_button = self._tool("Compare\u2026", "Compare two models blind: a before/after comparison",
                                         lambda: self.open_comparison_dialog())
        self.quality_button = self._tool("Quality\u2026", "Agreement, self-consistency, position bias, comparisons",
                                         self.open_quality_dialog)
        self.export_button = self._tool("Export\u2026", "Rankings to a preference dataset", self.open_export_dialog)
        self.progress_label = ElidedLabel()
        self.progress_label.setObjectName("progressLabel")
        self.progress_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setFixedWidth(90)
        self.progress_bar.setMaximumHeight(8)
        bar = QHBoxLayout()
        bar.setSpacing(6)
        self.queue_combo.setToolTip("The ranking queue: what to rank, how, and by whom")
        bar.addWidget(self.queue_combo)
        bar.addWidget(self.new_queue_button)
        bar.addSpacing(8)
        for b in (self.generate_button, self.compare_button, self.quality_button, self.export_button):
            bar.addWidget(b)
        bar.addSpacing(12)
        bar.addWidget(self.progress_label, 1)
        bar.addWidget(self.progress_bar)

        from .job_strip import JobStripView

        self.job_strip = JobStripView()
        self.job_strip.finished.connect(self._on_job_finished)

        # -- the item, or why there is none
        self.item_view = ItemView()
        iv = self.item_view
        iv.columns.painted.connect(self._on_columns_painted)
        iv.columns.edit_requested.connect(self.open_edit_dialog)
        iv.order_view.changed.connect(self._on_order_changed)
        iv.kwise_commit.clicked.connect(self._commit_kwise)
        iv.reveal_button.toggled.connect(self._render_last)
        # Short names for the widgets the keys drive (and tests look at).
        self.columns, self.order_view, self.kwise_commit = iv.columns, iv.order_view, iv.kwise_commit
        self.note, self.flag_buttons, self.diff_button = iv.note, iv.flag_buttons, iv.diff_button
        self.last_label, self.reveal_button, self.reveal_label = iv.last_label, iv.reveal_button, iv.reveal_label
        self.tier_label, self._order_row = iv.tier_label, iv.order_row
        self.empty_view = EmptyStateView()
        self.empty_view.new_queue.clicked.connect(self.open_queue_dialog)
        self.empty_view.generate.clicked.connect(lambda: self.open_generation_dialog())
        self.empty_title = self.empty_view.title
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty_view)
        self.stack.addWidget(self.item_view)

        self.message = QLabel()
        self.message.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.message.setObjectName("message")
        self.message.setWordWrap(True)
        self.message.hide()
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.setInterval(6000)
        self._message_timer.timeout.connect(self.message.hide)
        self.cheatsheet = CheatSheetView()

        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 12, 16, 10)
        lay.setSpacing(8)
        lay.addLayout(bar)
        lay.addWidget(self.job_strip)
        lay.addWidget(self.stack, 1)
        lay.addWidget(self.message)
        lay.addWidget(self.cheatsheet)

    def _tool(self, text: str, tip: str, slot) -> QPushButton:
        b = QPushButton(text)
        b.setToolTip(tip)
        b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        b.clicked.connect(slot)
        return b

    # ================================================================== keys
    def _bind_keys(self) -> None:
        def bind(keys: str, slot) -> None:
            for key in keys.split(","):
                sc = QShortcut(QKeySequence(key), self)
                sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                sc.activated.connect(slot)

        bind("1", lambda: self._on_number(0))
        bind("2", lambda: self._on_number(1))
        bind("3", lambda: self._on_number(2))
        bind("4", lambda: self._on_number(3))
        bind("A", lambda: self._on_letter(0))
        bind("B", lambda: self._on_letter(1))
        bind("T", self.decide_tie)
        bind("X", self.decide_all_bad)
        bind("S", self.skip)
        bind("Return,Enter", self._on_enter)
        bind("Backspace", self._on_backspace)
        bind("Escape", self._focus_columns)
        bind("R", lambda: self.reveal_button.setChecked(not self.reveal_button.isChecked())
             if self.reveal_button.isEnabled() else None)
        bind("D", lambda: self.diff_button.setChecked(not self.diff_button.isChecked())
             if self.diff_button.isEnabled() else None)
        bind("E", lambda: self.open_edit_dialog(0))
        bind("N", self._focus_note)
        bind("?,Shift+?", self.cheatsheet.toggle)  # F1 is the window's Keyboard Shortcuts dialog
        for key, (flag, _text) in FLAG_KEYS.items():
            bind(key, lambda f=flag: self.flag_buttons[f].toggle())
        # Ctrl+Z / Ctrl+Shift+Z, only while no window action owns them (the main window's Edit menu
        # follows undo_stack; two shortcuts for one key would cancel each other out).
        self._undo_shortcuts = []
        for key, slot in ((QKeySequence.StandardKey.Undo, self.undo_stack.undo),
                          (QKeySequence.StandardKey.Redo, self.undo_stack.redo)):
            for seq in QKeySequence.keyBindings(key):
                sc = QShortcut(seq, self)
                sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                sc.activated.connect(slot)
                self._undo_shortcuts.append(sc)

    def _sync_undo_shortcuts(self) -> None:
        undo = QKeySequence(QKeySequence.StandardKey.Undo)
        window = self.window()
        def ours(action: QAction) -> bool:
            owner = action.parent()
            return isinstance(owner, QWidget) and (owner is self or self.isAncestorOf(owner))

        owned = window is not self and any(undo in action.shortcuts() for action in window.findChildren(QAction)
                                           if not ours(action))
        for sc in self._undo_shortcuts:
            sc.setEnabled(not owned)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self._sync_undo_shortcuts()

    def shortcuts(self) -> list[tuple[str, str]]:
        """Every key of the page, for the main window's Keyboard Shortcuts dialog."""
        return [(keys, what) for keys, what in ALL_KEYS]

    def _text_focus(self) -> bool:
        return self.note.hasFocus()

    def _focus_columns(self) -> None:
        self.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def _focus_note(self) -> None:
        self.note.setFocus(Qt.FocusReason.ShortcutFocusReason)

    # ================================================================== workspace
    def set_workspace(self, root: Optional[Path]) -> None:
        """Bind to the workspace at ``root`` (``None``: none open); opens its last used queue."""
        self._close_workspace()
        self.root = Path(root) if root is not None else None
        if self.root is not None:
            try:
                self.ws = Workspace.open(self.root)
            except WorkbenchError as exc:
                self.ws = None
                self.show_error(str(exc))
            else:
                # Copying the WAL back into the database (a checkpoint, with its own fsync) is
                # housekeeping: it runs off the GUI thread (see _on_timer), never inside the commit of
                # a decision, where SQLite's automatic checkpoint would put it every ~1000 pages.
                self.ws.conn.execute("PRAGMA wal_autocheckpoint = 0")
                self._data_version = self._read_data_version()
                self._timer.start()
                self._reload_queues()
                queues = Q.list_queues(self.ws.conn)
                if queues:
                    self.open_queue(queues[0].id)
                if self.ws.read_only:   # a read-only mount, a backup, a full disk: look, do not lose work
                    self.show_error(f"This workspace is read-only ({self.ws.read_only}): you can look "
                                    "through the queue, but decisions cannot be saved")
        self._show_state()

    def _close_workspace(self) -> None:
        # A decision still waiting for the lock keeps its own queue and connection and goes on
        # retrying in the background (the old connection stays open until it commits): closing
        # or switching the workspace neither waits for it nor drops it.
        self._timer.stop()
        self._recount_timer.stop()
        self._wait_tasks()
        self.undo_stack.clear()
        self.queue = None
        self.last_decision = None
        self._own_supervisor = None
        if self.ws is not None:
            if self._pending is None or self._pending.ws is not self.ws:
                self.ws.close()
            self.ws = None
        self.queue_combo.clear()

    def shutdown(self) -> None:
        """The window is closing: stop timers, wait for workers, close the connection.

        The main window waits for :attr:`saving` to clear (or for the user to discard the
        decision) before it calls this; a decision still pending here (a termination signal,
        nobody to ask) gets one last try and, failing that, is named on stderr, never lost silently."""
        for dialog in list(self._dialogs):
            dialog.close()
        self.job_strip.shutdown()
        self._close_workspace()
        pending = self._pending
        if pending is not None:
            self._retry_timer.stop()
            self._pending = None
            try:
                with lock_timeout(pending.queue.conn, DECISION_LOCK_WAIT_S):
                    pending.action(pending.queue)
            except WorkbenchError as exc:
                print(f"rlhf-workbench: your last decision in queue {pending.queue.spec.name!r} "
                      f"({pending.ws.root}) was not saved: {exc}", file=sys.stderr)
            pending.ws.close()

    def _wait_tasks(self) -> None:
        if self._count_task is not None:
            self._count_task.wait(30_000)
            self._count_task = None

    def _reload_queues(self, select: Optional[int] = None) -> None:
        self.queue_combo.blockSignals(True)
        self.queue_combo.clear()
        if self.ws is not None:
            for info in Q.list_queues(self.ws.conn):
                self.queue_combo.addItem(info.spec.name, info.id)
        if select is not None:
            self.queue_combo.setCurrentIndex(max(0, self.queue_combo.findData(select)))
        self.queue_combo.blockSignals(False)

    def supervisor(self):
        """The window's job supervisor for this workspace, else one of the page's own."""
        monitor = getattr(self.window(), "job_monitor", None)
        sup = getattr(monitor, "supervisor", None)
        if sup is not None and self.root is not None and Path(sup.root).resolve() == self.root.resolve():
            return sup
        if self._own_supervisor is None and self.root is not None:
            from workbench.jobs.supervisor import Supervisor

            self._own_supervisor = Supervisor(self.root)
        return self._own_supervisor

    # ================================================================== queue
    def open_queue(self, queue_id: int) -> None:
        """Show queue ``queue_id`` where its annotator left off."""
        if self.ws is None:
            return
        self.undo_stack.clear()   # a pending decision of the old queue goes on retrying (see _attempt)
        self.last_decision = None
        self._comparison = None
        try:
            self.queue = Q.RankingQueue(self.ws.conn, queue_id)
        except WorkbenchError as exc:
            self.queue = None
            self.show_error(str(exc))
        self._reload_queues(select=queue_id)
        self.diff_button.setChecked(False)
        self.cheatsheet.set_mode(self.queue.spec.mode if self.queue else "pairwise")
        self._render_last()
        self._show_state()
        self.refresh_counts()

    def _on_queue_combo_activated(self, index: int) -> None:
        queue_id = self.queue_combo.itemData(index)
        if queue_id is not None and (self.queue is None or self.queue.id != queue_id):
            self.open_queue(queue_id)
        self._focus_columns()

    def refresh_counts(self) -> None:
        """Recount done/remaining on a worker thread (tens of ms at 100,000 items)."""
        if self.queue is None or self.ws is None:
            return
        if self._count_task is not None and self._count_task.running:
            self._count_again = True
            return
        queue, ws = self.queue, self.ws

        def work(progress, cancel):
            conn = ws.connect()
            try:
                result = None
                if queue.is_comparison:
                    from workbench.data.quality import comparison_result

                    result = comparison_result(conn, queue.id)
                return queue.count(conn), result
            finally:
                conn.close()

        self._count_task = run_in_thread(work, parent=self, on_success=lambda r: self._on_counted(queue, r),
                                         on_failure=lambda exc: self.show_error(f"Could not count the queue: {exc}"))

    def _on_counted(self, queue: Q.RankingQueue, result) -> None:
        counts, comparison = result
        if self._count_again:  # asked for while this count ran: for whatever queue is shown now
            self._count_again = False
            QTimer.singleShot(0, self.refresh_counts)
        if queue is not self.queue:
            return
        queue.set_counts(counts)
        self._comparison = comparison
        self._update_progress()
        if queue.is_comparison and queue.current is None:
            self._show_state()  # the "Comparison done" screen shows the verdict just counted

    def _update_progress(self) -> None:
        q = self.queue
        if q is None or q._counts is None:
            self.progress_label.setText("")
            self.progress_bar.hide()
            return
        p = q.progress()
        parts = [f"{p.done:,} done", f"{p.remaining:,} left"]
        if p.skipped:
            parts.append(f"{p.skipped:,} skipped")
        if p.rate_per_hour:
            parts.append(f"{p.rate_per_hour:,.0f}/h")
        comparison = self._comparison
        if q.is_comparison and comparison is not None and comparison.win_rate_b is not None:
            parts.append(f"B wins {comparison.win_rate_b:.0%} ({comparison.low:.0%}\u2013{comparison.high:.0%})")
        self.progress_label.setText(" \u00b7 ".join(parts))
        self.progress_bar.setMaximum(max(1, p.total))
        self.progress_bar.setValue(p.done)
        self.progress_bar.show()

    # ================================================================== showing items
    def _labels(self, n: int) -> list[tuple[str, str]]:
        if self.queue is not None and self.queue.spec.mode == "kwise":
            return [(f"Response {i + 1}", f"key {i + 1}") for i in range(n)]
        return [("Response A", "1 or A"), ("Response B", "2 or B")][:n] + \
            [(f"Response {chr(67 + i)}", "") for i in range(max(0, n - 2))]

    def describe(self, decision: Q.Decision) -> str:
        """A decision in the words of the screen (A/B, or the k-wise column numbers)."""
        names = [title.replace("Response ", "") for title, _keys in self._labels(len(decision.item.candidates))]
        return decision.describe(names)

    def _show_state(self) -> None:
        """Show the current item, or the empty state that says why there is none."""
        item = self.queue.current if self.queue is not None else None
        kwise = self.queue is not None and self.queue.spec.mode == "kwise"
        for b in (self.generate_button, self.compare_button, self.quality_button, self.export_button,
                  self.new_queue_button):
            b.setEnabled(self.ws is not None)
        if item is None:
            self.stack.setCurrentIndex(0)
            self.columns.clear()
            if self.ws is None:
                why = ("No workspace open", "Open or create a workspace (File menu) to rank responses.")
            elif self.queue is None:
                why = ("Nothing to rank yet", "Set up a ranking queue over a dataset or tag of prompts that have "
                       "candidates, or generate candidates from a model first.")
            elif self.job_strip.running:
                why = ("Waiting for candidates", "The generation job is running; its candidates appear here as "
                       "each batch is saved.")
            elif self.queue.is_comparison:
                why = ("Comparison done", "Every pair is judged. Reveal (R) shows who wrote the last one; "
                       "Quality\u2026 keeps every comparison's result.")
            else:
                why = ("All done in this queue", "Every item is ranked. Generate more candidates, start another "
                       "queue, or export the rankings as preference pairs.")
            self.empty_view.show_state(*why, actions=self.ws is not None)
            done = self.queue is not None and self.queue.is_comparison and not self.job_strip.running
            self.empty_view.set_verdict(comparison_verdict(self._comparison) if done and self._comparison else
                                        ("Counting the result\u2026" if done else ""))
            self.item_shown.emit(None)
            self._update_progress()
            return
        self.stack.setCurrentIndex(1)
        self.item_view.show_item(item, self._labels(len(item.candidates)), kwise=kwise)
        self._update_progress()
        self.item_shown.emit(item)

    def _on_columns_painted(self) -> None:
        self.item_painted.emit()
        # After the paint: refill the prefetch buffer while the annotator reads.
        QTimer.singleShot(0, self._top_up)

    def _top_up(self) -> None:
        if self.queue is not None:
            try:
                self.queue.top_up()
            except Exception as exc:  # noqa: BLE001 - a read failed: say so, keep the page usable
                self.show_error(f"Could not read ahead in the queue: {exc}")

    def _on_order_changed(self) -> None:
        self.columns.set_ranks(self.order_view.ranks())
        self.kwise_commit.setEnabled(self.order_view.complete)

    # ================================================================== decisions
    @property
    def current(self) -> Optional[Q.QueueItem]:
        return self.queue.current if self.queue is not None else None

    def _flags(self) -> list[str]:
        return self.item_view.flags()

    def _decide(self, action) -> Optional[Q.Decision]:
        if self.current is None:
            return None
        if self._pending is not None:
            return None  # the item on screen is still being saved
        return self._attempt(self.queue, action, DECISION_LOCK_WAIT_S)

    def _attempt(self, queue: Q.RankingQueue, action, wait_s: float,
                 ws: Optional[Workspace] = None) -> Optional[Q.Decision]:
        try:
            with lock_timeout(queue.conn, wait_s):
                decision = action(queue)
        except WorkspaceBusyError:
            # Another process is writing (a long k-wise import): keep the decision and try again
            # soon, with the window responsive meanwhile. It carries its own queue (and through it
            # its prompt and connection), so switching queue or workspace meanwhile loses nothing.
            self._pending = _Pending(ws or self.ws, queue, action)
            self._message_timer.stop()
            self.message.setText(SAVING_TEXT)
            self.message.show()
            self._retry_timer.start()
            return None
        except WorkbenchError as exc:
            self.show_error(str(exc))
            return None
        self.message.hide()
        if queue is self.queue:
            self._after_decision(decision)
        else:   # saved in a queue (or workspace) that was left while it waited
            if self._reopened(queue, ws):
                self.open_queue(queue.id)   # opened again meanwhile: its item on screen is decided now
            self.show_message(f"Your last decision in queue \u201c{queue.spec.name}\u201d is saved")
        return decision

    def _reopened(self, queue: Q.RankingQueue, ws: Optional[Workspace]) -> bool:
        """Is the page showing ``queue`` (of workspace ``ws``) again, through a new queue object?"""
        return (self.queue is not None and self.queue is not queue and self.queue.id == queue.id
                and ws is not None and self.ws is not None
                and Path(ws.root).resolve() == Path(self.ws.root).resolve())

    def _on_retry_timeout(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        self._attempt(pending.queue, pending.action, DECISION_LOCK_WAIT_S, ws=pending.ws)
        if self._pending is None:   # saved, or refused with its reason shown: no longer waiting
            self._release(pending)

    def _release(self, pending: "_Pending") -> None:
        if pending.ws is not self.ws:
            pending.ws.close()   # the workspace was closed while this decision waited

    def discard_pending(self) -> None:
        """The user chose to give up the decision that waits for the lock (asked on quit)."""
        self._retry_timer.stop()
        pending, self._pending = self._pending, None
        if pending is not None:
            self._release(pending)
            self.show_error("Your last decision was discarded (the workspace stayed busy)")

    @property
    def saving(self) -> bool:
        """A decision is waiting for the workspace's write lock (it is retried until it commits)."""
        return self._pending is not None

    def _after_decision(self, decision: Q.Decision) -> None:
        self.undo_stack.push(DecisionCommand(self, decision))
        self.last_decision = decision
        self._render_last()
        self._show_state()
        if self.queue is not None and self.queue.is_comparison:
            self._recount_timer.start()  # the win rate, recounted off the GUI thread once keys pause
        self.decision_made.emit(decision)

    def choose(self, position: int) -> Optional[Q.Decision]:
        """Pairwise: the response at ``position`` (0 = left) is better."""
        note, flags = self.note.text(), self._flags()
        return self._decide(lambda q: q.choose(position, note=note, flags=flags))

    def decide_tie(self) -> Optional[Q.Decision]:
        note, flags = self.note.text(), self._flags()
        return self._decide(lambda q: q.tie(note=note, flags=flags))

    def decide_all_bad(self) -> Optional[Q.Decision]:
        note, flags = self.note.text(), self._flags()
        return self._decide(lambda q: q.tie(all_bad=True, note=note, flags=flags))

    def skip(self) -> Optional[Q.Decision]:
        return self._decide(lambda q: q.skip())

    def _commit_kwise(self) -> Optional[Q.Decision]:
        item = self.current
        if item is None or not self.order_view.complete:
            return None
        ordering = [[item.shown[c]] for c in self.order_view.order()]
        note, flags = self.note.text(), self._flags()
        return self._decide(lambda q: q.decide(ordering, note=note, flags=flags))

    def _on_number(self, column: int) -> None:
        if self.current is None:
            return
        if self.queue.spec.mode == "kwise":
            if self.order_view.assign(column) is False and column >= len(self.current.candidates):
                self.show_error(f"there are {len(self.current.candidates)} responses")
        elif column < 2:
            self.choose(column)

    def _on_letter(self, column: int) -> None:
        if self.current is not None and self.queue.spec.mode == "pairwise":
            self.choose(column)

    def _on_enter(self) -> None:
        if self._text_focus():
            self._focus_columns()
        elif self.queue is not None and self.queue.spec.mode == "kwise":
            self._commit_kwise()

    def _on_backspace(self) -> None:
        if self.queue is not None and self.queue.spec.mode == "kwise" and self.current is not None:
            self.order_view.reset()

    # -- undo/redo (called by DecisionCommand) ------------------------------------------------
    def undo_decision(self, decision: Q.Decision) -> None:
        if self.queue is None:
            raise WorkbenchError("the queue of this decision is closed")
        with lock_timeout(self.queue.conn, DECISION_LOCK_WAIT_S):  # busy: refused at once, never a freeze
            self.queue.undo(decision)
        self.last_decision = None
        self.reveal_button.setChecked(False)
        self.last_label.setText(f"Undone: {self.describe(decision)}")
        self.reveal_label.clear()
        self.reveal_button.setEnabled(False)
        self._show_state()

    def redo_decision(self, decision: Q.Decision) -> None:
        if self.queue is None:
            raise WorkbenchError("the queue of this decision is closed")
        with lock_timeout(self.queue.conn, DECISION_LOCK_WAIT_S):
            self.queue.redo(decision)
        self.last_decision = decision
        self._render_last()
        self._show_state()

    def _render_last(self, *_args) -> None:
        d = self.last_decision
        self.reveal_button.setEnabled(d is not None and d.kind == "ranking")
        if d is None:
            self.last_label.setText("")
            self.reveal_label.clear()
            return
        stored = []  # what was saved with the decision, so the annotator sees it was not lost
        if d.note:
            stored.append("rationale")
        if d.flags:
            stored.append(("flag " if len(d.flags) == 1 else "flags ") + ", ".join(d.flags))
        self.last_label.setText(f"Saved: {self.describe(d)}"
                                + (f" with {' and '.join(stored)}" if stored else "")
                                + (f" \u00b7 ranking #{d.ranking_id}" if d.ranking_id else ""))
        self.last_label.setToolTip(f"Rationale: {d.note}" if d.note else "")
        if not self.reveal_button.isChecked() or d.kind != "ranking":
            self.reveal_label.clear()
            return
        spec = self.queue.spec if self.queue else None
        parts, full = [], []
        letters = [label for label, _keys in self._labels(len(d.item.candidates))]
        for label, cand, arm in zip(letters, d.item.candidates, d.item.arms or (None,) * len(d.item.candidates)):
            who, ref = model_name(cand.model) if cand.model else "unknown model", cand.model or "unknown model"
            if cand.checkpoint and cand.checkpoint not in who:
                who += f" ({model_name(cand.checkpoint) if '/checkpoints/' in cand.checkpoint else cand.checkpoint})"
                ref += f" ({cand.checkpoint})"
            if arm and spec is not None and spec.compare is not None:
                ref = spec.compare.label_a if arm == "a" else spec.compare.label_b
                who, ref = f"model {arm.upper()}: {model_name(ref)}", f"model {arm.upper()}: {ref}"
            letter = label.replace("Response ", "")
            parts.append(f"{letter}: {who}")
            full.append(f"{letter}: {ref}")
        self.reveal_label.setText("   ".join(parts))
        self.reveal_label.setToolTip("\n".join(full))  # the full model paths

    # ================================================================== edits
    def open_edit_dialog(self, column: int = 0):
        """Edit response ``column`` of the current item (a non-modal dialog, returned)."""
        item = self.current
        if item is None:
            return None
        from .edit_dialog import EditResponseDialog

        labels = [label.replace("Response ", "") for label, _ in self._labels(len(item.candidates))]
        dialog = EditResponseDialog(labels, item.candidates, min(column, len(item.candidates) - 1), parent=self)
        dialog.demonstration_requested.connect(lambda text, ds: self._save_demonstration(dialog, item, text, ds))
        dialog.preferred_requested.connect(lambda text, cid: self._save_preferred(dialog, item, text, cid))
        self._keep(dialog)
        dialog.open()
        self._place_below_prompt(dialog)
        return dialog

    def _place_below_prompt(self, dialog: QWidget) -> None:
        """Put the edit dialog over the responses, under the prompt (it opened centred, over the
        prompt the edit is about); kept on the screen."""
        prompt = self.item_view.prompt_view
        top = prompt.mapToGlobal(prompt.rect().bottomLeft()).y() + 8
        cols = self.columns.mapToGlobal(self.columns.rect().center()).x()
        frame = dialog.frameGeometry()
        x, y = cols - frame.width() // 2, top
        screen = (self.screen() or dialog.screen()).availableGeometry()
        x = max(screen.left(), min(x, screen.right() - frame.width()))
        y = max(screen.top(), min(y, screen.bottom() - frame.height()))
        dialog.move(x, y)

    def _as_response(self, item: Q.QueueItem, text: str) -> Any:
        return [{"role": "assistant", "content": text}] if isinstance(item.prompt, list) else text

    def _save_demonstration(self, dialog, item: Q.QueueItem, text: str, dataset: str) -> None:
        try:   # busy (another writer): said in the dialog at once, which stays open to try again
            with lock_timeout(self.ws.conn, DECISION_LOCK_WAIT_S), self.ws.transaction() as conn:
                A.add_demonstration(conn, dataset or "demonstrations", item.prompt, text,
                                    candidate_id=dialog.candidate_id)
        except WorkbenchError as exc:
            dialog.show_error(str(exc))
            return
        dialog.accept()
        self.show_message(f"Saved as a demonstration in the SFT dataset \u201c{dataset}\u201d.")

    def _save_preferred(self, dialog, item: Q.QueueItem, text: str, candidate_id: int) -> None:
        if self.current is None or self.current.prompt_id != item.prompt_id:
            dialog.show_error("this item is no longer on screen")
            return
        if self._pending is not None:   # saved now, the waiting decision would land on the next item
            dialog.show_error("your last decision is still being saved (another process is writing to "
                              "the workspace); try again once it is saved")
            return
        note, flags = self.note.text(), self._flags()
        response = self._as_response(item, text)
        try:
            with lock_timeout(self.queue.conn, DECISION_LOCK_WAIT_S):  # busy: said in the dialog, no freeze
                decision = self.queue.prefer_edited(response, candidate_id, note=note, flags=flags)
        except WorkbenchError as exc:
            dialog.show_error(str(exc))
            return
        dialog.accept()
        self._after_decision(decision)

    # ================================================================== dialogs
    def _keep(self, dialog: QWidget) -> None:
        guard_wheel_in(dialog)
        self._dialogs.append(dialog)
        dialog.finished.connect(lambda *_: self._dialogs.remove(dialog) if dialog in self._dialogs else None)
        dialog.finished.connect(lambda *_: self._focus_columns())

    def open_queue_dialog(self):
        """The queue set-up dialog (non-modal, returned); the new queue opens when it is created."""
        if self.ws is None:
            return None
        from .queue_dialog import QueueSetupDialog

        annotator = self.queue.spec.annotator if self.queue else default_annotator()
        dialog = QueueSetupDialog(self.ws.conn, annotator=annotator, parent=self)
        dialog.created.connect(self.open_queue)
        self._keep(dialog)
        dialog.open()
        return dialog

    def open_generation_dialog(self, model: Optional[str] = None):
        """Generate candidates with ``model`` pre-filled (a hub id, folder or run checkpoint)."""
        if self.ws is None:
            return None
        from .generation_dialog import GenerationDialog

        dialog = GenerationDialog(self.root, self.ws.conn, model=model, parent=self)
        dialog.start_requested.connect(lambda cfg, source: self._start_generation(dialog, cfg, source))
        self._keep(dialog)
        dialog.open()
        return dialog

    def open_comparison_dialog(self, model_a: Optional[str] = None, model_b: Optional[str] = None):
        """A blind before/after comparison of ``model_a`` and ``model_b`` (pre-filled)."""
        if self.ws is None:
            return None
        from .generation_dialog import ComparisonDialog

        annotator = self.queue.spec.annotator if self.queue else default_annotator()
        dialog = ComparisonDialog(self.root, self.ws.conn, model_a=model_a, model_b=model_b, annotator=annotator,
                                  parent=self)
        dialog.start_requested.connect(lambda cfg, who: self._start_comparison(dialog, cfg, who))
        self._keep(dialog)
        dialog.open()
        return dialog

    def open_quality_dialog(self):
        if self.root is None:
            return None
        from .quality_view import QualityDialog

        dialog = QualityDialog(self.root, parent=self)
        self._keep(dialog)
        dialog.open()
        return dialog

    def open_export_dialog(self):
        if self.ws is None:
            return None
        from .export_dialog import ExportRankingsDialog

        names = [n for (n,) in self.ws.conn.execute("SELECT DISTINCT annotator FROM rankings ORDER BY annotator")]
        dialog = ExportRankingsDialog(self.root, names, parent=self)
        dialog.exported.connect(lambda name, n: self.show_message(f"Exported {n:,} pairs to \u201c{name}\u201d."))
        self._keep(dialog)
        dialog.open()
        return dialog

    # ================================================================== jobs
    def _start_job(self, dialog, config: dict, what: str):
        sup = self.supervisor()
        if sup is None:
            dialog.show_error("no workspace is open")
            return None
        try:
            handle = sup.start("generate", config)
        except (WorkbenchError, OSError) as exc:
            dialog.show_error(f"could not start the job: {exc}")
            return None
        self.job_strip.follow(sup, handle.run_id, handle.path, what)
        monitor = getattr(self.window(), "job_monitor", None)
        if monitor is not None and hasattr(monitor, "refresh"):
            monitor.refresh()
        return handle

    def _start_generation(self, dialog, config: dict, source: Optional[Q.PromptSource]) -> None:
        handle = self._start_job(dialog, config, f"Generating from {model_name(config['model'])}")
        if handle is None:
            return
        dialog.accept()
        if source is not None:
            annotator = self.queue.spec.annotator if self.queue else default_annotator()
            mode = self.queue.spec.mode if self.queue and not self.queue.is_comparison else "pairwise"
            self._open_or_create(Q.QueueSpec(annotator=annotator or "annotator", mode=mode, source=source))
        self._show_state()

    def _start_comparison(self, dialog, config: dict, annotator: str) -> None:
        handle = self._start_job(dialog, config,
                                 f"Sampling {model_name(config['model'])} and {model_name(config['model_b'])}")
        if handle is None:
            return
        dialog.accept()
        arms = Q.CompareArms(run_id=handle.run_id, label_a=config["model"], label_b=config["model_b"])
        self._open_or_create(Q.QueueSpec(annotator=annotator, compare=arms,
                                         name=comparison_queue_name(config["model"], config["model_b"], annotator)))

    def _open_or_create(self, spec: Q.QueueSpec) -> None:
        try:
            spec = spec.validated()
            existing = [q for q in Q.list_queues(self.ws.conn) if q.spec == spec]
            if existing:
                self.open_queue(existing[0].id)
                return
            with self.ws.transaction() as conn:
                queue_id = Q.create_queue(conn, spec)
        except WorkbenchError as exc:
            self.show_error(str(exc))
            return
        self.open_queue(queue_id)

    def _on_job_finished(self, status: str) -> None:
        shown = self.queue.current if self.queue is not None else None
        if self.queue is not None:
            self.queue.restart_scan()  # keeps the current item
            QTimer.singleShot(0, self._top_up)  # refill the read-ahead the restart emptied
        if shown is None or self.queue is None or self.queue.current is not shown:
            self._show_state()  # the empty state's text, or a first item
        # else: the item being decided stays as it is, with its note, flags and k-wise order.
        self.refresh_counts()

    # ================================================================== polling
    def _read_data_version(self) -> Optional[int]:
        try:
            return self.ws.conn.execute("PRAGMA data_version").fetchone()[0] if self.ws else None
        except Exception:  # noqa: BLE001 - a closed connection: nothing to poll
            return None

    def _on_timer(self) -> None:
        self.job_strip.poll()
        self._maybe_checkpoint()
        version = self._read_data_version()
        if version is None or version == self._data_version:
            return
        # Another connection committed (a generation job, another window): new items may be there.
        self._data_version = version
        if self.queue is not None:
            if self.queue.current is None:
                self.queue.restart_scan()
                if self.queue.current is not None:
                    self._show_state()
            else:
                self.queue.refresh_arms()
            self.refresh_counts()

    def _maybe_checkpoint(self) -> None:
        if self.ws is None or (self._checkpoint is not None and self._checkpoint.is_alive()):
            return
        try:
            wal = os.path.getsize(str(self.ws.db_path) + "-wal")
        except OSError:
            return
        if wal >= CHECKPOINT_WAL_BYTES:
            self._checkpoint = checkpoint_in_background(self.ws.db_path)
            self.ws.add_background(self._checkpoint)

    # ================================================================== messages
    def show_error(self, message: str) -> None:
        """An error that stays until the next decision."""
        self._message_timer.stop()
        self.message.setText("\u26a0 " + message)
        self.message.show()

    def show_message(self, message: str) -> None:
        """A passing note (hidden after a few seconds)."""
        self.message.setText(message)
        self.message.show()
        self._message_timer.start()
