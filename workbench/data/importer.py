"""Import a dataset file into the workspace: detect, validate, store, all or nothing.

:func:`import_file` is all or nothing: on an error (unless ``skip_invalid``),
a cancel, or a crash, nothing of the import is stored. It writes in short
chunk transactions that no one sees until one short transaction publishes
the dataset (:mod:`workbench.store.staging`), so ranking decisions in other
processes never wait for the import.
It streams the input in batches, so memory stays bounded at a million rows.

JSONL, Parquet and HF folders go through pyarrow first (the fast path: whole
columns checked and inserted at once). If pyarrow cannot read a JSONL file,
or any row needs attention, the import deletes what it wrote and re-reads
the file with the precise reader, which locates every problem by line.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from ..errors import DataError, WorkbenchError
from ..progress import CancelToken, ProgressFn, check, no_progress
from ..store import datasets as ds_repo
from ..store import db, staging
from ..store.records import CONTENT_FIELDS, KINDS, encode_text
from ..store.workspace import Workspace
from . import readers
from .layouts import LAYOUTS, detect_layout, layout_fields_used
from .mapping import ColumnMap, parse_mapping
from .messages import FieldError
from .pairs import pairs_from_ordering
from .shapes import Context, KwiseRow, Shape

#: Shapes whose all-string columns can be stored without a per-row look.
_COLUMN_SHAPES = {"preference": ("prompt", "chosen", "rejected"),
                  "prompt-completion": ("prompt", "completion"),
                  "prompt-only": ("prompt",)}
#: Skipped-row details kept in the report (the count is always exact).
MAX_REPORTED_SKIPS = 100_000


@dataclass
class ImportReport:
    """What an import did; ``to_dict()`` is the CLI's ``--json`` output."""
    dataset: str
    kind: str
    style: str
    format: str
    shape: str
    rows: int
    skipped: int
    path: str
    seconds: float
    source_id: int
    skipped_rows: list[dict] = field(default_factory=list)
    ignored_fields: list[str] = field(default_factory=list)
    rankings: int = 0
    #: Why the layout (``shape``) was chosen: the fields that identified it, or "asked for".
    layout_reason: str = ""
    #: The background WAL checkpoint started after the commit (join it to wait).
    checkpoint_thread: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("checkpoint_thread")
        return d


class _Fallback(Exception):
    """The fast path cannot vouch for exact line numbers; re-read precisely."""


