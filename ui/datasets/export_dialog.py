"""The export dialog: a dataset (or one of its snapshots), a split, a format, a path.

The formats are the exporter's: TRL-ready files and folders, and the layouts of
LLaMA-Factory, OpenRLHF and Label Studio (greyed out for dataset kinds a tool
cannot hold). The export runs :func:`workbench.data.exporter.export_dataset`
on a worker thread with progress and Cancel. The exporter writes to a
temporary name and renames at the end, so a cancelled export leaves no file
behind; the result line gives the rows written, the path, the output's
SHA-256 and, for a tool's layout, how to point the tool at it. What may be
replaced is the core's rule (:func:`workbench.targets.check_target`): the
dialog asks before replacing a file or a previous export, and refuses the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget)

from workbench.data import exporter
from workbench.data.exporter import slug
from workbench.data.tool_exports import TOOL_FORMATS, unsupported
from workbench.store import datasets as ds_repo
from workbench.store.records import DatasetInfo, SnapshotInfo
from workbench.targets import DATASET_EXPORT, TargetError, check_target

from ..common.progress_panel import ProgressPanel, TaskDialog, confirm, error_text, result_label, with_workspace
from .actions import info_summary, short_date

#: Format -> (label, name suffix); an HF or LLaMA-Factory export is a folder.
FORMATS: dict[str, tuple[str, str]] = {
    "jsonl": ("JSON Lines (.jsonl)", ".jsonl"),
    "json": ("JSON array (.json)", ".json"),
    "csv": ("CSV (.csv)", ".csv"),
    "parquet": ("Parquet (.parquet)", ".parquet"),
    "hf": ("Hugging Face dataset folder (save_to_disk)", ""),
    **{fmt: (tool.label, f".{fmt}" + ("" if tool.folder else tool.suffix))
       for fmt, tool in TOOL_FORMATS.items()},
}
SPLITS = ((None, "All rows"), ("train", "Train only"), ("validation", "Validation only"))


def default_output(root: Path, name: str, fmt: str, snapshot: Optional[str], split: Optional[str]) -> Path:
    """``<workspace>/exports/<name>[-<snapshot>][-<split>]<suffix>``."""
    stem = slug(name) + (f"-{snapshot[:8]}" if snapshot else "") + (f"-{split}" if split else "")
    return Path(root) / "exports" / (stem + FORMATS[fmt][1])


def with_suffix_for(path: Path, fmt: str) -> Path:
    """``path`` with its export suffix swapped for ``fmt``'s (folders for ``hf`` have none)."""
    name = path.name
    for known in sorted((s for _, s in FORMATS.values() if s), key=len, reverse=True):
        if name.lower().endswith(known) and len(name) > len(known):
            name = name[:-len(known)]
            break
    return path.with_name(name + FORMATS[fmt][1])


def unavailable(fmt: str, kind: str) -> Optional[str]:
    """Why format ``fmt`` cannot hold a ``kind`` dataset (``None``: it can; the TRL formats hold all)."""
    return unsupported(fmt, kind) if fmt in TOOL_FORMATS else None


