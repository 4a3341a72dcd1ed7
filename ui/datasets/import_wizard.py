"""The import wizard: choose a file, preview and map its columns, name the dataset, import.

Pages: file → preview & mapping (detected format and layout and why, what the
first rows will be stored as, the raw rows, the column mapping, the layout and
kind, the ignored columns, a validation report of the previewed rows) →
name → import (progress, cancel, the report). The preview and the import
run on worker threads (:func:`workbench.data.preview.preview_file`,
:func:`workbench.data.importer.import_file`); the import is all or
nothing, so a cancel or an error leaves the workspace as it was.
``imported(name)`` is emitted after a successful import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QSplitter, QStyle,
                               QTableWidget, QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget, QWizard,
                               QWizardPage)

from workbench.data import importer, readers
from workbench.data.layouts import LAYOUTS
from workbench.data.preview import (DEFAULT_PREVIEW_ROWS, FilePreview, Problem, StoredPreview, mapping_targets,
                                    preview_file)
from workbench.errors import WorkbenchError
from workbench.store import datasets as ds_repo
from workbench.store.records import KINDS

from ..common.render import plain_preview, plain_tooltip
from ..common.progress_panel import ProgressPanel, error_text, with_workspace
from ..common.screen_fit import screen_bounded
from ..common.text import human_size

_KIND_HELP = {"sft": "SFT demonstrations", "preference": "preference pairs", "prompts": "prompts only",
              "unpaired": "unpaired (KTO) labels"}


def _item(text: str, tooltip: str = "") -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if tooltip:
        item.setToolTip(plain_tooltip(tooltip))  # quotes the file: never markup (an <img> would be read)
    return item


def turns_text(value, limit: int) -> str:
    """A stored text value in one cell: every turn of a conversation ("user: … · assistant: …")."""
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        text = "  ·  ".join(f"{m.get('role')}: {m.get('content')}" for m in value)
    elif value is None:
        text = ""
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


#: The stored-record columns of the "What will be stored" table: (header, content fields shown).
_STORED_COLUMNS = (("Prompt (with history)", ("prompt",)), ("Chosen / completion", ("chosen", "completion", "messages")),
                   ("Rejected", ("rejected",)), ("Also stored", ()))


def stored_rows(table: QTableWidget, stored: list[StoredPreview]) -> None:
    """Fill the "What will be stored" table: one row per record or ranking, as saved."""
    table.setRowCount(len(stored))
    for i, s in enumerate(stored):
        head = QTableWidgetItem(str(s.line))
        table.setVerticalHeaderItem(i, head)
        for j, (_title, names) in enumerate(_STORED_COLUMNS[:-1]):
            value = next((s.content[n] for n in names if n in s.content), None)
            table.setItem(i, j, _item(turns_text(value, 200), turns_text(value, 4000)))
        extra = [s.ranking] if s.ranking else []
        extra += [f"{k} {s.content[k]:g}" for k in ("score_chosen", "score_rejected", "label") if k in s.content]
        if s.tags:
            extra.append("tags " + ", ".join(s.tags))
        table.setItem(i, len(_STORED_COLUMNS) - 1, _item("; ".join(extra), "; ".join(extra)))


def problem_rows(table: QTableWidget, problems: list) -> None:
    """Fill a three-column (location, field, problem) table from Problems or skipped-row dicts."""
    table.setRowCount(len(problems))
    for i, p in enumerate(problems):
        table.setItem(i, 0, _item(Path(p.file).name + p.location()[len(p.file):], p.location()))
        table.setItem(i, 1, _item(p.field or "—"))
        table.setItem(i, 2, _item(p.message, str(p)))
    table.resizeRowsToContents()


def problem_table() -> QTableWidget:
    table = QTableWidget(0, 3)
    table.setHorizontalHeaderLabels(["Location", "Field", "Problem"])
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setWordWrap(True)
    header = table.horizontalHeader()
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
    return table


class FilePage(QWizardPage):
    """Pick the file (or an HF ``save_to_disk`` folder) and show its detected format."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setTitle("Choose a file")
        self.setSubTitle("JSONL, JSON (an array of objects), CSV or TSV, Parquet, or a Hugging Face "
                         "dataset folder saved with save_to_disk.")
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("/path/to/data.jsonl")
        self.path_edit.setClearButtonEnabled(True)
        self.path_edit.textChanged.connect(self._on_path_changed)
        file_button = QPushButton("File…")
        file_button.clicked.connect(self._on_file_clicked)
        folder_button = QPushButton("Folder…")
        folder_button.setToolTip("A Hugging Face dataset folder (with state.json or dataset_dict.json)")
        folder_button.clicked.connect(self._on_folder_clicked)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(file_button)
        row.addWidget(folder_button)
        self.format_label = QLabel()
        self.format_label.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.format_label.setWordWrap(True)
        self.format_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.format_label)
        layout.addStretch(1)
        self.format: Optional[str] = None

    @property
    def path(self) -> Path:
        return Path(self.path_edit.text().strip()).expanduser()

    def _on_file_clicked(self) -> None:
        name, _ = QFileDialog.getOpenFileName(
            self, "Import a dataset file", str(self.path.parent if self.path_edit.text() else Path.home()),
            "Datasets (*.jsonl *.ndjson *.json *.csv *.tsv *.parquet *.pq *.arrow);;All files (*)")
        if name:
            self.path_edit.setText(name)

    def _on_folder_clicked(self) -> None:
        name = QFileDialog.getExistingDirectory(self, "Import a Hugging Face dataset folder", str(Path.home()))
        if name:
            self.path_edit.setText(name)

    def _on_path_changed(self, text: str) -> None:
        self.format = None
        if text.strip():
            try:
                # Cheap: a stat and at most 4 KB read, fine on the GUI thread.
                self.format = readers.detect_format(self.path)
                size = readers.file_size(self.path)
                self.format_label.setText(f"Format: {self.format.upper()} · {human_size(size)}")
            except WorkbenchError as exc:
                self.format_label.setText(str(exc))
            except OSError as exc:
                self.format_label.setText(f"{self.path}: {exc.strerror or exc}")
        else:
            self.format_label.setText("")
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802 - Qt override
        return self.format is not None


