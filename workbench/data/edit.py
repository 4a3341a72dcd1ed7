"""Validate a record edited by hand, with exactly the rules the importer applies.

The dataset manager's edit dialog collects field values (strings, message
lists, score and label text, comma-separated tags) and calls
:func:`record_from_fields`; the same shape converters that check an
imported row (:mod:`workbench.data.shapes`) check the edit, against the
dataset's kind and style. The result is a :class:`~workbench.store.records.Record`
ready for :func:`workbench.store.datasets.replace_record`.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import WorkbenchError
from ..store.records import Record
from .messages import FieldError
from .shapes import MISSING, SHAPES, Context, tags_value


class EditError(WorkbenchError):
    """An edited value that breaks the dataset's rules; ``field`` names it."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def shape_for(kind: str, fields: Mapping[str, Any]):
    """The import shape whose rules an edit of a ``kind`` record follows."""
    if kind == "preference":
        return SHAPES["preference"]
    if kind == "unpaired":
        return SHAPES["unpaired"]
    if kind == "prompts":
        return SHAPES["prompt-only"]
    if kind == "sft":
        return SHAPES["messages"] if fields.get("messages") is not None else SHAPES["prompt-completion"]
    raise WorkbenchError(f"dataset kind {kind!r} cannot be edited")


def record_from_fields(kind: str, style: str, fields: Mapping[str, Any]) -> Record:
    """A validated record from edited ``fields``; raises :class:`EditError` naming the field.

    Text fields are strings (standard style) or lists of ``{"role",
    "content"}`` messages (conversational); ``score_chosen`` /
    ``score_rejected`` are numbers or their text ("" for none); ``label`` a
    boolean; ``tags`` a list of strings or comma-separated text.
    """
    shape = shape_for(kind, fields)
    # text_cells: scores and labels arrive as the text the user typed. The style is
    # fixed up front, so a plain-text value that starts with "[" stays plain text.
    ctx = Context(style=style, text_cells=True)
    row = {k: v for k, v in fields.items() if k != "tags" and v is not None}
    try:
        content = shape.convert(row, ctx)
        tags = tags_value(fields.get("tags", MISSING))
    except FieldError as exc:
        raise EditError(exc.field, exc.message) from None
    if shape.name == "messages" and style != "conversational":
        raise EditError("messages", "this dataset holds plain text (standard style), not chat messages")
    if tags is not None:
        tags = tuple(t.strip() for t in tags if t.strip()) or None
    return Record(**content, tags=tags)
