"""The PPO stage's config: every knob with its help text, presets, and its prompts.

Cheap to import (no torch, no Qt): the training panel builds the PPO form
from :class:`PPOConfig` (``metadata["help"]``, ``metadata["choices"]``) like
the other stages' forms from :mod:`workbench.train.config`, and checks a
config before anything heavy loads. The engine (:mod:`workbench.train.ppo`)
re-exports everything here.

Unlike SFT, reward and DPO, a PPO config is flat (``config.yaml`` of a
``ppo`` run holds these keys at the top level, next to ``stage: ppo``);
:data:`SECTIONS` groups the fields for display. The prompts come from a
workspace dataset (``prompt_dataset``, frozen into a snapshot when the run
starts, like the other stages' data) or from the config itself
(``prompts``: a list or a JSONL file).
"""

from __future__ import annotations

import difflib
import os
import re
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from ..errors import WorkbenchError, short_repr
from .config import QUANTIZATIONS, ConfigError, read_preset, run_home, workspace_folder

LR_SCHEDULERS = ("linear", "constant")
#: KL estimators of the reward penalty (the engine's :data:`ppo_math.KL_ESTIMATORS`, repeated
#: here so this module stays free of torch; a test keeps the two equal).
KL_ESTIMATORS = ("k1", "k2", "k3")
DTYPES = ("auto", "bf16", "fp16", "fp32")
#: How prompts are shown to the policy and texts to the reward model (see :func:`training_style`).
FORMATS = ("auto", "chat", "plain")
#: What happens to the score of a response cut off at max_new_tokens (ppo_math.eos_penalty's modes).
MISSING_EOS_MODES = ("subtract", "replace")
_HEX = re.compile(r"^[0-9a-fA-F]{6,64}$")


def _m(text: str, *, choices: Optional[tuple] = None, suggestions: Optional[tuple] = None) -> dict:
    meta: dict[str, Any] = {"help": text}
    if choices is not None:
        meta["choices"] = choices
    if suggestions is not None:
        meta["suggestions"] = suggestions
    return meta


