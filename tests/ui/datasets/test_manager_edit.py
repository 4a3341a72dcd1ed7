"""Editing, deleting and restoring records through the page, and undoing it all with Ctrl+Z."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPlainTextEdit

from workbench.store import db
from workbench.store.workspace import DB_NAME

from .conftest import PAIRS
from .test_manager import cells, click_row, select_dataset, settle


def live(root, record_id):
    conn = db.connect(root / DB_NAME)
    try:
        return conn.execute("SELECT deleted FROM records WHERE id = ?", (record_id,)).fetchone()[0] == 0
    finally:
        conn.close()


def undo_keys(qtbot, panel, redo=False):
    mods = Qt.KeyboardModifier.ControlModifier | (Qt.KeyboardModifier.ShiftModifier if redo else
                                                  Qt.KeyboardModifier.NoModifier)
    qtbot.keyClick(panel.table, Qt.Key.Key_Z, mods)


def open_editor(qtbot, panel, row):
    click_row(qtbot, panel.table, row)
    qtbot.keyClick(panel.table, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: panel.edit_dialog is not None and panel.edit_dialog.isVisible())
    return panel.edit_dialog


def save(qtbot, panel, dialog):
    """Click Save; once the dialog is gone, the page's window is active again (as on a desktop;
    the offscreen platform leaves no window active after a dialog closes)."""
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.edit_dialog is None)
    panel.activateWindow()
    qtbot.waitUntil(panel.isActiveWindow)


def retype(qtbot, editor: QPlainTextEdit, text: str):
    editor.setFocus()
    editor.selectAll()
    qtbot.keyClick(editor, Qt.Key.Key_Delete)
    qtbot.keyClicks(editor, text)


def test_edit_through_the_dialog_then_undo_and_redo(qtbot, datasets_ws, open_panel):
    panel = open_panel(datasets_ws)
    select_dataset(qtbot, panel, "pairs")
    old_id = panel.model.record_id(1)
    dialog = open_editor(qtbot, panel, 1)
    assert dialog.editors["chosen"].toPlainText() == PAIRS[1]["chosen"]
    assert dialog.editors["score_chosen"].text() == "9"
    retype(qtbot, dialog.editors["chosen"], "Recursion: defining a thing in terms of itself.")
    save(qtbot, panel, dialog)
    # The edit keeps its row; the table and the detail show the new text.
    assert cells(panel, "chosen")[1] == "Recursion: defining a thing in terms of itself."
    new_id = panel.model.record_id(1)
    assert new_id != old_id and not live(datasets_ws, old_id) and live(datasets_ws, new_id)
    assert panel.detail.chosen.view.markdown_text == "Recursion: defining a thing in terms of itself."
    assert panel.detail.chosen.title.text() == "Chosen  (score 9)"
    assert f"edit of record #{old_id}" in panel.detail.lineage.text()
    assert panel.undo_stack.undoText() == f"Edit record #{old_id}"
    # The dataset card counts the edit as an edit, not as "1 deleted".
    qtbot.waitUntil(lambda: "1 edited record" in panel.dataset_card.text(), timeout=5000)
    assert "0 deleted" in panel.dataset_card.text()

    undo_keys(qtbot, panel)
    assert cells(panel, "chosen")[1] == PAIRS[1]["chosen"]
    assert panel.model.record_id(1) == old_id and live(datasets_ws, old_id) and not live(datasets_ws, new_id)
    assert panel.detail.chosen.view.markdown_text == PAIRS[1]["chosen"]
    undo_keys(qtbot, panel, redo=True)
    assert cells(panel, "chosen")[1] == "Recursion: defining a thing in terms of itself."
    assert live(datasets_ws, new_id) and not live(datasets_ws, old_id)
    assert panel.status_label.text().startswith("6 records")


def test_invalid_edit_names_the_field_and_stores_nothing(qtbot, datasets_ws, open_panel):
    panel = open_panel(datasets_ws)
    select_dataset(qtbot, panel, "pairs")
    old_id = panel.model.record_id(0)
    dialog = open_editor(qtbot, panel, 0)
    dialog.editors["score_rejected"].setFocus()
    dialog.editors["score_rejected"].selectAll()
    qtbot.keyClicks(dialog.editors["score_rejected"], "lots")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and dialog.error_label.isVisible()
    assert "score_rejected" in dialog.error_label.text() and "expected a number" in dialog.error_label.text()
    assert dialog.focusWidget() is dialog.editors["score_rejected"]
    assert panel.undo_stack.count() == 0 and live(datasets_ws, old_id)
    qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.edit_dialog is None)
    assert panel.model.record_id(0) == old_id


def test_conversation_turns_are_edited_role_by_role(qtbot, datasets_ws, open_panel):
    panel = open_panel(datasets_ws)          # "chats" is selected first
    dialog = open_editor(qtbot, panel, 1)
    turns = dialog.editors["messages"]
    assert [r.role.currentText() for r in turns.rows] == ["user", "assistant"]
    retype(qtbot, turns.rows[1].content, "Eleven is prime too.")
    qtbot.mouseClick(turns.add_button, Qt.MouseButton.LeftButton)
    assert turns.rows[2].role.currentText() == "user"
    qtbot.keyClicks(turns.rows[2].content, "Thanks!")
    save(qtbot, panel, dialog)
    assert cells(panel, "prompt")[1] == "[3 turns] Eleven is prime too."
    md = panel.detail.prompt.view.markdown_text
    assert "Eleven is prime too." in md and md.rstrip().endswith("#### User\n\nThanks!")
    # An emptied conversation breaks the importer's rule: the dialog says which field.
    dialog = open_editor(qtbot, panel, 1)
    turns = dialog.editors["messages"]
    while turns.rows:
        qtbot.mouseClick(turns.rows[0].remove_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert "messages" in dialog.error_label.text() and "at least one message" in dialog.error_label.text()
    dialog.reject()


def test_delete_a_multi_selection_then_undo_redo_and_restore(qtbot, datasets_ws, open_panel):
    panel = open_panel(datasets_ws)
    select_dataset(qtbot, panel, "pairs")
    ids = [panel.model.record_id(r) for r in range(6)]
    click_row(qtbot, panel.table, 1)
    click_row(qtbot, panel.table, 3, Qt.KeyboardModifier.ShiftModifier)
    assert panel.selected_ids() == ids[1:4]
    assert "3 selected" in panel.status_label.text()
    qtbot.keyClick(panel.table, Qt.Key.Key_Delete)
    assert [panel.model.record_id(r) for r in range(panel.model.rowCount())] == [ids[0], ids[4], ids[5]]
    assert not any(live(datasets_ws, i) for i in ids[1:4])
    row = [s.name for s in panel.dataset_list.summaries].index("pairs")
    qtbot.waitUntil(lambda: panel.dataset_list.item(row, 4).text() == "3")    # the Deleted column
    assert panel.undo_stack.undoText() == "Delete 3 records"

    undo_keys(qtbot, panel)
    settle(qtbot, panel)
    assert [panel.model.record_id(r) for r in range(panel.model.rowCount())] == ids
    assert all(live(datasets_ws, i) for i in ids)
    undo_keys(qtbot, panel, redo=True)
    assert panel.model.rowCount() == 3 and not live(datasets_ws, ids[2])

    # Show deleted rows (struck out), select two and restore them with the toolbar button.
    qtbot.mouseClick(panel.deleted_check, Qt.MouseButton.LeftButton)
    settle(qtbot, panel)
    assert panel.model.rowCount() == 6
    deleted_rows = [r for r in range(6) if panel.model.preview(r).deleted]
    assert deleted_rows == [1, 2, 3]
    font = panel.model.index(1, 1).data(Qt.ItemDataRole.FontRole)
    assert font is not None and font.strikeOut()
    click_row(qtbot, panel.table, 1)
    assert not panel.edit_action.isEnabled() and panel.restore_action.isEnabled()
    assert not panel.delete_action.isEnabled()
    click_row(qtbot, panel.table, 2, Qt.KeyboardModifier.ShiftModifier)
    qtbot.mouseClick(panel.toolbar.widgetForAction(panel.restore_action), Qt.MouseButton.LeftButton)
    assert live(datasets_ws, ids[1]) and live(datasets_ws, ids[2]) and not live(datasets_ws, ids[3])
    assert [panel.model.preview(r).deleted for r in range(6)] == [False, False, False, True, False, False]
    assert panel.undo_stack.undoText() == "Restore 2 records"
    undo_keys(qtbot, panel)
    assert not live(datasets_ws, ids[1]) and panel.model.preview(1).deleted


def test_deleting_scattered_rows_removes_exactly_those(qtbot, datasets_ws, open_panel):
    """Rows 0, 2-3 and 5 (three separate runs) go in one delete; the others keep their order."""
    panel = open_panel(datasets_ws)
    select_dataset(qtbot, panel, "pairs")
    ids = [panel.model.record_id(r) for r in range(6)]
    click_row(qtbot, panel.table, 0)
    for row in (2, 3, 5):
        click_row(qtbot, panel.table, row, Qt.KeyboardModifier.ControlModifier)
    assert sorted(panel.selected_ids()) == sorted([ids[0], ids[2], ids[3], ids[5]])
    qtbot.keyClick(panel.table, Qt.Key.Key_Delete)
    assert [panel.model.record_id(r) for r in range(panel.model.rowCount())] == [ids[1], ids[4]]
    undo_keys(qtbot, panel)
    settle(qtbot, panel)
    assert [panel.model.record_id(r) for r in range(panel.model.rowCount())] == ids


def test_a_deleted_search_hit_drops_out_and_an_edit_is_searchable(qtbot, datasets_ws, open_panel):
    panel = open_panel(datasets_ws)
    select_dataset(qtbot, panel, "pairs")
    dialog = open_editor(qtbot, panel, 5)
    retype(qtbot, dialog.editors["chosen"], "Practice scales with a metronome.")
    save(qtbot, panel, dialog)
    qtbot.mouseClick(panel.search_edit, Qt.MouseButton.LeftButton)   # focus moves from the table
    qtbot.keyClicks(panel.search_edit, "metronome")
    qtbot.keyClick(panel.search_edit, Qt.Key.Key_Return)
    settle(qtbot, panel)
    assert cells(panel, "chosen") == ["Practice scales with a metronome."]
    click_row(qtbot, panel.table, 0)
    qtbot.keyClick(panel.table, Qt.Key.Key_Delete)
    assert panel.model.rowCount() == 0


def test_after_delete_the_detail_shows_only_a_selected_record(qtbot, datasets_ws, open_panel):
    """After Delete the detail pane kept showing a record that was no longer selected (or gone)."""
    panel = open_panel(datasets_ws)
    select_dataset(qtbot, panel, "pairs")
    ids = [panel.model.record_id(r) for r in range(6)]
    click_row(qtbot, panel.table, 2)
    assert panel.detail.detail is not None and panel.detail.detail.record.id == ids[2]
    qtbot.keyClick(panel.table, Qt.Key.Key_Delete)
    shown = panel.detail.detail
    assert shown is None or (shown.record.id != ids[2] and shown.record.id in panel.selected_ids())
