"""Sizes that fit the screen: a window or dialog never opens taller or wider than the screen's
available area (a 1040×720 wizard on a 1280×720 screen had its Next button below the edge)."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

#: Room left for the window manager's title bar and borders when fitting a window to the screen.
FRAME_ALLOWANCE = QSize(8, 36)


def screen_bounded(widget: QWidget, size: QSize) -> QSize:
    """``size`` shrunk to the available area of ``widget``'s screen, less a window frame."""
    screen = widget.screen() or QGuiApplication.primaryScreen()
    if screen is None:
        return size
    return size.boundedTo(screen.availableGeometry().size() - FRAME_ALLOWANCE)
