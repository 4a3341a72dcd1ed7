"""Expected GPU memory of a training run, before it starts (no torch, no Qt).

The training panel shows this live beside a stage's form, so a run that
cannot fit is caught in the form rather than minutes into loading a model.
The numbers are estimates from the model's shape (hidden size, layers,
heads, KV heads, vocabulary, MLP size), read from the ``config.json`` of a
local model folder, or from :data:`KNOWN_MODELS` for common hub ids:

- **weights**: parameters x bytes per parameter (bf16/fp16 2, fp32 4;
  bitsandbytes 8-bit ~1 and 4-bit NF4 ~0.52 with its block constants; only
  the linear layers of the blocks are quantized, the embeddings and the
  output head stay 16-bit, which is why a 7B Qwen2.5 with its 152k
  vocabulary needs ~5.5 GB in 4-bit while a 7B Llama-2 needs ~3.9 GB);
- **adapters**, **gradients and optimizer**: LoRA ``r x (in + out)`` per
  targeted linear layer, kept in fp32 with fp32 gradients and two AdamW
  moments (16 bytes per trainable parameter); a full fine-tune keeps
  gradients and both moments in the weights' dtype for every parameter;
- **activations**: per token and layer the tensors autograd keeps (about
  ``8 x hidden + 2 x kv_dim + 4 x intermediate`` values with a fused
  attention kernel), or with gradient checkpointing one hidden state per
  layer plus one layer recomputed; plus the **logits** (the full-vocabulary
  scores, bf16 and their fp32 copy for the loss), which dominate for
  small models with large vocabularies;
- **PPO** adds the rollout **KV cache** (keys and values of every layer for
  ``batch_size`` sequences of prompt + response), the **value head** (or,
  with ``value_model: reward_model``, the separate **critic**: a LoRA
  adapter and the score head on the reward model's weights, with its own
  activations in each update), and the frozen **reward model** (its own
  shape and quantization); DPO with all weights training adds the frozen
  **reference** copy;
- **CUDA context and allocator slack**: ~0.75 GiB plus 5%.

Real usage varies with the attention kernel, sequence packing and the
allocator; the estimate aims to be within ~20% and errs high.
:func:`check_fit` compares it with the GPU the workspace's probe job found
(``runs/*probe*/probe.json``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from ..jobs.rundir import read_json as _read_json

GIB = 1024 ** 3
#: Written by the probe job (:mod:`workbench.jobs.probe` imports torch, so the name is repeated here).
PROBE_FILE = "probe.json"
#: CUDA context, cuBLAS workspaces and allocator slack.
CUDA_OVERHEAD_BYTES = int(0.75 * GIB)
ALLOCATOR_SLACK = 0.05
#: Bits per parameter of a bitsandbytes NF4 weight with double-quantized block constants.
NF4_BYTES = 4.127 / 8
INT8_BYTES = 1.0 + 4 / 4096  # int8 plus a per-row scale (LLM.int8())
#: Assumed prompt length of a PPO rollout (the config has no field for it).
PPO_PROMPT_TOKENS = 128

STAGES = ("sft", "reward", "dpo", "ppo")
_NON_GATED = {"gpt2", "gpt_neox", "gptj", "opt", "phi", "falcon", "bloom", "gpt_bigcode", "starcoder2"}
_LAYER_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs to know about a transformer decoder."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    vocab_size: int
    intermediate_size: int
    head_dim: int = 0  # 0: hidden_size // num_heads
    tie_word_embeddings: bool = False
    gated_mlp: bool = True
    attention_bias: bool = False
    name: str = field(default="", compare=False)
    source: str = field(default="", compare=False)  # where the shape came from, for the view

    @property
    def dim_head(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.dim_head

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.dim_head

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """``{module: (in_features, out_features)}`` of one block's linear layers (Llama names)."""
        h, i = self.hidden_size, self.intermediate_size
        shapes = {"q_proj": (h, self.q_dim), "k_proj": (h, self.kv_dim), "v_proj": (h, self.kv_dim),
                  "o_proj": (self.q_dim, h), "up_proj": (h, i), "down_proj": (i, h)}
        if self.gated_mlp:
            shapes["gate_proj"] = (h, i)
        return shapes

    @property
    def block_linear_params(self) -> int:
        """Parameters of the linear layers of all blocks (what 4/8-bit quantizes)."""
        per_layer = sum(a * b for a, b in self.linear_shapes().values())
        if self.attention_bias:
            per_layer += self.q_dim + 2 * self.kv_dim
        return per_layer * self.num_layers

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def other_params(self) -> int:
        """Norms (two per block and the final one): small, kept in 16-bit."""
        return (2 * self.num_layers + 1) * self.hidden_size

    def num_params(self, *, lm_head: bool = True) -> int:
        """All parameters; ``lm_head=False`` for a sequence classifier (a 1-output score head)."""
        head = 0
        if lm_head and not self.tie_word_embeddings:
            head = self.embedding_params
        elif not lm_head:
            head = self.hidden_size
        return self.block_linear_params + self.embedding_params + self.other_params + head


