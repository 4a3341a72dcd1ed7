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

from .callbacks import (JobCallback, manifest, pick_precision, record_data, run_trainer,
                        trainer_args)
from .config import DPOConfig, load_config, resolve_model_ref, resolve_workspace, validate_before_load
from .data import prepare


def run(ctx) -> None:
    cfg: DPOConfig = load_config({**ctx.config, "stage": "dpo"})
    root = resolve_workspace(cfg, ctx.run_dir)
    for warning in validate_before_load(cfg, root):
        ctx.warn("config", warning)
    data = prepare(root, cfg, note=f"run {ctx.run_dir.run_id}")
    record_data(ctx, cfg, data)
    ctx.raise_if_stopped()

    from transformers import set_seed
    from trl import DPOConfig as TRLDPOConfig, DPOTrainer

    from ..models.loading import apply_lora, load_causal_lm, load_tokenizer

    set_seed(cfg.training.seed)  # LoRA and score-head init happen before the trainer seeds
    ref = resolve_model_ref(cfg, root)
    precision = pick_precision(cfg.training.device, lora=cfg.model.lora)
    ctx.log(f"loading {ref} on {precision['device']} ({precision['dtype']}"
            f"{', ' + cfg.model.quantization if cfg.model.quantization else ''}"
            f"{', LoRA r=%d' % cfg.model.lora_r if cfg.model.lora else ', all weights'}), beta={cfg.beta}")
    tokenizer = load_tokenizer(ref, require_chat_template=data.conversational)
    load = dict(quantization=cfg.model.quantization, device=precision["device"], dtype=precision["dtype"])
    model = load_causal_lm(ref, **load)
    ref_model = None
    if cfg.model.lora:
        model = apply_lora(model, r=cfg.model.lora_r, alpha=cfg.model.lora_alpha, dropout=cfg.model.lora_dropout,
                           target_modules=cfg.model.target_modules())
    else:
        ref_model = load_causal_lm(ref, **load).eval()

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
