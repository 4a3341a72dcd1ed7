"""The workbench's PPO engine for causal LMs, and the ``ppo`` job recipe.

TRL removed its ``PPOTrainer`` (DESIGN.md section 5), so the workbench owns
this compact one. It reads top to bottom:

1. :class:`PPOConfig`: every knob, with a help text per field (defined in
   :mod:`workbench.train.ppo_config`, which imports no torch; re-exported here).
2. Prompts: a workspace dataset's snapshot, a list, or a JSONL file of
   ``{"prompt": ...}``, and a seeded cursor over them (:class:`PromptSampler`).
3. :class:`PPOTrainer`: the models and one PPO step.

   - **Policy**: the base causal LM (optionally 4/8-bit) with a fresh LoRA
     adapter. **Reference**: the same base with the adapter disabled, so
     only one copy of the weights is in memory; LoRA's B matrices start at
     zero, so the first step's KL is exactly 0. **Critic**: a linear value
     head on the policy's last hidden state (shared body, zero-initialized),
     or (``value_model: reward_model``) a separate copy of the reward model
     with its own LoRA adapter (:class:`RewardModelCritic`).
     **Reward model**: the previous stage's sequence classifier, frozen; it
     scores prompt + response in the format it was trained on (chat template
     or plain text; a finished response with its EOS, a truncated one cut
     off), re-tokenized with its own tokenizer.
   - **Sampling** uses a clean generation config (nothing from the model
     folder's ``generation_config.json``), checked against the recomputed
     log-probs on the first batch.
   - **Rollout**: left-padded prompts, sampled with the KV cache; log-probs,
     reference log-probs and values from full forward passes with
     ``position_ids = cumsum(attention_mask) - 1`` (so they match what
     ``generate`` sampled) and ``logits / temperature``; the response mask
     keeps the first EOS and drops everything after it.
   - **Advantages**: optional missing-EOS penalty on the scores, per-token
     KL penalty (fixed or adaptive coefficient), optional reward whitening,
     GAE, whitened advantages.
   - **Optimization**: ``ppo_epochs`` passes over shuffled minibatches with
     the clipped policy loss plus ``vf_coef`` times the clipped value loss,
     gradient clipping, AdamW, a linear or constant schedule (one scheduler
     step per PPO step, as TRL).
   - **Checkpoints**: LoRA adapter (peft format), value head, optimizer,
     scheduler, KL controller, prompt cursor and every RNG state (python,
     numpy, torch), so a resumed run continues exactly where it stopped.

4. :func:`run`: the job recipe (``stage: ppo``), which reports TRL-named
   metrics, samples, warnings and checkpoints through the
   :class:`~workbench.jobs.run.JobContext` and stops at a step boundary on
   cancel (saving a checkpoint first). With ``eval_every`` it also answers the
   held-out eval prompts at ``eval_temperature`` (:meth:`PPOTrainer.run_eval`,
   in a forked RNG so training is unchanged) and reports them as ``eval``
   samples with ``eval/score``.

All tensor math lives in :mod:`workbench.train.ppo_math`; this module only
wires it to models. Conventions follow Huang et al., "The N Implementation
Details of RLHF with PPO" and "The N+ Implementation Details of RLHF with
PPO: TL;DR", and TRL 1.12's ``PPOTrainer`` for metric names.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch  # at the top: the runner imports the recipe before writing env.json
from torch import nn

from ..errors import DataError, WorkbenchError
from ..models.generation import isolate_generation_defaults
from . import ppo_math as P
# The config lives in ppo_config (no torch there: the training panel builds its form from it).
from .ppo_config import (DTYPES, KL_ESTIMATORS, LR_SCHEDULERS, SECTIONS, ConfigError, PPOConfig,  # noqa: F401
                         Prompt, eval_due, last_user_turn, load_ppo_config, prompt_display, prompt_file,
                         prompt_value, read_prompt_dataset, resolve_format, resolve_ref, resolve_workspace,
                         validate_ppo_before_load)

#: Reward function for programmatic use (tests, rule-based rewards):
#: ``reward_fn(prompts, responses) -> one float per response``. With one, no
#: reward model is loaded.
RewardFn = Callable[[Sequence[Prompt], Sequence[str]], Sequence[float]]

#: The metrics every PPO step reports, with what each means (TRL 1.12 names where
#: TRL has them; "per response" values are sums over its tokens, averaged over the batch).
METRICS: dict[str, str] = {
    "objective/kl": "KL(policy || reference) per response, in the configured kl_estimator",
    "objective/kl_k1": "KL(policy || reference) per response, k1 estimate (log-ratio; can dip below 0)",
    "objective/kl_k3": "KL(policy || reference) per response, k3 estimate (never negative)",
    "objective/entropy": "negative log-prob of the sampled response, per response (TRL's entropy)",
    "objective/non_score_reward": "the KL penalty per response: -kl_coef x KL (with kl_estimator)",
    "objective/rlhf_reward": "what PPO maximizes: score + non-score reward",
    "objective/scores": "the score PPO optimizes: reward-model score, normalized and clipped when "
                        "configured, after the missing-EOS penalty",
    "objective/scores_raw": "the reward model's own score, before normalization, clipping and penalty",
    "policy/approxkl_avg": "how far the updates moved the policy from the rollout policy",
    "policy/clipfrac_avg": "fraction of tokens where the policy ratio was clipped",
    "policy/entropy_avg": "entropy of the next-token distribution, per token",
    "loss/policy_avg": "clipped policy loss",
    "loss/value_avg": "clipped value loss",
    "val/clipfrac_avg": "fraction of tokens where the value prediction was clipped",
    "val/ratio": "mean ratio new / rollout policy probability",
    "val/ratio_var": "variance of the mean ratio across the step's micro-batches",
    "val/num_eos_tokens": "responses in the batch that ended with an EOS",
    "response/length_mean": "response length in tokens, EOS included",
    "response/truncated_frac": "fraction of responses cut off at max_new_tokens (no EOS)",
    "lr": "learning rate of this step",
    "kl_coef": "KL coefficient of this step",
    "episode": "episodes (responses) trained on so far",
    "time/step_s": "seconds for the step",
    "eps": "episodes (responses) per second",
}
METRIC_NAMES: tuple[str, ...] = tuple(METRICS)
#: What the steps that evaluate (``eval_every``, see :meth:`PPOTrainer.run_eval`) report besides.
EVAL_METRICS: dict[str, str] = {
    "eval/score": "mean score of the eval completions, shaped as objective/scores (normalized, clipped, "
                  "missing-EOS penalty)",
    "eval/score_raw": "mean reward-model score of the eval completions",
    "eval/length_mean": "eval completion length in tokens, EOS included",
}

ADAPTER_DIR = "adapter"
VALUE_HEAD_FILE = "value_head.safetensors"
CRITIC_DIR = "critic"  # value_model: reward_model (peft format: adapter and score head)
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
RNG_FILE = "rng_state.pt"
STATE_FILE = "trainer_state.json"


class PPOStepError(WorkbenchError):
    """A PPO step cannot go on; ``code`` says why (it becomes the job's warning code)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


class TrainingDiverged(PPOStepError):
    """A loss, score or gradient became NaN or infinite; ``code`` names which."""


# =========================================================================== 1. config: see ppo_config


# =========================================================================== 2. prompts


def load_prompts(spec: Union[Sequence[Prompt], str, Path]) -> list[Prompt]:
    """The prompts: ``spec`` itself when it is a list, else read from a JSONL file.

    A prompt is a non-empty string or a conversation (a list of ``{"role", "content"}``
    messages with a user turn; trailing assistant turns are dropped, everything before is
    kept). Each non-blank line of the file is an object with such a ``prompt``; anything else
    is a :class:`~workbench.errors.DataError` naming the line.
    """
    what = "a non-empty string or a conversation of {role, content} messages with a user turn"
    if isinstance(spec, (list, tuple)):
        prompts = []
        for i, p in enumerate(spec):
            value = prompt_value(p)
            if value is None:
                raise DataError(f"expected {what}, got {p!r:.80}", file="prompts", line=i + 1, field="prompt",
                                unit="row")
            prompts.append(value)
        return prompts
    path = Path(spec).expanduser()
    if not path.is_file():
        raise DataError("prompt file not found", file=str(path))
    prompts = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"not valid JSON: {e.msg}", file=str(path), line=lineno) from None
            value = prompt_value(row.get("prompt")) if isinstance(row, dict) else None
            if value is None:
                raise DataError(f"expected an object with {what}", file=str(path), line=lineno, field="prompt")
            prompts.append(value)
    if not prompts:
        raise DataError("no prompts in the file", file=str(path))
    return prompts