def _shape(name: str, h: int, layers: int, heads: int, kv: int, inter: int, vocab: int, *, tied: bool,
           gated: bool = True, bias: bool = False, head_dim: int = 0) -> ModelShape:
    return ModelShape(hidden_size=h, num_layers=layers, num_heads=heads, num_kv_heads=kv, vocab_size=vocab,
                      intermediate_size=inter, head_dim=head_dim, tie_word_embeddings=tied, gated_mlp=gated,
                      attention_bias=bias, name=name, source="built-in table")


#: Shapes of common hub models, keyed by :func:`_normalize_id` of the hub id (instruct and base
#: variants share a shape). Taken from each model's published ``config.json``.
KNOWN_MODELS: dict[str, ModelShape] = {s.name: s for s in (
    _shape("qwen2.5-0.5b", 896, 24, 14, 2, 4864, 151936, tied=True, bias=True),
    _shape("qwen2.5-1.5b", 1536, 28, 12, 2, 8960, 151936, tied=True, bias=True),
    _shape("qwen2.5-3b", 2048, 36, 16, 2, 11008, 151936, tied=True, bias=True),
    _shape("qwen2.5-7b", 3584, 28, 28, 4, 18944, 152064, tied=False, bias=True),
    _shape("qwen2.5-14b", 5120, 48, 40, 8, 13824, 152064, tied=False, bias=True),
    _shape("llama-3-8b", 4096, 32, 32, 8, 14336, 128256, tied=False),
    _shape("llama-3.1-8b", 4096, 32, 32, 8, 14336, 128256, tied=False),
    _shape("llama-3.2-1b", 2048, 16, 32, 8, 8192, 128256, tied=True),
    _shape("llama-3.2-3b", 3072, 28, 24, 8, 8192, 128256, tied=True),
    _shape("llama-2-7b", 4096, 32, 32, 32, 11008, 32000, tied=False),
    _shape("llama-2-13b", 5120, 40, 40, 40, 13824, 32000, tied=False),
    _shape("mistral-7b-v0.1", 4096, 32, 32, 8, 14336, 32000, tied=False),
    _shape("mistral-7b-v0.2", 4096, 32, 32, 8, 14336, 32000, tied=False),
    _shape("mistral-7b-v0.3", 4096, 32, 32, 8, 14336, 32768, tied=False),
    _shape("tinyllama-1.1b-v1.0", 2048, 22, 32, 4, 5632, 32000, tied=False),
    _shape("smollm2-135m", 576, 30, 9, 3, 1536, 49152, tied=True),
    _shape("smollm2-360m", 960, 32, 15, 5, 2560, 49152, tied=True),
    _shape("smollm2-1.7b", 2048, 24, 32, 32, 8192, 49152, tied=True),
    _shape("gemma-2-2b", 2304, 26, 8, 4, 9216, 256000, tied=True, head_dim=256),
    _shape("phi-3-mini-4k", 3072, 32, 32, 32, 8192, 32064, tied=False),
    _shape("gpt2", 768, 12, 12, 12, 3072, 50257, tied=True, gated=False),
)}


def _normalize_id(hub_id: str) -> str:
    """``Qwen/Qwen2.5-7B-Instruct`` -> ``qwen2.5-7b``: the name, lower case, without the
    instruct/chat markers and a leading ``meta-``."""
    name = hub_id.strip().rstrip("/").split("/")[-1].lower()
    name = re.sub(r"-(instruct|chat|it|base|hf)(?=-|$)", "", name)
    return name[5:] if name.startswith("meta-") else name


