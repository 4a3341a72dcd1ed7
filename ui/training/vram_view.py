"""The expected GPU memory of the run in the form, beside it (see :mod:`workbench.train.vram`).

A stacked bar of the parts (weights, adapters, optimizer, activations, ...)
against the probed GPU's memory (a tick marks the capacity), the parts in
figures, and a line saying whether the run fits, is tight, or will not fit,
or that this machine has no CUDA GPU. Colours derive from the palette's
highlight colour, so light and dark themes both work.
"""

from __future__ import annotations

import time
from typing import Optional

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPalette, QPen
from PySide6.QtWidgets import (QGridLayout, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QStyle, QVBoxLayout,
                               QWidget)

from workbench.train.vram import Estimate, Fit, GpuInfo, format_bytes

_FIT_ICONS = {"ok": QStyle.StandardPixmap.SP_DialogApplyButton,
              "tight": QStyle.StandardPixmap.SP_MessageBoxWarning,
              "over": QStyle.StandardPixmap.SP_MessageBoxCritical,
              "cpu": QStyle.StandardPixmap.SP_MessageBoxInformation,
              "unknown": QStyle.StandardPixmap.SP_MessageBoxQuestion}


def part_colors(palette: QPalette, n: int) -> list[QColor]:
    """``n`` distinguishable colours around the palette's highlight hue."""
    base = palette.color(QPalette.ColorRole.Highlight)
    hue = base.hsvHue() if base.hsvHue() >= 0 else 210
    dark = palette.color(QPalette.ColorRole.Window).lightness() < 128
    out = []
    for i in range(n):
        color = QColor.fromHsv((hue + i * 47) % 360, 150 if dark else 170, 220 if dark else 200)
        out.append(color)
    return out


