"""Workspace folder, pragmas, migrations and the write lock between processes."""

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from workbench.errors import WorkspaceBusyError, WorkspaceError
from workbench.store import migrations
from workbench.store.db import connect
from workbench.store.workspace import Workspace, default_workspace_dir


def test_init_creates_folder_layout_and_pragmas(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    assert (tmp_path / "ws" / "workspace.sqlite").is_file()
    assert (tmp_path / "ws" / "runs").is_dir() and (tmp_path / "ws" / "models").is_dir()
    c = ws.conn
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert c.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert c.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert migrations.schema_version(c) == migrations.LATEST_VERSION
    assert ws.integrity_check() == "ok"


def test_init_is_idempotent_and_open_requires_a_workspace(tmp_path):
    Workspace.init(tmp_path / "ws").close()
    again = Workspace.init(tmp_path / "ws")
    assert again.info().schema_version == migrations.LATEST_VERSION
    with pytest.raises(WorkspaceError, match="not a workspace"):
        Workspace.open(tmp_path / "elsewhere")


def test_default_workspace_is_in_user_data_dir():
    path = default_workspace_dir()
    assert "rlhf-workbench" in str(path)


def test_migration_chain_applies_in_order_and_refuses_newer(tmp_path):
    db = tmp_path / "w.sqlite"
    conn = connect(db)
    seen = []

    def v2(c):
        seen.append(2)
        c.execute("CREATE TABLE extra(x INTEGER)")

    nxt = migrations.LATEST_VERSION + 1
    chain = migrations.MIGRATIONS + [(nxt, v2)]
    assert migrations.migrate(conn, migrations=chain) == list(range(1, nxt + 1))
    assert migrations.schema_version(conn) == nxt
    assert migrations.migrate(conn, migrations=chain) == []  # already there
    assert seen == [2]
    # The released app (chain up to LATEST_VERSION) refuses a workspace written by a newer one.
    with pytest.raises(WorkspaceError, match="newer than this app"):
        migrations.migrate(conn)


def test_failed_migration_leaves_previous_version(tmp_path):
    conn = connect(tmp_path / "w.sqlite")
    migrations.migrate(conn)

    def broken(c):
        c.execute("CREATE TABLE half_done(x)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        migrations.migrate(conn, migrations=migrations.MIGRATIONS + [(migrations.LATEST_VERSION + 1, broken)])
    assert migrations.schema_version(conn) == migrations.LATEST_VERSION
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half_done'").fetchone()[0] == 0


def test_v1_schema_from_empty_database_has_all_tables(tmp_path):
    conn = connect(tmp_path / "w.sqlite")
    migrations.migrate(conn)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"prompts", "candidates", "rankings", "datasets", "records", "snapshots",
            "snapshot_records", "sources"} <= names


def test_records_are_immutable(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    with ws.transaction() as c:
        ds = c.execute("INSERT INTO datasets(name, kind, style, created_at, updated_at) "
                       "VALUES ('d', 'prompts', 'standard', 0, 0)").lastrowid
        rid = c.execute("INSERT INTO records(dataset_id, prompt) VALUES (?, 'hi')", (ds,)).lastrowid
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        with ws.transaction() as c:
            c.execute("UPDATE records SET prompt = 'changed' WHERE id = ?", (rid,))
    # Split and deleted flags are metadata and may change.
    with ws.transaction() as c:
        c.execute("UPDATE records SET split = 'train', deleted = 1 WHERE id = ?", (rid,))


def test_transaction_rolls_back_on_error(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    with pytest.raises(KeyError):
        with ws.transaction() as c:
            c.execute("INSERT INTO sources(kind, created_at) VALUES ('manual', 0)")
            raise KeyError("x")
    assert ws.conn.execute("SELECT count(*) FROM sources").fetchone()[0] == 0


def test_second_process_gets_clear_busy_error(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from workbench.store.workspace import Workspace
        ws = Workspace.open({str(tmp_path / 'ws')!r})
        with ws.transaction() as c:
            c.execute("INSERT INTO sources(kind, created_at) VALUES ('manual', 0)")
            print("LOCKED", flush=True)
            sys.stdin.readline()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        waiting = Workspace.open(tmp_path / "ws", lock_timeout_s=0.3)
        with pytest.raises(WorkspaceBusyError, match="another process is writing"):
            with waiting.transaction() as c:
                c.execute("INSERT INTO sources(kind, created_at) VALUES ('manual', 1)")
        # Readers are never blocked by the writer (WAL).
        assert waiting.conn.execute("SELECT count(*) FROM sources").fetchone()[0] == 0
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=20)
    assert holder.returncode == 0
    assert ws.conn.execute("SELECT count(*) FROM sources").fetchone()[0] == 1
    assert ws.integrity_check() == "ok"


def test_every_foreign_key_whose_parent_can_be_deleted_is_indexed(tmp_path):
    """SQLite checks a deleted parent's children by scanning the child column; unindexed, one
    ranking undo scanned every record. ``sources`` rows are never deleted, so their children
    are exempt."""
    with Workspace.init(tmp_path / "ws") as ws:
        conn = ws.conn
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND sql NOT LIKE 'CREATE VIRTUAL%'")]
        missing = []
        for table in tables:
            leading = {conn.execute(f"PRAGMA index_info({idx[1]})").fetchone()[2]
                       for idx in conn.execute(f"PRAGMA index_list({table})")}
            pk = sorted((r for r in conn.execute(f"PRAGMA table_info({table})") if r[5]), key=lambda r: r[5])
            if pk:
                leading.add(pk[0][1])
            for fk in conn.execute(f"PRAGMA foreign_key_list({table})"):
                parent, column = fk[2], fk[3]
                if parent != "sources" and column not in leading:
                    missing.append(f"{table}.{column} -> {parent}")
        assert missing == []
