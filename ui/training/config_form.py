"""A stage's config form, generated from its config dataclass (``field_help``).

One widget per field, by type: checkbox for ``bool``, combo box for fields
with ``choices`` (an editable one for ``suggestions``), spin boxes for
numbers (floats in scientific notation where small, e.g. ``2e-4``), line
edits for text; model references get the workspace's models, the earlier
stages' outputs and a folder chooser; dataset fields list the workspace's
datasets of the right kind, snapshot fields that dataset's frozen
snapshots. Each field's help text is its tooltip, and a message under it
shows what the config checks say about its value
(:meth:`ConfigFormView.set_errors`). Fields are grouped in sections, laid
out in two columns.

:meth:`ConfigFormView.values` returns plain data in the config's shape
(nested for SFT/reward/DPO, flat for PPO); values the form has no widget
for (hidden fields, or keys loaded from YAML) are kept and returned as they
came.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any, Optional, Union, get_args, get_origin

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QPalette, QValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QGroupBox, QHBoxLayout, QLabel, QLineEdit, QSizePolicy, QSpinBox,
                               QToolButton, QVBoxLayout, QWidget)

from ..common.wheel_guard import guard_wheel_in
from .stages import MODEL_FIELDS, STAGES, defaults, field_specs, get_path, set_path

#: Spin box maxima by field name (the last part of the path); others 10^9. Minima are 0 (-1 for
#: optional floats, shown as "none"), wider than the valid range on purpose: a value loaded from a
#: file is shown as it is and the config checks name what is wrong with it, rather than the spin box
#: silently clamping it.
INT_MAX = {"lora_r": 4096, "lora_alpha": 16384, "batch_size": 65536, "mini_batch_size": 65536,
           "gradient_accumulation_steps": 65536, "max_length": 1 << 20, "max_new_tokens": 1 << 20,
           "ppo_epochs": 1000, "seed": 2 ** 31 - 1}
FLOAT_MAX = {"lora_dropout": 1.0, "warmup_ratio": 1.0, "top_p": 1.0, "gamma": 1.0, "lam": 1.0}
_WORDS = {"lora": "LoRA", "lr": "LR", "kl": "KL", "ppo": "PPO", "eos": "EOS", "vf": "VF", "id": "ID",
          "dpo": "DPO", "num": "number of", "ref": "model", "dtype": "dtype", "k": "k", "p": "p"}
_LABELS = {"ref": "Model", "lora_r": "LoRA rank", "lam": "GAE lambda", "cliprange": "Clip range",
           "cliprange_value": "Value clip range", "vf_coef": "Value loss weight", "kl_coef": "KL coefficient",
           "num_epochs": "Epochs", "max_steps": "Max steps", "lr": "Learning rate", "top_k": "Top-k",
           "top_p": "Top-p", "num_samples": "Samples per report"}


def label_for(path: str) -> str:
    """``training.learning_rate`` -> ``Learning rate``; ``lora_r`` -> ``LoRA rank``."""
    name = path.rsplit(".", 1)[-1]
    if name in _LABELS:
        return _LABELS[name]
    words = [_WORDS.get(w, w) for w in name.split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def base_type(tp: Any) -> tuple[Any, bool]:
    """``(type, optional)`` of an annotation: ``Optional[str]`` -> ``(str, True)``; a
    ``Union[list, str]`` counts as ``str``."""
    if get_origin(tp) is Union:
        args = [a for a in get_args(tp) if a is not type(None)]
        optional = len(args) < len(get_args(tp))
        if str in args:
            return str, optional
        return (args[0] if args else str), optional
    return tp, False


def error_color(palette: QPalette) -> QColor:
    """A red that reads on the palette's window: darker on light themes, lighter on dark ones."""
    dark = palette.color(QPalette.ColorRole.Window).lightness() < 128
    return QColor.fromHsl(2, 190, 170 if dark else 95)


