"""DPO recipe: direct preference optimization of a policy with TRL's ``DPOTrainer``.

``run(ctx)`` top to bottom, like the SFT recipe. The reference policy is the
starting model: with LoRA it is the same base with the adapter disabled (no
second copy in memory); when all weights train, a second, frozen copy is
loaded. Metrics are TRL's (``loss``, ``rewards/chosen``,
``rewards/rejected``, ``rewards/accuracies``, ``rewards/margins``,
``logps/chosen``, ...); the held-out pairs are evaluated at the end
(``eval_*``).
"""

from __future__ import annotations

from .callbacks import JobCallback, manifest, maybe_lora, model_setup, open_stage, run_trainer, trainer_args


def run(ctx) -> None:
    cfg, root, data = open_stage(ctx, "dpo")

    from trl import DPOConfig as TRLDPOConfig, DPOTrainer

    from ..models.loading import load_causal_lm, load_tokenizer

    ref, precision = model_setup(ctx, cfg, root, extra=f", beta={cfg.beta}")
    tokenizer = load_tokenizer(ref, require_chat_template=data.conversational)
    load = dict(quantization=cfg.model.quantization, device=precision["device"], dtype=precision["dtype"])
    model = load_causal_lm(ref, **load)
    # With LoRA the reference is the same base with the adapter off (ref_model None);
    # a full fine-tune needs a frozen second copy.
    ref_model = None if cfg.model.lora else load_causal_lm(ref, **load).eval()
    model = maybe_lora(model, cfg)

    args = TRLDPOConfig(**trainer_args(cfg, ctx, precision), beta=cfg.beta, loss_type=[cfg.loss_type])
    callback = JobCallback(ctx, save_steps=cfg.training.save_steps, manifest=manifest(cfg, data, ref))
    trainer = DPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=data.train,
                         eval_dataset=data.validation, processing_class=tokenizer, callbacks=[callback])
    callback.bind(trainer)
    run_trainer(trainer, callback, ctx)

    if data.validation is not None:
        trainer.evaluate()  # eval_loss, eval_rewards/accuracies, ... through the callback
    path = callback.save_final(merge_lora=cfg.model.save_merged)
    ctx.log(f"saved the final {'adapter' if cfg.model.lora else 'model'} in {path.name}")
