"""Every recognised shape imports from every format, and records come out right."""

from __future__ import annotations

import json

import pytest

from workbench.data import readers
from workbench.data.importer import import_file
from workbench.errors import DataError, WorkbenchError
from workbench.store import datasets as R


def M(role, content):
    return {"role": role, "content": content}


def same(rows):
    """Expected records that are the input rows themselves, one per row."""
    return [(i, dict(r)) for i, r in enumerate(rows)]


_PC = [{"prompt": "What is 2+2?", "completion": "4"},
       {"prompt": 'Say "hi", then a comma, please', "completion": "Hi,\nthere"}]
_MSG = [{"messages": [M("system", "Be brief."), M("user", "hi"), M("assistant", "hello")]},
        {"messages": [M("user", "2+2?"), M("assistant", "4"), M("user", "and 3+3?"), M("assistant", "6")]}]
_PREF = [{"prompt": "Capital of France?", "chosen": "Paris", "rejected": "Lyon"},
         {"prompt": "Colour of the sky?", "chosen": "Blue", "rejected": "Green, obviously"}]
_PREF_C = [{"prompt": [M("user", "Capital of France?")], "chosen": [M("assistant", "Paris")],
            "rejected": [M("assistant", "Lyon")]},
           {"prompt": [M("system", "Be terse."), M("user", "Sky?")], "chosen": [M("assistant", "Blue")],
            "rejected": [M("assistant", "Green")]}]
_SCORE = [{"prompt": "Capital of France?", "chosen": "Paris", "rejected": "Lyon",
           "score_chosen": 9.5, "score_rejected": 2.0},
          {"prompt": "Sky?", "chosen": "Blue", "rejected": "Green", "score_chosen": 7.0, "score_rejected": -1.5}]
_SCORE_C = [dict(r, score_chosen=s, score_rejected=t) for r, (s, t) in zip(_PREF_C, [(9.5, 2.0), (1.0, 0.25)])]
_UNPAIRED = [{"prompt": "Capital of France?", "completion": "Paris", "label": True},
             {"prompt": "Capital of France?", "completion": "Lyon", "label": False}]
_HH = [{"chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how are you?\n\nAssistant: fine, thanks",
        "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how are you?\n\nAssistant: go away"},
       {"chosen": "\n\nHuman: 2+2?\n\nAssistant: 4", "rejected": "\n\nHuman: 2+2?\n\nAssistant: 5"}]
_KW_RANKS = [{"prompt": "Pick the best greeting", "responses": ["hello", "hi there", "yo", "greetings"],
              "ranks": [2, 1, 3, 2]},
             {"prompt": "2+2?", "responses": ["4", "5"], "ranks": [1, 2]}]
_KW_SCORES = [{"prompt": "Pick one", "responses": ["a", "b", "c"], "scores": [0.5, 0.9, 0.5]},
              {"prompt": "All tied", "responses": ["x", "y"], "scores": [1.0, 1.0]}]
_ALPACA = [{"instruction": "Translate to French", "input": "cat", "output": "chat"},
           {"instruction": "Name a colour", "input": "", "output": "blue"}]
_ALPACA_NO_INPUT = [{"instruction": "Name a colour", "output": "blue"}]