class _Importer:
    def __init__(self, conn, path: Path, fmt: str, name: str, kind: Optional[str], mapping: dict,
                 skip_invalid: bool, description: str, source_id: int, layout: Optional[str] = None,
                 pending: Optional[staging.Pending] = None):
        self.conn, self.path, self.fmt, self.name = conn, path, fmt, name
        self.pending = pending
        self.file = str(path)
        self.requested_kind, self.mapping, self.layout = kind, mapping, layout
        self.columns = ColumnMap(mapping)
        self.skip_invalid, self.description, self.source_id = skip_invalid, description, source_id
        self.unit = readers.line_unit(fmt)
        self.reset()

    def reset(self) -> None:
        self.ctx = Context(text_cells=self.fmt == "csv")
        self.shape: Optional[Shape] = None
        self.kind: Optional[str] = None
        self.rows = 0
        self.input_rows = 0
        self.rankings = 0
        self.skipped = 0
        self.skipped_rows: list[dict] = []
        self.ignored: list[str] = []
        self.reason = ""

    # -- shared pieces -------------------------------------------------------------------
    def map_row(self, row: dict, *, strict: bool = True) -> dict:
        return self.columns.apply(row, strict=strict) if self.mapping else row

    def start(self, row: dict, line: int) -> None:
        """Detect the shape from the first readable row and check the kind."""
        missing = [src for src in self.columns.sources() if src not in row]
        if missing:
            raise DataError(f"--map names column(s) not in the data: {', '.join(missing)}; "
                            f"columns are: {', '.join(row)}", file=self.file, line=line, unit=self.unit)
        mapped = self.map_row(row, strict=False)
        if self.layout is not None:
            shape, self.reason = LAYOUTS[self.layout], "asked for with --layout"
        else:
            try:
                shape, self.reason = detect_layout(mapped, allow_dropping=self.requested_kind in ("prompts", "sft"))
            except DataError as exc:
                raise DataError(exc.message, file=self.file, line=line, unit=self.unit) from None
        kind = self.requested_kind or shape.kind
        # Every shape yields a prompt (HH and implicit pairs from their shared turns, {messages}
        # from all but the final reply, see encode), so --kind prompts fits any of them.
        if kind not in (shape.kind, *shape.kinds) and kind != "prompts":
            raise DataError(
                f"--kind {kind} does not fit the layout: {shape.description}; "
                f"use --kind {shape.kind}, or --map to rename fields", file=self.file, line=line,
                unit=self.unit)
        self.shape, self.kind = shape, kind
        self.ctx.kind = kind
        used = layout_fields_used(shape, mapped)
        self.ignored = sorted(k for k in mapped if k not in used)

    def problem(self, line: int, message: str, field_name: Optional[str]) -> None:
        if not self.skip_invalid:
            raise DataError(message, file=self.file, line=line, field=field_name, unit=self.unit)
        self.skipped += 1
        if len(self.skipped_rows) < MAX_REPORTED_SKIPS:
            self.skipped_rows.append({self.unit: line, "field": field_name, "message": message})

    def encode(self, content: dict, line: int, split: Optional[str], tags=None, ranking_id=None,
               candidate_id=None) -> tuple:
        if self.kind == "prompts":
            prompt = content.get("prompt")
            if prompt is None and "messages" in content:
                msgs = content["messages"]
                prompt = msgs[:-1] if msgs[-1]["role"] == "assistant" else msgs
            content = {"prompt": prompt}
        values = []
        for name in CONTENT_FIELDS:
            v = content.get(name)
            if v is not None:
                if name == "label":
                    v = int(v)
                elif isinstance(v, list):
                    v = encode_text(v)
            values.append(v)
        tag_text = json.dumps(list(tags), ensure_ascii=False) if tags else None
        return (*values, tag_text, split, self.source_id, line, ranking_id, candidate_id, None, None)

    def convert_rows(self, rows: list, lines: list, split: Optional[str], *, fast: bool) -> list[tuple]:
        out = []
        self.input_rows += len(rows)
        for row, line in zip(rows, lines):
            if isinstance(row, readers.RowProblem):
                if fast:
                    raise _Fallback
                self.problem(line, row.message, row.field)
                continue
            if self.shape is None:
                self.start(row, line)
            style_before = self.ctx.style
            self.ctx.line = line
            try:
                if self.mapping:
                    row = self.map_row(row)
                content = self.shape.convert(row, self.ctx)
                if isinstance(content, KwiseRow):
                    tags = content.tags
                elif isinstance(content, dict) and "tags" in content:
                    tags = content.pop("tags")   # a layout's own tags (a category, a safety verdict)
                else:
                    tags = _tags(row)
            except FieldError as exc:
                self.ctx.style = style_before
                if fast:
                    raise _Fallback
                self.problem(line, exc.message, exc.field)
                continue
            if content is None:
                continue   # a whole-file layout collects the row; finish() stores what it gives
            if isinstance(content, KwiseRow):
                out.extend(self.kwise(content, line, split))
            else:
                out.append(self.encode(content, line, split, tags))
        return out

    def finish(self) -> None:
        """Store what a whole-file layout (message trees) builds once every row is read."""
        if self.shape is None or self.shape.finish is None:
            return
        try:
            items = self.shape.finish(self.ctx)
        except FieldError as exc:
            raise DataError(exc.message, file=self.file, field=exc.field) from None
        out: list[tuple] = []
        for item, line in items:
            if isinstance(item, FieldError):
                self.problem(line, item.message, item.field)   # skipped with skip_invalid, else raised
                continue
            if isinstance(item, KwiseRow):
                out.extend(self.kwise(item, line, None))
            else:
                out.append(self.encode(item, line, None, item.pop("tags", None)))
            if len(out) >= readers.BATCH_ROWS:
                self.store(out)
                out = []
        self.store(out)

    def kwise(self, row: KwiseRow, line: int, split: Optional[str]) -> list[tuple]:
        """Store the ranking itself (prompt, candidates, ranking) and return its pairs."""
        if self.kind == "prompts":
            return [self.encode({"prompt": row.prompt}, line, split, row.tags)]
        cand_ids, ranking_ids = self.store_ranking(row, line)
        self.rankings += len(ranking_ids)
        out = []
        for judgement, ranking_id in zip(row.judgements(), ranking_ids):
            if judgement.all_bad:
                continue   # an ordering among bad answers is no preference (as rankings_to_dataset)
            for a, b, _tie in pairs_from_ordering([sorted(g) for g in judgement.ordering]):
                content = {"prompt": row.prompt, "chosen": row.responses[a], "rejected": row.responses[b]}
                if row.scores:
                    content["score_chosen"], content["score_rejected"] = row.scores[a], row.scores[b]
                out.append(self.encode(content, line, split, row.tags, ranking_id, cand_ids[a]))
        return out

    def store_ranking(self, row: KwiseRow, line: int) -> tuple[list, list]:
        """Insert the prompt, its candidates and one ranking per judgement, as the Rank page
        stores a decision; return ``(candidate ids, ranking ids)``.
        (A separate step so a preview can check k-wise rows without a database.)"""
        self.pending.hold()  # rankings are visible to queues at once: the rest is one transaction
        now = time.time()
        style = self.ctx.style or "standard"
        prompt_id = self.conn.execute(
            "INSERT INTO prompts(prompt, style, tags, source_id, source_line, created_at) VALUES (?,?,?,?,?,?)",
            (encode_text(row.prompt), style, json.dumps(list(row.tags or ())), self.source_id, line, now)).lastrowid
        cand_ids = []
        for i, resp in enumerate(row.responses):
            params = {"score": row.scores[i]} if row.scores else {}
            cand_ids.append(self.conn.execute(
                "INSERT INTO candidates(prompt_id, response, model, params, source_id, source_line, created_at)"
                " VALUES (?,?,?,?,?,?,?)",
                (prompt_id, encode_text(resp), row.models[i] if row.models else None, json.dumps(params),
                 self.source_id, row.response_lines[i] if row.response_lines else line, now)).lastrowid)
        ranking_ids = []
        for judgement in row.judgements():
            ordering = [sorted(cand_ids[i] for i in g) for g in judgement.ordering]
            ranking_ids.append(self.conn.execute(
                "INSERT INTO rankings(prompt_id, annotator, ordering, all_bad, source_id, source_line, created_at)"
                " VALUES (?,?,?,?,?,?,?)",
                (prompt_id, judgement.annotator or f"import:{self.path.name}", json.dumps(ordering),
                 int(judgement.all_bad), self.source_id, line, now)).lastrowid)
        return cand_ids, ranking_ids

    # Each chunk is its own short transaction (see workbench.store.staging), so a ranking
    # decision never waits for more than one chunk's inserts.
    def store(self, encoded: list[tuple]) -> None:
        for i in range(0, len(encoded), staging.CHUNK_ROWS):
            with self.pending.write():
                ds_repo.insert_rows(self.conn, self.pending.dataset_id, encoded[i:i + staging.CHUNK_ROWS])
        self.rows += len(encoded)

    def store_columns(self, columns: tuple[str, ...], rows: list[tuple], split: Optional[str]) -> None:
        for i in range(0, len(rows), staging.CHUNK_ROWS):
            with self.pending.write():
                ds_repo.insert_columns(self.conn, self.pending.dataset_id, columns, rows[i:i + staging.CHUNK_ROWS],
                                       source_id=self.source_id, split=split)
        self.rows += len(rows)

    # -- the two paths -------------------------------------------------------------------
    def run_precise(self, progress: ProgressFn, cancel: Optional[CancelToken]) -> None:
        for batch in readers.read_rows(self.path, self.fmt):
            check(cancel)
            self.store(self.convert_rows(batch.rows, batch.lines, batch.split, fast=False))
            progress(batch.done_fraction, f"{self.rows:,} records imported")

    def run_fast(self, progress: ProgressFn, cancel: Optional[CancelToken]) -> None:
        import pyarrow as pa

        exact_rows = self.fmt != "jsonl"   # Parquet/Arrow row numbers are exact
        try:
            for rb, first, split, frac in readers.arrow_batches(self.path, self.fmt):
                check(cancel)
                if self.shape is None and rb.num_rows:
                    # Detect the shape from the first row alone, so the first batch
                    # can take the whole-column path too.
                    self.start(rb.slice(0, 1).to_pylist()[0], first)
                fast = self.columns_fast(rb, first) if self.shape is not None else None
                if fast is not None:
                    self.store_columns(*fast, split)
                else:
                    rows = rb.to_pylist()
                    self.store(self.convert_rows(rows, list(range(first, first + len(rows))), split,
                                                 fast=not exact_rows))
                progress(frac, f"{self.rows:,} records imported")
        except (pa.ArrowException, DataError):
            if exact_rows:
                raise
            raise _Fallback from None
        except SystemError:
            # pyarrow's JSON reader can build corrupt string arrays (an empty object on line 1 and a
            # list holding null then a string on line 2: "Negative size passed to PyUnicode_New").
            if exact_rows:
                raise DataError("pyarrow could not read a column of this file", file=self.file) from None
            raise _Fallback from None
        except UnicodeDecodeError:
            # pyarrow does not validate UTF-8 in JSON strings; the bytes fail when turned into Python
            # strings. The precise reader names the line.
            if exact_rows:
                raise DataError("a text column holds bytes that are not valid UTF-8",
                                file=self.file) from None
            raise _Fallback from None
        if not exact_rows and self.input_rows != readers.count_jsonl_lines(self.path):
            raise _Fallback  # blank lines or multi-line values: line numbers would be off

    def columns_fast(self, rb, first: int) -> Optional[tuple[tuple[str, ...], list[tuple]]]:
        """Whole-column path for all-string shapes: ``(columns, rows)``, or ``None``
        when the batch needs a per-row look."""
        import pyarrow as pa

        needed = _COLUMN_SHAPES.get(self.shape.name)
        if needed is None or self.ctx.style == "conversational":
            return None
        names = [self.mapping.get(n, n) for n in rb.schema.names]
        if len(set(names)) != len(names) or {"score_chosen", "score_rejected", "tags"} & set(names):
            return None
        if self.kind == "prompts":
            needed = ("prompt",)
        cols = []
        for want in needed:
            if want not in names:
                return None
            col = rb.column(names.index(want))
            if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)) or col.null_count:
                return None
            cols.append(col.to_pylist())
        if self.ctx.style is None:
            self.ctx.style = "standard"
        n = rb.num_rows
        self.input_rows += n
        return (*needed, "source_line"), list(zip(*cols, range(first, first + n)))


