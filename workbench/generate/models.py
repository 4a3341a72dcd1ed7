"""What to load for "sample from this model": a hub id, a folder, a run, a checkpoint, an adapter.

The training stages save different things: a full model (``config.json`` +
weights), a LoRA adapter (``adapter_config.json``, from SFT/DPO/reward
with LoRA), an adapter merged into a ``merged/`` sub-folder, or a PPO
checkpoint (its adapter in ``adapter/``). :func:`resolve_model` turns any of
them, or a run folder (its latest complete checkpoint), into a
:class:`ResolvedModel`: the base to load and the adapter to apply on top.
No torch here: the ranking view checks a model before starting a job, and
:func:`list_run_models` fills its model list.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from ..jobs.rundir import CONFIG, latest_complete_checkpoint, list_checkpoints, parse_run_id, read_json
from ..models.refs import ModelError, ModelRef, check_model_ref

MANIFEST = "workbench.json"
ADAPTER_CONFIG = "adapter_config.json"
PPO_ADAPTER_DIR = "adapter"
PPO_STATE = "trainer_state.json"


@dataclass(frozen=True)
class ResolvedModel:
    """``base`` (a hub id or folder) to load, ``adapter`` (a peft folder) to apply, if any;
    ``tokenizer`` is the folder or id to load the tokenizer from; ``label`` is what was asked."""

    label: str
    base: str
    adapter: Optional[str] = None
    tokenizer: Optional[str] = None
    checkpoint: Optional[str] = None  # the checkpoint folder, relative to the workspace when inside it

    def describe(self) -> str:
        return f"{self.base} + adapter {self.adapter}" if self.adapter else self.base


def _read_json(path: Path) -> dict:
    return read_json(path) or {}


def _absolute(ref: str, workspace: Optional[Path]) -> str:
    """A relative folder is taken relative to the workspace (jobs run in their run folder)."""
    p = Path(ref).expanduser()
    if p.is_absolute():
        return str(p)
    if workspace is not None and (ref.startswith(("./", "../")) or (workspace / ref).exists()):
        return str((workspace / ref).resolve())
    return ref


def _relative(path: Path, workspace: Optional[Path]) -> str:
    if workspace is not None:
        try:
            return path.resolve().relative_to(workspace.resolve()).as_posix()
        except ValueError:
            pass
    return str(path)


def _adapter_base(adapter: Path, checkpoint: Path) -> Optional[str]:
    """The base model of an adapter: the run's manifest, else the adapter's own record."""
    base = _read_json(checkpoint / MANIFEST).get("base_model")
    if isinstance(base, dict) and base.get("id"):
        return str(base["id"])
    policy = _read_json(checkpoint / PPO_STATE).get("config", {})
    if isinstance(policy, dict) and policy.get("policy_model"):
        return str(policy["policy_model"])
    base = _read_json(adapter / ADAPTER_CONFIG).get("base_model_name_or_path")
    return str(base) if base else None


def resolve_model(ref: Union[str, os.PathLike], workspace: Optional[Union[str, os.PathLike]] = None
                  ) -> ResolvedModel:
    """See the module docstring. Raises :class:`ModelError` naming what is missing."""
    label = os.fspath(ref).strip()
    if not label:
        raise ModelError("model reference is empty: give a hub id, a model folder, or a run checkpoint")
    ws = Path(workspace).resolve() if workspace is not None else None
    target = _absolute(label, ws)
    if not ModelRef(target).is_local:
        check_model_ref(target)  # hub id syntax
        return ResolvedModel(label=label, base=target, tokenizer=target)
    folder = Path(target)
    if not folder.is_dir():
        raise ModelError(f"model folder {folder} does not exist")
    if (folder / CONFIG).is_file() and (folder / "checkpoints").is_dir():  # a run folder
        ckpt = latest_complete_checkpoint(folder)
        if ckpt is None:
            raise ModelError(f"run {folder.name} has no complete checkpoint yet")
        folder = ckpt
    checkpoint = _relative(folder, ws) if (folder / MANIFEST).is_file() or (folder / PPO_STATE).is_file() else None
    merged = _read_json(folder / MANIFEST).get("merged")
    if merged and (folder / merged / "config.json").is_file():
        folder = folder / merged
    if (folder / "config.json").is_file():
        check_model_ref(folder)
        return ResolvedModel(label=label, base=str(folder), tokenizer=str(folder), checkpoint=checkpoint)
    adapter = folder if (folder / ADAPTER_CONFIG).is_file() else folder / PPO_ADAPTER_DIR
    if (adapter / ADAPTER_CONFIG).is_file():
        base = _adapter_base(adapter, folder)
        if not base:
            raise ModelError(f"{folder} holds a LoRA adapter but names no base model "
                             f"(no base_model in {MANIFEST} or {ADAPTER_CONFIG})")
        base = _absolute(base, ws)
        if ModelRef(base).is_local:
            check_model_ref(base)
        # The adapter folder often holds a copy of the tokenizer, but no config.json for the
        # loaders' checks: the base's tokenizer is the same one.
        tokenizer = base
        return ResolvedModel(label=label, base=base, adapter=str(adapter), tokenizer=tokenizer,
                             checkpoint=checkpoint or _relative(folder, ws))
    raise ModelError(f"{folder} is neither a model folder (config.json), a LoRA adapter ({ADAPTER_CONFIG}) "
                     "nor a run with checkpoints")


#: Run stages whose checkpoints cannot generate text (a sequence-classification head).
NOT_GENERATORS = frozenset({"reward"})


def _run_stage(run: Path) -> Optional[str]:
    parsed = parse_run_id(run.name)
    if parsed is not None:
        return parsed[1]
    try:  # a folder not named like a run id: its config says
        import yaml

        return (yaml.safe_load((run / CONFIG).read_text(encoding="utf-8")) or {}).get("stage")
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return None


def list_run_models(workspace: Union[str, os.PathLike]) -> list[tuple[str, str]]:
    """``(label, path relative to the workspace)`` of models a user may sample from: the
    workspace's ``models/`` folders, then every complete checkpoint of its runs, newest run first.
    Reward-model runs are left out: a reward model scores text, it does not write it."""
    root = Path(workspace)
    out: list[tuple[str, str]] = []
    models = root / "models"
    if models.is_dir():
        for p in sorted(models.iterdir()):
            if p.is_dir() and not p.name.startswith(".") and (p / "config.json").is_file():
                out.append((f"models/{p.name}", f"./models/{p.name}"))
    runs = root / "runs"
    if runs.is_dir():
        for run in sorted((p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")), reverse=True):
            if _run_stage(run) in NOT_GENERATORS:
                continue
            for step, path in reversed(list_checkpoints(run)):
                out.append((f"{run.name} · step {step}", f"./runs/{run.name}/checkpoints/{path.name}"))
    return out