def known_shape(hub_id: str) -> Optional[ModelShape]:
    """The built-in shape of a hub model, or ``None``."""
    return KNOWN_MODELS.get(_normalize_id(hub_id))


def shape_from_config(config: Mapping[str, Any], name: str = "", source: str = "") -> ModelShape:
    """A :class:`ModelShape` from a transformers ``config.json`` (Llama-style or GPT-2 key names;
    a multimodal config's ``text_config``). Raises ``ValueError`` naming a missing key."""
    cfg = dict(config.get("text_config") or config)

    def pick(*keys: str, default: Any = None) -> Any:
        for key in keys:
            if cfg.get(key) is not None:
                return cfg[key]
        if default is None:
            raise ValueError(f"config.json has no {keys[0]}")
        return default

    model_type = str(cfg.get("model_type") or config.get("model_type") or "")
    h = int(pick("hidden_size", "n_embd", "d_model"))
    heads = int(pick("num_attention_heads", "n_head", "num_heads"))
    return ModelShape(
        hidden_size=h,
        num_layers=int(pick("num_hidden_layers", "n_layer", "num_layers")),
        num_heads=heads,
        num_kv_heads=int(pick("num_key_value_heads", "num_kv_heads", default=heads)),
        vocab_size=int(pick("vocab_size")),
        intermediate_size=int(pick("intermediate_size", "n_inner", "ffn_dim", default=4 * h)),
        head_dim=int(cfg.get("head_dim") or 0),
        # transformers' default is True; Llama-family configs write False when untied.
        tie_word_embeddings=bool(config.get("tie_word_embeddings", cfg.get("tie_word_embeddings", True))),
        gated_mlp=model_type not in _NON_GATED,
        attention_bias=bool(cfg.get("attention_bias", model_type == "qwen2")),
        name=name or model_type, source=source)


def _base_of(folder: Path) -> Optional[str]:
    """The base model a checkpoint or adapter folder was trained from, if it says."""
    manifest = _read_json(folder / "workbench.json") or {}
    base = manifest.get("base_model")
    if isinstance(base, dict) and base.get("id"):
        return str(base["id"])
    adapter = _read_json(folder / "adapter_config.json") or _read_json(folder / "adapter" / "adapter_config.json")
    if adapter and adapter.get("base_model_name_or_path"):
        return str(adapter["base_model_name_or_path"])
    state = _read_json(folder / "trainer_state.json") or {}
    if isinstance(state.get("config"), dict) and state["config"].get("policy_model"):
        return str(state["config"]["policy_model"])
    return None


def model_shape(ref: str, workspace: Optional[Union[str, os.PathLike]] = None, *,
                _depth: int = 0) -> Optional[ModelShape]:
    """The shape of model ``ref``: a local folder's ``config.json`` (relative folders are taken
    relative to ``workspace``), the base model of an adapter or checkpoint folder, or a known
    hub id. ``None`` when it cannot be told."""
    ref = (ref or "").strip()
    if not ref or _depth > 3:
        return None
    path = Path(ref).expanduser()
    if not path.is_absolute() and workspace is not None and (ref.startswith(("./", "../"))
                                                             or (Path(workspace) / ref).is_dir()):
        path = Path(workspace) / ref
    if path.is_dir():
        config = _read_json(path / "config.json")
        if config is not None:
            try:
                return shape_from_config(config, name=path.name, source=f"{path}/config.json")
            except (ValueError, TypeError, ZeroDivisionError):
                return None
        if (path / "merged" / "config.json").is_file():
            return model_shape(str(path / "merged"), workspace, _depth=_depth + 1)
        base = _base_of(path)
        return model_shape(base, workspace, _depth=_depth + 1) if base else None
    return known_shape(ref)


# -- the estimate -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Part:
    """One line of the breakdown."""

    key: str  # weights, adapters, optimizer, activations, logits, kv_cache, value_head, reward_model, ...
    label: str
    bytes: int
    detail: str = ""


@dataclass(frozen=True)
class Estimate:
    """The expected peak memory of a run, broken down; ``shape`` is ``None`` when the model is
    unknown (then ``parts`` is empty and ``notes`` says why)."""

    stage: str
    shape: Optional[ModelShape]
    parts: tuple[Part, ...] = ()
    notes: tuple[str, ...] = ()
    device: str = "cuda"  # "cpu" when the config trains on the CPU (then it is RAM)

    @property
    def total(self) -> int:
        return sum(p.bytes for p in self.parts)

    def part(self, key: str) -> int:
        """Bytes of the part ``key`` (0 when absent)."""
        return sum(p.bytes for p in self.parts if p.key == key)


