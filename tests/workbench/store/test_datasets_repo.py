"""Dataset repository: records, edits, soft delete, snapshots and ranking pairs."""

import pytest

from workbench.data.pairs import pairs_from_ordering
from workbench.errors import NotFoundError, WorkbenchError
from workbench.store import datasets as R
from workbench.store.records import Record
from workbench.store.workspace import Workspace


@pytest.fixture
def ws(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    yield ws
    ws.close()


def _make(ws, name="d", n=3, kind="preference"):
    with ws.transaction() as c:
        ds = R.create_dataset(c, name, kind, "standard")
        for i in range(n):
            R.add_record(c, ds, Record(prompt=f"p{i}", chosen=f"good {i}", rejected=f"bad {i}"))
    return R.get_dataset(ws.conn, name)


def test_create_list_and_counts(ws):
    info = _make(ws)
    assert (info.kind, info.style, info.rows) == ("preference", "standard", 3)
    assert [d.name for d in R.list_datasets(ws.conn)] == ["d"]
    with pytest.raises(WorkbenchError, match="already exists"):
        with ws.transaction() as c:
            R.create_dataset(c, "d", "sft", "standard")
    with pytest.raises(NotFoundError, match="datasets here: d"):
        R.get_dataset(ws.conn, "missing")


def test_edit_keeps_original_for_snapshots(ws):
    info = _make(ws)
    with ws.transaction() as c:
        snap = R.freeze(c, "d")
    first = next(R.iter_records(ws.conn, info))
    with ws.transaction() as c:
        new_id = R.replace_record(c, first.id, Record(prompt="p0", chosen="better", rejected="bad 0"))
    live = list(R.iter_records(ws.conn, info))
    assert [r.chosen for r in live] == ["good 1", "good 2", "better"]
    edited = R.get_record(ws.conn, info, new_id)
    assert edited.lineage.replaces_id == first.id
    frozen = list(R.iter_snapshot(ws.conn, info, snap))
    assert [r.chosen for r in frozen] == ["good 0", "good 1", "good 2"]
    # The snapshot hash is a pure function of content: re-hashing gives the same.
    assert R.content_hash(frozen)[0] == snap.hash


def test_soft_delete_and_restore(ws):
    info = _make(ws)
    ids = [r.id for r in R.iter_records(ws.conn, info)]
    with ws.transaction() as c:
        assert R.set_deleted(c, ids[:2], True) == 2
    assert R.get_dataset(ws.conn, "d").rows == 1
    with ws.transaction() as c:
        assert R.set_deleted(c, ids[:2], False) == 2
    assert R.get_dataset(ws.conn, "d").rows == 3


def test_freeze_is_content_addressed(ws):
    _make(ws)
    with ws.transaction() as c:
        a = R.freeze(c, "d")
        b = R.freeze(c, "d")
    assert a.id == b.id and len(a.hash) == 64
    info = R.get_dataset(ws.conn, "d")
    with ws.transaction() as c:
        R.set_splits(c, [(r.id, "train") for r in R.iter_records(c, info)])
        c2 = R.freeze(c, "d")
    assert c2.hash != a.hash  # splits are part of what a snapshot freezes
    assert R.find_snapshot(ws.conn, "d", a.hash[:8]).id == a.id
    with pytest.raises(WorkbenchError, match="at least 6"):
        R.find_snapshot(ws.conn, "d", "ab")


def test_delete_dataset_removes_records_and_snapshots(ws):
    _make(ws)
    with ws.transaction() as c:
        R.freeze(c, "d")
        R.delete_dataset(c, "d")
    assert ws.conn.execute("SELECT count(*) FROM records").fetchone()[0] == 0
    assert ws.conn.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 0


def test_pairs_from_kwise_ranking_with_ties():
    # a > (b = c) > d
    pairs = list(pairs_from_ordering([["a"], ["b", "c"], ["d"]]))
    assert sorted((x, y) for x, y, _ in pairs) == sorted(
        [("a", "b"), ("a", "c"), ("a", "d"), ("b", "d"), ("c", "d")])
    both = list(pairs_from_ordering([["a"], ["b", "c"]], ties="both"))
    assert ("b", "c", True) in both and ("c", "b", True) in both
    assert len(list(pairs_from_ordering([["a", "b"]]))) == 0
    assert len(list(pairs_from_ordering([[1], [2], [3], [4]]))) == 6
    with pytest.raises(ValueError, match="twice"):
        list(pairs_from_ordering([["a"], ["a"]]))


def test_is_current_follows_edits_deletes_restores_and_splits(ws):
    info = _make(ws, n=4)
    with ws.transaction() as c:
        snap = R.freeze(c, "d")
    assert R.is_current(ws.conn, R.get_dataset(ws.conn, "d"), snap)
    first = next(R.iter_records(ws.conn, info))
    with ws.transaction() as c:
        R.set_deleted(c, [first.id], True)
    assert not R.is_current(ws.conn, R.get_dataset(ws.conn, "d"), snap)
    with ws.transaction() as c:
        R.set_deleted(c, [first.id], False)
    assert R.is_current(ws.conn, R.get_dataset(ws.conn, "d"), snap)   # restored: the same rows again
    with ws.transaction() as c:
        c.execute("UPDATE records SET split = 'validation' WHERE id = ?", (first.id,))
    assert not R.is_current(ws.conn, R.get_dataset(ws.conn, "d"), snap)
