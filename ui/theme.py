"""Follow the system's light or dark palette.

The stylesheet (``resources/style.qss``) names colours only through
``palette(...)`` roles, but Qt resolves those when the sheet is applied: after
the palette changes (the desktop switched to dark, Qt 6.5+
``QStyleHints.colorSchemeChanged``) the sheet must be applied again.
:func:`follow_system_palette` arranges that; the main window also calls
:func:`refresh_stylesheet` when it sees ``ApplicationPaletteChange``.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from .common.resources import resource_path

_pending = False


#: Pre-rendered sizes of ``icons/app.svg`` (``packaging/render_icons.py``).
ICON_SIZES = (16, 32, 48, 64, 128, 256)


def app_icon() -> QIcon:
    """The app icon from its PNG renderings: the SVG itself would load QtSvg and its
    icon-engine plugin during start-up (~40 ms before the first paint)."""
    icon = QIcon()
    for size in ICON_SIZES:
        path = resource_path("icons", f"app-{size}.png")
        if path.is_file():
            icon.addFile(str(path))
    return icon


def stylesheet_text() -> str:
    qss = resource_path("style.qss")
    return qss.read_text(encoding="utf-8") if qss.is_file() else ""


def apply_stylesheet(app: QApplication) -> None:
    """Apply the app stylesheet (again), resolving ``palette()`` roles against the current palette."""
    app.setStyleSheet(stylesheet_text())


def refresh_stylesheet() -> None:
    """Re-apply the stylesheet once the current event is handled (calls coalesce)."""
    global _pending
    app = QApplication.instance()
    if _pending or not isinstance(app, QApplication) or not app.styleSheet():
        return
    _pending = True

    def apply() -> None:
        global _pending
        _pending = False
        app.setStyleSheet(app.styleSheet())

    QTimer.singleShot(0, apply)


def follow_system_palette(app: QApplication) -> None:
    """Re-apply the stylesheet whenever the system colour scheme changes."""
    app.styleHints().colorSchemeChanged.connect(lambda _scheme: refresh_stylesheet())
