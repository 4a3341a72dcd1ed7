"""Checkpoint health: verify one before resuming from it, pick the one to resume from.

A ``step-N`` folder with ``COMPLETE`` was whole when it was written
(:func:`~workbench.jobs.rundir.atomic_checkpoint`), but a disk error, a
copy cut short or a stray edit can damage it later, and a resume that loads
it fails with a library error naming no file ("SafetensorError: invalid
header length"), every time. :func:`verify_checkpoint` checks a folder
without loading any weights (no torch): every file the ``COMPLETE`` marker
lists is there with the size it had, each ``.safetensors`` file's header
parses and describes exactly the bytes the file holds, each torch ``.pt`` /
``.bin`` file is a readable zip archive, the JSON files parse, and a TRL
recipe's checkpoint holds its weights. :func:`resume_checkpoint` picks the
newest checkpoint that passes, or the one the user chose.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Optional, Union

from ..config_files import MAX_BYTES
from ..errors import WorkbenchError
from ..store.workspace import DB_NAME
from .rundir import COMPLETE, RunDirLike, as_run_dir, checkpoint_step, list_checkpoints, read_json

#: A safetensors header longer than this is taken as damage (real ones are a few MB at most).
MAX_SAFETENSORS_HEADER = 100 << 20
#: JSON files larger than this are not parsed during a check (they are not configs).
_MAX_JSON_CHECK = 16 << 20
#: What a TRL recipe's manifest (``workbench.json``, see ``train/callbacks.py``) implies must be there.
_MANIFEST = "workbench.json"


class CheckpointError(WorkbenchError):
    """A checkpoint the user asked for does not exist or is damaged."""


def _safetensors_problem(path: Path) -> Optional[str]:
    size = path.stat().st_size
    if size < 8:
        return "shorter than a safetensors header"
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n > min(size - 8, MAX_SAFETENSORS_HEADER):
            return f"invalid header length ({n:,} bytes in a {size:,}-byte file)"
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return "its header is not valid JSON"
    if not isinstance(header, dict):
        return "its header is not a JSON object"
    end = 0
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        offsets = meta.get("data_offsets") if isinstance(meta, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            return f"tensor {name[:80]!r} has no valid data offsets"
        end = max(end, offsets[1])
    if 8 + n + end != size:
        return f"holds {size:,} bytes but its header describes {8 + n + end:,}"
    return None


def _zip_problem(path: Path) -> Optional[str]:
    # torch.save writes a zip archive; a cut-off one has no central directory.
    try:
        with zipfile.ZipFile(path) as z:
            z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        return f"not a readable torch archive ({e})"
    return None


def _json_problem(path: Path) -> Optional[str]:
    if path.stat().st_size > _MAX_JSON_CHECK:
        return None
    try:
        json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        return "not valid JSON"
    return None


def verify_checkpoint(folder: Union[str, os.PathLike]) -> Optional[str]:
    """``None`` when checkpoint ``folder`` looks usable, else why not (one line, naming the file)."""
    folder = Path(folder)
    marker = read_json(folder / COMPLETE)
    if marker is None:
        return f"its {COMPLETE} marker is missing or unreadable"
    try:
        recorded = marker.get("files")
        if isinstance(recorded, dict):  # checkpoints written since sizes were recorded
            for rel, size in recorded.items():
                path = folder / rel
                if not path.is_file():
                    return f"{rel} is missing"
                actual = path.stat().st_size
                if isinstance(size, int) and actual != size:
                    return f"{rel} is {actual:,} bytes, {size:,} when it was written"
        manifest = read_json(folder / _MANIFEST)
        if manifest is not None:
            weights = ["adapter_model.safetensors"] if manifest.get("adapter") else \
                ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"]
            if not any((folder / w).is_file() for w in weights):
                return f"its weights ({weights[0]}) are missing"
        for path in sorted(folder.rglob("*")):
            if not path.is_file():
                continue
            rel = path.relative_to(folder).as_posix()
            suffix = path.suffix
            problem = (_safetensors_problem(path) if suffix == ".safetensors"
                       else _zip_problem(path) if suffix in (".pt", ".bin", ".pth")
                       else _json_problem(path) if suffix == ".json" else None)
            if problem:
                return f"{rel}: {problem}"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    return None


def resume_checkpoint(run_dir: RunDirLike, chosen: Optional[str] = None) -> tuple[Optional[Path], list[str]]:
    """The checkpoint a resume continues from, and one warning per damaged one passed over.

    Without ``chosen``: the newest checkpoint that :func:`verify_checkpoint`
    passes (``None`` when there is none). With ``chosen`` (``"step-N"`` or
    ``N``): that one; :class:`CheckpointError` if it is missing or damaged
    (the user asked for it: no silent fallback).
    """
    rd = as_run_dir(run_dir)
    found = list_checkpoints(rd)
    if chosen is not None:
        name = chosen if str(chosen).startswith("step-") else f"step-{chosen}"
        try:
            step = checkpoint_step(name)
        except ValueError:
            raise CheckpointError(f"{chosen!r}: expected a checkpoint name like step-40") from None
        path = dict(found).get(step)
        if path is None:
            have = ", ".join(p.name for _s, p in found) or "none"
            raise CheckpointError(f"run {rd.run_id} has no complete checkpoint {name} (it has: {have})")
        problem = verify_checkpoint(path)
        if problem:
            raise CheckpointError(f"checkpoint {path}: damaged: {problem}")
        return path, []
    warnings: list[str] = []
    for _step, path in reversed(found):
        problem = verify_checkpoint(path)
        if problem is None:
            if warnings:
                warnings[-1] += f"; resuming from {path.name} instead"
            return path, warnings
        warnings.append(f"checkpoint {path} is damaged ({problem}); skipped")
    if warnings:
        warnings[-1] += "; no usable checkpoint is left, so the run starts from the beginning"
    return None, warnings


# -- pruning --------------------------------------------------------------------------------
_MINIMIZED = ("loss",)  # a key metric whose name holds one of these is better lower


def _metric_by_step(rd: RunDirLike, stage: str) -> dict[int, float]:
    """``{step: value}`` of the stage's key metric (:data:`~.metrics.KEY_METRICS`), as logged."""
    from .events import MetricEvent, read_events
    from .metrics import KEY_METRICS

    series: dict[str, dict[int, float]] = {}
    for ev in read_events(as_run_dir(rd).events):
        if isinstance(ev, MetricEvent):
            for name, value in ev.values.items():
                if value == value:  # NaN never wins
                    series.setdefault(name, {})[ev.step] = value
    for name, _label in KEY_METRICS.get(stage, ()):
        if series.get(name):
            sign = 1.0 if any(word in name for word in _MINIMIZED) else -1.0
            return {step: sign * value for step, value in series[name].items()}  # lower is better
    return {}


