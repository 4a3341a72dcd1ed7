"""Sampling responses from a causal LM, in a job process (imports torch and transformers).

:class:`Sampler` loads a :class:`~workbench.generate.models.ResolvedModel`
with :mod:`workbench.models.loading` (4/8-bit when asked; a LoRA adapter
applied with peft) and samples ``n`` responses for a batch of prompts.
Chat prompts (and plain prompts, when the tokenizer has a chat template and
the config asks for it) go through the chat template with the generation
prompt; prompts are left-padded. Each batch is seeded explicitly, so two
models sampled with the same seed draw the same random numbers, and a
resumed run repeats what the first attempt would have drawn.

Sampling settings are exactly the config's (temperature, top-p, length), with
a clean generation config
(:func:`~workbench.models.generation.clean_generation_config`): the
defaults a model folder ships in ``generation_config.json``
(``repetition_penalty``, ``no_repeat_ngram_size``, ``top_k``, ``min_p``,
``suppress_tokens``...) are ignored and named in the job log
(:attr:`Sampler.ignored_defaults`). A model author's defaults can make
candidates read better, but the candidates' stored parameters must say how
they were sampled, and the two arms of an A/B comparison must be sampled
the same way even when only one folder ships such defaults (an SFT output
folder often carries its base model's).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch

from ..models.generation import clean_generation_config, isolate_generation_defaults
from ..models.loading import has_chat_template, load_causal_lm, load_tokenizer, pick_device
from .config import GenerateConfig
from .models import ResolvedModel
from .prompts import PromptRow


class Sampler:
    """One model, ready to sample (see the module docstring)."""

    def __init__(self, model: ResolvedModel, cfg: GenerateConfig):
        self.cfg = cfg
        self.device = pick_device(None if cfg.device == "auto" else cfg.device)
        self.tokenizer = load_tokenizer(model.tokenizer or model.base, padding_side="left")
        lm = load_causal_lm(model.base, quantization=cfg.quantization, device=self.device,
                            dtype=None if cfg.dtype == "auto" else cfg.dtype)
        if model.adapter:
            from peft import PeftModel

            lm = PeftModel.from_pretrained(lm, model.adapter)
        self.model = lm.eval()
        self.ignored_defaults = isolate_generation_defaults(lm, eos_token_id=self.tokenizer.eos_token_id,
                                                            pad_token_id=self.tokenizer.pad_token_id)
        self.chat = has_chat_template(self.tokenizer)

    def render(self, row: PromptRow) -> str:
        """The text the model continues."""
        if isinstance(row.text, list):
            if not self.chat:
                from ..models.refs import ModelError

                raise ModelError("the prompts are chat messages, but the model's tokenizer has no chat template: "
                                 "use a chat/instruct model or plain-text prompts")
            return self.tokenizer.apply_chat_template(row.text, add_generation_prompt=True, tokenize=False)
        if self.chat and self.cfg.chat_template:
            return self.tokenizer.apply_chat_template([{"role": "user", "content": row.text}],
                                                      add_generation_prompt=True, tokenize=False)
        return row.text

    def sample(self, rows: Sequence[PromptRow], seed: int) -> tuple[list[list[str]], int]:
        """``n`` responses per row (decoded without special tokens) and the count of tokens generated."""
        cfg = self.cfg
        texts = [self.render(r) for r in rows]
        templated = self.chat and (cfg.chat_template or any(isinstance(r.text, list) for r in rows))
        enc = self.tokenizer(texts, return_tensors="pt", padding=True,
                             add_special_tokens=not templated).to(self.device)
        knobs: dict[str, Any] = dict(max_new_tokens=cfg.max_new_tokens, num_return_sequences=cfg.n)
        if cfg.temperature > 0:
            knobs.update(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p)
        else:
            knobs.update(do_sample=False)
        gen = clean_generation_config(eos_token_id=self.tokenizer.eos_token_id,
                                      pad_token_id=self.tokenizer.pad_token_id,
                                      bos_token_id=self.tokenizer.bos_token_id, **knobs)
        torch.manual_seed(seed)
        with torch.no_grad():
            out = self.model.generate(**enc, generation_config=gen)
        new = out[:, enc["input_ids"].shape[1]:]
        tokens = int(_generated_tokens(new, self.tokenizer.pad_token_id, self.tokenizer.eos_token_id))
        decoded = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        n = cfg.n
        return [decoded[i * n:(i + 1) * n] for i in range(len(rows))], tokens

    def close(self) -> None:
        del self.model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _generated_tokens(new: "torch.Tensor", pad: Optional[int], eos: Optional[int]) -> int:
    """Tokens up to and including the first EOS of each sequence (padding after it not counted)."""
    if eos is None:
        return int((new != pad).sum()) if pad is not None else new.numel()
    is_eos = new == eos
    before = torch.cumsum(is_eos.int(), dim=1) - is_eos.int()  # EOS seen strictly before this position
    return int((before == 0).sum())
