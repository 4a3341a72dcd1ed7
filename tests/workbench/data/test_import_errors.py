"""Malformed inputs give one clear error naming file, line and field, and store nothing."""

from __future__ import annotations

import codecs
import json
import time

import pytest

from workbench.data import readers
from workbench.data.importer import import_file
from workbench.errors import Cancelled, DataError, WorkbenchError
from workbench.progress import CancelToken
from workbench.store import datasets as R

PREF = '{"prompt": "p%d", "chosen": "good", "rejected": "bad"}\n'


def good_lines(n, start=0):
    return "".join(PREF % i for i in range(start, start + n))


#: name -> (file name, content, line, field, fragments the message must contain)
MALFORMED = {
    "truncated-json-line": ("t.jsonl", good_lines(2) + '{"prompt": "p", "chosen": "good", "rej',
                            3, None, ["invalid JSON"]),
    "line-missing-closing-brace": ("b.jsonl", good_lines(1) + '{"prompt": "p", "chosen": "a", "rejected": "b"\n',
                                   2, None, ["invalid JSON", "truncated"]),
    "chosen-is-a-number": ("n.jsonl", good_lines(3) + '{"prompt": "p", "chosen": 5, "rejected": "b"}\n',
                           4, "chosen", ["expected a string or a list of messages, got integer"]),
    "missing-field-on-a-later-line": ("m.jsonl", good_lines(6) + '{"prompt": "p", "chosen": "a"}\n',
                                      7, "rejected", ["is missing"]),
    "null-field": ("z.jsonl", good_lines(1) + '{"prompt": null, "chosen": "a", "rejected": "b"}\n',
                   2, "prompt", ["is null"]),
    "not-an-object": ("o.jsonl", good_lines(1) + '["p", "a", "b"]\n', 2, None,
                      ["expected a JSON object per line, got list"]),
    "bad-message-role": ("r.jsonl", '{"messages": [{"role": "user", "content": "hi"}]}\n'
                                    '{"messages": [{"role": "robot", "content": "hi"}]}\n',
                         2, "messages", ["message 0", "'role' must be one of"]),
    "mixed-styles": ("s.jsonl", good_lines(2) + json.dumps(
        {"prompt": [{"role": "user", "content": "p"}], "chosen": [{"role": "assistant", "content": "a"}],
         "rejected": [{"role": "assistant", "content": "b"}]}) + "\n",
        3, "prompt", ["like the rest of this dataset (standard style)", "got list"]),
    "mixed-styles-csv": ("s.csv", 'prompt,chosen,rejected\n'
                                  '"[{""role"": ""user"", ""content"": ""p""}]",'
                                  '"[{""role"": ""assistant"", ""content"": ""a""}]",'
                                  '"[{""role"": ""assistant"", ""content"": ""b""}]"\n'
                                  'plain,a,b\n',
                         3, "prompt", ["(conversational style)", "got string"]),
    "score-not-a-number": ("sc.csv", "prompt,chosen,rejected,score_chosen,score_rejected\np,a,b,1,0\np,a,b,high,0\n",
                           3, "score_chosen", ["expected a number", "'high'"]),
    "kwise-ranks-length": ("k.jsonl", '{"prompt": "p", "responses": ["a", "b"], "ranks": [1, 2]}\n'
                                      '{"prompt": "p", "responses": ["a", "b", "c"], "ranks": [1, 2]}\n',
                           2, "ranks", ["expected a list of 3 numbers", "of 2"]),
    "hh-not-sharing-the-conversation": (
        "h.jsonl", json.dumps({"chosen": "\n\nHuman: hi\n\nAssistant: a",
                               "rejected": "\n\nHuman: yo\n\nAssistant: b"}) + "\n",
        1, "rejected", ["do not share the same conversation"]),
    "csv-wrong-column-count": ("c.csv", "prompt,chosen,rejected\np,a,b\np,a\n", 3, None, ["expected 3 columns, got 2"]),
    "json-array-truncated": ("a.json", '[\n' + PREF.strip() % 0 + ',\n' + '{"prompt": "p1", "cho',
                             3, None, ["invalid JSON"]),
    "json-array-not-closed": ("u.json", '[\n' + PREF.strip() % 0 + '\n', 3, None, ["not closed with ']'"]),
    "json-array-item-not-object": ("i.json", '[\n' + PREF.strip() % 0 + ',\n"text"\n]', 3, None,
                                   ["expected a JSON object, got string"]),
    "json-array-wrong-field": ("w.json", '[\n' + PREF.strip() % 0 + ',\n\n  {"prompt": "p", "chosen": [1],\n'
                                                                      '   "rejected": "b"}\n]',
                               4, "chosen", ["(standard style)", "got list"]),
    "unrecognised-shape": ("q.jsonl", '{"question": "2+2?", "answer": "4"}\n', 1, None,
                           ["unrecognised record shape", "question", "--map"]),
    "deeply-nested-json": ("d.jsonl", good_lines(1) + "[" * 100_000 + "]" * 100_000 + "\n", 2, None,
                           ["nested too deeply"]),
    "deeply-nested-csv-cell": ("d.csv", "messages\n" + "[" * 100_000 + "\n", 2, "messages",
                               ["expected a JSON list of messages"]),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_input_names_file_line_and_field_and_stores_nothing(kit, case):
    fname, content, line, field, fragments = MALFORMED[case]
    path = kit.path(fname, content)
    import_file(kit.ws, kit.path("other.jsonl", good_lines(2)), "existing")
    before = kit.state(kit.ws)
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "d")
    e, msg = err.value, str(err.value)
    assert msg.startswith(f"{path}:{line}: ")
    assert (e.file, e.line, e.field, e.unit) == (str(path), line, field, "line")
    if field:
        assert f"field '{field}'" in msg
    for fragment in fragments:
        assert fragment in msg
    assert "\n" not in msg  # one line, as the CLI prints it
    kit.assert_unchanged(kit.ws, before)