#: name -> (rows, shape, kind, style, [(row index, expected record content), ...])
CASES = {
    "sft-standard": (_PC, "prompt-completion", "sft", "standard", same(_PC)),
    "sft-conversational": (_MSG, "messages", "sft", "conversational", same(_MSG)),
    "preference-standard": (_PREF, "preference", "preference", "standard", same(_PREF)),
    "preference-conversational": (_PREF_C, "preference", "preference", "conversational", same(_PREF_C)),
    "implicit-strings": (
        [{"chosen": "Question: why is the sky blue? Answer: Rayleigh scattering.",
          "rejected": "Question: why is the sky blue? Answer: Because it is."}],
        "implicit-preference", "preference", "standard",
        [(0, {"prompt": "Question: why is the sky blue? Answer: ", "chosen": "Rayleigh scattering.",
              "rejected": "Because it is."})]),
    "implicit-messages": (
        [{"chosen": [M("user", "hi"), M("assistant", "hello"), M("user", "joke?"), M("assistant", "A pun.")],
          "rejected": [M("user", "hi"), M("assistant", "hello"), M("user", "joke?"), M("assistant", "No.")]}],
        "implicit-preference", "preference", "conversational",
        [(0, {"prompt": [M("user", "hi"), M("assistant", "hello"), M("user", "joke?")],
              "chosen": [M("assistant", "A pun.")], "rejected": [M("assistant", "No.")]})]),
    "unpaired": (_UNPAIRED, "unpaired", "unpaired", "standard", same(_UNPAIRED)),
    "hh-rlhf": (_HH, "hh-rlhf", "preference", "conversational", [
        (0, {"prompt": [M("user", "hi"), M("assistant", "hello"), M("user", "how are you?")],
             "chosen": [M("assistant", "fine, thanks")], "rejected": [M("assistant", "go away")]}),
        (1, {"prompt": [M("user", "2+2?")], "chosen": [M("assistant", "4")],
             "rejected": [M("assistant", "5")]})]),
    "scores-standard": (_SCORE, "preference", "preference", "standard", same(_SCORE)),
    "scores-conversational": (_SCORE_C, "preference", "preference", "conversational", same(_SCORE_C)),
    # ranks [2, 1, 3, 2]: "hi there" beats all, "hello" and "greetings" tie (no pair), "yo" is last.
    "kwise-ranks": (_KW_RANKS, "kwise", "preference", "standard", [
        (0, {"prompt": "Pick the best greeting", "chosen": "hi there", "rejected": "hello"}),
        (0, {"prompt": "Pick the best greeting", "chosen": "hi there", "rejected": "greetings"}),
        (0, {"prompt": "Pick the best greeting", "chosen": "hi there", "rejected": "yo"}),
        (0, {"prompt": "Pick the best greeting", "chosen": "hello", "rejected": "yo"}),
        (0, {"prompt": "Pick the best greeting", "chosen": "greetings", "rejected": "yo"}),
        (1, {"prompt": "2+2?", "chosen": "4", "rejected": "5"})]),
    # scores: "a" and "c" tie; the all-tied second ranking is stored but gives no pair.
    "kwise-scores": (_KW_SCORES, "kwise", "preference", "standard", [
        (0, {"prompt": "Pick one", "chosen": "b", "rejected": "a", "score_chosen": 0.9, "score_rejected": 0.5}),
        (0, {"prompt": "Pick one", "chosen": "b", "rejected": "c", "score_chosen": 0.9, "score_rejected": 0.5})]),
    "alpaca": (_ALPACA, "alpaca", "sft", "standard", [
        (0, {"prompt": "Translate to French\n\ncat", "completion": "chat"}),
        (1, {"prompt": "Name a colour", "completion": "blue"})]),
    "alpaca-no-input": (_ALPACA_NO_INPUT, "alpaca", "sft", "standard", [
        (0, {"prompt": "Name a colour", "completion": "blue"})]),
}


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet", "hf"])
@pytest.mark.parametrize("case", list(CASES))
def test_every_shape_in_every_format(kit, case, fmt):
    rows, shape, kind, style, expected = CASES[case]
    path, lines = kit.write(kit.tmp_path, fmt, rows)
    report = import_file(kit.ws, path, "d")

    assert (report.shape, report.kind, report.style, report.format) == (shape, kind, style, fmt)
    assert report.rows == len(expected) and report.skipped == 0 and report.skipped_rows == []
    info = R.get_dataset(kit.ws.conn, "d")
    assert (info.kind, info.style, info.rows) == (kind, style, len(expected))
    records = kit.records(kit.ws, "d")
    assert [r.content() for r in records] == [content for _, content in expected]
    for rec, (row_index, _) in zip(records, expected):
        assert rec.lineage.path == str(path.resolve())
        assert rec.lineage.line == lines[row_index]
        assert rec.split is None and rec.tags is None
    if shape == "kwise":
        _check_rankings(kit.ws, rows, records, lines)
    else:
        assert all(r.lineage.ranking_id is None for r in records)
    assert kit.ws.integrity_check() == "ok"