def _tags(row: dict):
    from .shapes import tags_value, MISSING
    return tags_value(row.get("tags", MISSING))


def import_file(ws: Workspace, path: Path | str, name: str, *, kind: Optional[str] = None,
                mapping: Optional[list[str] | Mapping[str, str]] = None, skip_invalid: bool = False,
                description: str = "", fmt: Optional[str] = None,
                progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None,
                conn=None, layout: Optional[str] = None) -> ImportReport:
    """Import ``path`` as a new dataset ``name``; return what was stored.

    The layout is detected from the first row (see
    :func:`~workbench.data.layouts.detect_layout`) unless ``layout`` names
    one of :data:`~workbench.data.layouts.LAYOUTS`.

    Raises :class:`~workbench.errors.DataError` naming file, line and field
    for the first bad row (unless ``skip_invalid``), and
    :class:`~workbench.errors.Cancelled` if ``cancel`` fires; in both cases
    the workspace is left exactly as it was.
    """
    started = time.perf_counter()
    path = Path(path)
    fmt = fmt or readers.detect_format(path)
    if fmt not in readers.FORMATS:
        raise WorkbenchError(f"format {fmt!r}: expected one of {', '.join(readers.FORMATS)}")
    if kind is not None and kind not in KINDS:
        raise WorkbenchError(f"--kind {kind}: expected one of {', '.join(KINDS)}")
    name = ds_repo.validate_name(name)
    mapping = parse_mapping(mapping)
    check_layout(layout)
    if fmt in ("jsonl", "json", "csv") and readers.file_size(path) == 0:
        raise DataError("file is empty (no records)", file=str(path))
    conn = conn or ws.conn
    # The commit makes the import durable (the WAL is fsynced); copying the WAL
    # back into the database file (a checkpoint, ~0.3 s per 100 MB) is left to a
    # background thread instead of the caller, and instead of the next writer,
    # which may be a ranking decision that must not stall.
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    try:
        report = _import_staged(ws, conn, path, fmt, name, kind, mapping, skip_invalid, description,
                                progress, cancel, started, layout)
    finally:
        conn.execute("PRAGMA wal_autocheckpoint = 1000")
    report.checkpoint_thread = db.checkpoint_in_background(ws.db_path)
    ws.add_background(report.checkpoint_thread)
    return report


