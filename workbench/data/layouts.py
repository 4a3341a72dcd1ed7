"""Named dataset layouts: the core shapes plus the public datasets' own layouts.

:data:`LAYOUTS` is the one table the importer and the preview use: every
entry is a :class:`~workbench.data.shapes.Shape` (a name, the kind it
stores, the fields it reads, a converter). The core shapes (TRL's formats,
HH-RLHF, k-wise, Alpaca) live in :mod:`workbench.data.shapes`; this module
adds the layouts of the public datasets people bring, each a small converter
written from the dataset's card:

- ``ultrafeedback``: HuggingFaceH4/ultrafeedback_binarized (a string
  ``prompt``; ``chosen``/``rejected`` whole conversations).
- ``sharegpt`` / ``sharegpt-preference``: ShareGPT / FastChat
  ``conversations: [{from, value}]`` (LLaMA-Factory's reading; its ranking
  variant adds ``chosen``/``rejected`` turns).
- ``llamafactory-alpaca`` / ``llamafactory-alpaca-preference``: LLaMA-Factory's
  alpaca layout with ``system`` and ``history`` ([[user, assistant], ...]), as
  its own datasets and this app's ``llamafactory-alpaca`` export write it.
- ``dolly``: databricks-dolly-15k (``instruction``, ``context``, ``response``,
  ``category``).
- ``chatbot-arena``: lmsys/chatbot_arena_conversations.
- ``nectar``: berkeley-nest/Nectar.
- ``pku-saferlhf`` / ``pku-saferlhf-safer``: PKU-Alignment/PKU-SafeRLHF paired
  by helpfulness (``better_response_id``) or by safety (``safer_response_id``).
- ``shp``: stanfordnlp/SHP.
- ``oasst`` / ``oasst-trees``: OpenAssistant oasst1/oasst2 message trees, as
  flat message rows or nested ``*.trees.jsonl`` (a whole-file layout:
  rankings are built once every message is read).
- ``label-studio``: Label Studio JSON exports of the pairwise and ranker
  templates.
- ``argilla``: Argilla 2 record exports with a ranking question.

The message trees live in :mod:`workbench.data.oasst`, the annotation tools'
exports in :mod:`workbench.data.annotation_tools`, the field readers they share
in :mod:`workbench.data.cells`.

:func:`detect_layout` picks a layout from the first row and says why. Rows
that carry preference signal (several responses, a rank, a winner, a label)
never fall through to prompts-only: :func:`detect_layout` refuses them,
naming the columns, unless a layout was asked for by name.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from ..errors import DataError
from . import annotation_tools, oasst
from .cells import as_bool, decoded, get, int_choice, ordering, reply, required, required_value, score_of
from .messages import FieldError, check_messages, looks_like_hh, parse_hh, split_implicit_prompt, type_name
from .shapes import MISSING, SHAPES, Context, KwiseRow, Shape, detect_shape


# -- UltraFeedback (binarized) ------------------------------------------------------------

def _conv_ultrafeedback(row: dict, ctx: Context) -> dict:
    prompt = ctx.plain(get(row, "prompt"), "prompt")
    chosen = ctx.text(required(row, "chosen"), "chosen")
    rejected = ctx.text(required(row, "rejected"), "rejected")
    if not isinstance(chosen, list):
        raise FieldError("chosen", "expected the whole conversation (a list of messages)")
    shared, c, r = split_implicit_prompt(chosen, rejected, checked=True)
    if shared[0].get("role") != "user" or shared[0].get("content") != prompt:
        raise FieldError("chosen", "the conversation does not begin with the prompt's user turn")
    return {"prompt": shared, "chosen": c, "rejected": r,
            "score_chosen": score_of(ctx, row, "score_chosen"),
            "score_rejected": score_of(ctx, row, "score_rejected")}


# -- ShareGPT / FastChat --------------------------------------------------------------------

#: ShareGPT speaker names (FastChat, LLaMA-Factory's defaults) as chat roles.
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
                  "assistant": "assistant", "chatgpt": "assistant", "bard": "assistant", "bing": "assistant",
                  "model": "assistant", "function_call": "assistant", "observation": "tool", "tool": "tool"}


def _sharegpt_turn(turn: Any, field: str, i: Optional[int] = None) -> dict:
    where = f"turn {i}: " if i is not None else ""
    if not isinstance(turn, dict):
        raise FieldError(field, f"{where}expected an object with 'from' and 'value', got {type_name(turn)}")
    # FastChat writes {from, value}; some ShareGPT exports already use {role, content}.
    speaker, value = turn.get("from", turn.get("role")), turn.get("value", turn.get("content"))
    role = SHAREGPT_ROLES.get(speaker.lower()) if isinstance(speaker, str) else None
    if role is None:
        raise FieldError(field, f"{where}'from' must be one of {', '.join(sorted(SHAREGPT_ROLES))}, "
                                f"got {speaker!r:.40}")
    if not isinstance(value, str):
        raise FieldError(field, f"{where}'value' must be a string, got {type_name(value)}")
    return {"role": role, "content": value}


def _sharegpt_messages(row: dict, ctx: Context) -> list:
    turns = required_value(row, "conversations", ctx)
    if not isinstance(turns, list) or not turns:
        raise FieldError("conversations", f"expected a non-empty list of turns, got {type_name(turns)}")
    messages = [_sharegpt_turn(t, "conversations", i) for i, t in enumerate(turns)]
    system = get(row, "system")
    if isinstance(system, str) and system.strip() and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
    if ctx.style is None:
        ctx.style = "conversational"
    return messages


def _conv_sharegpt(row: dict, ctx: Context) -> dict:
    return {"messages": check_messages(_sharegpt_messages(row, ctx), "conversations")}


def _conv_sharegpt_preference(row: dict, ctx: Context) -> dict:
    prompt = _sharegpt_messages(row, ctx)
    out = {"prompt": ctx.text(prompt, "conversations")}
    for name in ("chosen", "rejected"):
        turn = required(row, name)
        out[name] = ctx.text([_sharegpt_turn(decoded(turn) if ctx.text_cells else turn, name)], name)
    return out


# -- LLaMA-Factory alpaca ------------------------------------------------------------------

def _lf_alpaca_prompt(row: dict, ctx: Context) -> list:
    """The chat a LLaMA-Factory alpaca row asks: ``system``, the ``history`` pairs, then the
    instruction (with its ``input``) as the last user turn. Always a chat, so that a file whose
    first rows have no history and later ones do keeps one style."""
    instruction = ctx.plain(get(row, "instruction"), "instruction")
    extra = ctx.plain(get(row, "input"), "input", required=False)
    system = ctx.plain(get(row, "system"), "system", required=False)
    history = get(row, "history")
    history = [] if history is MISSING or history is None or history == "" else \
        decoded(history) if ctx.text_cells else history
    if not isinstance(history, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(t, str) for t in p) for p in history):
        raise FieldError("history", "expected a list of [user, assistant] pairs of strings")
    messages = [{"role": "system", "content": system}] if system and system.strip() else []
    for user, assistant in history:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    messages.append({"role": "user", "content": f"{instruction}\n\n{extra}" if extra and extra.strip()
                     else instruction})
    return ctx.text(messages, "instruction")


def _conv_lf_alpaca(row: dict, ctx: Context) -> dict:
    prompt = _lf_alpaca_prompt(row, ctx)
    return {"prompt": prompt, "completion": ctx.text(reply(ctx.plain(get(row, "output"), "output")), "output")}


def _conv_lf_alpaca_preference(row: dict, ctx: Context) -> dict:
    prompt = _lf_alpaca_prompt(row, ctx)
    return {"prompt": prompt, **{name: ctx.text(reply(ctx.plain(get(row, name), name)), name)
                                 for name in ("chosen", "rejected")}}


# -- databricks-dolly-15k -------------------------------------------------------------------

def _conv_dolly(row: dict, ctx: Context) -> dict:
    instruction = ctx.plain(get(row, "instruction"), "instruction")
    context = ctx.plain(get(row, "context"), "context", required=False)
    response = ctx.plain(get(row, "response"), "response")
    category = ctx.plain(get(row, "category"), "category", required=False)
    # The context is the instruction's input (a passage to summarise, a text to extract from).
    prompt = f"{instruction}\n\n{context}" if context and context.strip() else instruction
    if ctx.style is None:
        ctx.style = "standard"
    return {"prompt": ctx.text(prompt, "instruction"), "completion": ctx.text(response, "response"),
            "tags": (category,) if category else None}


# -- LMSYS Chatbot Arena ---------------------------------------------------------------------

ARENA_WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")


def _conv_arena(row: dict, ctx: Context) -> KwiseRow:
    a = ctx.text(required_value(row, "conversation_a", ctx), "conversation_a")
    b = ctx.text(required_value(row, "conversation_b", ctx), "conversation_b")
    if not isinstance(a, list) or not isinstance(b, list):
        raise FieldError("conversation_a", "expected conversations (lists of messages)")
    try:
        prompt, ra, rb = split_implicit_prompt(a, b, checked=True)
    except FieldError as exc:
        raise FieldError("conversation_b", exc.message.replace("chosen and rejected", "the two conversations")
                         .replace("give a 'prompt' field", "they must start with the same user turn")) from None
    winner = get(row, "winner")
    if winner not in ARENA_WINNERS:
        raise FieldError("winner", f"expected one of {', '.join(ARENA_WINNERS)}, got {winner!r:.40}")
    ordering = {"model_a": [[0], [1]], "model_b": [[1], [0]]}.get(winner, [[0, 1]])
    models = [ctx.plain(get(row, "model_a"), "model_a", required=False),
              ctx.plain(get(row, "model_b"), "model_b", required=False)]
    judge = get(row, "judge")
    return KwiseRow(prompt=prompt, responses=[ra, rb], ordering=ordering, scores=None, tags=None,
                    models=models, annotator=judge if isinstance(judge, str) and judge.strip() else None,
                    all_bad=winner == "tie (bothbad)", source_field="conversation_a")


# -- Nectar ------------------------------------------------------------------------------------

def _hh_prompt(text: str, field: str) -> list:
    """An HH-style prompt ("\\n\\nHuman: ...\\n\\nAssistant:"), without its empty final reply."""
    messages = parse_hh(text, field)
    if messages[-1]["role"] == "assistant" and not messages[-1]["content"].strip():
        messages = messages[:-1]
    if not messages or messages[-1]["role"] != "user":
        raise FieldError(field, "the HH-style prompt does not end with a 'Human:' turn")
    return messages


def _conv_nectar(row: dict, ctx: Context) -> KwiseRow:
    prompt = ctx.plain(get(row, "prompt"), "prompt")
    answers = required_value(row, "answers", ctx)
    if not isinstance(answers, list) or len(answers) < 2:
        raise FieldError("answers", f"expected a list of at least 2 answers, got {type_name(answers)}"
                         + (f" of {len(answers)}" if isinstance(answers, list) else ""))
    conversational = looks_like_hh(prompt)
    texts, models, ranks = [], [], []
    for i, ans in enumerate(answers):
        if not isinstance(ans, dict) or not isinstance(ans.get("answer"), str):
            raise FieldError("answers", f"answer {i}: expected an object with an 'answer' string")
        texts.append(reply(ans["answer"]) if conversational else ans["answer"])
        models.append(ans.get("model") if isinstance(ans.get("model"), str) else None)
        ranks.append(ctx.score(ans.get("rank", MISSING), f"answers[{i}].rank", required=True))
    prompt_value = ctx.text(_hh_prompt(prompt, "prompt") if conversational else prompt, "prompt")
    texts = [ctx.text(t, f"answers[{i}]") for i, t in enumerate(texts)]
    return KwiseRow(prompt=prompt_value, responses=texts, ordering=ordering(ranks, best_low=True), scores=None,
                    tags=None, models=models, source_field="answers")


# -- PKU-SafeRLHF ----------------------------------------------------------------------------

def _pku(by: str):
    other = "safer" if by == "better" else "better"

    def convert(row: dict, ctx: Context) -> dict:
        prompt = ctx.text(ctx.plain(get(row, "prompt"), "prompt"), "prompt")
        responses = [ctx.text(ctx.plain(get(row, f"response_{i}"), f"response_{i}"), f"response_{i}")
                     for i in (0, 1)]
        pick = int_choice(get(row, f"{by}_response_id"), f"{by}_response_id", (0, 1))
        tags = []
        second = get(row, f"{other}_response_id")
        if second is not MISSING and second is not None:
            second = int_choice(second, f"{other}_response_id", (0, 1))
            tags.append(f"{other}:{'chosen' if second == pick else 'rejected'}")
        for side, idx in (("chosen", pick), ("rejected", 1 - pick)):
            safe = get(row, f"is_response_{idx}_safe")
            if safe is not MISSING and safe is not None:
                tags.append(f"{side}:{'safe' if as_bool(safe, f'is_response_{idx}_safe') else 'unsafe'}")
        return {"prompt": prompt, "chosen": responses[pick], "rejected": responses[1 - pick],
                "tags": tuple(tags) or None}
    return convert


# -- Stanford Human Preferences --------------------------------------------------------------

def _conv_shp(row: dict, ctx: Context) -> dict:
    prompt = ctx.text(ctx.plain(get(row, "history"), "history"), "history")
    a = ctx.text(ctx.plain(get(row, "human_ref_A"), "human_ref_A"), "human_ref_A")
    b = ctx.text(ctx.plain(get(row, "human_ref_B"), "human_ref_B"), "human_ref_B")
    a_wins = int_choice(get(row, "labels"), "labels", (0, 1)) == 1   # 1: A is preferred
    sa, sb = score_of(ctx, row, "score_A"), score_of(ctx, row, "score_B")
    domain = get(row, "domain")
    return {"prompt": prompt, "chosen": a if a_wins else b, "rejected": b if a_wins else a,
            "score_chosen": sa if a_wins else sb, "score_rejected": sb if a_wins else sa,
            "tags": (domain,) if isinstance(domain, str) and domain else None}


# -- the table -------------------------------------------------------------------------------

PUBLIC_LAYOUTS: tuple[Shape, ...] = (
    Shape("ultrafeedback", "preference",
          ("prompt", "chosen", "rejected", "messages", "score_chosen", "score_rejected"),
          "UltraFeedback binarized {prompt string, chosen/rejected conversations, score_chosen/score_rejected}",
          _conv_ultrafeedback),
    Shape("sharegpt", "sft", ("conversations", "system"),
          "ShareGPT / FastChat {conversations: [{from, value}]} (optional system)", _conv_sharegpt),
    Shape("sharegpt-preference", "preference", ("conversations", "system", "chosen", "rejected"),
          "LLaMA-Factory ShareGPT ranking {conversations, chosen: {from, value}, rejected: {from, value}}",
          _conv_sharegpt_preference),
    Shape("llamafactory-alpaca", "sft", ("instruction", "input", "output", "system", "history"),
          "LLaMA-Factory alpaca {instruction, input, output, system, history: [[user, assistant], ...]}",
          _conv_lf_alpaca),
    Shape("llamafactory-alpaca-preference", "preference",
          ("instruction", "input", "chosen", "rejected", "system", "history"),
          "LLaMA-Factory alpaca ranking {instruction, input, chosen, rejected, system, history}",
          _conv_lf_alpaca_preference),
    Shape("dolly", "sft", ("instruction", "context", "response", "category"),
          "databricks-dolly-15k {instruction, context, response, category}", _conv_dolly),
    Shape("chatbot-arena", "preference",
          ("conversation_a", "conversation_b", "model_a", "model_b", "winner", "judge"),
          "LMSYS Chatbot Arena {conversation_a, conversation_b, model_a, model_b, winner, judge}", _conv_arena),
    Shape("nectar", "preference", ("prompt", "answers"),
          "Nectar {prompt, answers: [{answer, model, rank}]}", _conv_nectar),
    Shape("pku-saferlhf", "preference",
          ("prompt", "response_0", "response_1", "better_response_id", "safer_response_id",
           "is_response_0_safe", "is_response_1_safe"),
          "PKU-SafeRLHF {prompt, response_0, response_1, better_response_id, safer_response_id}, "
          "paired by helpfulness (safety kept as tags)", _pku("better")),
    Shape("pku-saferlhf-safer", "preference",
          ("prompt", "response_0", "response_1", "better_response_id", "safer_response_id",
           "is_response_0_safe", "is_response_1_safe"),
          "PKU-SafeRLHF paired by safety (safer_response_id; helpfulness kept as tags)", _pku("safer")),
    Shape("shp", "preference", ("history", "human_ref_A", "human_ref_B", "labels", "score_A", "score_B", "domain"),
          "Stanford SHP {history, human_ref_A, human_ref_B, labels (1 = A preferred), score_A, score_B}", _conv_shp),
    Shape("oasst", "preference", ("message_id", "parent_id", "role", "text", "rank", "deleted"),
          "OpenAssistant message trees {message_id, parent_id, role, text, rank} (--kind sft: best-ranked paths)",
          oasst.collect_flat, kinds=("sft",), finish=oasst.finish),
    Shape("oasst-trees", "preference", ("message_tree_id", "prompt", "tree_state"),
          "OpenAssistant nested trees {message_tree_id, prompt: {text, role, replies: [...]}} (*.trees.jsonl)",
          oasst.collect_tree, kinds=("sft",), finish=oasst.finish),
    Shape("label-studio", "preference", ("data", "annotations"),
          "Label Studio export of the pairwise or ranker template {data, annotations: [{result}]}",
          annotation_tools.convert_label_studio),
    Shape("argilla", "preference", ("fields", "responses"),
          "Argilla 2 records with a ranking question {fields, responses} or flattened {field, q.responses}",
          annotation_tools.convert_argilla),
)

#: Every named layout: the core shapes, then the public datasets' layouts.
LAYOUTS: dict[str, Shape] = {**SHAPES, **{s.name: s for s in PUBLIC_LAYOUTS}}


# -- detection ------------------------------------------------------------------------------

def _messages_list(value: Any) -> bool:
    value = decoded(value)
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) for m in value)


def _public_layout(row: dict) -> Optional[tuple[str, str]]:
    """``(layout name, why)`` for a public dataset's layout, or None."""
    keys = set(row)
    if {"data", "annotations"} <= keys:
        return "label-studio", "'data' and 'annotations' (a Label Studio task export)"
    if isinstance(row.get("fields"), dict) and isinstance(row.get("responses"), dict):
        return "argilla", "'fields' and 'responses' objects (an Argilla record)"
    flat = [k for k in keys if k.endswith(".responses") and f"{k}.users" in keys]
    if flat:
        return "argilla", f"'{sorted(flat)[0]}' with its '.users' (a flattened Argilla record)"
    if {"message_id", "parent_id", "role", "text"} <= keys:
        return "oasst", "'message_id', 'parent_id', 'role' and 'text' (OpenAssistant message rows)"
    if "message_tree_id" in keys and isinstance(decoded(row.get("prompt")), dict) \
            and "replies" in decoded(row["prompt"]):
        return "oasst-trees", "'message_tree_id' and a 'prompt' message with 'replies' (OpenAssistant trees)"
    if {"conversation_a", "conversation_b", "winner"} <= keys:
        return "chatbot-arena", "'conversation_a', 'conversation_b' and 'winner' (LMSYS Chatbot Arena)"
    if "prompt" in keys and "answers" in keys:
        answers = decoded(row["answers"])
        if isinstance(answers, list) and answers and all(isinstance(a, dict) and "rank" in a for a in answers):
            return "nectar", "'prompt' and 'answers' with a 'rank' each (Nectar)"
    if {"response_0", "response_1", "better_response_id"} <= keys:
        return "pku-saferlhf", "'response_0', 'response_1' and 'better_response_id' (PKU-SafeRLHF)"
    if {"human_ref_A", "human_ref_B", "labels"} <= keys:
        return "shp", "'human_ref_A', 'human_ref_B' and 'labels' (Stanford SHP)"
    if {"prompt", "chosen", "rejected"} <= keys and isinstance(row["prompt"], str) \
            and _messages_list(row["chosen"]) and not _messages_list(row["prompt"]):
        return "ultrafeedback", "a string 'prompt' with 'chosen'/'rejected' conversations (UltraFeedback binarized)"
    if "conversations" in keys:
        turns = decoded(row["conversations"])
        if isinstance(turns, list) and turns and all(isinstance(t, dict) and ("from" in t or "role" in t)
                                                     for t in turns):
            if {"chosen", "rejected"} <= keys:
                return "sharegpt-preference", "'conversations' of {from, value} with 'chosen'/'rejected' turns"
            return "sharegpt", "'conversations' of {from, value} turns (ShareGPT)"
    if {"instruction", "chosen", "rejected"} <= keys:
        return "llamafactory-alpaca-preference", "'instruction' with 'chosen'/'rejected' (LLaMA-Factory alpaca ranking)"
    if {"instruction", "output"} <= keys and keys & {"system", "history"}:
        return "llamafactory-alpaca", "'instruction' and 'output' with 'system'/'history' (LLaMA-Factory alpaca)"
    if {"instruction", "response"} <= keys and "output" not in keys:
        return "dolly", "'instruction' and 'response' (databricks-dolly-15k)"
    return None


