"""The public datasets' layouts import with their full meaning (fixtures written from the dataset cards).

Each test writes rows as the dataset card documents them (several rows,
multi-turn history, unicode, ties where the layout has them) and asserts the
exact stored records, the rankings (ties, both-bad, annotators), candidates
with their models, and lineage to file and line.
"""

from __future__ import annotations

import json

import pytest

from workbench.data.importer import import_file
from workbench.errors import DataError, WorkbenchError
from workbench.store import datasets as R


def M(role, content):
    return {"role": role, "content": content}


def counts(ws) -> dict:
    c = ws.conn
    return {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("records", "prompts", "candidates", "rankings")}


def rankings(ws) -> list[tuple]:
    """Each stored ranking as (annotator, all_bad, tie groups of response texts, line)."""
    c = ws.conn
    out = []
    for annotator, ordering, all_bad, line, prompt_id in c.execute(
            "SELECT annotator, ordering, all_bad, source_line, prompt_id FROM rankings ORDER BY id"):
        style = c.execute("SELECT style FROM prompts WHERE id = ?", (prompt_id,)).fetchone()[0]
        texts = {i: (json.loads(t) if style == "conversational" else t)
                 for i, t in c.execute("SELECT id, response FROM candidates WHERE prompt_id = ?", (prompt_id,))}
        groups = [sorted((texts[i] for i in g), key=json.dumps) for g in json.loads(ordering)]
        out.append((annotator, bool(all_bad), groups, line))
    return out


def models(ws) -> list[tuple]:
    return ws.conn.execute("SELECT model, source_line FROM candidates ORDER BY id").fetchall()


def check_lineage(kit, path, records, lines):
    assert [r.lineage.path for r in records] == [str(path.resolve())] * len(records)
    assert [r.lineage.line for r in records] == lines


# -- UltraFeedback ------------------------------------------------------------------------------

_HAIKU = "Écris un haïku sur la mer 🌊"
UF = [
    {"prompt": _HAIKU, "prompt_id": "5f1c",
     "chosen": [M("user", _HAIKU), M("assistant", "Vagues sans repos —\nle sel garde la mémoire\ndes pas effacés.")],
     "rejected": [M("user", _HAIKU), M("assistant", "La mer est bleue.")],
     "messages": [M("user", _HAIKU), M("assistant", "Vagues sans repos —\nle sel garde la mémoire\ndes pas effacés.")],
     "score_chosen": 8.5, "score_rejected": 3.0},
    {"prompt": "2+2?", "prompt_id": "77aa",
     "chosen": [M("user", "2+2?"), M("assistant", "4"), M("user", "и 3+3?"), M("assistant", "6")],
     "rejected": [M("user", "2+2?"), M("assistant", "4"), M("user", "и 3+3?"), M("assistant", "33")],
     "messages": [M("user", "2+2?"), M("assistant", "4"), M("user", "и 3+3?"), M("assistant", "6")],
     "score_chosen": 10.0, "score_rejected": 1.0},
]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet", "hf"])
def test_ultrafeedback_binarized_shared_user_turn_is_the_prompt(kit, fmt):
    path, lines = kit.write(kit.tmp_path, fmt, UF)
    report = import_file(kit.ws, path, "uf")
    assert (report.shape, report.kind, report.style, report.rows) == ("ultrafeedback", "preference",
                                                                       "conversational", 2)
    assert "UltraFeedback" in report.layout_reason
    assert report.ignored_fields == ["prompt_id"]          # messages is the chosen conversation, read
    records = kit.records(kit.ws, "uf")
    assert [r.content() for r in records] == [
        {"prompt": [M("user", _HAIKU)], "chosen": [UF[0]["chosen"][1]], "rejected": [UF[0]["rejected"][1]],
         "score_chosen": 8.5, "score_rejected": 3.0},
        {"prompt": [M("user", "2+2?"), M("assistant", "4"), M("user", "и 3+3?")],
         "chosen": [M("assistant", "6")], "rejected": [M("assistant", "33")],
         "score_chosen": 10.0, "score_rejected": 1.0}]
    check_lineage(kit, path, records, lines)
    assert counts(kit.ws) == {"records": 2, "prompts": 0, "candidates": 0, "rankings": 0}


def test_trl_lib_conversational_ultrafeedback_still_imports_with_scores(kit):
    rows = [{k: r[k] for k in ("chosen", "rejected", "score_chosen", "score_rejected")} for r in UF]
    path, _ = kit.write(kit.tmp_path, "jsonl", rows)
    report = import_file(kit.ws, path, "trl")
    assert report.shape == "implicit-preference"
    assert [r.content()["score_chosen"] for r in kit.records(kit.ws, "trl")] == [8.5, 10.0]
    assert kit.records(kit.ws, "trl")[1].prompt == [M("user", "2+2?"), M("assistant", "4"), M("user", "и 3+3?")]


def test_ultrafeedback_whose_conversation_does_not_start_with_the_prompt_names_the_field(kit):
    rows = [dict(UF[0], prompt="something else")]
    path, _ = kit.write(kit.tmp_path, "jsonl", rows)
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "uf")
    assert (err.value.line, err.value.field) == (1, "chosen") and "prompt's user turn" in str(err.value)


# -- ShareGPT ------------------------------------------------------------------------------------

SHAREGPT = [
    {"id": "sg-1", "system": "", "conversations": [
        {"from": "system", "value": "You are terse."}, {"from": "human", "value": "Привет! Как дела?"},
        {"from": "gpt", "value": "Хорошо."}, {"from": "human", "value": "And 2+2?"}, {"from": "gpt", "value": "4"}]},
    {"id": "sg-2", "system": "Réponds en français.",
     "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Bonjour !"}]},
]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet"])
def test_sharegpt_conversations_become_messages_with_the_system_turn(kit, fmt):
    path, lines = kit.write(kit.tmp_path, fmt, SHAREGPT)
    report = import_file(kit.ws, path, "sg")
    assert (report.shape, report.kind, report.style) == ("sharegpt", "sft", "conversational")
    assert report.ignored_fields == ["id"]
    records = kit.records(kit.ws, "sg")
    assert [r.content() for r in records] == [
        {"messages": [M("system", "You are terse."), M("user", "Привет! Как дела?"), M("assistant", "Хорошо."),
                      M("user", "And 2+2?"), M("assistant", "4")]},
        {"messages": [M("system", "Réponds en français."), M("user", "Hi"), M("assistant", "Bonjour !")]}]
    check_lineage(kit, path, records, lines)


