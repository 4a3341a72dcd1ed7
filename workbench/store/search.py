"""Full-text search over dataset records (SQLite FTS5).

The index is the contentless FTS5 table ``record_fts`` (schema v2, see
:mod:`workbench.store.migrations`): rowid = ``records.id``, one column
holding the record's readable text (message contents, not JSON keys), as the
``record_text`` view computes it in SQL.

Records are immutable (an edit inserts a replacement), so the index only
ever grows at the end: :func:`catch_up` indexes the records above the
watermark ``meta['fts_watermark']`` in short write transactions, never
inside an import's transaction (the importer stays as fast as before).
Callers run it off the GUI thread after an import and before a search.
Soft-deleted and replaced records stay in the index; queries join
``records`` and drop them there.

:func:`fts_query` turns what a person types into an FTS5 query that can
never be a syntax error.
"""

from __future__ import annotations

import re
import sqlite3
import time
from typing import Optional

from ..progress import CancelToken, ProgressFn, check, no_progress
from .db import write_transaction
from .staging import CHUNK_PAUSE_S

WATERMARK_KEY = "fts_watermark"
GAPS_KEY = "fts_gaps"
#: Records indexed per write transaction: ~40-80 ms each on 2 cores, so a
#: ranking decision waiting for the write lock never waits long.
BATCH_ROWS = 2_000
#: A last term this long or longer is matched as a prefix ("pyth" finds
#: "python"); shorter ones match whole words only, because a one- or
#: two-letter prefix expands to most of the vocabulary and would be slow.
MIN_PREFIX_CHARS = 3

_TOKEN = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str) -> Optional[str]:
    """An FTS5 MATCH expression for the user's search text, or ``None`` if it has no words.

    Every whitespace-separated term becomes a quoted phrase (so ``AND``,
    ``NEAR``, ``-`` or a stray quote are plain words, never syntax), all
    terms must match, and the last term matches as a prefix while the user
    is still typing it (the text does not end with a space). A term such as
    ``don't`` or ``foo.bar`` is a phrase of its word pieces, the way the
    index tokenized the text.
    """
    raw_terms = text.split()
    terms = []
    for raw in raw_terms:
        words = _TOKEN.findall(raw.replace("_", " "))
        if words:
            terms.append(words)
    if not terms:
        return None
    parts = ['"' + " ".join(words) + '"' for words in terms]
    last = terms[-1]
    if not text[-1:].isspace() and len(last[-1]) >= MIN_PREFIX_CHARS:
        parts[-1] += "*"
    return " ".join(parts)


def watermark(conn: sqlite3.Connection) -> int:
    """The highest record id the index has covered (0 before the first catch-up)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (WATERMARK_KEY,)).fetchone()
    return int(row[0]) if row else 0


def pending(conn: sqlite3.Connection) -> int:
    """About how many records wait to be indexed (ids above the watermark; an upper bound)."""
    top = conn.execute("SELECT coalesce(max(id), 0) FROM records").fetchone()[0]
    gaps = conn.execute("SELECT 1 FROM meta WHERE key = ? AND value = '1'", (GAPS_KEY,)).fetchone()
    return max(0, top - watermark(conn)) + (1 if gaps else 0)


def _set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))


def _fill_gaps(conn: sqlite3.Connection) -> int:
    """Index live ids at or below the watermark that the index lacks (ids SQLite reused)."""
    with write_transaction(conn, what="search index"):
        if not conn.execute("SELECT 1 FROM meta WHERE key = ? AND value = '1'", (GAPS_KEY,)).fetchone():
            return 0
        mark = watermark(conn)
        # Both sides are index-only scans: records through its smallest index, the
        # index's own per-row table.
        missing = [i for (i,) in conn.execute(
            "SELECT id FROM records WHERE id <= ? EXCEPT SELECT id FROM record_fts_docsize", (mark,))]
        for start in range(0, len(missing), 500):
            chunk = missing[start:start + 500]
            conn.execute(f"INSERT INTO record_fts(rowid, body) SELECT id, body FROM record_text "
                         f"WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        conn.execute("DELETE FROM meta WHERE key = ?", (GAPS_KEY,))
        # The ids SQLite hands out next are above the highest live one: when the deleted rows were
        # the highest (a failed import's chunks, the newest dataset), those ids come again later,
        # after this flag is gone, so the watermark comes down to meet them.
        top = conn.execute("SELECT coalesce(max(id), 0) FROM records").fetchone()[0]
        if top < mark:
            _set_meta(conn, WATERMARK_KEY, str(top))
        return len(missing)


def catch_up(conn: sqlite3.Connection, progress: ProgressFn = no_progress,
             cancel: Optional[CancelToken] = None, *, batch_rows: int = BATCH_ROWS) -> int:
    """Index every record above the watermark; return how many were indexed.

    Runs in batches of ``batch_rows``, each its own write transaction that
    reads the watermark under the write lock, so two catch-ups (two threads
    or processes) never index a row twice. A cancel stops between batches
    with everything done so far kept. Raises
    :class:`~workbench.errors.WorkspaceBusyError` when another writer (a
    long import) keeps the write lock past the connection's lock timeout;
    calling again later resumes where it stopped.
    """
    done = _fill_gaps(conn)
    total = None
    while True:
        check(cancel)
        with write_transaction(conn, what="search index"):
            mark = watermark(conn)
            top = conn.execute(
                "SELECT max(id) FROM (SELECT id FROM records WHERE id > ? ORDER BY id LIMIT ?)",
                (mark, batch_rows)).fetchone()[0]
            if top is None:
                progress(1.0, f"search index up to date ({done:,} records indexed)")
                return done
            if total is None:
                total = max(1, conn.execute("SELECT max(id) FROM records").fetchone()[0] - mark)
            n = conn.execute("INSERT INTO record_fts(rowid, body) SELECT id, body FROM record_text "
                             "WHERE id > ? AND id <= ?", (mark, top)).rowcount
            _set_meta(conn, WATERMARK_KEY, str(top))
        done += n
        progress(min(1.0, done / total), f"indexing for search: {done:,} of ~{total:,} records")
        time.sleep(CHUNK_PAUSE_S)   # a gap in which a waiting decision takes the lock


def match_ids(conn: sqlite3.Connection, text: str, *, limit: Optional[int] = None) -> list[int]:
    """Ids of live records (any dataset) whose text matches ``text``, ascending."""
    query = fts_query(text)
    if query is None:
        return []
    sql = ("SELECT f.rowid FROM record_fts f CROSS JOIN records r ON r.id = f.rowid "
           "WHERE record_fts MATCH ? AND r.deleted = 0 ORDER BY f.rowid")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [i for (i,) in conn.execute(sql, (query,))]
