"""An import never blocks other writers for more than one chunk, and stays invisible until published.

The importer's progress callback runs between batches, when a staged import
holds no lock: another connection (a ranking decision, a dataset created by
hand) must be able to commit right then without waiting at all
(``lock_timeout_s=0``), and must not see the half-imported dataset.
"""

from __future__ import annotations

import json

import pytest

from workbench.data.importer import import_file
from workbench.errors import DataError, WorkbenchError
from workbench.store import annotations as A
from workbench.store import datasets as R
from workbench.store import queue as Q
from workbench.store import search, staging
from workbench.store.workspace import Workspace

ROWS = 12_000   # several chunks (staging.CHUNK_ROWS) and several reader batches


def _rows(n: int, word: str = "zebrafish") -> str:
    return "".join(json.dumps({"prompt": f"Frage {i}: wie geht's? {word} ünïcode",
                               "chosen": f"good answer {i} " + "long text " * 20,
                               "rejected": f"bad answer {i}"}, ensure_ascii=False) + "\n"
                   for i in range(n))


def _orphans(ws: Workspace) -> int:
    return ws.conn.execute("SELECT count(*) FROM records WHERE dataset_id NOT IN (SELECT id FROM datasets)"
                           ).fetchone()[0]


def _pending(ws: Workspace) -> list:
    return ws.conn.execute("SELECT key FROM meta WHERE key LIKE 'pending_import:%'").fetchall()


def _queue(ws: Workspace) -> int:
    with ws.transaction() as c:
        for i in range(3):
            pid = A.add_prompt(c, f"Which reply is kinder? #{i}")
            A.add_candidate(c, pid, "Thank you!", model="a")
            A.add_candidate(c, pid, "Whatever.", model="b")
        return Q.create_queue(c, Q.QueueSpec(annotator="ana", repeat_every=0))


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])   # the fast (pyarrow) path and the precise one
def test_a_decision_commits_at_once_while_an_import_runs_and_the_import_is_invisible_until_done(kit, tmp_path,
                                                                                               fmt):
    ws = kit.ws
    queue_id = _queue(ws)
    before = ws.info()
    if fmt == "jsonl":
        path = kit.path("big.jsonl", _rows(ROWS))
    else:
        path = tmp_path / "big.csv"
        path.write_text("prompt,chosen,rejected\n" + "".join(
            f"Frage {i} zebrafish,good {i},bad {i}\n" for i in range(ROWS)), encoding="utf-8")
    other = Workspace.open(ws.root, lock_timeout_s=0)   # a second writer that never waits
    seen = []

    def progress(fraction, message):
        if fraction >= 1.0 or seen:
            return
        stored = ws.conn.execute("SELECT count(*) FROM records").fetchone()[0]
        if stored == before.records:
            return   # nothing written yet
        # Half-way: rows are on disk, but no reader sees a dataset, a record, or a count of them.
        assert "big" not in [d.name for d in R.list_datasets(other.conn)]
        assert other.info().records == before.records
        # The write lock is free between chunks: a ranking decision commits without waiting.
        q = Q.RankingQueue(other.conn, queue_id)
        seen.append(q.choose(0).ranking_id)
        # ... and a dataset made meanwhile gets its own id, not the one the import reserved.
        with other.transaction() as c:
            seen.append(R.create_dataset(c, "made during the import", "sft", "standard"))
        # The search index can catch up meanwhile (it indexes rows no one can see yet).
        search.catch_up(other.conn)

    report = import_file(ws, path, "big", progress=progress)
    assert len(seen) == 2, "the progress callback never ran half-way"
    assert report.rows == ROWS
    assert other.conn.execute("SELECT count(*) FROM rankings WHERE id = ?", (seen[0],)).fetchone()[0] == 1
    infos = {d.name: d for d in R.list_datasets(other.conn)}
    assert infos["big"].rows == ROWS and infos["made during the import"].rows == 0
    assert infos["big"].id != infos["made during the import"].id
    assert other.info().records == before.records + ROWS
    assert _orphans(ws) == 0 and _pending(ws) == []
    # Search finds the imported rows, those indexed half-way and those after.
    search.catch_up(other.conn)
    big_ids = {i for (i,) in ws.conn.execute("SELECT id FROM records WHERE dataset_id = ?", (infos["big"].id,))}
    assert set(search.match_ids(other.conn, "zebrafish")) == big_ids
    assert ws.integrity_check() == "ok"
    other.close()