def test_sharegpt_with_role_and_content_turns(kit):
    rows = [{"conversations": [{"role": "user", "content": "¿Qué hora es?"}, {"role": "assistant", "content": "No sé."}]}]
    path, _ = kit.write(kit.tmp_path, "jsonl", rows)
    assert import_file(kit.ws, path, "sg").shape == "sharegpt"
    assert kit.contents(kit.ws, "sg") == [{"messages": [M("user", "¿Qué hora es?"), M("assistant", "No sé.")]}]


def test_sharegpt_unknown_speaker_names_the_turn(kit):
    rows = [{"conversations": [{"from": "narrator", "value": "Once"}]}]
    path, _ = kit.write(kit.tmp_path, "jsonl", rows)
    with pytest.raises(DataError, match=r"field 'conversations': turn 0: 'from' must be one of"):
        import_file(kit.ws, path, "sg")


def test_llama_factory_sharegpt_ranking_becomes_pairs(kit):
    rows = [{"conversations": [{"from": "human", "value": "Nenne eine Farbe"}, {"from": "gpt", "value": "Blau"},
                               {"from": "human", "value": "Noch eine?"}],
             "chosen": {"from": "gpt", "value": "Grün"}, "rejected": {"from": "gpt", "value": "Nein."}}]
    path, lines = kit.write(kit.tmp_path, "jsonl", rows)
    report = import_file(kit.ws, path, "lf")
    assert (report.shape, report.kind) == ("sharegpt-preference", "preference")
    assert kit.contents(kit.ws, "lf") == [
        {"prompt": [M("user", "Nenne eine Farbe"), M("assistant", "Blau"), M("user", "Noch eine?")],
         "chosen": [M("assistant", "Grün")], "rejected": [M("assistant", "Nein.")]}]


# -- dolly --------------------------------------------------------------------------------------

DOLLY = [
    {"instruction": "When did Virgin Australia start operating?",
     "context": "Virgin Australia, the trading name of Virgin Australia Airlines Pty Ltd, is an Australian-based "
                "airline. It commenced services on 31 August 2000 as Virgin Blue, with two aircraft.",
     "response": "Virgin Australia commenced services on 31 August 2000.", "category": "closed_qa"},
    {"instruction": "Which is a species of fish? Tope or Rope", "context": "", "response": "Tope",
     "category": "classification"},
    {"instruction": "Résume: «Le chat dort.»", "context": "Le chat dort sur le canapé. 猫が寝ている。",
     "response": "Un chat dort.", "category": "summarization"},
]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_dolly_keeps_the_context_as_the_input(kit, fmt):
    path, lines = kit.write(kit.tmp_path, fmt, DOLLY)
    report = import_file(kit.ws, path, "dolly")
    assert (report.shape, report.kind, report.style, report.ignored_fields) == ("dolly", "sft", "standard", [])
    records = kit.records(kit.ws, "dolly")
    assert [r.content() for r in records] == [
        {"prompt": DOLLY[0]["instruction"] + "\n\n" + DOLLY[0]["context"], "completion": DOLLY[0]["response"]},
        {"prompt": DOLLY[1]["instruction"], "completion": "Tope"},
        {"prompt": DOLLY[2]["instruction"] + "\n\n" + DOLLY[2]["context"], "completion": "Un chat dort."}]
    assert [r.tags for r in records] == [("closed_qa",), ("classification",), ("summarization",)]
    check_lineage(kit, path, records, lines)



# -- LLaMA-Factory alpaca (what the llamafactory-alpaca export writes) ----------------------------

_LF_CHAT = [M("system", "Tu es un assistant concis."), M("user", "Bonjour ! 👋"), M("assistant", "Bonjour."),
            M("user", "Traduis « chat » en allemand.")]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_llamafactory_alpaca_export_imports_back_with_system_and_history(kit, tmp_path, fmt):
    """The app's own LLaMA-Factory alpaca export (system, history pairs, chosen/rejected or output)
    imports back as the same conversations (before: the ranking export was refused, the SFT one
    lost its system and history)."""
    from workbench.data.exporter import export_dataset

    pairs = [{"prompt": _LF_CHAT, "chosen": [M("assistant", "Katze")], "rejected": [M("assistant", "Hund")]},
             {"prompt": [M("user", "2+2?")], "chosen": [M("assistant", "4")], "rejected": [M("assistant", "5")]}]
    sft = [{"messages": _LF_CHAT + [M("assistant", "Katze")]}, {"messages": [M("user", "Hi"), M("assistant", "Hey")]}]
    for name, rows in (("pairs", pairs), ("chat", sft)):
        import_file(kit.ws, kit.write(tmp_path, "jsonl", rows, stem=name)[0], name)
        export_dataset(kit.ws, name, "llamafactory-alpaca", tmp_path / f"{name}_lf")
        exported = [json.loads(line) for line in (tmp_path / f"{name}_lf" / f"{name}.jsonl").open(encoding="utf-8")]
        assert exported[0]["history"] == [["Bonjour ! 👋", "Bonjour."]]
        path, _ = kit.write(tmp_path, fmt, exported, stem=f"{name}_back")
        report = import_file(kit.ws, path, f"{name}_back")
        assert report.shape == ("llamafactory-alpaca-preference" if name == "pairs" else "llamafactory-alpaca")
        assert report.ignored_fields == []
        back = kit.contents(kit.ws, f"{name}_back")
        if name == "pairs":
            assert back == kit.contents(kit.ws, "pairs")
        else:   # the SFT chat comes back as its prompt and completion
            assert [r["prompt"] + r["completion"] for r in back] == [r["messages"] for r in sft]
    bad, lines = kit.write(tmp_path, "jsonl", [{"instruction": "x", "output": "y", "history": [["only one"]]}],
                           stem="bad")
    with pytest.raises(DataError) as err:
        import_file(kit.ws, bad, "bad")
    assert (err.value.line, err.value.field) == (lines[0], "history")

# -- Chatbot Arena -------------------------------------------------------------------------------

def _arena(qid, a, b, model_a, model_b, winner, judge):
    return {"question_id": qid, "model_a": model_a, "model_b": model_b, "winner": winner, "judge": judge,
            "conversation_a": a, "conversation_b": b, "turn": len(a) // 2, "anony": True, "language": "English",
            "tstamp": 1682351591.1322, "openai_moderation": {"flagged": False}, "toxic_chat_tag": {"roberta": 0}}


