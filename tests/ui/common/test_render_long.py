"""Very long values never reach Qt's layout whole: the viewer cuts them, with a Show all
that splits long lines into short blocks, and copying gives back the original text.

The layout cost is what the block lengths bound (quadratic in an unbreakable line's
length); ``benchmarks/long_values.py`` measures the time."""

from __future__ import annotations

from PySide6.QtCore import QUrl

from ui.common.render import CHUNK, DISPLAY_LIMIT, LINE_LIMIT, SHOW_ALL_URL, MarkdownView, split_long_lines


def longest_block(view) -> int:
    block, longest = view.document().begin(), 0
    while block.isValid():
        longest = max(longest, block.length())
        block = block.next()
    return longest


def test_a_megabyte_line_is_cut_and_show_all_splits_it(qtbot):
    view = MarkdownView()
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    value = "\u00e9" + "x" * 1_000_000 + "\nsecond line"
    view.set_markdown(value)
    assert view.truncated and view.markdown_text == value
    assert longest_block(view) <= LINE_LIMIT + 2
    assert len(view.toPlainText()) < DISPLAY_LIMIT + 200
    shown = view.toPlainText()
    assert shown.rstrip().endswith("Show all") and f"{len(value):,} characters in all" in shown[-100:]

    cursor = view.textCursor()  # a click on the link leaves the cursor in it
    cursor.setPosition(view.document().characterCount() - 3)
    view.setTextCursor(cursor)
    view.anchorClicked.emit(QUrl(SHOW_ALL_URL))  # what clicking the link does
    assert not view.truncated
    assert not view.document().begin().begin().fragment().charFormat().isAnchor()  # not the link's format
    assert longest_block(view) <= CHUNK + 1
    assert view.document().characterCount() > 1_000_000
    view.selectAll()
    assert view.createMimeDataFromSelection().text() == value  # the display breaks are not copied


def test_short_and_ordinary_values_are_shown_whole(qtbot):
    view = MarkdownView()
    qtbot.addWidget(view)
    text = "## Title\n\n" + "\n".join(f"line {i} with words" for i in range(500))
    view.set_markdown(text)
    assert not view.truncated and "Show all" not in view.toPlainText()
    assert view.toPlainText().startswith("Title")
    many_lines = "\n\n".join(["a short paragraph"] * 3000)  # 57 KB, every line short: cut by total length
    view.set_markdown(many_lines)
    assert view.truncated and len(view.toPlainText()) < DISPLAY_LIMIT + 200


def test_split_long_lines_breaks_at_spaces_and_rebuilds_exactly():
    prose = ("word " * 700).strip()
    text, joins = split_long_lines(prose + "\n" + "y" * 2500 + "\nend")
    lines = text.split("\n")
    assert max(map(len, lines)) <= CHUNK
    assert all(not line.startswith(" ") for line in lines)  # broke at a space, which the break replaced
    rebuilt = lines[0]
    for i, line in enumerate(lines[1:], start=1):
        rebuilt += joins.get(i, "\n") + line
    assert rebuilt == prose + "\n" + "y" * 2500 + "\nend"


def test_the_diff_of_a_huge_response_shows_its_start(qtbot):
    from ui.ranking.columns import ResponseTextView

    view = ResponseTextView()
    qtbot.addWidget(view)
    view.set_highlighted("z" * 500_000, [(10, 20), (DISPLAY_LIMIT + 5, DISPLAY_LIMIT + 9)])
    assert view.document().characterCount() <= DISPLAY_LIMIT + 1
    assert view.highlights == [(10, 20)]


def test_editors_wrap_long_lines_anywhere(qtbot):
    """Qt's default wrap searches back for a word boundary on every line it wraps: quadratic on a
    long unbroken line. The record and response editors switch to wrapping anywhere for those."""
    from types import SimpleNamespace

    from PySide6.QtGui import QTextOption

    from ui.datasets.edit_dialog import TurnRow
    from ui.ranking.edit_dialog import EditResponseDialog

    anywhere, words = QTextOption.WrapMode.WrapAnywhere, QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere
    long_line = "q" * 50_000
    turn = TurnRow({"role": "user", "content": long_line})
    qtbot.addWidget(turn)
    assert turn.content.wordWrapMode() == anywhere and turn.content.toPlainText() == long_line
    short = TurnRow({"role": "user", "content": "a normal sentence " * 50})
    qtbot.addWidget(short)
    assert short.content.wordWrapMode() == words
    dialog = EditResponseDialog(["A", "B"], [SimpleNamespace(id=1, response="fine words " * 10),
                                             SimpleNamespace(id=2, response=long_line)], column=1)
    qtbot.addWidget(dialog)
    assert dialog.text.wordWrapMode() == anywhere and dialog.text.toPlainText() == long_line
    dialog.which.setCurrentIndex(0)
    assert dialog.text.wordWrapMode() == words