def check_layout(layout: Optional[str]) -> None:
    """Refuse a ``layout`` that is not one of :data:`~workbench.data.layouts.LAYOUTS` (``None``: detect)."""
    if layout is not None and layout not in LAYOUTS:
        raise WorkbenchError(f"--layout {layout}: expected one of {', '.join(LAYOUTS)}")


def _import_staged(ws, conn, path, fmt, name, kind, mapping, skip_invalid, description, progress,
                   cancel, started, layout=None) -> ImportReport:
    """Write the import in chunks no one sees, then publish it at once (see workbench.store.staging)."""
    what = f"workspace {ws.root}"
    if conn.execute("SELECT 1 FROM datasets WHERE name = ?", (name,)).fetchone():
        raise WorkbenchError(f"dataset {name!r} already exists; choose another --name")
    pending = staging.begin_import(conn, what=what, path=str(path.resolve()), fmt=fmt,
                                   mapping=json.dumps(mapping) if mapping else None,
                                   size_bytes=readers.file_size(path))
    try:
        with pending.writing():
            imp = _Importer(conn, path, fmt, name, kind, mapping, skip_invalid, description, pending.source_id,
                            layout=layout, pending=pending)
            if fmt in ("jsonl", "parquet", "hf"):
                try:
                    imp.run_fast(progress, cancel)
                except _Fallback:
                    staging.discard_rows(pending)
                    imp.reset()
                    imp.run_precise(progress, cancel)
            else:
                imp.run_precise(progress, cancel)
            imp.finish()
            # A cancel from the last batch's progress callback still wins: nothing is published.
            check(cancel)
            if imp.shape is None:
                raise DataError("file is empty (no records)", file=str(path))
            if imp.rows == 0 and imp.skipped == 0:
                raise DataError(f"no records to store: the {imp.input_rows:,} rows gave none"
                                + (" (rankings whose responses are all tied give no pairs)"
                                   if imp.rankings else ""), file=str(path))
            if imp.rows == 0:
                raise DataError(f"no valid records: all {imp.skipped} rows were skipped"
                                + (f"; first problem: {imp.skipped_rows[0]['message']}" if imp.skipped_rows else ""),
                                file=str(path))
            staging.publish(pending, name=name, kind=imp.kind, style=imp.ctx.style or "standard",
                            description=description, shape=imp.shape.name,
                            detail={"rows": imp.rows, "skipped": imp.skipped, "style": imp.ctx.style})
    except BaseException as exc:
        try:
            staging.discard(pending)
        except Exception:  # noqa: BLE001 - the original error matters; the leftovers go at the next open
            pass
        if isinstance(exc, (sqlite3.Error, OSError)) and (known := db.explain(exc, ws.db_path)):
            raise type(known)(f"{known}; the import was not stored (the workspace is as it was)") from exc
        raise
    progress(1.0, f"{imp.rows:,} records imported")
    return ImportReport(dataset=name, kind=imp.kind, style=imp.ctx.style or "standard", format=fmt,
                        shape=imp.shape.name, rows=imp.rows, skipped=imp.skipped, path=str(path),
                        seconds=round(time.perf_counter() - started, 3), source_id=pending.source_id,
                        skipped_rows=imp.skipped_rows, ignored_fields=imp.ignored, rankings=imp.rankings,
                        layout_reason=imp.reason)
