"""Exports for the tools users go to next: LLaMA-Factory, OpenRLHF, Label Studio.

Each export is loaded the way the tool loads it (``datasets.load_dataset("json")``,
which LLaMA-Factory's ``data/loader.py`` and OpenRLHF's ``utils/utils.py``
``blending_datasets`` both call for local JSON files) and read through the keys
the tool's own code reads:

- LLaMA-Factory: ``src/llamafactory/data/parser.py`` (``DatasetAttr.join``: the
  ``dataset_info.json`` keys ``file_name``, ``formatting``, ``ranking``,
  ``columns``, ``tags``) and ``converter.py`` (``AlpacaDatasetConverter``,
  ``SharegptDatasetConverter``), emulated below in a few lines each;
- OpenRLHF: ``openrlhf/datasets/reward_dataset.py`` and ``sft_dataset.py``
  (``preprocess_data`` with ``prompt_key``/``chosen_key``/``rejected_key`` and
  ``input_key``/``output_key``, list concatenation under ``apply_chat_template``);
- Label Studio's pairwise template: ``data.prompt/answer1/answer2`` and a
  ``pairwise`` result selecting ``left`` or ``right``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.data import ops
from workbench.data.exporter import export_dataset
from workbench.data.importer import import_file
from workbench.data.tool_exports import ToolExportError
from workbench.store import datasets as R
from workbench.store.workspace import Workspace

M = lambda role, text: {"role": role, "content": text}  # noqa: E731
LONG = "Ein langer Absatz über Photosynthese, Chlorophyll und Licht. " * 60

PREF = [{"prompt": [M("system", "Antworte höflich und knapp."), M("user", f"Was ist {i} + {i}?"),
                    M("assistant", f"{2 * i}."), M("user", "Und auf Japanisch? 日本語で")],
         "chosen": [M("assistant", f"{2 * i} は日本語で「{2 * i}」です。")],
         "rejected": [M("assistant", "知りません。" + (LONG if i == 3 else ""))]} for i in range(8)]
PREF += [{"prompt": [M("user", "=SUM(A1) — a formula-looking prompt 🙂")], "chosen": [M("assistant", "Kept as text.")],
          "rejected": [M("assistant", "Dropped.")]}]
SFT = [{"messages": [M("system", "Du bist ein Tutor."), M("user", f"Erkläre Thema {i}."), M("assistant", "Gern: …"),
                     M("user", "Kürzer, bitte."), M("assistant", f"Thema {i} in einem Satz ✓.")]} for i in range(6)]
SFT_STD = [{"prompt": f"Question {i}: why is the sky blue?", "completion": f"Rayleigh scattering ({i})."}
           for i in range(5)]
UNPAIRED = [{"prompt": [M("user", f"Sag etwas Nettes {i}")], "completion": [M("assistant", "Du schaffst das!")],
             "label": i % 2 == 0} for i in range(6)]
PROMPTS = [{"prompt": [M("user", f"Beschreibe einen Vogel Nr. {i} 🐦")]} for i in range(5)]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("tools")
    w = Workspace.init(root / "ws")
    for name, rows in (("pref", PREF), ("sft", SFT), ("sft-std", SFT_STD), ("unpaired", UNPAIRED),
                       ("prompts", PROMPTS)):
        import_file(w, _write(root / f"{name}.jsonl", rows), name)
    yield w
    w.close()


def _load(path: Path, tmp_path: Path):
    import datasets

    return datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf-cache"))


def _stored(ws, name):
    return [r.content() for r in R.iter_records(ws.conn, R.get_dataset(ws.conn, name))]


# -- LLaMA-Factory -------------------------------------------------------------------------------

def _lf_entry(folder: Path, name: str, *also: str) -> dict:
    info = json.loads((folder / "dataset_info.json").read_text(encoding="utf-8"))
    assert list(info) == [name, *also]
    return info[name]


def _lf_alpaca(example: dict, entry: dict) -> tuple[str, list[dict], list[dict]]:
    """LLaMA-Factory's AlpacaDatasetConverter, reduced to what it reads: (system, prompt, response)."""
    col = entry["columns"]
    prompt = []
    if col.get("history") and isinstance(example[col["history"]], list):
        for old_prompt, old_response in example[col["history"]]:
            prompt += [M("user", old_prompt), M("assistant", old_response)]
    query = [example[col[k]] for k in ("prompt", "query") if col.get(k) and example[col[k]]]
    prompt.append(M("user", "\n".join(query)))
    if col.get("kto_tag"):
        response = [M("assistant", example[col["response"]])]
    elif entry.get("ranking"):
        assert isinstance(example[col["chosen"]], str) and isinstance(example[col["rejected"]], str)
        response = [M("assistant", example[col["chosen"]]), M("assistant", example[col["rejected"]])]
    elif col.get("response") and isinstance(example[col["response"]], str):
        response = [M("assistant", example[col["response"]])]
    else:
        response = []
    return (example[col["system"]] if col.get("system") else ""), prompt, response