def _did_you_mean(key: str, names) -> str:
    close = difflib.get_close_matches(str(key), sorted(names), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass
class PPOConfig:
    """Everything a PPO run needs; ``config.yaml`` of a ``ppo`` job holds these keys."""

    # -- models
    policy_model: str = field(default="", metadata=_m(
        "The model to improve: a local folder or a hub id, usually the SFT stage's output. "
        "It is frozen; PPO trains a LoRA adapter on it."))
    reward_model: Optional[str] = field(default=None, metadata=_m(
        "The reward model from the reward stage (a sequence classifier with one label), "
        "a local folder or a hub id. It scores each prompt + response and is never trained."))
    prompt_dataset: Optional[str] = field(default=None, metadata=_m(
        "Workspace dataset whose prompts PPO samples (a prompts, sft or preference dataset; a chat "
        "prompt keeps its whole conversation: system prompt and earlier turns). Empty: use 'prompts'."))
    snapshot: Optional[str] = field(default=None, metadata=_m(
        "Hash (or its first 6+ characters) of a frozen snapshot of prompt_dataset; empty: freeze the "
        "dataset's current records when the run starts (the job writes the hash back here)."))
    prompts: Union[list, str] = field(default_factory=list, metadata=_m(
        "Prompts when no prompt_dataset is set: a list (strings, or conversations as lists of "
        "{role, content} messages), or the path of a JSONL file with one {\"prompt\": ...} object "
        "per line."))
    prompt_format: str = field(default="auto", metadata=_m(
        "How the policy sees a prompt: 'chat' (the tokenizer's chat template with the generation "
        "prompt), 'plain' (the raw prompt text, as TRL's SFT trains on plain prompt/completion data) "
        "or 'auto': the style of the data the policy was trained on (from its run's dataset), else "
        "chat when the tokenizer has a template.", choices=FORMATS))
    reward_format: str = field(default="auto", metadata=_m(
        "How the reward model reads prompt + response: 'chat' (the conversation through its chat "
        "template), 'plain' (prompt + response + EOS, as TRL's reward trainer reads plain "
        "preference data) or 'auto': the style of the data the reward model was trained on, else "
        "chat when its tokenizer has a template.", choices=FORMATS))
    workspace: Optional[str] = field(default=None, metadata=_m(
        "Workspace folder holding prompt_dataset and the ./relative model folders; empty: the "
        "workspace the run belongs to (a relative folder is taken relative to that one)."))
    policy_adapter: Optional[str] = field(default=None, metadata=_m(
        "A LoRA adapter folder on policy_model (an SFT run's checkpoint trained with LoRA and not "
        "merged). PPO trains this adapter further, and the reference is a frozen copy of it (TRL's "
        "ref_adapter_name): no merged SFT model needed, also on a 4-bit base. The adapter's own "
        "rank and layers are used (lora_r and friends do not apply); the tokenizer is "
        "policy_model's. Empty: a fresh adapter."))
    value_model: str = field(default="shared", metadata=_m(
        "The critic: 'shared' is a value head on the policy's last hidden state (one model in "
        "memory); 'reward_model' is a separate critic initialized from the reward model (its body "
        "and score head, trained through its own LoRA adapter), TRL's value_model and the N+ "
        "details' warm start: its first values already say what scores well. Needs the reward "
        "model to share the policy's tokenizer; the reward model's weights serve both (scores are "
        "taken with the critic's adapter off), so it costs the adapter, its optimizer state and "
        "a forward and backward pass of the reward model in each update. On the demo task it "
        "learned as much as TRL's PPO where 'shared' learned about half of that (the shared "
        "value loss pulls on the policy's adapter): prefer it whenever the memory allows.",
        choices=("shared", "reward_model")))
    quantization: Optional[str] = field(default=None, metadata=_m(
        "Load the policy's base weights in '4bit' (QLoRA, NF4) or '8bit' to save memory; "
        "empty for full precision. The adapter, value head and optimizer stay in full precision.",
        choices=QUANTIZATIONS))
    reward_quantization: Optional[str] = field(default=None, metadata=_m(
        "Load the reward model in '4bit' or '8bit'; empty for full precision.", choices=QUANTIZATIONS))
    device: Optional[str] = field(default=None, metadata=_m(
        "'cuda', 'cuda:1', 'cpu'...; empty picks the GPU when there is one.", suggestions=("cuda", "cpu")))
    dtype: str = field(default="auto", metadata=_m(
        "Compute dtype: 'auto' (bf16 on GPUs that support it, else fp16 on GPU, fp32 on CPU), "
        "'bf16', 'fp16' or 'fp32'.", choices=DTYPES))
    gradient_checkpointing: bool = field(default=False, metadata=_m(
        "Recompute activations in the backward pass: less GPU memory, about 30% slower."))

    # -- LoRA
    lora: bool = field(default=True, metadata=_m(
        "Train a LoRA adapter; the reference is the same model with the adapter disabled (one copy "
        "of the weights in memory). Off: train every weight of the policy, against a frozen copy "
        "as the reference (twice the weights plus optimizer state for all of them): for small "
        "models, where full fine-tuning learns faster. Checkpoints are then whole model folders."))
    lora_r: int = field(default=16, metadata=_m(
        "LoRA rank: the size of the adapter. 8-64 is typical; larger learns more and uses more memory."))
    lora_alpha: int = field(default=32, metadata=_m(
        "LoRA scaling numerator (the update is scaled by alpha / r); commonly 2 x rank."))
    lora_dropout: float = field(default=0.0, metadata=_m(
        "Dropout on the LoRA path during PPO updates. 0 is recommended for PPO: with dropout, "
        "the policy ratio is not 1 even before any update. Dropout in the base model is always off."))
    lora_target_modules: Union[str, list] = field(default="all-linear", metadata=_m(
        "Which layers get adapters: 'all-linear', or a list of module names like [q_proj, v_proj]."))

    # -- batch and optimization
    batch_size: int = field(default=16, metadata=_m(
        "Prompts (episodes) sampled per PPO step."))
    mini_batch_size: int = field(default=8, metadata=_m(
        "Episodes per optimizer update (batch_size / mini_batch_size updates per PPO epoch); "
        "must divide the batch size."))
    gradient_accumulation_steps: int = field(default=1, metadata=_m(
        "Split each minibatch into this many micro-batches that go through the model one at a "
        "time, their gradients summed before the update: the same update with less memory. "
        "Must divide mini_batch_size."))
    forward_batch_size: int = field(default=0, metadata=_m(
        "Episodes per forward pass during the rollout (log-probs, reference, values, reward "
        "model); no gradients there, so it can be larger than a micro-batch. 0: the "
        "micro-batch size (mini_batch_size / gradient_accumulation_steps)."))
    logit_chunk_size: int = field(default=64, metadata=_m(
        "Compute log-probs and entropies over this many response positions at a time, so the "
        "float32 copy of the logits (positions x vocabulary) exists for one chunk only: less "
        "peak memory with large vocabularies. 0: all positions at once."))
    ppo_epochs: int = field(default=4, metadata=_m(
        "Passes over each batch of episodes, each over freshly shuffled minibatches."))
    lr: float = field(default=5e-5, metadata=_m(
        "AdamW learning rate for the adapter and the value head."))
    lr_scheduler: str = field(default="linear", metadata=_m(
        "'linear' decays the learning rate to 0 over total_steps; 'constant' keeps it.", choices=LR_SCHEDULERS))
    warmup_steps: int = field(default=0, metadata=_m(
        "Steps over which the learning rate rises linearly from 0 at the start."))
    max_grad_norm: float = field(default=1.0, metadata=_m(
        "Clip the gradient norm of each update to this value."))

    # -- generation
    max_new_tokens: int = field(default=32, metadata=_m(
        "Longest response, in tokens. Responses cut off here have no EOS "
        "(see missing_eos_penalty)."))
    stop_tokens: Union[list, str] = field(default_factory=list, metadata=_m(
        "Extra tokens that end a response like the EOS, as text (each one token of the policy's "
        "tokenizer): a list, or one string with commas between them, e.g. <|im_end|>,<|endoftext|>. "
        "The tokenizer's EOS and the eos_token_id of the model's generation_config.json always count."))
    temperature: float = field(default=0.7, metadata=_m(
        "Sampling temperature of the rollouts. Log-probs are taken at the same temperature."))
    top_k: int = field(default=0, metadata=_m(
        "Must stay 0 (off) for PPO: top-k samples from a truncated distribution, while PPO's "
        "log-probs, KL and ratio are of the full one (TRL's PPO fixes it at 0 too). Kept so "
        "configs can state it."))
    top_p: float = field(default=1.0, metadata=_m(
        "Must stay 1.0 (off) for PPO, for the same reason as top_k."))

    # -- rewards and KL
    kl_coef: float = field(default=0.05, metadata=_m(
        "Weight of the per-token KL penalty that keeps the policy near the reference. Scale it "
        "to the reward model's score range: too small and the policy drifts and exploits the "
        "reward model (reward hacking)."))
    adaptive_kl: bool = field(default=False, metadata=_m(
        "Adapt the KL coefficient after every step to steer the KL towards kl_target "
        "(Ziegler et al.); kl_coef is then the starting value."))
    kl_target: float = field(default=6.0, metadata=_m(
        "Target KL per response, in nats, for the adaptive KL controller."))
    kl_horizon: float = field(default=10000.0, metadata=_m(
        "Episodes over which the adaptive KL controller corrects a full-size error."))
    kl_estimator: str = field(default="k1", metadata=_m(
        "KL estimator in the reward penalty: 'k1' (log-ratio; TRL's default), 'k3' "
        "(non-negative, lower variance) or 'k2'. Both k1 and k3 are always logged.", choices=KL_ESTIMATORS))
    whiten_rewards: bool = field(default=False, metadata=_m(
        "Rescale the per-token rewards of each batch to unit variance (mean kept)."))
    missing_eos_penalty: Optional[float] = field(default=1.0, metadata=_m(
        "What a response that hits max_new_tokens without an EOS gets (the reward model reads it "
        "cut off, without an EOS): with missing_eos_mode 'subtract' this is taken off its score "
        "(TRL's missing_eos_penalty); with 'replace' its score becomes this value (the N+ "
        "implementation details use -1). In reward-model score units: with normalize_scores on, "
        "1.0 is one standard deviation of the scores. Empty: no penalty."))
    normalize_scores: bool = field(default=False, metadata=_m(
        "Before the first step, score normalize_samples responses sampled from the reference "
        "policy and rescale every later score with that gain and bias, so the reference's "
        "responses score mean 0, standard deviation 1 (the N implementation details' reward "
        "normalization): one kl_coef and missing_eos_penalty then suit any reward model."))
    normalize_samples: int = field(default=64, metadata=_m(
        "Responses sampled for normalize_scores (more: a steadier gain and bias)."))
    score_clip: Optional[float] = field(default=None, metadata=_m(
        "Clip scores (after normalization) to [-score_clip, +score_clip], so a few extreme reward-"
        "model scores cannot dominate a batch; empty: no clipping."))
    missing_eos_mode: str = field(default="subtract", metadata=_m(
        "'subtract' keeps the reward model's ranking among unfinished responses; 'replace' gives "
        "them all the same score (missing_eos_penalty), whatever the reward model thinks.",
        choices=MISSING_EOS_MODES))

    # -- PPO
    gamma: float = field(default=1.0, metadata=_m("Discount factor of the returns."))
    lam: float = field(default=0.95, metadata=_m("GAE lambda: bias/variance trade-off of the advantages."))
    cliprange: float = field(default=0.2, metadata=_m(
        "PPO clip range of the policy ratio (epsilon)."))
    cliprange_value: float = field(default=0.2, metadata=_m(
        "Clip range of the value predictions around their rollout values."))
    vf_coef: float = field(default=0.1, metadata=_m(
        "Weight of the value loss in the total loss."))

    # -- schedule, reporting, reproducibility
    total_steps: int = field(default=100, metadata=_m(
        "PPO steps to run; each samples batch_size prompts."))
    save_every: int = field(default=50, metadata=_m(
        "Save a checkpoint every this many steps (0: only at the end or on cancel)."))
    keep_checkpoints: int = field(default=3, metadata=_m(
        "Checkpoints kept on disk: the newest this many, plus the best by the score and any another run or "
        "generated candidates use (0: keep them all)."))
    samples_every: int = field(default=10, metadata=_m(
        "Report a few (prompt, response, score) samples every this many steps (0: never)."))
    num_samples: int = field(default=4, metadata=_m(
        "How many samples each samples report holds."))
    seed: int = field(default=42, metadata=_m(
        "Random seed: the same seed and config give the same run."))

    # -- evaluation
    eval_dataset: Optional[str] = field(default=None, metadata=_m(
        "Workspace dataset whose validation split holds the eval prompts: prompts PPO never trains on "
        "(when it is also prompt_dataset, PPO trains on its other records only). Empty: use eval_prompts."))
    eval_snapshot: Optional[str] = field(default=None, metadata=_m(
        "Hash (or its first 6+ characters) of a frozen snapshot of eval_dataset; empty: freeze it when "
        "the run starts (the job writes the hash back here)."))
    eval_prompts: Union[list, str] = field(default_factory=list, metadata=_m(
        "Held-out eval prompts when no eval_dataset is set: a list, or the path of a JSONL file with one "
        "{\"prompt\": ...} object per line (the same forms as 'prompts')."))
    eval_every: int = field(default=0, metadata=_m(
        "Every this many steps (and at step 1 and the last step), answer the eval prompts at "
        "eval_temperature, score the answers with the reward model and report them as eval samples "
        "and the eval/score metric. 0: no evaluation. Training is not affected (its random state is "
        "set aside while evaluating)."))
    eval_temperature: float = field(default=0.0, metadata=_m(
        "Sampling temperature of the eval completions: 0 is greedy (the same policy always gives the "
        "same answers, so changes between steps are the policy's), a small value such as 0.3 samples "
        "near-greedy answers from a fixed seed."))
    eval_num: int = field(default=16, metadata=_m(
        "How many eval prompts each evaluation answers (the first this many of the eval set, always "
        "the same ones)."))

    @property
    def stop_token_list(self) -> list[str]:
        """``stop_tokens`` as a list (a form gives one comma-separated string)."""
        if isinstance(self.stop_tokens, str):
            return [t.strip() for t in self.stop_tokens.split(",") if t.strip()]
        return list(self.stop_tokens)

    @classmethod
    def from_dict(cls, data: dict) -> "PPOConfig":
        """A validated config from plain data (``config.yaml`` without ``stage``).

        Unknown keys are an error (a typo would otherwise silently be the
        default). Numbers written as strings (YAML reads ``5e-5`` as one)
        are converted.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names - {"stage"})
        if unknown:
            raise ConfigError(unknown[0], f"unknown PPO config key(s): {', '.join(unknown)}"
                              f"{_did_you_mean(unknown[0], names)}")
        hints = typing.get_type_hints(cls)
        kwargs = {k: _coerce(k, v, hints[k]) for k, v in data.items() if k in names}
        config = cls(**kwargs)
        config.validate()
        return config

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first bad field."""
        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise ConfigError(name, f"{what}, got {short_repr(getattr(self, name))}")

        need(bool(self.policy_model), "policy_model", "give the model to train")
        need(self.quantization in (None, "4bit", "8bit"), "quantization", "expected none, '4bit' or '8bit'")
        need(self.reward_quantization in (None, "4bit", "8bit"), "reward_quantization",
             "expected none, '4bit' or '8bit'")
        need(isinstance(self.prompts, (str, list)), "prompts", "give a list of prompts or a JSONL path")
        need(bool(self.prompts) or bool(self.prompt_dataset), "prompt_dataset",
             "choose the workspace dataset of prompts (or give prompts in the config)")
        need(self.snapshot is None or bool(_HEX.match(self.snapshot)), "snapshot",
             "expected 6 to 64 hex characters of a snapshot hash")
        need(self.dtype in DTYPES, "dtype", f"expected one of {', '.join(DTYPES)}")
        need(self.lora or self.quantization is None, "quantization",
             "needs lora (quantized weights cannot be trained directly)")
        need(self.lora or not self.policy_adapter, "policy_adapter", "needs lora (it is a LoRA adapter)")
        need(self.value_model in ("shared", "reward_model"), "value_model", "expected 'shared' or 'reward_model'")
        for name in ("lora_r", "lora_alpha", "batch_size", "mini_batch_size", "ppo_epochs",
                     "max_new_tokens", "total_steps"):
            need(getattr(self, name) >= 1, name, "must be >= 1")
        for name in ("gradient_accumulation_steps",):
            need(getattr(self, name) >= 1, name, "must be >= 1")
        for name in ("warmup_steps", "save_every", "keep_checkpoints", "samples_every", "num_samples", "top_k",
                     "forward_batch_size", "logit_chunk_size"):
            need(getattr(self, name) >= 0, name, "must be >= 0")
        need(self.batch_size >= 2, "batch_size", "must be >= 2 (advantages are whitened over the batch)")
        need(self.batch_size % self.mini_batch_size == 0, "mini_batch_size", "must divide batch_size")
        need(self.mini_batch_size % self.gradient_accumulation_steps == 0, "gradient_accumulation_steps",
             f"must divide mini_batch_size ({self.mini_batch_size})")
        need(0 <= self.lora_dropout < 1, "lora_dropout", "must be in [0, 1)")
        need(self.lr > 0, "lr", "must be > 0")
        need(self.lr_scheduler in LR_SCHEDULERS, "lr_scheduler", f"expected one of {LR_SCHEDULERS}")
        need(self.max_grad_norm > 0, "max_grad_norm", "must be > 0")
        need(self.temperature > 0, "temperature", "must be > 0")
        need(isinstance(self.stop_tokens, str) or all(isinstance(t, str) and t for t in self.stop_tokens),
             "stop_tokens", "expected a list of non-empty strings, or one string with commas between them")
        need(self.top_k == 0, "top_k", "must be 0 for PPO (top-k sampling makes the log-probs, KL and ratio "
             "describe a different distribution than the one sampled)")
        need(self.top_p == 1.0, "top_p", "must be 1.0 for PPO (nucleus sampling makes the log-probs, KL and "
             "ratio describe a different distribution than the one sampled)")
        need(self.kl_coef >= 0, "kl_coef", "must be >= 0")
        need(not (self.adaptive_kl and self.kl_coef == 0), "kl_coef",
             "must be > 0 with adaptive_kl (the controller multiplies it, so 0 stays 0)")
        need(self.kl_target > 0, "kl_target", "must be > 0")
        need(self.kl_horizon > 0, "kl_horizon", "must be > 0")
        need(self.kl_estimator in KL_ESTIMATORS, "kl_estimator", f"expected one of {KL_ESTIMATORS}")
        need(self.missing_eos_mode in MISSING_EOS_MODES, "missing_eos_mode",
             f"expected one of {', '.join(MISSING_EOS_MODES)}")
        need(self.missing_eos_mode != "subtract" or self.missing_eos_penalty is None
             or self.missing_eos_penalty >= 0, "missing_eos_penalty",
             "must be >= 0 with missing_eos_mode 'subtract' (it is subtracted; use 'replace' for a fixed score)")
        need(self.normalize_samples >= 2, "normalize_samples", "must be >= 2 (a standard deviation needs two)")
        need(self.score_clip is None or self.score_clip > 0, "score_clip", "must be > 0 (or empty for none)")
        need(self.prompt_format in FORMATS, "prompt_format", f"expected one of {', '.join(FORMATS)}")
        need(self.reward_format in FORMATS, "reward_format", f"expected one of {', '.join(FORMATS)}")
        for name in ("prompts", "eval_prompts"):
            value = getattr(self, name)
            need(isinstance(value, (str, list)), name, "give a list of prompts or a JSONL path")
            for i, p in enumerate(value if isinstance(value, list) else []):
                need(prompt_value(p) is not None, name, f"item {i + 1}: expected a non-empty string or a "
                     "conversation of {role, content} messages with a user turn")
        need(self.eval_every >= 0, "eval_every", "must be >= 0")
        need(self.eval_num >= 1, "eval_num", "must be >= 1")
        need(self.eval_temperature >= 0, "eval_temperature", "must be >= 0 (0: greedy)")
        need(self.eval_snapshot is None or bool(_HEX.match(self.eval_snapshot)), "eval_snapshot",
             "expected 6 to 64 hex characters of a snapshot hash")
        need(not self.eval_snapshot or bool(self.eval_dataset), "eval_snapshot", "needs eval_dataset")
        need(not self.eval_every or bool(self.eval_dataset) or bool(self.eval_prompts), "eval_dataset",
             "choose the dataset whose validation split to evaluate on (or give eval_prompts), or set "
             "eval_every to 0")
        need(0 < self.gamma <= 1, "gamma", "must be in (0, 1]")
        need(0 <= self.lam <= 1, "lam", "must be in [0, 1]")
        need(self.cliprange > 0, "cliprange", "must be > 0")
        need(self.cliprange_value > 0, "cliprange_value", "must be > 0")
        need(self.vf_coef >= 0, "vf_coef", "must be >= 0")


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """``value`` as read from YAML, converted to the field's type where that is unambiguous.

    Numbers may come as strings (YAML 1.1 reads ``5e-5`` as one) and whole
    floats become ints; anything else of the wrong type is a ConfigError.
    """
    args = typing.get_args(hint)
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(name, "a value is required")
    base = hint
    if args:
        choices = [a for a in args if a is not type(None)]
        if len(choices) != 1:
            return value  # list-or-string fields: validate() checks them
        base = choices[0]
    bad = ConfigError(name, f"expected {getattr(base, '__name__', base)}, got {short_repr(value)}")
    if base is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if base in (int, float):
        if isinstance(value, bool):
            raise bad
        try:
            number = float(value) if isinstance(value, str) else value
        except ValueError:
            raise bad from None
        if not isinstance(number, (int, float)):
            raise bad
        if base is int:
            if isinstance(number, float) and not number.is_integer():
                raise bad
            return int(number)
        return float(number)
    if base is str and not isinstance(value, str):
        raise bad
    return value


#: The fields of :class:`PPOConfig` by topic, in form order.
SECTIONS: dict[str, tuple[str, ...]] = {
    "Models": ("policy_model", "policy_adapter", "reward_model", "value_model", "quantization", "reward_quantization", "device", "dtype",
               "gradient_checkpointing"),
    "Prompts": ("prompt_dataset", "snapshot", "prompts", "workspace", "prompt_format", "reward_format"),
    "LoRA": ("lora", "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules"),
    "Batch and optimizer": ("batch_size", "mini_batch_size", "gradient_accumulation_steps", "forward_batch_size",
                            "logit_chunk_size", "ppo_epochs", "lr", "lr_scheduler", "warmup_steps", "max_grad_norm"),
    "Generation": ("max_new_tokens", "stop_tokens", "temperature", "top_k", "top_p"),
    "Rewards and KL": ("kl_coef", "adaptive_kl", "kl_target", "kl_horizon", "kl_estimator", "whiten_rewards",
                       "normalize_scores", "normalize_samples", "score_clip", "missing_eos_penalty",
                       "missing_eos_mode"),
    "PPO": ("gamma", "lam", "cliprange", "cliprange_value", "vf_coef"),
    "Schedule and reporting": ("total_steps", "save_every", "keep_checkpoints", "samples_every", "num_samples",
                               "seed"),
    "Evaluation": ("eval_dataset", "eval_snapshot", "eval_prompts", "eval_every", "eval_temperature", "eval_num"),
}


def eval_due(cfg: PPOConfig, step: int) -> bool:
    """Whether the run evaluates after completed step ``step``: at step 1 (where the policy
    starts), every ``eval_every`` steps, and at the last step (where it ends)."""
    return bool(cfg.eval_every) and (step == 1 or step % cfg.eval_every == 0 or step == cfg.total_steps)


def load_ppo_config(data: Mapping[str, Any]) -> PPOConfig:
    """A checked :class:`PPOConfig` from plain data (``stage: ppo`` may be present)."""
    return PPOConfig.from_dict({k: v for k, v in dict(data).items() if k != "stage"})


def to_dict(cfg: PPOConfig) -> dict[str, Any]:
    """The config as ``config.yaml`` holds it, ``stage`` first."""
    return {"stage": "ppo", **cfg.to_dict()}


# -- presets ----------------------------------------------------------------------------------
#: Keys of a preset's shared ``model`` / ``training`` sections that mean the same for PPO.
_PRESET_MODEL_KEYS = {"ref": "policy_model", "quantization": "quantization", "lora_r": "lora_r",
                      "lora_alpha": "lora_alpha", "lora_target_modules": "lora_target_modules",
                      "gradient_checkpointing": "gradient_checkpointing"}
_PRESET_TRAINING_KEYS = {"seed": "seed", "device": "device"}


def ppo_preset_data(name: str) -> dict[str, Any]:
    """The PPO keys preset ``name`` sets: its shared model section mapped onto the flat PPO
    fields (LoRA dropout is not carried over: PPO wants 0), then its ``stages.ppo`` entries.

    Raises :class:`ConfigError` (field ``stage``) when the preset has no ``ppo`` stage.
    """
    data = read_preset(name)
    stages = data.get("stages") or {}
    if "ppo" not in stages:
        raise ConfigError("stage", f"preset {name!r} has no 'ppo' stage; it has {', '.join(stages)}")
    out: dict[str, Any] = {}
    for key, target in _PRESET_MODEL_KEYS.items():
        if key in (data.get("model") or {}):
            out[target] = data["model"][key]
    for key, target in _PRESET_TRAINING_KEYS.items():
        if key in (data.get("training") or {}):
            out[target] = data["training"][key]
    if out.get("device") == "auto":
        out["device"] = None
    out.update(stages["ppo"] or {})
    return out


def ppo_preset_config(name: str, *, prompt_dataset: Optional[str] = None,
                      overrides: Optional[Mapping[str, Any]] = None) -> PPOConfig:
    """The PPO config of preset ``name`` for ``prompt_dataset``, with ``overrides`` on top."""
    data = ppo_preset_data(name)
    if prompt_dataset:
        data["prompt_dataset"] = prompt_dataset
    data.update(overrides or {})
    return load_ppo_config(data)


# -- against the workspace --------------------------------------------------------------------
def resolve_workspace(cfg: PPOConfig, run_dir: Optional[Union[str, os.PathLike]] = None, *,
                      home: Optional[Union[str, os.PathLike]] = None) -> Optional[Path]:
    """``cfg.workspace`` (a relative one relative to the run's own workspace: ``home``, or the
    one holding ``run_dir``, ``WS/runs/RUN_ID``), else that workspace, else ``None``."""
    return workspace_folder(cfg.workspace, home if home is not None else run_home(run_dir))


def resolve_ref(ref: Optional[str], workspace: Optional[Union[str, os.PathLike]]) -> Optional[str]:
    """A model reference with ``./x`` (or a folder that exists in the workspace) made absolute
    against ``workspace``; hub ids and absolute folders unchanged."""
    if not ref or workspace is None:
        return ref
    ref = ref.strip()
    if ref.startswith(("./", "../")) or (not Path(ref).is_absolute() and (Path(workspace) / ref).is_dir()):
        return str((Path(workspace) / ref).resolve())
    return ref


#: A prompt as PPO samples it: plain text, or a conversation (``[{"role", "content"}, ...]``
#: ending with the turn to answer).
Prompt = Union[str, list]


def prompt_value(value: Any) -> Optional[Prompt]:
    """The prompt PPO samples for a stored prompt value: a non-blank string itself, or the
    whole conversation (system prompt and earlier turns kept) with any trailing assistant turns
    dropped; ``None`` when there is nothing to answer."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, list):
        turns = [m for m in value if isinstance(m, dict)]
        if len(turns) != len(value) or not all(isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                                               for m in turns):
            return None
        while turns and turns[-1]["role"] == "assistant":
            turns.pop()
        if not any(m["role"] == "user" and m["content"].strip() for m in turns):
            return None
        return [{"role": m["role"], "content": m["content"]} for m in turns]
    return None


def last_user_turn(prompt: Prompt) -> str:
    """The text of a prompt's last user turn (the prompt itself when it is plain text)."""
    if isinstance(prompt, str):
        return prompt
    return next(m["content"] for m in reversed(prompt) if m["role"] == "user")


def prompt_display(prompt: Prompt) -> str:
    """A prompt as one readable string (samples, logs): a conversation as ``role: content`` blocks."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in prompt)


def _record_prompt(rec: Any) -> Optional[Prompt]:
    if rec.prompt is not None:
        return prompt_value(rec.prompt)
    if rec.messages:  # an sft chat: everything before the last assistant turn
        return prompt_value(list(rec.messages))
    return None


def _manifest_of(ref: str) -> Optional[dict]:
    """The workbench.json of a model folder (or of the checkpoint holding a merged/ folder)."""
    from ..jobs.rundir import read_json

    folder = Path(ref)
    if not folder.is_dir():
        return None
    for candidate in (folder, folder.parent):
        manifest = read_json(candidate / "workbench.json")
        if isinstance(manifest, dict):
            return manifest
    return None


def training_style(ref: Optional[str], workspace: Any = None) -> tuple[Optional[str], str]:
    """``(style, why)``: whether model ``ref`` was trained on ``"conversational"`` or
    ``"standard"`` (plain text) data, from its checkpoint's manifest: the style it recorded, else
    the style of its dataset in ``workspace``. ``(None, why)`` when that cannot be known (a hub
    model, a folder from elsewhere, a deleted dataset)."""
    from ..store import datasets as ds_repo
    from ..store.workspace import Workspace

    manifest = _manifest_of(ref) if ref else None
    if manifest is None:
        return None, "not a workbench training output"
    name = manifest.get("dataset")
    if isinstance(manifest.get("conversational"), bool):
        style = "conversational" if manifest["conversational"] else "standard"
        return style, f"trained on {style} dataset {name!r}"
    if not name or workspace is None:
        return None, "its checkpoint does not say what data it was trained on"
    try:
        with Workspace.open(workspace) as ws:
            info = ds_repo.get_dataset(ws.conn, name)
    except WorkbenchError:
        return None, f"its dataset {name!r} is not in the workspace"
    return info.style, f"trained on {info.style} dataset {name!r}"


def resolve_format(fmt: str, ref: Optional[str], workspace: Any = None) -> tuple[Optional[str], str]:
    """``("chat" | "plain" | None, why)`` for a ``prompt_format``/``reward_format`` value: an
    explicit format itself, ``auto`` from :func:`training_style` (``None``: unknown, the engine
    then follows the tokenizer)."""
    if fmt != "auto":
        return fmt, "set in the config"
    style, why = training_style(ref, workspace)
    if style is None:
        return None, why
    return ("chat" if style == "conversational" else "plain"), why


#: The validation split: an eval set's prompts (``eval_dataset``), kept out of training.
EVAL_SPLIT = "validation"


def _dataset_fields(eval_set: bool) -> tuple[str, str]:
    """The config fields naming the dataset and its snapshot: the training prompts' or the eval set's."""
    return ("eval_dataset", "eval_snapshot") if eval_set else ("prompt_dataset", "snapshot")


def check_prompt_dataset(cfg: PPOConfig, workspace: Any, *, eval_set: bool = False) -> int:
    """Check ``cfg.prompt_dataset`` (and ``snapshot``), or with ``eval_set`` ``cfg.eval_dataset``
    (and ``eval_snapshot``), against the workspace (a :class:`~workbench.store.workspace.Workspace`
    or its folder) and return how many records it holds. Raises :class:`ConfigError` naming the
    field; an eval dataset without a validation split is one too."""
    from ..errors import NotFoundError
    from ..store import datasets as ds_repo
    from ..store.workspace import Workspace

    name_field, snap_field = _dataset_fields(eval_set)
    name, snapshot = getattr(cfg, name_field), getattr(cfg, snap_field)
    own = not isinstance(workspace, Workspace)
    try:
        ws = Workspace.open(workspace) if own else workspace
    except WorkbenchError as e:
        raise ConfigError("workspace", str(e)) from None
    try:
        try:
            info = ds_repo.get_dataset(ws.conn, name)
        except NotFoundError as e:
            raise ConfigError(name_field, str(e)) from None
        rows = info.rows
        if snapshot:
            try:
                rows = ds_repo.find_snapshot(ws.conn, info.name, snapshot).rows
            except WorkbenchError as e:
                raise ConfigError(snap_field, str(e)) from None
        elif eval_set and info.validation == 0:
            raise ConfigError(name_field, f"dataset {info.name!r} has no validation split to evaluate on "
                                          "(assign some records to it on the Datasets page)")
        if rows == 0:
            raise ConfigError(name_field, f"dataset {info.name!r} has no records")
        return rows
    finally:
        if own:
            ws.close()


def read_prompt_dataset(cfg: PPOConfig, workspace: Union[str, os.PathLike], *, note: str = "",
                        eval_set: bool = False) -> tuple[list[Prompt], str]:
    """``(prompts, snapshot_hash)``: the prompts of ``cfg.prompt_dataset`` from its snapshot
    ``cfg.snapshot``, or from one frozen now. Every record of the snapshot counts (both splits),
    except the validation split when the same dataset is the eval set. With ``eval_set``: the
    validation split of ``cfg.eval_dataset`` (snapshot ``cfg.eval_snapshot``). Records without a
    usable prompt are an error naming the record."""
    from ..store import datasets as ds_repo
    from ..store.workspace import Workspace

    name_field, snap_field = _dataset_fields(eval_set)
    name, snapshot = getattr(cfg, name_field), getattr(cfg, snap_field)
    if eval_set:
        keep = lambda split: split == EVAL_SPLIT  # noqa: E731
    elif cfg.eval_dataset == cfg.prompt_dataset:
        keep = lambda split: split != EVAL_SPLIT  # noqa: E731  (held out for the eval)
    else:
        keep = lambda split: True  # noqa: E731
    with Workspace.open(workspace) as ws:
        check_prompt_dataset(cfg, ws, eval_set=eval_set)
        info = ds_repo.get_dataset(ws.conn, name)
        if snapshot:
            snap = ds_repo.find_snapshot(ws.conn, info.name, snapshot)
        else:
            with ws.transaction() as conn:
                snap = ds_repo.freeze(conn, info.name, note=note)
        prompts = []
        for rec in ds_repo.iter_snapshot(ws.conn, info, snap):
            if not keep(rec.split):
                continue
            text = _record_prompt(rec)
            if text is None:
                raise WorkbenchError(f"dataset {info.name!r} record #{rec.id}: no prompt text to sample from")
            prompts.append(text)
    if not prompts:
        what = "validation records" if eval_set else "records to train on"
        raise ConfigError(name_field, f"snapshot {snap.hash[:12]} of {info.name!r} has no {what}")
    return prompts, snap.hash


def validate_ppo_before_load(cfg: PPOConfig, workspace: Optional[Union[str, os.PathLike]]) -> list[str]:
    """Check the models and the prompts before anything loads (what the panel and the job run):
    model folders hold config, weights and tokenizer; the prompt dataset exists and has records.
    Returns warnings that do not stop the run."""
    from ..models.refs import ModelError, check_model_ref

    cfg.validate()
    warnings: list[str] = []
    for name in ("policy_model", "reward_model"):
        ref = resolve_ref(getattr(cfg, name), workspace)
        if not ref:
            continue
        try:
            check_model_ref(ref, require_tokenizer=True)
        except ModelError as e:
            raise ConfigError(name, str(e)) from None
    if not cfg.reward_model:
        raise ConfigError("reward_model", "choose the reward model (the reward stage's output) to score "
                                          "responses with")
    if cfg.policy_adapter:
        folder = Path(resolve_ref(cfg.policy_adapter, workspace)).expanduser()
        if not (folder / "adapter_config.json").is_file():
            raise ConfigError("policy_adapter", f"{folder} is not a LoRA adapter folder (no adapter_config.json)")
    if cfg.prompt_dataset:
        if workspace is None:
            raise ConfigError("workspace", "not set, and there is no run folder to find the workspace from")
        check_prompt_dataset(cfg, workspace)
    elif isinstance(cfg.prompts, str):
        _check_prompt_file(cfg.prompts, "prompts", workspace)
    if cfg.eval_every and cfg.eval_dataset:
        if workspace is None:
            raise ConfigError("workspace", "not set, and there is no run folder to find the workspace from")
        check_prompt_dataset(cfg, workspace, eval_set=True)
    elif cfg.eval_every and isinstance(cfg.eval_prompts, str):
        _check_prompt_file(cfg.eval_prompts, "eval_prompts", workspace)
    return warnings


def prompt_file(spec: str, workspace: Optional[Union[str, os.PathLike]]) -> Path:
    """A ``prompts`` / ``eval_prompts`` JSONL path, a relative one taken relative to ``workspace``
    (the job runs in its run folder, so a relative path must not depend on the working folder)."""
    path = Path(spec).expanduser()
    if not path.is_absolute() and workspace is not None:
        path = Path(workspace) / path
    return path


def _check_prompt_file(spec: str, name: str, workspace: Optional[Union[str, os.PathLike]]) -> None:
    path = prompt_file(spec, workspace)
    if not path.is_file():
        raise ConfigError(name, f"prompt file {path} does not exist")