@pytest.mark.parametrize("fname, content", [
    ("e.jsonl", b""), ("e.json", b""), ("e.csv", b""),
    ("w.jsonl", b"  \n\n\t \r\n"), ("w.json", b" \n \n"), ("w.csv", b"  \r\n\t\n\n"), ("n.csv", b"\n\n"),
    ("a.json", b"[\n]\n"), ("h.csv", b"prompt,completion\n\n"),
])
def test_empty_and_whitespace_only_files(kit, fname, content):
    path = kit.path(fname, content)
    before = kit.state(kit.ws)
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "d")
    assert str(err.value).startswith(f"{path}: ")
    assert "empty" in str(err.value)
    kit.assert_unchanged(kit.ws, before)


@pytest.mark.parametrize("fname, content, line", [
    ("u.jsonl", good_lines(2).encode() + b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}\n', 3),
    ("u.json", b"[\n" + good_lines(3).replace("}\n", "},\n").encode()
     + b'{"prompt": "\xff", "chosen": "a", "rejected": "b"}]', 5),
    ("u.csv", b"prompt,chosen,rejected\np,a,b\n\"multi\nline\",a,b\np,\x80,b\n", 5),
])
def test_non_utf8_bytes_name_the_line(kit, fname, content, line):
    path = kit.path(fname, content)
    before = kit.state(kit.ws)
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "d")
    assert str(err.value).startswith(f"{path}:{line}: not valid UTF-8")
    assert err.value.line == line
    kit.assert_unchanged(kit.ws, before)


def test_large_json_array_reads_in_linear_time(tmp_path):
    # Line numbers used to be counted from the start of a 2 MB buffer for every item: 60k items
    # took about a minute. Linear reading takes well under a second; the bound is generous.
    n = 60_000
    path = tmp_path / "big.json"
    path.write_text("[\n" + ",\n".join(PREF.strip() % i + " " * 150 for i in range(n)) + "\n]")
    started = time.perf_counter()
    lines = [line for batch in readers.read_json_array(path) for line in batch.lines]
    assert time.perf_counter() - started < 10
    assert lines == list(range(2, n + 2))  # still exact across the scanner's buffer trims


