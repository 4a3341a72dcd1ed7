"""Dataset actions with a confirmation and a result summary: dedup, split, freeze.

Each dialog is ``(workspace_root, dataset_name, parent)`` and emits
``changed(dataset_name)`` after the action changed something, so the
dataset manager can refresh. Every read and write runs on a worker thread
(:func:`ui.common.worker.run_in_thread`) with its own workspace connection;
the dialogs only show what comes back.

The progress panel and confirmation they share live in
:mod:`ui.common.progress_panel`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont, QFontDatabase, QPalette
from PySide6.QtWidgets import (QComboBox, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel,
                               QLineEdit, QMessageBox, QSpinBox, QVBoxLayout, QWidget)

from workbench.data import ops
from workbench.store import datasets as ds_repo
from workbench.store.records import DatasetInfo

from ..common.progress_panel import ProgressPanel, TaskDialog, confirm, error_text, result_label, with_workspace
from ..common.text import plural


def short_date(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def info_summary(info: DatasetInfo) -> str:
    unassigned = info.rows - info.train - info.validation
    parts = [f"{info.rows:,} rows ({info.kind}, {info.style})",
             f"train {info.train:,} · validation {info.validation:,} · unassigned {unassigned:,}"]
    if info.deleted:
        parts.append(f"{info.deleted:,} deleted")
    return " · ".join(parts)


class _ActionDialog(TaskDialog):
    """Shared frame: a heading, the action's form, a progress panel, a result, buttons.

    Closing while a task runs cancels it and closes once it has stopped.
    """

    changed = Signal(str)
    ACTION = ""
    PRIMARY = ""

    def __init__(self, workspace_root: Path, dataset_name: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.root = Path(workspace_root)
        self.dataset_name = dataset_name
        self.info: Optional[DatasetInfo] = None
        self.confirm_box: Optional[QMessageBox] = None
        self.setWindowTitle(f"{self.ACTION} · {dataset_name}")
        self.setMinimumWidth(520)

        self.heading = QLabel(dataset_name)
        self.heading.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        font = QFont(self.heading.font())
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setWeight(QFont.Weight.DemiBold)
        self.heading.setFont(font)
        self.summary = QLabel("Reading the dataset…")
        self.summary.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.summary.setWordWrap(True)
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.preview = QLabel()
        self.preview.setWordWrap(True)
        self.preview.setTextFormat(Qt.TextFormat.PlainText)
        self.panel = ProgressPanel()
        self.panel.done.connect(self._on_panel_done)
        self.result = result_label()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.primary = self.buttons.addButton(self.PRIMARY, QDialogButtonBox.ButtonRole.ActionRole)
        self.primary.setEnabled(False)
        self.primary.setDefault(True)
        self.primary.clicked.connect(self._on_primary_clicked)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        layout.addWidget(self.heading)
        layout.addWidget(self.summary)
        layout.addLayout(self.form)
        layout.addWidget(self.preview)
        layout.addWidget(self.panel)
        layout.addWidget(self.result)
        layout.addStretch(1)
        layout.addWidget(self.buttons)

    # -- subclass hooks -------------------------------------------------------------------
    def load(self) -> None:
        """Called once the dataset info arrived (and after a change): refresh the preview."""

    def start(self) -> None:
        """The user confirmed: run the action."""

    # -- plumbing -------------------------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self.info is None and not self.panel.busy:
            self.reload()

    def reload(self) -> None:
        name, root = self.dataset_name, self.root
        self.panel.run(lambda progress, cancel: with_workspace(root, lambda ws: ds_repo.get_dataset(ws.conn, name)),
                       "Reading the dataset…", on_success=self._on_info_loaded, on_failure=self._on_load_failed)

    def _on_info_loaded(self, info: DatasetInfo) -> None:
        self.info = info
        self.summary.setText(info_summary(info))
        self.panel.set_status("")
        self.load()

    def _on_load_failed(self, exc: BaseException) -> None:
        self.summary.setText(error_text(exc))
        self.panel.set_status("")

    def _on_primary_clicked(self) -> None:
        self.ask()

    def ask(self) -> None:
        """Confirm, then :meth:`start` (subclasses without a question start directly)."""
        self.start()

    def show_result(self, text: str) -> None:
        self.result.setText(text)
        self.result.setVisible(True)

    def show_error(self, exc: BaseException) -> None:
        self.show_result(error_text(exc))

    def run_action(self, fn, message: str, on_success, *, cancellable: bool = True) -> None:
        self.primary.setEnabled(False)
        self.result.setVisible(False)
        self.panel.run(fn, message, on_success=on_success, on_failure=self.show_error,
                       on_cancelled=self._on_action_cancelled, cancellable=cancellable)

    def _on_action_cancelled(self) -> None:
        self.panel.set_status("")
        self.show_result(f"{self.ACTION} cancelled: the dataset was not changed.")
        self.load()

    def _on_panel_done(self) -> None:
        self._close_if_requested()


# -- dedup ---------------------------------------------------------------------------------

_MODE_HELP = {
    "exact": "rows whose content is identical",
    "normalized": "rows identical up to whitespace and letter case",
}


class DedupDialog(_ActionDialog):
    """Find duplicates (exact or normalized), say how many will go, then soft-delete them."""

    ACTION = "Remove duplicates"
    PRIMARY = "Remove duplicates…"

    def __init__(self, workspace_root: Path, dataset_name: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(workspace_root, dataset_name, parent)
        self.mode_combo = QComboBox()
        for mode in ops.DEDUP_MODES:
            self.mode_combo.addItem(f"{mode.capitalize()}: {_MODE_HELP[mode]}", mode)
        self.mode_combo.currentIndexChanged.connect(self._on_mode_changed)
        self.form.addRow("Match", self.mode_combo)
        self.duplicates: Optional[int] = None
        self._rescan = False

    @property
    def mode(self) -> str:
        return self.mode_combo.currentData()

    def load(self) -> None:
        self.scan()

    def scan(self) -> None:
        if self.panel.busy:
            self._rescan = True
            self.panel.cancel()
            return
        self.duplicates = None
        self.primary.setEnabled(False)
        self.preview.setText("")
        root, name, mode = self.root, self.dataset_name, self.mode
        self.panel.run(
            lambda progress, cancel: with_workspace(
                root, lambda ws: (mode, ops.find_duplicates(ws, name, mode, cancel=cancel))),
            f"Looking for {mode} duplicates…", on_success=self._on_scanned, on_failure=self.show_error,
            on_cancelled=self._on_scan_cancelled)

    def _on_mode_changed(self, _index: int) -> None:
        if self.info is not None:
            self.scan()

    def _on_scan_cancelled(self) -> None:
        self.panel.set_status("")

    def _on_panel_done(self) -> None:
        if self._rescan and not self._close_when_idle:
            self._rescan = False
            self.scan()
        super()._on_panel_done()

    def _on_scanned(self, result) -> None:
        mode, (scanned, dupes) = result
        self.panel.set_status("")
        if mode != self.mode:
            return  # the user switched modes meanwhile; the rescan follows
        self.duplicates = len(dupes)
        if dupes:
            one = len(dupes) == 1
            verb = ("is an" if mode[0] in "aeiou" else "is a") if one else "are"
            self.preview.setText(
                f"{len(dupes):,} of {scanned:,} rows {verb} {mode} "
                f"{'duplicate' if one else 'duplicates'} of an earlier row. The first occurrence "
                f"of each is kept; {'the later copy' if one else f'the {len(dupes):,} later copies'} "
                "will be removed.")
            self.primary.setText(f"Remove {plural(len(dupes), 'duplicate')}…")
            self.primary.setEnabled(True)
        else:
            self.preview.setText(f"No {mode} duplicates among {scanned:,} rows: nothing to remove.")
            self.primary.setText(self.PRIMARY)

    def ask(self) -> None:
        n = self.duplicates or 0
        self.confirm_box = confirm(
            self, "Remove duplicates",
            f"Remove {plural(n, f'{self.mode} duplicate row')} from “{self.dataset_name}”?",
            "They are soft-deleted, not erased: show deleted rows in the dataset manager to restore "
            "them. Frozen snapshots keep them.",
            f"Remove {plural(n, 'row')}", self.start)

    def start(self) -> None:
        root, name, mode = self.root, self.dataset_name, self.mode
        self.run_action(lambda progress, cancel: with_workspace(root, lambda ws: ops.dedup(ws, name, mode,
                                                                                           cancel=cancel)),
                        f"Removing {mode} duplicates…", self._on_deduped)

    def _on_deduped(self, report: ops.DedupReport) -> None:
        self.panel.set_status("")
        self.duplicates = 0
        self.primary.setText(self.PRIMARY)
        self.preview.setText("")
        self.show_result(
            f"Removed {plural(report.removed, f'{report.mode} duplicate')}: “{report.dataset}” went from "
            f"{report.rows_before:,} to {report.rows_before - report.removed:,} rows.\n"
            "The removed rows are soft-deleted: show deleted rows in the dataset manager to restore them.")
        if report.removed:
            self.changed.emit(self.dataset_name)
        self.summary.setText(f"{report.rows_before - report.removed:,} rows after removing duplicates")


# -- split ---------------------------------------------------------------------------------

class SplitDialog(_ActionDialog):
    """Choose a validation share and seed, preview the prompt-grouped split, apply it."""

    ACTION = "Split"
    PRIMARY = "Split…"

    def __init__(self, workspace_root: Path, dataset_name: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(workspace_root, dataset_name, parent)
        self.fraction_spin = QDoubleSpinBox()
        self.fraction_spin.setRange(0.0, 90.0)
        self.fraction_spin.setDecimals(1)
        self.fraction_spin.setSingleStep(5.0)
        self.fraction_spin.setSuffix(" %")
        self.fraction_spin.setValue(10.0)
        self.fraction_spin.setToolTip("Share of rows to hold out for validation")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2_147_483_647)
        self.seed_spin.setToolTip("The same seed always gives the same split")
        self.form.addRow("Validation share", self.fraction_spin)
        self.form.addRow("Seed", self.seed_spin)
        note = QLabel("Rows that share a prompt (up to whitespace and case) always land on the same side, "
                      "so validation never scores a prompt the model trained on.")
        note.setWordWrap(True)
        note.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # muted, from the system palette
        self.form.addRow(note)
        self.plan: Optional[ops.SplitPlan] = None
        self._replan = False
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(250)
        self._debounce.timeout.connect(self.plan_split)
        self.fraction_spin.valueChanged.connect(self._on_parameters_changed)
        self.seed_spin.valueChanged.connect(self._on_parameters_changed)

    @property
    def validation(self) -> float:
        return round(self.fraction_spin.value() / 100.0, 4)

    def load(self) -> None:
        self.plan_split()

    def _on_parameters_changed(self, _value) -> None:
        self.primary.setEnabled(False)
        if self.info is not None:
            self._debounce.start()

    def plan_split(self) -> None:
        if self.panel.busy:
            self._replan = True
            self.panel.cancel()
            return
        self.plan = None
        self.primary.setEnabled(False)
        root, name, validation, seed = self.root, self.dataset_name, self.validation, self.seed_spin.value()

        def work(progress, cancel):
            def fn(ws):
                info = ds_repo.get_dataset(ws.conn, name)
                return ops.plan_split(ws.conn, info, validation=validation, seed=seed, cancel=cancel)
            return with_workspace(root, fn)

        self.panel.run(work, "Grouping rows by prompt…", on_success=self._on_planned, on_failure=self.show_error,
                       on_cancelled=self._on_plan_cancelled)

    def _on_plan_cancelled(self) -> None:
        self.panel.set_status("")

    def _on_panel_done(self) -> None:
        if self._replan and not self._close_when_idle:
            self._replan = False
            self.plan_split()
        super()._on_panel_done()

    def _on_planned(self, plan: ops.SplitPlan) -> None:
        self.panel.set_status("")
        if (plan.validation_fraction, plan.seed) != (self.validation, self.seed_spin.value()):
            return  # stale: the parameters changed while it ran
        self.plan = plan
        share = plan.validation / plan.total * 100 if plan.total else 0.0
        lines = [f"Train {plan.train:,} rows ({plan.prompts_train:,} prompts) · validation {plan.validation:,} "
                 f"rows ({plan.prompts_validation:,} prompts): {share:.1f} % held out."]
        if plan.shared_prompts:
            lines.append(f"{plan.shared_prompts:,} prompts have several rows (the largest {plan.largest_group:,}); "
                         "each such group stays together, so the share can differ a little from the one asked.")
        if self.info is not None and self.info.train + self.info.validation:
            lines.append(f"This replaces the current split (train {self.info.train:,}, "
                         f"validation {self.info.validation:,}).")
        self.preview.setText("\n".join(lines))
        self.primary.setEnabled(plan.total > 0)

    def ask(self) -> None:
        plan = self.plan
        if plan is None:
            return
        self.confirm_box = confirm(
            self, "Split dataset",
            f"Split “{self.dataset_name}” into {plan.train:,} train and {plan.validation:,} validation rows?",
            f"Seed {plan.seed}. Every live row gets a side; frozen snapshots keep their own split.",
            "Split", self.start)

    def start(self) -> None:
        root, name, validation, seed = self.root, self.dataset_name, self.validation, self.seed_spin.value()
        self.run_action(lambda progress, cancel: with_workspace(
            root, lambda ws: ops.split(ws, name, validation=validation, seed=seed, cancel=cancel)),
            "Splitting…", self._on_split)

    def _on_split(self, report: ops.SplitReport) -> None:
        self.panel.set_status("")
        self.preview.setText("")
        self.show_result(
            f"Split “{report.dataset}” with seed {report.seed}: {report.train:,} train rows "
            f"({report.prompts_train:,} prompts), {report.validation:,} validation rows "
            f"({report.prompts_validation:,} prompts).")
        self.changed.emit(self.dataset_name)
        self.summary.setText(f"{report.train + report.validation:,} rows · train {report.train:,} · "
                             f"validation {report.validation:,}")


# -- freeze --------------------------------------------------------------------------------

class FreezeDialog(_ActionDialog):
    """Freeze the live rows as a content-hashed snapshot (an unchanged dataset keeps its snapshot).

    Freezing only adds a snapshot, nothing is changed or lost, so pressing
    Freeze in this dialog is the confirmation.
    """

    ACTION = "Freeze snapshot"
    PRIMARY = "Freeze"

    def __init__(self, workspace_root: Path, dataset_name: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(workspace_root, dataset_name, parent)
        self.note_edit = QLineEdit()
        self.note_edit.setPlaceholderText("What this snapshot is for, e.g. “reward model v2 training set”")
        self.form.addRow("Note", self.note_edit)
        # The full hash in a field of its own: a 64-character word in a wrapped label was clipped.
        self.hash_field = QLineEdit()
        self.hash_field.setObjectName("snapshotHash")
        self.hash_field.setReadOnly(True)
        self.hash_field.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.hash_field.setToolTip("The snapshot's full content hash (select to copy)")
        self.hash_field.setMinimumWidth(self.hash_field.fontMetrics().horizontalAdvance("0" * 64) + 16)
        self.hash_field.hide()
        self.layout().insertWidget(self.layout().indexOf(self.result) + 1, self.hash_field)
        self.snapshot = None
        self.created: Optional[bool] = None

    def load(self) -> None:
        info = self.info
        if info is None:
            return
        if self.created and self.snapshot is not None:  # just frozen: say so, not "No snapshot yet"
            self.preview.setText(f"The latest of {plural(len(info.snapshots), 'snapshot')} is "
                                 f"{self.snapshot.hash[:12]}, made now: it holds these {info.rows:,} rows and "
                                 "their splits; training runs refer to it by hash.")
        elif info.snapshots:
            self.preview.setText(f"{plural(len(info.snapshots), 'earlier snapshot')}, the latest "
                                 f"{info.snapshots[-1][:12]}. A snapshot keeps these {info.rows:,} rows and "
                                 "their splits as they are now; training runs refer to it by hash.")
        else:
            self.preview.setText(f"No snapshot yet. A snapshot keeps these {info.rows:,} rows and their splits "
                                 "as they are now; training runs refer to it by hash.")
        self.primary.setEnabled(info.rows > 0)

    def start(self) -> None:
        root, name, note = self.root, self.dataset_name, self.note_edit.text().strip()

        def fn(ws):
            before = {s.hash: s for s in ds_repo.list_snapshots(ws.conn, name)}
            with ws.transaction() as conn:
                snap = ds_repo.freeze(conn, name, note)
            return snap, snap.hash not in before

        self.run_action(lambda progress, cancel: with_workspace(root, fn), "Hashing the rows…", self._on_frozen,
                        cancellable=False)

    def _on_frozen(self, result) -> None:
        snap, created = result
        self.snapshot, self.created = snap, created
        self.panel.set_status("")
        if created:
            self.show_result(f"Snapshot {snap.hash[:12]} created: {snap.rows:,} rows frozen"
                             + (f" (“{snap.note}”)." if snap.note else ".") + " Its full hash:")
            self.changed.emit(self.dataset_name)
            self.reload()  # the summary and preview of the dataset as it is now (frozen)
        else:
            self.show_result(f"Nothing changed since snapshot {snap.hash[:12]} of {short_date(snap.created_at)}"
                             + (f" (“{snap.note}”)" if snap.note else "")
                             + f": its {snap.rows:,} rows are already frozen, so no new snapshot was made.")
        self.hash_field.setText(snap.hash)
        self.hash_field.setCursorPosition(0)
        self.hash_field.show()
        self.primary.setEnabled(not self.panel.busy)  # re-enabled by load() once the reload is in
