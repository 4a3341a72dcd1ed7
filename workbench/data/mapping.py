"""The column mapping (``--map``): renames, and value-dependent picks of the chosen reply.

``--map SRC=TARGET`` renames a source column to a known field.
``--map LABEL=pick(A:reply_a,B:reply_b)`` lets a label column say which reply
was chosen: where ``LABEL`` is ``A``, ``reply_a`` becomes ``chosen`` and
``reply_b`` ``rejected``; where it is ``B``, the other way round. Values are
compared as text, so ``0``, ``"0"`` and ``0.0`` are the same label.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional

from ..errors import WorkbenchError
from .messages import FieldError
from .shapes import KNOWN_FIELDS


_PICK = re.compile(r"^pick\((.*)\)$", re.S)
_PICK_START = re.compile(r"^\s*pick\s*\(")  # meant as a pick, even if malformed (no closing bracket...)
_PICK_SYNTAX = "expected pick(VALUE:COLUMN,VALUE:COLUMN), e.g. pick(0:response_0,1:response_1)"


def parse_pick(target: str) -> Optional[list[tuple[str, str]]]:
    """``pick(A:col_a,B:col_b)`` as ``[("A", "col_a"), ("B", "col_b")]``; None if ``target`` is no pick."""
    m = _PICK.match(target)
    if m is None:
        if _PICK_START.match(target):
            raise WorkbenchError(f"--map ...={target}: {_PICK_SYNTAX}")
        return None
    options = []
    for part in m.group(1).split(","):
        value, sep, column = part.partition(":")
        if not sep or not value.strip() or not column.strip():
            raise WorkbenchError(f"--map ...={target}: {_PICK_SYNTAX}")
        options.append((value.strip(), column.strip()))
    if len({c for _, c in options}) != 2 or len({v for v, _ in options}) != len(options):
        raise WorkbenchError(f"--map ...={target}: a pick names two reply columns, each for its own value(s)")
    return options


def pick_key(value: Any) -> str:
    """A label value as the text a ``pick(...)`` names it by (0, "0" and 0.0 are the same)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def parse_mapping(items: Optional[list[str] | Mapping[str, str]]) -> dict[str, str]:
    """``["question=prompt", ...]`` (or a dict) as ``{source: target}``, validated.

    A target may also be a value-dependent pick, ``LABEL=pick(A:reply_a,B:reply_b)``:
    the column ``LABEL`` says which reply is chosen (value ``A``: ``reply_a``,
    the other one rejected), as in files whose label column names the winner.
    """
    if not items:
        return {}
    pairs = items.items() if isinstance(items, Mapping) else [
        tuple(s.split("=", 1)) if "=" in s else (s, None) for s in items]
    mapping: dict[str, str] = {}
    for src, dst in pairs:
        if not src or not dst:
            raise WorkbenchError(f"--map {src}: expected SOURCE=TARGET, e.g. --map question=prompt")
        if dst not in KNOWN_FIELDS and parse_pick(dst) is None:
            raise WorkbenchError(f"--map {src}={dst}: unknown target field {dst!r}; "
                                 f"known fields: {', '.join(sorted(KNOWN_FIELDS))}")
        mapping[src] = dst
    return mapping


class ColumnMap:
    """A parsed ``--map``: apply it to each row (before the layout reads it)."""

    def __init__(self, mapping: Mapping[str, str]):
        self.picks = {src: opts for src, dst in mapping.items() if (opts := parse_pick(dst)) is not None}
        self.renames = {src: dst for src, dst in mapping.items() if src not in self.picks}

    def sources(self) -> list[str]:
        """Every source column the mapping names (each must be in the data)."""
        out = list(self.renames)
        for label, options in self.picks.items():
            out += [label, *(c for _, c in options)]
        return list(dict.fromkeys(out))

    def apply(self, row: dict, *, strict: bool = True) -> dict:
        """``row`` with its columns renamed and picks resolved.

        A label value the pick does not name is a :class:`FieldError` on the
        label column (``strict``), or leaves ``chosen``/``rejected`` null
        (for detection, which only needs the keys).
        """
        out, consumed = {}, set()
        for label, options in self.picks.items():
            columns = list(dict.fromkeys(c for _, c in options))
            consumed |= {label, *columns}
            value = pick_key(row.get(label))
            picked = next((c for v, c in options if v == value), None)
            if picked is None:
                if strict:
                    raise FieldError(label, f"value {row.get(label)!r:.40} is not one the pick names "
                                            f"({', '.join(v for v, _ in options)})")
                out["chosen"] = out["rejected"] = None
                continue
            other = next(c for c in columns if c != picked)
            out["chosen"], out["rejected"] = row.get(picked), row.get(other)
        for k, v in row.items():
            if k in consumed:
                continue
            target = self.renames.get(k, k)
            if target in out and k not in self.renames:
                continue  # the mapped column wins over an unmapped one of the same name
            out[target] = v
        return out
