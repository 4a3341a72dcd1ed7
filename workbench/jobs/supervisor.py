"""Start, watch, cancel and resume jobs, with a one-GPU queue kept in plain files.

:class:`Supervisor` is the one API the CLI and the GUI use (no Qt here). All
its state lives in the run directories (see :mod:`.rundir`), so any number
of supervisors (a GUI, a CLI in a terminal, a GUI restarted after a crash)
see the same runs and the same queue, and a job outlives the process that
started it (it runs in its own session).

Status of a run, derived from its files on every call:

- ``queued``: it holds a ``QUEUED`` marker and no process runs it yet;
- ``running``: its process is alive and has not written ``finished``;
- ``completed`` / ``cancelled`` / ``failed``: from its last ``finished`` event;
  a process that died without one is ``failed`` ("process died"), or
  ``cancelled`` if a cancel had been requested.

The queue. One job at a time (one GPU): :meth:`Supervisor.start` puts the
run in the queue and starts it at once only if no job process is alive.
A queued run starts **only when some supervisor calls** :meth:`Supervisor.poll`
(or starts, cancels or resumes a run) after the running one ended: the
GUI polls on its timer; a CLI that wants a queued run to go on must keep
polling (e.g. ``wait(..., poll=True)``). Supervisors in different processes
take a lock file (``runs/.queue.lock``) around "is the GPU free? start the
next one", so two of them never start two jobs.

POSIX only for now: cancel signals the job's process group.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Union

from ..errors import NotFoundError, WorkbenchError
from .checkpoints import resume_checkpoint
from .events import (CheckpointEvent, EventTailer, FinishedEvent, MetricEvent, SamplesEvent,
                     StartedEvent, WarningEvent, append_event)
from .rundir import (PidRecord, RunDir, cancel_requested, clear_cancel, clear_queued,
                     mark_queued, new_run_dir, parse_run_id, read_pid, read_queued,
                     request_cancel, write_pid)
from .run import UnknownStageError, recipes

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one supervisor process at a time
    fcntl = None

QUEUED, RUNNING = "queued", "running"
COMPLETED, CANCELLED, FAILED = "completed", "cancelled", "failed"
TERMINAL = (COMPLETED, CANCELLED, FAILED)
LOCK_FILE = ".queue.lock"
DIED = "the job process died without reporting how it ended (see stderr.log)"


class JobStateError(WorkbenchError):
    """The run is not in a state that allows the operation (e.g. resuming a running run)."""


@dataclass(frozen=True)
class RunInfo:
    """One run as the run list shows it. Times are Unix seconds.

    ``alive`` says whether the job process still exists (a run can be
    ``completed`` and still ``alive`` for the moment it takes to exit).
    ``error`` is the user-facing error of a failed or cancelled run.
    ``active_s`` is the time the run's processes ran, summed over resumes (the
    time it sat stopped between a cancel and a resume is not counted).
    """

    run_id: str
    stage: str
    status: str
    path: Path
    created: float
    started: Optional[float] = None
    ended: Optional[float] = None
    last_step: Optional[int] = None
    pid: Optional[int] = None
    alive: bool = False
    error: Optional[str] = None
    active_s: Optional[float] = None

    def to_dict(self) -> dict:
        return {**self.__dict__, "path": str(self.path)}


@dataclass(frozen=True)
class RunHandle:
    """A started (or queued) run: shortcuts to the supervisor's calls for it."""

    run_id: str
    path: Path
    supervisor: "Supervisor" = field(repr=False, compare=False)

    def info(self) -> RunInfo:
        return self.supervisor.info(self.run_id)

    def tail(self) -> EventTailer:
        return self.supervisor.tail(self.run_id)

    def cancel(self, **kwargs) -> RunInfo:
        return self.supervisor.cancel(self.run_id, **kwargs)

    def wait(self, timeout: Optional[float] = None, **kwargs) -> RunInfo:
        return self.supervisor.wait(self.run_id, timeout, **kwargs)


