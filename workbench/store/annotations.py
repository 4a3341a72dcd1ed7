"""Prompts, candidates, rankings and demonstrations: the annotation side of the loop.

A ranking is committed in its own transaction (:func:`record_ranking`)
before the UI shows the next item, so a crash never loses a decision that
was reported as saved. Preference pairs and demonstrations become dataset
records whose lineage points back at the ranking or candidate they came from.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any, Iterable, Optional, Sequence

from ..errors import NotFoundError, WorkbenchError
from .records import Candidate, Prompt, Ranking, Record, Text, decode_text, encode_text
from . import datasets as ds_repo


def _style(text: Text) -> str:
    return "standard" if isinstance(text, str) else "conversational"


def add_prompt(conn: sqlite3.Connection, prompt: Text, *, tags: Sequence[str] = (),
               record_id: Optional[int] = None, source_id: Optional[int] = None) -> int:
    """Store a prompt (plain text or chat messages) and return its id."""
    return conn.execute(
        "INSERT INTO prompts(prompt, style, tags, record_id, source_id, created_at) VALUES (?,?,?,?,?,?)",
        (encode_text(prompt), _style(prompt), json.dumps(list(tags)), record_id, source_id,
         time.time())).lastrowid


def get_prompt(conn: sqlite3.Connection, prompt_id: int) -> Prompt:
    row = conn.execute("SELECT id, prompt, style, tags, record_id, created_at FROM prompts WHERE id = ?",
                       (prompt_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no prompt #{prompt_id}")
    return Prompt(id=row[0], prompt=decode_text(row[1], row[2]), tags=tuple(json.loads(row[3])),
                  record_id=row[4], created_at=row[5])


def add_candidate(conn: sqlite3.Connection, prompt_id: int, response: Text, *, model: Optional[str] = None,
                  checkpoint: Optional[str] = None, params: Optional[dict[str, Any]] = None,
                  parent_id: Optional[int] = None) -> int:
    """Store a response to a prompt with the model/checkpoint and sampling parameters that made it."""
    return conn.execute(
        "INSERT INTO candidates(prompt_id, response, model, checkpoint, params, parent_id, created_at)"
        " VALUES (?,?,?,?,?,?,?)",
        (prompt_id, encode_text(response), model, checkpoint, json.dumps(params or {}, sort_keys=True),
         parent_id, time.time())).lastrowid


def candidates_for(conn: sqlite3.Connection, prompt_id: int) -> list[Candidate]:
    rows = conn.execute(
        "SELECT c.id, c.prompt_id, c.response, p.style, c.model, c.checkpoint, c.params, c.parent_id, c.created_at"
        " FROM candidates c JOIN prompts p ON p.id = c.prompt_id WHERE c.prompt_id = ? ORDER BY c.id",
        (prompt_id,)).fetchall()
    return [Candidate(id=r[0], prompt_id=r[1], response=decode_text(r[2], r[3]), model=r[4], checkpoint=r[5],
                      params=json.loads(r[6]), parent_id=r[7], created_at=r[8]) for r in rows]


def record_ranking(conn: sqlite3.Connection, prompt_id: int, annotator: str,
                   ordering: Sequence[Sequence[int]], *, all_bad: bool = False, note: str = "",
                   flags: Iterable[str] = (), queue_id: Optional[int] = None,
                   shown: Optional[Sequence[int]] = None, repeat_of: Optional[int] = None) -> int:
    """Validate and store one ranking decision; returns its id.

    ``ordering`` holds tie groups of candidate ids, best first. Every id
    must be a candidate of ``prompt_id`` and appear once. The caller wraps
    this in its own write transaction (one decision, one commit).

    From a ranking queue (:mod:`workbench.store.queue`) also: the queue,
    ``shown`` (the candidate ids in display order, left to right: what
    position bias is measured on) and ``repeat_of`` (the ranking this one
    repeats, for self-consistency).
    """
    annotator = annotator.strip()
    if not annotator:
        raise WorkbenchError("annotator name is empty")
    groups = [sorted(int(c) for c in g) for g in ordering if len(g)]
    ids = [c for g in groups for c in g]
    if len(ids) != len(set(ids)):
        raise WorkbenchError("a candidate appears twice in the ranking")
    if not ids:
        raise WorkbenchError("the ranking orders no candidates")
    known = {c for (c,) in conn.execute("SELECT id FROM candidates WHERE prompt_id = ?", (prompt_id,))}
    stray = sorted(set(ids) - known)
    if stray:
        raise WorkbenchError(f"candidates {stray} do not belong to prompt #{prompt_id}")
    if shown is not None and sorted(int(c) for c in shown) != sorted(ids):
        raise WorkbenchError("the shown candidates and the ranked candidates differ")
    return conn.execute(
        "INSERT INTO rankings(prompt_id, annotator, ordering, all_bad, note, flags, created_at,"
        " queue_id, shown, repeat_of) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (prompt_id, annotator, json.dumps(groups), int(all_bad), note, json.dumps(sorted(set(flags))),
         time.time(), queue_id, None if shown is None else json.dumps([int(c) for c in shown]),
         repeat_of)).lastrowid


def _ranking(row) -> Ranking:
    return Ranking(id=row[0], prompt_id=row[1], annotator=row[2],
                   ordering=tuple(tuple(g) for g in json.loads(row[3])), all_bad=bool(row[4]), note=row[5],
                   flags=tuple(json.loads(row[6])), created_at=row[7])


_RANK_COLS = "id, prompt_id, annotator, ordering, all_bad, note, flags, created_at"


def rankings(conn: sqlite3.Connection, *, annotator: Optional[str] = None,
             prompt_id: Optional[int] = None) -> list[Ranking]:
    where, args = [], []
    if annotator is not None:
        where.append("annotator = ?")
        args.append(annotator)
    if prompt_id is not None:
        where.append("prompt_id = ?")
        args.append(prompt_id)
    sql = f"SELECT {_RANK_COLS} FROM rankings" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
    return [_ranking(r) for r in conn.execute(sql, args)]


def delete_ranking(conn: sqlite3.Connection, ranking_id: int) -> None:
    """Undo a decision (records already derived from it keep their lineage id)."""
    if conn.execute("DELETE FROM rankings WHERE id = ?", (ranking_id,)).rowcount == 0:
        raise NotFoundError(f"no ranking #{ranking_id}")


def rankings_to_dataset(conn: sqlite3.Connection, name: str, *, annotator: Optional[str] = None,
                        ties: str = "skip", include_all_bad: bool = False) -> int:
    """Expand rankings into a new preference dataset ``name``; returns the pair count.

    k-wise rankings give every (better, worse) pair; ties give no pair unless
    ``ties="both"``. Rankings flagged "all bad" are left out unless asked
    for: an ordering among bad answers is a weak signal. Self-consistency
    repeats (``rankings.repeat_of``) are left out: they measure the
    annotator, and would count the same judgement twice. Each pair record
    carries the ranking id as lineage.
    """
    from ..data.pairs import pairs_from_ordering

    repeats = {i for (i,) in conn.execute("SELECT id FROM rankings WHERE repeat_of IS NOT NULL")}
    selected = [r for r in rankings(conn, annotator=annotator)
                if (include_all_bad or not r.all_bad) and r.id not in repeats]
    if not selected:
        raise WorkbenchError("no rankings to turn into pairs" + (f" by {annotator!r}" if annotator else ""))
    prompt_ids = sorted({r.prompt_id for r in selected})
    styles = {conn.execute("SELECT style FROM prompts WHERE id = ?", (pid,)).fetchone()[0] for pid in prompt_ids}
    if len(styles) > 1:
        raise WorkbenchError("rankings mix plain-text and chat prompts; export them separately")
    style = styles.pop()
    dataset_id = ds_repo.create_dataset(conn, name, "preference", style,
                                        f"pairs from {len(selected)} rankings" +
                                        (f" by {annotator}" if annotator else ""))
    n = 0
    for r in selected:
        prompt = get_prompt(conn, r.prompt_id)
        texts = {c.id: c.response for c in candidates_for(conn, r.prompt_id)}
        for a, b, _tie in pairs_from_ordering(r.ordering, ties=ties):
            ds_repo.add_record(conn, dataset_id, Record(prompt=prompt.prompt, chosen=texts[a], rejected=texts[b]),
                               ranking_id=r.id, candidate_id=a)
            n += 1
    return n


def add_demonstration(conn: sqlite3.Connection, dataset_name: str, prompt: Text, response: Text, *,
                      candidate_id: Optional[int] = None) -> int:
    """Add (prompt, ideal response) to an SFT dataset, created if missing; returns the record id.

    ``candidate_id`` records the candidate the response was edited from.
    """
    row = conn.execute("SELECT id, kind, style FROM datasets WHERE name = ?", (dataset_name,)).fetchone()
    style = _style(prompt)
    if row is None:
        dataset_id = ds_repo.create_dataset(conn, dataset_name, "sft", style, "demonstrations")
    else:
        dataset_id, kind, ds_style = row
        if kind != "sft":
            raise WorkbenchError(f"dataset {dataset_name!r} is a {kind} dataset; demonstrations go to an sft one")
        if ds_style != style:
            raise WorkbenchError(f"dataset {dataset_name!r} holds {ds_style} records; this prompt is {style}")
    if style == "conversational" and isinstance(response, str):
        response = [{"role": "assistant", "content": response}]
    return ds_repo.add_record(conn, dataset_id, Record(prompt=prompt, completion=response),
                              candidate_id=candidate_id)
