"""ElidedLabel: a long line asks for little as its minimum, paints elided, and tooltips the full text."""

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from ui.common.elided_label import ElidedLabel

LONG = "Sampling ./runs/20261203-113525-sft-b84c/checkpoints/step-60 and ./runs/20261203-121717-ppo-9f3e/" \
       "checkpoints/step-120 \u2014 62% \u00b7 38 candidates so far"


def test_a_long_line_does_not_widen_its_window(qtbot):
    box = QWidget()
    qtbot.addWidget(box)
    label = ElidedLabel(mode=Qt.TextElideMode.ElideMiddle)
    QHBoxLayout(box).addWidget(label)
    box.resize(300, 40)
    box.show()
    qtbot.waitExposed(box)
    plain = QLabel(LONG)
    assert plain.minimumSizeHint().width() > 600  # what a QLabel asks for: the whole line
    label.setText(LONG)
    qtbot.wait(10)
    assert box.minimumSizeHint().width() < 100 and box.width() == 300
    assert label.text() == LONG and label.is_elided()
    shown = label.shown_text()
    assert "\u2026" in shown and shown.startswith("Sampling") and shown.endswith("so far")
    assert label.toolTip() == LONG
    assert label.sizeHint().width() >= plain.sizeHint().width() - 4  # preferred: the whole line


def test_short_text_is_shown_whole_with_the_callers_tooltip(qtbot):
    label = ElidedLabel("1 done \u00b7 5 left")
    qtbot.addWidget(label)
    label.setToolTip("queue progress")
    label.resize(label.sizeHint())
    label.show()
    qtbot.waitExposed(label)
    assert not label.is_elided() and label.shown_text() == "1 done \u00b7 5 left"
    assert label.toolTip() == "queue progress"
    label.resize(30, label.height())
    assert label.is_elided() and label.toolTip() == "queue progress\n\n1 done \u00b7 5 left"
    label.clear()
    assert label.text() == "" and label.toolTip() == ""
