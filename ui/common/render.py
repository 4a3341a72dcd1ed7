"""Render stored text values the way a person reads them.

A value is a plain string (standard style) or a list of chat messages
``{"role", "content"}`` (conversational style); see
:mod:`workbench.store.records`. Both become Markdown: each chat turn gets a
role heading, content is kept as Markdown so code fences and lists render.
:class:`MarkdownView` shows it with Qt's own Markdown renderer (no HTML in
the input is interpreted, so a response can't inject markup) and loads no
resources: an image link in stored text (``![x](/dev/zero)``, a FIFO, a
local or remote file) is shown as its alt text, never read.
"""

from __future__ import annotations

import html
import json
from typing import Any, Optional

from PySide6.QtCore import QUrl
from PySide6.QtGui import QImage, QTextCursor, QTextDocument, QTextFormat
from PySide6.QtWidgets import QTextBrowser, QWidget

_ROLE_TITLES = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}

# No raw HTML from the data: model output is shown as text, never as markup.
MARKDOWN_FEATURES = (QTextDocument.MarkdownFeature.MarkdownDialectGitHub
                     | QTextDocument.MarkdownFeature.MarkdownNoHTML)


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
    """``text`` as a tooltip that shows it literally: Qt renders a tooltip that looks
    like HTML as HTML (``<img src=...>`` would be loaded), so user data is escaped."""
    if not text:
        return text
    return "<p style='white-space:pre-wrap'>" + html.escape(text, quote=False) + "</p>"


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
    :meth:`loadResource`) and shows images as their alt text.
    """

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setOpenExternalLinks(False)
        self.setOpenLinks(False)
        self.document().setDocumentMargin(10)
        self._markdown = ""

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
        self.document().setMarkdown(markdown, MARKDOWN_FEATURES)
        if "![" in markdown:
            _replace_images_with_alt_text(self.document())

    def set_value(self, value: Any) -> None:
        """Show a stored text value (string or chat messages)."""
        self.set_markdown(value_to_markdown(value))
