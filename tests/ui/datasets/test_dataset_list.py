"""The dataset list fits its width: every column beside a readable name when there is room,
the least useful columns dropped (never a horizontal scroll bar) when the list is narrow."""

import time

from workbench.store.browse import DatasetSummary

from ui.datasets.dataset_list import COLUMNS, NAME_MIN, DatasetListView


def visible_columns(view):
    return [COLUMNS[c] for c in range(len(COLUMNS)) if not view.isColumnHidden(c)]


def test_columns_drop_in_order_as_the_list_narrows_and_come_back(qtbot):
    view = DatasetListView()
    qtbot.addWidget(view)
    now = time.time()
    view.set_summaries([DatasetSummary(1, "helpful-harmless-preference-pairs", "preference", "standard", "", now, now,
                                       rows=123_456, train=111_110, validation=12_346, deleted=12)])
    view.resize(900, 300)
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: visible_columns(view) == list(COLUMNS))

    view.resize(300, 300)   # the splitter's narrowest
    qtbot.waitUntil(lambda: "Deleted" not in visible_columns(view))
    shown = visible_columns(view)
    assert shown[:3] == ["Name", "Kind", "Rows"]
    assert not view.horizontalScrollBar().isVisible()
    assert view.columnWidth(0) >= NAME_MIN - 1

    view.resize(900, 300)
    qtbot.waitUntil(lambda: visible_columns(view) == list(COLUMNS))
