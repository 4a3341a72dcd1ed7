"""Typed run configs for the training stages, YAML presets, and checks before any model loads.

A stage config (:class:`SFTConfig`, :class:`RewardConfig`, :class:`DPOConfig`)
holds three sections shared by every stage (:class:`ModelConfig`,
:class:`DataConfig`, :class:`TrainingConfig`) and the stage's own fields at
the top level. Every field carries ``metadata["help"]`` (and
``metadata["choices"]`` where the values are a fixed set): the training panel
builds its forms from them. In YAML (``config.yaml`` of a run, a preset)::

    stage: sft
    model: {ref: Qwen/Qwen2.5-0.5B-Instruct, lora_r: 16}
    data: {dataset: demos}
    training: {learning_rate: 2.0e-4, max_steps: 200}
    packing: false

:func:`load_config` turns such a mapping (or file) into a checked config,
:func:`to_dict` turns it back. :func:`validate_before_load` looks at the
workspace and the model folder (dataset present and of the right kind,
tokenizer present, chat template for chat data, bitsandbytes usable for
4/8-bit) so a bad run fails in a second, not minutes into loading a model.

Cheap to import: no torch, transformers or Qt (the GUI builds forms from it).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Optional, Union, get_args, get_origin, get_type_hints

from ..config_files import ConfigFileError, load_yaml_file
from ..errors import WorkbenchError, short_repr

#: Where the YAML presets live (one file per hardware profile).
PRESETS_DIR = Path(__file__).resolve().parents[2] / "resources" / "presets"

QUANTIZATIONS = (None, "4bit", "8bit")
DEVICES = ("auto", "cpu", "cuda")
LR_SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
DPO_LOSSES = ("sigmoid", "ipo", "hinge", "robust")
#: The dataset kind each stage trains on.
STAGE_KINDS = {"sft": "sft", "reward": "preference", "dpo": "preference"}


class ConfigError(WorkbenchError):
    """A config value is wrong or does not fit the workspace; ``field`` names it
    (dotted, e.g. ``training.learning_rate``) and leads the message."""

    def __init__(self, field: Optional[str], message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


def _f(default: Any = dataclasses.MISSING, help: str = "", *, choices: Optional[tuple] = None,
       factory: Any = None) -> Any:
    meta = {"help": help}
    if choices is not None:
        meta["choices"] = choices
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# -- sections ---------------------------------------------------------------------------------
@dataclass
class ModelConfig:
    """The model to train and how: base weights, quantization, LoRA."""

    ref: str = _f("", "Hugging Face hub id (owner/name) or a model folder; a relative folder "
                      "(./models/x) is relative to the workspace")
    revision: Optional[str] = _f(None, "Hub branch, tag or commit (hub ids only); empty: the default branch")
    trust_remote_code: bool = _f(False, "Let the model run Python code shipped with it; only for models you trust")
    quantization: Optional[str] = _f(None, "Load the base weights in 4-bit (QLoRA) or 8-bit to save GPU "
                                           "memory; needs bitsandbytes and LoRA", choices=QUANTIZATIONS)
    lora: bool = _f(True, "Train small LoRA adapters instead of all weights (much less memory)")
    lora_r: int = _f(16, "LoRA rank: capacity of the adapters (8-64 is typical)")
    lora_alpha: int = _f(32, "LoRA scaling numerator (often 2 x rank)")
    lora_dropout: float = _f(0.05, "Dropout on the LoRA path, in [0, 1)")
    lora_target_modules: str = _f("all-linear", "Layers that get adapters: all-linear, or comma-separated "
                                                "module names such as q_proj,v_proj")
    gradient_checkpointing: bool = _f(False, "Recompute activations in the backward pass: less memory, "
                                             "about 20% slower")
    save_merged: bool = _f(False, "Also save the LoRA-merged full model in the final checkpoint (merged/), "
                                  "for stages that take a model folder; not with quantization")

    def target_modules(self) -> Union[str, list[str]]:
        """``"all-linear"`` or the list of module names."""
        text = self.lora_target_modules.strip()
        if text == "all-linear":
            return text
        return [m.strip() for m in text.split(",") if m.strip()]


@dataclass
class DataConfig:
    """The workspace dataset to train on."""

    dataset: str = _f("", "Name of the workspace dataset")
    snapshot: Optional[str] = _f(None, "Hash (or its first 6+ characters) of a frozen snapshot; empty: freeze "
                                       "the dataset's current records when the run starts")
    use_validation: bool = _f(True, "Hold out the dataset's validation split for evaluation (records "
                                    "without a split train)")
    workspace: Optional[str] = _f(None, "Workspace folder holding the dataset; empty: the workspace the run "
                                        "belongs to. A relative folder is taken relative to that workspace "
                                        "(not to the config file)")


@dataclass
class TrainingConfig:
    """Optimizer, schedule, batch sizes and bookkeeping, common to every stage."""

    learning_rate: float = _f(2e-4, "Peak learning rate (LoRA: 1e-4 to 3e-4; full fine-tuning: ~1e-5)")
    num_epochs: float = _f(1.0, "Passes over the training data (ignored when max_steps is set)")
    max_steps: int = _f(0, "Stop after this many optimizer steps; 0: train for num_epochs")
    batch_size: int = _f(4, "Examples (pairs for reward/DPO) per device per forward pass")
    gradient_accumulation_steps: int = _f(1, "Forward passes per optimizer step; effective batch = "
                                             "batch_size x this")
    max_length: int = _f(1024, "Longest sequence in tokens (longer ones are truncated or, for reward "
                               "pairs, dropped)")
    seed: int = _f(42, "Random seed (data order, LoRA init, dropout)")
    logging_steps: int = _f(10, "Report metrics every this many optimizer steps")
    save_steps: int = _f(0, "Save a checkpoint every this many steps; 0: only at the end and on cancel")
    keep_checkpoints: int = _f(3, "Checkpoints kept on disk: the newest this many, plus the best by the "
                                  "stage's key metric and any another run or generated candidates use; "
                                  "0: keep them all")
    warmup_ratio: float = _f(0.0, "Fraction of the steps spent warming the learning rate up, in [0, 1)")
    lr_scheduler: str = _f("linear", "Learning rate schedule after warmup", choices=LR_SCHEDULERS)
    weight_decay: float = _f(0.0, "AdamW weight decay")
    max_grad_norm: float = _f(1.0, "Clip the gradient norm to this; 0: no clipping")
    device: str = _f("auto", "Where to train: auto (the GPU when there is one), cpu or cuda", choices=DEVICES)


# -- stage configs ----------------------------------------------------------------------------
@dataclass
class SFTConfig:
    """Supervised fine-tuning on demonstrations (an ``sft`` dataset)."""

    stage: ClassVar[str] = "sft"
    model: ModelConfig = _f(help="The model to train", factory=ModelConfig)
    data: DataConfig = _f(help="The demonstrations", factory=DataConfig)
    training: TrainingConfig = _f(help="Optimizer and schedule", factory=TrainingConfig)
    packing: bool = _f(False, "Pack several short examples into each max_length sequence (faster on "
                              "short data)")
    assistant_only_loss: bool = _f(True, "Chat data: learn only the assistant turns, not the user's")
    completion_only_loss: bool = _f(True, "Prompt/completion data: learn only the completion")


@dataclass
class RewardConfig:
    """A scalar reward model trained on preference pairs (a ``preference`` dataset)."""

    stage: ClassVar[str] = "reward"
    model: ModelConfig = _f(help="The base model (usually the SFT model)", factory=ModelConfig)
    data: DataConfig = _f(help="The preference pairs", factory=DataConfig)
    training: TrainingConfig = _f(help="Optimizer and schedule",
                                  factory=lambda: TrainingConfig(learning_rate=5e-5))
    eval_steps: int = _f(50, "Evaluate on the validation split every this many steps (and at the end); "
                             "0: only at the end")
    center_rewards_coefficient: float = _f(0.0, "Pull rewards towards zero mean (0.01 is typical); 0: off")


@dataclass
class DPOConfig:
    """Direct preference optimization of a policy on preference pairs."""

    stage: ClassVar[str] = "dpo"
    model: ModelConfig = _f(help="The policy to train (usually the SFT model); the reference is its "
                                 "starting point", factory=ModelConfig)
    data: DataConfig = _f(help="The preference pairs", factory=DataConfig)
    training: TrainingConfig = _f(help="Optimizer and schedule",
                                  factory=lambda: TrainingConfig(learning_rate=5e-6))
    beta: float = _f(0.1, "How far the policy may move from the reference: higher stays closer")
    loss_type: str = _f("sigmoid", "DPO loss variant", choices=DPO_LOSSES)


StageConfig = Union[SFTConfig, RewardConfig, DPOConfig]
#: Stage name -> config class.
STAGES: dict[str, type] = {cls.stage: cls for cls in (SFTConfig, RewardConfig, DPOConfig)}


# -- from and to plain data -------------------------------------------------------------------
def _type_name(tp: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` as the annotated type ``tp`` (YAML reads ``1e-5`` as a string: accept it)."""
    if get_origin(tp) is Union:
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None or value == "":
            return None
        return _coerce(value, args[0], where)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ",".join(value)  # lora_target_modules given as a YAML list
    raise ConfigError(where, f"expected {_type_name(tp)}, got {short_repr(value)}")