class PreviewPage(QWizardPage):
    """The first rows as the importer reads them, the column mapping, the kind, the report."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setTitle("Preview and column mapping")
        self.setSubTitle(f"The first {DEFAULT_PREVIEW_ROWS} rows, checked the way the import will check them. "
                         "Map your columns onto the fields the workbench knows; detection follows.")
        self.detected = QLabel("Reading…")
        self.detected.setWordWrap(True)
        self.detected.setTextFormat(Qt.TextFormat.RichText)
        self.detected.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.ignored_label = QLabel()
        self.ignored_label.setWordWrap(True)
        self.ignored_label.setTextFormat(Qt.TextFormat.RichText)
        self.ignored_label.setVisible(False)

        # What the import will store, as saved (prompt with history, chosen, rejected, rankings),
        # first; the raw columns second.
        self.stored_table = QTableWidget(0, len(_STORED_COLUMNS))
        self.stored_table.setHorizontalHeaderLabels([t for t, _ in _STORED_COLUMNS])
        self.stored_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.stored_table.setAlternatingRowColors(True)
        self.stored_table.setWordWrap(False)
        self.stored_table.horizontalHeader().setDefaultSectionSize(260)
        self.stored_table.horizontalHeader().setStretchLastSection(True)

        self.table = QTableWidget()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.horizontalHeader().setDefaultSectionSize(220)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)

        self.mapping_table = QTableWidget(0, 3)
        self.mapping_table.setHorizontalHeaderLabels(["Column in the file", "Import as", "Used"])
        self.mapping_table.verticalHeader().setVisible(False)
        self.mapping_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.mapping_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.mapping_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.kind_combo = QComboBox()
        self.kind_combo.addItem("As detected", None)
        for kind in KINDS:
            self.kind_combo.addItem(f"{kind} ({_KIND_HELP[kind]})", kind)
        self.kind_combo.setToolTip("Any shape can also be imported as prompts only")
        self.kind_combo.currentIndexChanged.connect(self._on_kind_changed)
        self.layout_combo = QComboBox()
        self.layout_combo.addItem("As detected", None)
        for name, shape in LAYOUTS.items():
            self.layout_combo.addItem(name, name)
            self.layout_combo.setItemData(self.layout_combo.count() - 1, shape.description, Qt.ItemDataRole.ToolTipRole)
        self.layout_combo.setToolTip("Name the file's layout when detection is ambiguous or the file was renamed")
        self.layout_combo.currentIndexChanged.connect(self._on_kind_changed)
        mapping_box = QGroupBox("Column mapping")
        mapping_layout = QVBoxLayout(mapping_box)
        mapping_layout.addWidget(self.mapping_table, 1)
        kind_row = QFormLayout()
        kind_row.addRow("Layout", self.layout_combo)
        kind_row.addRow("Dataset kind", self.kind_combo)
        mapping_layout.addLayout(kind_row)

        self.report = problem_table()
        self.report_label = QLabel()
        self.report_label.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.report_label.setWordWrap(True)
        self.skip_check = QCheckBox("Skip invalid rows (each skipped row is listed in the import report)")
        report_box = QGroupBox("Validation report")
        report_layout = QVBoxLayout(report_box)
        report_layout.addWidget(self.report_label)
        report_layout.addWidget(self.report, 1)
        report_layout.addWidget(self.skip_check)

        bottom = QWidget()
        bottom_layout = QHBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addWidget(mapping_box, 2)
        bottom_layout.addWidget(report_box, 3)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.stored_table, "What will be stored")
        self.tabs.addTab(self.table, "Rows in the file")
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.tabs)
        splitter.addWidget(bottom)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.detected)
        layout.addWidget(self.ignored_label)
        layout.addWidget(splitter, 1)

        # Runs the preview off the GUI thread; kept hidden: a preview of 50 rows is quick, and a
        # bar flashing on every mapping change would make the page jump.
        self.panel = ProgressPanel(self)
        self.panel.setVisible(False)
        self.panel.done.connect(self._on_panel_done)

        self.preview: Optional[FilePreview] = None
        self.path: Optional[Path] = None
        self._columns: list[str] = []
        self._combos: dict[str, QComboBox] = {}
        self._pending = False

    # -- state the wizard reads -----------------------------------------------------------
    @property
    def mapping(self) -> dict[str, str]:
        out = {}
        for column, combo in self._combos.items():
            target = combo.currentData()
            if target and target != column:
                out[column] = target
        return out

    @property
    def kind(self) -> Optional[str]:
        return self.kind_combo.currentData()

    @property
    def layout_name(self) -> Optional[str]:
        """The layout chosen in the wizard (None: as detected)."""
        return self.layout_combo.currentData()

    def mapping_combo(self, column: str) -> QComboBox:
        return self._combos[column]

    # -- refreshing -----------------------------------------------------------------------
    def initializePage(self) -> None:  # noqa: N802 - Qt override
        path = self.wizard().file_page.path
        if path != self.path:
            self.path = path
            self.preview = None
            self._build_mapping([])
            self.kind_combo.setCurrentIndex(0)
            self.layout_combo.setCurrentIndex(0)
        self.refresh()

    def refresh(self) -> None:
        """Re-read the preview with the current mapping and kind (off the GUI thread)."""
        if self.path is None:
            return
        if self.panel.busy:
            self._pending = True
            return
        path, mapping, kind, layout = self.path, self.mapping, self.kind, self.layout_name
        if self.preview is None:
            self.detected.setText(f"Reading the first rows of {_escape(path.name)}…")
        self.panel.run(lambda progress, cancel: preview_file(path, mapping=mapping, kind=kind, layout=layout),
                       f"Reading the first rows of {path.name}…", on_success=self._on_previewed,
                       on_failure=self._on_preview_failed, cancellable=False)
        self.completeChanged.emit()

    def _on_panel_done(self) -> None:
        if self._pending:
            self._pending = False
            self.refresh()
        self.completeChanged.emit()

    def _on_preview_failed(self, exc: BaseException) -> None:
        self.preview = None
        self.detected.setText(f"<b>Cannot read this file.</b> {_escape(error_text(exc))}")
        self.table.clear()
        self.table.setRowCount(0)
        self.table.setColumnCount(0)

    def _on_previewed(self, preview: FilePreview) -> None:
        if self._pending:
            return  # the mapping or kind changed while it ran; the next preview follows
        self.preview = preview
        if preview.columns != self._columns:
            self._build_mapping(preview.columns)
        self._show_detection(preview)
        stored_rows(self.stored_table, preview.stored)
        self._show_rows(preview)
        self._show_usage(preview)
        self._show_report(preview)

    def _show_detection(self, p: FilePreview) -> None:
        rows = f"{len(p.rows)} rows{' (more follow)' if p.more else ''}"
        self.ignored_label.setVisible(False)
        if p.shape is not None and p.error is None:
            text = (f"Format <b>{p.format.upper()}</b> · layout <b>{_escape(p.shape)}</b> "
                    f"({_escape(p.shape_description)}) · kind <b>{p.kind}</b> · style <b>{p.style or 'standard'}</b>"
                    f" · {rows} previewed<br>Why this layout: {_escape(p.layout_reason)}")
            if p.ignored_fields:
                # Prominent: a column left out here is not in the workspace at all.
                self.ignored_label.setText(
                    "<b style='color:#b35900'>⚠ Not imported:</b> "
                    f"<span style='color:#b35900'>{_escape(', '.join(p.ignored_fields))}</span> "
                    "— these columns are left out of the stored records. Map them, or pick another layout, "
                    "if they hold responses or labels.")
                self.ignored_label.setVisible(True)
        elif p.error is not None:
            text = f"Format <b>{p.format.upper()}</b> · <b>cannot import:</b> {_escape(str(p.error))}"
        else:
            text = (f"Format <b>{p.format.upper()}</b> · none of the {len(p.rows)} previewed rows could be read; "
                    "see the report below.")
        self.detected.setText(text)

    def _show_rows(self, p: FilePreview) -> None:
        bad = {pr.line for pr in p.problems}
        if p.error is not None:
            bad.add(p.error.line)
        warn = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        self.table.clear()
        self.table.setColumnCount(len(p.columns))
        self.table.setRowCount(len(p.rows))
        headers = []
        for c in p.columns:
            target = p.target(c)
            headers.append(f"{c} → {target}" if target != c else c)
        self.table.setHorizontalHeaderLabels(headers)
        muted = self.palette().color(QPalette.ColorRole.PlaceholderText)
        used = [p.used(c) for c in p.columns]
        for j, c in enumerate(p.columns):
            # Columns the import ignores are narrow and muted, so the ones that matter stand out.
            self.table.setColumnWidth(j, 240 if used[j] else 130)
        for i, (row, line) in enumerate(zip(p.rows, p.lines)):
            head = QTableWidgetItem(str(line))
            head.setToolTip(f"{p.unit} {line}")
            if line in bad:
                head.setIcon(warn)
            self.table.setVerticalHeaderItem(i, head)
            if row is None:
                self.table.setItem(i, 0, _item("(unreadable)"))
                continue
            for j, c in enumerate(p.columns):
                if c in row:
                    value = row[c]
                    cell = _item(plain_preview(value, 160), plain_preview(value, 2000))
                    if not used[j]:
                        cell.setForeground(muted)
                    self.table.setItem(i, j, cell)

    def _build_mapping(self, columns: list[str]) -> None:
        self._columns = list(columns)
        self._combos = {}
        self.mapping_table.setRowCount(len(columns))
        targets = mapping_targets()
        for i, column in enumerate(columns):
            self.mapping_table.setItem(i, 0, _item(column))
            combo = QComboBox()
            combo.addItem("(as is)", None)
            for t in targets:
                combo.addItem(t, t)
            combo.currentIndexChanged.connect(self._on_mapping_changed)
            self.mapping_table.setCellWidget(i, 1, combo)
            self.mapping_table.setItem(i, 2, _item(""))
            self._combos[column] = combo
        self.mapping_table.resizeRowsToContents()

    def _show_usage(self, p: FilePreview) -> None:
        for i, column in enumerate(self._columns):
            used = p.used(column)
            self.mapping_table.item(i, 2).setText(f"as {p.target(column)}" if used else "ignored")

    def _show_report(self, p: FilePreview) -> None:
        problems = ([p.error] if p.error is not None else []) + list(p.problems)
        problem_rows(self.report, problems)
        if not problems:
            self.report_label.setText(f"No problems in the {len(p.rows)} previewed rows.")
        elif p.error is not None:
            self.report_label.setText("The import cannot start: fix the mapping or the kind, or the file.")
        else:
            self.report_label.setText(
                f"{len(p.problems)} of the {len(p.rows)} previewed rows have problems. The import stops at the "
                "first bad row unless you skip invalid rows.")

    def _on_mapping_changed(self, _index: int) -> None:
        self.refresh()

    def _on_kind_changed(self, _index: int) -> None:
        if self.path is not None:
            self.refresh()

    def isComplete(self) -> bool:  # noqa: N802 - Qt override
        p = self.preview
        return (not self.panel.busy and p is not None and p.shape is not None and p.error is None)


class NamePage(QWizardPage):
    """The new dataset's name (validated, not taken) and description."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setTitle("Name the dataset")
        self.setSubTitle("The import creates a new dataset; existing datasets are never changed by it.")
        self.name_edit = QLineEdit()
        self.name_edit.textChanged.connect(self._on_name_changed)
        self.description_edit = QLineEdit()
        self.description_edit.setPlaceholderText("Optional: where the data comes from, what it is for")
        self.message = QLabel()
        self.message.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.message.setWordWrap(True)
        self.summary = QLabel()
        self.summary.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.summary.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Name", self.name_edit)
        form.addRow("", self.message)
        form.addRow("Description", self.description_edit)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addSpacing(12)
        layout.addWidget(self.summary)
        layout.addStretch(1)
        self._suggested_for: Optional[Path] = None
        self._valid = False

    def initializePage(self) -> None:  # noqa: N802 - Qt override
        wizard = self.wizard()
        path = wizard.file_page.path
        if self._suggested_for != path:
            self._suggested_for = path
            self.name_edit.setText(path.stem if path.is_file() else path.name)
        p = wizard.preview_page.preview
        skip = wizard.preview_page.skip_check.isChecked()
        if p is not None:
            self.summary.setText(
                f"Import {path.name} ({p.format.upper()}) as a {p.kind} dataset, shape "
                f"{p.shape_description}, {p.style or 'standard'} style"
                + (f", with the mapping {', '.join(f'{a} → {b}' for a, b in p.mapping.items())}" if p.mapping else "")
                + (". Invalid rows are skipped and listed." if skip else ". The first invalid row stops the import."))
        self._on_name_changed(self.name_edit.text())

    def _on_name_changed(self, text: str) -> None:
        self._valid = False
        try:
            name = ds_repo.validate_name(text)
        except WorkbenchError as exc:
            self.message.setText(str(exc))
        else:
            if name in self.wizard().existing_names:
                self.message.setText(f"A dataset named “{name}” already exists in this workspace; "
                                     "choose another name.")
            else:
                self.message.setText("")
                self._valid = True
        self.completeChanged.emit()

    @property
    def name(self) -> str:
        return self.name_edit.text().strip()

    def isComplete(self) -> bool:  # noqa: N802 - Qt override
        return self._valid