_CORE_REASONS = {
    "kwise": "'prompt', 'responses' and 'ranks' or 'scores'",
    "unpaired": "'prompt', 'completion' and 'label'",
    "preference": "'prompt', 'chosen' and 'rejected'",
    "hh-rlhf": "'chosen' and 'rejected' HH transcripts ('\\n\\nHuman: ...')",
    "implicit-preference": "'chosen' and 'rejected' without a 'prompt' (the prompt is their shared start)",
    "messages": "'messages'",
    "alpaca": "'instruction' and 'output'",
    "prompt-completion": "'prompt' and 'completion'",
    "prompt-only": "'prompt' alone",
}

_RESPONSE_COL = re.compile(r"^(responses?|answers?|completions?|outputs?|replies|reply|generations?|candidates?|"
                           r"human_ref)[ _.-]?([0-9]+|[a-z])?$", re.I)
_LABEL_COL = re.compile(r"^(ranks?|rankings?|winner|preferences?|preferred|labels?|choice|chosen|rejected|"
                        r"better\w*|safer\w*|.*_rank|rating\w*)$", re.I)


def signal_columns(columns) -> tuple[list[str], list[str]]:
    """``(response-like columns, label-like columns)`` among ``columns``: what preference signal looks like."""
    responses = [c for c in columns if isinstance(c, str) and _RESPONSE_COL.match(c)]
    labels = [c for c in columns if isinstance(c, str) and _LABEL_COL.match(c)]
    return responses, labels


