"""Generate candidates for the queue, and compare two models blind: the two job dialogs.

Both build a ``generate`` job config (:class:`~workbench.generate.config.GenerateConfig`),
check it and the model references before anything starts (cheap: no
torch), and hand it to the panel with ``start_requested``; the panel starts
the job and either closes the dialog or calls :meth:`show_error`, so a bad
value is reported on the dialog that holds it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout,
                               QWidget)

from workbench.errors import WorkbenchError
from workbench.generate.config import GenerateConfig
from workbench.generate.models import list_run_models, resolve_model
from workbench.store.queue import PromptSource

from .sources import PromptSourceCombo


class ModelPicker(QWidget):
    """An editable list of the workspace's models and checkpoints, plus Browse… for a folder.

    :meth:`ref` is the chosen path (relative to the workspace for listed
    ones) or whatever was typed: a hub id or a folder.
    """

    def __init__(self, root: Optional[Path], model: Optional[str] = None, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.root = root
        self.combo = QComboBox()
        self.combo.setEditable(True)
        self.combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.combo.setMinimumContentsLength(32)
        self.combo.lineEdit().setPlaceholderText("hub id (owner/name), model folder, or run checkpoint")
        for label, path in (list_run_models(root) if root is not None else []):
            self.combo.addItem(label, path)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.combo, 1)
        lay.addWidget(browse)
        if model:
            self.set_ref(model)

    def set_ref(self, ref: str) -> None:
        for i in range(self.combo.count()):
            if ref in (self.combo.itemData(i), self.combo.itemText(i)) or (
                    self.root is not None and Path(ref).is_absolute()
                    and Path(ref).resolve() == (self.root / self.combo.itemData(i)).resolve()):
                self.combo.setCurrentIndex(i)
                return
        self.combo.setEditText(ref)

    def ref(self) -> str:
        i = self.combo.currentIndex()
        text = self.combo.currentText().strip()
        if i >= 0 and text == self.combo.itemText(i):
            return self.combo.itemData(i)
        return text

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model or checkpoint folder",
                                                  str(self.root) if self.root else "")
        if folder:
            self.combo.setEditText(folder)


class SamplingForm(QWidget):
    """Sampling settings: responses per prompt, temperature, top-p, max new tokens, seed, prompt limit."""

    def __init__(self, *, with_n: bool = True, limit: int = 0, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        help_ = {f: GenerateConfig.__dataclass_fields__[f].metadata["help"] for f in
                 ("n", "temperature", "top_p", "max_new_tokens", "seed", "limit")}
        self.n = QSpinBox()
        self.n.setRange(1, 16)
        self.n.setValue(4)
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.05)
        self.temperature.setValue(0.8)
        self.top_p = QDoubleSpinBox()
        self.top_p.setRange(0.05, 1.0)
        self.top_p.setSingleStep(0.05)
        self.top_p.setValue(0.95)
        self.max_new_tokens = QSpinBox()
        self.max_new_tokens.setRange(1, 8192)
        self.max_new_tokens.setValue(256)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.limit = QSpinBox()
        self.limit.setRange(0, 10_000_000)
        self.limit.setSpecialValueText("all")
        self.limit.setValue(limit)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        rows = [("Responses per prompt", self.n, "n")] if with_n else []
        rows += [("Temperature", self.temperature, "temperature"), ("Top-p", self.top_p, "top_p"),
                 ("Max new tokens", self.max_new_tokens, "max_new_tokens"), ("Seed", self.seed, "seed"),
                 ("Distinct prompts (at most)", self.limit, "limit")]
        for label, widget, name in rows:
            widget.setToolTip(help_[name])
            widget.setObjectName(name)
            form.addRow(label, widget)
        self.with_n = with_n

    def values(self) -> dict[str, Any]:
        return {"n": self.n.value() if self.with_n else 1, "temperature": round(self.temperature.value(), 4),
                "top_p": round(self.top_p.value(), 4), "max_new_tokens": self.max_new_tokens.value(),
                "seed": self.seed.value(), "limit": self.limit.value()}


def source_config(source: PromptSource) -> dict[str, Any]:
    """The generate-config keys of a prompt source."""
    return {"prompt_dataset": source.name} if source.kind == "dataset" else {"prompt_tag": source.name}


class _JobDialog(QDialog):
    start_requested = Signal(dict, object)

    def __init__(self, parent: Optional[QWidget]) -> None:
        super().__init__(parent)
        self.error = QLabel()
        self.error.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.setVisible(False)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.start_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.buttons.accepted.connect(self._on_start_clicked)
        self.buttons.rejected.connect(self.reject)

    def show_error(self, message: str) -> None:
        self.error.setText("\u26a0 " + message)
        self.error.setVisible(True)

    def _check(self, config: dict, root: Optional[Path]) -> Optional[GenerateConfig]:
        try:
            cfg = GenerateConfig.from_dict(config)
            for _arm, ref in cfg.arms:
                resolve_model(ref, root)
        except WorkbenchError as exc:
            self.show_error(str(exc))
            return None
        return cfg

    def _on_start_clicked(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class GenerationDialog(_JobDialog):
    """Sample candidates from one model into the queue.

    ``start_requested(config, rank_source)``: ``rank_source`` is the
    :class:`PromptSource` to rank them in, or ``None`` to keep the queue.
    """

    def __init__(self, root: Optional[Path], conn: Optional[sqlite3.Connection], *, model: Optional[str] = None,
                 parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Generate candidates")
        self.setObjectName("generationDialog")
        self.root = root
        self.model = ModelPicker(root, model)
        self.source = PromptSourceCombo(conn, include_all=False)
        self.source.select_default()
        self.sampling = SamplingForm()
        self.rank_now = QCheckBox("Rank these candidates as they arrive (switch the queue)")
        self.rank_now.setChecked(True)
        self.start_button.setText("Start generating")
        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("Prompts", self.source)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.sampling)
        lay.addWidget(self.rank_now)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)
        self.resize(620, self.sizeHint().height())

    def config(self) -> dict[str, Any]:
        source = self.source.source()
        cfg: dict[str, Any] = {"model": self.model.ref(), **self.sampling.values()}
        if source is not None:
            cfg.update(source_config(source))
        return cfg

    def _on_start_clicked(self) -> None:
        config = self.config()
        if self._check(config, self.root) is None:
            return
        self.start_requested.emit(config, self.source.source() if self.rank_now.isChecked() else None)


class ComparisonDialog(_JobDialog):
    """A blind before/after comparison: both models answer the same prompts with the same seeds,
    and a comparison queue shows one response of each, sides drawn at random.

    ``start_requested(config, annotator)``.
    """

    def __init__(self, root: Optional[Path], conn: Optional[sqlite3.Connection], *, model_a: Optional[str] = None,
                 model_b: Optional[str] = None, annotator: str = "", parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare two models blind")
        self.setObjectName("comparisonDialog")
        self.root = root
        self.model_a = ModelPicker(root, model_a)
        self.model_b = ModelPicker(root, model_b)
        self.source = PromptSourceCombo(conn, include_all=False)
        self.source.select_default()
        self.sampling = SamplingForm(with_n=False, limit=100)
        self.annotator = QLineEdit(annotator)
        self.start_button.setText("Start comparison")
        note = QLabel("Each model answers every prompt once with the same seed; you see one answer of each, "
                      "sides at random, models hidden. The result is model B's win rate with a 95% interval.")
        note.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Model A (before)", self.model_a)
        form.addRow("Model B (after)", self.model_b)
        form.addRow("Prompts", self.source)
        form.addRow("Annotator", self.annotator)
        lay = QVBoxLayout(self)
        lay.addWidget(note)
        lay.addLayout(form)
        lay.addWidget(self.sampling)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)
        self.resize(640, self.sizeHint().height())

    def config(self) -> dict[str, Any]:
        source = self.source.source()
        cfg: dict[str, Any] = {"model": self.model_a.ref(), "model_b": self.model_b.ref(), **self.sampling.values()}
        if source is not None:
            cfg.update(source_config(source))
        return cfg

    def _on_start_clicked(self) -> None:
        config = self.config()
        if not self.annotator.text().strip():
            self.show_error("annotator: give your name (it is kept with every decision)")
            return
        if config["model"] == config["model_b"]:
            self.show_error("model_b: choose a different model than model A")
            return
        if self._check(config, self.root) is None:
            return
        self.start_requested.emit(config, self.annotator.text().strip())
