"""Streaming readers for JSONL, JSON arrays, CSV/TSV, Parquet and HF ``save_to_disk`` folders.

Every reader yields :class:`RowBatch` objects of bounded size, so an import
of a million rows never holds the whole file. Rows carry the physical line
(text formats) or row number (columnar formats) they came from. Problems
that make a single row unreadable (bad JSON, bad UTF-8, wrong column count)
are yielded as :class:`RowProblem` entries so the importer can skip them or
stop, as the user asked.

Columnar formats (and JSONL, through pyarrow's JSON reader) also offer
:func:`arrow_batches`, the fast path the importer tries first.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

from ..errors import DataError
from .messages import type_name

BATCH_ROWS = 2000
FORMATS = ("jsonl", "json", "csv", "parquet", "hf")
#: The largest single JSON value or CSV field we accept (a 10 MB line is fine).
MAX_VALUE_BYTES = 256 * 1024 * 1024

_SPLIT_NAMES = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
                "val": "validation", "dev": "validation", "eval": "validation", "test": "validation"}


@dataclass
class RowProblem:
    """A row that could not be read at all (the importer decides skip or stop)."""
    line: int
    message: str
    field: Optional[str] = None


@dataclass
class RowBatch:
    rows: list = field(default_factory=list)        # dicts (or RowProblem entries)
    lines: list = field(default_factory=list)       # line or row number per entry
    split: Optional[str] = None                     # from an HF DatasetDict split, if any
    done_fraction: float = 0.0                      # progress through the whole source


def check_regular_file(path: Path) -> None:
    """Refuse anything but a regular file: reading a FIFO or a device would block or never end."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError("no such file", file=str(path)) from None
    except OSError as exc:
        raise DataError(f"cannot read ({exc.strerror})", file=str(path)) from None
    if not stat.S_ISREG(mode):
        raise DataError("not a regular file (a FIFO, device or socket cannot be imported)", file=str(path))


def detect_format(path: Path) -> str:
    """The file format from the extension, sniffing the content when that is ambiguous."""
    path = Path(path)
    if path.is_dir():
        if (path / "state.json").exists() or (path / "dataset_dict.json").exists():
            return "hf"
        raise DataError("folder is not a Hugging Face save_to_disk dataset "
                        "(no state.json or dataset_dict.json)", file=str(path))
    check_regular_file(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".arrow":
        return "hf"
    with open(path, "rb") as f:
        head = f.read(4096).lstrip(codecs.BOM_UTF8).lstrip()
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"["):
        return "json"
    if head.startswith(b"{"):
        return "jsonl"
    if suffix == ".json":
        return "json"
    raise DataError("cannot tell the format; use a .jsonl, .json, .csv, .tsv or .parquet file "
                    "or a Hugging Face dataset folder", file=str(path))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size or 1
    except OSError:
        return 1


def _decode_line(raw: bytes, lineno: int, file: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                        "save the file as UTF-8", file=file, line=lineno) from None


# -- problems inside valid JSON ----------------------------------------------------------

# A JSON "\\uD800"-style escape of a UTF-16 surrogate: only then can a decoded string hold a lone one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_LONG_INT = re.compile(r'"((?:[^"\\]|\\.){0,200})"\s*:\s*-?[0-9]{4000,}')


def lone_surrogate_field(value: dict) -> Optional[str]:
    """The top-level field whose value holds a lone UTF-16 surrogate (not storable text), or None."""
    for key, v in value.items():
        stack = [key, v]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return key
            elif isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
    return None


def _value_problem(text: str, exc: ValueError) -> tuple[str, Optional[str]]:
    """A one-line message (and the field, when it can be told) for a ValueError from json."""
    if "integer string conversion" in str(exc):
        m = _LONG_INT.search(text)
        return "integer too long (over 4300 digits)", (m.group(1) if m else None)
    return f"invalid JSON: {str(exc).splitlines()[0][:120]}", None


SURROGATE_MESSAGE = "holds a lone UTF-16 surrogate (such as \\ud800): not valid Unicode text"