def test_non_utf8_json_array_beyond_the_first_chunk(kit, monkeypatch):
    # The scanner decodes in chunks; the bad byte's line must not be the chunk's first line.
    monkeypatch.setattr(readers._JsonArrayScanner, "CHUNK", 64)
    content = (b"[\n" + good_lines(6).replace("}\n", "},\n").encode()
               + b'{"prompt": "\xff", "chosen": "a", "rejected": "b"}]')
    with pytest.raises(DataError) as err:
        import_file(kit.ws, kit.path("u.json", content), "d")
    assert err.value.line == 8


@pytest.mark.parametrize("fname, content", [
    ("bom.jsonl", codecs.BOM_UTF8 + good_lines(2).encode()),
    ("bom.json", codecs.BOM_UTF8 + b"[" + PREF.strip().replace("%d", "0").encode() + b","
     + PREF.strip().replace("%d", "1").encode() + b"]"),
    ("bom.csv", codecs.BOM_UTF8 + b"prompt,chosen,rejected\np0,good,bad\np1,good,bad\n"),
    ("crlf.jsonl", good_lines(2).replace("\n", "\r\n").encode()),
    ("crlf.json", b"[\r\n" + PREF.strip().replace("%d", "0").encode() + b",\r\n"
     + PREF.strip().replace("%d", "1").encode() + b"\r\n]\r\n"),
    ("crlf.csv", b"prompt,chosen,rejected\r\np0,good,bad\r\np1,good,bad\r\n"),
    ("bom-crlf.csv", codecs.BOM_UTF8 + b"prompt,chosen,rejected\r\np0,good,bad\r\np1,good,bad"),
])
def test_bom_and_crlf_import_fine(kit, fname, content):
    path = kit.path(fname, content)
    report = import_file(kit.ws, path, "d")
    assert report.rows == 2 and report.shape == "preference"
    assert kit.contents(kit.ws, "d") == [{"prompt": f"p{i}", "chosen": "good", "rejected": "bad"} for i in range(2)]


def test_csv_crlf_keeps_newlines_inside_cells(kit):
    path = kit.path("c.csv", b'prompt,completion\r\n"two\r\nlines","a ""quoted"" word, and a comma"\r\nx,y\r\n')
    import_file(kit.ws, path, "d")
    recs = kit.records(kit.ws, "d")
    assert [(r.prompt, r.completion, r.lineage.line) for r in recs] == [
        ("two\r\nlines", 'a "quoted" word, and a comma', 2), ("x", "y", 4)]


def test_csv_embedded_newlines_and_quotes(kit):
    rows = [{"prompt": 'He said "hi",\nthen left.\n\n', "chosen": '""', "rejected": ",,,"},
            {"prompt": "tab\there", "chosen": "'single'", "rejected": "line1\nline2\nline3"},
            {"prompt": "  spaces kept  ", "chosen": "", "rejected": "\\n is not a newline"}]
    path, lines = kit.write(kit.tmp_path, "csv", rows)
    import_file(kit.ws, path, "d")
    recs = kit.records(kit.ws, "d")
    assert [r.content() for r in recs] == rows
    assert [r.lineage.line for r in recs] == lines == [2, 6, 9]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_a_10_mb_line_imports_fine(kit, fmt):
    big = "word " * (2 * 1024 * 1024)  # 10 MiB of text in one value
    rows = [{"prompt": "small", "completion": "a"}, {"prompt": big, "completion": "b"},
            {"prompt": "after", "completion": "c"}]
    path, lines = kit.write(kit.tmp_path, fmt, rows)
    report = import_file(kit.ws, path, "d")
    assert report.rows == 3
    recs = kit.records(kit.ws, "d")
    assert [len(r.prompt) for r in recs] == [5, len(big), 5]
    assert recs[1].prompt == big
    assert [r.lineage.line for r in recs] == lines