def _replies(row: dict, columns: list[str]) -> int:
    """How many replies ``columns`` hold: a column holding a list of several counts as several."""
    n = 0
    for c in columns:
        value = decoded(row.get(c))
        n += len(value) if isinstance(value, list) and len(value) > 1 else 1
    return n


def detect_layout(row: dict, *, allow_dropping: bool = False) -> tuple[Shape, str]:
    """The layout of ``row`` (a mapped first row) and why it was chosen.

    Raises :class:`~workbench.errors.DataError` when no layout fits, or when
    the only fit (SFT or prompts) would drop columns that carry preference
    signal (unless ``allow_dropping``: the user asked for that kind); the
    message names those columns and suggests ``--layout`` or ``--map``.
    """
    public = _public_layout(row)
    if public is not None:
        return LAYOUTS[public[0]], public[1]
    try:
        shape = detect_shape(row)
    except DataError as exc:
        responses, labels = signal_columns(row)
        if _replies(row, responses) >= 2 or labels:
            raise DataError(_signal_message(row, responses, labels, None), field=None) from None
        raise DataError(exc.message + "; or name the layout with --layout NAME (one of: "
                        + ", ".join(LAYOUTS) + ")", field=None) from None
    if shape.kind in ("sft", "prompts") and not allow_dropping:
        ignored = [k for k in row if k not in set(shape.fields) | {"tags"}]
        responses, labels = signal_columns(ignored)
        if _replies(row, responses) + (shape.kind == "sft") >= 2 or labels:
            raise DataError(_signal_message(row, responses, labels, shape), field=None)
    return shape, _CORE_REASONS[shape.name]


