"""May a writer replace this output path? One rule for every export (datasets, merged models).

An export never removes anything it did not create:

- a path that does not exist, an empty file or an empty folder is free to take;
- anything else is refused unless the caller asks to overwrite, and even then
  a folder is replaced only when it is recognisably a previous export of ours
  (it holds :data:`MANIFEST`, written into every export folder, and nothing
  but the files that manifest lists) of the same kind (a dataset export never
  replaces a merged model, nor the reverse), a file only when it is a plain file;
- never, overwrite or not: a filesystem root, the home folder, the workspace or
  any folder that contains it, anything inside the workspace's ``runs/``, a
  workspace database file, a symbolic link; the last three hold for a path that
  does not exist yet too (nothing new is created in ``runs/`` or named like the
  database or its journal, WAL or shared-memory file).

:func:`check_target` applies the rule before the (possibly long) export starts
and again, through :meth:`OutputTarget.replace_with`, right before the finished
export is renamed into place, so a folder that changed meanwhile is not lost.
The replacement is atomic for files (one ``rename``); a folder is moved aside
to a hidden sibling, the new one renamed in, and only then the old one removed.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .errors import WorkbenchError
from .jobs.rundir import fsync_dir
from .store.workspace import DB_NAME

#: The marker every export folder carries: who wrote it and the files it wrote.
MANIFEST = ".rlhf-workbench-export.json"
_WORKSPACE_FILES = tuple(DB_NAME + suffix for suffix in ("", "-wal", "-shm", "-journal"))
_SHOWN = 3  # unexpected files named in a refusal


class TargetError(WorkbenchError):
    """The output path may not be written (or replaced); the message says why and what to do."""


@dataclass(frozen=True)
class OutputTarget:
    """An output path that passed :func:`check_target`; ``exists``: something will be replaced."""

    path: Path
    folder: bool
    exists: bool
    workspace: Optional[Path]
    overwrite: bool
    recognise: Optional[Callable[[Path], bool]] = None
    kind: Optional[str] = None

    def replace_with(self, built: Path) -> None:
        """Move the finished export ``built`` (a sibling temp path) to :attr:`path`.

        Checks the rule again first: what is at the target now must still be
        replaceable. ``built`` is left in place when that check fails.
        """
        again = check_target(self.path, folder=self.folder, workspace=self.workspace, overwrite=self.overwrite,
                             recognise=self.recognise, kind=self.kind)
        path = again.path
        if not again.exists or not path.is_dir():
            os.replace(built, path)  # a file (or nothing) at the target: one atomic rename
        else:
            aside = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(path, aside)
            try:
                os.rename(built, path)
            except BaseException:
                os.rename(aside, path)
                raise
            shutil.rmtree(aside, ignore_errors=True)
        fsync_dir(path.parent)


def _absolute(path: Path | str) -> Path:
    """``path`` made absolute and normalised (``.`` and ``..`` folded) without following links."""
    return Path(os.path.abspath(Path(path).expanduser()))


def _within(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def _protected(path: Path, workspace: Optional[Path]) -> Optional[str]:
    """Why ``path`` may never be replaced, or ``None``."""
    real = Path(os.path.realpath(path))
    if real.parent == real:
        return "is the root of a filesystem"
    try:
        home = Path(os.path.realpath(Path.home()))
    except RuntimeError:  # no home directory known
        home = None
    if home is not None and real == home:
        return "is your home folder"
    if real.is_mount():
        return "is the root of a mounted filesystem"
    if workspace is not None:
        ws = Path(os.path.realpath(workspace))
        if real == ws:
            return "is the workspace itself"
        if _within(ws, real):
            return f"contains the workspace {ws}"
        if _within(real, ws / "runs"):
            return "is inside the workspace's runs/ folder (run records are never replaced)"
    if path.name in _WORKSPACE_FILES:
        return "is a workspace database file"
    return None


def read_manifest(folder: Path) -> Optional[dict[str, Any]]:
    """The export manifest of ``folder``, or ``None`` when it has none (or not one of ours)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("created_by") != "rlhf-workbench" \
            or not isinstance(data.get("files"), list):
        return None
    return data


def _folder_files(folder: Path) -> list[str]:
    """Every entry under ``folder`` except the manifest, as sorted POSIX paths (folders end in ``/``)."""
    out = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder).as_posix()
        if rel == MANIFEST:
            continue
        out.append(rel + "/" if p.is_dir() and not p.is_symlink() else rel)
    return sorted(out)