def best_checkpoint_step(rd: RunDirLike, stage: str, steps: list[int]) -> Optional[int]:
    """Among checkpoint ``steps``, the one whose latest key-metric value (logged at or before it)
    is best, or ``None`` when the stage logs no key metric."""
    values = sorted(_metric_by_step(rd, stage).items())
    if not values:
        return None
    best: Optional[tuple[float, int]] = None
    for step in steps:
        seen = [v for s, v in values if s <= step]
        if seen and (best is None or seen[-1] < best[0]):
            best = (seen[-1], step)
    return best[1] if best else None


def depended_on_steps(rd: RunDirLike) -> set[int]:
    """Steps of this run's checkpoints that something else uses: another run's config
    (a later stage's model, a merge's source, a generate job's model) or candidates generated
    from it (``candidates.checkpoint`` in the workspace database)."""
    import re
    import sqlite3

    rd = as_run_dir(rd)
    pattern = re.compile(re.escape(rd.run_id) + r"[/\\]checkpoints[/\\]step-(\d+)")
    steps: set[int] = set()
    runs = rd.path.parent
    for other in runs.iterdir():
        if other.name != rd.run_id and not other.name.startswith("."):
            config = other / "config.yaml"
            if not config.is_file():
                continue   # another run folder is not trusted: a FIFO there would block this job's save
            try:
                with open(config, "rb") as f:
                    text = f.read(MAX_BYTES).decode("utf-8", errors="replace")
            except OSError:
                continue
            steps.update(int(m.group(1)) for m in pattern.finditer(text))
    db = runs.parent / DB_NAME
    if db.is_file():
        try:
            conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
            try:
                rows = conn.execute("SELECT DISTINCT checkpoint FROM candidates WHERE checkpoint LIKE ?",
                                    (f"%{rd.run_id}%",)).fetchall()
            finally:
                conn.close()
        except sqlite3.Error:
            rows = []
        for (value,) in rows:
            steps.update(int(m.group(1)) for m in pattern.finditer(str(value)))
    return steps


def prune_checkpoints(run_dir: RunDirLike, *, keep_last: int, stage: str,
                      saved: Optional[int] = None) -> list[Path]:
    """Remove the run's checkpoints except the newest ``keep_last``, the best by the stage's
    key metric and any :func:`depended_on_steps` names; returns the folders removed.
    ``keep_last`` 0 keeps everything. Each folder is renamed out of ``step-N`` first, so
    a reader never sees half a checkpoint.

    ``saved`` is the step just written (default: the highest). Checkpoints above it are
    from before a resume from an earlier checkpoint (a continuation the user went back
    from), so they count as older than every one up to ``saved``: the one just written
    is always among the newest kept, the best is sought among this continuation's, and a
    later resume picks this continuation."""
    import secrets
    import shutil

    if keep_last <= 0:
        return []
    rd = as_run_dir(run_dir)
    found = list_checkpoints(rd)
    if len(found) <= keep_last:
        return []
    steps = [s for s, _p in found]
    if saved is None:
        saved = steps[-1]
    by_age = [s for s in steps if s > saved] + [s for s in steps if s <= saved]   # oldest first
    keep = set(by_age[-keep_last:]) | depended_on_steps(rd)
    best = best_checkpoint_step(rd, stage, [s for s in steps if s <= saved])   # metrics of this continuation
    if best is not None:
        keep.add(best)
    removed = []
    for step, path in found:
        if step in keep:
            continue
        doomed = path.with_name(f".old-step-{step}-{secrets.token_hex(3)}")
        try:
            os.rename(path, doomed)
        except OSError:
            continue
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(path)
    return removed


def disk_usage(folder: Union[str, os.PathLike]) -> int:
    """Bytes the files under ``folder`` take (their sizes; 0 when it does not exist)."""
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def checkpoint_usage(run_dir: RunDirLike) -> tuple[int, list[tuple[str, int]]]:
    """``(bytes of the whole run folder, [(checkpoint name, bytes)])``, oldest checkpoint first."""
    rd = as_run_dir(run_dir)
    return disk_usage(rd.path), [(path.name, disk_usage(path)) for _s, path in list_checkpoints(rd)]
