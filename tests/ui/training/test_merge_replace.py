"""Merging into a folder that already holds a model asks first ("Replace" / "Keep it").

Before, the Train page's merge always passed ``overwrite: true``, so merging again
replaced the earlier merged model without a word. A real page, a real supervisor:
the merge jobs it starts are real (their source is a bare folder, so they fail
fast; what matters here is the config the page gave them).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from workbench.store.workspace import Workspace
from workbench.train.outputs import RunOutput

from .conftest import JOB_ENV

RUN = "20260101-000000-sft-aa01"


@pytest.fixture
def page(qtbot, tmp_path, monkeypatch):
    from ui.training.panel import TrainingPanel

    for key, value in JOB_ENV.items():
        monkeypatch.setenv(key, value)
    root = tmp_path / "ws"
    Workspace.init(root).close()
    checkpoint = root / "runs" / RUN / "checkpoints" / "step-4"
    checkpoint.mkdir(parents=True)
    panel = TrainingPanel(check_delay_ms=20)
    qtbot.addWidget(panel)
    panel.show()
    panel.set_workspace(root)
    out = RunOutput(RUN, "sft", checkpoint, 4, "adapter", adapter_folder=checkpoint, base_model="./models/tiny")
    yield panel, root, out
    panel.shutdown()


def _merge_into(panel, out: RunOutput, target: Path) -> None:
    """What the merge's "where to" dialog does once the user picked ``target`` (the dialog itself
    is driven in test_panel_jobs.py, over a real trained run)."""
    panel.merge_dialog = None
    panel._on_merge_target_selected(out, target)


def _merge_configs(root: Path) -> list[dict]:
    out = []
    for config in sorted((root / "runs").glob("*-merge-*/config.yaml")):
        out.append(yaml.safe_load(config.read_text(encoding="utf-8")))
    return out


def test_merging_into_an_earlier_merge_asks_and_keeps_it_unless_told_to_replace(qtbot, page):
    panel, root, out = page
    earlier = root / "models" / f"{RUN}-merged"
    earlier.mkdir(parents=True)
    (earlier / "model.safetensors").write_bytes(b"the earlier merge")

    _merge_into(panel, out, earlier)
    qtbot.waitUntil(lambda: isinstance(panel.replace_box, QMessageBox) and panel.replace_box.isVisible(),
                    timeout=5000)
    box = panel.replace_box
    assert str(earlier) in box.text()
    assert box.textFormat() == Qt.TextFormat.PlainText   # the path is user data: shown literally
    assert sorted(b.text() for b in box.buttons()) == ["Keep it", "Replace"] and box.defaultButton().text() == "Keep it"
    next(b for b in box.buttons() if b.text() == "Keep it").click()
    qtbot.waitUntil(lambda: panel.replace_box is None, timeout=5000)
    qtbot.wait(300)
    assert _merge_configs(root) == []          # no job: nothing replaced
    assert "Kept" in panel.after_run.merge_status.text()
    assert (earlier / "model.safetensors").read_bytes() == b"the earlier merge"

    _merge_into(panel, out, earlier)
    qtbot.waitUntil(lambda: panel.replace_box is not None and panel.replace_box.isVisible(), timeout=5000)
    next(b for b in panel.replace_box.buttons() if b.text() == "Replace").click()
    qtbot.waitUntil(lambda: len(_merge_configs(root)) == 1, timeout=10_000)
    assert _merge_configs(root)[0]["overwrite"] is True


def test_merging_into_a_new_folder_asks_nothing_and_never_overwrites(qtbot, page):
    panel, root, out = page
    _merge_into(panel, out, root / "models" / "fresh-merge")
    qtbot.waitUntil(lambda: len(_merge_configs(root)) == 1, timeout=10_000)
    assert panel.replace_box is None
    assert _merge_configs(root)[0]["overwrite"] is False
