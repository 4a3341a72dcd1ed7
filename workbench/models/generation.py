"""Generation configs that say exactly what is sampled, whatever a model folder ships.

``model.generate`` (transformers 5) fills every field the caller leaves
unset from the model's own ``generation_config.json``. A model that ships
``no_repeat_ngram_size``, ``min_p``, ``typical_p``, ``suppress_tokens``,
``bad_words_ids``, ``repetition_penalty``... then samples from a distribution
the caller never asked for. PPO cannot live with that: its log-probs are
recomputed from plain forward passes, so every such processor silently makes
the KL penalty and the policy ratio wrong. :func:`clean_generation_config`
builds a config with only the special tokens plus the caller's knobs, and
:func:`isolate_generation_defaults` replaces the model's stored defaults with
it, so nothing from the folder can be merged back in.

:func:`shipped_processors` names what a folder's defaults would have changed
(for a log line). No torch import at module level.
"""

from __future__ import annotations

from typing import Any

#: Fields of a GenerationConfig that change which tokens can be sampled or how likely they are,
#: with the value that leaves the distribution alone (None: unset).
DISTRIBUTION_FIELDS: dict[str, Any] = {
    "temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": None, "typical_p": 1.0,
    "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0,
    "bad_words_ids": None, "suppress_tokens": None, "begin_suppress_tokens": None,
    "sequence_bias": None, "forced_bos_token_id": None, "forced_eos_token_id": None,
    "min_length": 0, "min_new_tokens": None, "exponential_decay_length_penalty": None,
    "renormalize_logits": False, "guidance_scale": None, "watermarking_config": None,
    "force_words_ids": None, "constraints": None, "length_penalty": 1.0, "top_h": None,
}


def clean_generation_config(*, eos_token_id: Any, pad_token_id: Any, bos_token_id: Any = None,
                            **knobs: Any) -> Any:
    """A ``GenerationConfig`` holding only the special tokens and ``knobs`` (``do_sample``,
    ``temperature``, ``max_new_tokens``, ``output_scores``...). Every field that shapes the
    distribution and is not in ``knobs`` is set to its neutral value explicitly, so even a
    model's stored defaults cannot fill it in."""
    from transformers import GenerationConfig

    gen = GenerationConfig(bos_token_id=bos_token_id, eos_token_id=eos_token_id, pad_token_id=pad_token_id)
    for name, neutral in DISTRIBUTION_FIELDS.items():
        if hasattr(gen, name):
            setattr(gen, name, neutral)
    for name, value in knobs.items():
        setattr(gen, name, value)
    return gen


def shipped_processors(generation_config: Any) -> dict[str, Any]:
    """The distribution-changing fields a (model's) generation config sets to a non-neutral
    value, e.g. ``{"no_repeat_ngram_size": 3, "top_k": 20}``. Temperature, top-k and top-p are
    included: they are defaults the caller overrides, but the user may want to know."""
    out = {}
    for name, neutral in DISTRIBUTION_FIELDS.items():
        value = getattr(generation_config, name, None)
        if value is not None and value != neutral:
            out[name] = value
    return out


def isolate_generation_defaults(model: Any, *, eos_token_id: Any, pad_token_id: Any) -> dict[str, Any]:
    """Replace the stored generation defaults of ``model`` (and of a peft wrapper's base model)
    with a clean config, so ``generate`` merges nothing from the model folder; returns what the
    folder had set (:func:`shipped_processors`)."""
    targets = [model]
    base = getattr(model, "get_base_model", None)
    if callable(base):
        targets.append(base())
    shipped: dict[str, Any] = {}
    for target in targets:
        old = getattr(target, "generation_config", None)
        if old is None:
            continue
        shipped.update(shipped_processors(old))
        # Only the special tokens: the call's clean config sets every distribution field itself,
        # and a config with neutral sampling fields but no do_sample would not save.
        from transformers import GenerationConfig

        target.generation_config = GenerationConfig(bos_token_id=getattr(old, "bos_token_id", None),
                                                    eos_token_id=eos_token_id, pad_token_id=pad_token_id)
    return shipped
