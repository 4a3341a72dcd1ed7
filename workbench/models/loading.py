"""Loading tokenizers and models for training and generation, with 4/8-bit and LoRA.

Everything here runs in job processes. torch, transformers, peft and
bitsandbytes are imported inside the functions, so importing this module
stays cheap. Every loader checks the :class:`~workbench.models.refs.ModelRef`
first (cheap, names the missing file) and turns ``from_pretrained``'s
failures into one-line :class:`~workbench.models.refs.ModelError` messages,
e.g. ``could not download Qwen/Qwen2.5-0.5B-Instruct: no network access;
use a local folder``.

Weights load with ``use_safetensors=True`` unless the caller allows pickle
files (see :func:`~workbench.models.refs.check_model_ref`).
"""

from __future__ import annotations

import importlib.util
import os
import platform
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union

from .refs import ModelError, ModelRef, check_model_ref

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

RefLike = Union[ModelRef, str, "os.PathLike[str]"]
QUANTIZATIONS = (None, "4bit", "8bit")
PADDING_SIDES = ("left", "right")

# huggingface_hub errors, matched by class name so this module needs no import of it.
_NO_NETWORK = {"LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectionError", "ConnectTimeout",
               "ConnectError", "ProxyError", "Timeout", "ReadTimeout"}


def pick_device(device: Optional[str] = None) -> str:
    """``device`` as given, else ``"cuda"`` when a GPU is usable, else ``"cpu"``."""
    if device:
        return str(device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(device: Optional[Union[str, "torch.device"]] = None) -> "torch.dtype":
    """The compute dtype for ``device``: bf16 on a GPU that supports it, else fp16 on
    CUDA, fp32 on the CPU (bf16 autocast is slower than fp32 on most CPUs)."""
    import torch

    kind = torch.device(pick_device(str(device) if device is not None else None)).type
    if kind == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _dtype(value: Union[str, "torch.dtype", None], device: str) -> "torch.dtype":
    import torch

    if value is None or value == "auto":
        return pick_dtype(device)
    if isinstance(value, torch.dtype):
        return value
    names = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
             "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}
    if value not in names:
        raise ModelError(f"unknown dtype {value!r}: expected one of {', '.join(names)}")
    return names[value]


def _walk_causes(err: BaseException):
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _explain_load_error(ref: ModelRef, what: str, err: Exception) -> ModelError:
    """A one-line ModelError for a failed ``from_pretrained``."""
    if not ref.is_local:
        names = {cls.__name__ for e in _walk_causes(err) for cls in type(e).__mro__}
        text = str(err)
        if "GatedRepoError" in names:
            return ModelError(f"could not download {ref}: the model is gated; accept its license on "
                              "huggingface.co and log in, or use a local folder")
        if "RepositoryNotFoundError" in names:
            return ModelError(f"could not download {ref}: no such model on the hub (or it is private); "
                              "check the id, or use a local folder")
        if "RevisionNotFoundError" in names:
            return ModelError(f"could not download {ref}: revision {ref.revision!r} does not exist")
        if names & _NO_NETWORK or "couldn't connect" in text:
            offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") not in (None, "", "0") else ""
            return ModelError(f"could not download {ref}: no network access{offline} and it is not in the "
                              "local cache; use a local folder")
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return ModelError(f"could not load {what} from {ref}: {first_line}")


def _from_pretrained(loader: Callable[..., Any], ref: ModelRef, what: str, **kwargs: Any) -> Any:
    try:
        return loader(ref.resolve(), revision=None if ref.is_local else ref.revision,
                      trust_remote_code=ref.trust_remote_code, **kwargs)
    except ModelError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, ImportError) as err:
        raise _explain_load_error(ref, what, err) from err


def has_chat_template(tokenizer: Any) -> bool:
    """True when the tokenizer can render chat messages."""
    return bool(getattr(tokenizer, "chat_template", None))


def ensure_chat_template(tokenizer: Any, ref: RefLike) -> None:
    """Raise a clear ModelError when chat data meets a tokenizer without a chat template."""
    if not has_chat_template(tokenizer):
        raise ModelError(
            f"the tokenizer of {ModelRef.coerce(ref)} has no chat template, but the dataset holds chat "
            "messages: use a chat/instruct model, a tokenizer folder with chat_template.jinja, or plain-text data")


