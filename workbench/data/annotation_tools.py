"""Exports of annotation tools: Label Studio (pairwise and ranker templates) and Argilla 2.

Each task or record becomes one ranking per annotator of the same
candidates (:class:`~workbench.data.shapes.Judgement`), with the annotator
named ``label-studio:<user>`` or ``argilla:<user>``.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from .cells import reply, required_value
from .messages import FieldError, type_name
from .shapes import Context, Judgement, KwiseRow

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


def _value(result: dict) -> dict:
    """A Label Studio result's ``value`` object (empty when it is missing or not an object)."""
    value = result.get("value")
    return value if isinstance(value, dict) else {}


def convert_label_studio(row: dict, ctx: Context) -> KwiseRow:
    """One Label Studio task (pairwise or ranker template) as a ranking with a judgement per
    annotation (``label-studio:<user>``); cancelled annotations are left out."""
    data = required_value(row, "data", ctx)
    anns = required_value(row, "annotations", ctx)
    if not isinstance(data, dict):
        raise FieldError("data", f"expected an object, got {type_name(data)}")
    if not isinstance(anns, list):
        raise FieldError("annotations", f"expected a list, got {type_name(anns)}")
    results = [(a, r) for a in anns if isinstance(a, dict) and not a.get("was_cancelled")
               for r in (a.get("result") if isinstance(a.get("result"), list) else [])
               if isinstance(r, dict) and r.get("type") in ("pairwise", "ranker")]
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
            selected = _value(res).get("selected")
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
            value = _value(res).get("ranker")
            if not isinstance(value, dict) or not value:
                raise FieldError("annotations", "ranker result: expected {'ranker': {name: [ids]}}")
            buckets = [(k, v) for k, v in value.items() if k != "_"]   # "_": Label Studio's unplaced items
            if not all(isinstance(ids, list) for _k, ids in buckets):
                raise FieldError("annotations", "ranker result: each list of the ranker must hold item ids")
            if len(buckets) == 1:
                groups = [[index.get(str(x))] for x in buckets[0][1]]     # one list: a strict order
            else:
                groups = [[index.get(str(x)) for x in ids] for _k, ids in buckets]   # buckets: tie groups
            if any(i is None for g in groups for i in g):
                raise FieldError("annotations", f"ranker result names an item that is not in data.{list_key}")
            judgements.append(Judgement([g for g in groups if g], _ls_annotator(ann)))
    prompt = ctx.text(data[prompt_key], f"data.{prompt_key}")
    responses = [ctx.text(r if isinstance(prompt, str) else reply(r), "data") for r in responses]
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
            for name, column in ((f"{key}.users", users), (f"{key}.status", status)):
                if not isinstance(column, list):
                    raise FieldError(name, f"expected a list (one entry per response), got {type_name(column)}")
            answers[q] = list(zip(values, users, status))
            consumed |= {key, f"{key}.users", f"{key}.status"}
    fields = {k: v for k, v in row.items() if k not in consumed and "." not in k
              and k not in ("id", "_server_id", "status") and isinstance(v, str)}
    return fields, answers


def _argilla_ranking(value: Any, names: set) -> Optional[list[list[str]]]:
    """A ranking question's answer as tie groups of field names, or None if it is not one."""
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return [[v] for v in value] if set(value) <= names else None
    if isinstance(value, list) and value and all(isinstance(v, dict) and isinstance(v.get("value"), str)
                                                 for v in value):
        if not {v["value"] for v in value} <= names:
            return None
        ranked = [v for v in value if isinstance(v.get("rank"), int)]
        levels = sorted({v["rank"] for v in ranked})
        return [[v["value"] for v in ranked if v["rank"] == lv] for lv in levels]
    return None


def convert_argilla(row: dict, ctx: Context) -> KwiseRow:
    """One Argilla 2 record (nested or flattened) as a ranking with a judgement per submitted
    response to its ranking question (``argilla:<user>``); drafts and discarded ones are left out."""
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
    responses = [ctx.text(fields[k] if isinstance(prompt, str) else reply(fields[k]), k) for k in keys]
    judgements = [Judgement([[keys.index(n) for n in g] for g in r], f"argilla:{u}" if u else "argilla")
                  for r, u in votes]
    first, *others = judgements
    return KwiseRow(prompt=prompt, responses=responses, ordering=first.ordering, scores=None, tags=None,
                    annotator=first.annotator, others=tuple(others), source_field=f"{question}.responses")
