"""A read-only workspace (a read-only mount, a backup, no write permission) is readable.

Listing, info, stats, exporting elsewhere and browsing a ranking queue work;
every write says the workspace is read-only and why, on one line, and
changes nothing.
"""

from __future__ import annotations

import os
import stat

import pytest

from workbench.errors import WorkspaceReadOnlyError
from workbench.store import annotations as A
from workbench.store import datasets as R
from workbench.store import queue as Q
from workbench.store.workspace import Workspace

from .conftest import can_mount, one_line_error, run_cli, write_pairs


def _build(root, tmp_path) -> int:
    assert run_cli("workspace", "init", root).returncode == 0
    assert run_cli("data", "import", write_pairs(tmp_path / "pairs.jsonl", 40), "--workspace", root,
                   "--name", "Präferenzen").returncode == 0
    with Workspace.open(root) as ws:
        with ws.transaction() as c:
            pid = A.add_prompt(c, "Wie spät ist es?")
            A.add_candidate(c, pid, "Zehn Uhr.", model="a")
            A.add_candidate(c, pid, "Keine Ahnung.", model="b")
            return Q.create_queue(c, Q.QueueSpec(annotator="ana", repeat_every=0))


def _check_readable_not_writable(ws_dir, tmp_path, queue_id):
    listed = run_cli("data", "list", "--workspace", ws_dir)
    assert listed.returncode == 0, listed.stderr
    assert "Präferenzen" in listed.stdout
    info = run_cli("workspace", "info", "--workspace", ws_dir, "--json")
    assert info.returncode == 0 and '"records": 40' in info.stdout, info.stderr
    assert run_cli("data", "stats", "Präferenzen", "--workspace", ws_dir).returncode == 0
    assert run_cli("runs", "list", "--workspace", ws_dir).returncode == 0
    out = tmp_path / "exported.jsonl"
    exported = run_cli("data", "export", "Präferenzen", "--workspace", ws_dir, "--format", "jsonl", "--out", out)
    assert exported.returncode == 0, exported.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 40

    for args in (("data", "import", tmp_path / "pairs.jsonl", "--name", "again"),
                 ("data", "delete", "Präferenzen"), ("data", "freeze", "Präferenzen")):
        line = one_line_error(run_cli(*args, "--workspace", ws_dir))
        assert "is read-only (" in line and str(ws_dir) in line, line

    # In-process, as the app opens it: readable, every write refused with the reason.
    ws = Workspace.open(ws_dir)
    try:
        assert ws.read_only
        assert [d.name for d in R.list_datasets(ws.conn)] == ["Präferenzen"]
        queue = Q.RankingQueue(ws.conn, queue_id)
        assert queue.current is not None and len(queue.current.shown) == 2
        with pytest.raises(WorkspaceReadOnlyError, match="read-only"):
            queue.choose(0)
        assert queue.current is not None   # the item stays: nothing was saved
        with pytest.raises(WorkspaceReadOnlyError):
            with ws.transaction() as c:
                c.execute("INSERT INTO meta(key, value) VALUES ('x', 'y')")
    finally:
        ws.close()


def test_a_workspace_on_a_read_only_mount_is_readable_and_writes_say_why(tmp_path, read_only_view):
    src = tmp_path / "src"
    queue_id = _build(src / "ws", tmp_path)
    files_before = sorted(p.name for p in (src / "ws").iterdir())
    ws_dir = read_only_view(src) / "ws"
    _check_readable_not_writable(ws_dir, tmp_path, queue_id)
    assert sorted(p.name for p in (src / "ws").iterdir()) == files_before
    line = one_line_error(run_cli("data", "import", tmp_path / "pairs.jsonl", "--workspace", ws_dir,
                                  "--name", "x"))
    assert "read-only file system" in line


def test_a_backup_whose_wal_was_never_merged_says_to_copy_it(tmp_path, read_only_view):
    src = tmp_path / "src"
    _build(src / "ws", tmp_path)
    ws = Workspace.open(src / "ws")
    ws.conn.execute("PRAGMA wal_autocheckpoint = 0")
    with ws.transaction() as c:
        c.execute("INSERT INTO meta(key, value) VALUES ('only', 'in the WAL')")
    # A copy taken while it was open: the WAL has changes, the shared-memory index is not copied.
    import shutil
    backup = tmp_path / "backup"
    (backup / "ws").mkdir(parents=True)
    for name in ("workspace.sqlite", "workspace.sqlite-wal"):
        shutil.copy2(src / "ws" / name, backup / "ws" / name)
    ws.close()
    line = one_line_error(run_cli("data", "list", "--workspace", read_only_view(backup) / "ws"))
    assert "workspace.sqlite-wal holds changes" in line and "copy the workspace folder" in line


@pytest.mark.skipif(can_mount() or not hasattr(os, "geteuid"),
                    reason="root writes through permission bits; the mount test covers root")
def test_a_folder_without_write_permission_opens_read_only(tmp_path):
    ws_dir = tmp_path / "ws"
    queue_id = _build(ws_dir, tmp_path)
    for p in [*ws_dir.iterdir(), ws_dir]:
        p.chmod(stat.S_IRUSR | stat.S_IXUSR if p.is_dir() else stat.S_IRUSR)
    try:
        _check_readable_not_writable(ws_dir, tmp_path, queue_id)
    finally:
        for p in [ws_dir, *ws_dir.iterdir()]:
            p.chmod(stat.S_IRWXU)
