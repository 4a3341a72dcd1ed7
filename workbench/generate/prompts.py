"""The prompts a generation answers, and the workspace rows its candidates hang on.

:func:`select_prompts` reads the config's prompt source into
:class:`PromptRow`s. A row's ``prompt_id`` is ``None`` until
:func:`ensure_prompt` stores it, which the job does in the same transaction
as the row's first candidates: prompts appear in the workspace together with
their candidates (and with ids in generation order), so a ranking queue
picks them up as they stream in. A dataset record answered before keeps its
prompt row, so the candidates of several runs (a comparison, a new
checkpoint) meet on the same queue item.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Optional

from ..errors import WorkbenchError
from ..store import datasets as ds_repo
from ..store.records import Text, decode_text, encode_text
from ..train.config import ConfigError
from .config import GenerateConfig


@dataclass
class PromptRow:
    """One prompt to answer: its text (string or chat messages) and where it lives."""

    text: Text
    prompt_id: Optional[int] = None
    record_id: Optional[int] = None

    @property
    def style(self) -> str:
        return "standard" if isinstance(self.text, str) else "conversational"


def record_prompt(rec) -> Optional[Text]:
    """The prompt of a dataset record: ``prompt``, or a conversation without its last assistant turn."""
    if rec.prompt is not None:
        return rec.prompt
    msgs = rec.messages
    if msgs:
        if msgs[-1].get("role") == "assistant":
            msgs = msgs[:-1]
        return list(msgs) if msgs else None
    return None


def select_prompts(conn: sqlite3.Connection, cfg: GenerateConfig) -> tuple[list[PromptRow], int]:
    """``(rows, skipped)``: the distinct prompts to answer, in a stable order, at most ``cfg.limit``;
    ``skipped`` counts dataset records that hold no prompt.

    Distinct by text: a preference dataset holds many pairs per prompt, and answering (then
    ranking) the same prompt ten times is not ten prompts. The first record of a prompt is kept."""
    rows: list[PromptRow] = []
    seen: dict[str, PromptRow] = {}
    skipped = 0
    limit = cfg.limit or None

    def add(row: PromptRow) -> bool:
        """Keep ``row`` unless its prompt is already kept; whether the limit is reached."""
        key = encode_text(row.text)
        first = seen.get(key)
        if first is None:
            seen[key] = row
            rows.append(row)
        elif first.prompt_id is None and row.prompt_id is not None:
            first.prompt_id, first.record_id = row.prompt_id, row.record_id  # answered before: reuse it
        return bool(limit) and len(rows) >= limit

    if cfg.prompt_dataset:
        try:
            info = ds_repo.get_dataset(conn, cfg.prompt_dataset)
        except WorkbenchError as e:
            raise ConfigError("prompt_dataset", str(e)) from None
        known = dict(conn.execute(
            "SELECT p.record_id, min(p.id) FROM prompts p JOIN records r ON r.id = p.record_id"
            " WHERE r.dataset_id = ? GROUP BY p.record_id", (info.id,)).fetchall())
        for rec in ds_repo.iter_records(conn, info):
            text = record_prompt(rec)
            if text is None or (isinstance(text, str) and not text.strip()):
                skipped += 1
                continue
            if add(PromptRow(text=text, prompt_id=known.get(rec.id), record_id=rec.id)):
                break
        if not rows:
            raise ConfigError("prompt_dataset", f"dataset {cfg.prompt_dataset!r} holds no prompts")
    elif cfg.prompt_tag:
        for pid, text, style in conn.execute(
                "SELECT p.id, p.prompt, p.style FROM prompts p WHERE EXISTS"
                " (SELECT 1 FROM json_each(p.tags) t WHERE t.value = ?) ORDER BY p.id", (cfg.prompt_tag,)):
            if add(PromptRow(text=decode_text(text, style), prompt_id=pid)):
                break
        if not rows:
            raise ConfigError("prompt_tag", f"no prompts tagged {cfg.prompt_tag!r} in the workspace")
    else:
        tag = cfg.prompt_tag_for_new
        for text in cfg.prompts or []:
            row = conn.execute(
                "SELECT p.id FROM prompts p WHERE p.prompt = ? AND p.style = 'standard' AND EXISTS"
                " (SELECT 1 FROM json_each(p.tags) t WHERE t.value = ?) ORDER BY p.id LIMIT 1",
                (text, tag)).fetchone()
            if add(PromptRow(text=text, prompt_id=row[0] if row else None)):
                break
    return rows, skipped


def ensure_prompt(conn: sqlite3.Connection, row: PromptRow, tag: str) -> int:
    """The prompt id of ``row``, storing the prompt (tagged ``tag``) if it has none yet."""
    if row.prompt_id is None:
        row.prompt_id = conn.execute(
            "INSERT INTO prompts(prompt, style, tags, record_id, created_at) VALUES (?,?,?,?,?)",
            (encode_text(row.text), row.style, json.dumps([tag]), row.record_id, time.time())).lastrowid
    return row.prompt_id


def generation_source(conn: sqlite3.Connection, run_id: str, arm: str, model: str, detail: dict) -> int:
    """The ``sources`` row of one model of a generation run (created once, found again on resume)."""
    row = conn.execute(
        "SELECT id FROM sources WHERE kind = 'generation' AND json_extract(detail, '$.run_id') = ?"
        " AND json_extract(detail, '$.arm') = ?", (run_id, arm)).fetchone()
    if row:
        return row[0]
    return conn.execute(
        "INSERT INTO sources(kind, path, detail, created_at) VALUES ('generation', ?, ?, ?)",
        (model, json.dumps({"run_id": run_id, "arm": arm, **detail}, sort_keys=True), time.time())).lastrowid


def answered(conn: sqlite3.Connection, source_id: int) -> set[int]:
    """Prompt ids that already hold candidates of ``source_id`` (a resumed run skips them)."""
    return {pid for (pid,) in conn.execute(
        "SELECT DISTINCT prompt_id FROM candidates WHERE source_id = ?", (source_id,))}