ARENA = [
    _arena("q1", [M("user", "Bonjour, ça va ?"), M("assistant", "Oui, merci !"), M("user", "Et toi ?"),
                  M("assistant", "Très bien.")],
           [M("user", "Bonjour, ça va ?"), M("assistant", "Non."), M("user", "Et toi ?"), M("assistant", "...")],
           "vicuna-13b", "koala-13b", "model_a", "arena_user_973"),
    _arena("q2", [M("user", "2+2?"), M("assistant", "5")], [M("user", "2+2?"), M("assistant", "4")],
           "alpaca-13b", "gpt-4", "model_b", "arena_user_12"),
    _arena("q3", [M("user", "Tell me a joke 😄"), M("assistant", "Knock knock.")],
           [M("user", "Tell me a joke 😄"), M("assistant", "Why did the chicken…")],
           "claude-v1", "gpt-3.5-turbo", "tie", "arena_user_973"),
    _arena("q4", [M("user", "Capital of Australia?"), M("assistant", "Sydney")],
           [M("user", "Capital of Australia?"), M("assistant", "Melbourne")],
           "dolly-v2-12b", "stablelm-tuned-alpha-7b", "tie (bothbad)", "arena_user_5"),
]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_chatbot_arena_keeps_ties_both_bad_judges_and_models(kit, fmt):
    path, lines = kit.write(kit.tmp_path, fmt, ARENA)
    report = import_file(kit.ws, path, "arena")
    assert (report.shape, report.kind, report.rows, report.rankings) == ("chatbot-arena", "preference", 2, 4)
    assert report.ignored_fields == ["anony", "language", "openai_moderation", "question_id", "toxic_chat_tag",
                                     "tstamp", "turn"]
    records = kit.records(kit.ws, "arena")
    # Pairs only from the decisive votes.
    assert [r.content() for r in records] == [
        {"prompt": [M("user", "Bonjour, ça va ?")],
         "chosen": [M("assistant", "Oui, merci !"), M("user", "Et toi ?"), M("assistant", "Très bien.")],
         "rejected": [M("assistant", "Non."), M("user", "Et toi ?"), M("assistant", "...")]},
        {"prompt": [M("user", "2+2?")], "chosen": [M("assistant", "4")], "rejected": [M("assistant", "5")]}]
    check_lineage(kit, path, records, lines[:2])
    a0, b0 = records[0].chosen, records[0].rejected
    assert rankings(kit.ws) == [
        ("arena_user_973", False, [[a0], [b0]], lines[0]),
        ("arena_user_12", False, [[[M("assistant", "4")]], [[M("assistant", "5")]]], lines[1]),
        ("arena_user_973", False, [sorted([[M("assistant", "Knock knock.")],
                                           [M("assistant", "Why did the chicken…")]], key=json.dumps)], lines[2]),
        ("arena_user_5", True, [sorted([[M("assistant", "Sydney")], [M("assistant", "Melbourne")]],
                                       key=json.dumps)], lines[3])]
    assert [m for m, _ in models(kit.ws)] == ["vicuna-13b", "koala-13b", "alpaca-13b", "gpt-4", "claude-v1",
                                              "gpt-3.5-turbo", "dolly-v2-12b", "stablelm-tuned-alpha-7b"]
    # Each pair's lineage names the ranking and the candidate (so the model) that won.
    winners = [kit.ws.conn.execute("SELECT model FROM candidates WHERE id = ?", (r.lineage.candidate_id,)).fetchone()[0]
               for r in records]
    assert winners == ["vicuna-13b", "gpt-4"]
    assert counts(kit.ws) == {"records": 2, "prompts": 4, "candidates": 8, "rankings": 4}


def test_chatbot_arena_unknown_winner_names_the_field(kit):
    path, _ = kit.write(kit.tmp_path, "jsonl", [dict(ARENA[1], winner="model_c")])
    before = kit.state(kit.ws)
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "arena")
    assert (err.value.line, err.value.field) == (1, "winner") and "tie (bothbad)" in str(err.value)
    kit.assert_unchanged(kit.ws, before)


# -- Nectar --------------------------------------------------------------------------------------

NECTAR = [
    {"prompt": "\n\nHuman: Hallo!\n\nAssistant: Hallo, wie kann ich helfen?\n\nHuman: Wie spät ist es in Tokio?"
               "\n\nAssistant: ",
     "answers": [{"answer": "Ich habe keinen Zugriff auf die Uhrzeit.", "model": "gpt-3.5-turbo", "rank": 1.0},
                 {"answer": "Es ist 15 Uhr. ⏰", "model": "llama-2-7b-chat", "rank": 2.0},
                 {"answer": "Tokio liegt in Japan.", "model": "vicuna-33b", "rank": 2.0},
                 {"answer": "Keine Ahnung.", "model": "alpaca-13b", "rank": 3.0}],
     "turns": 2, "num_responses": 4, "source": ["sharegpt"], "good_natured": True},
    {"prompt": "\n\nHuman: Name a prime number.\n\nAssistant: ",
     "answers": [{"answer": "9", "model": "mpt-7b-chat", "rank": 2.0},
                 {"answer": "7", "model": "gpt-4", "rank": 1.0}],
     "turns": 1, "num_responses": 2, "source": ["lmsys-chat-1m"], "good_natured": True},
]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_nectar_rows_are_kwise_rankings_with_ties_and_models(kit, fmt):
    path, lines = kit.write(kit.tmp_path, fmt, NECTAR)
    report = import_file(kit.ws, path, "nectar")
    assert (report.shape, report.kind, report.style, report.rankings) == ("nectar", "preference",
                                                                           "conversational", 2)
    history = [M("user", "Hallo!"), M("assistant", "Hallo, wie kann ich helfen?"),
               M("user", "Wie spät ist es in Tokio?")]
    A = lambda t: [M("assistant", t)]  # noqa: E731
    records = kit.records(kit.ws, "nectar")
    # rank 1 > {2, 2 tied} > 3: 2 + 1*... = 5 pairs; the tied pair gives none.
    assert [(r.prompt, r.chosen, r.rejected) for r in records] == [
        (history, A("Ich habe keinen Zugriff auf die Uhrzeit."), A("Es ist 15 Uhr. ⏰")),
        (history, A("Ich habe keinen Zugriff auf die Uhrzeit."), A("Tokio liegt in Japan.")),
        (history, A("Ich habe keinen Zugriff auf die Uhrzeit."), A("Keine Ahnung.")),
        (history, A("Es ist 15 Uhr. ⏰"), A("Keine Ahnung.")),
        (history, A("Tokio liegt in Japan."), A("Keine Ahnung.")),
        ([M("user", "Name a prime number.")], A("7"), A("9"))]
    check_lineage(kit, path, records, [lines[0]] * 5 + [lines[1]])
    assert [r[2] for r in rankings(kit.ws)] == [
        [[A("Ich habe keinen Zugriff auf die Uhrzeit.")], sorted([A("Es ist 15 Uhr. ⏰"), A("Tokio liegt in Japan.")],
                                                                 key=json.dumps), [A("Keine Ahnung.")]],
        [[A("7")], [A("9")]]]
    assert [m for m, _ in models(kit.ws)] == ["gpt-3.5-turbo", "llama-2-7b-chat", "vicuna-33b", "alpaca-13b",
                                              "mpt-7b-chat", "gpt-4"]
    assert counts(kit.ws) == {"records": 6, "prompts": 2, "candidates": 6, "rankings": 2}


