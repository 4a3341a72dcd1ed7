"""Counted nouns and file sizes as the pages word them."""

from ui.common.text import human_size, plural


def test_plural():
    assert plural(1, "duplicate") == "1 duplicate" and plural(0, "row") == "0 rows"
    assert plural(1200, "row") == "1,200 rows" and plural(2, "entry", "entries") == "2 entries"


def test_human_size():
    assert human_size(1) == "1 byte" and human_size(999) == "999 bytes"
    assert human_size(3_100) == "3.1 KB"              # a 3 KB file was "0.0 MB"
    assert human_size(48_000_000) == "48.0 MB" and human_size(480_000_000) == "480 MB"
    assert human_size(2.3e9) == "2.3 GB" and human_size(5e15) == "5,000 TB"
