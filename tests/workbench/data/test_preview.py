"""Previewing the head of a file the way the importer reads it (no Qt, nothing written)."""

from __future__ import annotations

import json

import pytest

from workbench.data import ops, readers
from workbench.data.importer import import_file
from workbench.data.preview import preview_file
from workbench.errors import DataError, WorkbenchError
from workbench.store import datasets as R

PAIRS = [{"question": f"What is {i} + {i}?", "chosen": f"{2 * i}.", "rejected": "Five."} for i in range(30)]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet", "hf"])
def test_every_format_previews_with_mapping_and_lines(kit, tmp_path, fmt):
    path, lines = kit.write(tmp_path, fmt, PAIRS)
    p = preview_file(path, mapping={"question": "prompt"}, limit=10)
    assert p.format == fmt and p.unit == ("row" if fmt in ("parquet", "hf") else "line")
    assert (p.shape, p.kind, p.style) == ("preference", "preference", "standard")
    assert p.columns == ["question", "chosen", "rejected"]
    assert len(p.rows) == 10 and p.more and p.lines == lines[:10]
    assert p.rows[3] == PAIRS[3] or fmt == "csv" and p.rows[3] == {k: str(v) for k, v in PAIRS[3].items()}
    assert p.target("question") == "prompt" and p.used("question") and p.used("chosen")
    assert p.problems == [] and p.error is None and p.ignored_fields == []


def test_without_mapping_the_detection_and_problems_are_the_importers(kit, tmp_path):
    path, _ = kit.write(tmp_path, "jsonl", PAIRS)
    p = preview_file(path, limit=5)
    assert p.shape == "implicit-preference"
    assert [(x.line, x.field) for x in p.problems] == [(i, "chosen") for i in range(1, 6)]
    assert str(p.problems[0]) == f"{path}:1: field 'chosen': chosen and rejected share no prompt text; " \
                                 "give a 'prompt' field"
    # The same file through the importer stops at the same line, field and message.
    with pytest.raises(DataError) as exc:
        import_file(kit.ws, path, "x")
    assert str(exc.value) == str(p.problems[0])


def test_bad_rows_are_located_and_rows_after_them_still_checked(kit, tmp_path):
    rows = [{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(8)]
    text = [json.dumps(r) for r in rows]
    text[1] = json.dumps({"prompt": "p1", "completion": ["not", "messages"]})
    text[4] = "{broken"
    path = kit.path("sft.jsonl", "\n".join(text) + "\n")
    p = preview_file(path)
    assert p.shape == "prompt-completion" and not p.more and len(p.rows) == 8
    assert [(x.line, x.field) for x in p.problems] == [(2, "completion"), (5, None)]
    assert "invalid JSON" in p.problems[1].message
    assert p.rows[4] is None and p.valid_rows == 6
    assert p.problems[0].location() == f"{path}:2"


def test_fatal_problems_go_to_error(kit, tmp_path):
    path, _ = kit.write(tmp_path, "jsonl", [{"question": "q", "answer": "a"}])
    p = preview_file(path)
    assert p.shape is None and "unrecognised record shape" in p.error.message and p.error.line == 1
    p = preview_file(path, mapping={"nope": "prompt"})
    assert "not in the data: nope" in str(p.error)
    p = preview_file(path, mapping={"question": "prompt", "answer": "completion"}, kind="preference")
    assert p.error is not None and "does not fit" in p.error.message
    p = preview_file(path, mapping={"question": "prompt", "answer": "completion"}, kind="prompts")
    assert (p.shape, p.kind, p.error) == ("prompt-completion", "prompts", None)
    with pytest.raises(WorkbenchError, match="unknown target field"):
        preview_file(path, mapping={"question": "query"})


def test_unreadable_files_raise(kit, tmp_path):
    with pytest.raises(DataError, match="no such file"):
        preview_file(tmp_path / "missing.jsonl")
    with pytest.raises(DataError, match="file is empty"):
        preview_file(kit.path("empty.jsonl", ""))
    with pytest.raises(DataError, match="invalid JSON") as exc:
        preview_file(kit.path("arr.json", "[\nnot json\n]"))
    assert exc.value.line == 2


def test_a_file_broken_after_the_first_rows_keeps_them(kit, tmp_path):
    path = kit.path("arr.json", '[\n{"prompt": "a"},\n{"prompt": "b"},\n{"prompt": \n')
    p = preview_file(path)
    assert [r["prompt"] for r in p.rows] == ["a", "b"] and p.shape == "prompt-only"
    assert p.error is not None and "invalid JSON" in p.error.message
    with pytest.raises(DataError) as exc:       # the import stops at the same place
        import_file(kit.ws, path, "x")
    assert str(exc.value) == str(p.error)


def test_kwise_rows_are_checked_without_storing_anything(kit, tmp_path):
    rows = [{"prompt": "Rate these", "responses": ["a", "b", "c"], "ranks": [2, 1, 3]},
            {"prompt": "Again", "responses": ["a", "b"], "ranks": [1]}]
    path, _ = kit.write(tmp_path, "jsonl", rows)
    before = kit.state(kit.ws)
    p = preview_file(path)
    assert p.shape == "kwise" and p.kind == "preference"
    assert [(x.line, x.field) for x in p.problems] == [(2, "ranks")]
    assert kit.state(kit.ws) == before


def test_hf_dataset_dict_preview_names_splits(kit, tmp_path):
    path = tmp_path / "dd"
    kit.write(tmp_path, "hf", {"train": PAIRS[:4], "test": PAIRS[4:6]}, stem="dd")
    p = preview_file(path, mapping={"question": "prompt"})
    assert p.splits == ["train"] * 4 + ["validation"] * 2
    assert p.lines == [1, 2, 3, 4, 1, 2]


def test_columnar_reader_cuts_batches_without_changing_rows(kit, tmp_path):
    path, _ = kit.write(tmp_path, "parquet", PAIRS)
    whole = [(b.lines, b.rows) for b in readers.read_rows(path, "parquet")]
    cut = [(b.lines, b.rows) for b in readers.read_rows(path, "parquet", batch_rows=7)]
    assert len(whole) == 1 and [len(lines) for lines, _ in cut] == [7, 7, 7, 7, 2]
    assert sum((lines for lines, _ in cut), []) == whole[0][0]
    assert sum((rows for _, rows in cut), []) == whole[0][1]


def test_plan_split_is_what_split_applies(kit, tmp_path):
    rows = [{"prompt": f"Prompt {i // 3}", "completion": f"answer {i}"} for i in range(60)]
    path, _ = kit.write(tmp_path, "jsonl", rows)
    import_file(kit.ws, path, "d")
    info = R.get_dataset(kit.ws.conn, "d")
    plan = ops.plan_split(kit.ws.conn, info, validation=0.3, seed=5)
    assert plan.total == 60 and plan.shared_prompts == 20 and plan.largest_group == 3
    assert R.get_dataset(kit.ws.conn, "d").train == 0          # planning writes nothing
    report = ops.split(kit.ws, "d", validation=0.3, seed=5)
    assert (report.train, report.validation) == (plan.train, plan.validation)
    assert (report.prompts_train, report.prompts_validation) == (plan.prompts_train, plan.prompts_validation)
    val = {r.id for r in R.iter_records(kit.ws.conn, info, split="validation")}
    assert val == plan.validation_ids