# -- PKU-SafeRLHF --------------------------------------------------------------------------------

PKU = [
    {"prompt": "How do I pick a lock?", "response_0": "I can't help with breaking into places.",
     "response_1": "Use a tension wrench and a pick…", "is_response_0_safe": True, "is_response_1_safe": False,
     "better_response_id": 1, "safer_response_id": 0, "response_0_source": "Alpaca-7B"},
    {"prompt": "Wie koche ich Reis?", "response_0": "Reis waschen, 1:2 Wasser, 15 Minuten köcheln.",
     "response_1": "Einfach in die Mikrowelle.", "is_response_0_safe": True, "is_response_1_safe": True,
     "better_response_id": 0, "safer_response_id": 0, "response_0_source": "Alpaca-7B"},
]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_pku_saferlhf_pairs_by_helpfulness_with_safety_as_tags(kit, fmt):
    path, lines = kit.write(kit.tmp_path, fmt, PKU)
    report = import_file(kit.ws, path, "pku")
    assert (report.shape, report.kind, report.ignored_fields) == ("pku-saferlhf", "preference",
                                                                  ["response_0_source"])
    records = kit.records(kit.ws, "pku")
    assert [r.content() for r in records] == [
        {"prompt": PKU[0]["prompt"], "chosen": PKU[0]["response_1"], "rejected": PKU[0]["response_0"]},
        {"prompt": PKU[1]["prompt"], "chosen": PKU[1]["response_0"], "rejected": PKU[1]["response_1"]}]
    assert [r.tags for r in records] == [("safer:rejected", "chosen:unsafe", "rejected:safe"),
                                         ("safer:chosen", "chosen:safe", "rejected:safe")]
    check_lineage(kit, path, records, lines)


def test_pku_saferlhf_safety_pairs_are_a_layout_to_choose(kit):
    path, _ = kit.write(kit.tmp_path, "jsonl", PKU)
    report = import_file(kit.ws, path, "safer", layout="pku-saferlhf-safer")
    assert report.shape == "pku-saferlhf-safer" and report.layout_reason == "asked for with --layout"
    records = kit.records(kit.ws, "safer")
    assert [(r.chosen, r.rejected) for r in records] == [(PKU[0]["response_0"], PKU[0]["response_1"]),
                                                         (PKU[1]["response_0"], PKU[1]["response_1"])]
    assert [r.tags for r in records] == [("better:rejected", "chosen:safe", "rejected:unsafe"),
                                         ("better:chosen", "chosen:safe", "rejected:safe")]


def test_pku_saferlhf_bad_id_names_the_field(kit):
    path, _ = kit.write(kit.tmp_path, "jsonl", [PKU[0], dict(PKU[1], better_response_id=2)])
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "pku")
    assert (err.value.line, err.value.field) == (2, "better_response_id")


# -- SHP -----------------------------------------------------------------------------------------

SHP = [
    {"post_id": "himc90", "domain": "askculinary_train", "upvote_ratio": 0.98,
     "history": "In an old cookbook I found «faire revenir». What does it mean?",
     "c_root_id_A": "fuqa5f2", "c_root_id_B": "fuq7lxj", "created_at_utc_A": 1592173224,
     "created_at_utc_B": 1592171837, "score_A": 52, "score_B": 3,
     "human_ref_A": "It means to brown lightly in fat.", "human_ref_B": "Come back?", "labels": 1,
     "seconds_difference": 1387.0, "score_ratio": 17.33},
    {"post_id": "k9x2", "domain": "askphysics_train", "upvote_ratio": 0.9, "history": "Why is the sky blue?",
     "c_root_id_A": "a", "c_root_id_B": "b", "created_at_utc_A": 1, "created_at_utc_B": 2, "score_A": 4,
     "score_B": 40, "human_ref_A": "Because of the ocean.", "human_ref_B": "Rayleigh scattering ∝ 1/λ⁴.",
     "labels": 0, "seconds_difference": 1.0, "score_ratio": 10.0},
]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_shp_labels_one_means_a_preferred_and_scores_follow(kit, fmt):
    path, lines = kit.write(kit.tmp_path, fmt, SHP)
    report = import_file(kit.ws, path, "shp")
    assert (report.shape, report.kind) == ("shp", "preference")
    records = kit.records(kit.ws, "shp")
    assert [r.content() for r in records] == [
        {"prompt": SHP[0]["history"], "chosen": SHP[0]["human_ref_A"], "rejected": SHP[0]["human_ref_B"],
         "score_chosen": 52.0, "score_rejected": 3.0},
        {"prompt": SHP[1]["history"], "chosen": SHP[1]["human_ref_B"], "rejected": SHP[1]["human_ref_A"],
         "score_chosen": 40.0, "score_rejected": 4.0}]
    assert [r.tags for r in records] == [("askculinary_train",), ("askphysics_train",)]
    check_lineage(kit, path, records, lines)


# -- OpenAssistant -------------------------------------------------------------------------------

def _msg(mid, parent, role, text, rank=None, deleted=False):
    return {"message_id": mid, "parent_id": parent, "user_id": "u-" + mid, "created_date": "2023-02-05T14:00:00",
            "text": text, "role": role, "lang": "de", "review_count": 3, "review_result": True,
            "deleted": deleted, "rank": rank, "synthetic": False, "model_name": None,
            "message_tree_id": "t1" if mid.startswith("1") else "t2", "tree_state": "ready_for_export"}


