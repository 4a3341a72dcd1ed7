"""The merge job: a real LoRA adapter on the tiny model, merged into a folder that loads with
``from_pretrained`` and gives the same logits as base + adapter; full models are copied; a PPO
checkpoint's adapter merges too; bad sources and existing outputs fail with a clear message."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from workbench.jobs.events import FinishedEvent, LogEvent, read_events
from workbench.jobs.rundir import atomic_checkpoint, new_run_dir
from workbench.jobs.run import run_job
from workbench.models.refs import check_model_ref
from workbench.train.outputs import exports_by_source, loadable_model, run_output

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json")


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("merge") / "ws"
    (root / "runs").mkdir(parents=True)
    return root


def _lora_model(base, *, task_type="CAUSAL_LM", seed=0):
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    # init_lora_weights=False: B is random too, so the adapter really changes the outputs.
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"], init_lora_weights=False,
                        task_type=task_type)
    return get_peft_model(base, config)


def _fake_run(ws: Path, stage: str, run_id_suffix: str) -> Path:
    run = ws / "runs" / f"20260101-000000-{stage}-{run_id_suffix}"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(f"stage: {stage}\n", encoding="utf-8")
    return run


def _merge(ws: Path, **config):
    rd = new_run_dir(ws / "runs", "merge", config)
    code = run_job(rd)
    events = read_events(rd.events)
    return code, events, rd


def _finished(events) -> FinishedEvent:
    fin = [e for e in events if isinstance(e, FinishedEvent)]
    assert len(fin) == 1
    return fin[0]


def _logits(model, ids):
    import torch

    with torch.no_grad():
        return model(input_ids=ids).logits


def test_merging_an_sft_adapter_gives_a_loadable_folder_with_the_same_logits(ws, tiny_model):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    # An SFT-style final checkpoint: adapter + tokenizer + workbench.json naming the base.
    run = _fake_run(ws, "sft", "aa01")
    with atomic_checkpoint(run, 3) as folder:
        peft_model = _lora_model(AutoModelForCausalLM.from_pretrained(tiny_model))
        peft_model.save_pretrained(folder)
        for name in TOKENIZER_FILES:
            if (tiny_model / name).is_file():
                shutil.copy2(tiny_model / name, folder / name)
        (folder / "workbench.json").write_text(json.dumps(
            {"stage": "sft", "adapter": True, "merged": None, "final": True,
             "base_model": {"id": str(tiny_model), "revision": None, "trust_remote_code": False}}))
    before = run_output(run)
    assert before.kind == "adapter" and not before.loadable and before.base_model == str(tiny_model)

    code, events, rd = _merge(ws, source=f"runs/{run.name}/checkpoints/step-3")
    assert code == 0, _finished(events).error
    assert _finished(events).status == "completed"
    logs = [e.message for e in events if isinstance(e, LogEvent)]
    assert any("merging" in m for m in logs) and any("saved the merged model" in m for m in logs)

    out = ws / "models" / f"{run.name}-merged"
    result = json.loads((rd.path / "result.json").read_text())
    assert Path(result["output"]) == out and result["source_run"] == run.name and result["kind"] == "merged"
    check_model_ref(out, require_tokenizer=True)  # config, safetensors weights, tokenizer
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    assert not list(out.parent.glob(".tmp-*"))

    ids = torch.tensor([[1, 5, 9, 17, 33, 65, 129, 200]])
    merged = AutoModelForCausalLM.from_pretrained(out, use_safetensors=True)
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), str(folder_of(run, 3)))
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    want = _logits(adapted, ids)
    assert torch.allclose(_logits(merged, ids), want, atol=1e-5)
    assert not torch.allclose(_logits(base, ids), want, atol=1e-3)  # the adapter mattered

    # The pipeline finds the export for the SFT run.
    exports = exports_by_source(sorted((ws / "runs").iterdir()))
    assert exports[run.name] == out
    assert loadable_model(before, exports) == out
    assert run_output(rd.path).kind == "export" and run_output(rd.path).model_folder == out

    # A second merge into the same folder is refused (nothing overwritten) unless asked.
    code, events, _ = _merge(ws, source=f"runs/{run.name}/checkpoints/step-3")
    assert code == 1 and "already exists" in _finished(events).error
    code, events, _ = _merge(ws, source=f"runs/{run.name}/checkpoints/step-3", overwrite=True)
    assert code == 0 and torch.allclose(_logits(AutoModelForCausalLM.from_pretrained(out), ids), want, atol=1e-5)


def folder_of(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step-{step}"


def test_a_ppo_checkpoint_adapter_merges_into_its_policy(ws, tiny_model):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run = _fake_run(ws, "ppo", "bb02")
    with atomic_checkpoint(run, 2) as folder:
        _lora_model(AutoModelForCausalLM.from_pretrained(tiny_model), seed=1).save_pretrained(folder / "adapter")
        (folder / "trainer_state.json").write_text(json.dumps({"step": 2, "config": {"policy_model": str(tiny_model)}}))
    out = ws / "models" / "policy-export"
    code, events, _ = _merge(ws, source=str(folder_of(run, 2)), output="models/policy-export")
    assert code == 0, _finished(events).error
    ids = torch.tensor([[3, 4, 5, 6]])
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model),
                                        str(folder_of(run, 2) / "adapter"))
    assert torch.allclose(_logits(AutoModelForCausalLM.from_pretrained(out), ids), _logits(adapted, ids), atol=1e-5)
    # No tokenizer in a PPO checkpoint: the base model's goes with the weights.
    check_model_ref(out, require_tokenizer=True)


def test_a_full_model_is_copied_and_bad_sources_are_named(ws, tiny_model):
    run = _fake_run(ws, "reward", "cc03")
    with atomic_checkpoint(run, 5) as folder:
        for path in tiny_model.iterdir():
            shutil.copy2(path, folder / path.name)
        (folder / "workbench.json").write_text(json.dumps({"stage": "reward", "adapter": False, "final": True}))
    code, events, rd = _merge(ws, source=str(folder_of(run, 5)))
    assert code == 0, _finished(events).error
    out = ws / "models" / f"{run.name}-merged"
    assert (out / "model.safetensors").read_bytes() == (tiny_model / "model.safetensors").read_bytes()
    assert json.loads((rd.path / "result.json").read_text())["kind"] == "copied"

    empty = ws / "runs" / "empty"
    empty.mkdir()
    code, events, _ = _merge(ws, source=str(empty))
    assert code == 1 and "no model or LoRA adapter" in _finished(events).error
    code, events, _ = _merge(ws, source=str(empty), typo=1)
    assert code == 1 and "unknown option(s) typo" in _finished(events).error


def _full_model_run(ws: Path, tiny_model: Path, suffix: str) -> Path:
    run = _fake_run(ws, "reward", suffix)
    with atomic_checkpoint(run, 1) as folder:
        for path in tiny_model.iterdir():
            shutil.copy2(path, folder / path.name)
        (folder / "workbench.json").write_text(json.dumps({"stage": "reward", "adapter": False, "final": True}))
    return folder_of(run, 1)


def test_a_merge_never_replaces_a_folder_that_is_not_a_previous_export(ws, tiny_model):
    """``output: ../photos`` or ``output: .`` with ``overwrite: true`` used to delete that folder."""
    from workbench.train.merge import check_config

    source = _full_model_run(ws, tiny_model, "dd04")
    photos = ws.parent / "photos"
    photos.mkdir(exist_ok=True)
    (photos / "holiday.jpg").write_bytes(b"JPEG")
    records = sorted(p.name for p in ws.iterdir())
    for output, why in (("../photos", "not a folder this app exported"), (".", "is the workspace itself"),
                        ("..", "contains the workspace"), ("runs", "runs/")):
        code, events, _ = _merge(ws, source=str(source), output=output, overwrite=True)
        assert code == 1 and why in _finished(events).error and "output:" in _finished(events).error
        with pytest.raises(Exception, match=why):
            check_config({"source": str(source), "output": output, "overwrite": True}, ws)
    assert (photos / "holiday.jpg").read_bytes() == b"JPEG" and [p.name for p in photos.iterdir()] == ["holiday.jpg"]
    assert set(records) <= {p.name for p in ws.iterdir()} and (source / "model.safetensors").is_file()
    assert not list(ws.parent.glob(".tmp-*")) and not list(ws.glob(".tmp-*"))


def test_a_merge_writes_where_asked_with_normal_file_modes(ws, tiny_model, tmp_path):
    """An explicit destination outside the workspace; files 0666 & ~umask (safetensors writes 0600)."""
    import os

    source = _full_model_run(ws, tiny_model, "ee05")
    assert (source / "model.safetensors").stat().st_mode & 0o777 == 0o600  # as save_pretrained left it
    out = tmp_path / "shared models" / "reward-ee05"
    old = os.umask(0o002)
    try:
        code, events, rd = _merge(ws, source=str(source), output=str(out))
    finally:
        os.umask(old)
    assert code == 0, _finished(events).error
    assert json.loads((rd.path / "result.json").read_text())["output"] == str(out)
    for path in [out, *out.iterdir()]:
        assert path.stat().st_mode & 0o777 == (0o775 if path.is_dir() else 0o664), path
    check_model_ref(out, require_tokenizer=True)
    # A previous merge is recognised (its manifest lists every file) and replaced when asked.
    code, events, _ = _merge(ws, source=str(source), output=str(out), overwrite=True)
    assert code == 0, _finished(events).error
    (out / "notes.txt").write_text("mine")
    code, events, _ = _merge(ws, source=str(source), output=str(out), overwrite=True)
    assert code == 1 and "notes.txt" in _finished(events).error and (out / "notes.txt").read_text() == "mine"


def test_a_merge_output_from_before_manifests_is_still_replaced_when_its_run_names_it(ws, tiny_model):
    """Folders merged by earlier versions carry no manifest: a merge run's result.json naming the
    folder, and nothing but model files in it, make it recognisably ours."""
    source = _full_model_run(ws, tiny_model, "ff06")
    old = ws / "models" / "legacy-merged"
    stranger = ws / "models" / "looks-like-a-model"
    for folder in (old, stranger):
        folder.mkdir(parents=True)
        for path in tiny_model.iterdir():
            shutil.copy2(path, folder / path.name)
    earlier = ws / "runs" / "20250101-000000-merge-old1"   # names `old`; no run names `stranger`
    earlier.mkdir()
    (earlier / "result.json").write_text(json.dumps({"output": str(old), "kind": "copied"}))
    # The user's own file in an earlier merge folder: not replaced.
    mixed = ws / "models" / "legacy-with-notes"
    shutil.copytree(old, mixed)
    (mixed / "notes.txt").write_text("mine")
    (ws / "runs" / "20250101-000000-merge-old9").mkdir()
    (ws / "runs" / "20250101-000000-merge-old9" / "result.json").write_text(json.dumps({"output": str(mixed)}))
    code, events, _ = _merge(ws, source=str(source), output="models/legacy-with-notes", overwrite=True)
    assert code == 1 and (mixed / "notes.txt").read_text() == "mine"
    code, events, _ = _merge(ws, source=str(source), output="models/legacy-merged", overwrite=True)
    assert code == 0, _finished(events).error
    code, events, _ = _merge(ws, source=str(source), output="models/looks-like-a-model", overwrite=True)
    assert code == 1 and "not a folder this app exported" in _finished(events).error
    assert (stranger / "model.safetensors").is_file()
