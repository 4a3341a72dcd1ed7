"""Reading one field of a row for the layouts' converters (JSON values and CSV cells alike).

Each helper raises :class:`~workbench.data.messages.FieldError` naming the
field, so the importer can locate the problem by file, line and field.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from .messages import FieldError, type_name
from .shapes import MISSING, Context


def get(row: dict, name: str) -> Any:
    """The value of ``name``, or :data:`~workbench.data.shapes.MISSING` (distinct from null)."""
    return row.get(name, MISSING)


def decoded(value: Any) -> Any:
    """A CSV cell that holds JSON (a list or an object) as that value; anything else as it is."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


def required(row: dict, name: str) -> Any:
    """The value of ``name``; missing or null is a FieldError."""
    value = get(row, name)
    if value is MISSING or value is None:
        raise FieldError(name, "is missing")
    return value


def required_value(row: dict, name: str, ctx: Context) -> Any:
    """The value of required field ``name`` that may hold a list or an object: from a CSV cell,
    its JSON decoded (a JSON value is taken as it is, so a string stays a string)."""
    value = required(row, name)
    return decoded(value) if ctx.text_cells else value


def int_choice(value: Any, field: str, choices: tuple) -> Any:
    """An id such as ``better_response_id`` (0 or 1), read from JSON or a CSV cell."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or value not in choices:
        raise FieldError(field, f"expected one of {', '.join(map(str, choices))}, got {value!r:.40}")
    return value


def as_bool(value: Any, field: str) -> bool:
    """A boolean from JSON (true, 1) or a CSV cell ("true", "1")."""
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise FieldError(field, f"expected true or false, got {type_name(value)}")


def reply(text: str) -> list:
    """A reply text as a one-message assistant turn (the conversational style)."""
    return [{"role": "assistant", "content": text}]


def ordering(levels: list[float], *, best_low: bool) -> list[list[int]]:
    """Tie groups of indices, best first, from one number per response (equal numbers tie)."""
    order = sorted(set(levels), reverse=not best_low)
    return [[i for i, v in enumerate(levels) if v == lv] for lv in order]


def score_of(ctx: Context, row: dict, name: str) -> Optional[float]:
    """An optional number field (a score), checked by the dataset's context."""
    return ctx.score(get(row, name), name, required=False)