def _check_rankings(ws, rows, records, lines):
    """Each k-wise row became a prompt, its candidates and a ranking, which its pairs point at."""
    c = ws.conn
    rankings = c.execute("SELECT id, prompt_id, ordering, source_line FROM rankings ORDER BY id").fetchall()
    assert len(rankings) == len(rows)
    assert c.execute("SELECT count(*) FROM prompts").fetchone()[0] == len(rows)
    assert c.execute("SELECT count(*) FROM candidates").fetchone()[0] == sum(len(r["responses"]) for r in rows)
    for (rid, prompt_id, ordering, line), row in zip(rankings, rows):
        assert line == lines[rows.index(row)]
        assert c.execute("SELECT prompt FROM prompts WHERE id = ?", (prompt_id,)).fetchone()[0] == row["prompt"]
        cands = dict(c.execute("SELECT id, response FROM candidates WHERE prompt_id = ?", (prompt_id,)))
        # The stored ordering names candidates best first, ties grouped.
        groups = [[cands[i] for i in g] for g in json.loads(ordering)]
        key = "ranks" if "ranks" in row else "scores"
        levels = sorted(set(row[key]), reverse=key == "scores")
        assert groups == [[resp for resp, v in zip(row["responses"], row[key]) if v == lv] for lv in levels]
        pairs = [r for r in records if r.lineage.ranking_id == rid]
        assert all(r.lineage.line == line for r in pairs)
        assert {(r.chosen, r.rejected) for r in pairs} <= {(a, b) for a in cands.values() for b in cands.values()}
    assert {r.lineage.ranking_id for r in records} <= {r[0] for r in rankings}


# -- HF folders ------------------------------------------------------------------------------

def test_hf_datasetdict_train_test_become_train_validation(kit):
    train = [{"prompt": f"train {i}", "chosen": "a", "rejected": "b"} for i in range(3)]
    test = [{"prompt": f"test {i}", "chosen": "a", "rejected": "b"} for i in range(2)]
    path, _ = kit.write(kit.tmp_path, "hf", {"train": train, "test": test})
    report = import_file(kit.ws, path, "d")
    assert report.rows == 5
    info = R.get_dataset(kit.ws.conn, "d")
    assert (info.train, info.validation) == (3, 2)
    records = kit.records(kit.ws, "d")
    assert [(r.prompt, r.split, r.lineage.line) for r in records] == (
        [(f"train {i}", "train", i + 1) for i in range(3)] + [(f"test {i}", "validation", i + 1) for i in range(2)])


def test_hf_shards_number_rows_across_files(kit):
    rows = [{"prompt": f"p{i}", "completion": "c"} for i in range(6)]
    rows[4] = {"prompt": "p4", "completion": None}
    path, _ = kit.write(kit.tmp_path, "hf", rows, num_shards=2)
    before = kit.state(kit.ws)
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "d")
    # Row 5 of the dataset is row 2 of the second shard; the error names the dataset's row.
    assert (err.value.line, err.value.field, err.value.unit) == (5, "completion", "row")
    assert "row 5" in str(err.value)
    kit.assert_unchanged(kit.ws, before)
    rows[4]["completion"] = "c"
    path, _ = kit.write(kit.tmp_path, "hf", rows, stem="ok", num_shards=2)
    import_file(kit.ws, path, "d")
    assert [r.lineage.line for r in kit.records(kit.ws, "d")] == [1, 2, 3, 4, 5, 6]


