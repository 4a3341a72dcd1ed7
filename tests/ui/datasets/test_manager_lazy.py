"""The record table stays lazy on a 50,000-row dataset: it fetches only the pages it paints."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt

from workbench.data.importer import import_file
from workbench.store.workspace import Workspace

from .test_manager import click_header, settle

ROWS = 50_000


def test_fifty_thousand_rows_open_scroll_and_sort_without_loading_them(qtbot, tmp_path, open_panel):
    path = tmp_path / "big.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(ROWS):
            f.write(json.dumps({"prompt": f"q{i:05d} {'odd' if i % 2 else 'even'}", "chosen": f"answer {i}",
                                "rejected": "no"}) + "\n")
    ws = Workspace.init(tmp_path / "ws")
    import_file(ws, path, "big").checkpoint_thread.join()
    ws.close()

    panel = open_panel(tmp_path / "ws")
    model = panel.model
    assert model.rowCount() == ROWS and panel.status_label.text().startswith(f"{ROWS:,} records")
    assert 0 < model.fetched_rows <= 2 * model.page_size          # only what the view painted

    panel.table.scrollToBottom()
    qtbot.waitUntil(lambda: model.cached_pages >= 2)
    panel.table.viewport().repaint()
    last = model.index(ROWS - 1, model.column_of("prompt"))
    assert last.data() == f"q{ROWS - 1:05d} odd"
    assert model.fetched_rows <= 4 * model.page_size

    # A header click: the old order stays on screen while the new one is computed off-thread.
    first_before = model.record_id(0)
    click_header(qtbot, panel.table, model.column_of("prompt"))
    click_header(qtbot, panel.table, model.column_of("prompt"))   # again: descending supersedes ascending
    assert model.busy and model.record_id(0) == first_before and panel.busy_bar.isVisibleTo(panel)
    qtbot.waitUntil(lambda: not model.busy, timeout=20_000)
    assert model.query.sort == "prompt" and model.query.descending
    assert model.index(0, model.column_of("prompt")).data() == f"q{ROWS - 1:05d} odd"
    assert model.rowCount() == ROWS and not panel.busy_bar.isVisibleTo(panel)

    # A search: the index is caught up, the first page comes first, then the rest.
    qtbot.mouseClick(panel.search_edit, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(panel.search_edit, "even")
    qtbot.keyClick(panel.search_edit, Qt.Key.Key_Return)
    settle(qtbot, panel)
    assert model.rowCount() == ROWS // 2
    assert model.index(0, model.column_of("prompt")).data() == f"q{ROWS - 2:05d} even"   # still descending
    assert model.fetched_rows < 1000
    assert model.cached_pages <= model.cache_pages
