"""The demo's task (:mod:`workbench.train.demo_task`): its language, prompts and scripted annotator,
and the demo's blind comparison tally. Pure Python, fast."""

from __future__ import annotations

import random

import pytest

from workbench.data.quality import wilson_interval
from workbench.train import demo_task as T
from workbench.train.demo import FULL, blind_comparison, demo_response

RIVER = "Tell me about the river."


@pytest.mark.parametrize("response, score", [
    ("Thank you for asking. The river is lovely.", 2),        # polite + kind on-topic
    ("Go away. The river is lovely.", 0),                      # rude cancels kind
    ("The river is ugly. I hate the river.", -2),              # unkind, twice
    ("The castle is lovely.", -1),                             # kind, but about another place
    ("My cat is asleep. Happy to help.", 0),                   # off-topic + polite
    ("The river.", -1),                                        # broken
    ("The is lovely. Happy to help", -2),                      # broken, unfinished
    ("The river is lovely. The river is lovely.", 0),          # said twice: the repeat counts against
    ("the  river is LOVELY!", 1),                              # case, spacing and the mark aside
    ("", 0),
])
def test_the_annotator_scores_each_sentence(response, score):
    assert T.preference_score(response, RIVER) == score


def test_the_topic_comes_from_the_prompt():
    assert T.topic_of("What do you think of the castle?") == "castle"
    assert T.topic_of("Hello there.") is None
    assert T.preference_score("The castle is lovely.", "What do you think of the castle?") == 1
    # Without a prompt no place is on-topic.
    assert T.preference_score("The castle is lovely.") == -1
    assert T.sentences("Go away.  The river is lovely!Why?") == ["Go away.", "The river is lovely!", "Why?"]


def test_every_template_scores_as_its_list_says():
    """The sentence lists and the word rule agree: a person reading the templates and the
    script judging them see the same thing."""
    for topic in T.TOPICS:
        prompt = f"Describe the {topic}."
        other = next(t for t in T.TOPICS if t != topic)
        for template in T.GOOD_SENTENCES:
            assert T.sentence_score(template.format(t=topic), T.topic_of(prompt)) == 1, template
            if "{t}" in template:  # the same kind words about another place: off-topic
                assert T.sentence_score(template.format(t=other), T.topic_of(prompt)) == -1, template
        for template in T.BAD_SENTENCES:
            assert T.sentence_score(template.format(t=topic), T.topic_of(prompt)) == -1, template


def test_scripted_ordering_is_best_first_with_ties_grouped():
    cands = [(1, "Go away."), (2, "Happy to help. The river is lovely."), (3, "The river."),
             (4, "My cat is asleep. Thank you for asking."), (5, "The river is calm and bright.")]
    assert T.scripted_ordering(RIVER, cands) == [[2], [5], [4], [1, 3]]


def test_held_out_prompts_are_unseen_combinations_of_seen_parts():
    train, held = T.prompts(), T.held_out_prompts()
    assert (len(train), len(held)) == (36, 12)
    assert not set(train) & set(held) and sorted(train + held) == sorted(T.all_prompts())
    seen_topics = {T.topic_of(p) for p in train}
    assert {T.topic_of(p) for p in held} <= seen_topics
    for template in T.PROMPT_TEMPLATES:  # every template is used both ways
        prefix = template.split("{t}")[0]
        assert any(p.startswith(prefix) for p in train) and any(p.startswith(prefix) for p in held)


def test_demonstrations_are_length_neutral_and_use_only_corpus_words():
    """Good and bad sentences are equally likely, so the true score does not grow with the
    number of sentences (the length-bias pitfall); every word is in the tokenizer's corpus."""
    vocab = {w for line in T.corpus() for w in line.replace(".", " ").replace("?", " ").split()}
    rng = random.Random(0)
    by_length: dict[int, list[int]] = {}
    for i in range(20000):
        prompt = T.all_prompts()[i % len(T.all_prompts())]
        text = demo_response(rng, prompt)
        by_length.setdefault(len(T.sentences(text)), []).append(T.preference_score(text, prompt))
        if i < 500:
            assert set(text.replace(".", " ").split()) <= vocab, text
    assert set(by_length) == set(range(FULL.min_sentences, FULL.max_sentences + 1))
    for scores in by_length.values():
        assert abs(sum(scores) / len(scores)) < 0.1


def test_blind_comparison_counts_wins_ties_and_the_app_interval():
    prompts = [RIVER, "Describe the castle."]
    sft = [["Go away.", "The river is lovely.", "Happy to help."],
           ["The castle is ugly.", "The castle is lovely.", "My cat is asleep."]]
    ppo = [["The river is lovely.", "The river is lovely.", "Go away."],
           ["The castle is lovely.", "Thank you for asking. The castle is lovely.", "Happy to help."]]
    # Pairs: river (B, tie, A), castle (B, B, B) -> B wins 4 of 5 decisive, 1 tie of 6.
    verdict = blind_comparison(prompts, sft, ppo, label_a="SFT", label_b="PPO")
    assert (verdict.n, verdict.a_wins, verdict.b_wins, verdict.ties) == (6, 1, 4, 1)
    assert verdict.win_rate_b == pytest.approx(0.8)
    assert (verdict.low, verdict.high) == pytest.approx(wilson_interval(4, 5))
    assert "PPO wins 80%" in verdict.describe()


def test_the_true_score_curve_counts_only_training_samples(tmp_path):
    """With an eval set on, a PPO run also reports eval completions (``kind: eval``); the demo's
    true-score curve is the annotator's mean over the training samples only, one value per
    training report, read back from a real events file."""
    from workbench.jobs.events import MetricEvent, SamplesEvent, append_event, read_events
    from workbench.train.demo import true_score_series

    path = tmp_path / "events.jsonl"
    lovely, hate = "The river is lovely. Thank you for asking.", "I hate the river."
    for event in (MetricEvent(step=1, values={"objective/scores": 0.1}),
                  SamplesEvent(step=1, rows=[{"prompt": RIVER, "response": lovely, "score": 1.0},
                                             {"prompt": RIVER, "response": hate, "score": -1.0}]),
                  SamplesEvent(step=1, kind="eval", rows=[{"prompt": RIVER, "response": hate, "score": -1.0}]),
                  SamplesEvent(step=2, rows=[{"prompt": RIVER, "response": lovely, "score": 1.0}])):
        append_event(path, event)
    a, b = T.preference_score(lovely, RIVER), T.preference_score(hate, RIVER)
    assert a != b
    assert true_score_series(read_events(path)) == [pytest.approx((a + b) / 2), pytest.approx(a)]
