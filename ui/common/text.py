"""Small wording helpers shared by the pages: counted nouns and file sizes."""

from __future__ import annotations


def plural(n: int, word: str, many: str = "") -> str:
    """``1 duplicate``, ``2 duplicates``, ``1,200 rows`` (``many``: an irregular plural)."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def human_size(size: float) -> str:
    """A file size as people read it: ``512 bytes``, ``3.1 KB``, ``48 MB``, ``2.3 GB`` (was ``0.0 MB`` for 3 KB)."""
    if size < 1000:
        return plural(int(size), "byte")
    for unit in ("KB", "MB", "GB", "TB"):
        size /= 1000
        if size < 1000 or unit == "TB":
            return f"{size:,.1f} {unit}" if size < 100 else f"{size:,.0f} {unit}"
    raise AssertionError("unreachable")