def test_duplicate_dataset_name_is_refused_and_the_first_stays(kit):
    path = kit.path("a.jsonl", good_lines(3))
    import_file(kit.ws, path, "d")
    before = kit.state(kit.ws)
    first = kit.contents(kit.ws, "d")
    with pytest.raises(WorkbenchError, match="dataset 'd' already exists"):
        import_file(kit.ws, kit.path("b.jsonl", good_lines(5, start=10)), " d ")
    kit.assert_unchanged(kit.ws, before)
    assert kit.contents(kit.ws, "d") == first


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_skip_invalid_imports_good_rows_and_reports_every_skipped_one(kit, fmt):
    if fmt == "jsonl":
        content = (PREF % 0 + "\n"                                         # 1, 2 (blank)
                   + '{"prompt": "p", "chosen": 5, "rejected": "b"}\n'      # 3
                   + "not json at all\n"                                   # 4
                   + PREF % 1                                               # 5
                   + '{"prompt": "p", "chosen": "a"}\n'                     # 6
                   + '{"prompt": "\xff"}\n'.replace("\xff", "X")            # 7: missing chosen
                   + PREF % 2)                                              # 8
        path = kit.path("s.jsonl", content.encode() + b'{"prompt": "\xff", "chosen": "a", "rejected": "b"}\n')
        expected_skips = [(3, "chosen"), (4, None), (6, "rejected"), (7, "chosen"), (9, None)]
        good_at = [1, 5, 8]
    else:
        path = kit.path("s.csv", "prompt,chosen,rejected,score_chosen\n"
                                 "p0,good,bad,1\n"             # 2
                                 "p,a,b,x\n"                   # 3
                                 "p,a\n"                       # 4
                                 '"p1\nmore",good,bad,\n'      # 5-6
                                 "p2,good,bad,2.5\n")          # 7
        expected_skips = [(3, "score_chosen"), (4, None)]
        good_at = [2, 5, 7]
    report = import_file(kit.ws, path, "d", skip_invalid=True)
    assert report.rows == 3 and report.skipped == len(expected_skips)
    assert [(s["line"], s["field"]) for s in report.skipped_rows] == expected_skips
    assert all(s["message"] for s in report.skipped_rows)
    recs = kit.records(kit.ws, "d")
    assert [r.lineage.line for r in recs] == good_at
    assert [r.chosen for r in recs] == ["good"] * 3
    assert kit.ws.integrity_check() == "ok"


def test_skip_invalid_with_nothing_valid_stores_nothing(kit):
    path = kit.path("bad.jsonl", '{"prompt": "p", "chosen": 1, "rejected": "b"}\n{"prompt": "p"}\n')
    before = kit.state(kit.ws)
    with pytest.raises(DataError, match="no valid records: all 2 rows were skipped"):
        import_file(kit.ws, path, "d", skip_invalid=True)
    kit.assert_unchanged(kit.ws, before)


# -- cancel ----------------------------------------------------------------------------------

def _many_rows(n):
    return [{"prompt": f"prompt {i} " + "x" * 200, "chosen": "good", "rejected": "bad"} for i in range(n)]


@pytest.mark.parametrize("fmt, n", [("jsonl", 40_000), ("json", 5000), ("csv", 5000), ("parquet", 20_000)])
def test_cancel_from_the_progress_callback_stores_nothing(kit, fmt, n):
    path, _ = kit.write(kit.tmp_path, fmt, _many_rows(n))
    import_file(kit.ws, kit.path("other.jsonl", good_lines(2)), "existing")
    before = kit.state(kit.ws)
    token, calls = CancelToken(), []

    def progress(frac, msg):
        calls.append(frac)
        token.cancel()  # the user clicks cancel right after the first batch

    with pytest.raises(Cancelled):
        import_file(kit.ws, path, "d", progress=progress, cancel=token)
    assert len(calls) == 1  # the next batch saw the token
    kit.assert_unchanged(kit.ws, before)
    # The workspace is usable afterwards: the same import without cancel succeeds.
    assert import_file(kit.ws, path, "d").rows == n


def test_cancel_during_the_last_batch_still_stores_nothing(kit):
    path = kit.path("small.jsonl", good_lines(3))
    token = CancelToken()
    before = kit.state(kit.ws)
    with pytest.raises(Cancelled):
        import_file(kit.ws, path, "d", progress=lambda f, m: token.cancel(), cancel=token)
    kit.assert_unchanged(kit.ws, before)