# -- JSONL -------------------------------------------------------------------------------

def _lines(f, file: str) -> Iterator[tuple[int, bytes, int]]:
    """``(line number, bytes, bytes consumed)`` per line; a line longer than the value limit comes
    back as ``b""`` with its length, read past in chunks so it is never held whole."""
    limit = MAX_VALUE_BYTES + 1
    lineno = 0
    while True:
        raw = f.readline(limit)
        if not raw:
            return
        lineno += 1
        if len(raw) == limit and not raw.endswith(b"\n"):
            n = len(raw)
            while True:
                chunk = f.readline(1 << 20)
                n += len(chunk)
                if not chunk or chunk.endswith(b"\n"):
                    break
            yield lineno, None, n
            continue
        yield lineno, raw, len(raw)


def read_jsonl(path: Path, batch_rows: int = BATCH_ROWS) -> Iterator[RowBatch]:
    file, total = str(path), _size(path)
    batch = RowBatch()
    done = 0
    with open(path, "rb") as f:
        for lineno, raw, size in _lines(f, file):
            done += size
            if raw is None:
                batch.rows.append(RowProblem(lineno, f"line of {size:,} bytes is longer than the largest value "
                                                     f"accepted ({MAX_VALUE_BYTES:,} bytes)"))
                batch.lines.append(lineno)
                continue
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            if not raw.strip():
                continue  # blank lines are not records
            try:
                text = _decode_line(raw, lineno, file)
                value = json.loads(text)
                if not isinstance(value, dict):
                    raise DataError(f"expected a JSON object per line, got {type_name(value)}",
                                    file=file, line=lineno)
                bad = lone_surrogate_field(value) if _SURROGATE_ESCAPE.search(text) else None
                if bad is not None:
                    batch.rows.append(RowProblem(lineno, SURROGATE_MESSAGE, bad))
                else:
                    batch.rows.append(value)
            except json.JSONDecodeError as exc:
                batch.rows.append(RowProblem(lineno, f"invalid JSON: {exc.msg} (column {exc.colno})"
                                             + (" - is the line truncated?" if exc.pos >= len(text.rstrip()) - 1
                                                else "")))
            except DataError as exc:
                batch.rows.append(RowProblem(lineno, exc.message))
            except RecursionError:
                # json's C decoder recurses per nesting level; a line of 100k '[' is bad data, not a crash.
                batch.rows.append(RowProblem(lineno, "invalid JSON: nested too deeply"))
            except ValueError as exc:
                # Valid JSON Python will not convert: an integer of more than 4300 digits.
                batch.rows.append(RowProblem(lineno, *_value_problem(text, exc)))
            batch.lines.append(lineno)
            if len(batch.rows) >= batch_rows:
                batch.done_fraction = done / total
                yield batch
                batch = RowBatch()
    batch.done_fraction = 1.0
    yield batch


# -- JSON array --------------------------------------------------------------------------