def load_tokenizer(ref: RefLike, *, require_chat_template: bool = False,
                   padding_side: str = "right") -> Any:
    """Load the tokenizer of ``ref``, ready for batching.

    A missing pad token is set to the EOS token (most causal LMs ship
    without one). ``padding_side`` is ``"right"`` for training and
    ``"left"`` for batched generation. With ``require_chat_template`` (the
    dataset holds chat messages) a tokenizer without a chat template is an
    error here rather than a confusing one deep inside a trainer.
    """
    if padding_side not in PADDING_SIDES:
        raise ModelError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    ref = check_model_ref(ref, require_weights=False)
    from transformers import AutoTokenizer

    tokenizer = _from_pretrained(AutoTokenizer.from_pretrained, ref, "the tokenizer")
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelError(f"the tokenizer of {ref} has neither a pad nor an EOS token; cannot pad batches")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    if require_chat_template:
        ensure_chat_template(tokenizer, ref)
    return tokenizer


def check_quantization_available(quantization: Optional[str], device: Optional[str] = None) -> None:
    """Raise a clear ModelError when ``quantization`` cannot run here, before any model loads.

    ``None`` always passes. ``"4bit"``/``"8bit"`` need bitsandbytes, which
    has no macOS support here; the check imports it and quantizes a small
    layer on ``device`` (a few milliseconds), so a broken install or an
    unsupported device fails now rather than minutes into loading.
    """
    if quantization not in QUANTIZATIONS:
        raise ModelError(f"unknown quantization {quantization!r}: expected none, '4bit' or '8bit'")
    if quantization is None:
        return
    if platform.system() == "Darwin":
        raise ModelError(f"{quantization} quantization needs bitsandbytes, which does not run on macOS; "
                         "turn quantization off")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelError(f"{quantization} quantization needs bitsandbytes, which is not installed: "
                         "pip install bitsandbytes, or turn quantization off")
    dev = pick_device(device)
    try:
        import bitsandbytes as bnb
        import torch

        if quantization == "4bit":
            layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=torch.float32, quant_type="nf4")
        else:
            layer = bnb.nn.Linear8bitLt(64, 64, bias=False, has_fp16_weights=False)
        layer = layer.to(dev)
        with torch.no_grad():
            layer(torch.zeros(1, 64, device=dev))
    except Exception as err:  # noqa: BLE001 - any failure means "cannot run here"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"{quantization} quantization is not available on {dev}: bitsandbytes failed "
                         f"({type(err).__name__}: {first}); turn quantization off") from err


def _bnb_config(quantization: str, dtype: "torch.dtype") -> Any:
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                  bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype)
    return BitsAndBytesConfig(load_in_8bit=True)


def _load_model(auto_cls: Any, ref: RefLike, what: str, *, quantization: Optional[str], device: Optional[str],
                dtype: Any, allow_pickle: bool, **extra: Any) -> Any:
    if quantization not in QUANTIZATIONS:
        raise ModelError(f"unknown quantization {quantization!r}: expected none, '4bit' or '8bit'")
    ref = check_model_ref(ref, allow_pickle=allow_pickle, require_tokenizer=False)
    dev = pick_device(device)
    check_quantization_available(quantization, dev)
    torch_dtype = _dtype(dtype, dev)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "use_safetensors": None if allow_pickle else True, **extra}
    if quantization:
        kwargs["quantization_config"] = _bnb_config(quantization, torch_dtype)
        kwargs["device_map"] = {"": _device_map_target(dev)}
    model = _from_pretrained(auto_cls.from_pretrained, ref, what, **kwargs)
    if quantization == "4bit":
        keep_4bit_trainable_on_cpu(model)
    if not quantization:
        model.to(dev)
    return model


def keep_4bit_trainable_on_cpu(model: Any) -> None:
    """Stop bitsandbytes from repacking 4-bit weights for CPU inference; undo it where done.

    On CPUs with AVX512-BF16, bitsandbytes 0.50 converts a ``Linear4bit``
    weight to a CPU-only packed layout the first time the layer runs in eval
    mode without grad (generation), and from then on always multiplies with
    ``gemv_4bit``, which has no autograd kernel: later training steps run,
    but gradients through every 4-bit layer are silently dropped (measured:
    LoRA grads in the first layer came out ~40% too small). PPO generates and
    trains on the same model, so the workbench keeps the standard layout:
    a little slower CPU generation, correct gradients. No-op on GPU models.
    """
    inverse = None
    for module in model.modules():
        if not hasattr(module, "support_avx512bf16_for_cpu"):
            continue
        module.support_avx512bf16_for_cpu = False
        weight = getattr(module, "weight", None)
        state = getattr(weight, "quant_state", None)
        if state is not None and getattr(state, "packing_format_for_cpu", False):
            if inverse is None:
                from bitsandbytes.nn.modules import _convert_weight_packed_for_cpu_inverse as inverse
            weight.data, weight.quant_state = inverse(weight.data, state)


def _device_map_target(device: str) -> str:
    """``"cuda"`` pinned to the current GPU index: bitsandbytes places weights at load time."""
    import torch

    target = torch.device(device)
    if target.type == "cuda" and target.index is None:
        target = torch.device("cuda", torch.cuda.current_device())
    return str(target)


