"""The Train page without jobs: forms generated from each stage's config dataclass, inline
validation that refuses Start, presets, the live VRAM estimate and its GPU warning, YAML
save/load through the file dialog. Driven through the real widgets (clicks and keys)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QGroupBox, QLineEdit, QSpinBox

from ui.training.config_form import ModelRefEdit, base_type
from ui.training.panel import TrainingPanel
from ui.training.stages import STAGES, field_specs
from workbench.store import datasets as R
from workbench.store.records import Record
from workbench.store.workspace import Workspace
from workbench.train import config as C
from workbench.train import ppo_config as P
from workbench.train import vram as V

HUB = "Qwen/Qwen2.5-0.5B-Instruct"


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A workspace with a chat SFT dataset, preference pairs and prompts (no model needed: the
    forms use hub ids, which are checked for syntax only)."""
    root = tmp_path_factory.mktemp("train_forms") / "ws"
    with Workspace.init(root) as w, w.transaction() as c:
        d = R.create_dataset(c, "demos", "sft", "conversational")
        for i in range(12):
            R.add_record(c, d, Record(messages=[{"role": "user", "content": f"Tell me about topic {i}."},
                                                {"role": "assistant", "content": "bright calm"}],
                                      split="validation" if i % 4 == 0 else "train"))
        d = R.create_dataset(c, "pairs", "preference", "standard")
        for i in range(8):
            R.add_record(c, d, Record(prompt=f"Tell me about {i}.", chosen="good", rejected="bad"))
        d = R.create_dataset(c, "prompts", "prompts", "standard")
        for i in range(4):
            R.add_record(c, d, Record(prompt=f"Tell me about {i}."))
    return root


@pytest.fixture
def panel(qtbot, ws):
    p = TrainingPanel(check_delay_ms=20)
    qtbot.addWidget(p)
    p.resize(1280, 800)
    p.show()
    p.set_workspace(ws)
    # The dataset list arrives from a worker thread.
    qtbot.waitUntil(lambda: p.form.editor("data.dataset").count() > 0, timeout=10000)
    yield p
    p.shutdown()


