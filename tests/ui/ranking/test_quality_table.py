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


def test_the_comparison_tooltips_show_model_paths_literally(qtbot, tmp_path):
    from PySide6.QtWidgets import QTableWidget

    from workbench.data.quality import ComparisonResult, QualityReport
    from workbench.store.workspace import Workspace

    from ui.ranking.quality_view import QualityDialog

    Workspace.init(tmp_path / "ws").close()
    dialog = QualityDialog(tmp_path / "ws")
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.task is None or not dialog.task.running, timeout=10_000)
    odd = "/models/<img src=/etc/passwd>/<b>tuned</b>"
    result = ComparisonResult(label_a="./models/base", label_b=odd, n=2, a_wins=0, b_wins=2, ties=0, both_bad=0,
                              win_rate_b=1.0, low=0.34, high=1.0, tie_rate=0.0, score_b=1.0)
    dialog._on_report(QualityReport(counts=[], agreement=[], consistency=[], position=[],
                                    comparisons=[(1, "base vs tuned", result)]))
    table = dialog.findChild(QTableWidget, "comparisonTable")
    for col in (0, 2):
        tip = table.item(0, col).toolTip()
        assert "<img" not in tip and "<b>" not in tip, tip   # no tag Qt would render (or load)
    assert table.item(0, 2).toolTip().replace("\u200b", "") == odd   # reads the same
