"""Render stored text values the way a person reads them.

A value is a plain string (standard style) or a list of chat messages
``{"role", "content"}`` (conversational style); see
:mod:`workbench.store.records`. Both become Markdown: each chat turn gets a
role heading, content is kept as Markdown so code fences and lists render.
:class:`MarkdownView` shows it with Qt's own Markdown renderer (no HTML in
the input is interpreted, so a response can't inject markup) and loads no
resources: an image link in stored text (``![x](/dev/zero)``, a FIFO, a
local or remote file) is shown as its alt text, never read.

Long values. Qt lays out a paragraph in time that grows with the square of
its length when it has no break opportunities (a 1 MB line took 94 s), so
the view shows at most :data:`DISPLAY_LIMIT` characters, each line cut at
:data:`LINE_LIMIT`, with a "Show all" link. Show all displays the whole
value as plain text with lines longer than :data:`CHUNK` split into blocks
(a few blocks of 1,000 characters lay out in milliseconds; copying gives
back the original text). ``benchmarks/long_values.py`` measures it.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QImage, QTextCharFormat, QTextCursor, QTextDocument, QTextFormat, QTextOption
from PySide6.QtWidgets import QTextBrowser, QWidget

_ROLE_TITLES = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}

# No raw HTML from the data: model output is shown as text, never as markup.
MARKDOWN_FEATURES = (QTextDocument.MarkdownFeature.MarkdownDialectGitHub
                     | QTextDocument.MarkdownFeature.MarkdownNoHTML)


#: Longest value rendered in full as Markdown (longer ones are cut, with "Show all").
DISPLAY_LIMIT = 20_000
#: Longest line rendered whole as Markdown.
LINE_LIMIT = 2_000
#: Show all: lines longer than this become several display blocks.
CHUNK = 1_000
SHOW_ALL_URL = "rlhf-workbench:show-all"


def cut_for_display(markdown: str) -> str:
    """``markdown`` cut to :data:`DISPLAY_LIMIT` characters and each line to
    :data:`LINE_LIMIT` (a cut line ends in an ellipsis); unchanged when within both."""
    if len(markdown) <= DISPLAY_LIMIT and not has_long_line(markdown):
        return markdown
    lines = markdown[:DISPLAY_LIMIT].split("\n")
    return "\n".join(line if len(line) <= LINE_LIMIT else line[:LINE_LIMIT] + "\u2026" for line in lines)


def has_long_line(text: str) -> bool:
    """Whether ``text`` has a line longer than :data:`LINE_LIMIT`."""
    return len(text) > LINE_LIMIT and max(map(len, text.split("\n"))) > LINE_LIMIT


def wrap_mode_for(text: str) -> QTextOption.WrapMode:
    """The wrap mode for an editor holding ``text``: Qt's default searches back for a word
    boundary on every wrapped line, quadratic on a long line without one (a 300 KB line:
    7.5 s); wrapping anywhere stays linear (1 MB: about a second), so long lines get that."""
    return QTextOption.WrapMode.WrapAnywhere if has_long_line(text) else \
        QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere


def split_long_lines(text: str) -> tuple[str, dict[int, str]]:
    """``text`` with each line longer than :data:`CHUNK` split into lines of at most that many
    characters (at the last space when there is one: it becomes the line break), and
    ``{line number: what the break before it replaced}`` ("" or " ") to rebuild the original."""
    out: list[str] = []
    joins: dict[int, str] = {}
    for line in text.split("\n"):
        while len(line) > CHUNK:
            cut = line.rfind(" ", CHUNK // 2, CHUNK)
            if cut < 0:
                out.append(line[:CHUNK])
                line = line[CHUNK:]
                joins[len(out)] = ""
            else:
                out.append(line[:cut])
                line = line[cut + 1:]
                joins[len(out)] = " "
        out.append(line)
    return "\n".join(out), joins


def role_title(role: Any) -> str:
    return _ROLE_TITLES.get(str(role), str(role).capitalize() or "Message")


def _content_markdown(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal parts: keep the text parts
        texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if texts:
            return "\n\n".join(texts)
    return "```json\n" + json.dumps(content, ensure_ascii=False, indent=2) + "\n```"


def plain_tooltip(text: str) -> str:
    """``text`` as a tooltip that shows it literally: Qt renders a tooltip that looks like
    HTML as HTML (``<img src=...>`` would be loaded), and a tooltip has no plain-text switch.
    An invisible zero-width space after each ``<`` means no tag is seen; the text reads the same."""
    return text.replace("<", "<\u200b") if text else text


def value_to_markdown(value: Any, *, heading_level: int = 4) -> str:
    """Markdown for a stored text value (string, message list, or other JSON)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(m, dict) and "role" in m for m in value):
        hashes = "#" * heading_level
        turns = []
        for message in value:
            turns.append(f"{hashes} {role_title(message.get('role'))}\n\n"
                         f"{_content_markdown(message.get('content'))}")
        return "\n\n".join(turns)
    return "```json\n" + json.dumps(value, ensure_ascii=False, indent=2) + "\n```"


