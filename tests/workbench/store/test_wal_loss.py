"""``workspace.sqlite-wal`` deleted while the workspace is open (a clean-up script, a sync tool).

SQLite goes on writing to the deleted file, which no other process sees and
which is gone when the writer dies: a commit there must not be reported as
saved, and another process opening the workspace gets a message, not
"disk I/O error".
"""

from __future__ import annotations

import sys

import pytest

from workbench.errors import WorkbenchError, WorkspaceError
from workbench.store import annotations as A
from workbench.store import queue as Q
from workbench.store.workspace import Workspace

from .conftest import one_line_error, run_cli

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="an open file cannot be deleted on Windows")


def _workspace(root):
    ws = Workspace.init(root)
    with ws.transaction() as c:
        for i in range(3):
            pid = A.add_prompt(c, f"Prompt {i}")
            A.add_candidate(c, pid, "yes", model="a")
            A.add_candidate(c, pid, "no", model="b")
        queue_id = Q.create_queue(c, Q.QueueSpec(annotator="ana", repeat_every=0))
    return ws, queue_id


def test_a_commit_after_the_wal_was_deleted_is_not_reported_as_saved(tmp_path):
    ws, queue_id = _workspace(tmp_path / "ws")
    queue = Q.RankingQueue(ws.conn, queue_id)
    first = queue.current
    queue.choose(0)
    ws.db_path.with_name("workspace.sqlite-wal").unlink()
    second = queue.current
    with pytest.raises(WorkspaceError) as err:
        queue.choose(1)
    msg = str(err.value)
    assert "workspace.sqlite-wal was deleted while the workspace was open" in msg
    assert "copied into the database file" in msg and "open it again" in msg
    # The queue did not move on as if the decision were saved.
    assert queue.current is second
    # What the deleted WAL held was copied into workspace.sqlite: another process sees both decisions.
    proc = run_cli("workspace", "info", "--workspace", ws.root, "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"rankings": 2' in proc.stdout
    # Every later write on this connection is refused with the same message, nothing half-done.
    with pytest.raises(WorkbenchError, match="was deleted while the workspace was open"):
        queue.choose(1)
    with pytest.raises(WorkspaceError, match="was deleted"):
        with ws.transaction() as c:
            c.execute("INSERT INTO meta(key, value) VALUES ('x', 'y')")
    assert first is not second
    ws.close()


def test_another_process_opening_the_workspace_is_told_the_wal_is_missing(tmp_path):
    ws, _queue_id = _workspace(tmp_path / "ws")
    with ws.transaction() as c:   # changes in the WAL, the index (-shm) says so
        c.execute("INSERT INTO meta(key, value) VALUES ('kept', 'in the WAL')")
    ws.db_path.with_name("workspace.sqlite-wal").unlink()
    for args in (("workspace", "info"), ("data", "list")):
        line = one_line_error(run_cli(*args, "--workspace", ws.root))
        assert "workspace.sqlite-wal is missing" in line and "deleted while the workspace was open" in line
        assert str(ws.root) in line
    ws.close()
