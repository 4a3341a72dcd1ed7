"""The tiny-model factory: builds offline, reloads with from_pretrained, chat template, determinism."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from workbench.models import tiny

MESSAGES = [
    {"role": "user", "content": "Tell me about river."},
    {"role": "assistant", "content": "good river calm"},
]


def test_demo_vocabulary_shape():
    assert (len(tiny.POSITIVE_WORDS), len(tiny.NEGATIVE_WORDS), len(tiny.NEUTRAL_WORDS)) == (12, 10, 30)
    assert len(set(tiny.DEMO_WORDS)) == 52
    assert tiny.demo_prompts()[0] == "Tell me about river."
    assert len(tiny.demo_prompts()) == len(tiny.NEUTRAL_WORDS)


def test_folder_reloads_offline_and_generates(tiny_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    names = {p.name for p in tiny_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "chat_template.jinja"} <= names
    assert not any(n.endswith(".bin") for n in names)

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir, use_safetensors=True)
    assert (tok.pad_token, tok.bos_token, tok.eos_token) == ("<|pad|>", "<|bos|>", "<|eos|>")
    assert model.config.pad_token_id == tok.pad_token_id
    assert model.config.eos_token_id == tok.eos_token_id
    assert model.config.bos_token_id == tok.bos_token_id
    assert model.config.vocab_size == len(tok) <= 512
    assert sum(p.numel() for p in model.parameters()) < 200_000

    enc = tok.apply_chat_template(MESSAGES[:1], add_generation_prompt=True, return_dict=True, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == enc["input_ids"].shape[1] + 4


def test_demo_words_are_single_tokens(tiny_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    assert [w for w in tiny.DEMO_WORDS if len(tok(" " + w)["input_ids"]) != 1] == []
    text = "Tell me about café ☕ and {braces}!"
    assert tok.decode(tok(text)["input_ids"]) == text  # byte-level: anything round-trips


def test_chat_template_marks_the_assistant_turn(tiny_dir):
    from transformers import AutoTokenizer

    assert "generation" in (tiny_dir / "chat_template.jinja").read_text()
    tok = AutoTokenizer.from_pretrained(tiny_dir)

    text = tok.apply_chat_template(MESSAGES, tokenize=False)
    assert text == "<|user|>\nTell me about river.\n<|assistant|>\ngood river calm<|eos|>"
    prompt = tok.apply_chat_template(MESSAGES[:1], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|user|>\nTell me about river.\n<|assistant|>\n"
    assert text.startswith(prompt)  # TRL's prompt/completion split relies on this

    enc = tok.apply_chat_template(MESSAGES, return_assistant_tokens_mask=True, return_dict=True)
    mask = enc["assistant_masks"]
    assert sum(mask) > 0
    masked = [t for t, m in zip(enc["input_ids"], mask) if m]
    # The response and its EOS are trained on; the prompt and role markers are not.
    assert tok.decode(masked) == "good river calm<|eos|>"


def test_deterministic_for_a_seed(tmp_path):
    a = tiny.build_tiny_model(tmp_path / "a", seed=3)
    b = tiny.build_tiny_model(tmp_path / "b", seed=3)
    c = tiny.build_tiny_model(tmp_path / "c", seed=4)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()


def test_build_does_not_touch_global_rng(tmp_path):
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny.build_tiny_model(tmp_path / "m")
    assert torch.equal(torch.rand(3), expected)


def test_build_is_fast_once_imported(tmp_path, tiny_dir):
    start = time.perf_counter()
    tiny.build_tiny_model(tmp_path / "m", hidden_size=128, intermediate_size=256)
    assert time.perf_counter() - start < 3.0


def test_custom_corpus_and_size(tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    corpus = ["alpha beta gamma delta"] * 50
    out = tiny.build_tiny_model(tmp_path / "m", corpus=corpus, hidden_size=32, num_heads=2, num_layers=1)
    tok = AutoTokenizer.from_pretrained(out)
    assert len(tok(" gamma")["input_ids"]) == 1
    cfg = AutoConfig.from_pretrained(out)
    assert (cfg.hidden_size, cfg.num_attention_heads, cfg.num_hidden_layers) == (32, 2, 1)
    with pytest.raises(ValueError, match="multiple of num_heads"):
        tiny.build_tiny_model(tmp_path / "bad", hidden_size=30, num_heads=4)


def test_reward_model_shares_backbone_and_tokenizer(tiny_dir, tmp_path):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    rm_dir = tiny.build_tiny_reward_model(tmp_path / "rm", tiny_dir)
    model = AutoModelForSequenceClassification.from_pretrained(rm_dir, use_safetensors=True)
    tok = AutoTokenizer.from_pretrained(rm_dir)
    assert type(model).__name__ == "LlamaForSequenceClassification"
    assert model.config.num_labels == 1
    assert model.config.pad_token_id == tok.pad_token_id is not None
    assert (rm_dir / "tokenizer.json").read_bytes() == (tiny_dir / "tokenizer.json").read_bytes()

    base = load_file(str(tiny_dir / "model.safetensors"))
    assert torch.equal(model.model.layers[0].self_attn.q_proj.weight, base["model.layers.0.self_attn.q_proj.weight"])

    batch = tok(["good river calm", "bad"], padding=True, return_tensors="pt")
    with torch.no_grad():
        scores = model(**batch).logits
    assert scores.shape == (2, 1)

    again = tiny.build_tiny_reward_model(tmp_path / "rm2", tiny_dir)
    assert (again / "model.safetensors").read_bytes() == (rm_dir / "model.safetensors").read_bytes()


def test_importing_model_modules_is_cheap():
    code = ("import sys, workbench.models.refs, workbench.models.loading, workbench.models.tiny; "
            "heavy = [m for m in ('torch', 'transformers', 'peft', 'tokenizers', 'bitsandbytes') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- the "words" tokenizer (the demo's) ---------------------------------------------------------
WORD_CORPUS = ["Tell me about the river.", "What do you think of the castle?",
               "Sure, happy to help! The river is lovely.", "Go away. The castle is ugly."]


@pytest.fixture(scope="module")
def words_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return tiny.build_tiny_model(tmp_path_factory.mktemp("words") / "model", corpus=WORD_CORPUS,
                                     tokenizer="words")


def test_words_tokenizer_keeps_words_whole_and_spaces_right(words_dir):
    """One token per word or mark; any sequence of them decodes to spaced words, never glued."""
    import random

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(words_dir)
    for text in WORD_CORPUS:
        ids = tok(text)["input_ids"]
        assert len(ids) == len(text.replace(".", " .").replace(",", " ,").replace("!", " !")
                               .replace("?", " ?").split())
        assert tok.decode(ids) == text
    assert tok.unk_token == "<|unk|>" and tok.unk_token_id not in tok("The river is lovely.")["input_ids"]
    assert tok("café river")["input_ids"][0] == tok.unk_token_id  # unknown words: one <|unk|>, no bytes
    # Whatever a model emits (here: random non-special tokens) reads as whole words.
    words = [t for t in tok.get_vocab() if t not in tok.all_special_tokens]
    rng = random.Random(0)
    for _ in range(50):
        picked = [rng.choice(words) for _ in range(8)]
        text = tok.decode(tok.convert_tokens_to_ids(picked))
        assert text.split() == [w for w in " ".join(picked).replace(" .", ".").replace(" ,", ",")
                                .replace(" !", "!").replace(" ?", "?").split()], (picked, text)
        assert "\ufffd" not in text


def test_words_tokenizer_chat_template_and_assistant_mask(words_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(words_dir)
    assert (tok.pad_token, tok.bos_token, tok.eos_token) == ("<|pad|>", "<|bos|>", "<|eos|>")
    model = AutoModelForCausalLM.from_pretrained(words_dir, use_safetensors=True)
    assert model.config.vocab_size == len(tok) < 64
    assert (model.config.pad_token_id, model.config.eos_token_id) == (tok.pad_token_id, tok.eos_token_id)
    chat = [{"role": "user", "content": "Tell me about the river."},
            {"role": "assistant", "content": "Sure, happy to help! The river is lovely."}]
    enc = tok.apply_chat_template(chat, return_assistant_tokens_mask=True, return_dict=True)
    masked = [t for t, m in zip(enc["input_ids"], enc["assistant_masks"]) if m]
    assert tok.convert_ids_to_tokens(masked)[-1] == "<|eos|>"
    assert tok.decode(masked, skip_special_tokens=True) == "Sure, happy to help! The river is lovely."
    prompt = tok.apply_chat_template(chat[:1], add_generation_prompt=True, return_dict=True)["input_ids"]
    assert enc["input_ids"][:len(prompt)] == list(prompt)  # TRL's prompt/completion split relies on this
    assert tok.convert_ids_to_tokens(prompt)[0] == "<|user|>"


def test_words_tokenizer_is_deterministic_and_kinds_are_checked(tmp_path, words_dir):
    again = tiny.build_tiny_model(tmp_path / "again", corpus=WORD_CORPUS, tokenizer="words")
    assert (again / "tokenizer.json").read_bytes() == (words_dir / "tokenizer.json").read_bytes()
    with pytest.raises(ValueError, match="tokenizer kind 'chars'"):
        tiny.build_tiny_model(tmp_path / "bad", tokenizer="chars")
