"""Schema versions and the explicit migration chain.

The schema version lives in SQLite's ``PRAGMA user_version``. Each entry of
:data:`MIGRATIONS` upgrades the schema by exactly one version inside one
write transaction, so an interrupted upgrade leaves the previous version
intact. Never edit a released migration: add the next one.
"""

from __future__ import annotations

import sqlite3
from typing import Callable

from ..errors import WorkspaceError
from .db import write_transaction


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Execute ``script`` statement by statement inside the caller's transaction.

    ``Connection.executescript`` would COMMIT the open transaction first,
    which breaks the all-or-nothing guarantee of a migration step.
    """
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement.strip()[:80]}")


def _v1(conn: sqlite3.Connection) -> None:
    """The initial schema: lineage sources, annotation tables, datasets, snapshots."""
    _run_script(conn, """
    CREATE TABLE meta(
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );

    -- Where data came from: an imported file, a ranking session, a manual edit.
    CREATE TABLE sources(
        id         INTEGER PRIMARY KEY,
        kind       TEXT NOT NULL CHECK (kind IN ('import','ranking','manual','generation','demo')),
        path       TEXT,
        format     TEXT,
        shape      TEXT,
        mapping    TEXT,          -- JSON {source field: canonical field}
        size_bytes INTEGER,
        detail     TEXT,          -- JSON, free-form (e.g. skipped rows count)
        created_at REAL NOT NULL
    );

    CREATE TABLE datasets(
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        kind        TEXT NOT NULL CHECK (kind IN ('sft','preference','prompts','unpaired')),
        style       TEXT NOT NULL CHECK (style IN ('standard','conversational')),
        description TEXT NOT NULL DEFAULT '',
        created_at  REAL NOT NULL,
        updated_at  REAL NOT NULL
    );

    -- Prompts, candidates and rankings: the annotation side of the loop.
    CREATE TABLE prompts(
        id          INTEGER PRIMARY KEY,
        prompt      TEXT NOT NULL,   -- plain text, or JSON messages when style is conversational
        style       TEXT NOT NULL CHECK (style IN ('standard','conversational')),
        tags        TEXT NOT NULL DEFAULT '[]',
        record_id   INTEGER REFERENCES records(id),
        source_id   INTEGER REFERENCES sources(id),
        source_line INTEGER,
        created_at  REAL NOT NULL
    );

    CREATE TABLE candidates(
        id          INTEGER PRIMARY KEY,
        prompt_id   INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
        response    TEXT NOT NULL,   -- plain text, or JSON messages
        model       TEXT,            -- hub id, folder, or run checkpoint that generated it
        checkpoint  TEXT,
        params      TEXT NOT NULL DEFAULT '{}',   -- JSON sampling parameters
        parent_id   INTEGER REFERENCES candidates(id),  -- the original of an edited response
        source_id   INTEGER REFERENCES sources(id),
        source_line INTEGER,
        created_at  REAL NOT NULL
    );
    CREATE INDEX candidates_by_prompt ON candidates(prompt_id);

    CREATE TABLE rankings(
        id          INTEGER PRIMARY KEY,
        prompt_id   INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
        annotator   TEXT NOT NULL,
        ordering    TEXT NOT NULL,   -- JSON [[best ids, tied], [next], ...]
        all_bad     INTEGER NOT NULL DEFAULT 0,
        note        TEXT NOT NULL DEFAULT '',
        flags       TEXT NOT NULL DEFAULT '[]',
        source_id   INTEGER REFERENCES sources(id),
        source_line INTEGER,
        created_at  REAL NOT NULL
    );
    CREATE INDEX rankings_by_prompt ON rankings(prompt_id, annotator);

    -- Dataset rows. Content columns are immutable (trigger below): an edit
    -- inserts a replacement and soft-deletes the original, so frozen
    -- snapshots and training runs keep pointing at what they used.
    CREATE TABLE records(
        id             INTEGER PRIMARY KEY,
        dataset_id     INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        split          TEXT CHECK (split IN ('train','validation')),
        prompt         TEXT,
        completion     TEXT,
        messages       TEXT,
        chosen         TEXT,
        rejected       TEXT,
        score_chosen   REAL,
        score_rejected REAL,
        label          INTEGER,
        tags           TEXT,
        source_id      INTEGER REFERENCES sources(id),
        source_line    INTEGER,
        ranking_id     INTEGER REFERENCES rankings(id),
        candidate_id   INTEGER REFERENCES candidates(id),
        replaces_id    INTEGER REFERENCES records(id),
        deleted        INTEGER NOT NULL DEFAULT 0,
        created_at     REAL
    );
    CREATE INDEX records_by_dataset ON records(dataset_id, id);

    CREATE TRIGGER records_content_immutable
    BEFORE UPDATE OF prompt, completion, messages, chosen, rejected,
                     score_chosen, score_rejected, label, dataset_id ON records
    BEGIN
        SELECT RAISE(ABORT, 'dataset records are immutable: insert a replacement instead');
    END;

    CREATE TABLE snapshots(
        id         INTEGER PRIMARY KEY,
        dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        hash       TEXT NOT NULL,
        rows       INTEGER NOT NULL,
        note       TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        UNIQUE (dataset_id, hash)
    );

    CREATE TABLE snapshot_records(
        snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
        seq         INTEGER NOT NULL,
        record_id   INTEGER NOT NULL REFERENCES records(id),
        split       TEXT,
        PRIMARY KEY (snapshot_id, seq)
    ) WITHOUT ROWID;
    """)


#: The readable text of a record as the search index sees it: the message
#: contents of conversational values (not JSON keys such as "role"), the plain
#: text of standard ones, prompt to rejected, one line apart. Defined once, in
#: SQL, so that indexing (:mod:`workbench.store.search`) and the delete trigger
#: below tokenize exactly the same text: a contentless FTS5 table can only
#: forget a row when it is given the very text it indexed.
def _readable(col: str) -> str:
    return (f"CASE WHEN {col} IS NULL THEN '' "
            f"WHEN json_valid({col}) AND json_type({col}) = 'array' "
            f"AND EXISTS (SELECT 1 FROM json_each({col}) WHERE type = 'object') "
            f"THEN coalesce((SELECT group_concat(t, char(10)) FROM ("
            f"SELECT CASE WHEN j.type = 'object' THEN json_extract(j.value, '$.content') END AS t "
            f"FROM json_each({col}) j ORDER BY j.key)), '') "
            f"ELSE {col} END")


def _v2(conn: sqlite3.Connection) -> None:
    """Full-text search over record text, and indexes for browsing large datasets.

    ``record_fts`` is a contentless FTS5 table (the text lives in ``records``
    only) whose rowid is ``records.id``. Records are immutable, so it is kept
    append-only up to a watermark (``meta['fts_watermark']``, the highest
    indexed id) by :mod:`workbench.store.search`, outside the importer's
    transaction. A physically deleted record (a deleted dataset) is removed
    from the index by a trigger, which also flags ``meta['fts_gaps']``: SQLite
    may hand the freed ids (at or below the watermark) out again, so the next
    catch-up indexes any live id the index lacks.
    """
    body = " || char(10) || ".join(_readable(c) for c in ("prompt", "completion", "messages",
                                                          "chosen", "rejected"))
    _run_script(conn, f"""
    CREATE VIEW record_text(id, body) AS SELECT id, {body} FROM records;

    CREATE VIRTUAL TABLE record_fts USING fts5(
        body, content = '', tokenize = 'unicode61 remove_diacritics 2'
    );

    -- record_fts_docsize (FTS5's own table, one row per indexed rowid) says
    -- whether the row was indexed: telling FTS5 to forget a row it never
    -- indexed would corrupt the index.
    CREATE TRIGGER records_fts_forget BEFORE DELETE ON records
    WHEN EXISTS (SELECT 1 FROM record_fts_docsize WHERE id = old.id)
    BEGIN
        INSERT INTO record_fts(record_fts, rowid, body)
            SELECT 'delete', id, body FROM record_text WHERE id = old.id;
        INSERT INTO meta(key, value) VALUES ('fts_gaps', '1')
            ON CONFLICT(key) DO UPDATE SET value = '1';
    END;

    -- Browsing a million records reads indexes, not the table's pages: a dataset's
    -- ids come from records_by_dataset, minus its deleted ones (records_deleted);
    -- splits from records_split. Both are partial, so the rows an import writes
    -- (not deleted, and most often without a split) cost it nothing: a full
    -- index on records costs the importer 15-30%. The rarer filters (tag,
    -- source, ranked) and text sorts scan the table off the GUI thread.
    CREATE INDEX records_deleted ON records(dataset_id, deleted) WHERE deleted = 1;
    CREATE INDEX records_split ON records(dataset_id, split, deleted) WHERE split IS NOT NULL;
    -- Lineage lookups ("edited into #N", "its prompt was ranked"). They also serve the
    -- foreign-key checks of deleting records: without an index on replaces_id, SQLite
    -- scans the whole records table once per deleted row (deleting a 10,000-row
    -- dataset took 12 s, a million rows would take days). Partial: free for imports.
    CREATE INDEX records_replaces ON records(replaces_id) WHERE replaces_id IS NOT NULL;
    CREATE INDEX prompts_by_record ON prompts(record_id) WHERE record_id IS NOT NULL;
    """)


def _v3(conn: sqlite3.Connection) -> None:
    """Ranking queues: what an annotator works through, and what each decision showed.

    A ``queues`` row is a saved queue set-up (prompt source, pairwise or
    k-wise, annotator, seed, self-consistency rate, blind-comparison arms);
    its state lives in ``rankings`` and ``queue_skips``, so a restarted app
    resumes exactly where the annotator left off. ``rankings.shown`` records
    the candidate ids in display order (left to right) so position bias can
    be measured; ``rankings.repeat_of`` marks a self-consistency repeat of an
    earlier ranking (shown with positions swapped).
    """
    _run_script(conn, """
    CREATE TABLE queues(
        id           INTEGER PRIMARY KEY,
        name         TEXT NOT NULL,
        annotator    TEXT NOT NULL,
        mode         TEXT NOT NULL CHECK (mode IN ('pairwise','kwise')),
        k            INTEGER NOT NULL DEFAULT 4,
        source       TEXT NOT NULL DEFAULT '{}',   -- JSON prompt source: all | dataset | tag | prompt ids
        seed         INTEGER NOT NULL DEFAULT 0,
        repeat_every INTEGER NOT NULL DEFAULT 0,   -- every Nth decision a repeat (0: none)
        compare      TEXT,                         -- JSON arms of a blind comparison, else NULL
        created_at   REAL NOT NULL
    );

    -- Items skipped in a queue: they come back after everything else.
    CREATE TABLE queue_skips(
        queue_id   INTEGER NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
        prompt_id  INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
        created_at REAL NOT NULL,
        PRIMARY KEY (queue_id, prompt_id)
    ) WITHOUT ROWID;

    ALTER TABLE rankings ADD COLUMN queue_id INTEGER REFERENCES queues(id) ON DELETE SET NULL;
    ALTER TABLE rankings ADD COLUMN shown TEXT;   -- JSON candidate ids, left to right
    ALTER TABLE rankings ADD COLUMN repeat_of INTEGER REFERENCES rankings(id) ON DELETE SET NULL;

    CREATE INDEX rankings_by_queue ON rankings(queue_id, annotator, id);
    CREATE INDEX rankings_repeats ON rankings(repeat_of) WHERE repeat_of IS NOT NULL;
    -- Candidates of one generation run (its source) per prompt: blind comparisons.
    CREATE INDEX candidates_by_source ON candidates(source_id, prompt_id);
    """)


def _v4(conn: sqlite3.Connection) -> None:
    """Indexes for the foreign keys SQLite checks when a parent row goes.

    With ``foreign_keys = ON``, deleting a ranking (undo in the Rank page)
    looks for records derived from it, deleting a record (a dataset delete)
    looks for snapshots holding it, and so on: without an index on the child
    column each check scans the whole child table (30 ms per undo at 300,000
    records, growing linearly). Partial indexes where the column is mostly
    NULL, so the importer's rows add nothing to them.
    """
    _run_script(conn, """
    CREATE INDEX records_by_ranking ON records(ranking_id) WHERE ranking_id IS NOT NULL;
    CREATE INDEX records_by_candidate ON records(candidate_id) WHERE candidate_id IS NOT NULL;
    CREATE INDEX snapshot_records_by_record ON snapshot_records(record_id);
    CREATE INDEX candidates_by_parent ON candidates(parent_id) WHERE parent_id IS NOT NULL;
    CREATE INDEX queue_skips_by_prompt ON queue_skips(prompt_id);
    """)


#: (version reached, upgrade function), in order. ``MIGRATIONS[i]`` upgrades
#: from version ``i`` to ``i + 1``.
MIGRATIONS: list[tuple[int, Callable[[sqlite3.Connection], None]]] = [
    (1, _v1),
    (2, _v2),
    (3, _v3),
    (4, _v4),
]

LATEST_VERSION = MIGRATIONS[-1][0]


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, *, target: int | None = None,
            migrations: list[tuple[int, Callable[[sqlite3.Connection], None]]] | None = None) -> list[int]:
    """Upgrade the schema to ``target``; return the versions applied.

    Each step runs in its own write transaction together with the
    ``user_version`` bump. A workspace written by a newer version of the app
    is refused rather than modified.
    """
    chain = MIGRATIONS if migrations is None else migrations
    latest = chain[-1][0] if chain else 0
    target = latest if target is None else target
    current = schema_version(conn)
    if current > latest:
        raise WorkspaceError(
            f"workspace schema version {current} is newer than this app supports ({latest}); "
            "upgrade RLHF Workbench to open it")
    applied = []
    for version, upgrade in chain:
        if version <= current or version > target:
            continue
        if version != current + 1:
            raise WorkspaceError(f"migration chain has a gap: at version {current}, next is {version}")
        with write_transaction(conn, what="workspace migration"):
            # Re-read inside the lock: another process may have migrated meanwhile.
            if schema_version(conn) >= version:
                current = schema_version(conn)
                continue
            upgrade(conn)
            conn.execute(f"PRAGMA user_version = {version}")
        current = version
        applied.append(version)
    return applied