# -- column mapping --------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_map_renames_columns(kit, fmt):
    rows = [{"id": 1, "question": "2+2?", "answer": "4"}, {"id": 2, "question": "3+3?", "answer": "6"}]
    path, _ = kit.write(kit.tmp_path, fmt, rows)
    report = import_file(kit.ws, path, "d", mapping=["question=prompt", "answer=completion"])
    assert (report.shape, report.kind, report.rows) == ("prompt-completion", "sft", 2)
    assert report.ignored_fields == ["id"]
    assert kit.contents(kit.ws, "d") == [{"prompt": "2+2?", "completion": "4"},
                                         {"prompt": "3+3?", "completion": "6"}]
    src = kit.ws.conn.execute("SELECT mapping FROM sources WHERE id = ?", (report.source_id,)).fetchone()[0]
    assert json.loads(src) == {"question": "prompt", "answer": "completion"}


def test_map_accepts_a_dict_and_wins_over_a_same_named_column(kit):
    path, _ = kit.write(kit.tmp_path, "jsonl", [{"prompt": "ignored", "q": "used", "completion": "c"}])
    import_file(kit.ws, path, "d", mapping={"q": "prompt"})
    assert kit.contents(kit.ws, "d") == [{"prompt": "used", "completion": "c"}]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_map_of_an_absent_column_is_a_clear_error(kit, fmt):
    path, _ = kit.write(kit.tmp_path, fmt, [{"question": "2+2?", "answer": "4"}])
    before = kit.state(kit.ws)
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "d", mapping=["query=prompt", "answer=completion"])
    msg = str(err.value)
    assert path.name in msg and "--map" in msg and "query" in msg and "question, answer" in msg
    assert err.value.line == (2 if fmt == "csv" else 1)
    kit.assert_unchanged(kit.ws, before)


def test_map_to_an_unknown_field_is_refused(kit):
    path, _ = kit.write(kit.tmp_path, "jsonl", [{"question": "2+2?", "answer": "4"}])
    with pytest.raises(WorkbenchError, match="unknown target field 'promt'"):
        import_file(kit.ws, path, "d", mapping=["question=promt"])
    with pytest.raises(WorkbenchError, match="SOURCE=TARGET"):
        import_file(kit.ws, path, "d", mapping=["question"])
    assert kit.state(kit.ws)["datasets"] == 0


@pytest.mark.parametrize("target", ["pick(a", "pick(A:reply_a,B:reply_b", " pick (A:reply_a)x", "pick(a)"])
def test_a_malformed_pick_shows_the_pick_syntax(kit, target):
    # Before, "pick(a" (no closing bracket) fell through to "unknown target field".
    path, _ = kit.write(kit.tmp_path, "jsonl", [{"label": "A", "reply_a": "4", "reply_b": "5"}])
    with pytest.raises(WorkbenchError) as err:
        import_file(kit.ws, path, "d", mapping=[f"label={target}"])
    assert "pick(VALUE:COLUMN,VALUE:COLUMN)" in str(err.value) and "unknown target field" not in str(err.value)
    assert kit.state(kit.ws)["datasets"] == 0


# -- kinds -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_kind_that_does_not_fit_the_shape_is_an_error(kit, fmt):
    path, _ = kit.write(kit.tmp_path, fmt, _PREF)
    before = kit.state(kit.ws)
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "d", kind="sft")
    msg = str(err.value)
    assert path.name in msg and "--kind sft does not fit" in msg and "use --kind preference" in msg
    kit.assert_unchanged(kit.ws, before)
    with pytest.raises(WorkbenchError, match="--kind pairs: expected one of"):
        import_file(kit.ws, path, "d", kind="pairs")


@pytest.mark.parametrize("case, prompts", [
    ("preference-standard", [r["prompt"] for r in _PREF]),
    ("preference-conversational", [r["prompt"] for r in _PREF_C]),
    ("hh-rlhf", [[M("user", "hi"), M("assistant", "hello"), M("user", "how are you?")], [M("user", "2+2?")]]),
    ("kwise-ranks", ["Pick the best greeting", "2+2?"]),
    ("sft-conversational", [[M("system", "Be brief."), M("user", "hi")],
                            [M("user", "2+2?"), M("assistant", "4"), M("user", "and 3+3?")]]),
    ("alpaca", ["Translate to French\n\ncat", "Name a colour"]),
])
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_kind_prompts_keeps_only_the_prompts(kit, case, prompts, fmt):
    rows = CASES[case][0]
    path, lines = kit.write(kit.tmp_path, fmt, rows)
    report = import_file(kit.ws, path, "d", kind="prompts")
    assert report.kind == "prompts" and report.rows == len(prompts)
    assert R.get_dataset(kit.ws.conn, "d").kind == "prompts"
    records = kit.records(kit.ws, "d")
    assert [r.content() for r in records] == [{"prompt": p} for p in prompts]
    assert [r.lineage.line for r in records] == lines
    # Prompts from a k-wise file are not rankings.
    assert kit.state(kit.ws)["rankings"] == 0


