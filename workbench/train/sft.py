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

from .callbacks import JobCallback, manifest, maybe_lora, model_setup, open_stage, run_trainer, trainer_args


def run(ctx) -> None:
    cfg, root, data = open_stage(ctx, "sft")

    # trl only now: a bad config fails above without paying for its import (seconds).
    from trl import SFTConfig as TRLSFTConfig, SFTTrainer

    from ..models.loading import load_causal_lm, load_tokenizer

    ref, precision = model_setup(ctx, cfg, root)
    tokenizer = load_tokenizer(ref, require_chat_template=data.conversational)
    model = load_causal_lm(ref, quantization=cfg.model.quantization, device=precision["device"],
                           dtype=precision["dtype"])
    model = maybe_lora(model, cfg)

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