def _lf_sharegpt(example: dict, entry: dict) -> tuple[str, list[dict], list[dict]]:
    """LLaMA-Factory's SharegptDatasetConverter: tags, the odd/even rule, the turn-count rule."""
    col, tags = entry["columns"], entry["tags"]
    roles = {tags["user_tag"]: "user", tags["assistant_tag"]: "assistant", tags["observation_tag"]: "observation",
             tags["system_tag"]: "system"}
    messages = example[col["messages"]]
    system = ""
    if messages and messages[0][tags["role_tag"]] == tags["system_tag"]:
        system, messages = messages[0][tags["content_tag"]], messages[1:]
    accept = ((tags["user_tag"], tags["observation_tag"]), (tags["assistant_tag"], "function_call"))
    aligned = []
    for i, m in enumerate(messages):
        assert m[tags["role_tag"]] in accept[i % 2], f"LLaMA-Factory would skip this row: {messages}"
        aligned.append(M(roles[m[tags["role_tag"]]], m[tags["content_tag"]]))
    assert (len(aligned) % 2 == 1) == bool(entry.get("ranking")), "LLaMA-Factory would skip this row (turn count)"
    if entry.get("ranking"):
        chosen, rejected = example[col["chosen"]], example[col["rejected"]]
        assert chosen[tags["role_tag"]] in accept[1] and rejected[tags["role_tag"]] in accept[1]
        return system, aligned, [M("assistant", chosen[tags["content_tag"]]),
                                 M("assistant", rejected[tags["content_tag"]])]
    return system, aligned[:-1], aligned[-1:]


def _with_system(system: str, msgs: list[dict]) -> list[dict]:
    return ([M("system", system)] if system else []) + msgs


@pytest.mark.parametrize("layout", ["alpaca", "sharegpt"])
def test_llamafactory_preference_export_reads_back_as_the_stored_pairs(ws, tmp_path, layout):
    out = tmp_path / f"lf-{layout}"
    report = export_dataset(ws, "pref", f"llamafactory-{layout}", out)
    entry = _lf_entry(out, "pref")
    assert entry["ranking"] is True and entry["file_name"] == "pref.jsonl"
    assert entry.get("formatting", "alpaca") == layout
    assert f"dataset_dir: {out}" in report.usage and "dataset: pref" in report.usage
    ds = _load(out / entry["file_name"], tmp_path)
    assert set(entry["columns"].values()) <= set(ds.column_names)
    converter = _lf_alpaca if layout == "alpaca" else _lf_sharegpt
    for example, rec in zip(ds, _stored(ws, "pref"), strict=True):
        system, prompt, response = converter(example, entry)
        assert _with_system(system, prompt) == rec["prompt"]
        assert response == rec["chosen"] + rec["rejected"]


@pytest.mark.parametrize("layout", ["alpaca", "sharegpt"])
@pytest.mark.parametrize("name", ["sft", "sft-std", "unpaired"])
def test_llamafactory_sft_and_kto_exports(ws, tmp_path, layout, name):
    out = tmp_path / f"lf-{layout}-{name}"
    export_dataset(ws, name, f"llamafactory-{layout}", out)
    entry = _lf_entry(out, name)
    assert "ranking" not in entry and (("kto_tag" in entry["columns"]) == (name == "unpaired"))
    ds = _load(out / entry["file_name"], tmp_path)
    assert set(entry["columns"].values()) <= set(ds.column_names)
    converter = _lf_alpaca if layout == "alpaca" else _lf_sharegpt
    for example, rec in zip(ds, _stored(ws, name), strict=True):
        system, prompt, response = converter(example, entry)
        if "messages" in rec:
            assert _with_system(system, prompt) + response == rec["messages"]
        else:
            want_prompt = rec["prompt"] if isinstance(rec["prompt"], list) else [M("user", rec["prompt"])]
            want_reply = rec["completion"] if isinstance(rec["completion"], list) else [M("assistant", rec["completion"])]
            assert (_with_system(system, prompt), response) == (want_prompt, want_reply)
        if name == "unpaired":
            assert example["kto_tag"] is rec["label"]


def test_llamafactory_alpaca_prompts_for_ppo(ws, tmp_path):
    out = tmp_path / "lf-prompts"
    report = export_dataset(ws, "prompts", "llamafactory-alpaca", out)
    entry = _lf_entry(out, "prompts")
    assert "response" not in entry["columns"] and "ppo" in report.usage
    ds = _load(out / entry["file_name"], tmp_path)
    for example, rec in zip(ds, _stored(ws, "prompts"), strict=True):
        assert _lf_alpaca(example, entry) == ("", rec["prompt"], [])