def _signal_message(row: dict, responses: list, labels: list, shape: Optional[Shape]) -> str:
    what = "; ".join(p for p in (
        f"responses in {', '.join(repr(c) for c in responses)}" if responses else "",
        f"a preference label in {', '.join(repr(c) for c in labels)}" if labels else "") if p)
    would = f"the {shape.description} layout would store them as {shape.kind} and drop that signal" if shape \
        else "no known layout reads them"
    example = labels[0] if labels else "LABEL"
    pair = (responses + ["REPLY_A", "REPLY_B"])[:2]
    return (f"these rows carry preference signal ({what}) but {would}. Name the layout with --layout NAME "
            f"(one of: {', '.join(s.name for s in PUBLIC_LAYOUTS)}), or map the columns, e.g. "
            f"--map PROMPT_COLUMN=prompt --map '{example}=pick(A:{pair[0]},B:{pair[1]})' (the value of "
            f"'{example}' says which reply is chosen); --kind prompts (or sft) stores only the prompts (or replies), on purpose")


def layout_fields_used(shape: Shape, row: dict) -> set[str]:
    """The columns of ``row`` the layout reads (the rest are reported as ignored)."""
    used = (set(shape.fields) | {"tags"}) & set(row)
    if shape.name == "argilla" and not isinstance(row.get("fields"), dict):
        # Flattened records: the fields and every question's responses are read.
        used |= {k for k in row if "." not in k and k not in ("id", "_server_id", "status")}
        used |= {k for k in row if k.endswith((".responses", ".responses.users", ".responses.status"))}
    return used