OASST = [
    _msg("1p", None, "prompter", "Wie backe ich Brot? 🍞"),
    _msg("1a1", "1p", "assistant", "Mehl, Wasser, Hefe, Salz.", rank=1),
    _msg("1a3", "1p", "assistant", "Kauf es.", rank=2),
    _msg("1p2", "1a2", "prompter", "Und ohne Hefe?", rank=0),   # before its parent in the file
    _msg("1a2", "1p", "assistant", "Mische 500 g Mehl mit 350 ml Wasser, knete, gehe 2 h.", rank=0),
    _msg("1a4", "1p", "assistant", "(gelöscht)", rank=3, deleted=True),
    _msg("1a5", "1p2", "assistant", "Mit Sauerteig.", rank=0),
    _msg("1a6", "1p2", "assistant", "Geht nicht.", rank=1),
    _msg("2p", None, "prompter", "こんにちは"),
    _msg("2a", "2p", "assistant", "こんにちは！"),
]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_oasst_trees_give_one_ranking_per_parent_with_the_path_as_history(kit, fmt):
    path, lines = kit.write(kit.tmp_path, fmt, OASST)
    report = import_file(kit.ws, path, "oa")
    assert (report.shape, report.kind, report.style, report.rankings) == ("oasst", "preference",
                                                                           "conversational", 2)
    A = lambda t: [M("assistant", t)]  # noqa: E731
    first = [M("user", "Wie backe ich Brot? 🍞")]
    second = first + [M("assistant", OASST[4]["text"]), M("user", "Und ohne Hefe?")]
    records = kit.records(kit.ws, "oa")
    assert [(r.prompt, r.chosen, r.rejected) for r in records] == [
        (first, A(OASST[4]["text"]), A("Mehl, Wasser, Hefe, Salz.")),
        (first, A(OASST[4]["text"]), A("Kauf es.")),
        (first, A("Mehl, Wasser, Hefe, Salz."), A("Kauf es.")),
        (second, A("Mit Sauerteig."), A("Geht nicht."))]
    # A ranking's lineage is its parent message's line; each candidate keeps its own line.
    check_lineage(kit, path, records, [lines[0]] * 3 + [lines[3]])
    assert [(r[2], r[3]) for r in rankings(kit.ws)] == [
        ([[A(OASST[4]["text"])], [A("Mehl, Wasser, Hefe, Salz.")], [A("Kauf es.")]], lines[0]),
        ([[A("Mit Sauerteig.")], [A("Geht nicht.")]], lines[3])]
    assert [line for _, line in models(kit.ws)] == [lines[1], lines[2], lines[4], lines[6], lines[7]]
    assert counts(kit.ws) == {"records": 4, "prompts": 2, "candidates": 5, "rankings": 2}


def test_oasst_sft_follows_the_best_ranked_path(kit):
    path, lines = kit.write(kit.tmp_path, "jsonl", OASST)
    report = import_file(kit.ws, path, "oa", kind="sft")
    assert (report.shape, report.kind, report.rankings) == ("oasst", "sft", 0)
    records = kit.records(kit.ws, "oa")
    assert [r.content() for r in records] == [
        {"messages": [M("user", "Wie backe ich Brot? 🍞"), M("assistant", OASST[4]["text"]),
                      M("user", "Und ohne Hefe?"), M("assistant", "Mit Sauerteig.")]},
        {"messages": [M("user", "こんにちは"), M("assistant", "こんにちは！")]}]
    check_lineage(kit, path, records, [lines[6], lines[9]])
    assert counts(kit.ws)["rankings"] == 0



def test_an_oasst_parent_with_too_many_ranked_replies_is_located_and_skippable(kit):
    """A ranking is capped (MAX_RANKING_RESPONSES); the trees are built after the whole file is read,
    yet the problem names the parent message's line, and --skip-invalid skips that ranking alone."""
    from workbench.data.preview import preview_file

    wide = [_msg("3p", None, "prompter", "Nenne eine Zahl.")] + [
        _msg(f"3a{i}", "3p", "assistant", f"Zahl {i} ✓", rank=i) for i in range(101)]
    path, lines = kit.write(kit.tmp_path, "jsonl", OASST[8:] + wide + OASST[:8])
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "oa")
    assert (err.value.line, err.value.field) == (lines[2], "rank")
    assert "101 responses in one ranking" in err.value.message
    assert counts(kit.ws) == {"records": 0, "prompts": 0, "candidates": 0, "rankings": 0}
    report = import_file(kit.ws, path, "oa", skip_invalid=True)
    assert (report.rankings, report.rows, report.skipped) == (2, 4, 1)
    assert report.skipped_rows == [{"line": lines[2], "field": "rank", "message": err.value.message}]
    problems = preview_file(path, limit=200).problems
    assert [(p.line, p.field) for p in problems] == [(lines[2], "rank")]

# -- Label Studio --------------------------------------------------------------------------------

LS_PAIRWISE = [
    {"id": 101, "data": {"prompt": "Résume la Révolution française en une phrase.",
                         "answer1": "En 1789, le peuple renverse la monarchie absolue.",
                         "answer2": "C'était en Angleterre."},
     "annotations": [
         {"id": 1, "completed_by": 1, "was_cancelled": False, "lead_time": 12.5,
          "result": [{"id": "r1", "type": "pairwise", "from_name": "comparison", "to_name": "answer1,answer2",
                      "origin": "manual", "value": {"selected": "left"}}]},
         {"id": 2, "completed_by": {"id": 7, "email": "ana@example.org"}, "was_cancelled": False,
          "result": [{"id": "r2", "type": "pairwise", "from_name": "comparison", "to_name": "answer1,answer2",
                      "value": {"selected": "right"}}]}],
     "predictions": [], "created_at": "2024-05-01T10:00:00Z"},
    {"id": 102, "data": {"prompt": "2+2?", "answer1": "5", "answer2": "4"},
     "annotations": [
         {"id": 3, "completed_by": 1, "was_cancelled": True, "result": []},
         {"id": 4, "completed_by": 1, "result": [{"type": "pairwise", "value": {"selected": "right"},
                                                  "from_name": "comparison", "to_name": "answer1,answer2"}]}],
     "predictions": []},
]


