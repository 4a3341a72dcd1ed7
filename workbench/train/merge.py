"""The ``merge`` job: turn a run's checkpoint into a folder ``from_pretrained`` loads.

Config (``config.yaml`` of a ``merge`` run)::

    stage: merge
    source: runs/20261123-014500-sft-ab12/checkpoints/step-200   # a checkpoint folder
    output: models/sft-ab12-merged        # optional; any folder (absolute, or relative to the workspace);
                                          # default models/<run id of source>-merged
    base_model: null                      # optional; default: what the checkpoint names
    overwrite: false                      # replace an existing output, only if it is a previous export

``run(ctx)`` top to bottom: find what the checkpoint holds (see
:func:`workbench.train.outputs.describe_checkpoint`); for a LoRA adapter
(SFT, reward, DPO or PPO), load the base model in its own dtype (never
quantized: an adapter trained with QLoRA merges into the 16-bit base),
apply the adapter, ``merge_and_unload``, and save safetensors weights, the
config and the tokenizer; for a full model, copy the weights (safetensors
only), config and tokenizer files. The folder is written under a temporary
name and renamed into place, so a cancelled or failed merge leaves nothing
half-written; its files get the modes the user's umask gives (safetensors
writes 0600). ``result.json`` in the run folder names the output (the
training panel and :func:`~workbench.train.outputs.run_output` read it).

The output follows the export rule of :func:`workbench.targets.check_target`:
an existing folder is refused, and with ``overwrite`` replaced only when it
is a previous export (its manifest lists every file in it); never the
workspace, a folder holding it, anything in ``runs/``, home or a root.

A PPO checkpoint's value head is not part of the language model and is not
exported. Relative paths are relative to the workspace.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Optional

from ..errors import WorkbenchError
from ..jobs.rundir import atomic_write_json, read_json
from ..targets import MERGED_MODEL, OutputTarget, TargetError, apply_umask, check_target, write_manifest
from .outputs import RESULT, describe_checkpoint
from .ppo_config import resolve_ref

OPTIONS = ("source", "output", "base_model", "overwrite")
#: Files besides the weights that make a model folder usable (config, tokenizer, chat template).
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                    "chat_template.json", "vocab.json", "merges.txt", "tokenizer.model", "added_tokens.json")
_MODEL_FILES = ("config.json", "generation_config.json") + _TOKENIZER_FILES


class MergeError(WorkbenchError):
    """The merge cannot run: bad source, missing base model, existing output."""


def _workspace_path(value: str, workspace: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (workspace / path)


def default_output(source: Path, workspace: Path) -> Path:
    """``models/<run id>-merged`` for a checkpoint inside ``runs/<run id>/checkpoints``."""
    parts = source.resolve().parts
    run_id = parts[-3] if len(parts) >= 3 and parts[-2] == "checkpoints" else source.name
    return workspace / "models" / f"{run_id}-merged"


def _torch_dtype(base: Path) -> Any:
    """The dtype the base model was saved in (bf16/fp16 stay so; anything else fp32)."""
    import torch

    try:
        config = json.loads((base / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return torch.float32
    name = str(config.get("dtype") or config.get("torch_dtype") or "float32")
    return {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(name, torch.float32)


def _copy_model(src: Path, dst: Path) -> None:
    copied = 0
    for path in sorted(src.iterdir()):
        if _is_model_file(path):
            shutil.copy2(path, dst / path.name)
            copied += path.name.endswith(".safetensors")
    if not copied:
        raise MergeError(f"{src} holds no safetensors weights to export")


def check_config(config: dict, workspace: Path):
    """Check a merge config against ``workspace`` without loading anything heavy.

    Returns ``(source, output, found)`` (absolute folders and what the source
    holds); raises :class:`MergeError` naming the bad option. Used by the job
    and by ``rlhf-workbench train`` before a run is created.
    """
    unknown = sorted(set(config) - set(OPTIONS))
    if unknown:
        raise MergeError(f"merge: unknown option(s) {', '.join(unknown)}; known: {', '.join(OPTIONS)}")
    if not config.get("source"):
        raise MergeError("source: required (the checkpoint folder to export)")
    source = _workspace_path(str(config["source"]), workspace).resolve()
    found = describe_checkpoint(source)
    if found is None:
        raise MergeError(f"source: {source} holds no model or LoRA adapter")
    output = _workspace_path(str(config["output"]), workspace) if config.get("output") \
        else default_output(source, workspace)
    target = check_output(output, workspace, overwrite=bool(config.get("overwrite")))
    return source, target.path, found


def check_output(output: Path | str, workspace: Path, *, overwrite: bool = False) -> OutputTarget:
    """May a merge write (or, with ``overwrite``, replace) the folder ``output``?

    ``output`` is absolute or relative to ``workspace``. Raises
    :class:`MergeError` naming the ``output`` option and why not; a folder
    picker can call it to check a choice before the job is started.
    """
    try:
        return check_target(_workspace_path(str(output), workspace), folder=True, workspace=workspace,
                            overwrite=overwrite, recognise=lambda folder: _earlier_merge(folder, workspace),
                            kind=MERGED_MODEL)
    except TargetError as exc:
        raise MergeError(f"output: {exc}") from None


def _is_model_file(path: Path) -> bool:
    return path.is_file() and (path.name in _MODEL_FILES or path.name.endswith(".safetensors")
                               or path.name == "model.safetensors.index.json")


def _earlier_merge(folder: Path, workspace: Path) -> bool:
    """Is ``folder`` a merge output written before merges carried a manifest? It must hold
    model files only, and a merge run of this workspace must name it in its ``result.json``."""
    if not all(_is_model_file(p) for p in folder.iterdir()):
        return False
    real = folder.resolve()
    for result in sorted((workspace / "runs").glob(f"*/{RESULT}")):
        output = (read_json(result) or {}).get("output")
        if isinstance(output, str) and Path(output).resolve() == real:
            return True
    return False


def run(ctx) -> None:
    """Recipe entry: merge (or copy) ``source`` into ``output``; see the module docstring."""
    workspace = ctx.run_dir.path.resolve().parent.parent
    source, output, found = check_config(ctx.config, workspace)
    target = check_output(output, workspace, overwrite=bool(ctx.config.get("overwrite")))
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.parent / f".tmp-{output.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        base = _export(ctx, found, source, tmp, workspace)
        ctx.raise_if_stopped()
        apply_umask(tmp)
        write_manifest(tmp, kind=MERGED_MODEL, source=str(source), base_model=base)
        try:
            target.replace_with(tmp)
        except TargetError as exc:
            raise MergeError(f"output: {exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    parts = source.parts
    source_run = parts[-3] if len(parts) >= 3 and parts[-2] == "checkpoints" else None
    atomic_write_json(ctx.run_dir.path / RESULT, {
        "output": str(output), "source": str(source), "source_run": source_run, "base_model": base,
        "kind": "merged" if found.kind == "adapter" else "copied", "time": time.time()})
    ctx.log(f"saved the {'merged' if found.kind == 'adapter' else 'exported'} model in {output}")


def _export(ctx, found, source: Path, dst: Path, workspace: Path) -> Optional[str]:
    """Write the loadable model into ``dst``; returns the base model used (``None`` for a copy)."""
    if found.kind == "model" or (found.model_folder is not None and found.kind == "adapter"):
        folder = found.model_folder
        ctx.log(f"copying the model in {folder}")
        _copy_model(folder, dst)
        return None

    base_ref = ctx.config.get("base_model") or found.base_model
    if not base_ref:
        raise MergeError(f"{source}: the adapter does not say its base model; set base_model in the config")
    base_ref = resolve_ref(str(base_ref), workspace)
    adapter_dir = found.adapter_folder
    adapter_cfg = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    seq_cls = adapter_cfg.get("task_type") == "SEQ_CLS"

    import torch
    from peft import PeftModel

    from ..models.loading import load_causal_lm, load_reward_model, load_tokenizer
    from ..models.refs import ModelRef

    ref = ModelRef(base_ref)
    dtype = _torch_dtype(Path(ref.resolve())) if ref.is_local else torch.bfloat16
    ctx.log(f"loading the base model {base_ref} ({str(dtype).replace('torch.', '')}) on the CPU")
    loader = load_reward_model if seq_cls else load_causal_lm
    model = loader(base_ref, device="cpu", dtype=dtype)
    ctx.raise_if_stopped()
    ctx.log(f"applying the adapter in {adapter_dir}")
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    ctx.raise_if_stopped()
    ctx.log("merging the adapter into the weights")
    merged = model.merge_and_unload()
    ctx.raise_if_stopped()
    ctx.log("saving safetensors weights and the tokenizer")
    merged.save_pretrained(dst, safe_serialization=True)
    # The checkpoint's tokenizer files when it has them (the recipes save them; training may have
    # set a pad token or chat template), else the base model's tokenizer.
    tokenizer_files = [p for p in sorted(source.iterdir()) if p.is_file() and p.name in _TOKENIZER_FILES]
    if any(p.name in ("tokenizer.json", "tokenizer_config.json") for p in tokenizer_files):
        for path in tokenizer_files:
            shutil.copy2(path, dst / path.name)
    else:
        load_tokenizer(base_ref).save_pretrained(dst)
    return base_ref