def plain_preview(value: Any, limit: int = 200) -> str:
    """One line for a table cell: the last turn's text for chats, whitespace collapsed."""
    if value is None:
        return ""
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        text = _content_markdown(value[-1].get("content"))
        if len(value) > 1:
            text = f"[{len(value)} turns] {text}"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _replace_images_with_alt_text(document: QTextDocument) -> None:
    """Each image in ``document`` becomes the text ``[image: ALT]`` (its alt text, else its link)."""
    found: list[tuple[int, str]] = []
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            fmt = fragment.charFormat()
            if fmt.isImageFormat():
                alt = str(fmt.property(QTextFormat.Property.ImageAltText) or "") or fmt.toImageFormat().name()
                for offset in range(fragment.length()):  # one object character per image
                    found.append((fragment.position() + offset, alt))
            it += 1
        block = block.next()
    cursor = QTextCursor(document)
    for position, alt in reversed(found):
        cursor.setPosition(position)
        cursor.setPosition(position + 1, QTextCursor.MoveMode.KeepAnchor)
        cursor.insertText(f"[image: {alt}]" if alt else "[image]")


class MarkdownView(QTextBrowser):
    """A read-only, selectable view of Markdown (or of a stored text value).

    Stored text is data: the view never loads what it links to (see
    :meth:`loadResource`) and shows images as their alt text. A long value
    is shown cut, with a "Show all" link (see the module docstring):
    :attr:`truncated` says whether it is, :meth:`show_all` shows everything.
    """

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setOpenExternalLinks(False)
        self.setOpenLinks(False)
        self.document().setDocumentMargin(10)
        self._markdown = ""
        self.truncated = False
        self._joins: Optional[dict[int, str]] = None  # set while Show all shows split lines
        self.anchorClicked.connect(self._on_anchor_clicked)

    @property
    def markdown_text(self) -> str:
        return self._markdown

    def loadResource(self, kind: int, name: QUrl) -> Any:  # noqa: N802 - Qt override
        """Nothing is ever read: a null answer would make Qt read the file itself
        (``/dev/zero`` until memory runs out, a FIFO blocks the GUI thread forever)."""
        if kind == QTextDocument.ResourceType.ImageResource.value:
            return QImage()
        return ""

    def set_markdown(self, markdown: str) -> None:
        self._markdown = markdown
        self._joins = None
        shown = cut_for_display(markdown)
        self.truncated = shown is not markdown
        if self.truncated:
            shown += (f"\n\n---\n\n*Cut for display ({len(markdown):,} characters in all).* "
                      f"[Show all]({SHOW_ALL_URL})")
        self.document().setMarkdown(shown, MARKDOWN_FEATURES)
        if "![" in shown:
            _replace_images_with_alt_text(self.document())

    def show_all(self) -> None:
        """Show the whole value as plain text (long lines split into display blocks)."""
        text, self._joins = split_long_lines(self._markdown)
        self.truncated = False
        self.setCurrentCharFormat(QTextCharFormat())  # not the clicked link's (blue, underlined) format
        self.setPlainText(text)

    def _on_anchor_clicked(self, url: QUrl) -> None:
        if url.toString() == SHOW_ALL_URL:
            self.show_all()

    def createMimeDataFromSelection(self) -> QMimeData:  # noqa: N802 - Qt override
        """Copy the original text: the breaks Show all added are taken out again."""
        mime = super().createMimeDataFromSelection()
        if not self._joins:
            return mime
        cursor = self.textCursor()
        doc = self.document()
        start, end = cursor.selectionStart(), cursor.selectionEnd()
        first, last = doc.findBlock(start), doc.findBlock(end)
        parts: list[str] = []
        block = first
        while block.isValid():
            text = block.text()
            lo = start - block.position() if block == first else 0
            hi = end - block.position() if block == last else len(text)
            if block != first:
                parts.append(self._joins.get(block.blockNumber(), "\n"))
            parts.append(text[lo:hi])
            if block == last:
                break
            block = block.next()
        plain = QMimeData()
        plain.setText("".join(parts))
        return plain

    def set_value(self, value: Any) -> None:
        """Show a stored text value (string or chat messages)."""
        self.set_markdown(value_to_markdown(value))
