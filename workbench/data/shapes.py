"""Dataset shapes: detect which public format a row is in and convert it to records.

A *shape* is the set of fields a row carries (TRL's standard and
conversational formats, Anthropic HH-RLHF transcripts, score-style pairs,
k-wise rankings, Alpaca). :func:`detect_shape` picks one from the first row
(after the user's column mapping); :meth:`Shape.convert` turns each row into
the canonical content of a record, raising :class:`FieldError` with the
offending field. The public datasets' own layouts extend this table in
:mod:`workbench.data.layouts`, whose :func:`~workbench.data.layouts.detect_layout`
is what the importer calls.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..errors import DataError
from ..store.records import CONTENT_FIELDS
from .readers import SURROGATE_MESSAGE, lone_surrogate_field
from .messages import (FieldError, check_messages, looks_like_hh, split_hh_pair, split_implicit_prompt,
                       type_name)

MISSING = object()  # a field absent from a row (distinct from JSON null)


@dataclass
class Context:
    """Per-import state the converters share: the dataset's style, cell typing."""
    style: Optional[str] = None       # decided by the first valid row
    text_cells: bool = False          # CSV: every cell is a string and needs decoding
    kind: Optional[str] = None        # the kind being imported (a whole-file layout picks its output)
    line: int = 0                     # the line (or row) of the row being converted
    state: dict = field(default_factory=dict)   # a whole-file layout's accumulated rows

    def text(self, value: Any, field: str, *, allow_empty_list: bool = False) -> Any:
        """Validate a text-or-messages value against the dataset's style."""
        if value is MISSING:
            raise FieldError(field, "is missing")
        if value is None:
            raise FieldError(field, "is null; expected a string or a list of messages")
        if self.text_cells and isinstance(value, str) and value.startswith("[") and self.style != "standard":
            try:
                decoded = json.loads(value)
            # RecursionError: json's decoder recurses per nesting level, so a cell of 100k '['
            # would crash the import instead of being bad data (same in the cells below).
            except (ValueError, RecursionError):
                decoded = None
            if "\\u" in value and isinstance(decoded, list) and lone_surrogate_field({field: decoded}):
                raise FieldError(field, SURROGATE_MESSAGE)
            # "[]" is a plausible plain-text cell; an empty list is only messages once the
            # dataset is known to be conversational.
            if (isinstance(decoded, list) and all(isinstance(m, dict) for m in decoded)
                    and (decoded or self.style == "conversational")):
                value = decoded
        if isinstance(value, str):
            style = "standard"
        elif isinstance(value, list):
            style = "conversational"
        else:
            raise FieldError(field, f"expected a string or a list of messages, got {type_name(value)}")
        if self.style is None:
            self.style = style
        elif style != self.style:
            want = "a string" if self.style == "standard" else "a list of messages"
            raise FieldError(field, f"expected {want} like the rest of this dataset "
                                    f"({self.style} style), got {type_name(value)}")
        if style == "conversational":
            return check_messages(value, field, allow_empty=allow_empty_list)
        return value

    def score(self, value: Any, field: str, *, required: bool) -> Optional[float]:
        if value is MISSING or value is None or (self.text_cells and value == ""):
            if required:
                raise FieldError(field, "is missing")
            return None
        if self.text_cells and isinstance(value, str):
            try:
                value = float(value)
            except (ValueError, RecursionError):
                raise FieldError(field, f"expected a number, got {value[:40]!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FieldError(field, f"expected a number, got {type_name(value)}")
        try:
            number = float(value)
        except OverflowError:
            # An integer of hundreds of digits: too large for a float (and for SQLite's REAL).
            raise FieldError(field, f"number too large ({len(str(abs(value)))} digits)") from None
        if not math.isfinite(number):
            raise FieldError(field, f"expected a finite number, got {value}")
        return number

    def label(self, value: Any, field: str = "label") -> bool:
        if value is MISSING or value is None:
            raise FieldError(field, "is missing")
        if isinstance(value, str) and self.text_cells:
            low = value.strip().lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
            raise FieldError(field, f"expected true or false, got {value[:40]!r}")
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise FieldError(field, f"expected a boolean, got {type_name(value)}")

    def plain(self, value: Any, field: str, *, required: bool = True) -> Optional[str]:
        """A plain string field (Alpaca's instruction/input/output)."""
        if value is MISSING or value is None:
            if required:
                raise FieldError(field, "is missing")
            return None
        if not isinstance(value, str):
            raise FieldError(field, f"expected a string, got {type_name(value)}")
        return value


def json_cell(value: str, field: str, message: str) -> Any:
    """A CSV cell holding JSON, decoded; ``FieldError(field, message)`` if it is not JSON."""
    try:
        decoded = json.loads(value)
    # RecursionError: json's decoder recurses per nesting level (a cell of 100k '[').
    except (ValueError, RecursionError):
        raise FieldError(field, message) from None
    if "\\u" in value and lone_surrogate_field({field: decoded}):
        raise FieldError(field, SURROGATE_MESSAGE)
    return decoded


def tags_value(value: Any) -> Optional[tuple[str, ...]]:
    """Optional ``tags``: a list of strings, or a comma-separated string (CSV)."""
    if value is MISSING or value is None or value == "":
        return None
    if isinstance(value, str):
        if value.startswith("["):
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                raise FieldError("tags", "expected a list of strings or comma-separated text") from None
        else:
            return tuple(t.strip() for t in value.split(",") if t.strip()) or None
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise FieldError("tags", f"expected a list of strings, got {type_name(value)}")
    return tuple(value) or None


#: The most responses one ranking may hold: a ranking of k gives k(k-1)/2 pairs, so a row of
#: 3,000 responses would become 4.5 million records.
MAX_RANKING_RESPONSES = 100


@dataclass(frozen=True)
class Judgement:
    """One annotator's ordering of a ranking row's responses (tie groups of indices, best first)."""
    ordering: list[list[int]]
    annotator: Optional[str] = None    # None: the importer names the file
    all_bad: bool = False              # every response judged bad (LMSYS "tie (bothbad)")


@dataclass(frozen=True)
class KwiseRow:
    """A ranking row: a prompt, its responses, and their ordering (one or more annotators').

    Stored as the annotation model stores a decision made in the app: a
    prompt, one candidate per response (with the model that wrote it), and a
    ranking per judgement, whose pairs become the dataset's records.
    """
    prompt: Any
    responses: list
    ordering: list[list[int]]          # tie groups of response indices, best first
    scores: Optional[list[float]]
    tags: Optional[tuple[str, ...]]
    models: Optional[list[Optional[str]]] = None     # the model that wrote each response
    annotator: Optional[str] = None
    all_bad: bool = False
    others: tuple[Judgement, ...] = ()                # further annotators of the same responses
    response_lines: Optional[list[int]] = None        # each response's own line (whole-file layouts)
    source_field: str = "responses"                   # the source field the responses came from

    def __post_init__(self):
        if len(self.responses) > MAX_RANKING_RESPONSES:
            raise FieldError(self.source_field, f"{len(self.responses):,} responses in one ranking; at most "
                                         f"{MAX_RANKING_RESPONSES} are accepted (a ranking of k responses "
                                         f"gives k(k-1)/2 pairs)")
        for judgement in self.judgements():   # an annotation tool's export may name a response twice
            placed = [i for group in judgement.ordering for i in group]
            if len(set(placed)) != len(placed):
                raise FieldError(self.source_field, "a response appears twice in one ranking")

    def judgements(self) -> list[Judgement]:
        """Every annotator's ordering: the row's own first, then :attr:`others`."""
        return [Judgement(self.ordering, self.annotator, self.all_bad), *self.others]


@dataclass(frozen=True)
class Shape:
    """A recognised row format."""
    name: str
    kind: str
    fields: tuple[str, ...]            # fields the shape reads (after mapping)
    description: str
    convert: Callable[[dict, Context], Any] = field(repr=False, compare=False)
    #: Other kinds the layout can store besides ``kind`` (``--kind``), e.g. SFT from oasst trees.
    kinds: tuple[str, ...] = ()
    #: Whole-file layouts (message trees) collect rows in ``convert`` and build the records here:
    #: ``finish(ctx)`` returns ``[(content or KwiseRow, line), ...]``; a ``FieldError`` in place of
    #: the content is a problem located at that line (skipped with ``skip_invalid``).
    finish: Optional[Callable[[Context], list]] = field(default=None, repr=False, compare=False)


def _get(row: dict, name: str) -> Any:
    return row.get(name, MISSING)


def _content(**kw) -> dict:
    return {k: v for k, v in kw.items() if v is not None}


def _conv_prompt_completion(row: dict, ctx: Context) -> dict:
    return _content(prompt=ctx.text(_get(row, "prompt"), "prompt"),
                    completion=ctx.text(_get(row, "completion"), "completion"))


def _conv_messages(row: dict, ctx: Context) -> dict:
    value = _get(row, "messages")
    if isinstance(value, str) and ctx.text_cells:
        value = json_cell(value, "messages", "expected a JSON list of messages")
    if ctx.style is None:
        ctx.style = "conversational"
    if value is MISSING:
        raise FieldError("messages", "is missing")
    return {"messages": check_messages(value, "messages")}


def _conv_preference(row: dict, ctx: Context) -> dict:
    return _content(prompt=ctx.text(_get(row, "prompt"), "prompt"),
                    chosen=ctx.text(_get(row, "chosen"), "chosen"),
                    rejected=ctx.text(_get(row, "rejected"), "rejected"),
                    score_chosen=ctx.score(_get(row, "score_chosen"), "score_chosen", required=False),
                    score_rejected=ctx.score(_get(row, "score_rejected"), "score_rejected", required=False))


def _conv_implicit(row: dict, ctx: Context) -> dict:
    values = {}
    for name in ("chosen", "rejected"):
        v = _get(row, name)
        if v is MISSING or v is None:
            raise FieldError(name, "is missing")
        # Keep the checked value: in CSV it is the decoded message list, not the JSON cell text.
        values[name] = ctx.text(v, name)
    prompt, c, r = split_implicit_prompt(values["chosen"], values["rejected"], checked=True)
    return _content(prompt=prompt, chosen=c, rejected=r,
                    score_chosen=ctx.score(_get(row, "score_chosen"), "score_chosen", required=False),
                    score_rejected=ctx.score(_get(row, "score_rejected"), "score_rejected", required=False))


def _conv_hh(row: dict, ctx: Context) -> dict:
    chosen, rejected = _get(row, "chosen"), _get(row, "rejected")
    for name, v in (("chosen", chosen), ("rejected", rejected)):
        if v is MISSING or v is None:
            raise FieldError(name, "is missing")
    prompt, c, r = split_hh_pair(chosen, rejected)
    if ctx.style is None:
        ctx.style = "conversational"
    elif ctx.style != "conversational":
        raise FieldError("chosen", "HH transcript in a dataset of standard style")
    return {"prompt": prompt, "chosen": [c], "rejected": [r]}


def _conv_unpaired(row: dict, ctx: Context) -> dict:
    return {"prompt": ctx.text(_get(row, "prompt"), "prompt"),
            "completion": ctx.text(_get(row, "completion"), "completion"),
            "label": ctx.label(_get(row, "label"))}


def _conv_prompt_only(row: dict, ctx: Context) -> dict:
    return {"prompt": ctx.text(_get(row, "prompt"), "prompt")}


def _conv_alpaca(row: dict, ctx: Context) -> dict:
    instruction = ctx.plain(_get(row, "instruction"), "instruction")
    extra = ctx.plain(_get(row, "input"), "input", required=False)
    output = ctx.plain(_get(row, "output"), "output")
    prompt = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
    if ctx.style is None:
        ctx.style = "standard"
    return {"prompt": ctx.text(prompt, "instruction"), "completion": ctx.text(output, "output")}


def _conv_kwise(row: dict, ctx: Context) -> KwiseRow:
    prompt = ctx.text(_get(row, "prompt"), "prompt")
    responses = _get(row, "responses")
    if isinstance(responses, str) and ctx.text_cells:
        responses = json_cell(responses, "responses", "expected a JSON list of responses")
    if responses is MISSING or not isinstance(responses, list):
        raise FieldError("responses", f"expected a list of responses, got {type_name(responses)}"
                         if responses is not MISSING else "is missing")
    if len(responses) < 2:
        raise FieldError("responses", f"expected at least 2 responses to rank, got {len(responses)}")
    responses = [ctx.text(r, f"responses[{i}]") for i, r in enumerate(responses)]
    key = "ranks" if _get(row, "ranks") is not MISSING else "scores"
    values = _get(row, key)
    if isinstance(values, str) and ctx.text_cells:
        try:
            values = json.loads(values)
        except (ValueError, RecursionError):
            raise FieldError(key, "expected a JSON list of numbers") from None
    if values is MISSING:
        raise FieldError("ranks", "is missing (give 'ranks' or 'scores')")
    if not isinstance(values, list) or len(values) != len(responses):
        raise FieldError(key, f"expected a list of {len(responses)} numbers (one per response), "
                              f"got {type_name(values)}" + (f" of {len(values)}" if isinstance(values, list) else ""))
    nums = [ctx.score(v, f"{key}[{i}]", required=True) for i, v in enumerate(values)]
    # ranks: 1 is best; scores: higher is best. Equal values are ties.
    order = sorted(set(nums), reverse=(key == "scores"))
    groups = [[i for i, v in enumerate(nums) if v == level] for level in order]
    return KwiseRow(prompt=prompt, responses=responses, ordering=groups,
                    scores=nums if key == "scores" else None, tags=tags_value(_get(row, "tags")))


SHAPES: dict[str, Shape] = {s.name: s for s in (
    Shape("kwise", "preference", ("prompt", "responses", "ranks", "scores"),
          "k-wise ranking {prompt, responses, ranks|scores}", _conv_kwise),
    Shape("unpaired", "unpaired", ("prompt", "completion", "label"),
          "unpaired preference {prompt, completion, label}", _conv_unpaired),
    Shape("preference", "preference", ("prompt", "chosen", "rejected", "score_chosen", "score_rejected"),
          "preference {prompt, chosen, rejected} (optionally with score_chosen/score_rejected)",
          _conv_preference),
    Shape("hh-rlhf", "preference", ("chosen", "rejected"),
          "Anthropic HH-RLHF transcripts {chosen, rejected}", _conv_hh),
    Shape("implicit-preference", "preference", ("chosen", "rejected", "score_chosen", "score_rejected"),
          "preference with the prompt implicit in {chosen, rejected}", _conv_implicit),
    Shape("prompt-completion", "sft", ("prompt", "completion"), "SFT {prompt, completion}",
          _conv_prompt_completion),
    Shape("messages", "sft", ("messages",), "conversational SFT {messages}", _conv_messages),
    Shape("alpaca", "sft", ("instruction", "input", "output"), "Alpaca {instruction, input, output}",
          _conv_alpaca),
    Shape("prompt-only", "prompts", ("prompt",), "prompts {prompt}", _conv_prompt_only),
)}

#: Recognised canonical field names (the targets a ``--map`` may name).
KNOWN_FIELDS = frozenset(f for s in SHAPES.values() for f in s.fields) | {"tags"}


def detect_shape(row: dict) -> Shape:
    """Pick the shape of ``row`` (a mapped first row), or explain why none fits."""
    keys = set(row)
    if "prompt" in keys and "responses" in keys and ({"ranks", "scores"} & keys):
        return SHAPES["kwise"]
    if {"prompt", "completion", "label"} <= keys:
        return SHAPES["unpaired"]
    if {"chosen", "rejected"} <= keys:
        if "prompt" in keys:
            return SHAPES["preference"]
        if looks_like_hh(row["chosen"]):
            return SHAPES["hh-rlhf"]
        return SHAPES["implicit-preference"]
    if "messages" in keys:
        return SHAPES["messages"]
    if {"instruction", "output"} <= keys:
        return SHAPES["alpaca"]
    if {"prompt", "completion"} <= keys:
        return SHAPES["prompt-completion"]
    if "prompt" in keys:
        return SHAPES["prompt-only"]
    fields = ", ".join(sorted(keys)) or "none"
    raise DataError(
        f"unrecognised record shape (fields: {fields}); expected one of: "
        + "; ".join(s.description for s in SHAPES.values())
        + ". Map your columns with --map SOURCE=TARGET, e.g. --map question=prompt --map answer=completion",
        field=None)


def content_tuple(content: dict) -> tuple:
    """Canonical content as a tuple in :data:`~workbench.store.records.CONTENT_FIELDS` order."""
    return tuple(content.get(f) for f in CONTENT_FIELDS)