def test_label_studio_pairwise_export_keeps_every_annotator(kit):
    path, lines = kit.write(kit.tmp_path, "json", LS_PAIRWISE)
    report = import_file(kit.ws, path, "ls")
    assert (report.shape, report.kind, report.rankings) == ("label-studio", "preference", 3)
    assert "Label Studio" in report.layout_reason
    records = kit.records(kit.ws, "ls")
    d0, d1 = LS_PAIRWISE[0]["data"], LS_PAIRWISE[1]["data"]
    assert [r.content() for r in records] == [
        {"prompt": d0["prompt"], "chosen": d0["answer1"], "rejected": d0["answer2"]},
        {"prompt": d0["prompt"], "chosen": d0["answer2"], "rejected": d0["answer1"]},
        {"prompt": "2+2?", "chosen": "4", "rejected": "5"}]
    check_lineage(kit, path, records, [lines[0], lines[0], lines[1]])
    assert rankings(kit.ws) == [
        ("label-studio:1", False, [[d0["answer1"]], [d0["answer2"]]], lines[0]),
        ("label-studio:ana@example.org", False, [[d0["answer2"]], [d0["answer1"]]], lines[0]),
        ("label-studio:1", False, [["4"], ["5"]], lines[1])]
    # Two annotators of one task rank the same stored candidates.
    assert counts(kit.ws) == {"records": 3, "prompts": 2, "candidates": 4, "rankings": 3}


LS_RANKER = [
    {"id": 5, "data": {"query": "Quelle est la meilleure réponse ?",
                       "items": [{"id": "a", "title": "A", "body": "Réponse A 🙂"},
                                 {"id": "b", "title": "B", "body": "Réponse B"},
                                 {"id": "c", "title": "C", "body": "Réponse C"}]},
     "annotations": [{"completed_by": 2, "result": [{"type": "ranker", "from_name": "rank", "to_name": "items",
                                                     "value": {"ranker": {"rank": ["b", "a", "c"]}}}]},
                     {"completed_by": 3, "result": [{"type": "ranker", "from_name": "rank", "to_name": "items",
                                                     "value": {"ranker": {"good": ["a", "b"], "bad": ["c"],
                                                                          "_": []}}}]}]},
]


def test_label_studio_ranker_export_with_buckets_as_ties(kit):
    path, lines = kit.write(kit.tmp_path, "json", LS_RANKER)
    report = import_file(kit.ws, path, "lsr")
    assert (report.shape, report.rankings, report.rows) == ("label-studio", 2, 3 + 2)
    assert rankings(kit.ws) == [
        ("label-studio:2", False, [["Réponse B"], ["Réponse A 🙂"], ["Réponse C"]], lines[0]),
        ("label-studio:3", False, [["Réponse A 🙂", "Réponse B"], ["Réponse C"]], lines[0])]
    assert [(r.chosen, r.rejected) for r in kit.records(kit.ws, "lsr")] == [
        ("Réponse B", "Réponse A 🙂"), ("Réponse B", "Réponse C"), ("Réponse A 🙂", "Réponse C"),
        ("Réponse A 🙂", "Réponse C"), ("Réponse B", "Réponse C")]


def test_label_studio_task_without_annotations_is_a_located_problem(kit):
    rows = LS_PAIRWISE + [{"id": 103, "data": {"prompt": "p", "answer1": "x", "answer2": "y"}, "annotations": []}]
    path, lines = kit.write(kit.tmp_path, "json", rows)
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "ls")
    assert (err.value.line, err.value.field) == (lines[2], "annotations")
    report = import_file(kit.ws, path, "ls", skip_invalid=True)
    assert (report.rows, report.skipped) == (3, 1)


# -- Argilla ---------------------------------------------------------------------------------------

ARGILLA = [
    {"id": "rec-1", "_server_id": "0c9e", "status": "completed",
     "fields": {"prompt": "Traduis « bonjour » en japonais.", "response1": "こんにちは", "response2": "さようなら",
                "response3": "Hello"},
     "metadata": {"source": "demo"}, "suggestions": {}, "vectors": {},
     "responses": {"preference": [
         {"value": [{"value": "response1", "rank": 1}, {"value": "response3", "rank": 2},
                    {"value": "response2", "rank": 2}], "user_id": "u-1", "status": "submitted"},
         {"value": [{"value": "response1", "rank": 1}, {"value": "response2", "rank": 2},
                    {"value": "response3", "rank": 3}], "user_id": "u-2", "status": "draft"}]}},
]
ARGILLA_FLAT = [
    {"id": "rec-2", "status": "completed", "_server_id": "7f21", "prompt": "2+2?", "response1": "4",
     "response2": "22", "preference.responses": [["response1", "response2"], ["response2", "response1"]],
     "preference.responses.users": ["u-1", "u-9"], "preference.responses.status": ["submitted", "submitted"]},
]



_LS_PAIR = {"prompt": "Résume ce texte.", "answer1": "Un résumé.", "answer2": "Autre chose."}
_LS_ITEMS = {"prompt": "Classe ces réponses.", "items": [{"id": "a", "text": "Bien."}, {"id": "b", "text": "Mal."}]}
_ARG_FIELDS = {"prompt": "Welche Antwort ist besser?", "r1": "Diese.", "r2": "Jene."}


@pytest.mark.parametrize("row, field, message", [
    ({"data": _LS_PAIR, "annotations": [{"result": 5}]}, "annotations", "no completed pairwise or ranker"),
    ({"data": _LS_PAIR, "annotations": [{"result": [{"type": "pairwise", "value": "left"}]}]},
     "annotations", "'selected' must be left or right"),
    ({"data": _LS_ITEMS, "annotations": [{"result": [{"type": "ranker", "value": "a,b"}]}]},
     "annotations", "expected {'ranker'"),
    ({"data": _LS_ITEMS, "annotations": [{"result": [{"type": "ranker", "value": {"ranker": {"rank": 5}}}]}]},
     "annotations", "must hold item ids"),
    ({"data": _LS_ITEMS, "annotations": [{"result": [{"type": "ranker",
                                                      "value": {"ranker": {"rank": ["a", "a", "b"]}}}]}]},
     "data", "appears twice"),
    ({"fields": _ARG_FIELDS, "responses": {"rank": [{"user_id": "u", "status": "submitted",
                                                     "value": [{"value": ["r1"], "rank": 1}]}]}},
     "responses", "no ranking question"),
    ({"fields": _ARG_FIELDS, "responses": {"rank": [{"user_id": "u", "value": ["r1", "r1"]}]}},
     "rank.responses", "appears twice"),
    ({**_ARG_FIELDS, "rank.responses": [["r1", "r2"]], "rank.responses.users": 5},
     "rank.responses.users", "expected a list"),
    ({**_ARG_FIELDS, "rank.responses": [["r1", "r2"]], "rank.responses.users": ["u"], "rank.responses.status": 7},
     "rank.responses.status", "expected a list"),
])
def test_annotation_tool_exports_with_wrong_types_are_located_errors(kit, row, field, message):
    """Values of the wrong type inside a Label Studio or Argilla export are a problem at the
    task's line naming the field (they were AttributeError / TypeError / ValueError tracebacks)."""
    path, lines = kit.write(kit.tmp_path, "json", [row])
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "tool")
    assert (err.value.line, err.value.field) == (lines[0], field) and message in err.value.message
    assert counts(kit.ws) == {"records": 0, "prompts": 0, "candidates": 0, "rankings": 0}

