"""Export a dataset (or a frozen snapshot) in TRL-ready formats.

The rows are exactly what TRL's trainers take: ``{prompt, completion}`` or
``{messages}`` for ``SFTTrainer``; ``{prompt, chosen, rejected}`` (plus
``score_chosen``/``score_rejected`` when present) for ``RewardTrainer`` and
``DPOTrainer``; ``{prompt, completion, label}`` for unpaired methods (KTO).

Output is deterministic: the same snapshot always gives the same bytes
(the HF folder's fingerprint is the content hash, not a random id). Files
are written to a temporary name and renamed, so a crash never leaves a
half-written export under the final name.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from ..errors import WorkbenchError
from ..progress import CancelToken, ProgressFn, check, no_progress
from ..store import datasets as ds_repo
from ..store.records import CONTENT_FIELDS, TEXT_FIELDS, DatasetInfo, Record, SnapshotInfo
from ..store.workspace import Workspace
from ..targets import DATASET_EXPORT, check_target, write_manifest
from . import tool_exports as tools

#: TRL-ready formats, then the layouts of other tools (:mod:`workbench.data.tool_exports`).
TRL_FORMATS = ("jsonl", "json", "csv", "parquet", "hf")
EXPORT_FORMATS = TRL_FORMATS + tuple(tools.TOOL_FORMATS)
#: Formats written as a folder (marked with :data:`workbench.targets.MANIFEST`), not one file.
FOLDER_FORMATS = ("hf",) + tuple(name for name, f in tools.TOOL_FORMATS.items() if f.folder)
_BATCH = 5000


@dataclass
class ExportReport:
    dataset: str
    format: str
    path: str
    rows: int
    sha256: str
    snapshot: Optional[str] = None
    split: Optional[str] = None
    usage: Optional[str] = None  # how to point the tool at a tool-format export

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _columns(conn, info: DatasetInfo, snapshot: Optional[SnapshotInfo], split: Optional[str]) -> list[str]:
    """The content columns any exported record uses, in TRL order (plus ``tags``)."""
    cols = CONTENT_FIELDS + ("tags",)
    probes = ", ".join(f"max(r.{c} IS NOT NULL)" for c in cols)
    if snapshot is not None:
        sql = (f"SELECT {probes} FROM records r JOIN snapshot_records sr ON sr.record_id = r.id "
               f"WHERE sr.snapshot_id = ?" + (" AND sr.split = ?" if split else ""))
        args = [snapshot.id] + ([split] if split else [])
    else:
        sql = (f"SELECT {probes} FROM records r WHERE r.dataset_id = ? AND r.deleted = 0"
               + (" AND r.split = ?" if split else ""))
        args = [info.id] + ([split] if split else [])
    flags = [bool(v) for v in conn.execute(sql, args).fetchone()]
    return [c for c, used in zip(cols, flags) if used]


def _row(rec: Record, columns: list[str]) -> dict[str, Any]:
    out = {}
    for c in columns:
        v = getattr(rec, c)
        out[c] = list(v) if c == "tags" and v is not None else v
    return out


def _records(conn, info, snapshot, split) -> Iterator[Record]:
    if snapshot is not None:
        return ds_repo.iter_snapshot(conn, info, snapshot, split=split)
    return ds_repo.iter_records(conn, info, split=split)


# -- text formats --------------------------------------------------------------------------

def _write_jsonl(f, rows: Iterator[dict]) -> int:
    n = 0
    for row in rows:
        f.write(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
        n += 1
    return n


def _write_json(f, rows: Iterator[dict]) -> int:
    n = 0
    f.write(b"[")
    for row in rows:
        f.write((b",\n" if n else b"\n") + json.dumps(row, ensure_ascii=False).encode("utf-8"))
        n += 1
    f.write(b"\n]\n" if n else b"]\n")
    return n


#: A cell starting with one of these is run as a formula by Excel, LibreOffice and Google Sheets
#: (CSV injection, OWASP); a leading apostrophe makes the spreadsheet show it as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any, neutralise: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)  # starts with [ or {: never a formula
    if isinstance(value, float):
        return repr(value)  # a number, negative or not, is data to a spreadsheet
    text = str(value)
    return "'" + text if neutralise and text.startswith(FORMULA_STARTS) else text


def _write_csv(f, rows: Iterator[dict], columns: list[str], neutralise: bool) -> int:
    text = io.TextIOWrapper(f, encoding="utf-8", newline="")
    writer = csv.writer(text, lineterminator="\n")
    # The minimal quoting quotes only the line terminator's characters: a lone CR in a cell
    # would end the row for every reader, so such a row is written fully quoted.
    quoted = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(columns)
    n = 0
    for row in rows:
        cells = [_csv_cell(row[c], neutralise) for c in columns]
        (quoted if any("\r" in c for c in cells) else writer).writerow(cells)
        n += 1
    text.flush()
    text.detach()
    return n


# -- Arrow based formats ---------------------------------------------------------------------

def _message_keys(records: Iterator[Record], columns: list[str]) -> list[str]:
    keys = {"role", "content"}
    for rec in records:
        for c in columns:
            v = getattr(rec, c)
            if isinstance(v, list) and c != "tags":
                for m in v:
                    keys.update(m)
    return ["role", "content"] + sorted(keys - {"role", "content"})


def _arrow_schema(info: DatasetInfo, columns: list[str], msg_keys: list[str]):
    import pyarrow as pa

    message = pa.struct([(k, pa.string()) for k in msg_keys])
    fields = []
    for c in columns:
        if c == "messages" or (c in TEXT_FIELDS and info.style == "conversational"):
            fields.append(pa.field(c, pa.list_(message)))
        elif c in ("score_chosen", "score_rejected"):
            fields.append(pa.field(c, pa.float64()))
        elif c == "label":
            fields.append(pa.field(c, pa.bool_()))
        elif c == "tags":
            fields.append(pa.field(c, pa.list_(pa.string())))
        else:
            fields.append(pa.field(c, pa.string()))
    return pa.schema(fields)


def _batches(rows: Iterator[dict], schema, cancel) -> Iterator[Any]:
    import pyarrow as pa

    buf: list[dict] = []
    for row in rows:
        buf.append(row)
        if len(buf) >= _BATCH:
            check(cancel)
            yield pa.RecordBatch.from_pylist(buf, schema=schema)
            buf = []
    if buf:
        yield pa.RecordBatch.from_pylist(buf, schema=schema)


def _write_parquet(path: Path, rows: Iterator[dict], schema, cancel) -> int:
    import pyarrow.parquet as pq

    n = 0
    with pq.ParquetWriter(str(path), schema, compression="zstd") as writer:
        for rb in _batches(rows, schema, cancel):
            writer.write_batch(rb)
            n += rb.num_rows
    if n == 0:  # ParquetWriter writes a valid empty file only with the schema
        pq.write_table(schema.empty_table(), str(path))
    return n


def _write_hf_split(folder: Path, rows: Iterator[dict], schema, fingerprint: str, split: Optional[str],
                    cancel) -> int:
    """One ``Dataset.save_to_disk`` folder: an Arrow stream file plus its JSON descriptors."""
    import pyarrow as pa

    folder.mkdir(parents=True, exist_ok=True)
    data_name = "data-00000-of-00001.arrow"
    n = 0
    with pa.OSFile(str(folder / data_name), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for rb in _batches(rows, schema, cancel):
            writer.write_batch(rb)
            n += rb.num_rows
    (folder / "dataset_info.json").write_text(json.dumps({
        "citation": "", "description": "Exported by RLHF Workbench", "homepage": "", "license": "",
    }, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (folder / "state.json").write_text(json.dumps({
        "_data_files": [{"filename": data_name}],
        "_fingerprint": fingerprint,
        "_format_columns": None,
        "_format_kwargs": {},
        "_format_type": None,
        "_output_all_columns": False,
        "_split": split,
    }, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return n


def tree_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files (relative names and contents, sorted)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        if path.is_dir():
            h.update(str(p.relative_to(path)).encode("utf-8") + b"\0")
        with open(p, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def export_dataset(ws: Workspace, name: str, fmt: str, out: Path | str, *, snapshot: Optional[str] = None,
                   split: Optional[str] = None, overwrite: bool = False, csv_formulas: str = "neutralise",
                   progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None) -> ExportReport:
    """Write dataset ``name`` (or its snapshot with hash prefix ``snapshot``) to ``out``.

    ``split`` limits the export to ``train`` or ``validation``. An ``hf``
    export of a dataset with splits and no ``split`` filter writes a
    ``DatasetDict`` folder (``train/`` and ``validation/``).

    An existing ``out`` is replaced only with ``overwrite`` and only under
    the rule of :func:`workbench.targets.check_target` (a folder only when
    it is a previous export); otherwise :class:`~workbench.targets.TargetError`
    is raised before anything is written.

    ``csv_formulas``: ``neutralise`` (default) prefixes a CSV text cell that
    starts with ``= + - @``, TAB or CR with ``'`` so a spreadsheet shows it
    instead of running it; ``keep`` writes every cell as stored.
    """
    if fmt not in EXPORT_FORMATS:
        raise WorkbenchError(f"--format {fmt}: expected one of {', '.join(EXPORT_FORMATS)}")
    if split not in (None, "train", "validation"):
        raise WorkbenchError(f"--split {split}: expected train or validation")
    if csv_formulas not in ("neutralise", "keep"):
        raise WorkbenchError(f"--csv-formulas {csv_formulas}: expected neutralise or keep")
    destination = check_target(out, folder=fmt in FOLDER_FORMATS, workspace=ws.root, overwrite=overwrite,
                               kind=DATASET_EXPORT)
    out = destination.path
    conn = ws.connect()  # a private read connection: the export sees one consistent state
    try:
        conn.execute("BEGIN")  # a read transaction pins the snapshot of the database
        info = ds_repo.get_dataset(conn, name)
        snap = ds_repo.find_snapshot(conn, name, snapshot) if snapshot else None
        columns = _columns(conn, info, snap, split)
        total = snap.rows if snap else (info.validation if split == "validation" else
                                        info.train if split == "train" else info.rows)
        done = [0]
        if fmt in tools.TOOL_FORMATS:
            tools.check_kind(fmt, info.kind, name)

        def records(split_filter=split) -> Iterator[Record]:
            for rec in _records(conn, info, snap, split_filter):
                done[0] += 1
                if done[0] % _BATCH == 0:
                    check(cancel)
                    progress(min(1.0, done[0] / max(1, total)), f"{done[0]:,} records exported")
                yield rec

        def rows(split_filter=split) -> Iterator[dict]:
            return (_row(rec, columns) for rec in records(split_filter))

        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        except OSError as exc:
            raise _write_error(out, exc) from None
        usage = None
        try:
            target = tmp / out.name
            if fmt in tools.TOOL_FORMATS:
                def tool_rows(part=split):
                    return ((f"record #{r.id}", _row(r, columns)) for r in records(part))
                apart = fmt in FOLDER_FORMATS and split is None and _has_splits(conn, info, snap)
                parts = ("train", "validation") if apart else (split,)
                n, usage = _write_tool(fmt, target, info, name, snap, out, tool_rows, parts)
            elif fmt == "csv":
                n = _synced(target, lambda f: _write_csv(f, rows(), columns, csv_formulas == "neutralise"))
            elif fmt in ("jsonl", "json"):
                n = _synced(target, lambda f: (_write_jsonl if fmt == "jsonl" else _write_json)(f, rows()))
            else:
                keys = (_message_keys(_records(conn, info, snap, split), columns)
                        if info.style == "conversational" or "messages" in columns else ["role", "content"])
                schema = _arrow_schema(info, columns, keys)
                if fmt == "parquet":
                    n = _write_parquet(target, rows(), schema, cancel)
                else:
                    fingerprint = (snap.hash if snap else ds_repo.content_hash(
                        _records(conn, info, None, split))[0])[:16]
                    if split is None and _has_splits(conn, info, snap):
                        target.mkdir()
                        n = 0
                        for part in ("train", "validation"):
                            n += _write_hf_split(target / part, rows(part), schema, f"{fingerprint}-{part}",
                                                 part, cancel)
                        (target / "dataset_dict.json").write_text(
                            json.dumps({"splits": ["train", "validation"]}) + "\n", encoding="utf-8")
                    else:
                        n = _write_hf_split(target, rows(), schema, fingerprint, split or "train", cancel)
            if fmt in FOLDER_FORMATS:
                write_manifest(target, kind=DATASET_EXPORT, format=fmt, dataset=name,
                               snapshot=snap.hash if snap else None, split=split)
            destination.replace_with(target)
        except OSError as exc:
            raise _write_error(out, exc) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        conn.close()
    progress(1.0, f"{n:,} records exported")
    return ExportReport(dataset=name, format=fmt, path=str(out), rows=n, sha256=tree_sha256(out),
                        snapshot=snap.hash if snap else None, split=split, usage=usage)


def _write_error(out: Path, exc: OSError) -> WorkbenchError:
    """An OS error while writing, as the one line a user acts on (nothing was written at ``out``)."""
    name = Path(str(exc.filename)).name if exc.filename else ""
    where = f" ({exc.filename})" if name and str(exc.filename) != str(out) and not name.startswith(f".{out.name}.") \
        else ""  # our temporary sibling's name would only confuse
    return WorkbenchError(f"{out}: cannot write the export: {exc.strerror or exc}{where}; nothing was written")


def _has_splits(conn, info: DatasetInfo, snap: Optional[SnapshotInfo]) -> bool:
    """Does every exported record have a split? Only then are train and validation written
    apart (an HF ``DatasetDict``, two LLaMA-Factory entries): rows without one would
    otherwise be left out of both parts."""
    if snap is None:
        return info.rows > 0 and info.train + info.validation == info.rows
    return not conn.execute("SELECT 1 FROM snapshot_records WHERE snapshot_id = ? AND split IS NULL LIMIT 1",
                            (snap.id,)).fetchone()


def _synced(path: Path, write) -> int:
    """Open ``path``, let ``write(f)`` fill it, fsync; returns what ``write`` returned."""
    with open(path, "wb") as f:
        n = write(f)
        f.flush()
        os.fsync(f.fileno())
    return n


def _write_tool(fmt: str, target: Path, info: DatasetInfo, name: str, snap: Optional[SnapshotInfo], out: Path,
                rows: Callable[[Optional[str]], Iterator[tuple[str, dict]]],
                parts: tuple[Optional[str], ...]) -> tuple[int, str]:
    """A tool-format export at ``target``; returns the row count and the usage line.

    A folder format writes one data file per part with its ``dataset_info.json``
    entry (``parts`` ``(train, validation)``: ``<name>`` and ``<name>_validation``,
    LLaMA-Factory's ``dataset`` and ``eval_dataset``); a file format gets one part.
    """
    tool = tools.TOOL_FORMATS[fmt]
    if not tool.folder:
        converted = tools.convert(fmt, info.kind, rows(parts[0]))
        n = _synced(target, lambda f: (_write_json if tool.suffix == ".json" else _write_jsonl)(f, converted))
        return n, tools.usage(fmt, info.kind, info.style == "conversational", out, [])
    target.mkdir()
    base = slug(name) + (f"-{snap.hash[:8]}" if snap else "")
    entries, n = {}, 0
    for part in parts:
        entry = base + ("_validation" if part == "validation" and len(parts) > 1 else "")
        data_name = entry + tool.suffix
        converted = tools.convert(fmt, info.kind, rows(part))
        n += _synced(target / data_name, lambda f: _write_jsonl(f, converted))
        entries.update(tools.dataset_info(fmt, info.kind, entry, data_name))
    (target / "dataset_info.json").write_text(json.dumps(entries, indent=2, ensure_ascii=False) + "\n",
                                              encoding="utf-8")
    return n, tools.usage(fmt, info.kind, info.style == "conversational", out, list(entries))


def slug(name: str) -> str:
    """``name`` as a file-name and identifier-safe word (default export names, LLaMA-Factory's entry)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "dataset"
