"""Dedup, split and stats."""

import json

import pytest

from workbench.data import ops
from workbench.data.importer import import_file
from workbench.store import datasets as R
from workbench.store.workspace import Workspace


@pytest.fixture
def ws(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    yield ws
    ws.close()


def _import(ws, tmp_path, rows, name="d"):
    src = tmp_path / f"{name}.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return import_file(ws, src, name)


def test_dedup_exact_and_normalized(ws, tmp_path):
    rows = [{"prompt": "Hello  world", "completion": "A"},
            {"prompt": "Hello  world", "completion": "A"},      # exact duplicate
            {"prompt": "hello world ", "completion": "a"},      # normalized duplicate
            {"prompt": "other", "completion": "A"}]
    _import(ws, tmp_path, rows)
    assert ops.dedup(ws, "d", "exact").removed == 1
    assert R.get_dataset(ws.conn, "d").rows == 3
    report = ops.dedup(ws, "d", "normalized")
    assert report.removed == 1
    kept = [r.prompt for r in R.iter_records(ws.conn, R.get_dataset(ws.conn, "d"))]
    assert kept == ["Hello  world", "other"]  # the first occurrence is kept


def test_split_is_seeded_and_never_splits_a_prompt(ws, tmp_path):
    rows = [{"prompt": f"prompt {i % 40}", "chosen": f"c{i}", "rejected": f"r{i}"} for i in range(400)]
    rows += [{"prompt": f"PROMPT   {i}", "chosen": "x", "rejected": "y"} for i in range(5)]  # same prompts, other case
    _import(ws, tmp_path, rows)
    a = ops.split(ws, "d", validation=0.2, seed=7)
    info = R.get_dataset(ws.conn, "d")
    first = {r.id: r.split for r in R.iter_records(ws.conn, info)}
    sides: dict = {}
    for rec in R.iter_records(ws.conn, info):
        sides.setdefault(ops.prompt_key(rec.prompt), set()).add(rec.split)
    assert all(len(s) == 1 for s in sides.values())
    assert 0.15 <= a.validation / (a.train + a.validation) <= 0.25
    ops.split(ws, "d", validation=0.2, seed=7)
    assert {r.id: r.split for r in R.iter_records(ws.conn, info)} == first
    ops.split(ws, "d", validation=0.2, seed=8)
    assert {r.id: r.split for r in R.iter_records(ws.conn, info)} != first


def test_stats_counts_lengths_duplicates_and_tokens(ws, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    rows = [{"prompt": "aa bb", "completion": "cc"}, {"prompt": "aa bb", "completion": "cc"},
            {"prompt": "dd", "completion": "ee ff gg"}]
    _import(ws, tmp_path, rows)
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["aa bb cc dd ee ff gg"], trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    (tmp_path / "tok").mkdir()
    tok.save(str(tmp_path / "tok" / "tokenizer.json"))
    s = ops.stats(ws, "d", tokenizer=tmp_path / "tok")
    assert s["rows"] == 3 and s["duplicates"]["exact"] == 1 and s["unique_prompts"] == 2
    assert s["length_chars"]["completion"]["max"] == len("ee ff gg")
    assert s["length_tokens"]["completion"]["max"] == 3
    assert s["length_tokens"]["prompt"]["min"] == 1
    assert sum(s["length_chars"]["prompt"]["histogram"]["counts"]) == 3
