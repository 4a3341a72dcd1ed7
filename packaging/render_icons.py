"""Render resources/icons/app.svg to the PNG sizes the app and the desktop entry use.

Run after editing the SVG: ``QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/render_icons.py``.
The window icon is loaded from the PNGs (ui.theme.app_icon) because the first
SVG icon costs the start-up ~40 ms (loading QtSvg and its icon engine plugin).
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"
SIZES = (16, 32, 48, 64, 128, 256)


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])  # pixmaps need a GUI application
    svg = QIcon(str(ICONS / "app.svg"))
    for size in SIZES:
        image = svg.pixmap(QSize(size, size)).toImage()
        if image.isNull() or not image.save(str(ICONS / f"app-{size}.png")):
            print(f"could not render {size}px", file=sys.stderr)
            return 1
    print(f"wrote {', '.join(f'app-{s}.png' for s in SIZES)} in {ICONS}")
    app.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