def _weight_bytes(shape: ModelShape, quantization: Optional[str], dtype_bytes: int, *,
                  lm_head: bool = True) -> tuple[int, str]:
    total = shape.num_params(lm_head=lm_head)
    linear = shape.block_linear_params
    rest = total - linear
    if quantization == "4bit":
        return int(linear * NF4_BYTES + rest * 2), (f"{_count(total)} parameters: block layers in 4-bit NF4, "
                                                    "embeddings and head in 16-bit")
    if quantization == "8bit":
        return int(linear * INT8_BYTES + rest * 2), (f"{_count(total)} parameters: block layers in 8-bit, "
                                                     "embeddings and head in 16-bit")
    return total * dtype_bytes, f"{_count(total)} parameters in {_dtype_name(dtype_bytes)}"


def lora_params(shape: ModelShape, r: int, target_modules: Union[str, list, tuple]) -> tuple[int, list[str]]:
    """``(parameters, module names)`` of LoRA rank ``r`` on ``target_modules`` (``all-linear``,
    a comma-separated string or a list) over every block."""
    shapes = shape.linear_shapes()
    if isinstance(target_modules, str):
        names = list(shapes) if target_modules.strip() == "all-linear" else \
            [m.strip() for m in target_modules.split(",") if m.strip()]
    else:
        names = [str(m) for m in target_modules]
    used = [n for n in names if n in shapes]
    per_layer = sum(r * (shapes[n][0] + shapes[n][1]) for n in used)
    return per_layer * shape.num_layers, used


def _activation_bytes(shape: ModelShape, tokens: int, dtype_bytes: int, checkpointing: bool) -> int:
    per_token_layer = 8 * shape.hidden_size + 2 * shape.kv_dim + (4 if shape.gated_mlp else 2) \
        * shape.intermediate_size
    if checkpointing:  # one hidden state per layer, plus one layer recomputed at a time
        return tokens * dtype_bytes * (shape.num_layers * shape.hidden_size + per_token_layer)
    return tokens * dtype_bytes * shape.num_layers * per_token_layer


