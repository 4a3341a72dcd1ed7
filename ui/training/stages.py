"""The pipeline's stages as the Train page sees them, and config checks for the forms (no Qt).

SFT -> reward model -> PPO, with DPO as the offline alternative to the last
two. :data:`STAGES` says, per stage, which config class its form comes from,
which field takes the model and which the dataset, and which fields of
later stages its output feeds. :func:`check_config` turns form values into
per-field error messages with the engine's own checks
(:func:`workbench.train.config.load_config` /
:func:`~workbench.train.config.validate_before_load`, and their PPO
counterparts), without importing torch: the bitsandbytes check, which
would, is answered from the GPU probe instead.

Pure Python so it runs on a worker thread (it opens the workspace's SQLite)
and in tests without a display.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from workbench.errors import WorkbenchError
from workbench.train import config as C
from workbench.train import ppo_config as P


@dataclass(frozen=True)
class StageDef:
    """One stage of the pipeline."""

    key: str
    title: str
    blurb: str
    config_class: type
    model_field: str  # dotted path of the model reference
    dataset_field: str
    snapshot_field: str
    dataset_kinds: tuple[str, ...]
    #: {later stage: field} that this stage's output model fills in.
    feeds: dict[str, str] = field(default_factory=dict)
    #: Model fields filled from earlier stages: a preset does not overwrite them once set.
    inputs: tuple[str, ...] = ()
    #: Fields the form does not show (kept as loaded from YAML).
    hidden: tuple[str, ...] = ()


STAGES: dict[str, StageDef] = {s.key: s for s in (
    StageDef("sft", "SFT", "Supervised fine-tuning on demonstrations", C.SFTConfig, "model.ref",
             "data.dataset", "data.snapshot", ("sft",),
             feeds={"reward": "model.ref", "dpo": "model.ref", "ppo": "policy_model"},
             hidden=("data.workspace",)),
    StageDef("reward", "Reward model", "A scalar reward learned from preference pairs", C.RewardConfig,
             "model.ref", "data.dataset", "data.snapshot", ("preference",), feeds={"ppo": "reward_model"},
             inputs=("model.ref",), hidden=("data.workspace",)),
    StageDef("ppo", "PPO", "The policy learns from the reward model, kept near the SFT model", P.PPOConfig,
             "policy_model", "prompt_dataset", "snapshot", ("prompts", "sft", "preference", "unpaired"),
             inputs=("policy_model", "reward_model"), hidden=("workspace", "prompts", "eval_prompts")),
    StageDef("dpo", "DPO", "Offline alternative: learn from preference pairs directly", C.DPOConfig,
             "model.ref", "data.dataset", "data.snapshot", ("preference",), inputs=("model.ref",),
             hidden=("data.workspace",)),
)}
#: Display order of the pipeline (DPO last: the branch).
ORDER = ("sft", "reward", "ppo", "dpo")
#: Fields that hold a model reference (they get a folder chooser and the workspace's models).
MODEL_FIELDS = ("model.ref", "policy_model", "reward_model")


# -- plain data helpers ----------------------------------------------------------------------------
def get_path(data: dict, path: str, default: Any = None) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def set_path(data: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def del_path(data: dict, path: str) -> bool:
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return False
    if isinstance(node, dict) and parts[-1] in node:
        del node[parts[-1]]
        return True
    return False


def defaults(stage: str) -> dict[str, Any]:
    """The stage's default config as plain data (no ``stage`` key)."""
    cls = STAGES[stage].config_class
    return dataclasses.asdict(cls())


def field_specs(stage: str) -> dict[str, dict[str, Any]]:
    """``{dotted path: {"help", "type", "default", "choices"?, "suggestions"?, "section"}}`` in form order."""
    sdef = STAGES[stage]
    out: dict[str, dict[str, Any]] = {}
    if stage == "ppo":
        helps = C.field_help(P.PPOConfig)
        for section, names in P.SECTIONS.items():
            for name in names:
                out[name] = {**helps[name], "section": section}
    else:
        helps = C.field_help(sdef.config_class)
        own = {k: v for k, v in helps.items() if "fields" not in v}
        for key, entry in helps.items():
            if "fields" in entry:
                title = {"model": "Model", "data": "Data", "training": "Training"}.get(key, key.title())
                for name, sub in entry["fields"].items():
                    out[f"{key}.{name}"] = {**sub, "section": title}
        for name, entry in own.items():
            out[name] = {**entry, "section": f"{sdef.title} options"}
    for path in sdef.hidden:
        out.pop(path, None)
    return out


