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

:func:`detect_layout` picks a layout from the first row and says why. Rows
that carry preference signal (several responses, a rank, a winner, a label)
never fall through to prompts-only: :func:`detect_layout` refuses them,
naming the columns, unless a layout was asked for by name.
"""

from __future__ import annotations

import json
import re
from typing import Any, Optional

from ..errors import DataError
from .messages import FieldError, check_messages, looks_like_hh, parse_hh, split_implicit_prompt, type_name
from .shapes import MISSING, SHAPES, Context, Judgement, KwiseRow, Shape, detect_shape


def _get(row: dict, name: str) -> Any:
    return row.get(name, MISSING)


def _decoded(value: Any) -> Any:
    """A CSV cell that holds JSON (a list or an object) as that value; anything else as it is."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


def _required(row: dict, name: str) -> Any:
    value = _get(row, name)
    if value is MISSING or value is None:
        raise FieldError(name, "is missing")
    return value


def _int_choice(value: Any, field: str, choices: tuple) -> Any:
    """An id such as ``better_response_id`` (0 or 1), read from JSON or a CSV cell."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or value not in choices:
        raise FieldError(field, f"expected one of {', '.join(map(str, choices))}, got {value!r:.40}")
    return value


def _bool(value: Any, field: str) -> bool:
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise FieldError(field, f"expected true or false, got {type_name(value)}")


def _reply(text: str) -> list:
    return [{"role": "assistant", "content": text}]


def _ordering(levels: list[float], *, best_low: bool) -> list[list[int]]:
    """Tie groups of indices, best first, from one number per response (equal numbers tie)."""
    order = sorted(set(levels), reverse=not best_low)
    return [[i for i, v in enumerate(levels) if v == lv] for lv in order]


def _score_of(ctx: Context, row: dict, name: str) -> Optional[float]:
    return ctx.score(_get(row, name), name, required=False)


# -- UltraFeedback (binarized) ------------------------------------------------------------

def _conv_ultrafeedback(row: dict, ctx: Context) -> dict:
    prompt = ctx.plain(_get(row, "prompt"), "prompt")
    chosen = ctx.text(_required(row, "chosen"), "chosen")
    rejected = ctx.text(_required(row, "rejected"), "rejected")
    if not isinstance(chosen, list):
        raise FieldError("chosen", "expected the whole conversation (a list of messages)")
    shared, c, r = split_implicit_prompt(chosen, rejected, checked=True)
    if shared[0].get("role") != "user" or shared[0].get("content") != prompt:
        raise FieldError("chosen", "the conversation does not begin with the prompt's user turn")
    return {"prompt": shared, "chosen": c, "rejected": r,
            "score_chosen": _score_of(ctx, row, "score_chosen"),
            "score_rejected": _score_of(ctx, row, "score_rejected")}


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
    turns = _decoded(_required(row, "conversations")) if ctx.text_cells else _required(row, "conversations")
    if not isinstance(turns, list) or not turns:
        raise FieldError("conversations", f"expected a non-empty list of turns, got {type_name(turns)}")
    messages = [_sharegpt_turn(t, "conversations", i) for i, t in enumerate(turns)]
    system = _get(row, "system")
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
        turn = _required(row, name)
        out[name] = ctx.text([_sharegpt_turn(_decoded(turn) if ctx.text_cells else turn, name)], name)
    return out


# -- databricks-dolly-15k -------------------------------------------------------------------

def _conv_dolly(row: dict, ctx: Context) -> dict:
    instruction = ctx.plain(_get(row, "instruction"), "instruction")
    context = ctx.plain(_get(row, "context"), "context", required=False)
    response = ctx.plain(_get(row, "response"), "response")
    category = ctx.plain(_get(row, "category"), "category", required=False)
    # The context is the instruction's input (a passage to summarise, a text to extract from).
    prompt = f"{instruction}\n\n{context}" if context and context.strip() else instruction
    if ctx.style is None:
        ctx.style = "standard"
    return {"prompt": ctx.text(prompt, "instruction"), "completion": ctx.text(response, "response"),
            "tags": (category,) if category else None}


# -- LMSYS Chatbot Arena ---------------------------------------------------------------------

ARENA_WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")


def _conv_arena(row: dict, ctx: Context) -> KwiseRow:
    a = ctx.text(_decoded(_required(row, "conversation_a")) if ctx.text_cells else _required(row, "conversation_a"),
                 "conversation_a")
    b = ctx.text(_decoded(_required(row, "conversation_b")) if ctx.text_cells else _required(row, "conversation_b"),
                 "conversation_b")
    if not isinstance(a, list) or not isinstance(b, list):
        raise FieldError("conversation_a", "expected conversations (lists of messages)")
    try:
        prompt, ra, rb = split_implicit_prompt(a, b, checked=True)
    except FieldError as exc:
        raise FieldError("conversation_b", exc.message.replace("chosen and rejected", "the two conversations")
                         .replace("give a 'prompt' field", "they must start with the same user turn")) from None
    winner = _get(row, "winner")
    if winner not in ARENA_WINNERS:
        raise FieldError("winner", f"expected one of {', '.join(ARENA_WINNERS)}, got {winner!r:.40}")
    ordering = {"model_a": [[0], [1]], "model_b": [[1], [0]]}.get(winner, [[0, 1]])
    models = [ctx.plain(_get(row, "model_a"), "model_a", required=False),
              ctx.plain(_get(row, "model_b"), "model_b", required=False)]
    judge = _get(row, "judge")
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
    prompt = ctx.plain(_get(row, "prompt"), "prompt")
    answers = _decoded(_required(row, "answers")) if ctx.text_cells else _required(row, "answers")
    if not isinstance(answers, list) or len(answers) < 2:
        raise FieldError("answers", f"expected a list of at least 2 answers, got {type_name(answers)}"
                         + (f" of {len(answers)}" if isinstance(answers, list) else ""))
    conversational = looks_like_hh(prompt)
    texts, models, ranks = [], [], []
    for i, ans in enumerate(answers):
        if not isinstance(ans, dict) or not isinstance(ans.get("answer"), str):
            raise FieldError("answers", f"answer {i}: expected an object with an 'answer' string")
        texts.append(_reply(ans["answer"]) if conversational else ans["answer"])
        models.append(ans.get("model") if isinstance(ans.get("model"), str) else None)
        ranks.append(ctx.score(ans.get("rank", MISSING), f"answers[{i}].rank", required=True))
    prompt_value = ctx.text(_hh_prompt(prompt, "prompt") if conversational else prompt, "prompt")
    texts = [ctx.text(t, f"answers[{i}]") for i, t in enumerate(texts)]
    return KwiseRow(prompt=prompt_value, responses=texts, ordering=_ordering(ranks, best_low=True), scores=None,
                    tags=None, models=models, source_field="answers")


# -- PKU-SafeRLHF ----------------------------------------------------------------------------

def _pku(by: str):
    other = "safer" if by == "better" else "better"

    def convert(row: dict, ctx: Context) -> dict:
        prompt = ctx.text(ctx.plain(_get(row, "prompt"), "prompt"), "prompt")
        responses = [ctx.text(ctx.plain(_get(row, f"response_{i}"), f"response_{i}"), f"response_{i}")
                     for i in (0, 1)]
        pick = _int_choice(_get(row, f"{by}_response_id"), f"{by}_response_id", (0, 1))
        tags = []
        second = _get(row, f"{other}_response_id")
        if second is not MISSING and second is not None:
            second = _int_choice(second, f"{other}_response_id", (0, 1))
            tags.append(f"{other}:{'chosen' if second == pick else 'rejected'}")
        for side, idx in (("chosen", pick), ("rejected", 1 - pick)):
            safe = _get(row, f"is_response_{idx}_safe")
            if safe is not MISSING and safe is not None:
                tags.append(f"{side}:{'safe' if _bool(safe, f'is_response_{idx}_safe') else 'unsafe'}")
        return {"prompt": prompt, "chosen": responses[pick], "rejected": responses[1 - pick],
                "tags": tuple(tags) or None}
    return convert


# -- Stanford Human Preferences --------------------------------------------------------------

def _conv_shp(row: dict, ctx: Context) -> dict:
    prompt = ctx.text(ctx.plain(_get(row, "history"), "history"), "history")
    a = ctx.text(ctx.plain(_get(row, "human_ref_A"), "human_ref_A"), "human_ref_A")
    b = ctx.text(ctx.plain(_get(row, "human_ref_B"), "human_ref_B"), "human_ref_B")
    a_wins = _int_choice(_get(row, "labels"), "labels", (0, 1)) == 1   # 1: A is preferred
    sa, sb = _score_of(ctx, row, "score_A"), _score_of(ctx, row, "score_B")
    domain = _get(row, "domain")
    return {"prompt": prompt, "chosen": a if a_wins else b, "rejected": b if a_wins else a,
            "score_chosen": sa if a_wins else sb, "score_rejected": sb if a_wins else sa,
            "tags": (domain,) if isinstance(domain, str) and domain else None}


# -- OpenAssistant message trees -----------------------------------------------------------

_OASST_ROLES = {"prompter": "user", "assistant": "assistant"}


def _conv_oasst(row: dict, ctx: Context) -> None:
    """Collect one message; :func:`_finish_oasst` builds the trees once all are read."""
    msgs = ctx.state.setdefault("messages", {})
    _collect_oasst(row, ctx, _get(row, "parent_id"), msgs, msgs)
    return None


def _conv_oasst_tree(row: dict, ctx: Context) -> None:
    """Collect a nested oasst tree (``*.trees.jsonl``: ``prompt`` with its ``replies``), one row per tree."""
    root = _decoded(_required(row, "prompt")) if ctx.text_cells else _required(row, "prompt")
    if not isinstance(root, dict):
        raise FieldError("prompt", f"expected the tree's root message (an object), got {type_name(root)}")
    known = ctx.state.setdefault("messages", {})
    tree: dict = {}   # kept apart until the whole tree is valid, so a skipped row leaves nothing behind
    stack = [(root, None)]
    while stack:   # iterative: trees can be deep
        message, parent = stack.pop()
        if not isinstance(message, dict):
            raise FieldError("prompt", f"expected a message object in the tree, got {type_name(message)}")
        _collect_oasst(message, ctx, parent, tree, known)
        replies = message.get("replies") or []
        if not isinstance(replies, list):
            raise FieldError("prompt", "'replies' must be a list of messages")
        stack.extend((reply, message.get("message_id")) for reply in reversed(replies))
    known.update(tree)
    return None


def _collect_oasst(row: dict, ctx: Context, parent: Any, into: dict, known: dict) -> None:
    mid = _required(row, "message_id")
    if not isinstance(mid, str):
        raise FieldError("message_id", f"expected a string, got {type_name(mid)}")
    if parent is MISSING or parent == "":
        parent = None
    if parent is not None and not isinstance(parent, str):
        raise FieldError("parent_id", f"expected a string or null, got {type_name(parent)}")
    role = _OASST_ROLES.get(_get(row, "role"))
    if role is None:
        raise FieldError("role", f"expected prompter or assistant, got {_get(row, 'role')!r:.40}")
    text = _get(row, "text")
    if not isinstance(text, str):
        raise FieldError("text", f"expected a string, got {type_name(text)}" if text is not MISSING else "is missing")
    rank = _get(row, "rank")
    rank = None if rank is MISSING or rank is None or rank == "" else ctx.score(rank, "rank", required=True)
    deleted = _get(row, "deleted")
    deleted = False if deleted is MISSING or deleted is None or deleted == "" else _bool(deleted, "deleted")
    seen = into.get(mid) or known.get(mid)
    if seen is not None:
        raise FieldError("message_id", f"{mid!r} appears twice (first on line {seen[4]})")
    into[mid] = (parent, role, text, rank, ctx.line, deleted)
    if ctx.style is None:
        ctx.style = "conversational"


def _finish_oasst(ctx: Context) -> list:
    msgs = ctx.state.get("messages", {})
    children: dict = {}
    for mid, (parent, _role, _text, _rank, _line, deleted) in msgs.items():
        if not deleted:
            children.setdefault(parent, []).append(mid)
    out: list = []

    def message(mid):
        return {"role": msgs[mid][1], "content": msgs[mid][2]}

    def best_first(kids):
        # rank 0 is best; unranked siblings after the ranked ones, in file order.
        return sorted(kids, key=lambda k: (msgs[k][3] is None, msgs[k][3] if msgs[k][3] is not None else 0,
                                          msgs[k][4]))

    # A parent id missing from the file (a message of another split, or a cut file) orphans its subtree;
    # a deleted message takes its replies with it, as in the oasst trees.
    roots = [m for m in children.get(None, [])]
    for root in sorted(roots, key=lambda m: msgs[m][4]):
        if msgs[root][1] != "user":
            continue
        # Walk the tree iteratively (trees can be deep): (message id, path of messages to it).
        stack = [(root, [message(root)])]
        while stack:
            mid, path = stack.pop()
            kids = children.get(mid, [])
            ranked = [k for k in kids if msgs[k][3] is not None and msgs[k][1] == "assistant"]
            if msgs[mid][1] == "user" and len(ranked) >= 2 and ctx.kind != "sft":
                ranks = [msgs[k][3] for k in ranked]
                out.append((KwiseRow(prompt=list(path), responses=[_reply(msgs[k][2]) for k in ranked],
                                     ordering=_ordering(ranks, best_low=True), scores=None, tags=None,
                                     response_lines=[msgs[k][4] for k in ranked], source_field="rank"),
                            msgs[mid][4]))
            for k in reversed(best_first(kids)):
                stack.append((k, path + [message(k)]))
        if ctx.kind == "sft":
            # The conversation along the best-ranked reply at every turn, ending on an assistant turn.
            path, mid = [message(root)], root
            while children.get(mid):
                mid = best_first(children[mid])[0]
                path.append(message(mid))
            end = mid
            while path and path[-1]["role"] != "assistant":
                path.pop()
                end = msgs[end][0]
            if path:
                out.append(({"messages": path}, msgs[end][4]))
    return out


# -- Label Studio ------------------------------------------------------------------------------

_PROMPT_KEYS = ("prompt", "instruction", "question", "query", "input", "request", "text", "context")
_ANSWER_KEY = re.compile(r"^(answer|response|text|output|completion|reply|generation|candidate)[ _-]?\w+$", re.I)


def _prompt_key(data: dict, exclude: set, field: str) -> str:
    for key in _PROMPT_KEYS:
        if key in data and key not in exclude and isinstance(data[key], (str, list)):
            return key
    rest = [k for k, v in data.items() if k not in exclude and isinstance(v, str)]
    if len(rest) == 1:
        return rest[0]
    raise FieldError(field, f"cannot tell which field is the prompt (fields: {', '.join(data) or 'none'}); "
                            f"name it one of {', '.join(_PROMPT_KEYS)}")


def _ls_annotator(ann: dict) -> str:
    who = ann.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    return f"label-studio:{who}" if who not in (None, "") else "label-studio"


def _conv_label_studio(row: dict, ctx: Context) -> KwiseRow:
    data = _decoded(_required(row, "data")) if ctx.text_cells else _required(row, "data")
    anns = _decoded(_required(row, "annotations")) if ctx.text_cells else _required(row, "annotations")
    if not isinstance(data, dict):
        raise FieldError("data", f"expected an object, got {type_name(data)}")
    if not isinstance(anns, list):
        raise FieldError("annotations", f"expected a list, got {type_name(anns)}")
    results = [(a, r) for a in anns if isinstance(a, dict) and not a.get("was_cancelled")
               for r in (a.get("result") or []) if isinstance(r, dict) and r.get("type") in ("pairwise", "ranker")]
    if not results:
        raise FieldError("annotations", "no completed pairwise or ranker annotation in this task")
    kind = results[0][1]["type"]
    if kind == "pairwise":
        to_name = results[0][1].get("to_name")
        names = [n.strip() for n in to_name.split(",")] if isinstance(to_name, str) else []
        if len(names) != 2 or not all(n in data for n in names):
            names = [k for k in data if _ANSWER_KEY.match(k) and isinstance(data[k], str)][:2]
        if len(names) != 2:
            raise FieldError("data", "a pairwise task needs two answers (e.g. answer1, answer2)")
        keys = names
        prompt_key = _prompt_key(data, set(keys), "data")
        responses = [data[k] for k in keys]
        judgements = []
        for ann, res in results:
            selected = (res.get("value") or {}).get("selected")
            if selected not in ("left", "right"):
                raise FieldError("annotations", f"pairwise result: 'selected' must be left or right, "
                                                f"got {selected!r:.40}")
            judgements.append(Judgement([[0], [1]] if selected == "left" else [[1], [0]], _ls_annotator(ann)))
    else:
        list_key = next((k for k, v in data.items() if isinstance(v, list) and v
                         and all(isinstance(i, dict) and "id" in i for i in v)), None)
        if list_key is None:
            raise FieldError("data", "a ranker task needs a list of items with 'id'")
        items = data[list_key]
        index = {str(item["id"]): i for i, item in enumerate(items)}
        responses = []
        for i, item in enumerate(items):
            body = next((item[k] for k in ("body", "text", "html", "title") if isinstance(item.get(k), str)), None)
            if body is None:
                raise FieldError(f"data.{list_key}", f"item {i}: expected a 'body', 'text' or 'title' string")
            responses.append(body)
        prompt_key = _prompt_key(data, {list_key}, "data")
        judgements = []
        for ann, res in results:
            value = (res.get("value") or {}).get("ranker")
            if not isinstance(value, dict) or not value:
                raise FieldError("annotations", "ranker result: expected {'ranker': {name: [ids]}}")
            buckets = [(k, v) for k, v in value.items() if k != "_"]   # "_": Label Studio's unplaced items
            if len(buckets) == 1:
                groups = [[index.get(str(x))] for x in buckets[0][1]]     # one list: a strict order
            else:
                groups = [[index.get(str(x)) for x in ids] for _k, ids in buckets]   # buckets: tie groups
            if any(i is None for g in groups for i in g):
                raise FieldError("annotations", f"ranker result names an item that is not in data.{list_key}")
            judgements.append(Judgement([g for g in groups if g], _ls_annotator(ann)))
    prompt = ctx.text(data[prompt_key], f"data.{prompt_key}")
    responses = [ctx.text(r if isinstance(prompt, str) else _reply(r), "data") for r in responses]
    first, *others = judgements
    return KwiseRow(prompt=prompt, responses=responses, ordering=first.ordering, scores=None, tags=None,
                    annotator=first.annotator, others=tuple(others), source_field="data")


# -- Argilla 2 -------------------------------------------------------------------------------

def _argilla_parts(row: dict) -> tuple[dict, dict]:
    """``(fields, {question: [(value, user, status), ...]})`` from a nested or flattened record."""
    if isinstance(row.get("fields"), dict) and isinstance(row.get("responses"), dict):
        answers = {q: [(r.get("value"), r.get("user_id"), r.get("status")) for r in rs if isinstance(r, dict)]
                   for q, rs in row["responses"].items() if isinstance(rs, list)}
        return row["fields"], answers
    answers, consumed = {}, set()
    for key, values in row.items():
        if key.endswith(".responses") and isinstance(values, list):
            q = key[:-len(".responses")]
            users = row.get(f"{key}.users") or [None] * len(values)
            status = row.get(f"{key}.status") or [None] * len(values)
            answers[q] = list(zip(values, users, status))
            consumed |= {key, f"{key}.users", f"{key}.status"}
    fields = {k: v for k, v in row.items() if k not in consumed and "." not in k
              and k not in ("id", "_server_id", "status") and isinstance(v, str)}
    return fields, answers


def _argilla_ranking(value: Any, names: set) -> Optional[list[list[str]]]:
    """A ranking question's answer as tie groups of field names, or None if it is not one."""
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return [[v] for v in value] if set(value) <= names else None
    if isinstance(value, list) and value and all(isinstance(v, dict) and "value" in v for v in value):
        if not {v["value"] for v in value} <= names:
            return None
        ranked = [v for v in value if isinstance(v.get("rank"), int)]
        levels = sorted({v["rank"] for v in ranked})
        return [[v["value"] for v in ranked if v["rank"] == lv] for lv in levels]
    return None


