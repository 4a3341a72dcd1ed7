"""The bridge between a TRL trainer and the job: metrics, NaN stop, cancel, atomic checkpoints.

:class:`JobCallback` is the one ``TrainerCallback`` every recipe adds:

- every ``on_log`` becomes a ``metric`` event at the optimizer step, with
  the trainer's own names (``loss``, ``grad_norm``, ``mean_token_accuracy``,
  ``rewards/margins``, ...);
- a non-finite ``loss`` or ``grad_norm`` stops training with a ``nan_loss``
  warning (the trainer args must set ``logging_nan_inf_filter=False``, or HF
  hides NaN losses from the logs), and the job fails with
  :class:`TrainingDiverged` without saving the diverged weights;
- a cancel request (``ctx.should_stop()``, checked every step) saves a
  checkpoint at that step and stops; the recipe then ends ``cancelled``;
- every ``save_steps`` steps a checkpoint is saved.

Checkpoints go through ``ctx.checkpoint(step)`` (temp folder, fsync,
``COMPLETE``, rename) and hold what HF's ``resume_from_checkpoint`` reads:
model or LoRA adapter, tokenizer, ``trainer_state.json``, optimizer,
scheduler and RNG states, plus ``workbench.json`` (stage, base model,
dataset snapshot). HF's own checkpoint folders are never written
(``save_strategy="no"``): they are not atomic.

A save waits for the step's log (the callback asks the trainer to log on
that step): the loss is checked first, so a diverged step is never saved.

Also here: the training arguments and precision every recipe shares, and
the run bookkeeping (resolved config, snapshot hash in ``env.json``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

from transformers import TrainerCallback

from ..errors import WorkbenchError
from ..jobs.rundir import atomic_write_json, atomic_write_text
from ..jobs.run import JobContext, StopRequested
from .config import (ConfigError, StageConfig, load_config, resolve_model_ref, resolve_workspace, to_dict,
                     validate_before_load)

#: Keys whose non-finite value means training diverged.
WATCHED = ("loss", "grad_norm")
MANIFEST = "workbench.json"


class TrainingDiverged(WorkbenchError):
    """The loss or gradient norm became NaN or infinite."""


def _numeric(logs: dict) -> dict[str, float]:
    return {str(k): float(v) for k, v in (logs or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


class JobCallback(TrainerCallback):
    """Streams a trainer's logs to the job and handles NaN, cancel and checkpoints (see module doc).

    Call :meth:`bind` with the trainer before training: saving needs it.
    ``manifest`` goes into every checkpoint's ``workbench.json``.
    """

    def __init__(self, ctx: JobContext, *, save_steps: int = 0, manifest: Optional[dict] = None):
        self.ctx = ctx
        self.save_steps = int(save_steps)
        self.manifest = dict(manifest or {})
        self.trainer: Any = None
        self.diverged: Optional[str] = None  # the warning text, once training diverged
        self.cancelled_at: Optional[int] = None
        self.last_saved: Optional[int] = None
        self._pending_save: Optional[int] = None

    def bind(self, trainer: Any) -> "JobCallback":
        self.trainer = trainer
        return self

    # -- trainer events ------------------------------------------------------------------
    def on_step_end(self, args, state, control, **kwargs):
        step = state.global_step
        if self.save_steps and step % self.save_steps == 0:
            self._pending_save = step
        if self.ctx.should_stop():
            self.cancelled_at = step
            self._pending_save = step
            control.should_training_stop = True
        if self._pending_save is not None:
            control.should_log = True  # save after this step's log: its loss is checked first
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        step = state.global_step
        values = _numeric(logs)
        if values:
            self.ctx.metric(step, values)
        bad = {k: values[k] for k in WATCHED if k in values and not math.isfinite(values[k])}
        if bad and self.diverged is None:
            what = ", ".join(f"{k} is {v}" for k, v in bad.items())
            self.diverged = (f"training diverged at step {step} ({what}); stopped without saving these "
                             "weights: lower the learning rate, or check the data")
            self.ctx.warn("nan_loss", self.diverged, step=step)
            control.should_training_stop = True
            self._pending_save = None
        if self._pending_save == step:
            self._save(step)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        # A save asked for at the last step whose log did not come (should not happen).
        if self._pending_save is not None and self.diverged is None:
            self._save(self._pending_save)

    # -- saving ----------------------------------------------------------------------------
    def _save(self, step: int) -> None:
        self._pending_save = None
        if self.last_saved == step:
            return
        with self.ctx.checkpoint(step) as folder:
            save_trainer_checkpoint(self.trainer, folder, {**self.manifest, "step": step, "final": False})
        self.last_saved = step

    def save_final(self, *, merge_lora: bool = False) -> Path:
        """Save the trained model as the run's last checkpoint (no optimizer state) and return it.

        With ``merge_lora`` a LoRA model is also merged into its base and
        saved whole under ``merged/`` (the adapter is saved first; merging
        changes the model in place, so call this last).
        """
        trainer = self.trainer
        step = trainer.state.global_step
        with self.ctx.checkpoint(step) as folder:
            manifest = {**self.manifest, "step": step, "final": True, "merged": None}
            if merge_lora and manifest.get("adapter"):
                manifest["merged"] = "merged"
            save_trainer_checkpoint(trainer, folder, manifest, with_optimizer=False)
            if manifest["merged"]:
                merged = trainer.model.merge_and_unload()
                merged.save_pretrained(folder / "merged", safe_serialization=True)
                trainer.processing_class.save_pretrained(folder / "merged")
        self.last_saved = step
        return self.ctx.run_dir.checkpoints / f"step-{step}"


def save_trainer_checkpoint(trainer: Any, folder: Path, manifest: dict, *, with_optimizer: bool = True) -> None:
    """Write what HF's ``train(resume_from_checkpoint=folder)`` reads into ``folder``.

    Uses HF Trainer's own save helpers (``_save_optimizer_and_scheduler``,
    ``_save_rng_state``): the file names and formats then match what its
    resume code loads.
    """
    folder = Path(folder)
    trainer.save_model(str(folder))  # weights or LoRA adapter, config, tokenizer
    if with_optimizer and trainer.optimizer is not None:
        trainer._save_optimizer_and_scheduler(str(folder))
        trainer._save_scaler(str(folder))
        trainer._save_rng_state(str(folder))
    trainer.state.save_to_json(str(folder / "trainer_state.json"))
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def run_trainer(trainer: Any, callback: JobCallback, ctx: JobContext) -> None:
    """Run ``trainer`` (resuming from ``ctx.resume_from``); raise :class:`StopRequested` after a
    cancel and :class:`TrainingDiverged` after a NaN/Inf, once the trainer has wound down."""
    ctx.raise_if_stopped()  # cancelled while the model loaded: nothing to save yet
    resume = str(ctx.resume_from) if ctx.resume_from is not None else None
    trainer.train(resume_from_checkpoint=resume)
    if callback.diverged is not None:
        raise TrainingDiverged(callback.diverged)
    if callback.cancelled_at is not None:
        raise StopRequested(f"cancelled at step {callback.cancelled_at} (checkpoint saved; resume continues "
                            "from there)")


# -- shared trainer settings --------------------------------------------------------------------
def pick_precision(device: str, *, lora: bool) -> dict[str, Any]:
    """Device and precision for a run: ``{"device", "dtype", "bf16", "fp16", "use_cpu"}``.

    CPU trains in fp32 (bf16 autocast is slower on most CPUs). A GPU with
    bf16 trains in bf16; an older GPU uses fp16 autocast, with fp32 weights
    when all of them train (fp16 weights cannot be updated by the scaler).
    """
    import torch

    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise ConfigError("training.device", "cuda was asked for, but torch sees no usable GPU")
    if device == "cpu" or not cuda:
        return {"device": "cpu", "dtype": "fp32", "bf16": False, "fp16": False, "use_cpu": True}
    if torch.cuda.is_bf16_supported():
        return {"device": "cuda", "dtype": "bf16", "bf16": True, "fp16": False, "use_cpu": False}
    return {"device": "cuda", "dtype": "fp16" if lora else "fp32", "bf16": False, "fp16": True, "use_cpu": False}


def trainer_args(cfg: StageConfig, ctx: JobContext, precision: dict) -> dict[str, Any]:
    """Keyword arguments every TRL config of ours gets (SFT, Reward, DPO)."""
    t = cfg.training
    return dict(
        output_dir=str(ctx.run_dir.path / "trainer"),  # scratch: HF saves nothing there (save_strategy no)
        learning_rate=t.learning_rate,
        num_train_epochs=t.num_epochs,
        max_steps=t.max_steps if t.max_steps > 0 else -1,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        max_length=t.max_length,
        seed=t.seed,
        logging_strategy="steps",
        logging_steps=t.logging_steps,
        logging_first_step=True,
        logging_nan_inf_filter=False,  # we watch for NaN ourselves; HF would hide it
        save_strategy="no",  # checkpoints go through ctx.checkpoint (atomic)
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
        warmup_steps=t.warmup_ratio,  # a float below 1 is a ratio of the total steps
        lr_scheduler_type=t.lr_scheduler,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        use_cpu=precision["use_cpu"],
        bf16=precision["bf16"],
        fp16=precision["fp16"],
        activation_checkpointing=cfg.model.gradient_checkpointing,
    )


def manifest(cfg: StageConfig, data: Any, ref: Any) -> dict[str, Any]:
    """What every checkpoint of the run says about itself in ``workbench.json``."""
    return {"stage": cfg.stage, "base_model": ref.to_dict(), "adapter": cfg.model.lora,
            "quantization": cfg.model.quantization, "dataset": data.dataset, "snapshot": data.snapshot,
            "conversational": bool(data.conversational)}  # PPO's 'auto' prompt/reward format reads it


# -- the opening every TRL recipe shares -------------------------------------------------------
def open_stage(ctx: JobContext, stage: str):
    """Config, workspace and data of a run, checked before any model loads.

    Returns ``(cfg, workspace_root, data)``: the config is validated against
    the workspace (warnings become ``warning`` events), the dataset snapshot
    is prepared and pinned in the run (:func:`record_data`).
    """
    from .data import prepare

    cfg = load_config({**ctx.config, "stage": stage})
    ctx.keep_checkpoints = cfg.training.keep_checkpoints
    root = resolve_workspace(cfg, ctx.run_dir)
    for warning in validate_before_load(cfg, root):
        ctx.warn("config", warning)
    data = prepare(root, cfg, note=f"run {ctx.run_dir.run_id}")
    record_data(ctx, cfg, data)
    ctx.raise_if_stopped()
    return cfg, root, data


def model_setup(ctx: JobContext, cfg: StageConfig, root: Path, *, what: str = "", extra: str = ""):
    """Seed, resolve the model and its precision, and log what is about to load: ``(ref, precision)``."""
    from transformers import set_seed

    set_seed(cfg.training.seed)  # LoRA and score-head init happen before the trainer seeds
    ref = resolve_model_ref(cfg, root)
    precision = pick_precision(cfg.training.device, lora=cfg.model.lora)
    ctx.log(f"loading {ref}{what} on {precision['device']} ({precision['dtype']}"
            f"{', ' + cfg.model.quantization if cfg.model.quantization else ''}"
            f"{', LoRA r=%d' % cfg.model.lora_r if cfg.model.lora else ', all weights'}){extra}")
    return ref, precision


def maybe_lora(model: Any, cfg: StageConfig) -> Any:
    """``model`` with the config's LoRA adapter, or unchanged when LoRA is off."""
    if not cfg.model.lora:
        return model
    from ..models.loading import apply_lora

    return apply_lora(model, r=cfg.model.lora_r, alpha=cfg.model.lora_alpha, dropout=cfg.model.lora_dropout,
                      target_modules=cfg.model.target_modules())


# -- run bookkeeping ---------------------------------------------------------------------------
def record_data(ctx: JobContext, cfg: StageConfig, data: Any) -> None:
    """Pin the snapshot: log it, write it into ``config.yaml`` (a resume reads the same
    records) and into ``env.json``."""
    import yaml

    ctx.log(f"training on {data.describe()}")
    cfg.data.snapshot = data.snapshot
    atomic_write_text(ctx.run_dir.config, yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True))
    try:
        env = json.loads(ctx.run_dir.env.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        env = {}
    env["dataset"] = {"name": data.dataset, "snapshot": data.snapshot, "kind": data.kind,
                      "train_rows": len(data.train),
                      "validation_rows": len(data.validation) if data.validation is not None else 0}
    atomic_write_json(ctx.run_dir.env, env)