# -- checks ----------------------------------------------------------------------------------------
_MISSING = object()

@dataclass
class CheckResult:
    """What :func:`check_config` found: ``errors`` by dotted field path (``""`` for errors that
    name no field of the form), ``warnings`` that do not stop a run, and the checked config as
    ``config.yaml`` would hold it (without ``stage``) when there are no errors."""

    errors: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    config: Optional[dict[str, Any]] = None

    @property
    def ok(self) -> bool:
        return not self.errors


def _load(stage: str, data: dict) -> Any:
    if stage == "ppo":
        return P.load_ppo_config(data)
    return C.load_config({"stage": stage, **data})


def _plain(stage: str, cfg: Any) -> dict[str, Any]:
    out = P.to_dict(cfg) if stage == "ppo" else C.to_dict(cfg)
    out.pop("stage", None)
    return out


def static_errors(stage: str, values: dict[str, Any], *, limit: int = 12) -> tuple[dict[str, str], Optional[Any]]:
    """Every field error the config checks find in ``values`` (not just the first): after each
    error the field takes its default and the check runs again. Returns ``(errors, config)``,
    ``config`` the checked config when there was no error."""
    data = copy.deepcopy(values)
    base = defaults(stage)
    errors: dict[str, str] = {}
    for _ in range(limit):
        try:
            cfg = _load(stage, data)
        except C.ConfigError as e:
            where = e.field or ""
            if where in errors or not where or where == "stage":
                errors.setdefault(where, e.message)
                return errors, None
            errors[where] = e.message
            current, default = get_path(data, where, _MISSING), get_path(base, where, _MISSING)
            if default is _MISSING:
                del_path(data, where)  # an unknown field
            elif default != current:
                set_path(data, where, copy.deepcopy(default))
            elif isinstance(default, str):
                # A required field whose default is empty: a well-formed stand-in lets the
                # remaining fields be checked (the error above stays).
                set_path(data, where, "x")
            else:
                return errors, None  # a rule across fields that the default does not settle
        else:
            return errors, (cfg if not errors else None)
    return errors, None



def check_config(stage: str, values: dict[str, Any], workspace: Optional[Path], *,
                 bitsandbytes_ok: Optional[bool] = None) -> CheckResult:
    """Check form values for ``stage`` the way the job will, before it starts.

    Static checks first (all field errors); when they pass and a workspace is
    open, the checks against it: dataset present and of the right kind,
    snapshot, model folder complete, chat template for chat data. 4/8-bit
    availability is not tried here (that would import torch and bitsandbytes
    in the GUI process): ``bitsandbytes_ok`` (from the probe) answers it when
    known; the job checks it again in its first second.
    """
    result = CheckResult()
    errors, cfg = static_errors(stage, values)
    if errors:
        result.errors = errors
        return result
    if workspace is not None:
        try:
            if stage == "ppo":
                result.warnings = P.validate_ppo_before_load(cfg, P.resolve_workspace(cfg, home=workspace))
            else:
                # Quantization off for this check: see the docstring.
                unquantized = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, quantization=None))
                result.warnings = C.validate_before_load(unquantized, workspace)
        except C.ConfigError as e:
            result.errors[e.field or ""] = e.message
            return result
        except WorkbenchError as e:
            result.errors[""] = str(e)
            return result
    quantization = cfg.quantization if stage == "ppo" else cfg.model.quantization
    if quantization and bitsandbytes_ok is False:
        where = "quantization" if stage == "ppo" else "model.quantization"
        result.errors[where] = (f"{quantization} needs bitsandbytes, which the GPU probe found unusable on this "
                                "machine; turn quantization off")
        return result
    result.config = _plain(stage, cfg)
    return result