class _RunState:
    """What one run's files said so far, updated incrementally: a few ``stat``
    calls per update when nothing changed."""

    def __init__(self, rd: RunDir):
        self.tailer = EventTailer(rd.events)
        self.parsed = parse_run_id(rd.run_id)
        self.pid_mtime: Optional[int] = None  # pid file as last read
        self.pid_rec: Optional[PidRecord] = None
        self.dead_pid_mtime: Optional[int] = None  # pid file seen dead at this mtime
        self.stage: Optional[str] = None
        self.first_started: Optional[float] = None
        self.started = False
        self.finished: Optional[FinishedEvent] = None  # since the last `started`
        self.last_step: Optional[int] = None
        self.active = 0.0  # seconds of the processes that ended, summed
        self.segment_start: Optional[float] = None  # `started` of the process running (or died unreported)
        self.last_time: Optional[float] = None  # of the newest event

    def active_seconds(self, running: bool, now: float) -> Optional[float]:
        """Run time so far, without the gaps between a process's end and the next resume."""
        if self.first_started is None:
            return None
        if self.segment_start is None:
            return self.active
        end = now if running else (self.last_time or self.segment_start)
        return self.active + max(0.0, end - self.segment_start)

    def update(self, rd: RunDir) -> Optional[PidRecord]:
        """Read new events; return the pid record (re-read only when the file changed)."""
        for ev in self.tailer.read():
            if isinstance(ev, StartedEvent):
                self.stage, self.started, self.finished = ev.stage, True, None
                if self.first_started is None:
                    self.first_started = ev.time
                if self.segment_start is not None:  # the last process died without `finished`
                    self.active += max(0.0, (self.last_time or ev.time) - self.segment_start)
                self.segment_start = ev.time
            elif isinstance(ev, FinishedEvent):
                self.finished = ev
                if self.segment_start is not None:
                    self.active += max(0.0, ev.time - self.segment_start)
                    self.segment_start = None
            elif isinstance(ev, (MetricEvent, SamplesEvent, CheckpointEvent, WarningEvent)):
                if ev.step is not None:
                    self.last_step = ev.step if self.last_step is None else max(self.last_step, ev.step)
            if getattr(ev, "time", None) is not None:
                self.last_time = ev.time
        try:
            mtime = os.stat(rd.pid).st_mtime_ns
        except FileNotFoundError:
            self.pid_mtime = self.pid_rec = None
            return None
        if mtime != self.pid_mtime:
            self.pid_mtime, self.pid_rec = mtime, read_pid(rd)
        return self.pid_rec

    def current_finished(self) -> Optional[FinishedEvent]:
        """The ``finished`` event of the latest process, if it wrote one."""
        rec, fin = self.pid_rec, self.finished
        if fin is not None and rec is not None and fin.time < rec.time:
            return None  # from an earlier process of this run (before a resume)
        return fin


