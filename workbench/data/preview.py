"""Preview the first rows of a file as an import would read them.

:func:`preview_file` reads the head of a dataset file with the importer's own
readers, applies a column mapping, detects the shape from the first readable
row and checks every previewed row with the importer's converters. The
result says what an import of the whole file would start with: the format,
shape, kind and style, the fields it would ignore, and each problem in the
previewed rows located by file, line (or row) and field. Nothing is written
anywhere; the import wizard calls this each time the user changes the
mapping or the kind.

Only the previewed rows are checked: a bad line further down still stops
the import itself (or is skipped, with ``skip_invalid``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from ..errors import DataError, WorkbenchError
from ..store.records import KINDS
from . import readers
from .importer import _Importer, check_layout
from .mapping import parse_mapping, parse_pick
from .layouts import LAYOUTS, layout_fields_used
from .shapes import KNOWN_FIELDS, KwiseRow

#: Rows read for a preview unless the caller asks otherwise.
DEFAULT_PREVIEW_ROWS = 50


@dataclass(frozen=True)
class Problem:
    """One problem in a previewed row: ``str()`` reads like the importer's errors."""
    file: str
    line: Optional[int]
    field: Optional[str]
    message: str
    unit: str = "line"          # "line" for text formats, "row" for columnar ones

    def location(self) -> str:
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}" if self.unit == "line" else f"{self.file}: row {self.line}"

    def __str__(self) -> str:
        return str(DataError(self.message, file=self.file, line=self.line, field=self.field, unit=self.unit))

    @classmethod
    def from_error(cls, exc: DataError, file: str, unit: str) -> "Problem":
        return cls(file=exc.file or file, line=exc.line, field=exc.field, message=exc.message,
                   unit=exc.unit if exc.line is not None else unit)


@dataclass(frozen=True)
class StoredPreview:
    """One record (or ranking) an import of the previewed rows would store, as it would be saved."""
    line: int
    content: dict                              # prompt (with history), chosen, rejected, ... as stored
    tags: tuple[str, ...] = ()
    ranking: Optional[str] = None              # for a stored ranking: its order, ties, annotator


@dataclass
class FilePreview:
    """The head of a file as the importer sees it (see :func:`preview_file`)."""
    path: str
    format: str
    unit: str                                   # "line" or "row": how rows are located
    columns: list[str]                          # source columns, in first-seen order
    rows: list[Optional[dict]]                  # raw rows; None where a row could not be read
    lines: list[int]                            # the line (or row) number of each row
    splits: list[Optional[str]]                 # an HF DatasetDict's split of each row
    mapping: dict[str, str]                     # source column -> canonical field
    more: bool                                  # the file has rows after the previewed ones
    shape: Optional[str] = None                 # shape name (see workbench.data.shapes.SHAPES)
    kind: Optional[str] = None                  # the kind the import would create
    style: Optional[str] = None                 # "standard" or "conversational"
    ignored_fields: list[str] = field(default_factory=list)
    layout_reason: str = ""                     # why the layout (shape) was chosen
    stored: list[StoredPreview] = field(default_factory=list)   # what the previewed rows would store
    problems: list[Problem] = field(default_factory=list)   # rows an import would stop at / skip
    error: Optional[Problem] = None             # stops any import: no shape, bad mapping, unreadable

    @property
    def shape_description(self) -> str:
        return LAYOUTS[self.shape].description if self.shape else ""

    @property
    def valid_rows(self) -> int:
        return len(self.rows) - len(self.problems)

    def target(self, column: str) -> str:
        """The canonical field a source column becomes (its own name unless mapped)."""
        return self.mapping.get(column, column)

    def used(self, column: str) -> bool:
        """Whether the detected shape reads this column (after mapping)."""
        if self.shape is None:
            return False
        if column not in self.mapping and column in self.mapping.values():
            return False  # a column mapped onto this name wins over it (as in the import)
        return column in self.used_columns

    @property
    def used_columns(self) -> set[str]:
        """The source columns the layout reads (the rest are ignored)."""
        if self.shape is None:
            return set()
        ignored, shape = set(self.ignored_fields), LAYOUTS[self.shape]
        picked = set()   # a pick's label column and the two reply columns it chooses between
        for label, target in self.mapping.items():
            options = parse_pick(target)
            if options:
                picked |= {label, *(c for _, c in options)}
        return {c for c in self.columns
                if c in picked or (self.target(c) not in ignored and self.target(c) in
                                   layout_fields_used(shape, {self.target(c): None})
                                   and not (c not in self.mapping and c in self.mapping.values()))}


