"""Reward model recipe: a scalar head trained on preference pairs with TRL's ``RewardTrainer``.

``run(ctx)`` top to bottom, like the SFT recipe: checks, snapshot, tokenizer
and ``AutoModelForSequenceClassification`` (a causal-LM checkpoint gets a
fresh score head; with LoRA the head trains in full), training through
:class:`~workbench.train.callbacks.JobCallback`, final checkpoint.

Every ``eval_steps`` steps and at the end, :class:`HeldOutEval` scores the
validation pairs and reports:

- ``eval/accuracy``: fraction of pairs where chosen outscores rejected;
- ``eval/margin``: mean of reward(chosen) - reward(rejected);
- ``eval/reward_mean``, ``eval/reward_std``: over all scored responses;
- ``eval/length_corr``: Pearson correlation of reward with response length
  in tokens, over all responses. Near 0 is healthy; a large positive value
  means the model mostly rewards length (then PPO learns to ramble).
  Response length is counted after the tokens the chosen and rejected
  sequences share, i.e. the prompt (plus any opening words both responses
  have in common);
- ``eval/loss``: the pairwise loss on the held-out pairs.
"""

from __future__ import annotations

import math
from typing import Optional

from transformers import TrainerCallback

from .callbacks import JobCallback, manifest, maybe_lora, model_setup, open_stage, run_trainer, trainer_args


def run(ctx) -> None:
    cfg, root, data = open_stage(ctx, "reward")

    import torch
    from trl import RewardConfig as TRLRewardConfig, RewardTrainer

    from ..models.loading import load_reward_model, load_tokenizer

    ref, precision = model_setup(ctx, cfg, root, what=" as a reward model")
    tokenizer = load_tokenizer(ref, require_chat_template=data.conversational)
    model = load_reward_model(ref, quantization=cfg.model.quantization, device=precision["device"],
                              dtype=precision["dtype"], pad_token_id=tokenizer.pad_token_id)
    model = maybe_lora(model, cfg)

    args = TRLRewardConfig(**trainer_args(cfg, ctx, precision),
                           center_rewards_coefficient=cfg.center_rewards_coefficient or None)
    callback = JobCallback(ctx, save_steps=cfg.training.save_steps, manifest=manifest(cfg, data, ref))
    evaluator = HeldOutEval(ctx, cfg.eval_steps)
    # The validation pairs go in as eval_dataset so TRL tokenizes them exactly like the
    # training pairs; HF's own evaluation stays off (eval_strategy "no"), HeldOutEval runs it.
    trainer = RewardTrainer(model=model, args=args, train_dataset=data.train, eval_dataset=data.validation,
                            processing_class=tokenizer, callbacks=[callback, evaluator])
    if not (precision["bf16"] or precision["fp16"]):
        # TRL casts a quantized model's trainable parameters to bf16 (the QLoRA recipe); without
        # bf16 autocast (the CPU) the score head then fails on fp32 activations. Keep them fp32.
        for param in model.parameters():
            if param.requires_grad and param.dtype != torch.float32:
                param.data = param.data.float()
    callback.bind(trainer)
    evaluator.bind(trainer)
    run_trainer(trainer, callback, ctx)

    evaluator.evaluate(trainer.state.global_step)  # once more at the end (skipped if just done)
    path = callback.save_final(merge_lora=cfg.model.save_merged)
    ctx.log(f"saved the final reward {'adapter' if cfg.model.lora else 'model'} in {path.name}")


class HeldOutEval(TrainerCallback):
    """Scores the trainer's eval pairs every ``every`` steps and reports ``eval/*`` metrics."""

    def __init__(self, ctx, every: int):
        self.ctx = ctx
        self.every = int(every)
        self.trainer = None
        self.last_step: Optional[int] = None

    def bind(self, trainer) -> "HeldOutEval":
        self.trainer = trainer
        return self

    def on_step_end(self, args, state, control, **kwargs):
        if self.every and state.global_step % self.every == 0:
            self.evaluate(state.global_step)

    def evaluate(self, step: int) -> Optional[dict]:
        if self.trainer.eval_dataset is None or self.last_step == step:
            return None
        values = reward_eval(self.trainer.model, self.trainer.eval_dataset, self.trainer.data_collator,
                             batch_size=self.trainer.args.per_device_eval_batch_size)
        self.last_step = step
        if values:
            self.ctx.metric(step, values)
        return values


def reward_eval(model, dataset, collator, *, batch_size: int = 8) -> dict:
    """``eval/*`` metrics of ``model`` on tokenized pairs (``chosen_ids``, ``rejected_ids``)."""
    import torch

    chosen, rejected, lengths = [], [], []
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for start in range(0, len(dataset), batch_size):
                rows = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
                batch = collator([{"chosen_ids": r["chosen_ids"], "rejected_ids": r["rejected_ids"]}
                                  for r in rows])
                out = model(input_ids=batch["input_ids"].to(device),
                            attention_mask=batch["attention_mask"].to(device), use_cache=False)
                c, r = torch.chunk(out.logits.squeeze(-1).float().cpu(), 2)
                chosen += c.tolist()
                rejected += r.tolist()
                for row in rows:
                    shared = _shared_prefix(row["chosen_ids"], row["rejected_ids"])
                    lengths.append((len(row["chosen_ids"]) - shared, len(row["rejected_ids"]) - shared))
    finally:
        model.train(was_training)
    if not chosen:
        return {}
    c, r = torch.tensor(chosen), torch.tensor(rejected)
    margin = c - r
    rewards = torch.cat([c, r])
    lens = torch.tensor([a for a, _ in lengths] + [b for _, b in lengths], dtype=torch.float32)
    values = {
        "eval/accuracy": (margin > 0).float().mean().item(),
        "eval/margin": margin.mean().item(),
        "eval/reward_mean": rewards.mean().item(),
        "eval/reward_std": rewards.std(unbiased=False).item(),
        "eval/loss": -torch.nn.functional.logsigmoid(margin).mean().item(),
    }
    corr = pearson(rewards.tolist(), lens.tolist())
    if corr is not None:  # undefined when every response has the same length (or reward)
        values["eval/length_corr"] = corr
    return values


def _shared_prefix(a, b) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def pearson(xs, ys) -> Optional[float]:
    """Pearson correlation of two equal-length sequences; ``None`` when either is constant."""
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx <= 0 or syy <= 0:
        return None
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))