def _count(n: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(int(n))


def _dtype_name(dtype_bytes: int) -> str:
    return {2: "bf16", 4: "fp32", 1: "8-bit"}.get(dtype_bytes, f"{dtype_bytes} bytes")


def format_bytes(n: float) -> str:
    """``1.93 GiB``, ``512 MiB``, ``12 KiB``."""
    for unit, size in (("GiB", GIB), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}" if unit != "GiB" else f"{n / size:.2f} GiB"
    return f"{int(n)} B"


@dataclass
class Setup:
    """The inputs of :func:`estimate`, with the defaults of the stage configs."""

    stage: str = "sft"
    model: str = ""
    quantization: Optional[str] = None
    lora: bool = True
    lora_r: int = 16
    target_modules: Union[str, list] = "all-linear"
    gradient_checkpointing: bool = False
    batch_size: int = 4  # examples (pairs for reward/DPO, prompts for a PPO rollout)
    max_length: int = 1024  # tokens per sequence (PPO: prompt + max_new_tokens)
    device: str = "auto"
    dtype: str = "auto"
    # PPO only
    mini_batch_size: int = 8
    max_new_tokens: int = 32
    reward_model: str = ""
    reward_quantization: Optional[str] = None
    value_model: str = "shared"  # or "reward_model": a separate critic on the reward model's weights
    prompt_tokens: int = PPO_PROMPT_TOKENS
    notes: list = field(default_factory=list)


def _get(data: Mapping, key: str, default: Any, kind: type) -> Any:
    value = data.get(key, default) if isinstance(data, Mapping) else default
    if value is None or value == "":
        return default
    try:
        if kind is bool:
            return bool(value)
        return kind(value)
    except (TypeError, ValueError):
        return default


def setup_from_config(stage: str, config: Mapping[str, Any]) -> Setup:
    """A :class:`Setup` from a stage config as plain data (what the form holds, maybe
    half-filled or invalid: missing or unreadable values take the defaults)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    if stage == "ppo":
        c = config
        device = _get(c, "device", "auto", str)
        return Setup(stage=stage, model=_get(c, "policy_model", "", str),
                     quantization=_get(c, "quantization", None, str), lora=_get(c, "lora", True, bool),
                     lora_r=max(1, _get(c, "lora_r", 16, int)),
                     target_modules=c.get("lora_target_modules") or "all-linear",
                     gradient_checkpointing=_get(c, "gradient_checkpointing", False, bool),
                     batch_size=max(1, _get(c, "batch_size", 16, int)),
                     # What goes through the model at once in an update: one micro-batch.
                     mini_batch_size=max(1, _get(c, "mini_batch_size", 8, int)
                                         // max(1, _get(c, "gradient_accumulation_steps", 1, int))),
                     max_new_tokens=max(1, _get(c, "max_new_tokens", 32, int)),
                     device="cpu" if device.startswith("cpu") else "cuda" if device.startswith("cuda") else "auto",
                     dtype=_get(c, "dtype", "auto", str),
                     reward_model=_get(c, "reward_model", "", str),
                     reward_quantization=_get(c, "reward_quantization", None, str),
                     value_model=_get(c, "value_model", "shared", str))
    m = config.get("model") if isinstance(config.get("model"), Mapping) else {}
    t = config.get("training") if isinstance(config.get("training"), Mapping) else {}
    return Setup(stage=stage, model=_get(m, "ref", "", str), quantization=_get(m, "quantization", None, str),
                 lora=_get(m, "lora", True, bool), lora_r=max(1, _get(m, "lora_r", 16, int)),
                 target_modules=m.get("lora_target_modules") or "all-linear",
                 gradient_checkpointing=_get(m, "gradient_checkpointing", False, bool),
                 batch_size=max(1, _get(t, "batch_size", 4, int)), max_length=max(1, _get(t, "max_length", 1024, int)),
                 device=_get(t, "device", "auto", str))


def estimate(setup: Setup, workspace: Optional[Union[str, os.PathLike]] = None, *,
             shape: Optional[ModelShape] = None, reward_shape: Optional[ModelShape] = None) -> Estimate:
    """The expected peak memory of ``setup`` (see the module docstring for the model).

    ``shape`` / ``reward_shape`` override what :func:`model_shape` finds for the setup's models.
    """
    notes: list[str] = []
    shape = shape or model_shape(setup.model, workspace)
    device = "cpu" if setup.device == "cpu" else "cuda"
    if shape is None:
        notes.append(f"cannot tell the size of {setup.model!r}: not a model folder with config.json and not "
                     "a known hub id" if setup.model else "choose a model to see its memory estimate")
        return Estimate(stage=setup.stage, shape=None, notes=tuple(notes), device=device)
    # GPU training runs in bf16 (fp16 on older GPUs, same size); the CPU trains in fp32.
    dtype_bytes = {"fp32": 4, "bf16": 2, "fp16": 2}.get(setup.dtype, 4 if device == "cpu" else 2)
    quant = setup.quantization if setup.quantization in ("4bit", "8bit") else None
    lora = setup.lora or quant is not None
    reward_head = setup.stage == "reward"
    parts: list[Part] = []

    w_bytes, w_detail = _weight_bytes(shape, quant, dtype_bytes, lm_head=not reward_head)
    parts.append(Part("weights", "Weights", w_bytes, w_detail))

    # Trainable parameters: LoRA adapters (fp32 weight, gradient and two AdamW moments), or all.
    if lora:
        n_lora, used = lora_params(shape, setup.lora_r, setup.target_modules)
        if not used:
            notes.append(f"none of the LoRA target modules {setup.target_modules!r} is a layer this "
                         f"estimate knows ({', '.join(shape.linear_shapes())}): adapters not counted")
        parts.append(Part("adapters", "LoRA adapters", n_lora * 4,
                          f"r={setup.lora_r} on {len(used)} layer types x {shape.num_layers} blocks: "
                          f"{_count(n_lora)} parameters in fp32"))
        trainable, per_param = n_lora, 12
        detail = f"fp32 gradients and 2 AdamW moments of {_count(n_lora)} adapter parameters"
        if reward_head:
            trainable += shape.hidden_size
    else:
        trainable = shape.num_params(lm_head=not reward_head)
        per_param = 3 * dtype_bytes
        detail = f"all {_count(trainable)} parameters train: {_dtype_name(dtype_bytes)} gradients and 2 AdamW moments"
    parts.append(Part("optimizer", "Gradients + optimizer", trainable * per_param, detail))

    if setup.stage == "ppo":
        _ppo_parts(setup, shape, dtype_bytes, parts, notes, workspace, reward_shape)
        if not lora:  # lora: false, all weights train against a frozen copy
            parts.append(_reference_part(shape, dtype_bytes))
    else:
        # Reward and DPO forward the chosen and the rejected response of each pair together.
        seqs = setup.batch_size * (2 if setup.stage in ("reward", "dpo") else 1)
        tokens = seqs * setup.max_length
        parts.append(Part("activations", "Activations", _activation_bytes(
            shape, tokens, dtype_bytes, setup.gradient_checkpointing),
            f"{seqs} sequences x {setup.max_length} tokens x {shape.num_layers} layers"
            + (", gradient checkpointing" if setup.gradient_checkpointing else "")))
        if not reward_head:
            parts.append(Part("logits", "Logits", tokens * shape.vocab_size * (dtype_bytes + 4),
                              f"{seqs} x {setup.max_length} tokens x {shape.vocab_size:,} vocabulary "
                              "(and the fp32 copy for the loss)"))
        if setup.stage == "dpo" and not lora:
            parts.append(_reference_part(shape, dtype_bytes))
        notes.append(f"assumes every sequence is {setup.max_length} tokens long (max_length); "
                     "shorter data needs less")
    if device == "cuda":
        rest = sum(p.bytes for p in parts)
        parts.append(Part("overhead", "CUDA context + allocator", int(CUDA_OVERHEAD_BYTES + ALLOCATOR_SLACK * rest),
                          "CUDA context, kernels' workspaces and fragmentation"))
    else:
        notes.append("trains on the CPU: these figures are RAM, in fp32")
    return Estimate(stage=setup.stage, shape=shape, parts=tuple(parts), notes=tuple(notes), device=device)


def _reference_part(shape: ModelShape, dtype_bytes: int) -> Part:
    ref_bytes, _ = _weight_bytes(shape, None, dtype_bytes)
    return Part("reference", "Reference model", ref_bytes, "a frozen copy of the starting weights (with LoRA "
                "the reference is the same weights with the adapter off)")


def _ppo_parts(setup: Setup, shape: ModelShape, dtype_bytes: int, parts: list, notes: list,
               workspace: Any, reward_shape: Optional[ModelShape]) -> None:
    total_len = setup.prompt_tokens + setup.max_new_tokens
    mini = min(setup.mini_batch_size, setup.batch_size)
    rshape = reward_shape or (model_shape(setup.reward_model, workspace) if setup.reward_model else None)
    if rshape is None:
        rshape = shape
        notes.append("reward model size unknown: assumed the size of the policy")
    if setup.value_model == "reward_model":
        # The critic's body is the reward model's weights (counted once, below); it trains a LoRA
        # adapter of the policy's rank and the score head, and its forward and backward run beside
        # the policy's in every update.
        n_lora, used = lora_params(rshape, setup.lora_r, setup.target_modules)
        n_critic = n_lora + rshape.hidden_size + 1
        parts.append(Part("critic", "Critic", n_critic * 16,
                          f"LoRA r={setup.lora_r} on {len(used)} layer types x {rshape.num_layers} blocks of the "
                          f"reward model and its score head: {_count(n_critic)} parameters in fp32 with gradients "
                          "and 2 AdamW moments"))
        parts.append(Part("critic_activations", "Critic activations", _activation_bytes(
            rshape, mini * total_len, dtype_bytes, setup.gradient_checkpointing),
            f"minibatch of {mini} x {total_len} tokens through the reward model's {rshape.num_layers} layers"))
    else:
        parts.append(Part("value_head", "Value head", (shape.hidden_size + 1) * 16,
                          "one linear layer on the last hidden state (fp32, with its optimizer state)"))
    parts.append(Part("kv_cache", "Rollout KV cache",
                      2 * shape.num_layers * shape.kv_dim * total_len * setup.batch_size * dtype_bytes,
                      f"keys and values of {setup.batch_size} sequences x {total_len} tokens x "
                      f"{shape.num_layers} layers"))
    parts.append(Part("activations", "Activations", _activation_bytes(
        shape, mini * total_len, dtype_bytes, setup.gradient_checkpointing),
        f"minibatch of {mini} x {total_len} tokens" + (", gradient checkpointing"
                                                       if setup.gradient_checkpointing else "")))
    # Logits of the response tokens only: scaled copy, fp32 log-softmax, softmax for the entropy.
    parts.append(Part("logits", "Logits", mini * (setup.max_new_tokens + 1) * shape.vocab_size
                      * (2 * dtype_bytes + 8), f"{mini} x {setup.max_new_tokens} response tokens x "
                      f"{shape.vocab_size:,} vocabulary"))
    rq = setup.reward_quantization if setup.reward_quantization in ("4bit", "8bit") else None
    r_bytes, r_detail = _weight_bytes(rshape, rq, dtype_bytes, lm_head=False)
    critic_body = "; the critic's body" if setup.value_model == "reward_model" else ""
    parts.append(Part("reward_model", "Reward model", r_bytes, f"frozen{critic_body}; {r_detail}"))
    notes.append(f"assumes prompts of about {setup.prompt_tokens} tokens")


def estimate_config(stage: str, config: Mapping[str, Any],
                    workspace: Optional[Union[str, os.PathLike]] = None) -> Estimate:
    """:func:`estimate` of a stage config given as plain data (see :func:`setup_from_config`)."""
    return estimate(setup_from_config(stage, config), workspace)


# -- the GPU --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GpuInfo:
    """What the probe job found (``name`` ``None``: no CUDA GPU)."""

    name: Optional[str]
    total_memory: Optional[int]
    free_memory: Optional[int]
    path: Optional[Path] = None
    time: Optional[float] = None


def read_probe(workspace: Union[str, os.PathLike]) -> Optional[GpuInfo]:
    """The newest ``runs/*probe*/probe.json`` of the workspace, or ``None`` when no probe ran."""
    runs = Path(workspace) / "runs"
    best: Optional[tuple[float, Path]] = None
    try:
        entries = list(os.scandir(runs))
    except OSError:
        return None
    for entry in entries:
        if "probe" not in entry.name or entry.name.startswith("."):
            continue
        path = Path(entry.path) / PROBE_FILE
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue
        if best is None or mtime > best[0]:
            best = (mtime, path)
    if best is None:
        return None
    data = _read_json(best[1])
    if data is None:
        return None
    return GpuInfo(name=data.get("gpu_name"), total_memory=data.get("total_memory"),
                   free_memory=data.get("free_memory"), path=best[1], time=data.get("time"))


@dataclass(frozen=True)
class Fit:
    """Whether an estimate fits the GPU: ``level`` is ``ok``, ``tight``, ``over``, ``cpu``
    (no CUDA GPU, or the config trains on the CPU) or ``unknown`` (no probe yet, or no estimate)."""

    level: str
    message: str


def check_fit(est: Estimate, gpu: Optional[GpuInfo]) -> Fit:
    """Compare ``est`` with the probed GPU; ``over`` when it exceeds the GPU's memory,
    ``tight`` above 90% of it."""
    if est.shape is None:
        note = est.notes[0] if est.notes else "unknown model"
        return Fit("unknown", note[:1].upper() + note[1:])
    need = format_bytes(est.total)
    if est.device == "cpu":
        return Fit("cpu", f"trains on the CPU: about {need} of RAM")
    if gpu is None:
        return Fit("unknown", f"needs about {need}; the GPU is not known yet (detect it to compare)")
    if not gpu.name or not gpu.total_memory:
        return Fit("cpu", f"needs about {need} of GPU memory, but this machine has no CUDA GPU: "
                          "the job will run on the CPU (slowly)")
    total = format_bytes(gpu.total_memory)
    if est.total > gpu.total_memory:
        return Fit("over", f"needs about {need} but the {gpu.name} has {total}: it will not fit. Load the "
                           "model in 4-bit, lower the batch size or max length, or turn on gradient "
                           "checkpointing")
    if est.total > 0.9 * gpu.total_memory:
        return Fit("tight", f"needs about {need} of the {gpu.name}'s {total}: tight, it may run out of "
                            "memory on long batches")
    return Fit("ok", f"needs about {need} of the {gpu.name}'s {total}")
