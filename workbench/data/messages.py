"""Chat messages: validation, Anthropic HH transcripts, implicit prompts."""

from __future__ import annotations

import re
from typing import Any

from ..store.records import Message

#: Roles accepted in chat messages (OpenAI / HF chat-template vocabulary).
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


class FieldError(ValueError):
    """A value that failed validation; the caller adds file and line."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {str: "string", bool: "boolean", int: "integer", float: "number", list: "list",
            dict: "object"}.get(type(value), type(value).__name__)


def check_messages(value: Any, field: str, *, allow_empty: bool = False) -> list[Message]:
    """Validate a list of chat messages and return it normalized.

    Keys whose value is ``None`` are dropped: columnar formats (Parquet,
    Arrow) fill absent struct fields with nulls, and dropping them makes a
    round trip through those formats give back the original messages.
    """
    if not isinstance(value, list):
        raise FieldError(field, f"expected a list of messages, got {type_name(value)}")
    if not value and not allow_empty:
        raise FieldError(field, "expected at least one message, got an empty list")
    out = []
    for i, msg in enumerate(value):
        if not isinstance(msg, dict):
            raise FieldError(field, f"message {i}: expected an object with 'role' and 'content', "
                                    f"got {type_name(msg)}")
        msg = {k: v for k, v in msg.items() if v is not None}
        role = msg.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise FieldError(field, f"message {i}: 'role' must be one of {', '.join(sorted(ROLES))}, "
                                    f"got {role!r}")
        if not isinstance(msg.get("content"), str):
            raise FieldError(field, f"message {i}: 'content' must be a string, "
                                    f"got {type_name(msg.get('content'))}")
        out.append(msg)
    return out


_HH_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")


def looks_like_hh(text: Any) -> bool:
    """True for an Anthropic HH-RLHF transcript (``"\\n\\nHuman: ..."``)."""
    return isinstance(text, str) and (text.startswith("\n\nHuman:") or text.startswith("Human:"))


def parse_hh(text: str, field: str) -> list[Message]:
    """Split an HH transcript into user/assistant messages."""
    if not isinstance(text, str):
        raise FieldError(field, f"expected an HH-RLHF transcript string, got {type_name(text)}")
    if text.startswith("Human:"):
        text = "\n\n" + text
    parts = _HH_TURN.split(text)
    if parts[0].strip() or len(parts) < 3:
        raise FieldError(field, "not an HH-RLHF transcript: expected it to start with '\\n\\nHuman:'")
    messages = []
    for speaker, content in zip(parts[1::2], parts[2::2]):
        messages.append({"role": "user" if speaker == "Human" else "assistant", "content": content})
    return messages


def split_hh_pair(chosen: Any, rejected: Any) -> tuple[list[Message], Message, Message]:
    """The shared conversation and the two final assistant replies of an HH pair."""
    c = parse_hh(chosen, "chosen")
    r = parse_hh(rejected, "rejected")
    for name, conv in (("chosen", c), ("rejected", r)):
        if conv[-1]["role"] != "assistant":
            raise FieldError(name, "the transcript does not end with an 'Assistant:' reply")
        if len(conv) < 2:
            raise FieldError(name, "the transcript has no 'Human:' turn before the reply")
    if c[:-1] != r[:-1]:
        raise FieldError("rejected", "chosen and rejected do not share the same conversation "
                                     "before their final replies")
    return c[:-1], c[-1], r[-1]


def split_implicit_prompt(chosen: Any, rejected: Any, *, checked: bool = False) -> tuple[Any, Any, Any]:
    """Extract the prompt shared by ``chosen`` and ``rejected`` (TRL's implicit-prompt format).

    For message lists the prompt is the longest common prefix of messages;
    for strings it is the longest common prefix of characters, cut back to
    the last whitespace as TRL's ``extract_prompt`` does. ``checked``: the
    message lists were validated already (by the caller's style check).
    """
    if isinstance(chosen, list) and isinstance(rejected, list):
        c = chosen if checked else check_messages(chosen, "chosen")
        r = rejected if checked else check_messages(rejected, "rejected")
        n = 0
        while n < min(len(c), len(r)) and c[n] == r[n]:
            n += 1
        if n == 0:
            raise FieldError("chosen", "chosen and rejected share no prompt messages; "
                                       "give a 'prompt' field")
        if n == len(c) or n == len(r):
            raise FieldError("rejected", "chosen and rejected are identical after the shared prompt")
        return c[:n], c[n:], r[n:]
    if isinstance(chosen, str) and isinstance(rejected, str):
        n = 0
        limit = min(len(chosen), len(rejected))
        while n < limit and chosen[n] == rejected[n]:
            n += 1
        while n > 0 and not chosen[n - 1].isspace():
            n -= 1
        if n == 0:
            raise FieldError("chosen", "chosen and rejected share no prompt text; give a 'prompt' field")
        return chosen[:n], chosen[n:], rejected[n:]
    raise FieldError("rejected", f"chosen is {type_name(chosen)} but rejected is {type_name(rejected)}")