class _JsonArrayScanner:
    """Incremental parser for one top-level JSON array, tracking line numbers."""

    CHUNK = 1 << 20

    def __init__(self, path: Path):
        self.path, self.file = path, str(path)
        self.f = open(path, "rb")
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.buf, self.pos, self.base_line, self.eof = "", 0, 1, False
        self.mark_pos, self.mark_line = 0, 1     # a known (buffer index, line) to count on from
        self.bytes_read = 0
        self.dec = json.JSONDecoder()

    def close(self) -> None:
        self.f.close()

    def line_at(self, pos: int) -> int:
        # Count on from the last position asked: items are asked in order, and counting from the
        # start of a buffer of up to 2 MB for every item made large arrays quadratic.
        if pos < self.mark_pos:
            self.mark_pos, self.mark_line = 0, self.base_line
        self.mark_line += self.buf.count("\n", self.mark_pos, pos)
        self.mark_pos = pos
        return self.mark_line

    def more(self) -> bool:
        if self.eof:
            return False
        raw = self.f.read(self.CHUNK)
        self.bytes_read += len(raw)
        try:
            text = self.decoder.decode(raw, final=not raw)
        except UnicodeDecodeError as exc:
            # The bad byte sits exc.start bytes into this chunk (plus at most 3 pending bytes, which
            # hold no newline), not at the end of what is decoded so far.
            line = self.line_at(len(self.buf)) + exc.object[:exc.start].count(b"\n")
            raise DataError(f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x}); save the file as UTF-8",
                            file=self.file, line=line) from None
        if not raw:
            self.eof = True
        # Drop what is consumed so memory stays bounded by one value.
        if self.pos > self.CHUNK:
            self.base_line = self.line_at(self.pos)
            self.buf, self.pos = self.buf[self.pos:], 0
            self.mark_pos, self.mark_line = 0, self.base_line
        self.buf += text
        return bool(raw)

    def skip_ws(self) -> Optional[str]:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return None

    def items(self) -> Iterator[tuple[int, object]]:
        ch = self.skip_ws()
        if ch is None:
            raise DataError("file is empty (no records)", file=self.file)
        if ch != "[":
            raise DataError("expected a JSON array of objects ('[' at the start)", file=self.file,
                            line=self.line_at(self.pos))
        self.pos += 1
        first = True
        while True:
            ch = self.skip_ws()
            if ch is None:
                raise DataError("unexpected end of file: the JSON array is not closed with ']'",
                                file=self.file, line=self.line_at(self.pos))
            if ch == "]":
                self.pos += 1
                if self.skip_ws() is not None:
                    raise DataError("unexpected content after the closing ']'", file=self.file,
                                    line=self.line_at(self.pos))
                return
            if not first:
                if ch != ",":
                    raise DataError(f"expected ',' or ']' between array items, got {ch!r}",
                                    file=self.file, line=self.line_at(self.pos))
                self.pos += 1
                self.skip_ws()
            first = False
            start_line = self.line_at(self.pos)
            while True:
                try:
                    value, end = self.dec.raw_decode(self.buf, self.pos)
                    break
                except json.JSONDecodeError as exc:
                    if len(self.buf) - self.pos > MAX_VALUE_BYTES or not self.more():
                        raise DataError(f"invalid JSON: {exc.msg}", file=self.file,
                                        line=self.line_at(exc.pos)) from None
                except RecursionError:
                    raise DataError("invalid JSON: nested too deeply", file=self.file,
                                    line=start_line) from None
                except ValueError as exc:
                    message, field = _value_problem(self.buf[self.pos:self.pos + MAX_VALUE_BYTES], exc)
                    raise DataError(message, file=self.file, line=start_line, field=field) from None
            if isinstance(value, dict) and _SURROGATE_ESCAPE.search(self.buf, self.pos, end):
                bad = lone_surrogate_field(value)
                if bad is not None:
                    value = RowProblem(start_line, SURROGATE_MESSAGE, bad)
            self.pos = end
            yield start_line, value


def read_json_array(path: Path, batch_rows: int = BATCH_ROWS) -> Iterator[RowBatch]:
    scanner = _JsonArrayScanner(path)
    total = _size(path)
    batch = RowBatch()
    try:
        for line, value in scanner.items():
            if isinstance(value, (dict, RowProblem)):
                batch.rows.append(value)
            else:
                batch.rows.append(RowProblem(line, f"expected a JSON object, got {type_name(value)}"))
            batch.lines.append(line)
            if len(batch.rows) >= batch_rows:
                batch.done_fraction = scanner.bytes_read / total
                yield batch
                batch = RowBatch()
    finally:
        scanner.close()
    batch.done_fraction = 1.0
    yield batch


# -- CSV / TSV ---------------------------------------------------------------------------

