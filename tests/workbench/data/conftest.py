"""Shared helpers for the dataset import tests.

The ``kit`` fixture writes rows in every input format the importer reads and
knows where each row starts (the line or row a record's lineage must point
at), and snapshots the workspace tables so a failed import can be checked
to have left nothing behind. The writers take a folder instead of using
``tmp_path`` so the hypothesis tests can call them once per example.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Optional

import pytest

from workbench.store import datasets as R
from workbench.store.workspace import Workspace

FORMATS = ("jsonl", "json", "csv", "parquet", "hf")
SUFFIX = {"jsonl": ".jsonl", "json": ".json", "csv": ".csv", "parquet": ".parquet", "hf": ""}
#: Tables an import writes to; a failed import must leave every count as it was.
TABLES = ("datasets", "records", "sources", "prompts", "candidates", "rankings")


def _cell(value) -> str:
    """A CSV cell: strings as they are, anything else (messages, lists, numbers) as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def write_jsonl(path: Path, rows: list[dict]) -> list[int]:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return [i + 1 for i in range(len(rows))]


def write_json(path: Path, rows: list[dict]) -> list[int]:
    # One item per line after the opening bracket: item i starts on line i + 2.
    body = ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows)
    path.write_text("[\n" + body + "\n]\n", encoding="utf-8")
    return [i + 2 for i in range(len(rows))]


def write_csv(path: Path, rows: list[dict]) -> list[int]:
    header: list[str] = []
    for r in rows:
        header += [k for k in r if k not in header]
    chunks: list[str] = []
    w = csv.writer(_Sink(chunks))
    w.writerow(header)
    lines, line = [], 1 + chunks[-1].count("\n")
    for r in rows:
        # Quoted cells may span lines: a row starts after every newline written before it.
        lines.append(line)
        w.writerow([_cell(r.get(k)) for k in header])
        line += chunks[-1].count("\n")
    path.write_bytes("".join(chunks).encode("utf-8"))
    return lines


class _Sink:
    """A file-like object for csv.writer that keeps each written row as one chunk."""

    def __init__(self, chunks: list[str]):
        self.write = chunks.append


def write_parquet(path: Path, rows: list[dict]) -> list[int]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.Table.from_pylist(rows), path)
    return [i + 1 for i in range(len(rows))]


def write_hf(path: Path, rows: list[dict] | dict[str, list[dict]], **save_kw) -> list[int]:
    """An HF ``save_to_disk`` folder: a Dataset from a list, a DatasetDict from {split: rows}."""
    import datasets
    datasets.disable_progress_bars()
    if isinstance(rows, dict):
        datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in rows.items()}).save_to_disk(
            str(path), **save_kw)
        return []
    datasets.Dataset.from_list(rows).save_to_disk(str(path), **save_kw)
    return [i + 1 for i in range(len(rows))]


WRITERS = {"jsonl": write_jsonl, "json": write_json, "csv": write_csv, "parquet": write_parquet,
           "hf": write_hf}


class Kit:
    """Write inputs, run imports, read records back, compare workspace states."""

    formats = FORMATS

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self._ws: Optional[Workspace] = None

    @property
    def ws(self) -> Workspace:
        if self._ws is None:
            self._ws = Workspace.init(self.tmp_path / "ws")
        return self._ws

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()

    @staticmethod
    def write(folder: Path, fmt: str, rows, stem: str = "data", **kw) -> tuple[Path, list[int]]:
        """Write ``rows`` as ``fmt`` under ``folder``; return the path and each row's line/row number."""
        path = Path(folder) / (stem + SUFFIX[fmt])
        return path, WRITERS[fmt](path, rows, **kw)

    def path(self, name: str, data: bytes | str) -> Path:
        """A file of raw content (for inputs no writer would produce)."""
        p = self.tmp_path / name
        p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return p

    @staticmethod
    def records(ws: Workspace, name: str) -> list:
        return list(R.iter_records(ws.conn, R.get_dataset(ws.conn, name)))

    @staticmethod
    def contents(ws: Workspace, name: str) -> list[dict]:
        return [r.content() for r in Kit.records(ws, name)]

    @staticmethod
    def state(ws: Workspace) -> dict:
        """Row counts of every table an import touches, plus the dataset names."""
        c = ws.conn
        out = {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        out["names"] = [n for (n,) in c.execute("SELECT name FROM datasets ORDER BY name")]
        return out

    @staticmethod
    def assert_unchanged(ws: Workspace, before: dict) -> None:
        assert Kit.state(ws) == before
        assert ws.integrity_check() == "ok"


@pytest.fixture
def kit(tmp_path):
    k = Kit(tmp_path)
    yield k
    k.close()
