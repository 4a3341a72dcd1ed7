"""Real processes: a kill -9 in the middle of an import, and a second process wanting the lock.

An import is one write transaction, so a crash half-way must leave the
workspace as it was before the import started, and a writer that cannot get
the lock must fail with a message a person can act on instead of hanging.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import workbench
from workbench.data.importer import import_file
from workbench.errors import WorkspaceBusyError
from workbench.store.workspace import Workspace

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")

REPO = Path(workbench.__file__).resolve().parents[1]
ROW = '{"prompt": "prompt %d of the crash test", "chosen": "good answer %d", "rejected": "bad"}\n'

IMPORTER = textwrap.dedent("""
    import sys
    from workbench.store.workspace import Workspace
    from workbench.data.importer import import_file

    ws = Workspace.open(sys.argv[1])

    def progress(fraction, message):
        print("BATCH", fraction, flush=True)

    import_file(ws, sys.argv[2], "big", progress=progress)
    print("DONE", flush=True)
""")

LOCK_HOLDER = textwrap.dedent("""
    import sys
    from workbench.store.workspace import Workspace

    ws = Workspace.open(sys.argv[1])
    with ws.transaction():
        ws.conn.execute("INSERT INTO meta(key, value) VALUES ('held-by', 'process A')")
        print("LOCKED", flush=True)
        sys.stdin.readline()   # hold the write lock until the test says so
    print("RELEASED", flush=True)
""")


def _spawn(code: str, *args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, **kw)


def _write_rows(path: Path, n: int) -> None:
    path.write_text("".join(ROW % (i, i) for i in range(n)), encoding="utf-8")


def test_kill_9_during_an_import_leaves_the_workspace_as_it_was(kit, tmp_path):
    ws_dir = kit.ws.root
    import_file(kit.ws, kit.path("before.jsonl", ROW % (0, 0)), "before")
    before = kit.state(kit.ws)
    kit.close()

    big = tmp_path / "big.jsonl"
    _write_rows(big, 300_000)  # ~29 MB: several batches, far more than SQLite's page cache
    proc = _spawn(IMPORTER, ws_dir, big)
    try:
        batches = []
        for line in proc.stdout:
            assert not line.startswith("DONE"), "the import finished before the test could kill it"
            if line.startswith("BATCH"):
                batches.append(float(line.split()[1]))
            if len(batches) == 2:
                os.kill(proc.pid, signal.SIGKILL)
                break
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert batches[-1] < 0.9
    # The killed transaction had spilled pages to the WAL: recovery has real work to do.
    assert (ws_dir / "workspace.sqlite-wal").stat().st_size > 1 << 20

    ws = Workspace.open(ws_dir)
    try:
        assert ws.integrity_check() == "ok"
        assert kit.state(ws) == before
        assert ws.conn.execute("SELECT count(*) FROM sources WHERE path = ?", (str(big.resolve()),)).fetchone()[0] == 0
        assert kit.contents(ws, "before") == [{"prompt": "prompt 0 of the crash test", "chosen": "good answer 0",
                                               "rejected": "bad"}]
        # The name is free and the workspace takes the next import.
        small = tmp_path / "small.jsonl"
        _write_rows(small, 1000)
        report = import_file(ws, small, "big")
        assert report.rows == 1000
        assert kit.state(ws)["records"] == before["records"] + 1000
        assert ws.integrity_check() == "ok"
    finally:
        ws.close()


def test_an_import_waiting_for_another_writer_fails_clearly(kit, tmp_path):
    ws_dir = kit.ws.root
    import_file(kit.ws, kit.path("before.jsonl", ROW % (0, 0)), "before")
    kit.close()
    data = tmp_path / "d.jsonl"
    _write_rows(data, 100)

    holder = _spawn(LOCK_HOLDER, ws_dir, stdin=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        ws_b = Workspace.open(ws_dir, lock_timeout_s=0.5)
        try:
            before = kit.state(ws_b)  # readers are not blocked by the writer (WAL)
            started = time.monotonic()
            with pytest.raises(WorkspaceBusyError) as err:
                import_file(ws_b, data, "d")
            waited = time.monotonic() - started
            assert 0.4 <= waited < 5
            msg = str(err.value)
            assert str(ws_dir) in msg and "busy" in msg and "another process" in msg and "try again" in msg
            assert kit.state(ws_b) == before

            holder.stdin.write("\n")
            holder.stdin.flush()
            assert holder.stdout.readline().strip() == "RELEASED"
            assert holder.wait(timeout=30) == 0

            # Process A's write committed; B's failed import left nothing; B can import now.
            assert ws_b.conn.execute("SELECT value FROM meta WHERE key = 'held-by'").fetchone() == ("process A",)
            assert kit.state(ws_b) == before
            assert import_file(ws_b, data, "d").rows == 100
            assert ws_b.integrity_check() == "ok"
        finally:
            ws_b.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        holder.stdin.close()
        holder.stdout.close()