class PromptSampler:
    """Batches of prompts in a seeded shuffled order, epoch after epoch.

    The order of epoch ``e`` depends only on ``(seed, e)``, so the cursor
    ``(epoch, pos)`` is the whole state a checkpoint needs.
    """

    def __init__(self, prompts: Sequence[str], seed: int):
        if not prompts:
            raise DataError("no prompts to train on", file="prompts")
        self.prompts = list(prompts)
        self.seed = int(seed)
        self.epoch, self.pos = 0, 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.prompts))

    def next_batch(self, n: int) -> list[str]:
        out = []
        while len(out) < n:
            if self.pos >= len(self.prompts):
                self.epoch, self.pos = self.epoch + 1, 0
                self._order = self._permutation(self.epoch)
            out.append(self.prompts[int(self._order[self.pos])])
            self.pos += 1
        return out

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos, "num_prompts": len(self.prompts)}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._order = self._permutation(self.epoch)


# =========================================================================== 3. the trainer


class ValueHead(nn.Module):
    """``V(s_t)``: one linear layer on the policy's last hidden state (float32).

    Zero-initialized, so the first values are 0 and the first value-loss
    gradients do not push random directions into the shared body.
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.summary = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.summary.weight)
        nn.init.zeros_(self.summary.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.summary(hidden.float()).squeeze(-1)


class RewardModelCritic(nn.Module):
    """``V(s_t)`` from a separate critic: the reward model's body and score head, with its own
    LoRA adapter (the score head trains in full), applied at every position instead of only
    the last. Initialized from the reward model, its value of a state is at first the score
    the reward model gives the text so far (the N+ details' warm start)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model  # a peft model over an AutoModelForSequenceClassification

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                context_length: int) -> torch.Tensor:
        seq_cls = self.model.get_base_model()
        backbone = getattr(seq_cls, seq_cls.base_model_prefix)
        hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                          use_cache=False).last_hidden_state
        return seq_cls.score(hidden[:, context_length - 1:-1]).float().squeeze(-1)


class AdapterOff:
    """A peft model called with its adapter switched off, the trained score head included (peft
    keeps the original of a module it trains in full): the model the adapter was put on. With
    ``value_model: reward_model`` the critic is the reward model plus an adapter, so this scores
    with the critic's weights and the reward model is in memory once."""

    def __init__(self, model: nn.Module):
        self.model = model

    @property
    def device(self) -> torch.device:
        return self.model.device

    def __call__(self, **inputs):
        with self.model.disable_adapter():
            return self.model(**inputs)


@dataclass
class Rollout:
    """One batch of episodes. Per-token tensors are ``(B, T)`` over the response."""

    prompts: list[Prompt]           # strings, or conversations ending with the turn to answer
    responses: list[str]            # decoded response text, EOS and after removed
    query_ids: torch.Tensor         # (B, P) left-padded prompt ids
    query_mask: torch.Tensor        # (B, P)
    response_ids: torch.Tensor      # (B, T) generated ids (after the first EOS: padding/junk)
    mask: torch.Tensor              # (B, T) bool, up to and including the first EOS
    logprobs: torch.Tensor          # (B, T) policy, at the sampling temperature
    ref_logprobs: torch.Tensor      # (B, T) reference (adapter disabled)
    values: torch.Tensor            # (B, T)
    entropy: torch.Tensor           # (B, T) per-token policy entropy
    scores: torch.Tensor            # (B,) what PPO optimizes: normalized, clipped, missing-EOS penalty
    contains_eos: torch.Tensor      # (B,) bool
    raw_scores: Optional[torch.Tensor] = None  # (B,) the reward model's own scores

    @property
    def input_ids(self) -> torch.Tensor:
        return torch.cat([self.query_ids, self.response_ids], dim=1)

    @property
    def attention_mask(self) -> torch.Tensor:
        return torch.cat([self.query_mask, self.mask.to(self.query_mask.dtype)], dim=1)


def _disable_dropout(model: nn.Module) -> None:
    """Dropout off in the base model (N-details); LoRA's own dropout stays as configured."""
    for name, module in model.named_modules():
        if "lora_dropout" in name:
            continue
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = 0.0


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