def write_manifest(folder: Path, **info: Any) -> None:
    """Mark ``folder`` as an export of ours: ``info`` plus the list of files now in it.

    The content depends only on ``info`` and the file names (no time stamp), so
    exports of a frozen snapshot stay byte-identical.
    """
    files = [f for f in _folder_files(folder) if not f.endswith("/")]
    data = {"created_by": "rlhf-workbench", **info, "files": files}
    (folder / MANIFEST).write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                                   encoding="utf-8")


#: The manifest ``kind`` of each writer, and what it is called in a refusal.
DATASET_EXPORT, MERGED_MODEL = "dataset-export", "merged-model"
KIND_NAMES = {DATASET_EXPORT: "a dataset export", MERGED_MODEL: "a merged model"}


def _is_ours(folder: Path, kind: Optional[str] = None) -> Optional[str]:
    """Why ``folder`` is not recognisably a previous export of ours (of ``kind``, when given),
    or ``None`` when it is."""
    manifest = read_manifest(folder)
    if manifest is None:
        return f"is not a folder this app exported (no {MANIFEST} in it)"
    if kind is not None and manifest.get("kind") != kind:
        found = manifest.get("kind")
        return (f"holds {KIND_NAMES.get(found, 'another export') if isinstance(found, str) else 'another export'}"
                f", not {KIND_NAMES.get(kind, kind)}")
    listed = {str(f) for f in manifest["files"]}
    implied = {parent.as_posix() + "/" for f in listed for parent in Path(f).parents if str(parent) != "."}
    extra = [f for f in _folder_files(folder) if f not in listed and f not in implied]
    if extra:
        shown = ", ".join(extra[:_SHOWN]) + (f" and {len(extra) - _SHOWN} more" if len(extra) > _SHOWN else "")
        return f"holds files the export did not write ({shown})"
    return None


def check_target(path: Path | str, *, folder: bool, workspace: Optional[Path | str] = None,
                 overwrite: bool = False, recognise: Optional[Callable[[Path], bool]] = None,
                 kind: Optional[str] = None) -> OutputTarget:
    """Apply the rule of the module docstring to ``path``; raise :class:`TargetError` naming why not.

    ``folder``: the export is a folder (else one file). ``workspace``: the
    workspace the export comes from (never replaced, nor anything holding it).
    ``recognise``: the writer's own test for a folder of its own written before
    manifests existed (only asked when the folder has no manifest). ``kind``: the manifest
    ``kind`` this writer writes (see :data:`KIND_NAMES`); a previous export of another kind is
    never replaced.
    """
    path = _absolute(path)
    ws = _absolute(workspace) if workspace is not None else None
    if path.is_symlink():
        raise TargetError(f"{path}: is a symbolic link; choose another output path")
    why = _protected(path, ws)   # a new path too: nothing is created in runs/ or named like the database
    if why:
        raise TargetError(f"{path}: {why}; an export never writes there, choose another output path")
    if not path.exists():
        return OutputTarget(path, folder, False, ws, overwrite, recognise, kind)
    if path.is_dir():
        if not folder:
            raise TargetError(f"{path}: is a folder; give the export a file name")
        if not any(path.iterdir()):
            return OutputTarget(path, folder, True, ws, overwrite, recognise, kind)
        if not overwrite:
            raise TargetError(f"{path}: already exists and is not empty; choose another output path "
                              "(or overwrite to replace a previous export)")
        why = _is_ours(path, kind)
        if why and read_manifest(path) is None and recognise is not None and recognise(path):
            why = None
        if why:
            raise TargetError(f"{path}: {why}; only a previous export is replaced, choose another output path")
        return OutputTarget(path, folder, True, ws, overwrite, recognise, kind)
    if folder:
        raise TargetError(f"{path}: is a file; this export is a folder, choose another output path")
    if not path.is_file():
        raise TargetError(f"{path}: is not a regular file; choose another output path")
    if path.stat().st_size and not overwrite:
        raise TargetError(f"{path}: already exists; choose another output path (or overwrite to replace it)")
    return OutputTarget(path, folder, True, ws, overwrite)


def apply_umask(folder: Path) -> None:
    """Give ``folder`` and everything in it the modes the user's umask asks for.

    Some writers create files 0600 (safetensors writes through a private temp
    file); an exported model is meant to be shared like any file the user saves.
    """
    mask = os.umask(0)
    os.umask(mask)
    for p in [folder, *folder.rglob("*")]:
        if p.is_symlink():
            continue
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)
