"""A workspace dataset, frozen, as the HF ``Dataset``s a TRL trainer takes.

A run always trains on a snapshot: the one its config names, or one frozen
from the dataset's current records when the run starts (freezing unchanged
records again returns the existing snapshot). The recipe writes the hash
back into the run's config, so a resumed run reads the very same records.

Rows are built in memory from the snapshot, in TRL's column names:
``messages`` or ``prompt``/``completion`` for SFT, ``prompt``/``chosen``/
``rejected`` for preference pairs. Records in the ``validation`` split form
the held-out set (when the config uses it); the others, with or without a
split, train.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from ..errors import WorkbenchError
from ..store import datasets as ds_repo
from ..store.records import Record
from ..store.workspace import Workspace
from .config import STAGE_KINDS, ConfigError, StageConfig

#: Columns handed to the trainers, by record shape.
SFT_MESSAGES = ("messages",)
SFT_PROMPT_COMPLETION = ("prompt", "completion")
PREFERENCE = ("prompt", "chosen", "rejected")


@dataclass
class TrainData:
    """What a recipe trains on, and where it came from."""

    train: Any  # datasets.Dataset
    validation: Optional[Any]  # datasets.Dataset, or None when there is no held-out set
    dataset: str
    snapshot: str  # the full content hash
    kind: str
    conversational: bool

    def describe(self) -> str:
        val = len(self.validation) if self.validation is not None else 0
        return (f"dataset {self.dataset!r} snapshot {self.snapshot[:12]} ({self.kind}, "
                f"{'chat' if self.conversational else 'text'}): {len(self.train)} train, {val} validation rows")


def freeze_snapshot(ws: Workspace, name: str, snapshot: Optional[str], note: str = "") -> str:
    """The full hash of snapshot ``snapshot`` (a prefix) of dataset ``name``, or of a snapshot
    frozen now from its current records."""
    if snapshot:
        try:
            return ds_repo.find_snapshot(ws.conn, name, snapshot).hash
        except WorkbenchError as e:
            raise ConfigError("data.snapshot", str(e)) from None
    with ws.transaction() as conn:
        return ds_repo.freeze(conn, name, note=note).hash


def _columns(rec: Record, kind: str) -> tuple[str, ...]:
    if kind == "preference":
        return PREFERENCE
    return SFT_MESSAGES if rec.messages is not None else SFT_PROMPT_COMPLETION


def build_rows(records, kind: str, *, use_validation: bool = True) -> tuple[list[dict], list[dict]]:
    """``(train_rows, validation_rows)`` in TRL's columns from workspace records.

    All rows must have the same shape (an SFT dataset mixing ``messages``
    and ``prompt``/``completion`` records cannot form one table).
    """
    train: list[dict] = []
    val: list[dict] = []
    shape: Optional[tuple[str, ...]] = None
    for rec in records:
        cols = _columns(rec, kind)
        if shape is None:
            shape = cols
        elif cols != shape:
            raise WorkbenchError(f"record #{rec.id} has fields {', '.join(cols)} but earlier records have "
                                 f"{', '.join(shape)}: a dataset for training must hold one shape")
        row = {c: getattr(rec, c) for c in cols}
        missing = [c for c, v in row.items() if v is None]
        if missing:
            raise WorkbenchError(f"record #{rec.id} has no {', '.join(missing)}")
        (val if use_validation and rec.split == "validation" else train).append(row)
    return train, val


def load_train_data(ws: Workspace, cfg: StageConfig, snapshot: str) -> TrainData:
    """The snapshot ``snapshot`` (a full hash or prefix) of the config's dataset as HF Datasets."""
    import datasets

    datasets.disable_progress_bars()  # the job's stderr.log is for errors
    name = cfg.data.dataset
    info = ds_repo.get_dataset(ws.conn, name)
    want = STAGE_KINDS[cfg.stage]
    if info.kind != want:
        raise ConfigError("data.dataset", f"dataset {name!r} holds {info.kind} records, but the {cfg.stage} "
                                          f"stage trains on {want} records")
    snap = ds_repo.find_snapshot(ws.conn, name, snapshot)
    train, val = build_rows(ds_repo.iter_snapshot(ws.conn, info, snap), info.kind,
                            use_validation=cfg.data.use_validation)
    if not train:
        raise ConfigError("data.dataset", f"snapshot {snap.hash[:12]} of {name!r} has no training records")
    return TrainData(train=datasets.Dataset.from_list(train),
                     validation=datasets.Dataset.from_list(val) if val else None,
                     dataset=name, snapshot=snap.hash, kind=info.kind,
                     conversational=info.style == "conversational" or "messages" in train[0])


def prepare(ws_root: Union[str, Path], cfg: StageConfig, *, note: str = "") -> TrainData:
    """Freeze (or find) the config's snapshot in the workspace at ``ws_root`` and load it."""
    with Workspace.open(ws_root) as ws:
        try:
            ds_repo.get_dataset(ws.conn, cfg.data.dataset)
        except WorkbenchError as e:
            raise ConfigError("data.dataset", str(e)) from None
        snapshot = freeze_snapshot(ws, cfg.data.dataset, cfg.data.snapshot, note=note)
        return load_train_data(ws, cfg, snapshot)