def _enable_checkpointing(model: Any) -> None:
    # transformers 5.23 renamed gradient to activation checkpointing; keep both spellings working.
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    enable()
    if getattr(model.config, "use_cache", None):
        model.config.use_cache = False  # the KV cache is useless with recomputation, and warns


def load_causal_lm(ref: RefLike, *, quantization: Optional[str] = None, device: Optional[str] = None,
                   dtype: Any = None, gradient_checkpointing: bool = False, allow_pickle: bool = False) -> Any:
    """Load ``ref`` as a causal LM (``AutoModelForCausalLM``).

    ``quantization`` is ``None``, ``"4bit"`` (NF4, double quantization,
    compute in ``dtype``: QLoRA) or ``"8bit"``; availability is checked
    before loading. ``device`` defaults to CUDA when present, ``dtype`` to
    :func:`pick_dtype`. ``gradient_checkpointing`` trades compute for
    memory (and turns the KV cache off). Pickle weights load only with
    ``allow_pickle``.
    """
    from transformers import AutoModelForCausalLM

    model = _load_model(AutoModelForCausalLM, ref, "the model", quantization=quantization, device=device,
                        dtype=dtype, allow_pickle=allow_pickle)
    if gradient_checkpointing:
        _enable_checkpointing(model)
    return model


def load_reward_model(ref: RefLike, *, quantization: Optional[str] = None, device: Optional[str] = None,
                      dtype: Any = None, allow_pickle: bool = False, pad_token_id: Optional[int] = None) -> Any:
    """Load ``ref`` as a scalar reward model (``AutoModelForSequenceClassification``, one label).

    From a causal-LM checkpoint (an SFT model) the ``score`` head starts
    random. The config's ``pad_token_id`` is how the model finds each
    sequence's last token, so it is always set: to ``pad_token_id`` when
    given, else kept from the config, else taken from the tokenizer.
    """
    from transformers import AutoModelForSequenceClassification

    model = _load_model(AutoModelForSequenceClassification, ref, "the reward model", quantization=quantization,
                        device=device, dtype=dtype, allow_pickle=allow_pickle, num_labels=1)
    if pad_token_id is None and model.config.pad_token_id is None:
        tokenizer = load_tokenizer(ref)
        pad_token_id = tokenizer.pad_token_id
    if pad_token_id is not None:
        model.config.pad_token_id = pad_token_id
    return model


def is_quantized(model: Any) -> bool:
    """True for a model loaded in 4 or 8 bit."""
    return bool(getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False)
                or getattr(model, "hf_quantizer", None) is not None)


def apply_lora(model: Any, *, r: int = 16, alpha: int = 32, dropout: float = 0.05,
               target_modules: Union[str, Sequence[str]] = "all-linear",
               gradient_checkpointing: bool = False) -> Any:
    """Wrap ``model`` with fresh LoRA adapters (peft); the base weights are frozen.

    ``target_modules`` is ``"all-linear"`` (every linear layer but the
    output head) or a list of module names (``["q_proj", "v_proj"]``). A
    quantized model first goes through ``prepare_model_for_kbit_training``
    (norms in fp32). A sequence-classification model keeps
    its ``score`` head trainable.
    """
    if r <= 0 or alpha <= 0:
        raise ModelError(f"LoRA rank and alpha must be positive, got r={r}, alpha={alpha}")
    if not 0 <= dropout < 1:
        raise ModelError(f"LoRA dropout must be in [0, 1), got {dropout}")
    if isinstance(target_modules, str) and target_modules != "all-linear":
        target_modules = [target_modules]
    if not isinstance(target_modules, str):
        target_modules = list(target_modules)
        if not target_modules:
            raise ModelError("LoRA target_modules is empty: give 'all-linear' or module names like q_proj")
        names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        unknown = [m for m in target_modules if m not in names]
        if unknown:
            linear = sorted({name.rsplit(".", 1)[-1] for name, mod in model.named_modules()
                             if type(mod).__name__.startswith("Linear")})
            raise ModelError(f"LoRA target modules {unknown} are not in the model; its linear layers are "
                             f"{', '.join(linear)}")

    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if is_quantized(model):
        keep_4bit_trainable_on_cpu(model)
        # Checkpointing is enabled below, not by peft: peft calls the deprecated
        # gradient_checkpointing_enable with reentrant checkpointing.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if gradient_checkpointing:
        _enable_checkpointing(model)  # also makes the input embeddings' output require grad
    seq_cls = type(model).__name__.endswith("ForSequenceClassification")
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules,
                        task_type="SEQ_CLS" if seq_cls else "CAUSAL_LM", bias="none")
    return get_peft_model(model, config)


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = total = 0
    for p in model.parameters():
        n = p.numel()
        total += n
        if p.requires_grad:
            trainable += n
    return trainable, total