def type_into(qtbot, widget, text: str) -> None:
    """Replace a field's text as a user would: select all, type, Enter."""
    target = widget.combo.lineEdit() if isinstance(widget, ModelRefEdit) else \
        widget.lineEdit() if isinstance(widget, QComboBox) else widget
    target.setFocus()
    qtbot.keyClick(target, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(target, text)
    qtbot.keyClick(target, Qt.Key.Key_Return)


def leaf_paths(cls) -> list[str]:
    """Dotted paths of every field of a config dataclass (sections expanded)."""
    out = []
    instance = cls()
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            out += [f"{f.name}.{g.name}" for g in dataclasses.fields(value)]
        else:
            out.append(f.name)
    return out


def click_card(qtbot, panel, stage: str) -> None:
    qtbot.mouseClick(panel.pipeline.cards[stage], Qt.MouseButton.LeftButton)
    assert panel.stage == stage and panel.form_stack.currentWidget() is panel.forms[stage]


def wait_checked(qtbot, panel, condition) -> None:
    qtbot.waitUntil(lambda: panel.last_check is not None and condition(), timeout=10000)


def test_each_stage_form_is_generated_from_its_dataclass(qtbot, panel):
    expected = {bool: QCheckBox, int: QSpinBox, float: QDoubleSpinBox}
    for stage in ("sft", "reward", "ppo", "dpo"):
        click_card(qtbot, panel, stage)
        form, sdef = panel.form, STAGES[stage]
        specs = field_specs(stage)
        assert form.paths == list(specs)
        # Every field of the dataclass is in the form, except the few documented as hidden.
        assert set(leaf_paths(sdef.config_class)) - set(form.paths) == set(sdef.hidden)
        cls = sdef.config_class
        for path, spec in specs.items():
            editor = form.editor(path)
            assert editor.toolTip() == spec["help"] and spec["help"]
            if path in ("model.ref", "policy_model", "reward_model"):
                assert isinstance(editor, ModelRefEdit)
            elif "choices" in spec or path in (sdef.dataset_field, sdef.snapshot_field) or "suggestions" in spec:
                assert isinstance(editor, QComboBox)
            elif base_type(spec["type"])[0] in expected:
                assert isinstance(editor, expected[base_type(spec["type"])[0]]), path
            else:
                assert isinstance(editor, QLineEdit), path
        # A fresh form holds the dataclass defaults.
        values = form.values()
        defaults = dataclasses.asdict(cls())
        for key in ("lora_r", "batch_size") if stage == "ppo" else ("training",):
            assert values[key] == defaults[key]
    # Datasets are listed from the store, by the kind the stage trains on.
    click_card(qtbot, panel, "reward")
    combo = panel.form.editor("data.dataset")
    assert [combo.itemText(i) for i in range(combo.count())] == ["pairs"]
    click_card(qtbot, panel, "ppo")
    combo = panel.form.editor("prompt_dataset")
    assert {combo.itemText(i) for i in range(combo.count())} == {"demos", "pairs", "prompts"}


def test_a_bad_value_is_shown_on_its_field_and_start_is_refused(qtbot, panel, ws):
    form = panel.form
    type_into(qtbot, form.editor("model.ref"), HUB)
    type_into(qtbot, form.editor("data.dataset"), "demos")
    type_into(qtbot, form.editor("training.learning_rate"), "0")
    type_into(qtbot, form.editor("training.warmup_ratio"), "1")
    wait_checked(qtbot, panel, lambda: "training.learning_rate" in form.errors())
    errors = form.errors()
    assert "must be a positive number" in errors["training.learning_rate"]
    assert "must be in [0, 1)" in errors["training.warmup_ratio"]
    assert not form.field("training.learning_rate").error.isHidden()
    assert form.field("training.batch_size").error.isHidden()

    qtbot.mouseClick(panel.run_control.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Not started" in panel.run_control.status_label.text(), timeout=10000)
    assert "2 problems" in panel.run_control.status_label.text()
    assert not [p for p in (ws / "runs").iterdir() if not p.name.startswith(".")]

    # Fixed values clear the messages; a dataset of the wrong kind is named on the dataset field.
    type_into(qtbot, form.editor("training.learning_rate"), "2e-4")
    type_into(qtbot, form.editor("training.warmup_ratio"), "0.05")
    type_into(qtbot, form.editor("data.dataset"), "pairs")
    wait_checked(qtbot, panel, lambda: "data.dataset" in form.errors())
    assert "holds preference records" in form.errors()["data.dataset"]
    assert set(form.errors()) == {"data.dataset"}
    assert form.values()["training"]["learning_rate"] == 2e-4

    # PPO: a cross-field rule lands on the field it names.
    click_card(qtbot, panel, "ppo")
    ppo = panel.form
    type_into(qtbot, ppo.editor("policy_model"), HUB)
    type_into(qtbot, ppo.editor("reward_model"), "nobody/reward")
    type_into(qtbot, ppo.editor("prompt_dataset"), "prompts")
    type_into(qtbot, ppo.editor("mini_batch_size"), "3")
    wait_checked(qtbot, panel, lambda: "mini_batch_size" in ppo.errors())
    assert "must divide batch_size" in ppo.errors()["mini_batch_size"]
    qtbot.mouseClick(panel.run_control.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Not started" in panel.run_control.status_label.text(), timeout=10000)
    assert not [p for p in (ws / "runs").iterdir() if not p.name.startswith(".")]


def test_empty_required_fields_are_named_only_once_start_is_tried(qtbot, panel):
    click_card(qtbot, panel, "dpo")
    form = panel.form
    wait_checked(qtbot, panel, lambda: panel.last_check.errors.keys() >= {"model.ref", "data.dataset"})
    assert form.errors() == {}  # a fresh form is not a wall of red
    qtbot.mouseClick(panel.run_control.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: set(form.errors()) == {"model.ref", "data.dataset"}, timeout=10000)


def test_presets_fill_the_form_for_the_stage(qtbot, panel):
    form = panel.form
    combo = panel.preset_combo
    names = [combo.itemData(i) for i in range(combo.count())]
    assert names[0] is None and set(names[1:]) == set(C.list_presets())
    # Keyboard on the closed combo: the next preset, as a user would pick it.
    target = names.index("qwen2.5-1.5b-12gb")
    combo.setFocus()
    for _ in range(target):
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    values = form.values()
    assert values["model"]["ref"] == "Qwen/Qwen2.5-1.5B-Instruct" and values["model"]["gradient_checkpointing"]
    assert values["training"]["batch_size"] == 2 and values["training"]["gradient_accumulation_steps"] == 8
    assert values["training"]["lr_scheduler"] == "cosine" and values["training"]["num_epochs"] == 2
    assert form.editor("training.batch_size").value() == 2
    assert combo.currentIndex() == target and "applied" in panel.run_control.status_label.text()

    # PPO: only presets with a ppo stage; the policy filled from the pipeline is kept.
    click_card(qtbot, panel, "ppo")
    ppo = panel.form
    type_into(qtbot, ppo.editor("policy_model"), "./runs/x/checkpoints/step-6/merged")
    names = [panel.preset_combo.itemData(i) for i in range(panel.preset_combo.count())]
    assert "tiny-cpu" in names and "qwen2.5-7b-qlora-24gb" in names  # every preset has a ppo stage
    panel.apply_preset("qwen2.5-7b-qlora-24gb")
    assert ppo.value("policy_model") == "./runs/x/checkpoints/step-6/merged"
    assert ppo.value("quantization") == "4bit" and ppo.value("reward_quantization") == "4bit"
    assert ppo.value("mini_batch_size") == P.ppo_preset_data("qwen2.5-7b-qlora-24gb")["mini_batch_size"]


def _write_probe(ws: Path, name: str, gib: float) -> None:
    folder = ws / "runs" / f"20260101-000000-probe-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "probe.json").write_text(json.dumps({
        "gpu_name": "NVIDIA RTX A2000", "total_memory": int(gib * V.GIB), "free_memory": int(gib * V.GIB),
        "bitsandbytes": {"importable": True}}))


