"""The dataset manager's queries: id lists by filter and sort, page previews, summaries, facets."""

import json
import time

import pytest

from workbench.data.importer import import_file
from workbench.errors import Cancelled, WorkbenchError
from workbench.progress import CancelToken
from workbench.store import browse as B
from workbench.store import datasets as R
from workbench.store import search
from workbench.store.records import Record
from workbench.store.workspace import Workspace


@pytest.fixture
def ws(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    yield ws
    ws.close()


ROWS = [
    {"prompt": "Write a haiku about rain", "chosen": "Soft rain on the roof", "rejected": "Rain is wet.",
     "tags": ["poetry"]},
    {"prompt": "explain recursion", "chosen": "A function that calls itself", "rejected": "Loops.",
     "tags": ["code", "cs"]},
    {"prompt": "Binary search in Python?", "chosen": "Halve the range each step", "rejected": "Scan it all.",
     "tags": ["code"]},
    {"prompt": "capital of France", "chosen": "Paris", "rejected": "Lyon"},
    {"prompt": "Another haiku, about snow", "chosen": "White hush on the pines", "rejected": "Snow is cold."},
]


@pytest.fixture
def pairs(ws, tmp_path):
    """An imported preference dataset (with a source file) plus an edit, a split and a ranked record."""
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    import_file(ws, path, "pairs").checkpoint_thread.join()
    info = R.get_dataset(ws.conn, "pairs")
    ids = [r.id for r in R.iter_records(ws.conn, info)]
    with ws.transaction() as c:
        R.set_splits(c, [(ids[0], "train"), (ids[1], "train"), (ids[2], "validation")])
        edited = R.replace_record(c, ids[4], Record(prompt="Another haiku, about SNOW", chosen="White hush",
                                                    rejected="Snow is cold.", tags=("poetry",)))
        R.set_deleted(c, [ids[3]], True)
        # A prompt made from record ids[1] was ranked: that record counts as ranked.
        pid = c.execute("INSERT INTO prompts(prompt, style, record_id, created_at) VALUES (?, 'standard', ?, 0)",
                        ("explain recursion", ids[1])).lastrowid
        c.execute("INSERT INTO rankings(prompt_id, annotator, ordering, created_at) VALUES (?, 'me', '[]', 0)",
                  (pid,))
    summary = next(s for s in B.list_summaries(ws.conn) if s.name == "pairs")
    source = c.execute("SELECT id FROM sources").fetchone()[0]
    return summary, ids, edited, source


def q(summary, **kw):
    return B.BrowseQuery(summary.id, style=summary.style, **kw)


def ids_of(ws, query, **kw):
    return list(B.record_ids(ws.conn, query, **kw))


def test_default_order_hides_deleted_and_replaced(ws, pairs):
    s, ids, edited, _ = pairs
    live = [ids[0], ids[1], ids[2], edited]
    assert ids_of(ws, q(s)) == live
    assert ids_of(ws, q(s, descending=True)) == live[::-1]
    assert ids_of(ws, q(s, show_deleted=True)) == sorted(ids + [edited])
    assert ids_of(ws, q(s), limit=2) == live[:2]


def test_unfiltered_and_split_queries_read_indexes_only(ws, pairs):
    """No plan step may read the records' pages (a SEARCH or SCAN of records without a
    covering index), nor sort: the id order comes straight from the index."""
    s = pairs[0]
    for query in (q(s), q(s, descending=True), q(s, split="train"), q(s, split=B.NO_SPLIT),
                  q(s, split=B.NO_SPLIT, show_deleted=True), q(s, show_deleted=True)):
        for limit in (None, 200):
            plan = B.query_plan(ws.conn, query, limit=limit)
            table_reads = [step for step in plan if step.startswith(("SEARCH r ", "SCAN r"))
                           and "COVERING INDEX" not in step]
            assert not table_reads and not any("TEMP B-TREE" in step for step in plan), (query, plan)


def test_filters_split_tag_source_ranked_and_their_combinations(ws, pairs):
    s, ids, edited, source = pairs
    assert ids_of(ws, q(s, split="train")) == [ids[0], ids[1]]
    assert ids_of(ws, q(s, split="validation")) == [ids[2]]
    assert ids_of(ws, q(s, split=B.NO_SPLIT)) == [edited]
    assert ids_of(ws, q(s, tag="code")) == [ids[1], ids[2]]
    assert ids_of(ws, q(s, tag="poetry")) == [ids[0], edited]
    assert ids_of(ws, q(s, tag="nope")) == []
    assert ids_of(ws, q(s, source=source)) == [ids[0], ids[1], ids[2]]
    assert ids_of(ws, q(s, source=B.NO_SOURCE)) == [edited]
    assert ids_of(ws, q(s, ranked=True)) == [ids[1]]
    assert ids_of(ws, q(s, ranked=False)) == [ids[0], ids[2], edited]
    assert ids_of(ws, q(s, tag="code", split="validation")) == [ids[2]]
    assert ids_of(ws, q(s, tag="code", ranked=False)) == [ids[2]]
    assert ids_of(ws, q(s, tag="poetry", split="train", source=source)) == [ids[0]]
    assert ids_of(ws, q(s, show_deleted=True, split=B.NO_SPLIT)) == [ids[3], ids[4], edited]


def test_search_combines_with_filters_and_skips_deleted(ws, pairs):
    s, ids, edited, _ = pairs
    search.catch_up(ws.conn)
    assert ids_of(ws, q(s, text="haiku")) == [ids[0], edited]
    assert ids_of(ws, q(s, text="haiku", descending=True)) == [edited, ids[0]]
    assert ids_of(ws, q(s, text="haiku", split="train")) == [ids[0]]
    assert ids_of(ws, q(s, text="haiku", show_deleted=True)) == [ids[0], ids[4], edited]
    assert ids_of(ws, q(s, text="paris")) == []                      # deleted
    assert ids_of(ws, q(s, text="paris", show_deleted=True)) == [ids[3]]
    assert ids_of(ws, q(s, text="ha")) == []                         # too short for a prefix
    assert ids_of(ws, q(s, text="hal")) == [ids[2]]
    assert ids_of(ws, q(s, text="?!")) == []
    assert ids_of(ws, q(s, text="rain roof", sort="prompt")) == [ids[0]]
    # The first page of a search comes straight from the index, no sort.
    assert "TEMP B-TREE" not in " ".join(B.query_plan(ws.conn, q(s, text="haiku"), limit=200))


def test_other_datasets_never_leak_in(ws, pairs):
    s, ids, edited, _ = pairs
    with ws.transaction() as c:
        other = R.create_dataset(c, "other", "preference", "standard")
        R.add_record(c, other, Record(prompt="haiku elsewhere", chosen="a", rejected="b", tags=("code",)))
    search.catch_up(ws.conn)
    assert ids_of(ws, q(s, text="haiku")) == [ids[0], edited]
    assert ids_of(ws, q(s, tag="code")) == [ids[1], ids[2]]


def test_sort_orders(ws, pairs):
    s, ids, edited, source = pairs
    # Text sorts are case-insensitive, ties by id.
    assert ids_of(ws, q(s, sort="prompt")) == [edited, ids[2], ids[1], ids[0]]
    assert ids_of(ws, q(s, sort="prompt", descending=True)) == [ids[0], ids[1], ids[2], edited]
    assert ids_of(ws, q(s, sort="chosen")) == [ids[1], ids[2], ids[0], edited]
    # NULL (no split) first, then train, validation.
    assert ids_of(ws, q(s, sort="split")) == [edited, ids[0], ids[1], ids[2]]
    assert ids_of(ws, q(s, sort="source")) == [edited, ids[0], ids[1], ids[2]]
    assert ids_of(ws, q(s, sort="tags")) == [ids[2], ids[1], ids[0], edited]
    with pytest.raises(WorkbenchError, match="sort 'bogus'"):
        ids_of(ws, q(s, sort="bogus"))


def test_cancel_interrupts_a_query(ws, pairs):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        B.record_ids(ws.conn, q(pairs[0], sort="prompt"), cancel=token)
    assert ids_of(ws, q(pairs[0]))  # the connection still works afterwards


def test_previews_per_kind_and_page_boundaries(ws):
    with ws.transaction() as c:
        ds = R.create_dataset(c, "many", "preference", "standard")
        made = [R.add_record(c, ds, Record(prompt=f"prompt {i}\n  second   line", chosen="x" * 500,
                                           rejected=f"r{i}")) for i in range(1203)]
    got = B.fetch_previews(ws.conn, "preference", "standard", made)
    assert sorted(got) == made                      # chunks of 500: 0-499, 500-999, 1000-1202
    p = got[made[1000]]
    assert p.cells["prompt"] == "prompt 1000 second line"
    assert len(p.cells["chosen"]) == 200 and p.cells["chosen"].endswith("\u2026")
    assert p.cells["rejected"] == "r1000" and p.cells["source"] == "" and not p.deleted
    assert B.fetch_previews(ws.conn, "preference", "standard", []) == {}


def test_previews_of_conversations_show_the_last_turn(ws):
    chat = [{"role": "system", "content": "Be kind"}, {"role": "user", "content": "Hi there"},
            {"role": "assistant", "content": "Hello!\nHow can I help?"}]
    with ws.transaction() as c:
        ds = R.create_dataset(c, "chats", "sft", "conversational")
        rid = R.add_record(c, ds, Record(messages=chat))
        pid = R.add_record(c, ds, Record(prompt=chat[:2], completion=chat[2:]))
    got = B.fetch_previews(ws.conn, "sft", "conversational", [rid, pid])
    assert got[rid].cells["prompt"] == "[3 turns] Hi there"
    assert got[rid].cells["completion"] == "Hello! How can I help?"
    assert got[pid].cells["prompt"] == "[2 turns] Hi there"
    assert got[pid].cells["completion"] == "Hello! How can I help?"
    s = next(x for x in B.list_summaries(ws.conn) if x.name == "chats")
    assert list(B.record_ids(ws.conn, B.BrowseQuery(s.id, style=s.style, sort="completion"))) == [rid, pid]


def test_preview_source_labels_and_columns(ws, pairs):
    s, ids, edited, _ = pairs
    got = B.fetch_previews(ws.conn, s.kind, s.style, [ids[0], edited, ids[3]])
    assert got[ids[0]].cells["source"] == "pairs.jsonl:1"
    assert got[ids[0]].cells["tags"] == "poetry" and got[ids[0]].split == "train"
    assert got[edited].cells["source"] == f"edit of #{ids[4]}" and got[edited].replaces_id == ids[4]
    assert got[ids[3]].deleted
    assert [k for k, _ in B.columns("preference")] == ["id", "prompt", "chosen", "rejected", "split", "tags",
                                                      "source"]
    assert [k for k, _ in B.columns("unpaired")][1:4] == ["prompt", "completion", "label"]


def test_summaries_count_from_the_index(ws, pairs):
    s, ids, edited, _ = pairs
    assert (s.kind, s.style, s.rows, s.train, s.validation, s.unassigned, s.deleted) == (
        "preference", "standard", 4, 2, 1, 1, 2)
    with ws.transaction() as c:
        snap = R.freeze(c, "pairs", note="v1")
    s2 = B.get_summary(ws.conn, s.id)
    assert [b.hash for b in s2.snapshots] == [snap.hash] and s2.snapshots[0].short_hash == snap.hash[:10]
    assert s2.updated_at >= s.created_at
    assert s2.info().name == "pairs" and s2.info().rows == 4


def test_facets_tags_and_sources(ws, pairs):
    s, ids, edited, source = pairs
    assert B.dataset_tags(ws.conn, s.id) == [("code", 2), ("cs", 1), ("poetry", 2)]
    facets = B.dataset_sources(ws.conn, s.id)
    assert [(f.id, f.rows) for f in facets] == [(B.NO_SOURCE, 1), (source, 3)]
    assert facets[1].label.startswith("pairs.jsonl")


def test_record_detail_carries_lineage(ws, pairs):
    s, ids, edited, _ = pairs
    d = B.record_detail(ws.conn, s, edited)
    assert d.record.prompt == "Another haiku, about SNOW" and d.record.lineage.replaces_id == ids[4]
    original = B.record_detail(ws.conn, s, ids[4])
    assert original.record.deleted and original.replaced_by == edited and d.replaced_by is None
    ranked = B.record_detail(ws.conn, s, ids[1])
    assert ranked.prompt_rankings == 1 and ranked.record.tags == ("code", "cs")
    assert ranked.record.lineage.path.endswith("pairs.jsonl") and ranked.record.lineage.line == 2


def test_a_large_dataset_is_paged_not_loaded(ws, tmp_path):
    """20k rows: the first page and a page from the middle come back without a full read."""
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "a", "rejected": "b"}) + "\n"
                            for i in range(20_000)))
    import_file(ws, path, "big").checkpoint_thread.join()
    s = next(x for x in B.list_summaries(ws.conn) if x.name == "big")
    t = time.perf_counter()
    first = B.record_ids(ws.conn, q(s), limit=100)
    assert len(first) == 100 and time.perf_counter() - t < 5  # sanity, not a benchmark
    every = B.record_ids(ws.conn, q(s))
    assert len(every) == 20_000 and list(every[:100]) == list(first)
    page = B.fetch_previews(ws.conn, s.kind, s.style, every[10_000:10_100])
    assert page[every[10_000]].cells["prompt"] == "q10000"
