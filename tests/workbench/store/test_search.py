"""Full-text search: the v2 migration, safe queries, the append-only index and its upkeep."""

import json

import pytest

from workbench.errors import Cancelled
from workbench.progress import CancelToken
from workbench.store import datasets as R
from workbench.store import migrations, search
from workbench.store.db import connect
from workbench.store.records import Record
from workbench.store.workspace import Workspace


@pytest.fixture
def ws(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    yield ws
    ws.close()


def _chat(*turns):
    return [{"role": role, "content": text} for role, text in turns]


def _dataset(ws, name, records, kind="preference", style="standard"):
    with ws.transaction() as c:
        ds = R.create_dataset(c, name, kind, style)
        return [R.add_record(c, ds, rec) for rec in records]


def _fts_integrity(conn):
    conn.execute("INSERT INTO record_fts(record_fts, rank) VALUES ('integrity-check', 0)")


# -- queries ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("python", '"python"*'),
    ("python ", '"python"'),
    ("hello wor", '"hello" "wor"*'),
    ("hello wo", '"hello" "wo"'),                 # a two-letter prefix matches whole words only
    ('say "hi" AND NOT x', '"say" "hi" "AND" "NOT" "x"'),
    ("don't", '"don t"'),
    ("snake_case foo.bar", '"snake case" "foo bar"*'),
    ("NEAR(a b) -c *", '"NEAR a" "b" "c"'),
    ("  ?!  ", None),
    ("", None),
])
def test_fts_query_quotes_every_term(text, expected):
    assert search.fts_query(text) == expected


def test_any_typed_text_is_a_valid_query(ws):
    _dataset(ws, "d", [Record(prompt="p", chosen="c", rejected="r")])
    search.catch_up(ws.conn)
    for text in ['"', "a\"b", "(", ")", "*", "^x", "col:x", "a OR", "NOT", "-", "x NEAR/2 y", "'''", "é*"]:
        query = search.fts_query(text)
        if query is not None:
            ws.conn.execute("SELECT rowid FROM record_fts WHERE record_fts MATCH ?", (query,)).fetchall()


# -- the index ---------------------------------------------------------------------------------

def test_search_finds_message_contents_not_json_keys(ws):
    ids = _dataset(ws, "chat", [
        Record(prompt=_chat(("system", "Be brief."), ("user", "How do I reverse a list in Python?")),
               chosen=_chat(("assistant", "Use `items[::-1]` or reversed().")),
               rejected=_chat(("assistant", "You cannot."))),
        Record(prompt=_chat(("user", "Name a prime number")),
               chosen=_chat(("assistant", "Seven")), rejected=_chat(("assistant", "Nine"))),
    ], style="conversational")
    assert search.catch_up(ws.conn) == 2
    assert search.match_ids(ws.conn, "reverse python") == [ids[0]]
    assert search.match_ids(ws.conn, "reversed") == [ids[0]]   # inside a code span
    assert search.match_ids(ws.conn, "brief") == [ids[0]]      # the system turn counts too
    assert search.match_ids(ws.conn, "nine") == [ids[1]]       # rejected text is searchable
    # JSON keys and roles are not text a person wrote.
    assert search.match_ids(ws.conn, "role") == []
    assert search.match_ids(ws.conn, "content") == []
    assert search.match_ids(ws.conn, "assistant") == []
    _fts_integrity(ws.conn)


def test_plain_text_that_looks_like_json_is_indexed_as_written(ws):
    ids = _dataset(ws, "d", [Record(prompt="[1, 2, 3] sorted", chosen='{"a": "zebra"}', rejected="[]")])
    search.catch_up(ws.conn)
    assert search.match_ids(ws.conn, "sorted") == ids
    assert search.match_ids(ws.conn, "zebra") == ids


def test_prefix_matching_and_case_and_diacritics(ws):
    ids = _dataset(ws, "d", [Record(prompt="Gradient descent", chosen="Café crème", rejected="x")])
    search.catch_up(ws.conn)
    assert search.match_ids(ws.conn, "gradi") == ids
    assert search.match_ids(ws.conn, "GRADIENT DESCENT") == ids
    assert search.match_ids(ws.conn, "cafe creme") == ids
    assert search.match_ids(ws.conn, "gradi ") == []   # a finished word is matched whole


def test_catch_up_is_incremental_and_idempotent(ws):
    first = _dataset(ws, "a", [Record(prompt=f"alpha {i}", chosen="c", rejected="r") for i in range(5)])
    assert search.pending(ws.conn) == 5
    assert search.catch_up(ws.conn, batch_rows=2) == 5
    assert search.watermark(ws.conn) == first[-1]
    assert search.pending(ws.conn) == 0
    assert search.catch_up(ws.conn) == 0
    more = _dataset(ws, "b", [Record(prompt="alpha later", chosen="c", rejected="r")])
    assert search.match_ids(ws.conn, "later") == []            # not indexed yet
    assert search.pending(ws.conn) == 1
    assert search.catch_up(ws.conn) == 1
    assert search.match_ids(ws.conn, "later") == more
    assert search.match_ids(ws.conn, "alpha") == first + more  # each row once
    _fts_integrity(ws.conn)