def _conv_argilla(row: dict, ctx: Context) -> KwiseRow:
    fields, answers = _argilla_parts(row)
    names = set(fields)
    question, votes = None, []
    for q, rs in answers.items():
        usable = [(_argilla_ranking(v, names), u, s) for v, u, s in rs]
        if usable and all(r is not None for r, _u, _s in usable):
            question = q
            votes = [(r, u) for r, u, s in usable if s in (None, "submitted")]
            break
    if question is None:
        raise FieldError("responses", "no ranking question answered with this record's field names")
    if not votes:
        raise FieldError(f"{question}.responses", "no submitted ranking (drafts and discarded ones are left out)")
    keys = sorted({n for r, _u in votes for g in r for n in g}, key=list(fields).index)
    prompt_key = _prompt_key(fields, set(keys), "fields")
    prompt = ctx.text(fields[prompt_key], prompt_key)
    responses = [ctx.text(fields[k] if isinstance(prompt, str) else _reply(fields[k]), k) for k in keys]
    judgements = [Judgement([[keys.index(n) for n in g] for g in r], f"argilla:{u}" if u else "argilla")
                  for r, u in votes]
    first, *others = judgements
    return KwiseRow(prompt=prompt, responses=responses, ordering=first.ordering, scores=None, tags=None,
                    annotator=first.annotator, others=tuple(others), source_field=f"{question}.responses")


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
          _conv_oasst, kinds=("sft",), finish=_finish_oasst),
    Shape("oasst-trees", "preference", ("message_tree_id", "prompt", "tree_state"),
          "OpenAssistant nested trees {message_tree_id, prompt: {text, role, replies: [...]}} (*.trees.jsonl)",
          _conv_oasst_tree, kinds=("sft",), finish=_finish_oasst),
    Shape("label-studio", "preference", ("data", "annotations"),
          "Label Studio export of the pairwise or ranker template {data, annotations: [{result}]}",
          _conv_label_studio),
    Shape("argilla", "preference", ("fields", "responses"),
          "Argilla 2 records with a ranking question {fields, responses} or flattened {field, q.responses}",
          _conv_argilla),
)