# -- OpenRLHF ------------------------------------------------------------------------------------

def _chat(messages, tokenize=False, add_generation_prompt=False):
    """A stand-in for ``tokenizer.apply_chat_template`` that keeps every role and text."""
    text = "".join(f"<|{m['role']}|>{m['content']}<|end|>" for m in messages)
    return text + ("<|assistant|>" if add_generation_prompt else "")


def test_openrlhf_preference_keys_with_and_without_chat_template(ws, tmp_path):
    out = tmp_path / "pref.openrlhf.jsonl"
    report = export_dataset(ws, "pref", "openrlhf", out)
    assert "--data.prompt_key prompt --data.chosen_key chosen --data.rejected_key rejected" in report.usage
    assert "--data.apply_chat_template" in report.usage
    ds = _load(out, tmp_path)
    assert ds.column_names == ["prompt", "chosen", "rejected"]
    for data, rec in zip(ds, _stored(ws, "pref"), strict=True):
        # reward_dataset.preprocess_data with apply_chat_template and prompt_key set:
        prompt = _chat(data["prompt"], add_generation_prompt=True)
        chosen = _chat(data["prompt"] + data["chosen"])[len(prompt) - len("<|assistant|>"):]
        assert chosen == _chat(rec["chosen"])
        assert data["prompt"] == rec["prompt"] and data["rejected"] == rec["rejected"]


def test_openrlhf_sft_and_prompt_keys(ws, tmp_path):
    out = export_dataset(ws, "sft", "openrlhf", tmp_path / "sft.jsonl")
    assert "--data.input_key input --data.output_key output --data.apply_chat_template" in out.usage
    ds = _load(Path(out.path), tmp_path)
    for data, rec in zip(ds, _stored(ws, "sft"), strict=True):
        # sft_dataset.preprocess_data with apply_chat_template and output_key: input + output is the chat.
        assert data["input"] + data["output"] == rec["messages"] and data["output"][0]["role"] == "assistant"
    std = export_dataset(ws, "sft-std", "openrlhf", tmp_path / "sft-std.jsonl")
    assert "apply_chat_template" not in std.usage
    assert [(d["input"], d["output"]) for d in _load(Path(std.path), tmp_path)] == \
        [(r["prompt"], r["completion"]) for r in _stored(ws, "sft-std")]
    prompts = export_dataset(ws, "prompts", "openrlhf", tmp_path / "prompts.jsonl")
    assert "--data.prompt_dataset" in prompts.usage and "--data.input_key input" in prompts.usage
    assert [d["input"] for d in _load(Path(prompts.path), tmp_path)] == [r["prompt"] for r in _stored(ws, "prompts")]


# -- Label Studio ---------------------------------------------------------------------------------

def test_labelstudio_tasks_for_the_pairwise_template(ws, tmp_path):
    out = tmp_path / "pref.labelstudio.json"
    report = export_dataset(ws, "pref", "labelstudio", out)
    assert "Human Preferences collection for RLHF" in report.usage
    tasks = json.loads(out.read_text(encoding="utf-8"))
    stored = _stored(ws, "pref")
    assert len(tasks) == len(stored) == report.rows
    sides = set()
    for task, rec in zip(tasks, stored):
        assert set(task["data"]) == {"prompt", "answer1", "answer2"}
        (result,) = task["annotations"][0]["result"]
        assert result["type"] == "pairwise" and result["from_name"] == result["to_name"] == "comparison"
        selected = result["value"]["selected"]
        sides.add(selected)
        chosen, rejected = (task["data"]["answer1"], task["data"]["answer2"])[::1 if selected == "left" else -1]
        assert (chosen, rejected) == (rec["chosen"][0]["content"], rec["rejected"][0]["content"])
        for m in rec["prompt"]:
            assert m["content"] in task["data"]["prompt"]   # the whole chat history is shown
    assert sides == {"left", "right"}   # the better answer is not always on one side


# -- refusals and stability -----------------------------------------------------------------------

@pytest.mark.parametrize("fmt, name, why", [
    ("labelstudio", "sft", "takes preference datasets"),
    ("llamafactory-sharegpt", "prompts", "use --format llamafactory-alpaca"),
    ("openrlhf", "unpaired", "no trainer for unpaired"),
])
def test_a_kind_the_tool_cannot_hold_is_refused(ws, tmp_path, fmt, name, why):
    out = tmp_path / "out"
    with pytest.raises(ToolExportError, match=why):
        export_dataset(ws, name, fmt, out)
    assert list(tmp_path.iterdir()) == []