class FloatSpinBox(QDoubleSpinBox):
    """A spin box for floats from 1e-8 to 1e6 that shows ``2e-4`` rather than ``0.0002``, and steps
    by one unit of the value's leading digit (2e-4 -> 3e-4)."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setDecimals(12)
        self.setKeyboardTracking(False)

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt override
        if value == 0:
            return "0"
        text = f"{value:.6g}"
        return text.replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")

    def valueFromText(self, text: str) -> float:  # noqa: N802 - Qt override
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):  # noqa: D401 - Qt override
        stripped = text.strip()
        if self.specialValueText() and stripped == self.specialValueText():
            return QValidator.State.Acceptable, text, pos
        if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", stripped):
            value = float(stripped)
            if self.minimum() <= value <= self.maximum():
                return QValidator.State.Acceptable, text, pos
        if re.fullmatch(r"[-+]?\d*\.?\d*([eE][-+]?\d*)?", stripped):
            return QValidator.State.Intermediate, text, pos
        return QValidator.State.Invalid, text, pos

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt override
        value = self.value()
        unit = 10 ** math.floor(math.log10(abs(value))) if value else self.singleStep()
        self.setValue(value + steps * unit)


class ModelRefEdit(QWidget):
    """A model reference: type a hub id or folder, pick one of the listed models, or browse."""

    changed = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.combo = QComboBox(self)
        self.combo.setEditable(True)
        self.combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.combo.setMinimumContentsLength(18)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.lineEdit().setPlaceholderText("hub id (owner/name) or model folder")
        self.browse = QToolButton(self)
        self.browse.setText("\u2026")
        self.browse.setToolTip("Choose a model folder")
        self.workspace: Optional[Path] = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.combo, 1)
        layout.addWidget(self.browse)
        self.combo.currentTextChanged.connect(self._on_combo_text_changed)
        self.browse.clicked.connect(self._on_browse_clicked)

    def value(self) -> str:
        return self.combo.currentText().strip()

    def set_value(self, value: Any) -> None:
        self.combo.setEditText("" if value is None else str(value))

    def set_choices(self, choices: list[tuple[str, str]]) -> None:
        """``[(label, reference)]`` offered in the drop-down; the typed value is kept."""
        text = self.combo.currentText()
        with QSignalBlocker(self.combo):
            self.combo.clear()
            for label, ref in choices:
                self.combo.addItem(label, ref)
            self.combo.setEditText(text)

    def _on_combo_text_changed(self, text: str) -> None:
        index = self.combo.findText(text)
        if index >= 0 and self.combo.itemData(index):  # a listed label: use its reference
            with QSignalBlocker(self.combo):
                self.combo.setEditText(self.combo.itemData(index))
        self.changed.emit()

    def _on_browse_clicked(self) -> None:
        start = str(self.workspace / "models") if self.workspace and (self.workspace / "models").is_dir() else ""
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder", start)
        if folder:
            self.set_value(_relative_to(folder, self.workspace))


def _relative_to(folder: str, workspace: Optional[Path]) -> str:
    """``./models/x`` for a folder inside the workspace (the config stays valid if the workspace
    moves), else the absolute path."""
    if workspace is not None:
        try:
            return "./" + Path(folder).resolve().relative_to(workspace.resolve()).as_posix()
        except ValueError:
            pass
    return folder


class _Field:
    """One form row: the editor, its error line, and how to read and write its value."""

    def __init__(self, path: str, spec: dict, editor: QWidget, kind: str, optional: bool):
        self.path = path
        self.spec = spec
        self.editor = editor
        self.kind = kind
        self.optional = optional
        self.error = QLabel()
        self.error.setObjectName("fieldError")
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.hide()
        self.container = QWidget()
        box = QVBoxLayout(self.container)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        box.addWidget(editor)
        box.addWidget(self.error)

    def value(self) -> Any:
        e = self.editor
        if self.kind == "bool":
            return e.isChecked()
        if self.kind == "choice":
            return e.currentData()
        if self.kind == "int":
            return e.value()
        if self.kind == "float":
            if self.optional and e.value() == e.minimum():
                return None
            return e.value()
        if self.kind in ("model", "text", "suggest", "dataset", "snapshot"):
            text = e.value() if self.kind == "model" else (e.currentText() if self.kind in ("suggest", "dataset",
                                                                                           "snapshot")
                                                          else e.text())
            if self.kind in ("dataset", "snapshot"):
                data = e.currentData()
                text = data if data is not None and e.currentText() == e.itemText(e.currentIndex()) else text
            text = (text or "").strip()
            return None if (self.optional and not text) else text
        raise AssertionError(self.kind)

    def set_value(self, value: Any) -> None:
        e = self.editor
        with QSignalBlocker(e):
            if self.kind == "bool":
                e.setChecked(bool(value))
            elif self.kind == "choice":
                index = e.findData(value)
                if index < 0:  # a value outside the choices (from YAML): show it, the check names it
                    e.addItem(str(value), value)
                    index = e.count() - 1
                e.setCurrentIndex(index)
            elif self.kind == "int":
                try:
                    e.setValue(int(value))
                except (TypeError, ValueError):
                    e.setValue(int(self.spec.get("default") or 0))
            elif self.kind == "float":
                if value is None and self.optional:
                    e.setValue(e.minimum())
                else:
                    try:
                        e.setValue(float(value))
                    except (TypeError, ValueError):
                        e.setValue(float(self.spec.get("default") or 0.0))
            elif self.kind == "model":
                with QSignalBlocker(e.combo):
                    e.set_value(value)
            elif self.kind in ("suggest", "dataset", "snapshot"):
                text = "" if value is None else (",".join(value) if isinstance(value, list) else str(value))
                index = e.findData(text) if self.kind in ("dataset", "snapshot") else -1
                if index >= 0:
                    e.setCurrentIndex(index)
                else:
                    e.setEditText(text)
            else:
                e.setText("" if value is None else (",".join(value) if isinstance(value, list) else str(value)))

    def set_error(self, message: Optional[str]) -> None:
        if message:
            self.error.setText("\u26a0 " + message)
            pal = self.error.palette()
            pal.setColor(QPalette.ColorRole.WindowText, error_color(self.container.palette()))
            self.error.setPalette(pal)
            self.error.show()
        else:
            self.error.clear()
            self.error.hide()


class ConfigFormView(QWidget):
    """The form of one stage; see the module docstring.

    ``changed`` fires on every edit (the panel debounces the checks and the
    VRAM estimate). ``field(path)`` gives a row's editor and error label.
    """

    changed = Signal()

    def __init__(self, stage: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.stage = stage
        self.stage_def = STAGES[stage]
        self._specs = field_specs(stage)
        self._fields: dict[str, _Field] = {}
        self._extra: dict[str, Any] = defaults(stage)  # hidden and unknown keys ride along
        self.setObjectName(f"form_{stage}")

        self.banner = QLabel()
        self.banner.setObjectName("formBanner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.setTextFormat(Qt.TextFormat.PlainText)
        self.banner.hide()

        columns = self._columns = QHBoxLayout()
        columns.setSpacing(12)
        column_boxes = self._column_boxes = [QVBoxLayout(), QVBoxLayout()]
        for box in column_boxes:
            box.setSpacing(10)
            columns.addLayout(box, 1)
        sections: dict[str, QFormLayout] = {}
        boxes: list[QGroupBox] = []
        for path, spec in self._specs.items():
            form = sections.get(spec["section"])
            if form is None:
                box = QGroupBox(spec["section"])
                form = QFormLayout(box)
                form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
                form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
                form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                sections[spec["section"]] = form
                boxes.append(box)
            row = self._make_field(path, spec)
            label = QLabel(label_for(path))
            label.setToolTip(spec.get("help", ""))
            label.setBuddy(row.editor)
            form.addRow(label, row.container)
        # Two independent columns, filled top to bottom so they end at about the same height.
        sizes = [len(b.findChildren(QLabel, options=Qt.FindChildOption.FindDirectChildrenOnly)) for b in boxes]
        half, acc, column = sum(sizes) / 2, 0, 0
        self._second: list[QGroupBox] = []  # the sections of the second column, in order
        for box, size in zip(boxes, sizes):
            if column == 0 and column_boxes[0].count() > 0 and acc + size / 2 > half:
                column = 1
            column_boxes[column].addWidget(box)
            if column == 1:
                self._second.append(box)
            acc += size
        for box in column_boxes:
            box.addStretch(1)
        self._stacked = False

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.banner)
        layout.addLayout(columns)
        self.set_values(self._extra)
        guard_wheel_in(self)  # scrolling the form over a field scrolls the form

    # -- layout --------------------------------------------------------------------------------
    @property
    def two_columns(self) -> bool:
        return not self._stacked

    def fit_width(self, available: int) -> None:
        """Two columns side by side when they fit in ``available`` pixels, else one column
        (the second column's sections moved under the first): a narrow window scrolls down,
        never sideways. A small margin keeps a vertical scroll bar appearing from flipping
        the layout back and forth."""
        first, second = self._column_boxes
        sections = [first.itemAt(i).widget() for i in range(first.count())]
        own = [w for w in sections if w is not None and w not in self._second]
        two = max((w.minimumSizeHint().width() for w in own), default=0) \
            + max((w.minimumSizeHint().width() for w in self._second), default=0) + self._columns.spacing()
        margin = 24 if self._stacked else 0
        stacked = two + margin > available
        if stacked == self._stacked:
            return
        self._stacked = stacked
        source, target = (second, first) if stacked else (first, second)
        for box in self._second:
            source.removeWidget(box)
            target.insertWidget(target.count() - 1, box)  # before the trailing stretch
        self._columns.setStretch(1, 0 if stacked else 1)  # the empty column takes no width
        # A hidden form (another stage's, in the stack) does not re-lay itself out: drop the
        # cached sizes now, or the stack keeps the two-column minimum width.
        self.layout().invalidate()
        self.updateGeometry()

    # -- building ------------------------------------------------------------------------------
    def _make_field(self, path: str, spec: dict) -> _Field:
        tp, optional = base_type(spec.get("type"))
        name = path.rsplit(".", 1)[-1]
        help_text = spec.get("help", "")
        if path in MODEL_FIELDS:
            editor: QWidget = ModelRefEdit()
            editor.changed.connect(self.changed)
            kind = "model"
        elif path == self.stage_def.dataset_field:
            editor = QComboBox()
            editor.setEditable(True)
            editor.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
            editor.lineEdit().setPlaceholderText("a workspace dataset")
            editor.currentTextChanged.connect(self._on_dataset_changed)
            kind = "dataset"
        elif path == self.stage_def.snapshot_field:
            editor = QComboBox()
            editor.setEditable(True)
            editor.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
            editor.lineEdit().setPlaceholderText("freeze the current records at start")
            editor.currentTextChanged.connect(self.changed)
            kind = "snapshot"
        elif "choices" in spec:
            editor = QComboBox()
            for choice in spec["choices"]:
                editor.addItem("none" if choice is None else str(choice), choice)
            editor.currentIndexChanged.connect(self.changed)
            kind = "choice"
        elif "suggestions" in spec:
            editor = QComboBox()
            editor.setEditable(True)
            editor.addItems([""] + list(spec["suggestions"]))
            editor.lineEdit().setPlaceholderText("automatic")
            editor.currentTextChanged.connect(self.changed)
            kind = "suggest"
        elif tp is bool:
            editor = QCheckBox()
            editor.toggled.connect(self.changed)
            kind = "bool"
        elif tp is int:
            editor = QSpinBox()
            editor.setRange(0, INT_MAX.get(name, 10 ** 9))
            editor.setKeyboardTracking(False)
            editor.valueChanged.connect(self.changed)
            kind = "int"
        elif tp is float:
            editor = FloatSpinBox()
            hi = FLOAT_MAX.get(name, 1e9)
            editor.setRange(-1.0 if optional else 0.0, hi)
            editor.setSingleStep(0.1 if hi <= 1 else 1.0)
            if optional:
                editor.setSpecialValueText("none")
            editor.valueChanged.connect(self.changed)
            kind = "float"
        else:
            editor = QLineEdit()
            if optional:
                editor.setPlaceholderText("empty: default")
            editor.textChanged.connect(self.changed)
            kind = "text"
        editor.setObjectName(f"field_{path}")
        editor.setToolTip(help_text)
        row = _Field(path, spec, editor, kind, optional)
        self._fields[path] = row
        return row

    # -- values ----------------------------------------------------------------------------------
    @property
    def paths(self) -> list[str]:
        return list(self._fields)

    def field(self, path: str) -> _Field:
        return self._fields[path]

    def editor(self, path: str) -> QWidget:
        return self._fields[path].editor

    def values(self) -> dict[str, Any]:
        """The config as plain data (no ``stage`` key)."""
        data = copy.deepcopy(self._extra)
        for path, row in self._fields.items():
            value = row.value()
            if path.endswith("lora_target_modules") and self.stage == "ppo" and isinstance(value, str) \
                    and value != "all-linear":
                value = [m.strip() for m in value.split(",") if m.strip()]  # PPO takes a list of names
            set_path(data, path, value)
        return data

    def set_values(self, data: dict[str, Any]) -> None:
        """Show ``data`` (a config without ``stage``); keys without a widget are kept as they are."""
        self._extra = copy.deepcopy(data)
        for path, row in self._fields.items():
            row.set_value(get_path(data, path, row.spec.get("default")))
        self._refresh_snapshots()
        self.changed.emit()

    def set_value(self, path: str, value: Any) -> None:
        """Set one field as if the user had (``changed`` fires)."""
        self._fields[path].set_value(value)
        if path == self.stage_def.dataset_field:
            self._refresh_snapshots()
        self.changed.emit()

    def value(self, path: str) -> Any:
        return self._fields[path].value()

    # -- messages -------------------------------------------------------------------------------
    def set_errors(self, errors: dict[str, str]) -> None:
        """Show each message under its field; messages for fields without a widget go to the banner."""
        loose = []
        for path, row in self._fields.items():
            row.set_error(errors.get(path))
        for path, message in errors.items():
            if path not in self._fields:
                loose.append(f"{path}: {message}" if path else message)
        self.set_banner("\n".join(loose))

    def errors(self) -> dict[str, str]:
        """The messages shown now, by field."""
        return {p: r.error.text() for p, r in self._fields.items() if not r.error.isHidden()}

    def set_banner(self, text: str) -> None:
        pal = self.banner.palette()
        pal.setColor(QPalette.ColorRole.WindowText, error_color(self.palette()))
        self.banner.setPalette(pal)
        self.banner.setText("\u26a0 " + text if text else "")
        self.banner.setVisible(bool(text))

    # -- workspace lists -------------------------------------------------------------------------
    def set_workspace_lists(self, workspace: Optional[Path], datasets: list, snapshots: dict[str, list],
                            models: list[tuple[str, str]]) -> None:
        """Fill the drop-downs: ``datasets`` (``DatasetInfo``), ``snapshots`` by dataset name
        (``SnapshotInfo``), ``models`` as ``[(label, reference)]``."""
        self._snapshots = snapshots
        kinds = self.stage_def.dataset_kinds
        combo = self._fields[self.stage_def.dataset_field].editor
        current = self.value(self.stage_def.dataset_field)
        with QSignalBlocker(combo):
            combo.clear()
            for info in datasets:
                if info.kind in kinds:
                    combo.addItem(f"{info.name}", info.name)
                    combo.setItemData(combo.count() - 1, f"{info.kind}, {info.style}, {info.rows:,} records "
                                      f"({info.train:,} train, {info.validation:,} validation)",
                                      Qt.ItemDataRole.ToolTipRole)
            index = combo.findData(current)
            if index >= 0:
                combo.setCurrentIndex(index)
            else:
                combo.setEditText(current or "")
        for path in MODEL_FIELDS:
            if path in self._fields:
                editor = self._fields[path].editor
                editor.workspace = workspace
                editor.set_choices(models)
        self._refresh_snapshots()

    def _on_dataset_changed(self, _text: str) -> None:
        self._refresh_snapshots()
        self.changed.emit()

    def _refresh_snapshots(self) -> None:
        snaps = getattr(self, "_snapshots", {}).get(self.value(self.stage_def.dataset_field) or "", [])
        combo = self._fields[self.stage_def.snapshot_field].editor
        current = combo.currentText().strip()
        with QSignalBlocker(combo):
            combo.clear()
            combo.addItem("", None)
            combo.setItemData(0, "freeze the dataset's current records when the run starts",
                              Qt.ItemDataRole.ToolTipRole)
            for snap in reversed(snaps):  # newest first
                note = f" \u2014 {snap.note}" if snap.note else ""
                combo.addItem(f"{snap.hash[:12]} ({snap.rows:,} records){note}", snap.hash[:12])
            index = combo.findData(current) if current else 0
            if index >= 0:
                combo.setCurrentIndex(index)
            else:
                combo.setEditText(current)