def test_the_vram_estimate_follows_the_form_and_warns_for_a_small_gpu(qtbot, panel, ws, tmp_path):
    form, view = panel.form, panel.vram
    type_into(qtbot, form.editor("model.ref"), "Qwen/Qwen2.5-7B-Instruct")
    qtbot.waitUntil(lambda: view.estimate is not None and view.estimate.shape is not None
                    and view.estimate.shape.hidden_size == 3584, timeout=10000)
    assert view.fit.level == "unknown" and "not detected" in view.gpu_label.text()
    weights_bf16 = view.estimate.part("weights")
    assert view.part_text("weights") == V.format_bytes(weights_bf16)

    # 4-bit: the weights shrink (keyboard on the quantization combo: none -> 4bit).
    quant = form.editor("model.quantization")
    quant.setFocus()
    qtbot.keyClick(quant, Qt.Key.Key_Down)
    qtbot.waitUntil(lambda: view.estimate.part("weights") < weights_bf16 / 2.5, timeout=10000)
    assert view.part_text("weights") == V.format_bytes(view.estimate.part("weights"))

    # A bigger batch: more activations.
    acts = view.estimate.part("activations")
    spin = form.editor("training.batch_size")
    spin.setFocus()
    qtbot.keyClick(spin, Qt.Key.Key_Up)
    qtbot.waitUntil(lambda: view.estimate.part("activations") > acts, timeout=10000)
    assert view.estimate.part("activations") == acts * 5 // 4  # batch 4 -> 5

    # A probed 4 GiB GPU: the estimate does not fit, and the view says so.
    _write_probe(ws, "aaaa", 4)
    type_into(qtbot, form.editor("training.max_length"), "2048")
    qtbot.waitUntil(lambda: view.fit.level == "over", timeout=10000)
    assert "will not fit" in view.fit_label.text() and "NVIDIA RTX A2000" in view.gpu_label.text()
    # Back to a small model: it fits.
    type_into(qtbot, form.editor("model.ref"), HUB)
    type_into(qtbot, form.editor("training.max_length"), "128")
    qtbot.waitUntil(lambda: view.fit.level == "ok", timeout=10000)
    # A machine without a CUDA GPU says so.
    probe = ws / "runs" / "20260101-000000-probe-aaaa" / "probe.json"
    probe.write_text(json.dumps({"gpu_name": None, "total_memory": None, "free_memory": None}))
    type_into(qtbot, form.editor("training.max_length"), "512")
    qtbot.waitUntil(lambda: view.fit.level == "cpu", timeout=10000)
    assert "no CUDA GPU" in view.fit_label.text()
    probe.unlink()
    probe.parent.rmdir()