def test_progress_reaches_one(kit):
    path, _ = kit.write(kit.tmp_path, "csv", _many_rows(5000))
    calls = []
    import_file(kit.ws, path, "d", progress=lambda f, m: calls.append((f, m)))
    fracs = [f for f, _ in calls]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0 and len(fracs) >= 3
    assert calls[-1][1] == "5,000 records imported"


# -- fast path and precise path agree ---------------------------------------------------------

def _precise_only(monkeypatch):
    import pyarrow as pa

    def refuse(*a, **k):
        raise pa.ArrowInvalid("fast path disabled by the test")
        yield  # pragma: no cover - makes this a generator like the real one

    monkeypatch.setattr(readers, "arrow_batches", refuse)


def _records(ws, name):
    return [(r.content(), r.tags, r.split, r.lineage.line)
            for r in R.iter_records(ws.conn, R.get_dataset(ws.conn, name))]


def test_fast_path_failing_late_gives_the_same_records_as_the_precise_path(kit, monkeypatch):
    # ~9 MB: pyarrow reads 4 MB blocks, so whole batches are stored before it meets the bad rows
    # and the importer must roll those back to its savepoint and re-read precisely.
    lines = [json.dumps({"prompt": f"prompt {i} " + "y" * 250, "chosen": f"c{i}", "rejected": f"r{i}"})
             for i in range(32_000)]
    lines[31_000] = '{"prompt": "p", "chosen": 5, "rejected": "r"}'
    lines[31_500] = '{"prompt": "p", "chosen": "c"'
    path = kit.path("late.jsonl", "\n".join(lines) + "\n")
    fast = import_file(kit.ws, path, "fast", skip_invalid=True)
    assert [(s["line"], s["field"]) for s in fast.skipped_rows] == [(31_001, "chosen"), (31_501, None)]
    with monkeypatch.context() as m:
        _precise_only(m)
        precise = import_file(kit.ws, path, "precise", skip_invalid=True)
    assert fast.rows == precise.rows == 31_998
    assert fast.skipped_rows == precise.skipped_rows
    assert _records(kit.ws, "fast") == _records(kit.ws, "precise")
    # Nothing from the abandoned fast attempt is left behind.
    assert kit.state(kit.ws)["records"] == 2 * 31_998
    assert kit.ws.conn.execute("SELECT count(*) FROM records WHERE source_line IS NULL").fetchone()[0] == 0


@pytest.mark.parametrize("rows", [
    [{"prompt": f"p{i}", "chosen": "a", "rejected": "b", "tags": ["t"] if i % 2 else None} for i in range(50)],
    [{"prompt": [{"role": "user", "content": f"q{i}"}], "chosen": [{"role": "assistant", "content": "a"}],
      "rejected": [{"role": "assistant", "content": "b", "name": "bot"} if i % 3 else
                   {"role": "assistant", "content": "b"}]} for i in range(50)],
    [{"prompt": "p", "responses": ["a", "b", "c"], "ranks": [1, 2, 2]}] * 10,
    [{"prompt": "2020-01-01", "completion": "12:00"}, {"prompt": "1e5", "completion": "true"}],
    [{"prompt": "p", "completion": "c", "label": i % 2 == 0} for i in range(10)],
], ids=["tags", "messages-extra-keys", "kwise", "string-lookalikes", "unpaired"])
def test_fast_and_precise_paths_agree_on_clean_files(kit, monkeypatch, rows):
    path, _ = kit.write(kit.tmp_path, "jsonl", rows)
    import_file(kit.ws, path, "fast")
    with monkeypatch.context() as m:
        _precise_only(m)
        import_file(kit.ws, path, "precise")
    assert _records(kit.ws, "fast") == _records(kit.ws, "precise") != []


def test_non_utf8_jsonl_does_not_escape_the_fast_path(kit):
    # pyarrow does not validate UTF-8; the bytes must come back as a located DataError.
    path = kit.path("u.jsonl", good_lines(2).encode() + b'{"prompt": "\xff\xfe", "chosen": "a", "rejected": "b"}\n')
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "d")
    assert err.value.line == 3
    report = import_file(kit.ws, path, "d", skip_invalid=True)
    assert report.rows == 2 and report.skipped_rows[0]["line"] == 3