def _build(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(prefix or None, f"expected a mapping of fields, got {short_repr(data)}")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        where = f"{prefix}{key}"
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known fields: {', '.join(names)}"
            raise ConfigError(where, f"unknown field{hint}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value, f"{where}.")
        else:
            kwargs[key] = _coerce(value, tp, where)
    return cls(**kwargs)


def load_config(source: Union[str, os.PathLike, Mapping[str, Any]]) -> StageConfig:
    """A checked stage config from a mapping or a YAML file, chosen by its ``stage`` key.

    Raises :class:`ConfigError` naming the field for unknown fields, wrong
    types and out-of-range values (see :func:`validate_config`).
    """
    if isinstance(source, Mapping):
        data = dict(source)
    else:
        path = Path(source)
        try:
            data = load_yaml_file(path)
        except ConfigFileError as e:
            raise ConfigError(None, str(e)) from None
        if not isinstance(data, dict):
            raise ConfigError(None, f"{path}: expected a mapping with a 'stage' key")
    stage = data.pop("stage", None)
    if stage not in STAGES:
        raise ConfigError("stage", f"expected one of {', '.join(STAGES)}, got {short_repr(stage)}")
    cfg = _build(STAGES[stage], data, "")
    validate_config(cfg)
    return cfg


def to_dict(cfg: StageConfig) -> dict[str, Any]:
    """The config as plain data, ``stage`` first (what ``config.yaml`` holds)."""
    return {"stage": cfg.stage, **dataclasses.asdict(cfg)}


def field_help(cls: type) -> dict[str, dict[str, Any]]:
    """``{field: {"help", "choices"?, "default", "type"}}`` of a config class, nested for sections
    (what a form builder needs)."""
    out: dict[str, dict[str, Any]] = {}
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        entry = dict(f.metadata)
        if dataclasses.is_dataclass(tp):
            entry["fields"] = field_help(tp)
        else:
            entry["type"] = tp
            entry["default"] = f.default if f.default is not dataclasses.MISSING else None
        out[f.name] = entry
    return out


# -- static checks ----------------------------------------------------------------------------
_HEX = re.compile(r"^[0-9a-fA-F]{6,64}$")


def _check(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise ConfigError(where, message)


def validate_config(cfg: StageConfig) -> None:
    """Check every value on its own and against the others (no files, no imports)."""
    from ..models.refs import ModelError, ModelRef, check_hub_id

    m, d, t = cfg.model, cfg.data, cfg.training
    _check(bool(m.ref.strip()), "model.ref",
           "empty: give a hub id like Qwen/Qwen2.5-0.5B-Instruct or a model folder")
    try:
        if not ModelRef(m.ref).is_local:
            check_hub_id(m.ref.strip())
    except ModelError as e:
        raise ConfigError("model.ref", str(e)) from None
    except OSError as e:  # e.g. a name longer than the file system allows
        raise ConfigError("model.ref", f"{short_repr(m.ref)}: not a usable folder ({e.strerror})") from None
    _check(m.quantization in QUANTIZATIONS, "model.quantization",
           f"expected none, 4bit or 8bit, got {m.quantization!r}")
    _check(not m.quantization or m.lora, "model.quantization",
           f"{m.quantization} weights cannot be trained directly: turn lora on (QLoRA) or quantization off")
    if m.lora:
        _check(m.lora_r > 0, "model.lora_r", f"must be a positive integer, got {m.lora_r}")
        _check(m.lora_alpha > 0, "model.lora_alpha", f"must be a positive integer, got {m.lora_alpha}")
        _check(0 <= m.lora_dropout < 1, "model.lora_dropout", f"must be in [0, 1), got {m.lora_dropout}")
        _check(bool(m.target_modules()), "model.lora_target_modules",
               "empty: give all-linear or module names such as q_proj,v_proj")
    _check(not (m.save_merged and m.quantization), "model.save_merged",
           "a quantized base cannot be merged with its adapter; turn save_merged off")

    _check(bool(d.dataset.strip()), "data.dataset", "empty: choose the workspace dataset to train on")
    _check(d.snapshot is None or bool(_HEX.match(d.snapshot)), "data.snapshot",
           f"expected 6 to 64 hex characters of a snapshot hash, got {d.snapshot!r}")

    _check(math.isfinite(t.learning_rate) and t.learning_rate > 0, "training.learning_rate",
           f"must be a positive number, got {t.learning_rate}")
    _check(t.max_steps >= 0, "training.max_steps", f"must be 0 (use num_epochs) or positive, got {t.max_steps}")
    _check(t.max_steps > 0 or (math.isfinite(t.num_epochs) and t.num_epochs > 0), "training.num_epochs",
           f"must be positive when max_steps is 0, got {t.num_epochs}")
    _check(t.batch_size >= 1, "training.batch_size", f"must be at least 1, got {t.batch_size}")
    _check(t.gradient_accumulation_steps >= 1, "training.gradient_accumulation_steps",
           f"must be at least 1, got {t.gradient_accumulation_steps}")
    _check(t.max_length >= 16, "training.max_length", f"must be at least 16 tokens, got {t.max_length}")
    _check(t.seed >= 0, "training.seed", f"must be 0 or positive, got {t.seed}")
    _check(t.logging_steps >= 1, "training.logging_steps", f"must be at least 1, got {t.logging_steps}")
    _check(t.save_steps >= 0, "training.save_steps", f"must be 0 (end only) or positive, got {t.save_steps}")
    _check(t.keep_checkpoints >= 0, "training.keep_checkpoints",
           f"must be 0 (keep all) or positive, got {t.keep_checkpoints}")
    _check(0 <= t.warmup_ratio < 1, "training.warmup_ratio", f"must be in [0, 1), got {t.warmup_ratio}")
    _check(t.lr_scheduler in LR_SCHEDULERS, "training.lr_scheduler",
           f"expected one of {', '.join(LR_SCHEDULERS)}, got {t.lr_scheduler!r}")
    _check(t.weight_decay >= 0, "training.weight_decay", f"must be 0 or positive, got {t.weight_decay}")
    _check(t.max_grad_norm >= 0, "training.max_grad_norm", f"must be 0 (off) or positive, got {t.max_grad_norm}")
    _check(t.device in DEVICES, "training.device", f"expected one of {', '.join(DEVICES)}, got {t.device!r}")

    if isinstance(cfg, RewardConfig):
        _check(cfg.eval_steps >= 0, "eval_steps", f"must be 0 (end only) or positive, got {cfg.eval_steps}")
        _check(cfg.center_rewards_coefficient >= 0, "center_rewards_coefficient",
               f"must be 0 (off) or positive, got {cfg.center_rewards_coefficient}")
    if isinstance(cfg, DPOConfig):
        _check(math.isfinite(cfg.beta) and cfg.beta > 0, "beta", f"must be a positive number, got {cfg.beta}")
        _check(cfg.loss_type in DPO_LOSSES, "loss_type",
               f"expected one of {', '.join(DPO_LOSSES)}, got {cfg.loss_type!r}")


# -- checks against the workspace and the model folder ----------------------------------------
def workspace_folder(value: Optional[str], home: Optional[Union[str, os.PathLike]]) -> Optional[Path]:
    """A config's workspace setting as a folder: ``home`` (the workspace the run belongs to)
    when empty, else the folder given, a relative one taken relative to ``home``: never to
    the current folder, which for a job is its run folder. ``None`` when it cannot be known."""
    if not value:
        return Path(home).resolve() if home is not None else None
    path = Path(value).expanduser()
    if not path.is_absolute():
        if home is None:
            return None
        path = Path(home) / path
    return path.resolve()


def run_home(run_dir: Optional[Union[str, os.PathLike]]) -> Optional[Path]:
    """The workspace holding run folder ``run_dir`` (``WORKSPACE/runs/RUN_ID``)."""
    return Path(run_dir).resolve().parent.parent if run_dir is not None else None


def resolve_workspace(cfg: StageConfig, run_dir: Optional[Union[str, os.PathLike]] = None, *,
                      home: Optional[Union[str, os.PathLike]] = None) -> Path:
    """The workspace folder of the run: ``data.workspace`` (relative to the run's own workspace,
    ``home`` or the one holding ``run_dir``), else that workspace itself."""
    found = workspace_folder(cfg.data.workspace, home if home is not None else run_home(run_dir))
    if found is None:
        raise ConfigError("data.workspace", f"{cfg.data.workspace or 'not set'}: there is no workspace to "
                                            "find it from (give an absolute folder)")
    return found


def resolve_model_ref(cfg: StageConfig, workspace: Union[str, os.PathLike]):
    """The :class:`~workbench.models.refs.ModelRef` to load; a relative folder is taken
    relative to the workspace (jobs run in their run folder)."""
    from ..models.refs import ModelRef

    ref = cfg.model.ref.strip()
    if ref.startswith(("./", "../")) or (not Path(ref).is_absolute() and (Path(workspace) / ref).is_dir()):
        ref = str((Path(workspace) / ref).resolve())
    return ModelRef(ref, revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code)


def folder_has_chat_template(folder: Union[str, os.PathLike]) -> bool:
    """Whether a tokenizer folder ships a chat template (read from its files: no transformers)."""
    folder = Path(folder)
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    try:
        data = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(isinstance(data, dict) and data.get("chat_template"))


def validate_before_load(cfg: StageConfig, workspace: Union[str, os.PathLike, Any]) -> list[str]:
    """Check ``cfg`` against the workspace and the model before anything heavy loads.

    ``workspace`` is a :class:`~workbench.store.workspace.Workspace` or its
    folder. Raises :class:`ConfigError` for: a missing dataset or snapshot,
    a dataset of the wrong kind for the stage, an empty training set, a
    model folder without config, weights or tokenizer, chat data with a
    tokenizer that has no chat template, 4/8-bit quantization where
    bitsandbytes cannot run. Hub models are checked for syntax only (whether
    they download is known when the job loads them). Returns warnings that
    do not stop the run (e.g. no validation split for the reward evaluation).
    """
    from ..errors import NotFoundError
    from ..models.loading import check_quantization_available
    from ..models.refs import ModelError, check_model_ref
    from ..store import datasets as ds_repo
    from ..store.workspace import Workspace

    validate_config(cfg)
    warnings: list[str] = []
    if cfg.data.workspace:  # the dataset lives there: check that workspace, before any run exists
        root = workspace.root if isinstance(workspace, Workspace) else Path(workspace)
        target = resolve_workspace(cfg, home=root)
        if target != Path(root).resolve():
            workspace = target
    own = not isinstance(workspace, Workspace)
    try:
        ws = Workspace.open(workspace) if own else workspace
    except WorkbenchError as e:
        raise ConfigError("data.workspace", str(e)) from None
    try:
        conn = ws.conn
        try:
            info = ds_repo.get_dataset(conn, cfg.data.dataset)
        except NotFoundError as e:
            raise ConfigError("data.dataset", str(e)) from None
        want = STAGE_KINDS[cfg.stage]
        if info.kind != want:
            raise ConfigError("data.dataset", f"dataset {info.name!r} holds {info.kind} records, but the "
                                              f"{cfg.stage} stage trains on {want} records")
        if cfg.data.snapshot:
            try:
                snap = ds_repo.find_snapshot(conn, info.name, cfg.data.snapshot)
            except WorkbenchError as e:
                raise ConfigError("data.snapshot", str(e)) from None
            rows, n_val = snap.rows, conn.execute(
                "SELECT count(*) FROM snapshot_records WHERE snapshot_id = ? AND split = 'validation'",
                (snap.id,)).fetchone()[0]
        else:
            rows, n_val = info.rows, info.validation
        n_train = rows - (n_val if cfg.data.use_validation else 0)
        if n_train <= 0:
            raise ConfigError("data.dataset", f"dataset {info.name!r} has no training records"
                                              + (" (all are in the validation split)" if rows else ""))
        if isinstance(cfg, RewardConfig) and cfg.data.use_validation and n_val == 0:
            warnings.append(f"dataset {info.name!r} has no validation split: the reward model will not be "
                            "evaluated (split the dataset to get held-out accuracy)")
        root = ws.root
    finally:
        if own:
            ws.close()

    ref = resolve_model_ref(cfg, root)
    try:
        check_model_ref(ref, require_tokenizer=True)
    except ModelError as e:
        raise ConfigError("model.ref", str(e)) from None
    if info.style == "conversational" and ref.is_local and not folder_has_chat_template(ref.resolve()):
        raise ConfigError("model.ref", f"dataset {info.name!r} holds chat messages, but the tokenizer in "
                                       f"{ref.resolve()} has no chat template: use a chat/instruct model or "
                                       "a tokenizer folder with chat_template.jinja")
    if cfg.model.quantization:
        device = None if cfg.training.device == "auto" else cfg.training.device
        try:
            check_quantization_available(cfg.model.quantization, device)
        except ModelError as e:
            raise ConfigError("model.quantization", str(e)) from None
    return warnings


# -- presets ----------------------------------------------------------------------------------
def list_presets() -> list[str]:
    """Names of the presets in ``resources/presets`` (file names without ``.yaml``)."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def read_preset(name: str) -> dict[str, Any]:
    """A preset file as data: ``description``, shared ``model``/``training`` sections and
    per-stage overrides under ``stages``."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else PRESETS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError("preset", f"no preset {name!r}; presets: {', '.join(list_presets()) or 'none'}")
    try:
        data = load_yaml_file(path)
    except ConfigFileError as e:
        raise ConfigError("preset", str(e)) from None
    if not isinstance(data, dict):
        raise ConfigError("preset", f"{path}: expected a mapping")
    return data


def _merge(base: dict, over: Mapping) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), dict) \
            else value
    return out


def preset_config(name: str, stage: str, *, dataset: str, overrides: Optional[Mapping] = None) -> StageConfig:
    """The ``stage`` config of preset ``name`` for ``dataset``, with ``overrides`` merged on top."""
    data = read_preset(name)
    stages = data.get("stages") or {}
    if stage not in stages:
        raise ConfigError("stage", f"preset {name!r} has no {stage!r} stage; it has {', '.join(stages)}")
    merged = {"stage": stage, "model": dict(data.get("model") or {}), "training": dict(data.get("training") or {}),
              "data": {"dataset": dataset}}
    merged = _merge(merged, stages[stage] or {})
    return load_config(_merge(merged, overrides or {}))
