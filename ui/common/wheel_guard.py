"""Spin boxes and combo boxes ignore the mouse wheel unless they have the keyboard focus.

Scrolling a long form with the pointer over a field used to change the
field (GAE lambda 0.95 -> 0.15) and the form did not scroll. The careful
apps' convention: such fields take the focus only by click or Tab
(``Qt.StrongFocus``, not ``WheelFocus``), and a wheel event reaching one
without the focus is *ignored*, so Qt hands it to the parent: the scroll
area scrolls. Once clicked into, the wheel steps the field as usual.

Call :func:`guard_wheel_in` on a form (or page) after building it; it guards
every spin box and combo box under it, once.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QEvent, QObject, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QAbstractScrollArea, QAbstractSpinBox, QApplication, QComboBox, QWidget

_GUARDED = "_wheel_guarded"


class WheelGuard(QObject):
    """The event filter: a wheel event over an unfocused field goes to the scroll area around it."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() != QEvent.Type.Wheel or not isinstance(watched, QWidget) or watched.hasFocus():
            return False
        area = _scroll_area_of(watched)
        if area is None:
            event.ignore()  # filtered, not accepted: QApplication offers a window-system event to the parent
            return True
        # Handed on explicitly: Qt propagates only spontaneous wheel events to parents, and a scroll
        # area scrolls for whatever wheel event its viewport gets.
        viewport = area.viewport()
        pos = viewport.mapFromGlobal(event.globalPosition().toPoint())
        forwarded = QWheelEvent(QPointF(pos), event.globalPosition(), event.pixelDelta(), event.angleDelta(),
                                event.buttons(), event.modifiers(), event.phase(), event.inverted(), event.source())
        QApplication.sendEvent(viewport, forwarded)
        return True


def _scroll_area_of(widget: QWidget) -> Optional[QAbstractScrollArea]:
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QAbstractScrollArea):
            return parent
        parent = parent.parentWidget()
    return None


def _guard() -> WheelGuard:
    app = QApplication.instance()
    guard = getattr(app, "_workbench_wheel_guard", None)
    if guard is None:
        guard = WheelGuard(app)  # one filter object for the whole application
        app._workbench_wheel_guard = guard
    return guard


def guard_wheel(widget: QWidget) -> None:
    """Guard one spin box or combo box (see the module docstring)."""
    if widget.property(_GUARDED):
        return
    widget.setProperty(_GUARDED, True)
    if widget.focusPolicy() == Qt.FocusPolicy.WheelFocus:
        widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    widget.installEventFilter(_guard())


def guard_wheel_in(root: QWidget) -> None:
    """Guard every spin box and combo box under ``root`` (and ``root`` itself if it is one)."""
    for cls in (QAbstractSpinBox, QComboBox):
        if isinstance(root, cls):
            guard_wheel(root)
        for child in root.findChildren(cls):
            guard_wheel(child)