class MemoryBarView(QWidget):
    """A horizontal stacked bar of byte counts, with an optional capacity tick."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._parts: list[tuple[int, QColor]] = []
        self._capacity: Optional[int] = None
        self.setMinimumHeight(22)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(240, 22)

    def set_parts(self, parts: list[tuple[int, QColor]], capacity: Optional[int]) -> None:
        self._parts = parts
        self._capacity = capacity
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802, ARG002 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(0.5, 3.5, -0.5, -3.5)
        pal = self.palette()
        painter.setPen(QPen(pal.color(QPalette.ColorRole.Mid), 1))
        painter.setBrush(pal.color(QPalette.ColorRole.Base))
        painter.drawRoundedRect(rect, 3, 3)
        total = sum(b for b, _ in self._parts)
        scale = max(total, self._capacity or 0)
        if scale <= 0:
            return
        x = rect.left()
        painter.setPen(Qt.PenStyle.NoPen)
        for size, color in self._parts:
            w = rect.width() * size / scale
            painter.setBrush(color)
            painter.drawRect(QRectF(x, rect.top() + 1, max(w, 0.0), rect.height() - 1))
            x += w
        if self._capacity:
            cx = rect.left() + rect.width() * self._capacity / scale
            painter.setPen(QPen(pal.color(QPalette.ColorRole.WindowText), 2))
            painter.drawLine(int(cx), int(rect.top() - 3), int(cx), int(rect.bottom() + 3))


class VramView(QWidget):
    """Expected memory of the current form's run; ``detect_requested`` asks for a GPU probe."""

    detect_requested = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("vramView")
        title = QLabel("Expected GPU memory")
        font = QFont(title.font())
        font.setWeight(QFont.Weight.DemiBold)
        title.setFont(font)
        self.total_label = QLabel("\u2014")
        self.total_label.setObjectName("vramTotal")
        big = QFont(self.total_label.font())
        big.setPointSizeF(big.pointSizeF() * 1.5)
        big.setWeight(QFont.Weight.DemiBold)
        self.total_label.setFont(big)
        self.bar = MemoryBarView()
        self._parts_grid = QGridLayout()
        self._parts_grid.setHorizontalSpacing(8)
        self._parts_grid.setVerticalSpacing(2)
        self._parts_grid.setColumnStretch(1, 1)
        self.fit_icon = QLabel()
        self.fit_label = QLabel()
        self.fit_label.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.fit_label.setObjectName("vramFit")
        self.fit_label.setWordWrap(True)
        self.gpu_label = QLabel()
        self.gpu_label.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.gpu_label.setObjectName("vramGpu")
        self.gpu_label.setWordWrap(True)
        self.detect_button = QPushButton("Detect GPU")
        self.detect_button.setToolTip("Run the probe job: which GPU this machine has and how much memory")
        self.detect_button.clicked.connect(self.detect_requested)
        self.notes_label = QLabel()
        self.notes_label.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.notes_label.setWordWrap(True)
        self.notes_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        small = QFont(self.notes_label.font())
        small.setPointSizeF(small.pointSizeF() * 0.9)
        self.notes_label.setFont(small)
        self.fit = Fit("unknown", "")
        self.estimate: Optional[Estimate] = None

        head = QHBoxLayout()
        head.addWidget(title)
        head.addStretch(1)
        head.addWidget(self.total_label)
        fit_row = QHBoxLayout()
        fit_row.addWidget(self.fit_icon, 0, Qt.AlignmentFlag.AlignTop)
        fit_row.addWidget(self.fit_label, 1)
        gpu_row = QHBoxLayout()
        gpu_row.addWidget(self.gpu_label, 1)
        gpu_row.addWidget(self.detect_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addLayout(head)
        layout.addWidget(self.bar)
        layout.addLayout(self._parts_grid)
        layout.addLayout(fit_row)
        layout.addLayout(gpu_row)
        layout.addWidget(self.notes_label)

    def set_estimate(self, est: Estimate, fit: Fit, gpu: Optional[GpuInfo]) -> None:
        """Show ``est`` (with the fit verdict ``fit`` against ``gpu``)."""
        self.estimate, self.fit = est, fit
        while self._parts_grid.count():
            item = self._parts_grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        parts = [p for p in est.parts if p.bytes > 0]
        colors = part_colors(self.palette(), len(parts))
        for row, (part, color) in enumerate(zip(parts, colors)):
            swatch = QLabel()
            swatch.setFixedSize(10, 10)
            swatch.setAutoFillBackground(True)
            pal = swatch.palette()
            pal.setColor(QPalette.ColorRole.Window, color)
            swatch.setPalette(pal)
            name = QLabel(part.label)
            name.setToolTip(part.detail)
            size = QLabel(format_bytes(part.bytes))
            size.setObjectName(f"vram_{part.key}")
            size.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            size.setToolTip(part.detail)
            self._parts_grid.addWidget(swatch, row, 0)
            self._parts_grid.addWidget(name, row, 1)
            self._parts_grid.addWidget(size, row, 2)
        capacity = gpu.total_memory if gpu is not None and gpu.name and est.device == "cuda" else None
        self.bar.set_parts([(p.bytes, c) for p, c in zip(parts, colors)], capacity)
        self.total_label.setText(format_bytes(est.total) if est.shape is not None else "\u2014")
        self.fit_label.setText(fit.message)
        icon = self.style().standardIcon(_FIT_ICONS.get(fit.level, _FIT_ICONS["unknown"]))
        self.fit_icon.setPixmap(icon.pixmap(16, 16))
        self.gpu_label.setText(_gpu_text(gpu))
        notes = "; ".join(est.notes) if est.shape is not None else ""  # else the fit line says it
        self.notes_label.setText(notes[:1].upper() + notes[1:])
        self.notes_label.setVisible(bool(notes))

    def part_text(self, key: str) -> Optional[str]:
        """The size shown for part ``key`` (tests and accessibility)."""
        label = self.findChild(QLabel, f"vram_{key}")
        return label.text() if label is not None else None

    def set_detecting(self, running: bool) -> None:
        self.detect_button.setEnabled(not running)
        self.detect_button.setText("Detecting\u2026" if running else "Detect GPU")


def _gpu_text(gpu: Optional[GpuInfo]) -> str:
    if gpu is None:
        return "GPU: not detected yet"
    when = ""
    if gpu.time:
        minutes = max(0, int((time.time() - gpu.time) / 60))
        when = " (probed just now)" if minutes < 1 else (f" (probed {minutes} min ago)" if minutes < 120
                                                           else f" (probed {minutes // 60} h ago)")
    if not gpu.name:
        return f"GPU: none, CPU only{when}"
    return f"GPU: {gpu.name}, {format_bytes(gpu.total_memory or 0)}{when}"
