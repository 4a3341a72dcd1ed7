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


#: (version reached, upgrade function), in order. ``MIGRATIONS[i]`` upgrades
#: from version ``i`` to ``i + 1``.
MIGRATIONS: list[tuple[int, Callable[[sqlite3.Connection], None]]] = [
    (1, _v1),
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