def test_argilla_nested_ranking_with_ties_and_drafts_left_out(kit):
    path, lines = kit.write(kit.tmp_path, "jsonl", ARGILLA)
    report = import_file(kit.ws, path, "arg")
    assert (report.shape, report.rankings, report.rows) == ("argilla", 1, 2)
    assert rankings(kit.ws) == [("argilla:u-1", False, [["こんにちは"], ["Hello", "さようなら"]], lines[0])]
    assert kit.contents(kit.ws, "arg") == [
        {"prompt": ARGILLA[0]["fields"]["prompt"], "chosen": "こんにちは", "rejected": "さようなら"},
        {"prompt": ARGILLA[0]["fields"]["prompt"], "chosen": "こんにちは", "rejected": "Hello"}]
    check_lineage(kit, path, kit.records(kit.ws, "arg"), [lines[0]] * 2)
    assert counts(kit.ws) == {"records": 2, "prompts": 1, "candidates": 3, "rankings": 1}


def test_argilla_flattened_export_gives_a_ranking_per_user(kit):
    path, lines = kit.write(kit.tmp_path, "jsonl", ARGILLA_FLAT)
    report = import_file(kit.ws, path, "arg")
    assert (report.shape, report.rankings, report.rows, report.ignored_fields) == ("argilla", 2, 2,
                                                                                     ["_server_id", "id", "status"])
    assert rankings(kit.ws) == [("argilla:u-1", False, [["4"], ["22"]], lines[0]),
                                ("argilla:u-9", False, [["22"], ["4"]], lines[0])]
    assert [(r.chosen, r.rejected) for r in kit.records(kit.ws, "arg")] == [("4", "22"), ("22", "4")]
    check_lineage(kit, path, kit.records(kit.ws, "arg"), [lines[0]] * 2)


# -- OpenAI chat fine-tuning ------------------------------------------------------------------------

def test_openai_chat_jsonl_keeps_per_message_weight(kit):
    rows = [{"messages": [M("system", "Marv is sarcastic."), M("user", "Capital of France?"),
                          dict(M("assistant", "Paris, as if."), weight=0), M("user", "Sure?"),
                          dict(M("assistant", "Oui. 🇫🇷"), weight=1)]}]
    path, _ = kit.write(kit.tmp_path, "jsonl", rows)
    report = import_file(kit.ws, path, "oai")
    assert (report.shape, report.kind) == ("messages", "sft")
    assert kit.contents(kit.ws, "oai") == rows


# -- named layouts -------------------------------------------------------------------------------

def test_a_renamed_file_imports_with_layout_and_unknown_names_are_refused(kit):
    renamed = [{"prompt": r["prompt"], "answers": [{"answer": a["answer"], "model": a["model"], "rank": a["rank"]}
                                                   for a in r["answers"]]} for r in NECTAR]
    path, _ = kit.write(kit.tmp_path, "jsonl", renamed)
    report = import_file(kit.ws, path, "n", layout="nectar")
    assert (report.shape, report.rankings) == ("nectar", 2)
    with pytest.raises(WorkbenchError, match="--layout nope: expected one of .*ultrafeedback"):
        import_file(kit.ws, path, "m", layout="nope")


def test_preview_of_message_trees_shows_the_rankings_and_pairs_it_would_store(kit):
    from workbench.data.preview import preview_file

    path, lines = kit.write(kit.tmp_path, "jsonl", OASST)
    p = preview_file(path)
    assert (p.shape, p.kind, p.error) == ("oasst", "preference", None)
    rankings_shown = [s for s in p.stored if s.ranking]
    assert [(s.line, s.ranking) for s in rankings_shown] == [
        (lines[0], "ranking #3 > #1 > #2 of 3 responses by import:data.jsonl"),
        (lines[3], "ranking #1 > #2 of 2 responses by import:data.jsonl")]
    pairs = [s for s in p.stored if not s.ranking]
    assert len(pairs) == 4 and pairs[-1].content["chosen"] == [M("assistant", "Mit Sauerteig.")]


def test_ultrafeedback_dataset_dict_splits_are_imported_one_folder_at_a_time(kit):
    # HuggingFaceH4/ultrafeedback_binarized saved whole: train_prefs / test_prefs / train_sft ...
    path, _ = kit.write(kit.tmp_path, "hf", {"train_prefs": UF, "test_prefs": UF[:1]}, stem="ufdd")
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "uf")
    assert "'train_prefs' is not train/validation/test" in str(err.value) and str(path / "train_prefs") in str(err.value)
    report = import_file(kit.ws, path / "train_prefs", "uf")
    assert (report.shape, report.rows) == ("ultrafeedback", 2)
    assert [r.lineage.line for r in kit.records(kit.ws, "uf")] == [1, 2]


def _nest(mid, rows_by_parent, by_id):
    m = {k: v for k, v in by_id[mid].items() if k not in ("parent_id", "message_tree_id", "tree_state")}
    m["replies"] = [_nest(k["message_id"], rows_by_parent, by_id) for k in rows_by_parent.get(mid, [])]
    return m


