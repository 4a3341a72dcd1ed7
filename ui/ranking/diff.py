"""Word-level differences between two responses, for the diff highlight.

Pure Python (``difflib`` on words), so it is tested without Qt. Words are
runs of non-space characters; the result gives, for each text, the
character spans of the words that are not in the longest common
subsequence the matcher finds.
"""

from __future__ import annotations

import difflib
import re

_WORD = re.compile(r"\S+")

Span = tuple[int, int]


def words(text: str) -> list[tuple[str, int, int]]:
    """``(word, start, end)`` for every word of ``text``."""
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def _merge(spans: list[Span], text: str) -> list[Span]:
    """Join spans separated by whitespace only, so a changed phrase is one highlight."""
    out: list[Span] = []
    for start, end in spans:
        if out and not text[out[-1][1]:start].strip():
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def word_diff(a: str, b: str) -> tuple[list[Span], list[Span]]:
    """Character spans of the words of ``a`` and of ``b`` that the other text does not share."""
    wa, wb = words(a), words(b)
    matcher = difflib.SequenceMatcher(None, [w for w, _, _ in wa], [w for w, _, _ in wb], autojunk=False)
    da: list[Span] = []
    db: list[Span] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        da += [(s, e) for _, s, e in wa[i1:i2]]
        db += [(s, e) for _, s, e in wb[j1:j2]]
    return _merge(da, a), _merge(db, b)


def similarity(a: str, b: str) -> float:
    """Share of words in common (1.0 for identical texts), for the "nearly identical" hint."""
    wa, wb = [w for w, _, _ in words(a)], [w for w, _, _ in words(b)]
    if not wa and not wb:
        return 1.0
    return difflib.SequenceMatcher(None, wa, wb, autojunk=False).ratio()
