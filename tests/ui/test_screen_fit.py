"""Nothing widens or heightens a window past a 1280×720 screen: the Runs page's run header (a long
run name with its disk use) and the import wizard (it opened 1040×720, its buttons below the edge)."""

from __future__ import annotations

from PySide6.QtCore import QSize

from ui.common.screen_fit import FRAME_ALLOWANCE
from ui.datasets.import_wizard import ImportWizard
from ui.training.runs import RunsPanel
from workbench.store.workspace import Workspace


def test_a_long_run_header_does_not_widen_the_runs_page(qtbot):
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    qtbot.waitExposed(panel)
    try:
        panel.run_label.setText("  \u00b7  ".join(["sft-qwen2.5-1.5b-instruct-helpfulness-v2-b7e6", "completed",
                                                   "step 12,750", "14.36 GiB on disk (3 checkpoints)"] * 3))
        qtbot.wait(50)
        assert panel.minimumSizeHint().width() < 1000, panel.minimumSizeHint()
        assert panel.width() == 900
        assert "14.36 GiB" in panel.run_label.text()  # the full text is still what the label says
    finally:
        panel.shutdown()


def test_the_import_wizard_opens_within_the_screen(qtbot, tmp_path):
    Workspace.init(tmp_path / "ws").close()
    wizard = ImportWizard(tmp_path / "ws")
    qtbot.addWidget(wizard)
    avail = wizard.screen().availableGeometry().size() - FRAME_ALLOWANCE
    assert wizard.width() <= max(avail.width(), wizard.minimumSizeHint().width())
    assert wizard.height() <= max(avail.height(), wizard.minimumSizeHint().height())
    assert wizard.size() == QSize(1040, 720).boundedTo(avail).expandedTo(wizard.minimumSize())
