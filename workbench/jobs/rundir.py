"""The run directory: the durable record of one job (DESIGN.md section 3).

::

    RUNS/20261123-014500-sft-ab12/
        config.yaml        resolved config, ``stage`` first (written atomically)
        env.json           versions, GPU, host (written by the job)
        events.jsonl       append-only typed events (see :mod:`.events`)
        stderr.log         the job's stdout and stderr
        pid                {"pid", "create_time", "host", "time"} of the job process
        QUEUED             present while the run waits for the GPU
        control/cancel     present when a cancel was requested
        checkpoints/step-N/          complete checkpoints (each holds COMPLETE)
        checkpoints/.tmp-step-N-xx/  a checkpoint being written (ignored)

Run ids are ``YYYYMMDD-HHMMSS-STAGE-XXXX`` in UTC, so sorting ids sorts runs
by creation time (UTC because local time goes back an hour once a year).
Everything here is plain files so the GUI, the CLI and the job itself see
the same state without talking to each other.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import secrets
import shutil
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Iterator, Optional, Union

import yaml

from ..config_files import ConfigFileError, load_yaml_file

CONFIG = "config.yaml"
ENV = "env.json"
EVENTS = "events.jsonl"
STDERR = "stderr.log"
PID = "pid"
QUEUED = "QUEUED"
CONTROL = "control"
CANCEL = "cancel"
CHECKPOINTS = "checkpoints"
COMPLETE = "COMPLETE"

_STAGE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_ID_RE = re.compile(r"^(\d{8}-\d{6})-([a-z][a-z0-9_]*)-([0-9a-f]{4,})$")
_STEP_RE = re.compile(r"^step-(\d+)$")


# -- ids and the directory ------------------------------------------------------------------
def new_run_id(stage: str, now: Optional[float] = None) -> str:
    """A sortable run id like ``20261123-014500-sft-ab12`` (UTC time, 4 random hex digits)."""
    check_stage_name(stage)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{stage}-{secrets.token_hex(2)}"


def parse_run_id(run_id: str) -> Optional[tuple[float, str]]:
    """``(creation time, stage)`` from a run id, or ``None`` if it is not one."""
    m = _ID_RE.match(run_id)
    if not m:
        return None
    return float(calendar.timegm(time.strptime(m.group(1), "%Y%m%d-%H%M%S"))), m.group(2)


def check_stage_name(stage: str) -> str:
    """``stage`` if it is a valid stage name (lower case, digits, ``_``), else ``ValueError``."""
    if not isinstance(stage, str) or not _STAGE_RE.match(stage):
        raise ValueError(f"invalid stage name {stage!r}: use lower-case letters, digits and '_'")
    return stage


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory (usable wherever a path is: ``os.fspath(rd)``)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def run_id(self) -> str:
        return self.path.name

    config = property(lambda self: self.path / CONFIG)
    env = property(lambda self: self.path / ENV)
    events = property(lambda self: self.path / EVENTS)
    stderr = property(lambda self: self.path / STDERR)
    pid = property(lambda self: self.path / PID)
    queued = property(lambda self: self.path / QUEUED)
    control = property(lambda self: self.path / CONTROL)
    cancel = property(lambda self: self.path / CONTROL / CANCEL)
    checkpoints = property(lambda self: self.path / CHECKPOINTS)

    def read_config(self) -> dict:
        """``config.yaml`` as a dict (it always has a ``stage`` key)."""
        if not self.config.exists():
            raise ValueError(f"{self.config}: missing (not a run directory?)")
        try:
            data = load_yaml_file(self.config)
        except ConfigFileError as e:
            raise ValueError(str(e)) from None
        if not isinstance(data, dict) or not isinstance(data.get("stage"), str):
            raise ValueError(f"{self.config}: expected a mapping with a 'stage' key")
        return data


RunDirLike = Union[RunDir, Path, str]


def as_run_dir(run_dir: RunDirLike) -> RunDir:
    return run_dir if isinstance(run_dir, RunDir) else RunDir(Path(run_dir))


def _plain_config(value: Any) -> Any:
    # Paths and tuples are common in resolved configs; YAML's safe dumper takes neither.
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain_config(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_config(v) for v in value]
    return value


def new_run_dir(runs_dir: Union[Path, str], stage: str, config: dict, *,
                queued: bool = False, resume: bool = False) -> RunDir:
    """Create a run directory under ``runs_dir`` holding ``config.yaml``.

    The directory is built under a hidden temporary name and renamed into
    place, so watchers never see a run without its config. With ``queued``
    it also holds the ``QUEUED`` marker. ``config`` must be plain data (dicts,
    lists, strings, numbers; paths become strings); a ``stage`` key in it
    must agree with ``stage``.
    """
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    if config.get("stage", stage) != stage:
        raise ValueError(f"config says stage {config['stage']!r} but the run is for {stage!r}")
    body = {"stage": stage, **{k: v for k, v in config.items() if k != "stage"}}
    try:
        text = yaml.safe_dump(_plain_config(body), sort_keys=False, allow_unicode=True)
    except yaml.YAMLError as e:
        raise ValueError(f"config is not plain data (YAML cannot hold it): {e}") from None
    while True:
        run_id = new_run_id(stage)
        final = runs_dir / run_id
        if final.exists():
            continue
        tmp = runs_dir / f".tmp-{run_id}"
        tmp.mkdir()
        rd = RunDir(tmp)
        rd.control.mkdir()
        rd.checkpoints.mkdir()
        atomic_write_text(rd.config, text)
        if queued:
            mark_queued(rd, resume=resume)
        try:
            os.rename(tmp, final)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if final.exists():
                continue  # another process took this id in the same second
            raise
        fsync_dir(runs_dir)
        return RunDir(final)


# -- small durable writes -------------------------------------------------------------------
def fsync_dir(path: Union[Path, str]) -> None:
    """Make a rename or creation inside ``path`` durable (no-op where dirs can't be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: Union[Path, str], text: str) -> None:
    """Write ``text`` to ``path`` via a fsynced temp file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def atomic_write_json(path: Union[Path, str], data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Union[Path, str]) -> Optional[dict]:
    """A JSON object file (manifests, results, markers), or ``None`` when it is missing,
    unreadable, not JSON or not an object: callers treat all of those as "not there"."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# -- checkpoints ----------------------------------------------------------------------------
def _fsync_tree(root: Path) -> dict[str, int]:
    """fsync every file under ``root``; returns their sizes by relative POSIX path."""
    sizes: dict[str, int] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                os.fsync(f.fileno())
                sizes[Path(os.path.relpath(path, root)).as_posix()] = os.fstat(f.fileno()).st_size
        fsync_dir(dirpath)
    return sizes


@contextmanager
def atomic_checkpoint(run_dir: RunDirLike, step: int) -> Iterator[Path]:
    """Write checkpoint ``step`` atomically: yields a temp folder to write into.

    On a clean exit the files are fsynced, a ``COMPLETE`` marker is written
    last (with every file's size, so :mod:`.checkpoints` can tell a later
    truncation), and the folder is renamed to ``checkpoints/step-N``
    (replacing an older one of the same step). If the block raises, or the process dies
    inside it, no ``step-N`` appears; the temp folder is removed (or, after a
    crash, ignored and cleaned up by :func:`remove_stale_temp_checkpoints`).
    """
    rd = as_run_dir(run_dir)
    step = int(step)
    rd.checkpoints.mkdir(parents=True, exist_ok=True)
    tmp = rd.checkpoints / f".tmp-step-{step}-{secrets.token_hex(3)}"
    tmp.mkdir()
    try:
        yield tmp
        sizes = _fsync_tree(tmp)
        atomic_write_json(tmp / COMPLETE, {"step": step, "time": time.time(), "files": sizes})
        final = rd.checkpoints / f"step-{step}"
        old = None
        if final.exists():
            old = rd.checkpoints / f".old-step-{step}-{secrets.token_hex(3)}"
            os.rename(final, old)
        os.rename(tmp, final)
        fsync_dir(rd.checkpoints)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def list_checkpoints(run_dir: RunDirLike) -> list[tuple[int, Path]]:
    """Complete checkpoints as ``(step, path)``, oldest step first.

    Only ``step-N`` folders holding ``COMPLETE`` count: unlike HF's
    ``get_last_checkpoint``, a half-written folder is never picked.
    """
    rd = as_run_dir(run_dir)
    out = []
    try:
        entries = list(os.scandir(rd.checkpoints))
    except FileNotFoundError:
        return []
    for entry in entries:
        m = _STEP_RE.match(entry.name)
        if m and entry.is_dir() and os.path.exists(os.path.join(entry.path, COMPLETE)):
            out.append((int(m.group(1)), Path(entry.path)))
    return sorted(out)


def latest_complete_checkpoint(run_dir: RunDirLike) -> Optional[Path]:
    """The complete checkpoint with the highest step, or ``None``."""
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def checkpoint_step(path: Union[Path, str]) -> int:
    """The step of a ``step-N`` checkpoint folder."""
    m = _STEP_RE.match(Path(path).name)
    if not m:
        raise ValueError(f"{path}: not a checkpoint folder (expected step-N)")
    return int(m.group(1))


def remove_stale_temp_checkpoints(run_dir: RunDirLike) -> None:
    """Remove temp folders a crashed writer left (call only when no job writes here)."""
    rd = as_run_dir(run_dir)
    if rd.checkpoints.is_dir():
        for entry in os.scandir(rd.checkpoints):
            if entry.name.startswith((".tmp-step-", ".old-step-")):
                shutil.rmtree(entry.path, ignore_errors=True)


# -- control files and markers --------------------------------------------------------------
def request_cancel(run_dir: RunDirLike) -> None:
    """Ask the job to stop at its next step boundary."""
    rd = as_run_dir(run_dir)
    rd.control.mkdir(exist_ok=True)
    rd.cancel.touch()


def cancel_requested(run_dir: RunDirLike) -> bool:
    """Whether a cancel was requested (one ``stat``)."""
    return os.path.exists(as_run_dir(run_dir).cancel)


def clear_cancel(run_dir: RunDirLike) -> None:
    as_run_dir(run_dir).cancel.unlink(missing_ok=True)


@dataclass(frozen=True)
class PidRecord:
    """Who runs (or ran) the job: the process create time guards against pid reuse."""

    pid: int
    create_time: Optional[float]
    host: str
    time: float


def write_pid(run_dir: RunDirLike, pid: int, *, when: Optional[float] = None) -> PidRecord:
    """Record the job process ``pid`` (with its create time, if it can be read) as of
    ``when`` (default now): events older than the record belong to an earlier process."""
    try:
        import psutil
        create_time: Optional[float] = psutil.Process(pid).create_time()
    except Exception:  # noqa: BLE001 - psutil missing or the process already gone
        create_time = None
    rec = PidRecord(pid=pid, create_time=create_time, host=socket.gethostname(),
                    time=time.time() if when is None else when)
    atomic_write_json(as_run_dir(run_dir).pid, rec.__dict__)
    return rec


def read_pid(run_dir: RunDirLike) -> Optional[PidRecord]:
    data = read_json(as_run_dir(run_dir).pid)
    if not data or not isinstance(data.get("pid"), int):
        return None
    return PidRecord(pid=data["pid"], create_time=data.get("create_time"),
                     host=str(data.get("host", "")), time=float(data.get("time", 0.0)))


def mark_queued(run_dir: RunDirLike, *, resume: bool = False, checkpoint: Optional[str] = None) -> None:
    """Put the run in the queue (``time`` orders the queue; ``resume`` and ``checkpoint``,
    a ``step-N`` name or ``None`` for the newest usable one, say how to start it)."""
    atomic_write_json(as_run_dir(run_dir).queued, {"time": time.time(), "resume": resume,
                                                   "checkpoint": checkpoint})


def read_queued(run_dir: RunDirLike) -> Optional[dict]:
    """The ``QUEUED`` marker (``{"time", "resume", "checkpoint"}``), or ``None`` when not queued."""
    rd = as_run_dir(run_dir)
    if not rd.queued.exists():
        return None
    return read_json(rd.queued) or {"time": 0.0, "resume": False}


def clear_queued(run_dir: RunDirLike) -> None:
    as_run_dir(run_dir).queued.unlink(missing_ok=True)
