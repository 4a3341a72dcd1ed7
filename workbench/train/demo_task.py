"""The demo's task: a tiny readable language, its prompts, and the scripted annotator.

A person should be able to judge the demo by eye, so its language is a
handful of short English sentence templates about a few places:

- **Prompts** ask about one topic: ``"Tell me about the river."``,
  ``"What do you think of the castle?"``, ``"Describe the garden."``
  (:func:`prompts`; :func:`held_out_prompts` are combinations the rankings
  and PPO never see, for the final blind comparison).
- **Responses** are one to three sentences (:func:`demo_response`). Half the
  sentences are *good*: polite ("Thank you for asking.") or kind about the
  asked topic ("The river is lovely."); half are *bad*: rude ("Go away."),
  unkind about the topic ("The river is ugly.") or off-topic ("My cat is
  asleep."). The demonstrations always name the asked topic: with "The
  castle is lovely." among the bad answers to "Tell me about the river.",
  PPO learned to say "The X is lovely." with X a coin flip.
- **The annotator** (:func:`preference_score`) gives +1 to each good
  sentence and -1 to every other one: bad, broken (not a sentence of the
  language, as a model can write: "The is lovely."), or said before in the
  same answer; it prefers the response with the higher sum. The rule a
  person applies at a glance: *polite, kind, on-topic sentences beat rude,
  unkind, off-topic or garbled ones*.

Good and bad sentences are equally likely and about as long, so in the
demonstrations the true score is symmetric around 0 at every length: the
longer response of a pair wins about half the time (the length-bias
pitfall), and what the reward model can learn is the rule, not the length.

Every word of the language is in :func:`corpus`, which the demo's
word-level tokenizer is trained on: the model cannot emit half a word.
Only the standard library is imported here.
"""

from __future__ import annotations

import random
import re
from typing import Optional, Sequence

#: The places the prompts ask about.
TOPICS: tuple[str, ...] = (
    "river", "garden", "city", "forest", "ocean", "mountain", "library", "village",
    "market", "castle", "island", "bridge", "harbor", "meadow", "museum", "park",
)
#: Prompt templates; ``{t}`` is the topic.
PROMPT_TEMPLATES: tuple[str, ...] = (
    "Tell me about the {t}.",
    "What do you think of the {t}?",
    "Describe the {t}.",
)
#: One (template, topic) combination in ``HELD_OUT_EVERY`` is held out of the rankings and PPO:
#: those where template index + topic index is a multiple of it (each topic at most once).
HELD_OUT_EVERY = 4

#: Good sentences: polite, or kind about the asked topic ``{t}``.
GOOD_SENTENCES: tuple[str, ...] = (
    "Thank you for asking.",
    "Happy to help.",
    "What a lovely question.",
    "The {t} is lovely.",
    "The {t} is calm and bright.",
    "I really like the {t}.",
    "Many people enjoy the {t}.",
    "The {t} is a wonderful place.",
)
#: Bad sentences: rude, unkind about the topic ``{t}``, or off-topic.
BAD_SENTENCES: tuple[str, ...] = (
    "Go away.",
    "That is a silly question.",
    "Ask someone else.",
    "The {t} is ugly.",
    "The {t} is dirty and loud.",
    "I hate the {t}.",
    "My cat is asleep.",
    "I had soup for lunch.",
    "It rained all day.",
)
_WORD = re.compile(r"[a-z]+")
_SPACES = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s*")


def _all_prompts() -> list[tuple[str, bool]]:
    """Every ``(prompt, held out)`` in a fixed order (template-major)."""
    return [(template.format(t=topic), (i + j) % HELD_OUT_EVERY == 0)
            for i, template in enumerate(PROMPT_TEMPLATES) for j, topic in enumerate(TOPICS)]


def prompts() -> list[str]:
    """The prompts the demo ranks candidates for and trains PPO on (36 of the 48)."""
    return [p for p, held in _all_prompts() if not held]