class _PreviewChecker(_Importer):
    """The importer's row checks, without a database: what it would store is kept in ``stored``."""

    stored: list

    def store_ranking(self, row: KwiseRow, line: int) -> tuple[list, list]:
        names = [f"#{i + 1}" for i in range(len(row.responses))]
        for j in row.judgements():
            order = " > ".join(" = ".join(names[i] for i in g) for g in j.ordering)
            who = j.annotator or f"import:{self.path.name}"
            self.stored.append(StoredPreview(line, {"prompt": row.prompt}, tuple(row.tags or ()),
                                             f"ranking {order} of {len(names)} responses by {who}"
                                             + (" (all bad)" if j.all_bad else "")))
        return [None] * len(row.responses), [None] * len(row.judgements())

    def store(self, encoded: list[tuple]) -> None:
        """Nothing is written: a whole-file layout's finish() hands its records here."""

    def encode(self, content: dict, line: int, split, tags=None, ranking_id=None, candidate_id=None) -> tuple:
        if len(self.stored) < 200:
            self.stored.append(StoredPreview(line, {k: v for k, v in content.items() if v is not None},
                                             tuple(tags or ())))
        return super().encode(content, line, split, tags, ranking_id, candidate_id)


def preview_file(path: Path | str, *, mapping: Optional[Mapping[str, str] | list[str]] = None,
                 kind: Optional[str] = None, fmt: Optional[str] = None,
                 limit: int = DEFAULT_PREVIEW_ROWS, layout: Optional[str] = None) -> FilePreview:
    """Read and check the first ``limit`` rows of ``path``.

    ``mapping``, ``kind`` and ``layout`` are what
    :func:`~workbench.data.importer.import_file` takes. ``stored`` says what
    the previewed rows would store: the records as saved (prompt with its
    history, chosen, rejected ...) and the rankings. Raises :class:`~workbench.errors.DataError` when the file cannot be
    read at all (missing, unknown format, not a JSON array, no CSV header);
    problems after the first rows are read are returned in ``error`` and
    ``problems`` instead, with the rows read so far.
    """
    path = Path(path)
    fmt = fmt or readers.detect_format(path)
    if fmt not in readers.FORMATS:
        raise WorkbenchError(f"format {fmt!r}: expected one of {', '.join(readers.FORMATS)}")
    if kind is not None and kind not in KINDS:
        raise WorkbenchError(f"kind {kind!r}: expected one of {', '.join(KINDS)}")
    mapping = parse_mapping(mapping)
    check_layout(layout)
    file, unit = str(path), readers.line_unit(fmt)
    if fmt in ("jsonl", "json", "csv") and readers.file_size(path) == 0:
        raise DataError("file is empty (no records)", file=file)

    rows: list[Any] = []
    lines: list[int] = []
    splits: list[Optional[str]] = []
    more = False
    read_error: Optional[Problem] = None
    # One row per batch: a file that breaks part-way (a JSON array cut short) still shows the
    # rows before the break, and nothing past the preview is read or converted.
    batches = readers.read_rows(path, fmt, batch_rows=1)
    try:
        for batch in batches:
            for row, line in zip(batch.rows, batch.lines):
                if len(rows) == limit:
                    more = True
                    break
                rows.append(row)
                lines.append(line)
                splits.append(batch.split)
            if more:
                break
    except DataError as exc:
        # The file stops being readable part-way (a broken JSON array, a malformed CSV
        # quote): an import would stop there too.
        if not rows:
            raise
        read_error = Problem.from_error(exc, file, unit)
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()

    columns: list[str] = []
    for row in rows:
        if isinstance(row, dict):
            columns += [k for k in row if k not in columns]
    preview = FilePreview(path=file, format=fmt, unit=unit, columns=columns,
                          rows=[r if isinstance(r, dict) else None for r in rows], lines=lines,
                          splits=splits, mapping=mapping, more=more)
    _check(preview, rows, kind, layout)
    if read_error is not None and preview.error is None:
        preview.error = read_error
    return preview


def _check(preview: FilePreview, rows: list, kind: Optional[str], layout: Optional[str] = None) -> None:
    """Run the importer's detection and per-row checks over the previewed rows."""
    checker = _PreviewChecker(conn=None, path=Path(preview.path), fmt=preview.format, name="preview",
                              kind=kind, mapping=preview.mapping, skip_invalid=True, description="",
                              source_id=0, layout=layout)
    checker.stored = []
    for row, line, split in zip(rows, preview.lines, preview.splits):
        try:
            checker.convert_rows([row], [line], split, fast=False)
        except DataError as exc:
            # Detection failed on the first readable row (unknown shape, a mapped column
            # that is not there, a kind that does not fit): no row can be checked.
            preview.error = Problem.from_error(exc, preview.path, preview.unit)
            break
    if preview.error is None and checker.shape is not None and checker.shape.finish is not None:
        # A whole-file layout (message trees) builds its records from all the rows read.
        try:
            checker.finish()
        except DataError as exc:
            preview.error = Problem.from_error(exc, preview.path, preview.unit)
    preview.problems = [Problem(file=preview.path, line=s[preview.unit], field=s["field"], message=s["message"],
                                unit=preview.unit) for s in checker.skipped_rows]
    if checker.shape is not None:
        preview.shape = checker.shape.name
        preview.kind = checker.kind
        preview.style = checker.ctx.style
        preview.ignored_fields = list(checker.ignored)
        preview.layout_reason = checker.reason
    preview.stored = checker.stored


def mapping_targets() -> list[str]:
    """The canonical fields a column may be mapped to, sorted (for a mapping picker)."""
    return sorted(KNOWN_FIELDS)