class PPOTrainer:
    """The models, the optimizer and one PPO step; see the module docstring.

    Args:
        config: a validated :class:`PPOConfig`.
        reward_fn: score responses with this function instead of a reward model.
        log: where progress lines go (``JobContext.log`` in a job).
    """

    def __init__(self, config: PPOConfig, *, reward_fn: Optional[RewardFn] = None,
                 log: Callable[[str], None] = lambda message: None,
                 workspace: Optional[Union[str, Path]] = None):
        from ..models.loading import (apply_lora, count_parameters, load_causal_lm, load_reward_model,
                                      load_tokenizer, pick_device)

        self.config = cfg = config
        self.log = log
        self.workspace = workspace  # where 'auto' formats look up the models' training datasets
        self.reward_fn = reward_fn
        if reward_fn is None and not cfg.reward_model:
            raise ConfigError("reward_model", "give the reward model to score responses with")
        _seed_everything(cfg.seed)  # before apply_lora: LoRA's A matrices are random-init
        self.device = torch.device(pick_device(cfg.device))

        self.prompts = load_prompts(cfg.prompts)
        self.sampler = PromptSampler(self.prompts, cfg.seed)
        #: The held-out prompts :meth:`run_eval` answers (empty: no evaluation).
        self.eval_prompts = load_prompts(cfg.eval_prompts)[:cfg.eval_num] if cfg.eval_prompts else []

        # Policy (and, adapter disabled, the reference) with a value head.
        self.tokenizer = load_tokenizer(cfg.policy_model, padding_side="left")
        base = load_causal_lm(cfg.policy_model, quantization=cfg.quantization, device=str(self.device),
                              dtype=cfg.dtype, gradient_checkpointing=cfg.gradient_checkpointing)
        self.ref_model: Optional[nn.Module] = None  # with LoRA: the policy with its adapter disabled
        self.ref_adapter: Optional[str] = None  # policy_adapter: the frozen copy's adapter name
        if cfg.policy_adapter:
            self.model = self._load_policy_adapter(base)
        elif cfg.lora:
            self.model = apply_lora(base, r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout,
                                    target_modules=cfg.lora_target_modules,
                                    gradient_checkpointing=cfg.gradient_checkpointing)
        else:
            self.model = base.requires_grad_(True)
            self.ref_model = load_causal_lm(cfg.policy_model, device=str(self.device), dtype=cfg.dtype)
            self.ref_model.eval().requires_grad_(False)
            _disable_dropout(self.ref_model)
        _disable_dropout(self.model)
        hidden_size = base.config.get_text_config().hidden_size
        trainable, total = count_parameters(self.model)
        log(f"policy {cfg.policy_model}: {total:,} parameters, " + (
            f"{trainable:,} in the adapter {cfg.policy_adapter} (a frozen copy is the reference)"
            if cfg.policy_adapter else f"{trainable:,} in the LoRA adapter (r={cfg.lora_r})" if cfg.lora else
            "all trained (a frozen copy is the reference)"))
        self.value_head: Optional[ValueHead] = None
        self.critic: Optional[RewardModelCritic] = None
        if cfg.value_model == "shared":
            self.value_head = ValueHead(hidden_size).to(self.device)
            log(f"critic: a value head on the policy ({hidden_size + 1:,} parameters)")
        else:
            self.critic = self._load_critic()

        # Token ids that end a response: the tokenizer's EOS plus the model's stop tokens.
        eos = {self.tokenizer.eos_token_id}
        gen_eos = base.generation_config.eos_token_id
        eos.update(gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos])
        for text in cfg.stop_token_list:
            ids = self.tokenizer.encode(text, add_special_tokens=False)
            if len(ids) != 1:
                raise ConfigError("stop_tokens", f"{text!r} is {len(ids)} tokens for the tokenizer of "
                                                 f"{cfg.policy_model}; a stop token must be exactly one")
            eos.add(ids[0])
        self.eos_ids = sorted(i for i in eos if i is not None)
        if not self.eos_ids:
            raise ConfigError("policy_model", f"{cfg.policy_model} has no EOS token")
        self.pad_id = self.tokenizer.pad_token_id
        # Sampling must be exactly softmax(logits / temperature): drop the folder's generation defaults
        # (kept to save with a whole-model checkpoint: they belong to the model, not to PPO).
        self._folder_generation_config = copy.deepcopy(base.generation_config)
        shipped = isolate_generation_defaults(self.model, eos_token_id=self.eos_ids, pad_token_id=self.pad_id)
        if self.ref_model is not None:
            isolate_generation_defaults(self.ref_model, eos_token_id=self.eos_ids, pad_token_id=self.pad_id)
        if shipped:
            log(f"ignoring the sampling defaults of {cfg.policy_model}'s generation_config.json for PPO "
                f"rollouts: {', '.join(f'{k}={v!r}' for k, v in sorted(shipped.items()))}")
        self.sampling_checked = False
        self.prompt_chat = self._chat_format("prompt_format", cfg.policy_adapter or cfg.policy_model, self.tokenizer)

        # Reward model: frozen, scores the text it was trained on.
        self.reward_model = self.rm_tokenizer = None
        self.reward_chat = False
        if reward_fn is None:
            self.rm_tokenizer = load_tokenizer(cfg.reward_model, padding_side="right")
            if self.critic is not None and self.rm_tokenizer.pad_token_id == self.tokenizer.pad_token_id:
                # The critic was loaded from the reward model with this padding: its weights with the
                # adapter off are the reward model (no second copy in memory).
                self.reward_model = AdapterOff(self.critic.model)
                log(f"reward model {cfg.reward_model}: the critic's weights with its adapter off")
            else:
                self.reward_model = load_reward_model(cfg.reward_model, quantization=cfg.reward_quantization,
                                                      device=str(self.device), dtype=cfg.dtype,
                                                      pad_token_id=self.rm_tokenizer.pad_token_id)
                self.reward_model.eval().requires_grad_(False)
                log(f"reward model {cfg.reward_model}")
            self.reward_chat = self._chat_format("reward_format", cfg.reward_model, self.rm_tokenizer)

        # Optimizer over the adapter and the critic, in a fixed order (checkpoints rely on it).
        critic = self.value_head if self.value_head is not None else self.critic
        self.params = [p for p in self.model.parameters() if p.requires_grad] + \
            [p for p in critic.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, eps=1e-5, weight_decay=0.0)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: _lr_factor(cfg, step))
        self.kl_ctl: P.KLController = (
            P.AdaptiveKLController(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon) if cfg.adaptive_kl
            else P.FixedKLController(cfg.kl_coef))
        self.step = 0  # completed PPO steps
        self.forward_batch_size = cfg.forward_batch_size or cfg.mini_batch_size // cfg.gradient_accumulation_steps
        #: What the last :meth:`train_step` computed, for inspection (tests, debugging): its
        #: ``rewards``, ``advantages`` (whitened), ``returns``, and per optimizer update the
        #: minibatch's row ``indices`` with its ``pg_loss`` and ``vf_loss``.
        self.last_step: dict[str, Any] = {}
        self.score_norm: Optional[tuple[float, float]] = None  # (mean, std) once calibrated

    # ------------------------------------------------------------------ text

    def _load_critic(self) -> RewardModelCritic:
        """The separate critic of ``value_model: reward_model`` (see :class:`RewardModelCritic`)."""
        from ..models.loading import apply_lora, count_parameters, load_reward_model, load_tokenizer

        cfg = self.config
        if not cfg.reward_model:
            raise ConfigError("value_model", "'reward_model' needs the reward_model to initialize the critic from")
        tokenizer = load_tokenizer(cfg.reward_model)
        if tokenizer.get_vocab() != self.tokenizer.get_vocab():
            raise ConfigError("value_model", f"'reward_model': the critic reads the policy's tokens, but "
                              f"{cfg.reward_model} has a different tokenizer than {cfg.policy_model}; use "
                              "value_model 'shared'")
        base = load_reward_model(cfg.reward_model, quantization=cfg.reward_quantization, device=str(self.device),
                                 dtype=cfg.dtype, pad_token_id=self.tokenizer.pad_token_id)
        model = apply_lora(base, r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout,
                           target_modules=cfg.lora_target_modules, gradient_checkpointing=cfg.gradient_checkpointing)
        _disable_dropout(model)
        trainable, total = count_parameters(model)
        self.log(f"critic: initialized from {cfg.reward_model} ({total:,} parameters, {trainable:,} trained: "
                 "its LoRA adapter and score head)")
        return RewardModelCritic(model).to(self.device)

    @contextlib.contextmanager
    def reference(self):
        """The reference policy, for the duration of the block: the policy with its LoRA adapter
        disabled, or the frozen copy when all weights train (``lora: false``)."""
        if self.ref_model is not None:
            yield self.ref_model
        elif self.ref_adapter is not None:
            # set_adapter also moves requires_grad to the active adapter: always switch back.
            self.model.set_adapter(self.ref_adapter)
            try:
                yield self.model
            finally:
                self.model.set_adapter("default")
        else:
            with self.model.disable_adapter():
                yield self.model

    def _load_policy_adapter(self, base: nn.Module) -> nn.Module:
        """``base`` with ``policy_adapter`` loaded twice: ``default`` (trained) and ``reference`` (frozen)."""
        from peft import PeftModel

        from ..models.loading import _enable_checkpointing, is_quantized, keep_4bit_trainable_on_cpu

        cfg = self.config
        if is_quantized(base):
            from peft import prepare_model_for_kbit_training

            keep_4bit_trainable_on_cpu(base)
            base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
        if cfg.gradient_checkpointing:
            _enable_checkpointing(base)
        model = PeftModel.from_pretrained(base, cfg.policy_adapter, adapter_name="default", is_trainable=True)
        model.load_adapter(cfg.policy_adapter, adapter_name="reference", is_trainable=False)
        model.set_adapter("default")
        for name, module in model.named_modules():  # the SFT run's LoRA dropout would make the first ratio != 1
            if "lora_dropout" in name and isinstance(module, nn.Dropout):
                module.p = cfg.lora_dropout
        self.ref_adapter = "reference"
        return model

    def _train_mode(self, on: bool) -> None:
        for module in (self.model, self.critic):
            if module is not None:
                module.train(on)

    def _chat_format(self, name: str, ref: Optional[str], tokenizer: Any) -> bool:
        """Whether ``prompt_format`` / ``reward_format`` (``name``) means the chat template for
        model ``ref``: explicit, or the style of the data it was trained on (``_open_inputs``
        resolves ``auto`` with the workspace at hand), else whether its tokenizer has a template."""
        from ..models.loading import has_chat_template

        fmt, why = resolve_format(getattr(self.config, name), ref, self.workspace)
        if fmt is None:
            fmt = "chat" if has_chat_template(tokenizer) else "plain"
            why = f"{why}; its tokenizer {'has' if fmt == 'chat' else 'has no'} chat template"
        if fmt == "chat" and not has_chat_template(tokenizer):
            raise ConfigError(name, f"'chat', but the tokenizer of {ref} has no chat template")
        self.log(f"{name}: {fmt} ({why})")
        return fmt == "chat"

    @staticmethod
    def _conversation(prompt: Prompt) -> list:
        return list(prompt) if isinstance(prompt, list) else [{"role": "user", "content": prompt}]

    def _render_prompt(self, prompt: Prompt) -> str:
        if self.prompt_chat:
            return self.tokenizer.apply_chat_template(self._conversation(prompt), add_generation_prompt=True,
                                                      tokenize=False)
        return last_user_turn(prompt)  # plain text: the policy never saw roles

    def _encode_prompts(self, prompts: Sequence[Prompt]) -> tuple[torch.Tensor, torch.Tensor]:
        texts = [self._render_prompt(p) for p in prompts]
        enc = self.tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=not self.prompt_chat)
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    def decode_responses(self, response_ids: torch.Tensor, mask: torch.Tensor) -> list[str]:
        """Response texts: the masked tokens without the EOS (and without special tokens)."""
        eos = set(self.eos_ids)
        out = []
        for ids, m in zip(response_ids.tolist(), mask.tolist()):
            kept = [t for t, keep in zip(ids, m) if keep and t not in eos]
            out.append(self.tokenizer.decode(kept, skip_special_tokens=True))
        return out

    def reward_text(self, prompt: Prompt, response: str, finished: bool = True) -> str:
        """What the reward model reads, in the format it was trained on (``reward_format``): the
        conversation through its chat template, or prompt + response. A finished response ends
        with the EOS / end of turn; a truncated one (``finished`` False) reaches the reward model
        as it is, cut off, so it is not scored like a finished answer."""
        tok = self.rm_tokenizer
        if self.reward_chat:
            messages = self._conversation(prompt) + [{"role": "assistant", "content": response}]
            return tok.apply_chat_template(messages, tokenize=False, continue_final_message=not finished)
        return last_user_turn(prompt) + response + ((tok.eos_token or "") if finished else "")

    # ------------------------------------------------------------------ model passes

    @torch.no_grad()
    def generate(self, query_ids: torch.Tensor, query_mask: torch.Tensor, *, with_scores: bool = False,
                 model: Optional[nn.Module] = None, temperature: Optional[float] = None
                 ) -> Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Sampled response ids ``(B, T)``, ``T <= max_new_tokens`` (KV cache, left padding).

        The generation config is clean (:func:`~workbench.models.generation.clean_generation_config`):
        only the special tokens, temperature and the length, so nothing a model folder's
        ``generation_config.json`` sets can change what is sampled. ``with_scores`` also returns
        the log-probs ``(B, T)`` of the sampled tokens under the distribution ``generate`` really
        sampled from (its processed scores), for :meth:`check_sampling`. ``model``: sample from
        this one instead of the policy (the reference, see :meth:`reference`). ``temperature``:
        instead of the rollouts' (the eval's); 0 is greedy decoding.
        """
        from ..models.generation import clean_generation_config

        cfg = self.config
        temperature = cfg.temperature if temperature is None else temperature
        knobs = dict(do_sample=True, temperature=temperature) if temperature > 0 else dict(do_sample=False)
        gen = clean_generation_config(
            eos_token_id=self.eos_ids, pad_token_id=self.pad_id, bos_token_id=self.tokenizer.bos_token_id,
            **knobs, max_new_tokens=cfg.max_new_tokens, use_cache=True,
            output_scores=with_scores, return_dict_in_generate=with_scores)
        model = self.model if model is None else model
        model.eval()
        out = model.generate(input_ids=query_ids, attention_mask=query_mask, generation_config=gen)
        if not with_scores:
            return out[:, query_ids.shape[1]:]
        response_ids = out.sequences[:, query_ids.shape[1]:]
        scores = torch.stack(out.scores, dim=1).float()  # (B, T, V), after every logits processor
        sampled = torch.gather(torch.log_softmax(scores, -1), -1, response_ids.unsqueeze(-1)).squeeze(-1)
        return response_ids, sampled

    def check_sampling(self, rollout: Rollout, sampled_logprobs: torch.Tensor) -> float:
        """Fail loudly unless the rollout's recomputed log-probs are those ``generate`` sampled
        from; returns the mean absolute difference (nats per token).

        Any logits processor that sneaks into sampling (a model's generation defaults, a
        transformers change) makes the two differ, and with them the KL penalty and the policy
        ratio; run once, on the first batch. Tolerances allow half-precision rounding (cached
        vs full forward) but not a processor, which moves log-probs by nats.
        """
        mask = rollout.mask
        diff = (rollout.logprobs - sampled_logprobs).abs()
        diff = torch.where(mask, torch.nan_to_num(diff, nan=math.inf), torch.zeros_like(diff))
        n = int(mask.sum())
        mean = float(diff.sum() / max(n, 1))
        worst = float(diff.max()) if n else 0.0
        half = next(self.model.parameters()).dtype in (torch.float16, torch.bfloat16)
        mean_tol, max_tol = (0.1, 2.0) if half else (1e-3, 5e-2)
        if not (mean <= mean_tol and worst <= max_tol):
            raise PPOStepError(
                "sampling_mismatch",
                f"the log-probs PPO computes differ from the distribution generate sampled from by "
                f"{mean:.3g} nats per token on average ({worst:.3g} at worst; allowed {mean_tol:g} / "
                f"{max_tol:g}): something changes sampling behind PPO's back (a logits processor, "
                f"sampling settings, padding or position ids), so its KL and ratio would be wrong")
        return mean

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, context_length: int, *,
                reference: bool = False) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Logits predicting each response token (the model's dtype, no temperature yet: see
        :meth:`token_logprobs`), and the values.

        Returns ``(logits (B, T, V), values (B, T) or None for the reference)``.
        Position ids are ``cumsum(mask) - 1``: with left padding a plain
        forward would number positions through the padding, unlike ``generate``.
        """
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
        response_length = input_ids.shape[1] - context_length
        kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                      use_cache=False, logits_to_keep=response_length + 1)
        if reference:
            with self.reference() as ref:
                out = ref(**kwargs)
            values = None
        elif self.critic is not None:
            out = self.model(**kwargs)
            values = self.critic(input_ids, attention_mask, position_ids, context_length)
        else:
            out = self.model(**kwargs, output_hidden_states=True)
            hidden = out.hidden_states[-1][:, context_length - 1:-1]
            values = self.value_head(hidden)
        return out.logits[:, :-1], values

    def token_logprobs(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Log-probs ``(B, T)`` of ``labels`` at the sampling temperature (float32 upcast first,
        in chunks of ``logit_chunk_size`` positions)."""
        cfg = self.config
        return P.logprobs_from_logits(logits, labels, cfg.temperature, cfg.logit_chunk_size or None)

    def token_entropy(self, logits: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        return P.entropy_from_logits(logits, cfg.temperature, cfg.logit_chunk_size or None)

    @torch.no_grad()
    def score(self, prompts: Sequence[Prompt], responses: Sequence[str],
              finished: Optional[Sequence[bool]] = None) -> torch.Tensor:
        """Reward-model scores ``(B,)`` float32 (or ``reward_fn``'s); ``finished`` says which
        responses ended with an EOS (default: all), see :meth:`reward_text`."""
        if self.reward_fn is not None:
            return torch.as_tensor([float(s) for s in self.reward_fn(prompts, responses)],
                                   dtype=torch.float32, device=self.device)
        finished = [True] * len(responses) if finished is None else [bool(f) for f in finished]
        texts = [self.reward_text(p, r, f) for p, r, f in zip(prompts, responses, finished)]
        use_template = self.reward_chat
        scores = []
        for start in range(0, len(texts), self.forward_batch_size):
            enc = self.rm_tokenizer(texts[start:start + self.forward_batch_size], padding=True,
                                    return_tensors="pt", add_special_tokens=not use_template)
            enc = {k: v.to(self.reward_model.device) for k, v in enc.items()}
            scores.append(self.reward_model(**enc).logits[:, 0].float())
        return torch.cat(scores).to(self.device)

    @torch.no_grad()
    def evaluate(self, prompts: Sequence[str], query_ids: torch.Tensor, query_mask: torch.Tensor,
                 response_ids: torch.Tensor) -> Rollout:
        """Everything PPO needs about given responses: masks, log-probs, values, scores."""
        cfg = self.config
        mask = P.response_mask(response_ids, self.eos_ids, self.pad_id)
        rollout = Rollout(prompts=list(prompts), responses=self.decode_responses(response_ids, mask),
                          query_ids=query_ids, query_mask=query_mask, response_ids=response_ids, mask=mask,
                          logprobs=None, ref_logprobs=None, values=None, entropy=None, scores=None,
                          contains_eos=P.contains_eos(response_ids, self.eos_ids, self.pad_id))
        input_ids, attention_mask = rollout.input_ids, rollout.attention_mask
        context = query_ids.shape[1]
        logprobs, ref_logprobs, values, entropy = [], [], [], []
        self._train_mode(False)
        for start in range(0, len(prompts), self.forward_batch_size):
            rows = slice(start, start + self.forward_batch_size)
            logits, v = self.forward(input_ids[rows], attention_mask[rows], context)
            logprobs.append(self.token_logprobs(logits, response_ids[rows]))
            entropy.append(self.token_entropy(logits))
            values.append(v)
            del logits
            ref_logits, _ = self.forward(input_ids[rows], attention_mask[rows], context, reference=True)
            ref_logprobs.append(self.token_logprobs(ref_logits, response_ids[rows]))
            del ref_logits
        zeros = torch.zeros_like(torch.cat(logprobs))
        # Zero outside the mask, so nothing past the first EOS is ever stored.
        rollout.logprobs = torch.where(mask, torch.cat(logprobs), zeros)
        rollout.ref_logprobs = torch.where(mask, torch.cat(ref_logprobs), zeros)
        rollout.values = torch.where(mask, torch.cat(values), zeros)
        rollout.entropy = torch.where(mask, torch.cat(entropy), zeros)
        rollout.raw_scores = self.score(prompts, rollout.responses, rollout.contains_eos.tolist())
        rollout.scores = self.shape_scores(rollout.raw_scores, rollout.contains_eos)
        return rollout

    def shape_scores(self, raw: torch.Tensor, contains_eos: torch.Tensor) -> torch.Tensor:
        """The scores PPO optimizes: ``(raw - bias) / gain`` when normalized (:meth:`calibrate_scores`),
        clipped to ``score_clip``, then the missing-EOS penalty (in the normalized units)."""
        cfg = self.config
        scores = raw
        if self.score_norm is not None:
            mean, std = self.score_norm
            scores = (scores - mean) / std
        if cfg.score_clip is not None:
            scores = scores.clamp(-cfg.score_clip, cfg.score_clip)
        return P.eos_penalty(scores, contains_eos, cfg.missing_eos_penalty, cfg.missing_eos_mode)

    @torch.no_grad()
    def calibrate_scores(self) -> tuple[float, float]:
        """Sample ``normalize_samples`` responses from the reference policy (adapter disabled) on
        prompts drawn from their own seeded order (the training cursor does not move), score them
        and keep their mean and standard deviation as the normalization's bias and gain."""
        cfg = self.config
        sampler = PromptSampler(self.prompts, cfg.seed + 1)
        raw = []
        for start in range(0, cfg.normalize_samples, self.forward_batch_size):
            prompts = sampler.next_batch(min(self.forward_batch_size, cfg.normalize_samples - start))
            query_ids, query_mask = self._encode_prompts(prompts)
            with self.reference() as ref:
                response_ids = self.generate(query_ids, query_mask, model=ref)
            mask = P.response_mask(response_ids, self.eos_ids, self.pad_id)
            finished = P.contains_eos(response_ids, self.eos_ids, self.pad_id).tolist()
            raw.append(self.score(prompts, self.decode_responses(response_ids, mask), finished))
        scores = torch.cat(raw).double()
        mean, std = float(scores.mean()), float(scores.std())
        if not (math.isfinite(mean) and math.isfinite(std)) or std < 1e-6:
            raise PPOStepError("score_normalization", f"the reward model gave the reference policy's "
                               f"{len(scores)} responses scores of mean {mean:.4g}, standard deviation {std:.3g}: "
                               "nothing to normalize by (a constant or broken reward model?); turn "
                               "normalize_scores off or check the reward model")
        self.score_norm = (mean, std)
        self.log(f"score normalization: reference responses score {mean:.4g} +- {std:.4g}; "
                 f"scores become (score - {mean:.4g}) / {std:.4g}")
        return self.score_norm

    @torch.no_grad()
    def run_eval(self) -> tuple[list[dict], dict[str, float]]:
        """Answer the eval prompts at ``eval_temperature`` with the current policy and score the
        answers: ``(sample rows, EVAL_METRICS values)``, one row (prompt, response, score) per prompt.

        Training's random state is untouched: sampling runs inside a forked torch RNG seeded from
        ``(seed, step)``, so a run with eval on trains exactly like one with eval off (and resumes
        exactly), and the eval answers of a step are the same on every run.
        """
        cfg = self.config
        if not self.eval_prompts:
            return [], {}
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        rows, shaped, raw, lengths = [], [], [], []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(cfg.seed * 1_000_003 + self.step)
            for start in range(0, len(self.eval_prompts), self.forward_batch_size):
                prompts = self.eval_prompts[start:start + self.forward_batch_size]
                query_ids, query_mask = self._encode_prompts(prompts)
                response_ids = self.generate(query_ids, query_mask, temperature=cfg.eval_temperature)
                mask = P.response_mask(response_ids, self.eos_ids, self.pad_id)
                eos = P.contains_eos(response_ids, self.eos_ids, self.pad_id)
                responses = self.decode_responses(response_ids, mask)
                scores = self.score(prompts, responses, eos.tolist())
                raw.append(scores)
                shaped.append(self.shape_scores(scores, eos))
                lengths.append(P.sequence_lengths(mask).float())
                rows.extend({"prompt": prompt_display(p), "response": r} for p, r in zip(prompts, responses))
        shaped_all = torch.cat(shaped)
        for row, score in zip(rows, shaped_all.tolist()):
            row["score"] = score
        metrics = {"eval/score": float(shaped_all.mean()), "eval/score_raw": float(torch.cat(raw).mean()),
                   "eval/length_mean": float(torch.cat(lengths).mean())}
        return rows, metrics

    def rollout(self, prompts: Sequence[str]) -> Rollout:
        """Sample one response per prompt and evaluate it; the first rollout of a trainer also
        checks that the log-probs describe what was sampled (:meth:`check_sampling`)."""
        query_ids, query_mask = self._encode_prompts(prompts)
        if self.sampling_checked:
            return self.evaluate(prompts, query_ids, query_mask, self.generate(query_ids, query_mask))
        response_ids, sampled = self.generate(query_ids, query_mask, with_scores=True)
        ro = self.evaluate(prompts, query_ids, query_mask, response_ids)
        gap = self.check_sampling(ro, sampled)
        self.sampling_checked = True
        self.log(f"sampling check passed: recomputed log-probs within {gap:.2g} nats/token of generate's")
        return ro

    # ------------------------------------------------------------------ one PPO step

    def advantages(self, ro: Rollout, kl_coef: float) -> dict[str, torch.Tensor]:
        """Per-token ``rewards`` (KL penalty, score on the last token, optionally whitened),
        whitened GAE ``advantages``, value targets ``returns``, and per response the
        ``non_score`` reward and the ``kl`` in the configured estimator.

        Raises:
            PPOStepError: ``too_few_tokens`` when the batch holds fewer than 2 response tokens
                (nothing to whiten over: every response ended straight away).
        """
        cfg = self.config
        mask = ro.mask
        n = int(mask.sum())
        if n < 2:
            raise PPOStepError(
                "too_few_tokens", f"step {self.step + 1}: the batch of {len(ro.prompts)} responses holds only {n} "
                "response token(s) (the policy ends every response at once), too few to whiten advantages "
                "over; use a larger batch_size, a higher temperature, or check that the policy model "
                "answers these prompts at all")
        rewards, non_score, kl_seq = P.per_token_rewards(ro.scores, ro.logprobs, ro.ref_logprobs, mask,
                                                         kl_coef, cfg.kl_estimator)
        if cfg.whiten_rewards:
            rewards = P.masked_whiten(rewards, mask, shift_mean=False)
        advantages, returns = P.compute_gae(rewards, ro.values, mask, cfg.gamma, cfg.lam)
        return {"rewards": rewards, "advantages": P.masked_whiten(advantages, mask), "returns": returns,
                "non_score": non_score, "kl": kl_seq}

    def train_step(self, rollout: Optional[Rollout] = None) -> tuple[dict[str, float], Rollout]:
        """Sample a batch, compute advantages, run the PPO epochs; return metrics and the rollout.

        Each of the ``ppo_epochs`` passes shuffles the batch into minibatches of
        ``mini_batch_size`` episodes, one optimizer update each; a minibatch is processed in
        ``gradient_accumulation_steps`` micro-batches whose losses are normalized by the whole
        minibatch's token count, so accumulating gives the same update as one big pass.

        Args:
            rollout: train on these episodes instead of sampling a batch (tests, replays).

        Raises:
            TrainingDiverged: a score, loss or gradient norm is NaN/Inf
                (the step is abandoned; the model may be partly updated).
            PPOStepError: the batch cannot be trained on (see :meth:`advantages`).
        """
        cfg = self.config
        t0 = time.perf_counter()
        lr = self.scheduler.get_last_lr()[0]
        kl_coef = self.kl_ctl.value

        if cfg.normalize_scores and self.score_norm is None:
            self.calibrate_scores()
        ro = rollout if rollout is not None else self.rollout(self.sampler.next_batch(cfg.batch_size))
        if not torch.isfinite(ro.scores).all():
            bad = int((~torch.isfinite(ro.scores)).sum())
            raise TrainingDiverged("nan_score", f"step {self.step + 1}: the reward model returned {bad} "
                                                f"non-finite score(s)")
        mask = ro.mask
        adv = self.advantages(ro, kl_coef)
        advantages, returns = adv["advantages"], adv["returns"]
        self.last_step = {**adv, "minibatches": []}

        batch = len(ro.prompts)
        micro = max(1, cfg.mini_batch_size // cfg.gradient_accumulation_steps)
        # Token-weighted sums over all micro-batches, and each micro-batch's mean ratio (ratio_var).
        sums = {k: 0.0 for k in ("approxkl", "clipfrac", "ratio", "vf_clipfrac")}
        tokens_seen, ratios, pg_losses, vf_losses = 0, [], [], []
        input_ids, attention_mask = ro.input_ids, ro.attention_mask
        context = ro.query_ids.shape[1]
        self._train_mode(True)
        for _epoch in range(cfg.ppo_epochs):
            order = torch.randperm(batch).to(self.device)
            for start in range(0, batch, cfg.mini_batch_size):
                idx = order[start:start + cfg.mini_batch_size]
                n_tokens = int(mask[idx].sum())
                if n_tokens == 0:
                    continue
                self.optimizer.zero_grad(set_to_none=True)
                pg_total = vf_total = 0.0
                for m0 in range(0, len(idx), micro):
                    mi = idx[m0:m0 + micro]
                    mb_mask = mask[mi]
                    m_tokens = int(mb_mask.sum())
                    if m_tokens == 0:
                        continue
                    logits, values = self.forward(input_ids[mi], attention_mask[mi], context)
                    new_logprobs = self.token_logprobs(logits, ro.response_ids[mi])
                    del logits
                    pg_loss, pg = P.clipped_policy_loss(new_logprobs, ro.logprobs[mi], advantages[mi], mb_mask,
                                                        cfg.cliprange, num_tokens=n_tokens)
                    vf_loss, vf_clipfrac = P.clipped_value_loss(values, ro.values[mi], returns[mi], mb_mask,
                                                                cfg.cliprange_value, num_tokens=n_tokens)
                    loss = pg_loss + cfg.vf_coef * vf_loss
                    if not torch.isfinite(loss):
                        raise TrainingDiverged("nan_loss", f"step {self.step + 1}: the PPO loss is {loss.item()} "
                                                           f"(policy {pg_loss.item()}, value {vf_loss.item()})")
                    loss.backward()
                    pg_total += float(pg_loss.detach())
                    vf_total += float(vf_loss.detach())
                    for key, value in (("approxkl", pg["approxkl"]), ("clipfrac", pg["clipfrac"]),
                                       ("ratio", pg["ratio"]), ("vf_clipfrac", vf_clipfrac)):
                        sums[key] += float(value) * m_tokens
                    ratios.append(float(pg["ratio"]))
                    tokens_seen += m_tokens
                grad_norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
                if not torch.isfinite(grad_norm):
                    raise TrainingDiverged("nan_grad", f"step {self.step + 1}: the gradient norm is "
                                                       f"{grad_norm.item()}")
                self.optimizer.step()
                pg_losses.append(pg_total)
                vf_losses.append(vf_total)
                self.last_step["minibatches"].append({"indices": idx.tolist(), "pg_loss": pg_total,
                                                      "vf_loss": vf_total})
        self.optimizer.zero_grad(set_to_none=True)
        self._train_mode(False)
        self.scheduler.step()

        zeros = torch.zeros_like(ro.logprobs)
        kl_k1 = torch.where(mask, P.kl_k1(ro.logprobs, ro.ref_logprobs), zeros).sum(-1)
        kl_k3 = torch.where(mask, P.kl_k3(ro.logprobs, ro.ref_logprobs), zeros).sum(-1)
        kl_seq, non_score = adv["kl"], adv["non_score"]
        self.kl_ctl.update(kl_seq.mean(), batch)
        self.step += 1
        elapsed = time.perf_counter() - t0
        per_token = (lambda key: sums[key] / tokens_seen) if tokens_seen else (lambda key: math.nan)
        metrics = {
            "objective/kl": kl_seq.mean(),
            "objective/kl_k1": kl_k1.mean(),
            "objective/kl_k3": kl_k3.mean(),
            "objective/entropy": (-ro.logprobs).sum(-1).mean(),
            "objective/non_score_reward": non_score.mean(),
            "objective/rlhf_reward": (ro.scores + non_score).mean(),
            "objective/scores": ro.scores.mean(),
            "objective/scores_raw": (ro.raw_scores if ro.raw_scores is not None else ro.scores).mean(),
            "policy/approxkl_avg": per_token("approxkl"),
            "policy/clipfrac_avg": per_token("clipfrac"),
            "policy/entropy_avg": P.masked_mean(ro.entropy, mask),
            "loss/policy_avg": _mean(pg_losses),
            "loss/value_avg": _mean(vf_losses),
            "val/clipfrac_avg": per_token("vf_clipfrac"),
            "val/ratio": per_token("ratio"),
            "val/ratio_var": float(np.var(ratios, ddof=1)) if len(ratios) > 1 else 0.0,
            "val/num_eos_tokens": ro.contains_eos.sum(),
            "response/length_mean": P.sequence_lengths(mask).float().mean(),
            "response/truncated_frac": (~ro.contains_eos).float().mean(),
            "lr": lr,
            "kl_coef": kl_coef,
            "episode": self.step * batch,
            "time/step_s": elapsed,
            "eps": batch / elapsed,
        }
        return {k: float(v) for k, v in metrics.items()}, ro

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self, folder: Union[str, Path]) -> None:
        """Write everything :meth:`load_checkpoint` needs to continue exactly."""
        from safetensors.torch import save_file

        folder = Path(folder)
        if self.ref_model is None:
            self.model.save_pretrained(folder / ADAPTER_DIR, selected_adapters=["default"])
        else:  # a whole model folder, loadable by a next stage as it is
            clean, self.model.generation_config = self.model.generation_config, self._folder_generation_config
            try:
                self.model.save_pretrained(folder, safe_serialization=True)
            finally:
                self.model.generation_config = clean
            self.tokenizer.save_pretrained(folder)
        if self.value_head is not None:
            save_file({k: v.detach().contiguous().cpu() for k, v in self.value_head.state_dict().items()},
                      str(folder / VALUE_HEAD_FILE))
        else:
            self.critic.model.save_pretrained(folder / CRITIC_DIR)  # its adapter and score head
        torch.save(self.optimizer.state_dict(), folder / OPTIMIZER_FILE)
        torch.save(self.scheduler.state_dict(), folder / SCHEDULER_FILE)
        torch.save(_rng_state(), folder / RNG_FILE)
        py_version, py_state, py_gauss = random.getstate()
        np_state = np.random.get_state()
        state = {
            "step": self.step,
            "sampler": self.sampler.state_dict(),
            "kl_controller": self.kl_ctl.state_dict(),
            "score_norm": list(self.score_norm) if self.score_norm is not None else None,
            "python_rng": [py_version, list(py_state), py_gauss],
            "numpy_rng": [np_state[0], np_state[1].tolist(), *[_plain(x) for x in np_state[2:]]],
            "config": self.config.to_dict(),
        }
        (folder / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")

    def load_checkpoint(self, folder: Union[str, Path]) -> None:
        """Restore adapter, value head, optimizer, scheduler, cursor, KL controller and RNGs."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        folder = Path(folder)
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        if self.ref_model is None:
            if not (folder / ADAPTER_DIR).is_dir():
                raise WorkbenchError(f"checkpoint {folder} holds a whole model, not a LoRA adapter; resume "
                                     "with lora off")
            adapter = load_file(str(folder / ADAPTER_DIR / "adapter_model.safetensors"), device=str(self.device))
            result = set_peft_model_state_dict(self.model, adapter)
            missing = [k for k in getattr(result, "missing_keys", [])
                       if "lora_" in k and f".{self.ref_adapter}." not in k]  # the reference is not saved
            if missing:
                raise WorkbenchError(f"checkpoint {folder}: the adapter does not match the config "
                                     f"(missing {missing[0]}...); resume with the same LoRA settings")
        else:
            self._load_full_weights(folder)
        if self.value_head is not None:
            self.value_head.load_state_dict(load_file(str(folder / VALUE_HEAD_FILE), device=str(self.device)))
        else:
            critic = load_file(str(folder / CRITIC_DIR / "adapter_model.safetensors"), device=str(self.device))
            result = set_peft_model_state_dict(self.critic.model, critic)
            if any("lora_" in k for k in getattr(result, "missing_keys", [])):
                raise WorkbenchError(f"checkpoint {folder}: the critic does not match the config; resume with "
                                     "the same value_model and LoRA settings")
        # Loaded on the CPU: load_state_dict moves each moment to its parameter's device.
        self.optimizer.load_state_dict(torch.load(folder / OPTIMIZER_FILE, weights_only=True, map_location="cpu"))
        self.scheduler.load_state_dict(torch.load(folder / SCHEDULER_FILE, weights_only=True, map_location="cpu"))
        self.kl_ctl.load_state_dict(state["kl_controller"])
        norm = state.get("score_norm")
        self.score_norm = (float(norm[0]), float(norm[1])) if norm else None
        saved_prompts = state["sampler"].get("num_prompts")
        if saved_prompts != len(self.prompts):
            self.log(f"the prompts changed since the checkpoint ({saved_prompts} then, {len(self.prompts)} now); "
                     "the data order will differ from an uninterrupted run")
        self.sampler.load_state_dict(state["sampler"])
        self.step = int(state["step"])
        py_version, py_state, py_gauss = state["python_rng"]
        random.setstate((py_version, tuple(py_state), py_gauss))
        np_state = state["numpy_rng"]
        np.random.set_state((np_state[0], np.asarray(np_state[1], dtype=np.uint32), *np_state[2:]))
        rng = torch.load(folder / RNG_FILE, weights_only=True)
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(rng["cuda"])


    def _load_full_weights(self, folder: Path) -> None:
        """Every policy weight from a ``lora: false`` checkpoint (``save_pretrained`` leaves out
        weights tied to others, such as a tied output head)."""
        from safetensors.torch import load_file

        files = sorted(folder.glob("model*.safetensors"))
        if not files:
            raise WorkbenchError(f"checkpoint {folder} holds no model weights (a LoRA run's checkpoint?); "
                                 "resume with the same lora setting")
        state: dict[str, torch.Tensor] = {}
        for f in files:
            state.update(load_file(str(f), device=str(self.device)))
        result = self.model.load_state_dict(state, strict=False)
        tied = {name for name, p in self.model.named_parameters(remove_duplicate=False)} - \
            {name for name, p in self.model.named_parameters()}
        missing = [k for k in result.missing_keys if k not in tied]
        if missing or result.unexpected_keys:
            raise WorkbenchError(f"checkpoint {folder}: the model weights do not match the policy "
                                 f"({(missing or result.unexpected_keys)[0]}...)")


def _lr_factor(cfg: PPOConfig, step: int) -> float:
    """Learning-rate multiplier after ``step`` PPO steps: warmup, then linear decay or constant."""
    factor = 1.0
    if cfg.warmup_steps and step < cfg.warmup_steps:
        factor = (step + 1) / (cfg.warmup_steps + 1)
    if cfg.lr_scheduler == "linear":
        factor *= max(0.0, 1.0 - step / cfg.total_steps)
    return factor


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def _plain(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else x


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# =========================================================================== 4. the job recipe


def run(ctx: Any) -> None:
    """The ``ppo`` stage: train until ``total_steps``, reporting through ``ctx``.

    Metrics every step (:data:`METRIC_NAMES`), samples every
    ``samples_every`` steps (and at step 1), eval samples (``kind: eval``) and
    :data:`EVAL_METRICS` at the steps :func:`eval_due` names, checkpoints every
    ``save_every`` steps and at the end. On cancel it saves a checkpoint at
    the step boundary and raises ``StopRequested``; a non-finite score,
    loss or gradient emits a ``warning`` (code ``nan_score``, ``nan_loss``
    or ``nan_grad``) and fails the job.
    """
    from ..jobs.run import StopRequested

    cfg = PPOConfig.from_dict(ctx.config)
    ctx.keep_checkpoints = cfg.keep_checkpoints
    cfg = _open_inputs(ctx, cfg)
    trainer = PPOTrainer(cfg, log=ctx.log, workspace=resolve_workspace(cfg, ctx.run_dir.path))
    if ctx.resume_from is not None:
        trainer.load_checkpoint(ctx.resume_from)
        ctx.log(f"resumed at step {trainer.step} of {cfg.total_steps}")
    saved_step = trainer.step

    def save() -> None:
        nonlocal saved_step
        with ctx.checkpoint(trainer.step) as folder:
            trainer.save_checkpoint(folder)
        saved_step = trainer.step

    while trainer.step < cfg.total_steps:
        if ctx.should_stop():
            if trainer.step != saved_step:
                save()
            raise StopRequested(f"stopped at step {trainer.step} of {cfg.total_steps}")
        try:
            metrics, ro = trainer.train_step()
        except PPOStepError as e:
            ctx.warn(e.code, str(e), step=trainer.step + 1)
            raise
        step = trainer.step
        eval_rows: list[dict] = []
        if eval_due(cfg, step) and trainer.eval_prompts:
            eval_rows, eval_metrics = trainer.run_eval()
            metrics.update(eval_metrics)
        ctx.metric(step, metrics)
        if eval_rows:
            ctx.samples(step, eval_rows, kind="eval")
        if cfg.samples_every and cfg.num_samples and (step == 1 or step % cfg.samples_every == 0):
            n = min(cfg.num_samples, len(ro.prompts))
            ctx.samples(step, [{"prompt": prompt_display(ro.prompts[i]), "response": ro.responses[i],
                                "score": float(ro.scores[i])} for i in range(n)])
        if cfg.save_every and step % cfg.save_every == 0:
            save()
    if trainer.step != saved_step:
        save()


def _open_inputs(ctx: Any, cfg: PPOConfig) -> PPOConfig:
    """Check the config against the workspace before any model loads, make ``./`` model folders
    absolute, and read the prompt dataset's snapshot (frozen now on a first start, and pinned in
    ``config.yaml`` so a resumed run samples the same prompts)."""
    import dataclasses

    import yaml

    from ..jobs.rundir import atomic_write_text

    workspace = resolve_workspace(cfg, ctx.run_dir.path)
    for warning in validate_ppo_before_load(cfg, workspace):
        ctx.warn("config", warning)
    resolved = dataclasses.replace(cfg, policy_model=resolve_ref(cfg.policy_model, workspace),
                                   policy_adapter=resolve_ref(cfg.policy_adapter, workspace),
                                   reward_model=resolve_ref(cfg.reward_model, workspace))
    for name in ("prompts", "eval_prompts"):  # a JSONL file: relative to the workspace, not the run folder
        if isinstance(getattr(cfg, name), str):
            resolved = dataclasses.replace(resolved, **{name: str(prompt_file(getattr(cfg, name), workspace))})
    if not cfg.eval_every:
        resolved = dataclasses.replace(resolved, eval_prompts=[])  # nothing to evaluate on
    pinned, read = {}, {}
    for eval_set, (name_field, snap_field, prompts_field) in ((False, ("prompt_dataset", "snapshot", "prompts")),
                                                              (True, ("eval_dataset", "eval_snapshot", "eval_prompts"))):
        if not getattr(cfg, name_field) or (eval_set and not cfg.eval_every):
            continue
        prompts, snapshot = read_prompt_dataset(cfg, workspace, note=f"run {ctx.run_dir.run_id}", eval_set=eval_set)
        ctx.log(f"{'eval prompts' if eval_set else 'prompts'}: dataset {getattr(cfg, name_field)!r} snapshot "
                f"{snapshot[:12]} ({len(prompts)} prompts)")
        pinned[snap_field], read[snap_field], read[prompts_field] = snapshot, snapshot, prompts
    if any(getattr(cfg, k) != v for k, v in pinned.items()):
        data = {"stage": "ppo", **dataclasses.replace(cfg, **pinned).to_dict()}
        atomic_write_text(ctx.run_dir.config, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    ctx.raise_if_stopped()
    return dataclasses.replace(resolved, **read)
