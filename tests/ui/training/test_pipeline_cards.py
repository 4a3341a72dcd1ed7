"""A stage card describes the run whose status it shows: after applying a preset, the SFT card showed
the preset's model beside "completed · step 750" of a run trained from another model."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import Qt

from ui.training.panel import TrainingPanel
from workbench.store.workspace import Workspace

DATA = Path(__file__).resolve().parent / "data"


def test_the_card_keeps_its_runs_model_when_a_preset_changes_the_form(qtbot, tmp_path):
    root = tmp_path / "ws"
    Workspace.init(root).close()
    run_id = (DATA / "sft_demo" / "RUN_ID").read_text().strip()
    shutil.copytree(DATA / "sft_demo", root / "runs" / run_id, ignore=shutil.ignore_patterns("RUN_ID"))
    panel = TrainingPanel(check_delay_ms=20)
    qtbot.addWidget(panel)
    panel.resize(1280, 720)
    panel.show()
    panel.set_workspace(root)
    try:
        card = panel.pipeline.cards["sft"]
        qtbot.waitUntil(lambda: "completed \u00b7 step 750" in card.status.text(), timeout=10000)
        assert "Model: ./models/demo-base" in card.inputs.text()  # what the run was trained from
        combo = panel.preset_combo
        names = [combo.itemData(i) for i in range(combo.count())]
        combo.setFocus()
        for _ in range(names.index("qwen2.5-1.5b-12gb")):
            qtbot.keyClick(combo, Qt.Key.Key_Down)
        assert panel.form.values()["model"]["ref"] == "Qwen/Qwen2.5-1.5B-Instruct"
        assert "Model: ./models/demo-base" in card.inputs.text() and "Qwen" not in card.inputs.text()
        # A stage without runs shows what its form would train.
        reward = panel.pipeline.cards["reward"]
        assert reward.inputs.text().startswith("Model:")
    finally:
        panel.shutdown()