#: Every named layout: the core shapes, then the public datasets' layouts.
LAYOUTS: dict[str, Shape] = {**SHAPES, **{s.name: s for s in PUBLIC_LAYOUTS}}


# -- detection ------------------------------------------------------------------------------

def _messages_list(value: Any) -> bool:
    value = _decoded(value)
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
    if "message_tree_id" in keys and isinstance(_decoded(row.get("prompt")), dict) \
            and "replies" in _decoded(row["prompt"]):
        return "oasst-trees", "'message_tree_id' and a 'prompt' message with 'replies' (OpenAssistant trees)"
    if {"conversation_a", "conversation_b", "winner"} <= keys:
        return "chatbot-arena", "'conversation_a', 'conversation_b' and 'winner' (LMSYS Chatbot Arena)"
    if "prompt" in keys and "answers" in keys:
        answers = _decoded(row["answers"])
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
        turns = _decoded(row["conversations"])
        if isinstance(turns, list) and turns and all(isinstance(t, dict) and ("from" in t or "role" in t)
                                                     for t in turns):
            if {"chosen", "rejected"} <= keys:
                return "sharegpt-preference", "'conversations' of {from, value} with 'chosen'/'rejected' turns"
            return "sharegpt", "'conversations' of {from, value} turns (ShareGPT)"
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
        value = _decoded(row.get(c))
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

