"""What the Train page lists from the workspace, read on a worker thread (no Qt).

Datasets and their snapshots (for the dataset and snapshot drop-downs),
model folders under ``models/``, each stage's latest run config (the form
starts from it), what each finished run produced
(:func:`workbench.train.outputs.run_output`) and which runs a merge job
exported, and the GPU probe's findings (GPU, whether bitsandbytes works).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from workbench.errors import WorkbenchError
from workbench.jobs.rundir import RunDir
from workbench.jobs.supervisor import CANCELLED, COMPLETED, FAILED, RunInfo
from workbench.store import datasets as ds_repo
from workbench.store.workspace import Workspace
from workbench.train import vram as V
from workbench.train.outputs import RunOutput, exports_by_source, run_output

from .stages import STAGES


@dataclass
class WorkspaceLists:
    datasets: list = field(default_factory=list)  # DatasetInfo
    snapshots: dict = field(default_factory=dict)  # dataset name -> [SnapshotInfo], oldest first
    models: list = field(default_factory=list)  # folder names under models/ that hold a model
    outputs: dict[str, RunOutput] = field(default_factory=dict)  # run id -> what it produced
    exports: dict[str, Path] = field(default_factory=dict)  # run id -> merged export folder
    gpu: Optional[V.GpuInfo] = None
    bitsandbytes_ok: Optional[bool] = None  # from the probe; None: not probed
    last_configs: dict = field(default_factory=dict)  # stage -> config.yaml of its latest run
    error: Optional[str] = None


def read_lists(root: Optional[Path], runs: Sequence[RunInfo]) -> WorkspaceLists:
    """Everything above for the workspace at ``root`` (its own SQLite connection: call it from
    any thread). A store error is reported in ``error``; the file-based parts still come back."""
    out = WorkspaceLists()
    if root is None:
        return out
    try:
        with Workspace.open(root) as ws:
            out.datasets = ds_repo.list_datasets(ws.conn)
            out.snapshots = {info.name: ds_repo.list_snapshots(ws.conn, info.name) for info in out.datasets}
    except WorkbenchError as e:
        out.error = str(e)
    models_dir = Path(root) / "models"
    if models_dir.is_dir():
        out.models = sorted(p.name for p in models_dir.iterdir()
                            if p.is_dir() and not p.name.startswith(".") and (p / "config.json").is_file())
    finished = [r for r in runs if r.status in (COMPLETED, FAILED, CANCELLED)]
    for r in finished:
        if r.status == COMPLETED:
            found = run_output(r.path)
            if found is not None:
                out.outputs[r.run_id] = found
    for r in runs:  # oldest first: the latest run of each stage wins
        if r.stage in STAGES:
            try:  # the core's reader: a copied-in run folder's config is untrusted (alias bombs, size)
                out.last_configs[r.stage] = RunDir(Path(r.path)).read_config()
            except (OSError, ValueError):
                continue
    out.exports = exports_by_source([r.path for r in runs if r.status == COMPLETED])
    out.gpu = V.read_probe(root)
    if out.gpu is not None and out.gpu.path is not None:
        try:
            probe = json.loads(out.gpu.path.read_text(encoding="utf-8"))
            bnb = probe.get("bitsandbytes") or {}
            out.bitsandbytes_ok = bool(bnb.get("importable")) if "importable" in bnb else None
        except (OSError, ValueError):
            pass
    return out