def test_catch_up_reports_progress_and_stops_on_cancel(ws):
    _dataset(ws, "a", [Record(prompt=f"row {i}", chosen="c", rejected="r") for i in range(6)])
    token = CancelToken()
    seen = []

    def progress(fraction, message):
        seen.append(fraction)
        if len(seen) == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        search.catch_up(ws.conn, progress, token, batch_rows=2)
    assert search.watermark(ws.conn) > 0 and search.pending(ws.conn) == 2   # kept what it did
    assert search.catch_up(ws.conn, batch_rows=2) == 2
    assert seen[0] == pytest.approx(2 / 6)


def test_two_connections_never_index_a_row_twice(ws, tmp_path):
    _dataset(ws, "a", [Record(prompt=f"same {i}", chosen="c", rejected="r") for i in range(30)])
    other = connect(ws.db_path)
    done = search.catch_up(ws.conn, batch_rows=7) + search.catch_up(other, batch_rows=7)
    assert done == 30
    assert ws.conn.execute("SELECT count(*) FROM record_fts_docsize").fetchone()[0] == 30
    other.close()


def test_soft_deleted_and_replaced_records_drop_out_of_results(ws):
    ids = _dataset(ws, "d", [Record(prompt="keep me", chosen="c", rejected="r"),
                             Record(prompt="delete me", chosen="c", rejected="r")])
    search.catch_up(ws.conn)
    with ws.transaction() as c:
        R.set_deleted(c, [ids[1]], True)
        new_id = R.replace_record(c, ids[0], Record(prompt="kept and edited", chosen="c", rejected="r"))
    assert search.match_ids(ws.conn, "delete") == []
    assert search.match_ids(ws.conn, "keep") == []            # the original was replaced
    search.catch_up(ws.conn)
    assert search.match_ids(ws.conn, "edited") == [new_id]
    with ws.transaction() as c:
        R.set_deleted(c, [ids[1]], False)
    assert search.match_ids(ws.conn, "delete") == [ids[1]]    # restore needs no re-indexing


def test_deleting_a_dataset_forgets_its_rows_even_when_ids_are_reused(ws):
    keep = _dataset(ws, "keep", [Record(prompt="stays here", chosen="c", rejected="r")])
    gone = _dataset(ws, "gone", [Record(prompt=f"vanishing {i}", chosen="c", rejected="r") for i in range(3)])
    search.catch_up(ws.conn)
    with ws.transaction() as c:
        R.delete_dataset(c, "gone")
    assert search.match_ids(ws.conn, "vanishing") == []
    # SQLite hands the freed top ids out again: the new rows sit at or below the watermark.
    new = _dataset(ws, "new", [Record(prompt=f"fresh {i}", chosen="c", rejected="r") for i in range(5)])
    assert set(new) & set(gone)
    assert search.pending(ws.conn) > 0
    search.catch_up(ws.conn)
    assert search.match_ids(ws.conn, "fresh") == new
    assert search.match_ids(ws.conn, "vanishing") == []
    assert search.match_ids(ws.conn, "stays") == keep
    _fts_integrity(ws.conn)


def test_deleting_unindexed_rows_leaves_the_index_alone(ws):
    _dataset(ws, "a", [Record(prompt="indexed", chosen="c", rejected="r")])
    search.catch_up(ws.conn)
    _dataset(ws, "b", [Record(prompt="never indexed", chosen="c", rejected="r")])
    with ws.transaction() as c:
        R.delete_dataset(c, "b")
    assert ws.conn.execute("SELECT count(*) FROM meta WHERE key = 'fts_gaps'").fetchone()[0] == 0
    _fts_integrity(ws.conn)
    assert search.match_ids(ws.conn, "indexed") != []


# -- the migration ----------------------------------------------------------------------------

def test_v2_migrates_a_v1_workspace_with_data(tmp_path):
    conn = connect(tmp_path / "w.sqlite")
    migrations.migrate(conn, target=1)
    conn.execute("INSERT INTO datasets(name, kind, style, created_at, updated_at) "
                 "VALUES ('old', 'sft', 'conversational', 0, 0)")
    conn.execute("INSERT INTO records(dataset_id, messages) VALUES (1, ?)",
                 (json.dumps(_chat(("user", "legacy question"), ("assistant", "legacy answer"))),))
    assert migrations.migrate(conn, target=2) == [2]
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"record_fts", "record_text", "records_fts_forget", "records_deleted", "records_split",
            "records_replaces", "prompts_by_record"} <= names
    assert conn.execute("SELECT body FROM record_text").fetchone()[0].split("\n") == [
        "", "", "legacy question", "legacy answer", "", ""]
    assert search.catch_up(conn) == 1
    assert search.match_ids(conn, "legacy answer") == [1]
    # Deleting a record looks up the records that replace it (a foreign key): by index,
    # or deleting a dataset scans the whole table once per row.
    plan = " ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN SELECT 1 FROM records WHERE replaces_id = ?",
                                                (1,)))
    assert "records_replaces" in plan
    assert migrations.migrate(conn) == list(range(3, migrations.LATEST_VERSION + 1))
