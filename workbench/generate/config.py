"""The ``generate`` stage's config: which model, which prompts, how to sample.

Cheap to import (no torch, no Qt): the ranking view's generation and
comparison dialogs build and check a config with it before starting the
job. ``config.yaml`` of a ``generate`` run holds these keys at the top
level, next to ``stage: generate``.

Exactly one prompt source: ``prompt_dataset`` (a workspace dataset: its
records' prompts; prompts generated for a record are reused by later runs,
so a second model's candidates join the same queue items), ``prompt_tag``
(prompts already in the workspace with that tag) or ``prompts`` (a list of
texts, stored as prompts tagged ``tag``).

With ``model_b`` the job samples both models on the same prompts with the
same seeds (one after the other, so only one model is in memory): a blind
before/after comparison. Each model's candidates carry a ``generation``
source naming the run and the arm (``a`` or ``b``).
"""

from __future__ import annotations

import difflib
import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional, Union

from ..errors import short_repr
from ..train.config import ConfigError

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "bf16", "fp16", "fp32")
QUANTIZATIONS = (None, "4bit", "8bit")


def _m(text: str, **extra: Any) -> dict:
    return {"help": text, **extra}


@dataclass
class GenerateConfig:
    """Everything a ``generate`` job needs."""

    # -- models
    model: str = field(default="", metadata=_m(
        "The model to sample from: a hub id, a local model folder, or a run (its latest checkpoint) or "
        "checkpoint folder; a LoRA adapter is applied to its base model."))
    model_b: Optional[str] = field(default=None, metadata=_m(
        "A second model for a blind comparison: the first model's responses are arm A (before), "
        "this one's arm B (after). Same prompts, same seeds."))
    # -- prompts
    prompt_dataset: Optional[str] = field(default=None, metadata=_m(
        "A workspace dataset whose records' prompts to answer (prompts, SFT or preference)."))
    prompt_tag: Optional[str] = field(default=None, metadata=_m(
        "Answer the workspace's prompts that carry this tag."))
    prompts: Optional[list[str]] = field(default=None, metadata=_m("Prompt texts to answer."))
    tag: str = field(default="", metadata=_m(
        "Tag given to prompts this run creates (default: the dataset's name, else 'generated'); "
        "a ranking queue over that tag follows this run."))
    limit: int = field(default=0, metadata=_m("Answer at most this many distinct prompts (0: all)."))
    # -- sampling
    n: int = field(default=4, metadata=_m("Responses per prompt (per model)."))
    temperature: float = field(default=0.8, metadata=_m(
        "Sampling temperature; 0 is greedy decoding (then n must be 1)."))
    top_p: float = field(default=0.95, metadata=_m("Nucleus sampling: keep the smallest set of tokens "
                                                   "whose probability adds up to this (1 keeps all)."))
    max_new_tokens: int = field(default=256, metadata=_m("Longest response, in tokens."))
    seed: int = field(default=0, metadata=_m(
        "Random seed. Each batch of prompts is seeded from it, so both models of a comparison "
        "(and a resumed run) draw the same random numbers."))
    batch_size: int = field(default=8, metadata=_m("Prompts per generation batch (and per commit)."))
    chat_template: bool = field(default=True, metadata=_m(
        "Wrap plain-text prompts as a user message in the model's chat template, when it has one."))
    # -- hardware
    device: str = field(default="auto", metadata=_m("Where to run: auto (a GPU when there is one), cpu, cuda.",
                                                    choices=DEVICES))
    dtype: str = field(default="auto", metadata=_m("Weights precision (auto: bf16/fp16 on a GPU, fp32 on CPU).",
                                                   choices=DTYPES))
    quantization: Optional[str] = field(default=None, metadata=_m(
        "Load the weights in 4 or 8 bit (bitsandbytes) to fit a large model.", choices=QUANTIZATIONS))
    workspace: Optional[str] = field(default=None, metadata=_m(
        "The workspace folder (default: the one holding the run)."))

    @classmethod
    def from_dict(cls, data: dict) -> "GenerateConfig":
        """A checked config from plain data (``config.yaml`` without ``stage``); unknown keys,
        wrong types and bad values raise :class:`ConfigError` naming the field."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names - {"stage"})
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(names), n=1)
            raise ConfigError(unknown[0], "unknown generate config key" +
                              (f"; did you mean {close[0]!r}?" if close else ""))
        hints = typing.get_type_hints(cls)
        cfg = cls(**{k: _coerce(k, v, hints[k]) for k, v in data.items() if k in names})
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first bad field."""
        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise ConfigError(name, what)

        need(bool(self.model.strip()), "model", "give the model to sample from (hub id, folder or run checkpoint)")
        need(self.model_b is None or bool(self.model_b.strip()), "model_b", "is empty")
        given = [n for n in ("prompt_dataset", "prompt_tag", "prompts") if getattr(self, n)]
        need(len(given) == 1, given[1] if len(given) > 1 else "prompt_dataset",
             "give exactly one prompt source: prompt_dataset, prompt_tag or prompts")
        if self.prompts is not None:
            for i, p in enumerate(self.prompts):
                need(isinstance(p, str) and bool(p.strip()), "prompts", f"prompt {i + 1} is empty")
        need(self.limit >= 0, "limit", "must be 0 (all) or more")
        need(1 <= self.n <= 64, "n", f"expected 1 to 64 responses per prompt, got {self.n}")
        need(0 <= self.temperature <= 5, "temperature", f"expected 0 to 5, got {self.temperature}")
        need(self.temperature > 0 or self.n == 1, "n",
             "greedy decoding (temperature 0) gives the same response every time: set n to 1 or raise "
             "the temperature")
        need(0 < self.top_p <= 1, "top_p", f"expected a value in (0, 1], got {self.top_p}")
        need(1 <= self.max_new_tokens <= 32768, "max_new_tokens", f"expected 1 to 32768, got {self.max_new_tokens}")
        need(1 <= self.batch_size <= 1024, "batch_size", f"expected 1 to 1024, got {self.batch_size}")
        need(self.device in DEVICES, "device",
             f"expected one of {', '.join(DEVICES)}, got {short_repr(self.device)}")
        need(self.dtype in DTYPES, "dtype", f"expected one of {', '.join(DTYPES)}, got {short_repr(self.dtype)}")
        need(self.quantization in QUANTIZATIONS, "quantization",
             f"expected none, '4bit' or '8bit', got {short_repr(self.quantization)}")

    @property
    def prompt_tag_for_new(self) -> str:
        """The tag prompts created by this run get."""
        return self.tag.strip() or (self.prompt_dataset or "generated")

    @property
    def arms(self) -> list[tuple[str, str]]:
        """``[("a", model)]`` or, for a comparison, ``[("a", model), ("b", model_b)]``."""
        return [("a", self.model)] + ([("b", self.model_b)] if self.model_b else [])

    def sampling(self) -> dict[str, Any]:
        """The sampling parameters stored with every candidate."""
        return {"temperature": self.temperature, "top_p": self.top_p, "max_new_tokens": self.max_new_tokens,
                "seed": self.seed, "n": self.n}


def _coerce(name: str, value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is Union:
        if value is None or value == "":
            return None
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(name, value, args[0])
    if origin is list:
        if isinstance(value, list):
            return list(value)
        raise ConfigError(name, f"expected a list, got {short_repr(value)}")
    if tp is bool and isinstance(value, bool):
        return value
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if tp is str and isinstance(value, str):
        return value
    kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))
    raise ConfigError(name, f"expected {kind}, got {short_repr(value)}")