def test_a_row_the_tool_cannot_hold_names_the_record_and_field(tmp_path):
    w = Workspace.init(tmp_path / "ws")
    try:
        rows = PREF[:2] + [{"prompt": [M("user", "a"), M("system", "mid-chat system"), M("user", "b")],
                            "chosen": [M("assistant", "x")], "rejected": [M("assistant", "y")]}]
        import_file(w, _write(tmp_path / "bad.jsonl", rows), "bad")
        bad_id = [r.id for r in R.iter_records(w.conn, R.get_dataset(w.conn, "bad"))][2]
        for fmt in ("llamafactory-sharegpt", "llamafactory-alpaca"):
            with pytest.raises(ToolExportError, match=rf"record #{bad_id}: field 'prompt'"):
                export_dataset(w, "bad", fmt, tmp_path / f"out-{fmt}")
            assert not (tmp_path / f"out-{fmt}").exists()
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left
    finally:
        w.close()


def test_tool_exports_of_a_snapshot_are_byte_stable(ws, tmp_path):
    ops.split(ws, "pref", validation=0.25, seed=1)
    with ws.transaction() as c:
        snap = R.freeze(c, "pref")
    first = {fmt: export_dataset(ws, "pref", fmt, tmp_path / f"a-{fmt}", snapshot=snap.hash[:8]).sha256
             for fmt in ("llamafactory-alpaca", "llamafactory-sharegpt", "openrlhf", "labelstudio")}
    with ws.transaction() as c:
        R.set_deleted(c, [next(R.iter_records(c, R.get_dataset(c, "pref"))).id], True)
    for fmt, sha in first.items():
        again = export_dataset(ws, "pref", fmt, tmp_path / f"b-{fmt}", snapshot=snap.hash[:8])
        assert again.sha256 == sha, fmt
    name = f"pref-{snap.hash[:8]}"
    entry = _lf_entry(tmp_path / "b-llamafactory-alpaca", name, f"{name}_validation")
    assert entry["file_name"] == f"{name}.jsonl"


def test_llamafactory_export_of_a_split_dataset_has_a_validation_entry(tmp_path):
    w = Workspace.init(tmp_path / "ws")
    try:
        import_file(w, _write(tmp_path / "pref.jsonl", PREF * 3), "pref")
        ops.split(w, "pref", validation=0.3, seed=2)
        info = R.get_dataset(w.conn, "pref")
        assert info.validation > 0
        report = export_dataset(w, "pref", "llamafactory-sharegpt", tmp_path / "lf")
        assert "dataset: pref, eval_dataset: pref_validation" in report.usage
        all_info = json.loads((tmp_path / "lf" / "dataset_info.json").read_text(encoding="utf-8"))
        assert list(all_info) == ["pref", "pref_validation"] and all_info["pref_validation"]["ranking"] is True
        counts = [len(_load(tmp_path / "lf" / all_info[e]["file_name"], tmp_path)) for e in all_info]
        assert counts == [info.train, info.validation] and report.rows == info.rows
        only = export_dataset(w, "pref", "llamafactory-sharegpt", tmp_path / "lf-val", split="validation")
        assert list(json.loads((tmp_path / "lf-val" / "dataset_info.json").read_text())) == ["pref"]
        assert only.rows == info.validation
    finally:
        w.close()


def test_cli_tool_formats_and_csv_option(tmp_path):
    import os
    import subprocess
    import sys

    w = Workspace.init(tmp_path / "ws")
    import_file(w, _write(tmp_path / "pref.jsonl", PREF), "pref")
    w.close()

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "workbench.cli", "data", "export", "pref", "--workspace",
                               str(tmp_path / "ws"), *map(str, args)], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})

    proc = cli("--format", "llamafactory-sharegpt", "--out", tmp_path / "lf")
    assert proc.returncode == 0, proc.stderr
    assert f"dataset_dir: {tmp_path / 'lf'}, dataset: pref " in proc.stdout
    assert _lf_entry(tmp_path / "lf", "pref")["formatting"] == "sharegpt"
    report = json.loads(cli("--format", "openrlhf", "--out", tmp_path / "o.jsonl", "--json").stdout)
    assert report["rows"] == len(PREF) and "--data.chosen_key chosen" in report["usage"]
    safe = tmp_path / "safe.csv"
    kept = tmp_path / "kept.csv"
    assert cli("--format", "csv", "--out", safe).returncode == 0
    assert cli("--format", "csv", "--out", kept, "--csv-formulas", "keep").returncode == 0
    assert '"[{""role"": ""user"", ""content"": ""=SUM(A1)' in kept.read_text(encoding="utf-8")  # JSON cells as is
    assert safe.read_bytes() == kept.read_bytes()   # chat cells are JSON lists: never a formula