def read_csv(path: Path, batch_rows: int = BATCH_ROWS) -> Iterator[RowBatch]:
    file, total = str(path), _size(path)
    csv.field_size_limit(min(sys.maxsize, MAX_VALUE_BYTES))
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    state = {"line": 0, "bytes": 0}

    def lines():
        with open(path, "rb") as f:
            for raw in f:
                state["line"] += 1
                state["bytes"] += len(raw)
                if state["line"] == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8):]
                yield _decode_line(raw, state["line"], file)

    reader = csv.reader(lines(), delimiter=delimiter)
    try:
        header = next(reader)
        # Blank (or whitespace-only) lines before the header are not a header of one empty column:
        # a whitespace-only file is an empty file.
        while not header or (len(header) == 1 and not header[0].strip()):
            header = next(reader)
    except StopIteration:
        raise DataError("file is empty (no header row)", file=file) from None
    except csv.Error as exc:
        raise DataError(f"malformed CSV: {exc}", file=file, line=state["line"]) from None
    header = [h.strip() for h in header]
    if len(set(header)) != len(header) or any(not h for h in header):
        raise DataError(f"header has empty or repeated column names: {header}", file=file, line=1)
    batch = RowBatch()
    while True:
        start = state["line"] + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DataError(f"malformed CSV: {exc}", file=file, line=start) from None
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue
        if len(cells) != len(header):
            batch.rows.append(RowProblem(start, f"expected {len(header)} columns, got {len(cells)}"))
        else:
            batch.rows.append(dict(zip(header, cells)))
        batch.lines.append(start)
        if len(batch.rows) >= batch_rows:
            batch.done_fraction = state["bytes"] / total
            yield batch
            batch = RowBatch()
    batch.done_fraction = 1.0
    yield batch


# -- Parquet and Arrow (columnar) ----------------------------------------------------------

def hf_parts(path: Path) -> list[tuple[Optional[str], Path]]:
    """The Arrow files of an HF ``save_to_disk`` folder, with the split each belongs to."""
    path = Path(path)
    if path.is_file() and path.suffix == ".arrow":
        return [(None, path)]
    if (path / "dataset_dict.json").exists():
        check_regular_file(path / "dataset_dict.json")
        try:
            splits = json.loads((path / "dataset_dict.json").read_text("utf-8"))["splits"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise DataError(f"unreadable dataset_dict.json ({exc})", file=str(path)) from None
        if not isinstance(splits, list) or not all(isinstance(n, str) for n in splits):
            raise DataError(f"'splits' must be a list of split names, got {type_name(splits)}",
                            file=str(path / "dataset_dict.json"), field="splits")
        parts = []
        for name in splits:
            split = _SPLIT_NAMES.get(name.lower())
            if split is None:
                # e.g. UltraFeedback's train_prefs / train_sft: different data, not one dataset's splits.
                raise DataError(f"split {name!r} is not train/validation/test; import one split's folder "
                                f"on its own (e.g. {path / name})", file=str(path / name))
            parts += [(split, p) for _, p in hf_parts(path / name)]
        return parts
    state_file = path / "state.json"
    check_regular_file(state_file)
    try:
        state = json.loads(state_file.read_text("utf-8"))
        files = [path / d["filename"] for d in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"unreadable HF dataset folder: state.json ({exc})", file=str(path)) from None
    root = path.resolve()
    for f in files:
        # state.json is untrusted: its file names stay inside the folder and name plain files
        # (a FIFO would block the import forever, a device never end).
        if root not in f.resolve().parents:
            raise DataError(f"state.json names a file outside the dataset folder: {f.name}",
                            file=str(state_file), field="_data_files")
        check_regular_file(f)
    return [(None, f) for f in files]


def arrow_batches(path: Path, fmt: str):
    """Yield ``(pyarrow.RecordBatch, first_row_number, split, done_fraction)`` for the fast path.

    For JSONL this uses pyarrow's streaming JSON reader; it may raise on
    inputs the precise reader handles (the importer then falls back).
    """
    import pyarrow as pa

    if fmt == "parquet":
        import pyarrow.parquet as pq
        try:
            pf = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"not a readable Parquet file ({exc})", file=str(path)) from None
        total = max(1, pf.metadata.num_rows)
        row = 1
        for rb in pf.iter_batches(batch_size=BATCH_ROWS * 4):
            yield rb, row, None, min(1.0, (row + rb.num_rows) / total)
            row += rb.num_rows
    elif fmt == "hf":
        parts = hf_parts(path)
        # A split saved in several shards is one table: its row numbers continue across the files.
        next_row: dict = {}
        for k, (split, part) in enumerate(parts):
            row = next_row.get(split, 1)
            try:
                with pa.memory_map(str(part)) as src:
                    try:
                        reader = pa.ipc.open_stream(src)
                    except pa.ArrowInvalid:
                        src.seek(0)
                        reader = pa.ipc.open_file(src)
                        batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
                    else:
                        batches = iter(reader)
                    for rb in batches:
                        yield rb, row, split, (k + 1) / len(parts)
                        row += rb.num_rows
            except (pa.ArrowException, OSError) as exc:
                raise DataError(f"not a readable Arrow file ({exc})", file=str(part)) from None
            next_row[split] = row
    elif fmt == "jsonl":
        import pyarrow.json as pj
        total = _size(path)
        # A line longer than a block fails in pyarrow ("straddling object"), and the importer then
        # reads precisely, where the per-value limit applies: so blocks never exceed that limit.
        reader = pj.open_json(str(path), read_options=pj.ReadOptions(block_size=min(4 << 20, MAX_VALUE_BYTES + 1)))
        row = 1
        rows_per_byte = None
        for rb in reader:
            if rows_per_byte is None:
                rows_per_byte = rb.num_rows / min(total, 4 << 20)
            yield rb, row, None, min(0.99, (row + rb.num_rows) * (1 / rows_per_byte if rows_per_byte else 1) / total)
            row += rb.num_rows
    else:
        raise ValueError(fmt)


