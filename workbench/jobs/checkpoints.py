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

from ..errors import WorkbenchError
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