class Supervisor:
    """Jobs of one workspace (its ``runs/`` folder).

    ``python`` is the interpreter jobs run with (default: ``$RLHF_WORKBENCH_PYTHON``,
    else this one; a frozen GUI bundle points the variable at a Python with the
    training stack, see packaging/README.md).
    Safe to use from several threads; blocking calls (:meth:`cancel`,
    :meth:`wait`) belong off the GUI thread.
    """

    def __init__(self, workspace_root: Union[Path, str], *, python: Optional[str] = None):
        self.root = Path(workspace_root)
        self.runs_dir = self.root / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.python = python or os.environ.get("RLHF_WORKBENCH_PYTHON") or sys.executable
        self._procs: dict[str, subprocess.Popen] = {}  # children we started, to reap them
        self._states: dict[str, _RunState] = {}
        self._lock = threading.RLock()

    # -- starting ------------------------------------------------------------------------
    def start(self, stage: str, config: dict, *, queue: bool = True) -> RunHandle:
        """Create a run for ``stage`` with ``config`` and start it, or queue it
        behind the running job. With ``queue=False`` it starts at once even
        beside another job (for quick jobs such as ``probe``)."""
        known = recipes()
        if stage not in known:
            raise UnknownStageError(
                f"unknown stage {stage!r}; known stages: {', '.join(sorted(known))}")
        with self._queue_lock():
            rd = new_run_dir(self.runs_dir, stage, config, queued=True)
            if queue:
                self._poll_locked()
            else:
                self._spawn(rd, resume=False)
        return RunHandle(rd.run_id, rd.path, self)

    def resume(self, run_id: str, *, checkpoint: Optional[str] = None, queue: bool = True) -> RunHandle:
        """Run a cancelled or failed run again from its newest checkpoint that verifies, or
        from ``checkpoint`` (``"step-N"``; checked now: :class:`~.checkpoints.CheckpointError`
        if it is missing or damaged). Queued like a new run; the job logs which checkpoint it
        resumes from and warns about each damaged one it passes over."""
        rd = self.run_dir(run_id)
        if checkpoint is not None:
            checkpoint = resume_checkpoint(rd, checkpoint)[0].name  # raises if missing or damaged
        with self._queue_lock():
            info = self.info(run_id)
            if info.alive or info.status in (QUEUED, RUNNING, COMPLETED):
                raise JobStateError(f"run {run_id} is {info.status}"
                                    f"{' (its process is still alive)' if info.alive else ''}; "
                                    "only a cancelled or failed run can be resumed")
            clear_cancel(rd)
            mark_queued(rd, resume=True, checkpoint=checkpoint)
            if queue:
                self._poll_locked()
            else:
                self._spawn(rd, resume=True, checkpoint=checkpoint)
        return RunHandle(rd.run_id, rd.path, self)

    def poll(self) -> list[str]:
        """Start the oldest queued run if no job process is alive; returns the ids started.

        Cheap enough for a GUI timer (a few ``stat`` calls per run)."""
        with self._queue_lock():
            return self._poll_locked()

    def _poll_locked(self) -> list[str]:
        infos = self.list_runs()
        if any(i.alive for i in infos):
            return []
        waiting = []
        for i in infos:
            if i.status == QUEUED:
                marker = read_queued(RunDir(i.path)) or {}
                chosen = marker.get("checkpoint")
                waiting.append((float(marker.get("time", 0.0)), i.run_id, bool(marker.get("resume")),
                                chosen if isinstance(chosen, str) else None))
        if not waiting:
            return []
        _t, run_id, resume, checkpoint = min(waiting, key=lambda w: w[:2])
        self._spawn(RunDir(self.runs_dir / run_id), resume=resume, checkpoint=checkpoint)
        return [run_id]

    def _spawn(self, rd: RunDir, *, resume: bool, checkpoint: Optional[str] = None) -> None:
        cmd = [self.python, "-m", "workbench.jobs.run", str(rd.path)] + (["--resume"] if resume else [])
        if resume and checkpoint:
            cmd += ["--checkpoint", checkpoint]
        env = dict(os.environ)
        # The job runs in its run dir, so make sure it finds this package from there.
        pkg_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH")) if p)
        # The pid record carries the time *before* the spawn: the job rewrites the
        # record itself and may even finish before we get here, and status derivation
        # must see its events as newer than the record.
        spawned_at = time.time()
        try:
            with open(rd.stderr, "ab") as log:
                proc = subprocess.Popen(cmd, cwd=rd.path, env=env, stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=log, start_new_session=True)
        except OSError as e:
            clear_queued(rd)
            append_event(rd.events, FinishedEvent(status=FAILED, error=f"could not start the job: {e}"))
            raise
        with self._lock:
            self._procs[rd.run_id] = proc
        write_pid(rd, proc.pid, when=spawned_at)
        clear_queued(rd)

    @contextmanager
    def _queue_lock(self) -> Iterator[None]:
        with self._lock:
            if fcntl is None:
                yield
                return
            with open(self.runs_dir / LOCK_FILE, "a") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)

    # -- looking -------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> RunDir:
        """The run directory of ``run_id``; :class:`NotFoundError` if there is none."""
        if not run_id or run_id.startswith(".") or "/" in run_id or os.sep in run_id:
            raise NotFoundError(f"no run {run_id!r}")
        path = self.runs_dir / run_id
        if not (path / "config.yaml").is_file():
            raise NotFoundError(f"no run {run_id!r} in {self.runs_dir}")
        return RunDir(path)

    def list_runs(self) -> list[RunInfo]:
        """Every run of the workspace, oldest first.

        The first call reads every events file whole; later calls read only
        what was appended since."""
        try:
            names = sorted(e.name for e in os.scandir(self.runs_dir)
                           if not e.name.startswith(".") and e.is_dir())
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            if os.path.isfile(os.path.join(self.runs_dir, name, "config.yaml")):
                out.append(self._info(RunDir(self.runs_dir / name)))
        return out

    def prune(self, stage: str, *, keep: int = 1) -> list[str]:
        """Delete the finished runs of ``stage`` but the newest ``keep``; returns their ids.

        For bookkeeping stages (the GPU ``probe`` runs on every workspace
        open) whose old runs are noise in the run list. Runs that are
        queued, running or still have a live process are never touched. A
        folder is renamed to a dot name first (listings skip those), so a
        crash mid-delete leaves no half-deleted run behind.
        """
        import shutil

        done = [r for r in self.list_runs() if r.stage == stage and r.status in TERMINAL and not r.alive]
        doomed = done[:max(0, len(done) - keep)]
        removed = []
        for info in doomed:
            trash = self.runs_dir / f".deleted-{info.run_id}"
            try:
                os.rename(info.path, trash)
            except OSError:
                continue
            shutil.rmtree(trash, ignore_errors=True)
            with self._lock:
                self._states.pop(info.run_id, None)
            removed.append(info.run_id)
        return removed

    def info(self, run_id: str) -> RunInfo:
        """The current :class:`RunInfo` of one run."""
        return self._info(self.run_dir(run_id))

    def _state(self, rd: RunDir) -> _RunState:
        state = self._states.get(rd.run_id)
        if state is None:
            state = self._states[rd.run_id] = _RunState(rd)
        return state

    def _info(self, rd: RunDir) -> RunInfo:
        with self._lock:
            state = self._state(rd)
            rec = state.update(rd)
            alive, why_dead = self._alive(rd, state, rec)
            finished = state.current_finished()
        queued = read_queued(rd)
        error = None
        if queued is not None and not alive and not (rec is not None and rec.time >= queued["time"]):
            status = QUEUED
        elif finished is not None:
            status, error = finished.status, finished.error
        elif alive:
            status = RUNNING
        elif rec is None and not state.started:
            status, error = FAILED, "the job was never started"
        elif cancel_requested(rd):
            status, error = CANCELLED, why_dead or "the job ended after a cancel request"
        else:
            status, error = FAILED, why_dead or DIED
        parsed = state.parsed
        created = parsed[0] if parsed else rd.config.stat().st_mtime
        stage = state.stage or (parsed[1] if parsed else "?")
        return RunInfo(run_id=rd.run_id, stage=stage, status=status, path=rd.path, created=created,
                       started=state.first_started,
                       ended=finished.time if status in TERMINAL and finished else None,
                       last_step=state.last_step, pid=rec.pid if rec else None, alive=alive,
                       error=error, active_s=state.active_seconds(status == RUNNING, time.time()))

    def _alive(self, rd: RunDir, state: _RunState, rec: Optional[PidRecord]
               ) -> tuple[bool, Optional[str]]:
        """Whether the run's recorded process is alive, and why not if it is not."""
        if rec is None:
            return False, None
        proc = self._procs.get(rd.run_id)
        if proc is not None and proc.pid == rec.pid:
            if proc.poll() is None:
                return True, None
            del self._procs[rd.run_id]  # reaped: no zombie left behind
        if state.dead_pid_mtime == state.pid_mtime:
            return False, None  # seen dead before, pid file unchanged since
        if rec.host and rec.host != socket.gethostname():
            return False, f"the job ran on host {rec.host}; its process cannot be checked from here"
        if not _pid_alive(rec):
            state.dead_pid_mtime = state.pid_mtime
            return False, None
        return True, None

    def tail(self, run_id: str) -> EventTailer:
        """A new :class:`EventTailer` over the run's events, from the first event."""
        return EventTailer(self.run_dir(run_id).events)

    attach = tail

    def wait(self, run_id: str, timeout: Optional[float] = None, *, interval: float = 0.1,
             poll: bool = False) -> RunInfo:
        """Block until the run has ended and its process is gone; ``TimeoutError`` after
        ``timeout`` seconds. With ``poll`` it also starts queued runs as the GPU frees up."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if poll:
                self.poll()
            info = self.info(run_id)
            if info.status in TERMINAL and not info.alive:
                return info
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {info.status} after {timeout:g} s")
            time.sleep(interval)

    # -- stopping ------------------------------------------------------------------------
    def cancel(self, run_id: str, *, timeout: float = 10.0, term_timeout: float = 5.0,
               kill_timeout: float = 5.0) -> RunInfo:
        """Stop a run and return its final info (blocks up to the sum of the timeouts).

        A queued run leaves the queue. A running one is asked through
        ``control/cancel`` (the recipe saves a checkpoint and reports
        ``cancelled``); after ``timeout`` s its process group gets SIGTERM
        (the job reports ``cancelled``, without a checkpoint), after
        ``term_timeout`` more SIGKILL, and then the supervisor writes the
        ``finished`` event itself. Then the next queued run may start.
        """
        rd = self.run_dir(run_id)
        with self._queue_lock():
            info = self.info(run_id)
            if info.status == QUEUED:
                clear_queued(rd)
                append_event(rd.events, FinishedEvent(status=CANCELLED,
                                                      error="cancelled before it started"))
                return self.info(run_id)
        if not info.alive:
            return info
        request_cancel(rd)
        for sig, wait_s in ((None, timeout), (signal.SIGTERM, term_timeout),
                            (signal.SIGKILL, kill_timeout)):
            if sig is not None:
                self._signal(rd, sig)
            if self._wait_dead(run_id, wait_s):
                break
        info = self.info(run_id)
        with self._lock:
            finished = self._state(rd).current_finished()
        if not info.alive and finished is None:
            append_event(rd.events, FinishedEvent(
                status=CANCELLED, error="killed: the job did not stop within "
                f"{timeout + term_timeout:g} s of the cancel request"))
            info = self.info(run_id)
        self.poll()
        return info

    def _wait_dead(self, run_id: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if not self.info(run_id).alive:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def _signal(self, rd: RunDir, sig: int) -> None:
        info = self.info(rd.run_id)  # re-checks the pid is still our job's process
        if not info.alive or info.pid is None:
            return
        try:
            # The job leads its own session (start_new_session): signal the group so
            # its children (data loader workers) go too. A job started by hand in a
            # shell shares the shell's group: signal only the job then.
            if os.getpgid(info.pid) == info.pid:
                os.killpg(info.pid, sig)
            else:
                os.kill(info.pid, sig)
        except ProcessLookupError:
            pass


def _pid_alive(rec: PidRecord) -> bool:
    """Whether ``rec``'s process exists, is the same process (not a reused pid), and is
    not a zombie."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a dependency
        try:
            os.kill(rec.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        proc = psutil.Process(rec.pid)
        if rec.create_time is not None and abs(proc.create_time() - rec.create_time) > 1.0:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True
