"""The mouse wheel over a form field scrolls the form; it changes the field only once the field has
the focus (before: scrolling the PPO form over GAE lambda turned 0.95 into 0.15, the form stayed)."""

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QComboBox, QDoubleSpinBox

from ui.training.panel import TrainingPanel


def wheel(widget, notches: int = -3) -> None:
    """A real wheel event (down by ``notches`` clicks) at the middle of ``widget``, delivered the way
    the window system's are: through QApplication, so an ignored event reaches the parents."""
    local = QPointF(widget.rect().center())
    glob = QPointF(widget.mapToGlobal(widget.rect().center()))
    for _ in range(abs(notches)):
        event = QWheelEvent(local, glob, QPoint(0, 0), QPoint(0, 120 if notches > 0 else -120),
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                            False)
        QApplication.sendEvent(widget, event)


def _ppo_panel(qtbot):
    panel = TrainingPanel(check_delay_ms=20)
    qtbot.addWidget(panel)
    panel.resize(1000, 600)  # short: the PPO form scrolls
    panel.show()
    qtbot.waitExposed(panel)
    panel.select_stage("ppo")
    qtbot.wait(20)
    return panel


def test_the_wheel_over_an_unfocused_spin_box_scrolls_the_form(qtbot):
    panel = _ppo_panel(qtbot)
    try:
        lam = panel.forms["ppo"].editor("ppo.lam") if "ppo.lam" in panel.forms["ppo"].paths \
            else panel.forms["ppo"].editor("lam")
        assert isinstance(lam, QDoubleSpinBox)
        panel._form_scroll.ensureWidgetVisible(lam)
        qtbot.wait(20)
        bar = panel._form_scroll.verticalScrollBar()
        assert bar.maximum() > 0
        before, top = lam.value(), bar.value()
        assert not lam.hasFocus()
        down = top < bar.maximum()
        wheel(lam, -3 if down else 3)
        assert lam.value() == before                 # the field keeps its value
        assert (bar.value() > top) if down else (bar.value() < top)  # and the form scrolled instead
        assert lam.focusPolicy() == Qt.FocusPolicy.StrongFocus
        # Clicked into (focused), the wheel steps the value as usual.
        lam.setFocus()
        qtbot.waitUntil(lam.hasFocus)
        wheel(lam, 1)
        assert lam.value() != before
    finally:
        panel.shutdown()


def test_the_wheel_over_an_unfocused_combo_box_keeps_its_choice(qtbot):
    panel = _ppo_panel(qtbot)
    try:
        form = panel.forms["ppo"]
        combos = [form.editor(p) for p in form.paths if type(form.editor(p)) is QComboBox
                  and form.editor(p).count() > 1]
        assert combos
        combo = combos[0]
        panel._form_scroll.ensureWidgetVisible(combo)
        qtbot.wait(20)
        bar = panel._form_scroll.verticalScrollBar()
        index, top = combo.currentIndex(), bar.value()
        wheel(combo, -2 if top < bar.maximum() else 2)
        assert combo.currentIndex() == index
        assert bar.value() != top
    finally:
        panel.shutdown()