def test_a_late_error_deletes_the_chunks_already_written(kit):
    ws = kit.ws
    before = kit.state(ws)
    other = Workspace.open(ws.root, lock_timeout_s=0)
    indexed = []

    def progress(fraction, message):
        if not indexed and ws.conn.execute("SELECT count(*) FROM records").fetchone()[0] > before["records"]:
            indexed.append(search.catch_up(other.conn))   # the index sees the chunks half-way

    text = _rows(ROWS) + '{"prompt": "p", "chosen": 5, "rejected": "r"}\n'
    with pytest.raises(DataError) as err:
        import_file(ws, kit.path("bad.jsonl", text), "bad", progress=progress)
    assert f":{ROWS + 1}:" in str(err.value) and "chosen" in str(err.value)
    assert indexed and indexed[0] > 0
    assert kit.state(ws) == before
    assert _orphans(ws) == 0 and _pending(ws) == []
    # Foreign keys are back on for the importer's connection afterwards.
    assert ws.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    # The index forgot the deleted rows; the same rows imported again are found, once each.
    search.catch_up(other.conn)
    assert search.match_ids(other.conn, "zebrafish") == []
    assert import_file(ws, kit.path("good.jsonl", _rows(ROWS)), "good").rows == ROWS
    search.catch_up(other.conn)
    assert len(search.match_ids(other.conn, "zebrafish")) == ROWS
    assert ws.integrity_check() == "ok"
    other.close()


def test_a_dataset_taking_the_name_meanwhile_makes_the_import_fail_cleanly(kit):
    ws = kit.ws
    before = kit.state(ws)
    other = Workspace.open(ws.root, lock_timeout_s=0)
    done = []

    def progress(fraction, message):
        if not done and fraction < 1.0:
            with other.transaction() as c:
                done.append(R.create_dataset(c, "big", "sft", "standard"))

    with pytest.raises(WorkbenchError, match="already exists"):
        import_file(ws, kit.path("big.jsonl", _rows(ROWS)), "big", progress=progress)
    state = kit.state(ws)
    assert state["datasets"] == before["datasets"] + 1 and state["records"] == before["records"]
    assert _orphans(ws) == 0 and _pending(ws) == []
    other.close()


def test_leftovers_of_a_dead_importer_are_cleaned_when_the_workspace_opens(kit):
    """What a process killed half-way leaves (its committed chunks, its reservation) goes at the next open."""
    ws = kit.ws
    before = kit.state(ws)
    pending = staging.begin_import(ws.conn, what="test", path="/x.jsonl", fmt="jsonl", mapping=None, size_bytes=1)
    with pending.writing():
        with pending.write():
            R.insert_rows(ws.conn, pending.dataset_id, [R.encode_record(
                R.Record(prompt="p", chosen="c", rejected="r"), source_id=pending.source_id)] * 3)
    # An owner that no longer runs (pid 2**22 + 1 is above Linux's pid_max default of 2**22).
    ws.conn.execute("UPDATE meta SET value = json_set(value, '$.pid', 4194305) WHERE key = ?", (pending.key,))
    assert _orphans(ws) == 3
    ws.close()
    reopened = Workspace.open(kit.ws.root)
    assert _orphans(reopened) == 0 and _pending(reopened) == []
    assert kit.state(reopened) == before
    reopened.close()


def test_a_running_importers_reservation_is_left_alone_by_another_open(kit):
    ws = kit.ws
    pending = staging.begin_import(ws.conn, what="test", path="/x.jsonl", fmt="jsonl", mapping=None, size_bytes=1)
    other = Workspace.open(ws.root)   # this process (the owner) is alive
    assert len(_pending(other)) == 1
    staging.discard(pending)
    assert _pending(other) == []
    other.close()