# -- lineage ---------------------------------------------------------------------------------

def test_jsonl_with_blank_lines_keeps_true_line_numbers(kit, monkeypatch):
    precise_reads = []
    real = readers.read_jsonl
    monkeypatch.setattr(readers, "read_jsonl", lambda p: precise_reads.append(p) or real(p))
    rows = [{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(5)]
    text = "".join(json.dumps(r) + "\n" for r in rows[:2]) + "\n   \n" + "".join(
        json.dumps(r) + "\n" for r in rows[2:])
    path = kit.path("blank.jsonl", text)
    import_file(kit.ws, path, "d")
    records = kit.records(kit.ws, "d")
    assert [(r.prompt, r.lineage.line) for r in records] == [("p0", 1), ("p1", 2), ("p2", 5), ("p3", 6), ("p4", 7)]
    assert all(r.lineage.path == str(path.resolve()) for r in records)
    # pyarrow skips blank lines, so its row numbers are not line numbers: the importer re-read precisely.
    assert precise_reads == [path]

    clean, _ = kit.write(kit.tmp_path, "jsonl", rows, stem="clean")
    import_file(kit.ws, clean, "clean")
    assert [r.lineage.line for r in kit.records(kit.ws, "clean")] == [1, 2, 3, 4, 5]
    assert precise_reads == [path]  # the clean file needed no second read


def test_csv_and_pretty_json_lines_point_at_the_row_start(kit):
    rows = [{"prompt": "one\nline two\nline three", "completion": "a"},
            {"prompt": "plain", "completion": 'quoted "x", and\r\nCRLF'},
            {"prompt": "last", "completion": "z"}]
    path, lines = kit.write(kit.tmp_path, "csv", rows)
    assert lines == [2, 5, 7]
    import_file(kit.ws, path, "csv")
    assert [(r.content(), r.lineage.line) for r in kit.records(kit.ws, "csv")] == list(zip(rows, lines))

    pretty = kit.path("pretty.json", json.dumps(rows, indent=2))
    import_file(kit.ws, pretty, "json")
    assert [r.lineage.line for r in kit.records(kit.ws, "json")] == [2, 6, 10]


def test_tags_are_kept(kit):
    rows = [{"prompt": "p", "completion": "c", "tags": ["math", "easy"]},
            {"prompt": "q", "completion": "d"}]
    path, _ = kit.write(kit.tmp_path, "jsonl", rows)
    import_file(kit.ws, path, "j")
    assert [r.tags for r in kit.records(kit.ws, "j")] == [("math", "easy"), None]
    path = kit.path("t.csv", "prompt,completion,tags\np,c,\"math, easy\"\nq,d,\n")
    import_file(kit.ws, path, "c")
    assert [r.tags for r in kit.records(kit.ws, "c")] == [("math", "easy"), None]


def test_csv_cells_that_look_like_json_stay_text_in_a_standard_dataset(kit):
    # The first row decides the style, so each of these must be tried (and refused) as messages.
    for i, first in enumerate(["[]", "[" * 100_000]):
        rows = [{"prompt": first, "completion": "[1, 2]"},
                {"prompt": '[{"role": "user", "content": "x"}]', "completion": "c"}]
        path, _ = kit.write(kit.tmp_path, "csv", rows, stem=f"d{i}")
        report = import_file(kit.ws, path, f"d{i}")
        assert report.style == "standard"
        assert kit.contents(kit.ws, f"d{i}") == rows
