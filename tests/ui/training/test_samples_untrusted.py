"""The Runs page's samples table quotes prompts (from imported datasets) and model output: its
tooltips must show that text literally, never render it as HTML (an <img> would be read)."""

from __future__ import annotations

from PySide6.QtGui import Qt as GuiQt  # QtGui's Qt namespace holds mightBeRichText

from ui.training.samples_view import SamplesView
from workbench.jobs.events import SamplesEvent


def test_sample_tooltips_are_plain_text(qtbot, tmp_path):
    view = SamplesView()
    qtbot.addWidget(view)
    prompt, response = "<img src='/dev/zero'> Erzähl mir etwas", f"<img src='{tmp_path}/x.png'><b>hi</b>"
    view.set_samples([SamplesEvent(step=3, rows=[{"prompt": prompt, "response": response, "score": 1.5}])])
    tips = [view.table.item(0, c).toolTip() for c in (0, 1)]
    assert [t.replace("\u200b", "") for t in tips] == [prompt, response]
    assert not any(GuiQt.mightBeRichText(t) for t in tips)
