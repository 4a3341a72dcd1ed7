"""Hostile inputs give one-line errors naming file, line and field, never a traceback or a hang
(issue 18 items 7 and 13)."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from workbench.data import readers
from workbench.data.importer import import_file
from workbench.data import shapes
from workbench.errors import DataError

GOOD = '{"prompt": "ok", "completion": "fine"}\n'


@pytest.mark.parametrize("name, text, line", [
    ("s.jsonl", GOOD + '{"prompt": "scraped \\ud800 text", "completion": "c"}\n' + GOOD, 2),
    ("s.json", "[\n" + GOOD.strip() + ',\n{"prompt": "scraped \\uDBFF", "completion": "c"},\n' + GOOD.strip() + "\n]",
     3),
])
def test_a_lone_surrogate_is_a_located_problem_that_skip_invalid_skips(kit, name, text, line):
    path = kit.path(name, text)
    before = kit.state(kit.ws)
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "d")
    assert (err.value.line, err.value.field) == (line, "prompt") and "surrogate" in err.value.message
    kit.assert_unchanged(kit.ws, before)
    report = import_file(kit.ws, path, "d", skip_invalid=True)
    assert (report.rows, report.skipped) == (2, 1)
    assert report.skipped_rows[0]["field"] == "prompt"


def test_a_surrogate_pair_is_one_character_and_imports(kit):
    path = kit.path("ok.jsonl", '{"prompt": "emoji \\ud83d\\ude00", "completion": "c"}\n')
    import_file(kit.ws, path, "d")
    assert kit.contents(kit.ws, "d") == [{"prompt": "emoji 😀", "completion": "c"}]


def test_a_lone_surrogate_inside_a_csv_messages_cell(kit):
    cell = json.dumps([{"role": "user", "content": "x\\ud800"}]).replace('"', '""').replace("\\\\", "\\")
    path = kit.path("m.csv", f'messages\n"{cell}"\n')
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "d")
    assert (err.value.line, err.value.field) == (2, "messages") and "surrogate" in err.value.message


@pytest.mark.parametrize("name, text, line", [
    ("big.jsonl", GOOD + "\n" + '{"prompt": "p", "completion": "c", "n": ' + "9" * 5000 + "}\n", 3),
    ("big.json", "[\n" + GOOD.strip() + ',\n{"prompt": "p", "completion": "c", "n": ' + "9" * 5000 + "}\n]", 3),
])
def test_a_5000_digit_integer_names_its_field(kit, name, text, line):
    path = kit.path(name, text)
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "d")
    assert (err.value.line, err.value.field) == (line, "n") and "4300 digits" in err.value.message
    assert str(err.value).count("\n") == 0


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_integer_score_too_large_for_a_float(kit, fmt):
    big = 10 ** 400
    if fmt == "jsonl":
        path = kit.path("s.jsonl", '{"prompt": "p", "chosen": "a", "rejected": "b", "score_chosen": %d}\n' % big)
    else:
        path = kit.path("s.csv", f"prompt,chosen,rejected,score_chosen\np,a,b,{big}\n")
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "d")
    assert err.value.field == "score_chosen" and err.value.line in (1, 2)


@pytest.mark.parametrize("splits", [5, "train", [1, 2], None])
def test_dataset_dict_with_bad_splits(kit, splits):
    folder = kit.tmp_path / f"dd{splits!r}"
    folder.mkdir()
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": splits}))
    with pytest.raises(DataError) as err:
        import_file(kit.ws, folder, "d")
    assert "dataset_dict.json" in str(err.value) and "splits" in str(err.value)


def test_jsonl_has_a_per_value_size_limit(kit, monkeypatch):
    monkeypatch.setattr(readers, "MAX_VALUE_BYTES", 1000)
    long_line = json.dumps({"prompt": "x" * 5000, "completion": "c"}) + "\n"
    path = kit.path("long.jsonl", GOOD + long_line + GOOD)
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "d")
    assert err.value.line == 2 and "longer than the largest value" in err.value.message
    report = import_file(kit.ws, path, "d", skip_invalid=True)
    assert (report.rows, report.skipped) == (2, 1)
    assert [r.lineage.line for r in kit.records(kit.ws, "d")] == [1, 3]


def _import_must_not_hang(kit, path, fifo):
    result = {}

    def work():
        try:
            import_file(kit.ws, path, "d")
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            result["error"] = exc
    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(20)
    if t.is_alive():
        # Release the reader blocked opening the FIFO, so the test process can end.
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        t.join(5)
        pytest.fail("the import blocked on a FIFO")
    return result.get("error")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_listed_in_state_json_is_refused(kit):
    folder = kit.tmp_path / "hf"
    kit.write(kit.tmp_path, "hf", [{"prompt": "p", "completion": "c"}], stem="hf")
    state = json.loads((folder / "state.json").read_text())
    os.mkfifo(folder / "pipe.arrow")
    state["_data_files"] = [{"filename": "pipe.arrow"}]
    (folder / "state.json").write_text(json.dumps(state))
    started = time.monotonic()
    error = _import_must_not_hang(kit, folder, folder / "pipe.arrow")
    assert isinstance(error, DataError) and "not a regular file" in str(error) and "pipe.arrow" in str(error)
    assert time.monotonic() - started < 20


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_the_file_is_refused(kit):
    fifo = kit.tmp_path / "data.jsonl"
    os.mkfifo(fifo)
    error = _import_must_not_hang(kit, fifo, fifo)
    assert isinstance(error, DataError) and "not a regular file" in str(error)


def test_state_json_cannot_name_files_outside_the_folder(kit, tmp_path):
    folder = tmp_path / "hf"
    kit.write(tmp_path, "hf", [{"prompt": "p", "completion": "c"}], stem="hf")
    outside, _ = kit.write(tmp_path, "hf", [{"prompt": "secret", "completion": "c"}], stem="other")
    arrow = next(outside.glob("*.arrow"))
    state = json.loads((folder / "state.json").read_text())
    state["_data_files"] = [{"filename": f"../other/{arrow.name}"}]
    (folder / "state.json").write_text(json.dumps(state))
    with pytest.raises(DataError, match="outside the dataset folder"):
        import_file(kit.ws, folder, "d")


# -- issue 18 item 7: a ranking of thousands of responses ----------------------------------------

@pytest.mark.parametrize("layout", ["kwise", "nectar"])
def test_a_row_of_3000_ranked_responses_is_refused_naming_the_line(kit, layout):
    n = 3000
    if layout == "kwise":
        big = {"prompt": "p", "responses": [f"r{i}" for i in range(n)], "ranks": list(range(n))}
        small = {"prompt": "q", "responses": ["a", "b"], "ranks": [1, 2]}
    else:
        big = {"prompt": "\n\nHuman: p\n\nAssistant: ",
               "answers": [{"answer": f"r{i}", "model": "m", "rank": i} for i in range(n)]}
        small = {"prompt": "\n\nHuman: q\n\nAssistant: ", "answers": [{"answer": "a", "model": "m", "rank": 1},
                                                                   {"answer": "b", "model": "m", "rank": 2}]}
    path, _ = kit.write(kit.tmp_path, "jsonl", [small, big, small])
    before = kit.state(kit.ws)
    started = time.monotonic()
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "d")
    assert err.value.line == 2 and "3,000 responses in one ranking" in err.value.message
    assert str(getattr(shapes, 'MAX_RANKING_RESPONSES', 100)) in err.value.message
    kit.assert_unchanged(kit.ws, before)
    report = import_file(kit.ws, path, "d", skip_invalid=True)
    assert (report.rows, report.skipped, report.rankings) == (2, 1, 2)
    assert kit.state(kit.ws)["candidates"] == 4
    assert time.monotonic() - started < 60   # bounded (it took 65 s and 0.9 GB before), not a timing test


def test_a_ranking_at_the_cap_still_imports(kit):
    k = getattr(shapes, 'MAX_RANKING_RESPONSES', 100)
    path, _ = kit.write(kit.tmp_path, "jsonl",
                        [{"prompt": "p", "responses": [f"r{i}" for i in range(k)], "ranks": list(range(k))}])
    report = import_file(kit.ws, path, "d")
    assert report.rows == k * (k - 1) // 2


def test_a_jsonl_pyarrow_misreads_falls_back_to_the_precise_reader(kit):
    # pyarrow 2x: {} then a list holding null and a string -> SystemError in to_pylist (found by fuzzing).
    path = kit.path("pa.jsonl", '{}\n{"data": [null, "0"]}\n')
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "d")
    assert err.value.line == 1 and "\n" not in str(err.value)
