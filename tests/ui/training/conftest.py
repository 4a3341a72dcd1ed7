"""Shared by the Train/Runs page tests: the job environment and typing into the generated forms
the way a user does."""

from __future__ import annotations

from PySide6.QtCore import Qt

#: Set for the jobs these tests start: never the network, one thread per job (two shared cores).
JOB_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def type_into(qtbot, widget, text: str) -> None:
    """Replace a field's text as a user would: select all, type, Enter."""
    from ui.training.config_form import ModelRefEdit

    target = widget.combo.lineEdit() if isinstance(widget, ModelRefEdit) else \
        widget.lineEdit() if hasattr(widget, "lineEdit") and widget.lineEdit() is not None else widget
    target.setFocus()
    qtbot.keyClick(target, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(target, text)
    qtbot.keyClick(target, Qt.Key.Key_Return)


def choose(qtbot, combo, text: str) -> None:
    """Pick ``text`` in a closed combo box with the keyboard."""
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Home)
    for _ in range(combo.count()):
        if combo.currentText() == text:
            return
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentText() == text