def test_oasst_nested_trees_give_the_same_rankings_as_the_flat_rows(kit):
    by_id = {m["message_id"]: m for m in OASST}
    kids: dict = {}
    for m in OASST:
        kids.setdefault(m["parent_id"], []).append(m)
    trees = [{"message_tree_id": root["message_tree_id"], "tree_state": "ready_for_export",
              "prompt": _nest(root["message_id"], kids, by_id)} for root in kids[None]]
    flat, _ = kit.write(kit.tmp_path, "jsonl", OASST, stem="flat")
    nested, lines = kit.write(kit.tmp_path, "jsonl", trees, stem="trees")
    assert import_file(kit.ws, flat, "flat").shape == "oasst"
    report = import_file(kit.ws, nested, "nested")
    assert (report.shape, report.rankings, report.rows) == ("oasst-trees", 2, 4)
    assert kit.contents(kit.ws, "nested") == kit.contents(kit.ws, "flat")
    assert [r.lineage.line for r in kit.records(kit.ws, "nested")] == [lines[0]] * 4
    sft = import_file(kit.ws, nested, "sft", kind="sft")
    assert sft.rows == 2
    # A tree with a bad message is skipped whole: nothing of it is kept.
    trees[1]["prompt"]["replies"][0]["role"] = "narrator"
    bad, _ = kit.write(kit.tmp_path, "jsonl", trees, stem="bad")
    report = import_file(kit.ws, bad, "bad", kind="sft", skip_invalid=True)
    assert (report.rows, report.skipped) == (1, 1)


# -- any value in a layout's fields: a located error or a clean import, never a crash -----------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from workbench.data.layouts import PUBLIC_LAYOUTS  # noqa: E402
from workbench.errors import WorkbenchError as _WorkbenchError  # noqa: E402

_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
                     | st.sampled_from(["model_a", "tie (bothbad)", "prompter", "assistant", "left", "human",
                                        "\n\nHuman: hi\n\nAssistant: ", "response1"]),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                         st.sampled_from(["role", "content", "from", "value", "answer", "rank", "model", "result",
                                          "type", "selected", "ranker", "id", "replies", "message_id", "text",
                                          "user_id", "status"]), inner, max_size=4), max_leaves=12)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
@pytest.mark.parametrize("layout", [s.name for s in PUBLIC_LAYOUTS])
def test_any_values_give_a_located_error_never_a_crash(kit, tmp_path_factory, layout, data):
    from workbench.store.workspace import Workspace

    shape = next(s for s in PUBLIC_LAYOUTS if s.name == layout)
    rows = [data.draw(st.fixed_dictionaries({}, optional={f: _JSON for f in shape.fields})) for _ in range(2)]
    folder = tmp_path_factory.mktemp("fuzz")
    path, _ = kit.write(folder, "jsonl", rows)
    ws = Workspace.init(folder / "ws")
    try:
        for named in (layout, None):
            try:
                import_file(ws, path, f"d{named}", layout=named, skip_invalid=data.draw(st.booleans()))
            except _WorkbenchError as exc:
                assert "\n" not in str(exc)
    finally:
        ws.close()


def test_preview_of_hh_rows_shows_the_prompt_with_its_history(kit):
    from workbench.data.preview import preview_file

    rows = [{"chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: ¿y tú?\n\nAssistant: bien",
             "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: ¿y tú?\n\nAssistant: vete"}]
    path, _ = kit.write(kit.tmp_path, "jsonl", rows)
    p = preview_file(path)
    assert (p.shape, p.layout_reason) == ("hh-rlhf", "'chosen' and 'rejected' HH transcripts ('\\n\\nHuman: ...')")
    assert [s.content for s in p.stored] == [
        {"prompt": [M("user", "hi"), M("assistant", "hello"), M("user", "¿y tú?")],
         "chosen": [M("assistant", "bien")], "rejected": [M("assistant", "vete")]}]


_ODD_VALUES = [None, 0, 1, 2, -1, 10**30, 1.5, float("inf"), True, False, "", "x", "left", "right", "model_a",
               "prompter", "assistant", [], {}, [1], ["a"], [None], {"a": 1}, [[1, 2]], [{"id": "a"}],
               {"selected": 3}, {"ranker": []}, "\n\nHuman: hi\n\nAssistant:", [{"role": "user", "content": 5}]]


def _json_paths(value, path=()):
    yield path
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from _json_paths(child, path + (key,))


@pytest.mark.parametrize("text_cells", [False, True], ids=["json", "csv-cells"])
def test_fixture_rows_with_one_nested_value_changed_give_field_errors_never_a_crash(text_cells):
    """Each layout's converter on its real-shaped fixture rows with a value deep inside replaced
    (a result that is a number, a ranker bucket that is a dict, ...): a FieldError or a row, never
    an AttributeError / TypeError. Random values at the top level (the hypothesis test above) rarely
    reach these places."""
    import copy
    import random

    from workbench.data.layouts import LAYOUTS
    from workbench.data.messages import FieldError
    from workbench.data.pairs import pairs_from_ordering
    from workbench.data.shapes import Context, KwiseRow

    fixtures = {"ultrafeedback": UF, "sharegpt": SHAREGPT, "dolly": DOLLY, "chatbot-arena": ARENA,
                "nectar": NECTAR, "pku-saferlhf": PKU, "shp": SHP, "oasst": OASST,
                "label-studio": LS_PAIRWISE + LS_RANKER, "argilla": ARGILLA + ARGILLA_FLAT}
    rnd = random.Random(7)
    crashes = []
    for name, rows in fixtures.items():
        shape = LAYOUTS[name]
        for _ in range(400):
            row = copy.deepcopy(rnd.choice(rows))
            for _ in range(rnd.choice((1, 2))):
                path = rnd.choice(list(_json_paths(row))[1:])
                target = row
                for key in path[:-1]:
                    target = target[key]
                target[path[-1]] = copy.deepcopy(rnd.choice(_ODD_VALUES))
            if text_cells:   # a CSV row: every cell text, lists and objects as JSON
                row = {k: json.dumps(v) if isinstance(v, (list, dict)) else "" if v is None else str(v)
                       for k, v in row.items()}
            ctx = Context(text_cells=text_cells)
            ctx.kind, ctx.line = shape.kind, 1
            try:
                out = shape.convert(row, ctx)
                for item, _line in (shape.finish(ctx) if shape.finish else [(out, 1)]):
                    if isinstance(item, KwiseRow):
                        for judgement in item.judgements():
                            list(pairs_from_ordering(judgement.ordering))
                            assert all(0 <= i < len(item.responses) for g in judgement.ordering for i in g)
            except FieldError:
                pass
            except Exception as exc:  # noqa: BLE001 - what the test looks for
                crashes.append(f"{name}: {type(exc).__name__}: {exc} in {str(row)[:200]}")
    assert crashes == []
