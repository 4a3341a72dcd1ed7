"""A Quality… table wider than the dialog shows a horizontal scroll bar; the bar must not cover
the last row (the blind-comparison table of two long queue names showed one and a half rows)."""

from __future__ import annotations

from PySide6.QtWidgets import QVBoxLayout, QWidget

from ui.ranking.quality_view import _table


def test_every_row_stays_visible_above_the_scroll_bar(qtbot):
    host = QWidget()
    qtbot.addWidget(host)
    rows = [[f"sft-4d07 vs sft-b7e6 \u00b7 {'a-very-long-annotator-name ' * 6}{i}", "sft-4d07", "58%"] for i in range(2)]
    table = _table("comparisonTable", ["Queue", "A", "B wins"], rows)
    QVBoxLayout(host).addWidget(table)
    host.resize(400, 300)
    host.show()
    qtbot.waitExposed(host)
    qtbot.waitUntil(table.horizontalScrollBar().isVisible)
    last = table.visualRect(table.model().index(len(rows) - 1, 0))
    assert last.bottom() <= table.viewport().height(), (last, table.viewport().height())