class ExportDialog(TaskDialog):
    """Export a dataset from the workspace at ``workspace_root`` (``dataset_name`` preselected)."""

    def __init__(self, workspace_root: Path, dataset_name: Optional[str] = None,
                 parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.root = Path(workspace_root)
        self.requested = dataset_name
        self.info: Optional[DatasetInfo] = None
        self.snapshots: list[SnapshotInfo] = []
        self.report: Optional[exporter.ExportReport] = None
        self.confirm_box = None
        self._path_auto = True
        self.setWindowTitle("Export a dataset")
        self.setMinimumWidth(620)

        self.dataset_combo = QComboBox()
        self.dataset_combo.currentIndexChanged.connect(self._on_dataset_changed)
        self.snapshot_combo = QComboBox()
        self.snapshot_combo.setToolTip("A frozen snapshot exports exactly the rows (and splits) it froze")
        self.snapshot_combo.currentIndexChanged.connect(self._on_selection_changed)
        self.split_combo = QComboBox()
        for value, label in SPLITS:
            self.split_combo.addItem(label, value)
        self.split_combo.currentIndexChanged.connect(self._on_selection_changed)
        self.format_combo = QComboBox()
        for fmt, (label, _suffix) in FORMATS.items():
            self.format_combo.addItem(label, fmt)
        self.format_combo.currentIndexChanged.connect(self._on_format_changed)
        self.formulas_check = QCheckBox("Neutralise spreadsheet formulas (cells starting with = + - @ get a ')")
        self.formulas_check.setChecked(True)
        self.formulas_check.setToolTip("A spreadsheet runs a cell that starts with = + - @, TAB or CR as a formula; "
                                       "the leading apostrophe makes it show the text instead. Turn off to write "
                                       "every cell exactly as stored.")
        self.path_edit = QLineEdit()
        self.path_edit.textEdited.connect(self._on_path_edited)
        self.path_edit.textChanged.connect(self._on_path_changed)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)
        self.summary = QLabel("Reading the workspace…")
        self.summary.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.summary.setWordWrap(True)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Dataset", self.dataset_combo)
        form.addRow("", self.summary)
        form.addRow("Rows", self.snapshot_combo)
        form.addRow("Split", self.split_combo)
        form.addRow("Format", self.format_combo)
        form.addRow("", self.formulas_check)
        form.addRow("Save to", path_row)

        self._form = form
        self._sync_format_options()
        self.panel = ProgressPanel()
        self.panel.done.connect(self._on_panel_done)
        self.result = result_label()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.setDefault(True)
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self._on_export_clicked)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        layout.addLayout(form)
        layout.addWidget(self.panel)
        layout.addWidget(self.result)
        layout.addStretch(1)
        layout.addWidget(self.buttons)

        root = self.root
        self.panel.run(lambda progress, cancel: with_workspace(
            root, lambda ws: [n for (n,) in ws.conn.execute("SELECT name FROM datasets ORDER BY name")]),
            "Reading the workspace…", on_success=self._on_names_loaded, on_failure=self._on_load_failed,
            cancellable=False)

    # -- choices --------------------------------------------------------------------------
    @property
    def dataset(self) -> Optional[str]:
        return self.dataset_combo.currentData()

    @property
    def snapshot(self) -> Optional[str]:
        return self.snapshot_combo.currentData()

    @property
    def split(self) -> Optional[str]:
        return self.split_combo.currentData()

    @property
    def format(self) -> str:
        return self.format_combo.currentData()

    @property
    def output(self) -> Path:
        return Path(self.path_edit.text().strip()).expanduser()

    def _on_names_loaded(self, names: list[str]) -> None:
        self.panel.set_status("")
        if not names:
            self.summary.setText("This workspace has no datasets yet: import one first.")
            return
        self.dataset_combo.blockSignals(True)
        for n in names:
            self.dataset_combo.addItem(n, n)
        index = self.dataset_combo.findData(self.requested) if self.requested else 0
        self.dataset_combo.setCurrentIndex(max(0, index))
        self.dataset_combo.blockSignals(False)
        self._on_dataset_changed(self.dataset_combo.currentIndex())

    def _on_load_failed(self, exc: BaseException) -> None:
        self.panel.set_status("")
        self.summary.setText(error_text(exc))

    def _on_dataset_changed(self, _index: int) -> None:
        name = self.dataset
        if name is None:
            return
        self.info = None
        self.export_button.setEnabled(False)
        if self.panel.busy:
            return  # the info of the newest choice is loaded when the running task ends
        root = self.root

        def load(ws):
            info, snapshots = ds_repo.get_dataset(ws.conn, name), ds_repo.list_snapshots(ws.conn, name)
            current = next((s.hash for s in reversed(snapshots) if ds_repo.is_current(ws.conn, info, s)), None)
            return info, snapshots, current

        self.panel.run(lambda progress, cancel: with_workspace(root, load), f"Reading “{name}”…",
                       on_success=self._on_info_loaded, on_failure=self._on_load_failed, cancellable=False)

    def _on_info_loaded(self, result: tuple[DatasetInfo, list[SnapshotInfo], Optional[str]]) -> None:
        info, snapshots, current = result
        self.panel.set_status("")
        if info.name != self.dataset:
            return
        self.info, self.snapshots = info, snapshots
        self.summary.setText(info_summary(info))
        self._sync_formats(info.kind)
        self.snapshot_combo.blockSignals(True)
        self.snapshot_combo.clear()
        frozen = f"the same as snapshot {current[:8]}" if current else "not frozen"
        self.snapshot_combo.addItem(f"Current rows ({info.rows:,}, {frozen})", None)
        for snap in reversed(snapshots):  # newest first
            note = f" · {snap.note}" if snap.note else ""
            self.snapshot_combo.addItem(f"Snapshot {snap.hash[:8]} · {snap.rows:,} rows · "
                                        f"{short_date(snap.created_at)}{note}", snap.hash)
        if current:  # the same rows, frozen: exporting the snapshot is reproducible and recorded
            self.snapshot_combo.setCurrentIndex(self.snapshot_combo.findData(current))
        self.snapshot_combo.blockSignals(False)
        self._on_selection_changed()

    def _on_panel_done(self) -> None:
        if self._close_if_requested():
            return
        if self.dataset is not None and (self.info is None or self.info.name != self.dataset):
            self._on_dataset_changed(self.dataset_combo.currentIndex())

    def _on_selection_changed(self, _index: int = 0) -> None:
        if self._path_auto and self.dataset:
            self.path_edit.setText(str(default_output(self.root, self.dataset, self.format, self.snapshot,
                                                      self.split)))
        self._update_export_button()

    def _sync_formats(self, kind: str) -> None:
        """Grey out the formats that cannot hold a ``kind`` dataset, saying why in the tooltip."""
        model = self.format_combo.model()
        for i in range(self.format_combo.count()):
            why = unavailable(self.format_combo.itemData(i), kind)
            model.item(i).setEnabled(why is None)
            self.format_combo.setItemData(i, why or None, Qt.ItemDataRole.ToolTipRole)
        if unavailable(self.format, kind):
            self.format_combo.setCurrentIndex(self.format_combo.findData("jsonl"))

    def _sync_format_options(self) -> None:
        self._form.setRowVisible(self.formulas_check, self.format == "csv")

    def _on_format_changed(self, _index: int) -> None:
        self._sync_format_options()
        if self._path_auto:
            self._on_selection_changed()
        elif self.path_edit.text().strip():
            self.path_edit.setText(str(with_suffix_for(self.output, self.format)))

    def _on_path_edited(self, _text: str) -> None:
        self._path_auto = False

    def _on_path_changed(self, _text: str) -> None:
        self._update_export_button()

    def _update_export_button(self) -> None:
        self.export_button.setEnabled(self.info is not None and not self.panel.busy
                                      and bool(self.path_edit.text().strip()))

    def _on_browse_clicked(self) -> None:
        fmt = self.format
        label, suffix = FORMATS[fmt]
        folder = fmt in exporter.FOLDER_FORMATS
        name, _ = QFileDialog.getSaveFileName(self, "Export to", str(self.output),
                                              "Folder (*)" if folder else f"{label} (*{suffix})")
        if name:
            self._path_auto = False
            self.path_edit.setText(str(with_suffix_for(Path(name), fmt)) if suffix else name)

    # -- export ---------------------------------------------------------------------------
    def _on_export_clicked(self) -> None:
        # The core's rule decides what may be replaced (a file, or a folder that is a previous
        # export; never the workspace or a folder holding it); the dialog only asks first.
        out = self.output
        try:
            target = check_target(out, folder=self.format in exporter.FOLDER_FORMATS, workspace=self.root,
                                  overwrite=True, kind=DATASET_EXPORT)
        except TargetError as exc:
            self._show_result(f"Not exported: {exc}")
            return
        if target.exists:
            kind = "folder" if target.path.is_dir() else "file"
            self.confirm_box = confirm(self, "Replace export", f"{out} already exists.",
                                       f"Replace this {kind} with the export? It is replaced only once the "
                                       "export is complete.", "Replace", lambda: self.start(overwrite=True))
        else:
            self.start()

    def start(self, overwrite: bool = False) -> None:
        root, name, fmt, out = self.root, self.dataset, self.format, self.output
        snapshot, split = self.snapshot, self.split
        formulas = "neutralise" if self.formulas_check.isChecked() else "keep"
        self.result.setVisible(False)
        self.export_button.setEnabled(False)
        self.panel.run(lambda progress, cancel: with_workspace(root, lambda ws: exporter.export_dataset(
            ws, name, fmt, out, snapshot=snapshot, split=split, overwrite=overwrite, csv_formulas=formulas,
            progress=progress, cancel=cancel)),
            f"Exporting “{name}”…", on_success=self._on_exported, on_failure=self._on_export_failed,
            on_cancelled=self._on_export_cancelled)

    def _on_exported(self, report: exporter.ExportReport) -> None:
        self.report = report
        self.panel.set_status("")
        what = (f" (snapshot {report.snapshot[:8]})" if report.snapshot else "") + \
               (f", {report.split} split" if report.split else "")
        self._show_result(f"Exported {report.rows:,} rows of “{report.dataset}”{what} as {report.format} to\n"
                          f"{report.path}\nSHA-256 {report.sha256}" + (f"\n{report.usage}" if report.usage else ""))
        self._update_export_button()

    def _on_export_failed(self, exc: BaseException) -> None:
        self.panel.set_status("")
        self._show_result("The export failed; no file was written.\n" + error_text(exc))
        self._update_export_button()

    def _on_export_cancelled(self) -> None:
        self.panel.set_status("")
        self._show_result("Export cancelled; no file was written.")
        self._update_export_button()

    def _show_result(self, text: str) -> None:
        self.result.setText(text)
        self.result.setVisible(True)

