"""Hand edits are checked with the importer's rules and name the offending field."""

import pytest

from workbench.data.edit import EditError, record_from_fields
from workbench.store.records import Record


def chat(*turns):
    return [{"role": r, "content": c} for r, c in turns]


def test_preference_standard_with_scores_and_tags():
    rec = record_from_fields("preference", "standard", {
        "prompt": "[not json] why?", "chosen": "good", "rejected": "bad",
        "score_chosen": "2.5", "score_rejected": "", "tags": "math, easy ,"})
    assert rec == Record(prompt="[not json] why?", chosen="good", rejected="bad", score_chosen=2.5,
                         tags=("math", "easy"))


@pytest.mark.parametrize("fields, field, message", [
    ({"prompt": "p", "chosen": "c"}, "rejected", "is missing"),
    ({"prompt": "p", "chosen": "c", "rejected": "r", "score_chosen": "high"}, "score_chosen", "expected a number"),
    ({"prompt": "p", "chosen": "c", "rejected": "r", "score_rejected": "nan"}, "score_rejected", "finite"),
    ({"prompt": "p", "chosen": chat(("assistant", "x")), "rejected": "r"}, "chosen", "expected a string"),
])
def test_preference_errors_name_the_field(fields, field, message):
    with pytest.raises(EditError, match=message) as info:
        record_from_fields("preference", "standard", fields)
    assert info.value.field == field and str(info.value).startswith(f"{field}: ")


def test_conversational_turns_are_validated():
    rec = record_from_fields("preference", "conversational", {
        "prompt": chat(("user", "hi")), "chosen": chat(("assistant", "hello")),
        "rejected": chat(("assistant", "go away"))})
    assert rec.chosen == chat(("assistant", "hello"))
    with pytest.raises(EditError, match="message 0: 'role' must be one of") as info:
        record_from_fields("preference", "conversational", {
            "prompt": chat(("user", "hi")), "chosen": chat(("robot", "x")), "rejected": chat(("assistant", "y"))})
    assert info.value.field == "chosen"
    with pytest.raises(EditError, match="at least one message") as info:
        record_from_fields("preference", "conversational", {
            "prompt": chat(("user", "hi")), "chosen": [], "rejected": chat(("assistant", "y"))})
    assert info.value.field == "chosen"
    with pytest.raises(EditError, match="expected a list of messages") as info:
        record_from_fields("preference", "conversational", {
            "prompt": "plain", "chosen": chat(("assistant", "x")), "rejected": chat(("assistant", "y"))})
    assert info.value.field == "prompt"


def test_sft_messages_unpaired_and_prompts():
    msgs = chat(("user", "q"), ("assistant", "a"))
    assert record_from_fields("sft", "conversational", {"messages": msgs}).messages == msgs
    with pytest.raises(EditError) as info:
        record_from_fields("sft", "standard", {"messages": msgs})
    assert info.value.field == "messages"
    assert record_from_fields("sft", "standard", {"prompt": "p", "completion": "c"}).completion == "c"
    rec = record_from_fields("unpaired", "standard", {"prompt": "p", "completion": "c", "label": False})
    assert rec.label is False
    with pytest.raises(EditError, match="expected true or false") as info:
        record_from_fields("unpaired", "standard", {"prompt": "p", "completion": "c", "label": "maybe"})
    assert info.value.field == "label"
    assert record_from_fields("prompts", "standard", {"prompt": "only"}).prompt == "only"
