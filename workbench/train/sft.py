"""SFT recipe: supervised fine-tuning on demonstrations with TRL's ``SFTTrainer``.

``run(ctx)`` top to bottom: check the config against the workspace before
anything loads; freeze the dataset and pin the snapshot in the run; load the
tokenizer and the model (4/8-bit and LoRA per config); train with metrics,
NaN stop, cancel and checkpoints handled by
:class:`~workbench.train.callbacks.JobCallback`; report the held-out loss;
save the final model (or adapter) as the last checkpoint.

Chat data learns the assistant turns only (``assistant_only_loss``) when the
chat template can mark them: TRL patches the templates of the models it
knows; with any other template the run warns and learns whole
conversations. Prompt/completion data learns the completions only.
"""

from __future__ import annotations

from .callbacks import (JobCallback, manifest, pick_precision, record_data, run_trainer,
                        trainer_args)
from .config import SFTConfig, load_config, resolve_model_ref, resolve_workspace, validate_before_load
from .data import prepare


def run(ctx) -> None:
    cfg: SFTConfig = load_config({**ctx.config, "stage": "sft"})
    root = resolve_workspace(cfg, ctx.run_dir)
    for warning in validate_before_load(cfg, root):
        ctx.warn("config", warning)
    data = prepare(root, cfg, note=f"run {ctx.run_dir.run_id}")
    record_data(ctx, cfg, data)
    ctx.raise_if_stopped()

    # trl only now: a bad config fails above without paying for its import (seconds).
    from transformers import set_seed
    from trl import SFTConfig as TRLSFTConfig, SFTTrainer

    from ..models.loading import apply_lora, load_causal_lm, load_tokenizer

    set_seed(cfg.training.seed)  # LoRA and score-head init happen before the trainer seeds
    ref = resolve_model_ref(cfg, root)
    precision = pick_precision(cfg.training.device, lora=cfg.model.lora)
    ctx.log(f"loading {ref} on {precision['device']} ({precision['dtype']}"
            f"{', ' + cfg.model.quantization if cfg.model.quantization else ''}"
            f"{', LoRA r=%d' % cfg.model.lora_r if cfg.model.lora else ', all weights'})")
    tokenizer = load_tokenizer(ref, require_chat_template=data.conversational)
    model = load_causal_lm(ref, quantization=cfg.model.quantization, device=precision["device"],
                           dtype=precision["dtype"])
    if cfg.model.lora:
        model = apply_lora(model, r=cfg.model.lora_r, alpha=cfg.model.lora_alpha, dropout=cfg.model.lora_dropout,
                           target_modules=cfg.model.target_modules())

    messages = "messages" in data.train.column_names  # else prompt/completion (text or chat)
    assistant_only = messages and cfg.assistant_only_loss and _can_mask_assistant(ctx, tokenizer)
    args = TRLSFTConfig(**trainer_args(cfg, ctx, precision), packing=cfg.packing,
                        assistant_only_loss=assistant_only,
                        completion_only_loss=None if messages else cfg.completion_only_loss)
    callback = JobCallback(ctx, save_steps=cfg.training.save_steps, manifest=manifest(cfg, data, ref))
    trainer = SFTTrainer(model=model, args=args, train_dataset=data.train, eval_dataset=data.validation,
                         processing_class=tokenizer, callbacks=[callback])
    callback.bind(trainer)
    run_trainer(trainer, callback, ctx)

    if data.validation is not None:
        trainer.evaluate()  # logs eval_loss, eval_mean_token_accuracy through the callback
    path = callback.save_final(merge_lora=cfg.model.save_merged)
    ctx.log(f"saved the final {'adapter' if cfg.model.lora else 'model'} in {path.name}")


def _can_mask_assistant(ctx, tokenizer) -> bool:
    """Whether TRL can find the assistant tokens with this chat template (else warn)."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    if has_generation_markers(tokenizer.chat_template):
        return True
    try:
        get_training_chat_template(tokenizer)  # TRL's patched template for models it knows
        return True
    except ValueError:
        ctx.warn("assistant_only_loss", "the chat template does not mark assistant turns and TRL has no "
                 "training version of it: learning whole conversations (user turns too)")
        return False