class ImportPage(QWizardPage):
    """Runs the import with progress and Cancel, then shows the report or the error."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setTitle("Import")
        self.setSubTitle("One transaction: the dataset appears whole, or not at all.")
        self.panel = ProgressPanel()
        self.panel.cancel_button.setText("Cancel import")
        self.outcome = QLabel()
        self.outcome.setWordWrap(True)
        self.outcome.setTextFormat(Qt.TextFormat.PlainText)
        self.outcome.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.skipped_label = QLabel()
        self.skipped_label.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.skipped = problem_table()
        self.skipped_label.setVisible(False)
        self.skipped.setVisible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.panel)
        layout.addWidget(self.outcome)
        layout.addWidget(self.skipped_label)
        layout.addWidget(self.skipped, 1)
        layout.addStretch(0)
        self.report: Optional[importer.ImportReport] = None
        self.error: Optional[BaseException] = None
        self.cancelled = False

    def initializePage(self) -> None:  # noqa: N802 - Qt override
        wizard = self.wizard()
        self.report, self.error, self.cancelled = None, None, False
        wizard.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage, False)
        self.outcome.setText("")
        self.skipped_label.setVisible(False)
        self.skipped.setVisible(False)
        root = wizard.workspace_root
        path = wizard.file_page.path
        fmt = wizard.file_page.format
        name = wizard.name_page.name
        description = wizard.name_page.description_edit.text().strip()
        kind, mapping = wizard.preview_page.kind, wizard.preview_page.mapping
        layout = wizard.preview_page.layout_name
        skip = wizard.preview_page.skip_check.isChecked()

        def work(progress, cancel):
            return with_workspace(root, lambda ws: importer.import_file(
                ws, path, name, kind=kind, mapping=mapping, skip_invalid=skip, description=description, fmt=fmt,
                progress=progress, cancel=cancel, layout=layout))

        self.panel.run(work, f"Importing {path.name}…", on_success=self._on_imported,
                       on_failure=self._on_failed, on_cancelled=self._on_cancelled)
        self.panel.cancel_button.setText("Cancel import")
        self.panel.done.connect(self._on_panel_done, Qt.ConnectionType.UniqueConnection)
        # QWizard sets the Back button's state after initializePage (and on completeChanged).
        QTimer.singleShot(0, self._update_buttons)

    def _on_imported(self, report: importer.ImportReport) -> None:
        self.report = report
        self.panel.set_status("")
        extra = f" ({report.rankings:,} rankings)" if report.rankings else ""
        lines = [f"Imported {report.rows:,} records{extra} into “{report.dataset}” in {report.seconds:.1f} s: "
                 f"{report.kind}, {report.style} style, layout {report.shape}, from {report.path}.",
                 f"{report.skipped:,} rows skipped." if report.skipped else "No rows skipped."]
        if report.ignored_fields:
            lines.append(f"Ignored fields: {', '.join(report.ignored_fields)}.")
        self.outcome.setText("\n".join(lines))
        if report.skipped_rows:
            unit = "row" if report.format in ("parquet", "hf") else "line"
            problems = [Problem(file=report.path, line=s.get(unit), field=s.get("field"), message=s["message"],
                                unit=unit) for s in report.skipped_rows[:5000]]
            problem_rows(self.skipped, problems)
            more = report.skipped - len(problems)
            self.skipped_label.setText("Skipped rows" + (f" (the first {len(problems):,}; {more:,} more)"
                                                         if more > 0 else ""))
            self.skipped_label.setVisible(True)
            self.skipped.setVisible(True)
        # Nothing is left to cancel: Finish is the only way on.
        self.wizard().setOption(QWizard.WizardOption.NoCancelButtonOnLastPage, True)
        self.wizard().imported.emit(report.dataset)

    def _on_failed(self, exc: BaseException) -> None:
        self.error = exc
        self.panel.set_status("")
        self.outcome.setText("The import failed and nothing was stored:\n\n" + error_text(exc))

    def _on_cancelled(self) -> None:
        self.cancelled = True
        self.panel.set_status("")
        self.outcome.setText("Import cancelled: nothing was stored.")

    def _on_panel_done(self) -> None:
        self.completeChanged.emit()
        self._update_buttons()

    def _update_buttons(self) -> None:
        """No way back while the import runs, nor after it succeeded (the dataset exists now);
        after a failure or a cancel, Back leads to the settings to fix."""
        wizard = self.wizard()
        if wizard is not None and wizard.currentPage() is self:
            wizard.button(QWizard.WizardButton.BackButton).setEnabled(not self.panel.busy and self.report is None)

    def isComplete(self) -> bool:  # noqa: N802 - Qt override
        return self.report is not None


class ImportWizard(QWizard):
    """Import a dataset file into the workspace at ``workspace_root``; emits ``imported(name)``."""

    imported = Signal(str)

    def __init__(self, workspace_root: Path, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.workspace_root = Path(workspace_root)
        self.setWindowTitle("Import a dataset")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage)
        self.existing_names: set[str] = set()
        self.file_page = FilePage()
        self.preview_page = PreviewPage()
        self.name_page = NamePage()
        self.import_page = ImportPage()
        for page in (self.file_page, self.preview_page, self.name_page, self.import_page):
            self.addPage(page)
        self.name_page.setButtonText(QWizard.WizardButton.NextButton, "Import")
        self.resize(screen_bounded(self, QSize(1040, 720)))  # the buttons stay on a 1280×720 screen
        self._close_when_idle = False
        self._names_panel = ProgressPanel(self)
        self._names_panel.setVisible(False)
        self._names_panel.run(lambda progress, cancel: with_workspace(
            self.workspace_root, lambda ws: {n for (n,) in ws.conn.execute("SELECT name FROM datasets")}),
            "", on_success=self._on_names_loaded, on_failure=lambda exc: None, cancellable=False)

    @property
    def report(self) -> Optional[importer.ImportReport]:
        return self.import_page.report

    def _on_names_loaded(self, names: set[str]) -> None:
        self.existing_names = names
        if self.currentPage() is self.name_page:
            self.name_page._on_name_changed(self.name_page.name_edit.text())

    def _busy_panels(self) -> list[ProgressPanel]:
        return [p for p in (self.import_page.panel, self.preview_page.panel, self._names_panel) if p.busy]

    def reject(self) -> None:
        """Cancel a running import first; close once it has stopped (nothing is stored)."""
        busy = self._busy_panels()
        if busy:
            self._close_when_idle = True
            for panel in busy:
                panel.cancel()
                panel.done.connect(self._on_idle_check, Qt.ConnectionType.UniqueConnection)
            return
        super().reject()

    def _on_idle_check(self) -> None:
        if self._close_when_idle and not self._busy_panels():
            self._close_when_idle = False
            QTimer.singleShot(0, self.reject)

    def shutdown(self) -> None:
        """Cancel running work and wait for it (the owner is closing)."""
        for panel in self._busy_panels():
            panel.cancel()
            panel.wait()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