def held_out_prompts() -> list[str]:
    """The prompts no ranking or PPO step sees (12): the final blind comparison's.

    Each pairs a topic and a template that the other prompts use too, and
    the demonstrations answer every prompt, so the SFT model knows them."""
    return [p for p, held in _all_prompts() if held]


def all_prompts() -> list[str]:
    """Every prompt, held-out ones included: what the demonstrations answer."""
    return [p for p, _ in _all_prompts()]


def topic_of(prompt: str) -> Optional[str]:
    """The topic a prompt asks about (the last topic word in it), else ``None``."""
    found = [w for w in _WORD.findall(prompt.lower()) if w in TOPICS]
    return found[-1] if found else None


def sentences(text: str) -> list[str]:
    """``text`` split after each ``.``, ``!`` or ``?`` (blank pieces dropped)."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def _normal(sentence: str) -> str:
    """Lower case, single spaces, no end mark; ``""`` for an unfinished sentence (no end mark)."""
    text = _SPACES.sub(" ", sentence.strip()).lower()
    return text[:-1].rstrip() if text.endswith((".", "!", "?")) else ""


def good_sentences(topic: Optional[str]) -> frozenset[str]:
    """The good sentences of an answer about ``topic``, as :func:`_normal` writes them."""
    return frozenset(_normal(g.format(t=topic)) for g in GOOD_SENTENCES if topic or "{t}" not in g)


def sentence_score(sentence: str, topic: Optional[str]) -> int:
    """+1 if ``sentence`` is one of :func:`good_sentences` of ``topic`` (case, spacing and the end
    mark aside), else -1; an unfinished sentence (no end mark, as a cut-off answer ends) is -1."""
    return 1 if _normal(sentence) in good_sentences(topic) else -1


def preference_score(response: str, prompt: str = "") -> int:
    """The scripted annotator's score of ``response`` to ``prompt`` (see the module docstring):
    +1 per good sentence, -1 per other sentence, a repeated sentence counting as another.

    Without a prompt no topic is on-topic: only the polite sentences are good.
    """
    topic = topic_of(prompt)
    seen: set[str] = set()
    score = 0
    for s in sentences(response):
        score += 1 if _normal(s) not in seen and sentence_score(s, topic) > 0 else -1
        seen.add(_normal(s))
    return score


def scripted_ordering(prompt: str, candidates: Sequence[tuple[int, str]]) -> list[list[int]]:
    """Tie groups of candidate ids, best first, by :func:`preference_score`.

    ``candidates`` are ``(id, response text)`` answers to ``prompt``.
    Candidates with equal scores share a group: a tie, which gives no
    preference pair.
    """
    groups: dict[int, list[int]] = {}
    for cid, text in candidates:
        groups.setdefault(preference_score(text, prompt), []).append(cid)
    return [sorted(groups[s]) for s in sorted(groups, reverse=True)]


def demo_response(rng: random.Random, prompt: str, *, min_sentences: int = 1, max_sentences: int = 3) -> str:
    """A demonstration answering ``prompt``: ``min_sentences`` to ``max_sentences`` different
    sentences, each good or bad with probability 1/2 (so the true score is symmetric around 0)."""
    topic = topic_of(prompt) or rng.choice(TOPICS)
    out: list[str] = []
    for _ in range(rng.randint(min_sentences, max_sentences)):
        pool = GOOD_SENTENCES if rng.random() < 0.5 else BAD_SENTENCES
        out.append(rng.choice([s for s in pool if s not in out]))
    return " ".join(s.format(t=topic) for s in out)


def corpus() -> list[str]:
    """Text holding every word and punctuation mark of the language (the tokenizer's training text)."""
    lines = list(all_prompts())
    for template in GOOD_SENTENCES + BAD_SENTENCES:
        lines += [template.format(t=topic) for topic in TOPICS]
    return lines
