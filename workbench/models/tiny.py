"""Tiny random-init models for tests and the demo, built offline in about a second.

:func:`build_tiny_model` trains a tokenizer on generated text (by default the
test vocabulary below), wraps it in a transformers tokenizer with pad/bos/eos
tokens and a chat template, builds a small random
``LlamaForCausalLM`` and saves both as a normal model folder (safetensors), so
every loader in the workbench treats it like a downloaded model, also under
``HF_HUB_OFFLINE=1``. :func:`build_tiny_reward_model` turns such a folder into
a one-label sequence-classification model for the reward stage.

The chat template marks assistant content with ``{% generation %}`` so that
``return_assistant_tokens_mask=True`` (TRL's ``assistant_only_loss=True``)
works, and closes each assistant turn with the EOS token so a model trained
on it learns to stop.

Two tokenizer kinds (:data:`TOKENIZER_KINDS`):

- ``"bytes"`` (the default, for tests): byte-level BPE; any text
  round-trips, but a model can emit a word without its leading space (two
  words glued together) or half of a multi-byte character (``\ufffd`` when
  decoded).
- ``"words"`` (the demo): one token per word or punctuation mark of the
  corpus, split on whitespace and punctuation; decoding puts one space
  between words and none before punctuation, so whatever the model emits
  reads as whole words. Words outside the corpus become ``<|unk|>``.

torch, transformers and tokenizers are imported inside the functions: the
word lists are imported by cheap code (CLI, demo seeding).
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Optional, Sequence

#: The word-sentiment task of the tests and benchmarks (the first demo's; today's demo task, with
#: its own annotator, is :mod:`workbench.train.demo_task`): words counted in favour of a response.
POSITIVE_WORDS: tuple[str, ...] = (
    "good", "great", "happy", "bright", "kind", "lovely",
    "wonderful", "calm", "joy", "warm", "excellent", "friendly",
)
#: Words that task counts against a response.
NEGATIVE_WORDS: tuple[str, ...] = (
    "bad", "sad", "dark", "angry", "awful", "cold",
    "broken", "gloomy", "nasty", "terrible",
)
#: Words that carry no preference; they double as that task's prompt topics.
NEUTRAL_WORDS: tuple[str, ...] = (
    "river", "mountain", "city", "garden", "book", "music",
    "ocean", "forest", "train", "coffee", "window", "bridge",
    "cloud", "market", "library", "island", "village", "road",
    "kitchen", "school", "winter", "summer", "desert", "harbor",
    "castle", "painting", "bicycle", "lantern", "meadow", "tower",
)
#: That task's vocabulary: 12 positive, 10 negative, 30 neutral words.
DEMO_WORDS: tuple[str, ...] = POSITIVE_WORDS + NEGATIVE_WORDS + NEUTRAL_WORDS
#: That task's prompts are this template filled with one neutral word.
PROMPT_TEMPLATE = "Tell me about {topic}."
DEMO_TOPICS: tuple[str, ...] = NEUTRAL_WORDS

TOKENIZER_KINDS = ("bytes", "words")

PAD_TOKEN = "<|pad|>"
BOS_TOKEN = "<|bos|>"
EOS_TOKEN = "<|eos|>"
ROLE_TOKENS: tuple[str, ...] = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN) + ROLE_TOKENS
#: The ``"words"`` tokenizer's token for a word it has not seen.
UNK_TOKEN = "<|unk|>"

#: Chat template: ``<|role|>\n`` before each message, a newline after system
#: and user turns, EOS after assistant turns (inside the generation markers,
#: so the model is trained to emit it and the response mask includes it).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<|assistant|>\n' }}"
    "{%- generation -%}{{ message['content'] + eos_token }}{%- endgeneration -%}"
    "{%- else -%}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\n' }}{%- endif -%}"
)

_MAX_POSITIONS = 256


def demo_prompts(topics: Sequence[str] = DEMO_TOPICS) -> list[str]:
    """The word task's prompts, one per topic: ``"Tell me about river."`` and so on (the demo's
    prompts are :func:`workbench.train.demo_task.prompts`)."""
    return [PROMPT_TEMPLATE.format(topic=t) for t in topics]


def demo_corpus(words: Sequence[str] = DEMO_WORDS, *, n: int = 400, seed: int = 0,
                max_words: int = 12) -> list[str]:
    """``n`` chat-shaped lines of random ``words``, the text the tokenizer is trained on.

    Each line is a prompt about one word, then a response of 1 to
    ``max_words`` words, both with the role markers the template writes.
    Deterministic for a seed.
    """
    if not words:
        raise ValueError("the tokenizer corpus needs at least one word")
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        topic = rng.choice(words)
        response = " ".join(rng.choice(words) for _ in range(rng.randint(1, max_words)))
        lines.append(f"<|user|>\n{PROMPT_TEMPLATE.format(topic=topic)}\n<|assistant|>\n{response}{EOS_TOKEN}")
    return lines


def _strip_special(text: str) -> str:
    for token in SPECIAL_TOKENS:
        text = text.replace(token, " ")
    return text


def _train_tokenizer(corpus: Iterable[str], vocab_size: int, kind: str = "bytes"):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if kind == "words":
        tok = Tokenizer(models.WordLevel(unk_token=UNK_TOKEN))
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()  # whitespace and punctuation
        # Joins tokens with one space, then drops the space before . , ! ? (no "##" pieces here).
        tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
        # The trainer does not know special tokens: it would learn "<", "|", "user"... from them.
        trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=[*SPECIAL_TOKENS, UNK_TOKEN],
                                            show_progress=False)
        tok.train_from_iterator((_strip_special(t) for t in corpus), trainer=trainer)
        return tok
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return tok


def _wrap_tokenizer(raw, kind: str = "bytes"):
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        pad_token=PAD_TOKEN, bos_token=BOS_TOKEN, eos_token=EOS_TOKEN,
        **({"unk_token": UNK_TOKEN} if kind == "words" else {}),
        additional_special_tokens=list(ROLE_TOKENS),
        model_max_length=_MAX_POSITIONS,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(out_dir: str | Path, *, vocab_words: Optional[Sequence[str]] = None,
                     hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4,
                     intermediate_size: int = 128, seed: int = 0,
                     corpus: Optional[Iterable[str]] = None, vocab_size: int = 512,
                     tokenizer: str = "bytes") -> Path:
    """Build a random-init Llama and its tokenizer into ``out_dir``; return the folder.

    The tokenizer (``tokenizer``: ``"bytes"`` or ``"words"``, see the module
    docstring) has at most ``vocab_size`` tokens and is trained on
    ``corpus`` if given, else on :func:`demo_corpus` of ``vocab_words``
    (default :data:`DEMO_WORDS`; as byte-level BPE, these are mostly single
    tokens). The folder holds ``config.json``,
    ``model.safetensors``, ``tokenizer.json``, ``tokenizer_config.json`` and
    ``chat_template.jinja``. The same arguments give byte-identical weights
    and tokenizer.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if hidden_size % num_heads:
        raise ValueError(f"hidden_size ({hidden_size}) must be a multiple of num_heads ({num_heads})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    text = list(corpus) if corpus is not None else demo_corpus(vocab_words or DEMO_WORDS, seed=seed)
    kind = tokenizer
    if kind not in TOKENIZER_KINDS:
        raise ValueError(f"tokenizer kind {kind!r}: expected one of {', '.join(TOKENIZER_KINDS)}")
    tokenizer = _wrap_tokenizer(_train_tokenizer(text, vocab_size, kind), kind)

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=_MAX_POSITIONS,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        dtype="float32",
    )
    # fork_rng: seeding must not leak into the caller's global RNG state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    with _quiet_progress():
        model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def build_tiny_reward_model(out_dir: str | Path, base_dir: str | Path, *, seed: int = 0) -> Path:
    """Turn the model in ``base_dir`` into a one-label reward model in ``out_dir``.

    The backbone weights are copied from ``base_dir`` (a tiny model or an SFT
    checkpoint of one); the scalar ``score`` head is random-init from
    ``seed``. ``pad_token_id`` is set in the config, which the model needs to
    find each sequence's last token. The tokenizer is copied alongside.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

    base = Path(base_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(base)
    config = LlamaConfig.from_pretrained(base)
    config.num_labels = 1
    config.architectures = ["LlamaForSequenceClassification"]
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForSequenceClassification(config)
    # Copy the backbone by hand: loading the causal-LM folder as a classifier
    # would print a "newly initialized weights" report for the score head,
    # which is expected here.
    with _quiet_progress():
        lm = LlamaForCausalLM.from_pretrained(base, use_safetensors=True)
        model.model.load_state_dict(lm.model.state_dict())
        model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


@contextmanager
def _quiet_progress():
    """No "Writing model shards" bars from a one-shard save of a tiny model."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