def count_jsonl_lines(path: Path) -> int:
    """The number of the last non-blank line of a JSONL file (0 if none).

    Blank lines at the end (a common trailing newline or two) do not shift
    any record's line number, so they are not counted; blank lines in the
    middle are, which is how the importer notices that pyarrow's row numbers
    would not match the file's lines.
    """
    n, tail = 0, b""
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            n += chunk.count(b"\n")
            tail = (tail + chunk)[-(1 << 16):]
    body = tail.rstrip()
    if not body:
        return 0 if n == 0 or len(tail) < (1 << 16) else -1  # -1: undecidable, read precisely
    # Newlines after the last non-blank byte end that line or are blank lines.
    return n - tail[len(body):].count(b"\n") + 1


def columnar_rows(rb) -> Iterator[dict]:
    """A record batch as row dicts (the precise path over columnar data)."""
    return iter(rb.to_pylist())


def read_columnar(path: Path, fmt: str, batch_rows: Optional[int] = None) -> Iterator[RowBatch]:
    """Row batches over Parquet / Arrow input, numbered by row.

    ``batch_rows`` cuts the stored record batches smaller (a preview of the
    first rows need not convert a whole batch to Python objects).
    """
    for rb, first, split, frac in arrow_batches(path, fmt):
        step = batch_rows or max(1, rb.num_rows)
        for offset in range(0, max(1, rb.num_rows), step):  # an empty batch still reports progress
            rows = rb.slice(offset, step).to_pylist()
            start = first + offset
            yield RowBatch(rows=rows, lines=list(range(start, start + len(rows))), split=split,
                           done_fraction=frac)


def read_rows(path: Path, fmt: str, batch_rows: Optional[int] = None) -> Iterator[RowBatch]:
    """The precise row reader for ``fmt``.

    Batches hold at most ``batch_rows`` rows; by default :data:`BATCH_ROWS`
    for text formats and the stored record batches for columnar ones.
    """
    text_reader = {"jsonl": read_jsonl, "json": read_json_array, "csv": read_csv}.get(fmt)
    if text_reader is not None:
        return text_reader(path) if batch_rows is None else text_reader(path, batch_rows)
    if fmt in ("parquet", "hf"):
        return read_columnar(path, fmt, batch_rows)
    raise DataError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}", file=str(path))


def line_unit(fmt: str) -> str:
    return "row" if fmt in ("parquet", "hf") else "line"


def file_size(path: Path) -> int:
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return os.path.getsize(path)