def _dialog_choose(qtbot, panel, button, path: Path) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    dialog = panel.file_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.selectFile(str(path))
    dialog.accept()


def test_yaml_save_and_load_through_the_file_dialog(qtbot, panel, tmp_path):
    form = panel.form
    type_into(qtbot, form.editor("model.ref"), HUB)
    type_into(qtbot, form.editor("data.dataset"), "demos")
    type_into(qtbot, form.editor("training.max_steps"), "25")
    path = tmp_path / "sft.yaml"
    _dialog_choose(qtbot, panel, panel.save_button, path)
    saved = yaml.safe_load(path.read_text())
    assert list(saved)[0] == "stage" and saved["stage"] == "sft"
    assert saved["training"]["max_steps"] == 25 and saved["model"]["ref"] == HUB
    assert C.load_config(saved).training.max_steps == 25  # what `rlhf-workbench train` reads

    type_into(qtbot, form.editor("training.max_steps"), "7")
    click_card(qtbot, panel, "ppo")
    _dialog_choose(qtbot, panel, panel.load_button, path)
    assert panel.stage == "sft" and form.editor("training.max_steps").value() == 25

    # A broken file: the form says which line, nothing changes.
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: sft\ntraining: {max_steps: 3\nmodel: x\n")
    _dialog_choose(qtbot, panel, panel.load_button, bad)
    assert not form.banner.isHidden() and "bad.yaml: not valid YAML: line" in form.banner.text()
    assert form.editor("training.max_steps").value() == 25
    # An unknown key is named in the banner (it has no field to sit under).
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump({**saved, "training": {**saved["training"], "learning_rte": 1}}))
    _dialog_choose(qtbot, panel, panel.load_button, typo)
    qtbot.waitUntil(lambda: "training.learning_rte" in form.banner.text(), timeout=10000)
    assert "did you mean 'learning_rate'" in form.banner.text()
    # A value out of range in the file is shown as it is and named under its field (not clamped).
    zero = tmp_path / "zero.yaml"
    zero.write_text(yaml.safe_dump({**saved, "training": {**saved["training"], "batch_size": 0}}))
    _dialog_choose(qtbot, panel, panel.load_button, zero)
    qtbot.waitUntil(lambda: "training.batch_size" in form.errors(), timeout=10000)
    assert form.editor("training.batch_size").value() == 0 and "at least 1" in form.errors()["training.batch_size"]


def test_forms_stack_their_columns_when_narrow_and_never_scroll_sideways(qtbot, panel):
    """At the window's default width the forms become one column (scrolling down), wide they
    show two; every stage's form follows, not only the one shown."""
    scroll = panel._form_scroll
    panel.resize(1020, 800)
    qtbot.waitUntil(lambda: not any(f.two_columns for f in panel.forms.values()))
    qtbot.waitUntil(lambda: not scroll.horizontalScrollBar().isVisible())
    assert panel.form_stack.minimumSizeHint().width() <= scroll.viewport().width()
    # Typing still reaches a field that moved into the first column.
    edit = panel.form.editor("training.learning_rate")
    assert edit.isVisible()

    panel.resize(1700, 800)
    qtbot.waitUntil(lambda: all(f.two_columns for f in panel.forms.values()))
    assert not scroll.horizontalScrollBar().isVisible()
    sections = {b.title(): b for b in panel.form.findChildren(QGroupBox)}
    assert sections["Training"].x() > sections["Model"].x()  # side by side again


def test_the_no_workspace_status_goes_once_a_workspace_opens(qtbot, ws):
    p = TrainingPanel(check_delay_ms=20)
    qtbot.addWidget(p)
    p.show()
    assert p.run_control.status_label.text() == "Open a workspace to train."
    p.set_workspace(ws)
    qtbot.waitUntil(lambda: p.run_control.status_label.text() != "Open a workspace to train.")
    p.shutdown()


def test_the_page_imports_no_training_stack_or_plots():
    """The GUI process never imports torch & co., and the Train page does not pay for pyqtgraph."""
    import subprocess
    import sys

    code = ("import sys, ui.training.panel; print(sorted(m for m in ('torch', 'transformers', 'trl', 'peft', "
            "'datasets', 'bitsandbytes', 'pyqtgraph') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
