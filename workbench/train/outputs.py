"""What a finished run produced, and which folder the next stage can load (no torch, no Qt).

The pipeline SFT -> reward model -> PPO hands each stage's output to the
next: the SFT model is the reward model's base and PPO's policy, the reward
model scores PPO's responses. A later stage needs a folder that
``from_pretrained`` loads, and a run's final checkpoint is one only when all
weights trained; with LoRA it holds an adapter, loadable once merged into
its base: by the run itself (``model.save_merged`` writes ``merged/``) or by
a ``merge`` job afterwards (:mod:`workbench.train.merge`, which records its
source in ``result.json``). :func:`run_output` reads a run's folder and
says which of these it is; :func:`loadable_model` picks the folder to feed
forward.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Union

from ..jobs.rundir import list_checkpoints, read_json as _read_json

MANIFEST = "workbench.json"  # written into every SFT/reward/DPO checkpoint (see callbacks.py)
RESULT = "result.json"  # written by the merge job into its run folder
PPO_ADAPTER_DIR = "adapter"  # ppo.ADAPTER_DIR (ppo.py imports torch)
PPO_STATE_FILE = "trainer_state.json"


@dataclass(frozen=True)
class RunOutput:
    """The model a run left behind.

    ``kind``: ``"model"`` (all weights: ``model_folder`` loads),
    ``"adapter"`` (a LoRA adapter in ``adapter_folder`` over ``base_model``;
    ``model_folder`` is its ``merged/`` copy when the run wrote one, else
    ``None``) or ``"export"`` (a merge job's output folder).
    """

    run_id: str
    stage: str
    checkpoint: Path
    step: int
    kind: str
    model_folder: Optional[Path] = None
    adapter_folder: Optional[Path] = None
    base_model: Optional[str] = None
    final: bool = True
    source_run: Optional[str] = None  # export: the run whose checkpoint was merged

    @property
    def loadable(self) -> bool:
        return self.model_folder is not None


def _stage_of(run_path: Path) -> str:
    parts = run_path.name.split("-")
    return parts[2] if len(parts) >= 4 else "?"


def describe_checkpoint(folder: Union[str, os.PathLike], *, run_id: str = "", stage: str = "",
                        step: int = 0) -> Optional[RunOutput]:
    """The :class:`RunOutput` of one checkpoint folder (any stage), or ``None`` when it holds no
    model."""
    folder = Path(folder)
    manifest = _read_json(folder / MANIFEST)
    if manifest is not None:  # SFT, reward, DPO (TRL recipes)
        base = manifest.get("base_model")
        base_id = base.get("id") if isinstance(base, dict) else None
        final = bool(manifest.get("final", False))
        if manifest.get("adapter"):
            merged = folder / str(manifest["merged"]) if manifest.get("merged") else None
            return RunOutput(run_id, stage or str(manifest.get("stage", "")), folder, step, "adapter",
                             model_folder=merged if merged is not None and merged.is_dir() else None,
                             adapter_folder=folder, base_model=base_id, final=final)
        return RunOutput(run_id, stage or str(manifest.get("stage", "")), folder, step, "model",
                         model_folder=folder, base_model=base_id, final=final)
    if (folder / PPO_ADAPTER_DIR / "adapter_config.json").is_file():  # PPO
        state = _read_json(folder / PPO_STATE_FILE) or {}
        config = state.get("config") if isinstance(state.get("config"), dict) else {}
        return RunOutput(run_id, stage or "ppo", folder, step, "adapter", adapter_folder=folder / PPO_ADAPTER_DIR,
                         base_model=config.get("policy_model"), final=True)
    if (folder / "adapter_config.json").is_file():
        adapter = _read_json(folder / "adapter_config.json") or {}
        return RunOutput(run_id, stage, folder, step, "adapter", adapter_folder=folder,
                         base_model=adapter.get("base_model_name_or_path"))
    if (folder / "config.json").is_file():
        return RunOutput(run_id, stage, folder, step, "model", model_folder=folder)
    return None


def run_output(run_path: Union[str, os.PathLike]) -> Optional[RunOutput]:
    """What run ``run_path`` produced: its latest complete checkpoint, or for a ``merge`` run its
    exported folder. ``None`` when it has none yet."""
    run_path = Path(run_path)
    stage = _stage_of(run_path)
    result = _read_json(run_path / RESULT)
    if result is not None and result.get("output"):
        out = Path(result["output"])
        if out.is_dir():
            return RunOutput(run_path.name, stage, out, 0, "export", model_folder=out,
                             base_model=result.get("base_model"), source_run=result.get("source_run"))
        return None
    found = list_checkpoints(run_path)
    if not found:
        return None
    step, folder = found[-1]
    return describe_checkpoint(folder, run_id=run_path.name, stage=stage, step=step)


def exports_by_source(run_paths: Iterable[Union[str, os.PathLike]]) -> dict[str, Path]:
    """``{source run id: exported model folder}`` from the merge runs among ``run_paths``
    (oldest first: a later export of the same run wins)."""
    out: dict[str, Path] = {}
    for path in run_paths:
        path = Path(path)
        if _stage_of(path) != "merge":
            continue
        result = _read_json(path / RESULT)
        if result and result.get("source_run") and result.get("output") and Path(result["output"]).is_dir():
            out[str(result["source_run"])] = Path(result["output"])
    return out


def loadable_model(output: Optional[RunOutput], exports: Optional[dict[str, Path]] = None) -> Optional[Path]:
    """The folder a next stage loads for ``output``: its own model folder, else an export of it."""
    if output is None:
        return None
    if output.model_folder is not None:
        return output.model_folder
    return (exports or {}).get(output.run_id)
