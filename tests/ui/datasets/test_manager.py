"""The dataset manager page, driven through its real widgets: list, search, filters, sort, detail."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt

from workbench.store.workspace import Workspace

from .conftest import PAIRS


def click_row(qtbot, view, row, modifier=Qt.KeyboardModifier.NoModifier, column=1):
    index = view.model().index(row, column)
    view.scrollTo(index)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, modifier, view.visualRect(index).center())


def click_header(qtbot, view, column):
    header = view.horizontalHeader()
    x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))


def choose(qtbot, combo, prefix):
    """Pick the item starting with ``prefix`` with the keyboard, as a user would (Home, then Down)."""
    target = next(i for i in range(combo.count()) if combo.itemText(i).startswith(prefix))
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Home)
    for _ in range(target):
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentIndex() == target


def cells(panel, key):
    col = panel.model.column_of(key)
    return [panel.model.index(r, col).data() for r in range(panel.model.rowCount())]


def settle(qtbot, panel):
    qtbot.waitUntil(lambda: panel.model.complete and not panel.model.busy, timeout=10_000)


def select_dataset(qtbot, panel, name):
    row = [s.name for s in panel.dataset_list.summaries].index(name)
    click_row(qtbot, panel.dataset_list, row, column=0)
    qtbot.waitUntil(lambda: panel.current_dataset is not None and panel.current_dataset.name == name)
    settle(qtbot, panel)


def test_lists_datasets_with_counts_and_opens_the_first(qtbot, datasets_ws, open_panel):
    panel = open_panel(datasets_ws)
    names = [panel.dataset_list.item(r, 0).text() for r in range(panel.dataset_list.rowCount())]
    assert names == ["chats", "pairs"]
    headers = [panel.dataset_list.horizontalHeaderItem(c).text() for c in range(panel.dataset_list.columnCount())]
    assert headers == ["Name", "Kind", "Rows", "Train/val", "Deleted", "Snapshot", "Changed"]
    qtbot.waitUntil(lambda: panel.dataset_list.item(1, 2).text() == "6")   # counted after the list shows
    assert panel.dataset_list.item(0, 1).text() == "sft \u00b7 chat"
    assert panel.current_dataset.name == "chats"
    assert [panel.model.headerData(c, Qt.Orientation.Horizontal) for c in range(panel.model.columnCount())] == [
        "#", "Prompt", "Completion", "Split", "Tags", "Source"]
    assert cells(panel, "completion") == ["4", "Seven is prime."]
    assert cells(panel, "prompt")[0] == "[3 turns] What is 2 + 2?"
    assert panel.status_label.text().startswith("2 records")


def test_selecting_a_pair_shows_prompt_and_chosen_rejected_side_by_side(qtbot, datasets_ws, open_panel):
    panel = open_panel(datasets_ws)
    select_dataset(qtbot, panel, "pairs")
    assert [panel.model.headerData(c, Qt.Orientation.Horizontal) for c in range(panel.model.columnCount())] == [
        "#", "Prompt", "Chosen", "Rejected", "Split", "Tags", "Source"]
    click_row(qtbot, panel.table, 2)
    detail = panel.detail
    qtbot.waitUntil(lambda: detail.detail is not None)
    assert detail.prompt.view.markdown_text == PAIRS[2]["prompt"]
    assert detail.chosen.view.markdown_text == PAIRS[2]["chosen"]
    assert detail.rejected.view.markdown_text == PAIRS[2]["rejected"]
    assert "print([1, 2, 3][::-1])" in detail.chosen.view.toPlainText()   # the code block rendered
    assert detail.chosen.title.text() == "Chosen  (score 7.5)"
    assert detail.responses.currentWidget() is detail.pair
    left, right = detail.chosen.geometry(), detail.rejected.geometry()
    assert left.right() < right.left() and abs(left.top() - right.top()) < 5     # side by side
    assert "tags: code" in detail.meta.text() and "pairs.jsonl, line 3" in detail.lineage.text()


def test_chat_detail_has_role_headings(qtbot, datasets_ws, open_panel):
    panel = open_panel(datasets_ws)
    click_row(qtbot, panel.table, 0)
    qtbot.waitUntil(lambda: panel.detail.detail is not None)
    text = panel.detail.prompt.view.markdown_text
    assert "#### System" in text and "#### User" in text and "#### Assistant" in text
    assert panel.detail.prompt.title.text() == "Conversation (3 turns)"
    assert not panel.detail.responses.isVisible()


def test_search_is_debounced_and_combines_with_filters(qtbot, datasets_ws, open_panel):
    panel = open_panel(datasets_ws)
    select_dataset(qtbot, panel, "pairs")
    qtbot.mouseClick(panel.search_edit, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(panel.search_edit, "haiku")
    qtbot.waitUntil(lambda: panel.model.query.text == "haiku", timeout=5000)
    settle(qtbot, panel)
    assert cells(panel, "prompt") == ["Write a haiku about rain", "Another haiku, about snow"]
    assert panel.status_label.text().startswith("2 of 6 records match")
    # Tag combo filled from the dataset; choosing a tag narrows the search further.
    qtbot.waitUntil(lambda: panel.tag_combo.count() == 4)   # any, code, cs, poetry
    assert [panel.tag_combo.itemText(i) for i in range(4)] == ["Any tag", "code (2)", "cs (1)", "poetry (2)"]
    qtbot.keyClicks(panel.search_edit, "\b" * 5 + "python")
    qtbot.keyClick(panel.search_edit, Qt.Key.Key_Return)      # Enter searches without waiting
    settle(qtbot, panel)
    assert cells(panel, "prompt") == ["How do I reverse a list in Python?"]
    panel.search_edit.clear()
    choose(qtbot, panel.tag_combo, "code")
    settle(qtbot, panel)
    assert panel.model.query.tag == "code" and panel.model.query.text == ""
    assert cells(panel, "tags") == ["code, cs", "code"]
    choose(qtbot, panel.ranked_combo, "Unranked")
    settle(qtbot, panel)
    assert panel.model.query.ranked is False and panel.model.rowCount() == 2
    choose(qtbot, panel.split_combo, "No split")
    settle(qtbot, panel)
    assert panel.model.rowCount() == 2
    choose(qtbot, panel.split_combo, "Train")
    settle(qtbot, panel)
    assert panel.model.rowCount() == 0 and panel.status_label.text().startswith("0 of 6 records match")


def test_source_filter_separates_imported_and_edited_records(qtbot, datasets_ws, open_panel):
    panel = open_panel(datasets_ws)
    select_dataset(qtbot, panel, "pairs")
    qtbot.waitUntil(lambda: panel.source_combo.count() == 2)
    assert panel.source_combo.itemText(1).startswith("pairs.jsonl")
    choose(qtbot, panel.source_combo, "pairs")
    settle(qtbot, panel)
    assert panel.model.query.source is not None and panel.model.rowCount() == 6


def test_header_click_sorts_off_thread_and_keeps_the_selection(qtbot, datasets_ws, open_panel):
    panel = open_panel(datasets_ws)
    select_dataset(qtbot, panel, "pairs")
    click_row(qtbot, panel.table, 3)                      # "capital of France?"
    selected = panel.selected_ids()
    prompt_col = panel.model.column_of("prompt")
    with qtbot.waitSignal(panel.model.ids_ready, timeout=10_000):
        click_header(qtbot, panel.table, prompt_col)
    expected = sorted((r["prompt"] for r in PAIRS), key=str.lower)
    assert cells(panel, "prompt") == expected
    assert panel.model.query.sort == "prompt" and not panel.model.query.descending
    assert panel.selected_ids() == selected               # the record stayed selected, in its new row
    assert panel.model.record_id(panel.table.currentIndex().row()) == selected[0]
    with qtbot.waitSignal(panel.model.ids_ready, timeout=10_000):
        click_header(qtbot, panel.table, prompt_col)
    assert cells(panel, "prompt") == expected[::-1]
    with qtbot.waitSignal(panel.model.ids_ready, timeout=10_000):
        click_header(qtbot, panel.table, panel.model.column_of("id"))
    assert cells(panel, "prompt") == [r["prompt"] for r in PAIRS]


def test_toolbar_opens_the_other_dataset_dialogs_and_refreshes_on_change(qtbot, datasets_ws, open_panel):
    panel = open_panel(datasets_ws)
    select_dataset(qtbot, panel, "pairs")

    def click(action):
        qtbot.mouseClick(panel.toolbar.widgetForAction(action), Qt.MouseButton.LeftButton)

    click(panel.import_action)
    assert type(panel.import_wizard).__name__ == "ImportWizard" and panel.import_wizard.isVisible()
    panel.import_wizard.reject()
    click(panel.export_action)
    assert type(panel.export_dialog).__name__ == "ExportDialog" and panel.export_dialog.isVisible()
    panel.export_dialog.reject()
    click(panel.stats_action)
    assert type(panel.stats_dialog).__name__ == "StatsDialog"
    panel.stats_dialog.reject()
    for action, name in ((panel.dedup_action, "DedupDialog"), (panel.split_action, "SplitDialog"),
                         (panel.freeze_action, "FreezeDialog")):
        click(action)
        assert type(panel.action_dialog).__name__ == name and panel.action_dialog.isVisible()
        panel.action_dialog.reject()
        qtbot.waitUntil(lambda: not panel.action_dialog.isVisible())
    # A dialog reporting a change (here: a snapshot frozen behind the page's back) refreshes the list.
    from workbench.store import datasets as R
    ws = Workspace.open(datasets_ws)
    with ws.transaction() as c:
        snap = R.freeze(c, "pairs")
    ws.close()
    panel.action_dialog.changed.emit("pairs")
    row = [s.name for s in panel.dataset_list.summaries].index("pairs")
    qtbot.waitUntil(lambda: panel.dataset_list.item(row, 5).text() == snap.hash[:7])
    assert snap.hash[:10] in panel.dataset_card.text()


def test_no_workspace_disables_everything(qtbot, open_panel, tmp_path):
    panel = open_panel(None, wait_dataset=False)
    assert not panel.import_action.isEnabled() and not panel.delete_action.isEnabled()
    assert panel.status_label.text() == "No workspace is open."
    root = tmp_path / "empty"
    Workspace.init(root).close()
    panel.set_workspace(root)
    qtbot.waitUntil(lambda: panel.status_label.text() == "No datasets.")
    assert panel.import_action.isEnabled() and not panel.export_action.isEnabled()
