"""OpenAssistant oasst1/oasst2 message trees: one ranking per parent, SFT along the best path.

The trees come as flat message rows (``message_id``, ``parent_id``,
``role`` prompter|assistant, ``text``, sibling ``rank`` with 0 = best, as in
the Hub datasets) or nested (``*.trees.jsonl``: a ``prompt`` message with its
``replies``). Both are whole-file layouts: :func:`collect_flat` and
:func:`collect_tree` gather the messages while the importer reads the rows,
and :func:`finish` builds the records once all are read. Deleted messages
are left out with their replies.
"""

from __future__ import annotations

from typing import Any

from .cells import as_bool, get, ordering, reply, required, required_value
from .messages import FieldError, type_name
from .shapes import MISSING, Context, KwiseRow


_OASST_ROLES = {"prompter": "user", "assistant": "assistant"}


def collect_flat(row: dict, ctx: Context) -> None:
    """Collect one message; :func:`_finish_oasst` builds the trees once all are read."""
    msgs = ctx.state.setdefault("messages", {})
    _collect_oasst(row, ctx, get(row, "parent_id"), msgs, msgs)
    return None


def collect_tree(row: dict, ctx: Context) -> None:
    """Collect a nested oasst tree (``*.trees.jsonl``: ``prompt`` with its ``replies``), one row per tree."""
    root = required_value(row, "prompt", ctx)
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
    mid = required(row, "message_id")
    if not isinstance(mid, str):
        raise FieldError("message_id", f"expected a string, got {type_name(mid)}")
    if parent is MISSING or parent == "":
        parent = None
    if parent is not None and not isinstance(parent, str):
        raise FieldError("parent_id", f"expected a string or null, got {type_name(parent)}")
    role = get(row, "role")
    role = _OASST_ROLES.get(role) if isinstance(role, str) else None
    if role is None:
        raise FieldError("role", f"expected prompter or assistant, got {get(row, 'role')!r:.40}")
    text = get(row, "text")
    if not isinstance(text, str):
        raise FieldError("text", f"expected a string, got {type_name(text)}" if text is not MISSING else "is missing")
    rank = row.get("rank", MISSING)
    rank = None if rank is MISSING or rank is None or rank == "" else ctx.score(rank, "rank", required=True)
    deleted = get(row, "deleted")
    deleted = False if deleted is MISSING or deleted is None or deleted == "" else as_bool(deleted, "deleted")
    seen = into.get(mid) or known.get(mid)
    if seen is not None:
        raise FieldError("message_id", f"{mid!r} appears twice (first on line {seen[4]})")
    into[mid] = (parent, role, text, rank, ctx.line, deleted)
    if ctx.style is None:
        ctx.style = "conversational"


def finish(ctx: Context) -> list:
    """The records and rankings of the collected trees: ``[(KwiseRow or SFT content, line), ...]``;
    a ranking that cannot be stored is ``(FieldError, its parent's line)``."""
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
                try:
                    item = KwiseRow(prompt=list(path), responses=[reply(msgs[k][2]) for k in ranked],
                                    ordering=ordering(ranks, best_low=True), scores=None, tags=None,
                                    response_lines=[msgs[k][4] for k in ranked], source_field="rank")
                except FieldError as exc:   # too many replies: a problem at the parent's line
                    item = exc
                out.append((item, msgs[mid][4]))
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
