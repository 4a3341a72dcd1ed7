"""The job process: ``python -m workbench.jobs.run RUN_DIR [--resume]``.

One OS process per job (DESIGN.md section 3). The runner reads
``config.yaml``, emits ``started``, writes ``env.json``, looks the stage up in
:data:`RECIPES` and calls the recipe with a :class:`JobContext`; whatever
happens, it ends the events file with one ``finished`` event:

- the recipe returns: ``completed``;
- the recipe raises :class:`StopRequested` (after seeing
  :meth:`JobContext.should_stop` and saving a checkpoint), or the process
  gets SIGTERM or Ctrl-C: ``cancelled``;
- anything else: ``failed``, with a one-line error for the user (an
  actionable one for CUDA out-of-memory) and the traceback, which also goes
  to ``stderr.log``.

Exit status: 0 completed, 1 failed, 3 cancelled, 2 bad command line.
The supervisor does not rely on it; the events file is the record.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import platform
import signal
import socket
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

from ..errors import WorkbenchError
from .checkpoints import prune_checkpoints, resume_checkpoint
from .events import (LOG_LEVELS, SAMPLE_KINDS, CheckpointEvent, Event, EventWriter, FinishedEvent, LogEvent,
                     MetricEvent, SamplesEvent, StartedEvent, WarningEvent)
from .rundir import (RunDir, RunDirLike, as_run_dir, atomic_checkpoint, atomic_write_json,
                     cancel_requested, clear_queued, remove_stale_temp_checkpoints, write_pid)

#: Stage name -> ``"module:function"`` of its recipe, imported only when a job
#: runs that stage (recipes pull in torch/trl; the GUI imports this module).
RECIPES: dict[str, str] = {
    "probe": "workbench.jobs.probe:run",
    "ppo": "workbench.train.ppo:run",
    "sft": "workbench.train.sft:run",
    "reward": "workbench.train.reward:run",
    "dpo": "workbench.train.dpo:run",
    "merge": "workbench.train.merge:run",
    "generate": "workbench.generate.recipe:run",
}

#: Extra recipes from the environment, ``"stage=module:function;..."``: for
#: developing a new recipe before it is registered, and for tests. They are
#: added to :data:`RECIPES` (and may override an entry).
EXTRA_RECIPES_ENV = "WORKBENCH_EXTRA_RECIPES"

#: Environment set in every job unless the user set it: jobs never reach the
#: network on their own, and trl would otherwise send telemetry at train start.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}

EXIT_COMPLETED, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 3

#: Packages whose versions go into ``env.json``.
ENV_PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers",
                "bitsandbytes", "safetensors", "numpy")


class StopRequested(Exception):
    """Raised by a recipe to end the job as ``cancelled``.

    A recipe checks :meth:`JobContext.should_stop` at step boundaries; when it
    is true it saves a checkpoint (so the run can be resumed) and raises this,
    or calls :meth:`JobContext.raise_if_stopped`.
    """


class Terminated(BaseException):
    """SIGTERM arrived (the supervisor's second step after a cooperative cancel).

    A ``BaseException`` like ``KeyboardInterrupt``, so a recipe's broad
    ``except Exception`` does not swallow it.
    """


class UnknownStageError(WorkbenchError):
    """A config names a stage no recipe is registered for."""


# -- the registry ---------------------------------------------------------------------------
def recipes() -> dict[str, str]:
    """:data:`RECIPES` plus those named in ``$WORKBENCH_EXTRA_RECIPES``."""
    out = dict(RECIPES)
    for item in os.environ.get(EXTRA_RECIPES_ENV, "").split(";"):
        stage, sep, target = item.strip().partition("=")
        if sep and stage.strip() and ":" in target:
            out[stage.strip()] = target.strip()
    return out


def resolve_recipe(stage: str, registry: Optional[Mapping[str, str]] = None
                   ) -> Callable[["JobContext"], Any]:
    """Import and return the recipe function for ``stage``."""
    registry = recipes() if registry is None else registry
    target = registry.get(stage)
    if target is None:
        known = ", ".join(sorted(registry)) or "none"
        raise UnknownStageError(f"unknown stage {stage!r}; known stages: {known}")
    module_name, _, func_name = target.partition(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, func_name)
    except AttributeError:
        raise UnknownStageError(f"stage {stage!r}: {module_name} has no function {func_name!r}") \
            from None


# -- what a recipe sees ---------------------------------------------------------------------
class JobContext:
    """Everything a recipe gets: its config, the run dir, and ways to report.

    ``config`` is ``config.yaml`` without its ``stage`` key. ``resume_from``
    is the checkpoint folder to continue from when the job was started with
    ``--resume`` and one exists, else ``None``. A recipe sets
    ``keep_checkpoints`` (from its config) to have older checkpoints pruned
    after each save (:func:`~.checkpoints.prune_checkpoints`); 0 keeps all.
    """

    def __init__(self, run_dir: RunDirLike, config: dict, *, stage: str, writer: EventWriter,
                 resume_from: Optional[Path] = None):
        self.run_dir: RunDir = as_run_dir(run_dir)
        self.config = config
        self.stage = stage
        self.resume_from = resume_from
        self.keep_checkpoints = 0
        self._writer = writer

    def emit(self, event: Event) -> None:
        """Append ``event`` to the run's events file (durable on return)."""
        self._writer.write(event)

    def metric(self, step: int, values: Optional[Mapping[str, Any]] = None, /,
               **named: Any) -> None:
        """Report scalar metrics at ``step``.

        Names with slashes (TRL's ``objective/kl``) go in ``values``; plain
        names may also be keywords: ``ctx.metric(3, {"objective/kl": kl}, loss=l)``.
        Values may be anything ``float()`` takes (numpy scalars, 0-d tensors).
        """
        merged = {**(values or {}), **named}
        out = {}
        for name, value in merged.items():
            try:
                out[str(name)] = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"metric {name!r}: expected a number, got {value!r}") from None
        self.emit(MetricEvent(step=int(step), values=out))

    def samples(self, step: int, rows: Iterable[Mapping[str, Any]], kind: str = "train") -> None:
        """Report generated samples: each row has ``prompt``, ``response`` and ``score``
        (``None`` when unscored); ``kind`` ``"eval"`` marks completions on the eval prompts."""
        if kind not in SAMPLE_KINDS:
            raise ValueError(f"samples kind {kind!r}: expected one of {', '.join(SAMPLE_KINDS)}")
        out = []
        for row in rows:
            score = row.get("score")
            out.append({"prompt": str(row.get("prompt", "")), "response": str(row.get("response", "")),
                        "score": None if score is None else float(score)})
        self.emit(SamplesEvent(step=int(step), rows=out, kind=kind))

    def log(self, message: str, level: str = "info") -> None:
        """A line for the run's log view; ``level`` is one of ``debug info warning error``."""
        if level not in LOG_LEVELS:
            raise ValueError(f"log level {level!r}: expected one of {', '.join(LOG_LEVELS)}")
        self.emit(LogEvent(level=level, message=str(message)))

    def warn(self, code: str, message: str, step: Optional[int] = None) -> None:
        """A warning with a stable ``code`` the GUI can key on (e.g. ``"nan_loss"``)."""
        self.emit(WarningEvent(code=code, message=str(message),
                               step=None if step is None else int(step)))

    def should_stop(self) -> bool:
        """Whether a cancel was requested; cheap (one ``stat``), call it every step."""
        return cancel_requested(self.run_dir)

    def raise_if_stopped(self) -> None:
        """Raise :class:`StopRequested` if a cancel was requested."""
        if self.should_stop():
            raise StopRequested("cancelled by request")

    @contextmanager
    def checkpoint(self, step: int) -> Iterator[Path]:
        """Write checkpoint ``step`` into the yielded temp folder; on a clean exit it
        becomes ``checkpoints/step-N`` atomically and a ``checkpoint`` event is emitted
        (see :func:`~workbench.jobs.rundir.atomic_checkpoint`)."""
        with atomic_checkpoint(self.run_dir, step) as tmp:
            yield tmp
        self.emit(CheckpointEvent(step=int(step), path=f"checkpoints/step-{int(step)}"))
        if self.keep_checkpoints > 0:
            removed = prune_checkpoints(self.run_dir, keep_last=self.keep_checkpoints, stage=self.stage,
                                        saved=int(step))
            if removed:
                self.log(f"removed older checkpoint(s) {', '.join(p.name for p in removed)} (keeping the newest "
                         f"{self.keep_checkpoints}, the best by the key metric and any in use)")


# -- errors ---------------------------------------------------------------------------------
OOM_ADVICE = (
    "The GPU ran out of memory. To fit the job: load the base model in 4-bit (QLoRA), "
    "lower the batch size (raise gradient accumulation to keep the effective batch), "
    "turn on activation (gradient) checkpointing, or shorten the maximum sequence length.")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    e: Optional[BaseException] = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` (or its cause) is a CUDA out-of-memory error.

    Looks at torch's exception types only if torch is already imported, so
    classifying an error never imports torch.
    """
    torch = sys.modules.get("torch")
    types = ()
    if torch is not None:
        types = tuple(t for t in (getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None),
                                  getattr(torch, "OutOfMemoryError", None)) if isinstance(t, type))
    for e in _chain(exc):
        if types and isinstance(e, types):
            return True
        text = str(e)
        if "CUDA out of memory" in text or "CUDA error: out of memory" in text:
            return True
    return False


_TORCH_WRITE = "inline_container"


def _disk_full(exc: BaseException, folder: Optional[Path]) -> bool:
    """ENOSPC anywhere in the chain, or torch's opaque writer failure on a nearly full disk."""
    from ..store.db import free_mb, is_disk_full
    for e in _chain(exc):
        if folder is not None and is_disk_full(e, folder) or "No space left on device" in str(e):
            return True
        # torch.save on a full disk: "[enforce fail at inline_container.cc:...] unexpected pos ..." or
        # "PytorchStreamWriter failed writing file ...": only the free space tells it is the disk.
        if folder is not None and (_TORCH_WRITE in str(e) or "PytorchStreamWriter" in str(e)) \
                and 0 <= free_mb(folder) < 64:
            return True
    return False


def describe_error(exc: BaseException, limit: int = 2000, *, folder: Optional[Path] = None) -> str:
    """The one-line-ish error text a user sees for a failed job (``folder``: the run's, for a full disk)."""
    if folder is not None and _disk_full(exc, folder):
        from ..store.db import disk_full_message
        return (f"{disk_full_message(folder)}: the checkpoint being written was not kept; the complete "
                "checkpoints before it are, so free some space and resume the run")
    if is_out_of_memory(exc):
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        return f"{OOM_ADVICE} ({type(exc).__name__}: {first})"
    if isinstance(exc, WorkbenchError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if folder is not None and any(_TORCH_WRITE in str(e) or "PytorchStreamWriter" in str(e) for e in _chain(exc)):
        from ..store.db import free_mb
        text += f" (writing a file under {folder} failed; {free_mb(folder):.0f} MB free on its disk)"
    return text if len(text) <= limit else text[:limit] + " ..."


# -- environment ----------------------------------------------------------------------------
def summarize_config(config: Mapping[str, Any], max_len: int = 200) -> dict:
    """The config's top-level scalar values (long strings cut), for the ``started`` event."""
    out = {}
    for key, value in config.items():
        if isinstance(value, str):
            out[key] = value if len(value) <= max_len else value[:max_len] + "..."
        elif value is None or isinstance(value, (bool, int, float)):
            out[key] = value
    return out


def _version(name: str) -> Optional[str]:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect_env() -> dict:
    """Versions, host and GPU for ``env.json``.

    GPU facts come from torch only if it is already imported: every training
    recipe's module imports it (the runner imports the recipe first), and the
    runner does not pay seconds of import for a stage that does not use it.
    """
    env: dict[str, Any] = {
        "time": time.time(),
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in ENV_PACKAGES},
        "gpu_name": None,
    }
    torch = sys.modules.get("torch")
    if torch is None:
        env["cuda"] = None  # not checked: this stage does not use torch
        return env
    try:
        cuda = torch.cuda.is_available()
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
        env["cuda"] = {"available": cuda, "version": torch.version.cuda, "devices": names}
        env["gpu_name"] = names[0] if names else None
    except Exception as e:  # noqa: BLE001 - a broken CUDA setup is the recipe's error to report
        env["cuda"] = {"error": f"{type(e).__name__}: {e}"}
    return env


# -- the job --------------------------------------------------------------------------------
def run_job(run_dir: RunDirLike, *, resume: bool = False, checkpoint: Optional[str] = None,
            registry: Optional[Mapping[str, str]] = None) -> int:
    """Run the job in ``run_dir`` in this process and return its exit status.

    A resume continues from ``checkpoint`` (``"step-N"``) when given, else from
    the newest checkpoint that verifies; each damaged one passed over is a
    ``checkpoint_damaged`` warning (see :mod:`.checkpoints`).

    Does not touch stdio or signals (see :func:`main`), so tests can call it.
    """
    rd = as_run_dir(run_dir)
    status, error, tb = "completed", None, None
    with EventWriter(rd.events) as writer:
        try:
            write_pid(rd, os.getpid())
            clear_queued(rd)
            config = rd.read_config()
            stage = config.pop("stage")
            remove_stale_temp_checkpoints(rd)
            resume_from, damaged = resume_checkpoint(rd, checkpoint) if resume else (None, [])
            rel = resume_from.relative_to(rd.path).as_posix() if resume_from else None
            # `started` goes out first so watchers see the job running at once:
            # importing a recipe (torch, trl) takes seconds.
            writer.write(StartedEvent(run_id=rd.run_id, stage=stage, pid=os.getpid(),
                                      config=summarize_config(config), resume_from=rel))
            ctx = JobContext(rd, config, stage=stage, writer=writer, resume_from=resume_from)
            for message in damaged:
                ctx.warn("checkpoint_damaged", message)
            if resume:
                ctx.log(f"resuming from {rel}" if rel else
                        "resuming: no complete checkpoint yet, starting from the beginning")
            recipe = resolve_recipe(stage, registry)
            atomic_write_json(rd.env, collect_env())
            recipe(ctx)
        except StopRequested as e:
            status, error = "cancelled", str(e) or "cancelled by request"
        except Terminated as e:
            status, error = "cancelled", str(e) or "terminated"
        except KeyboardInterrupt:
            status, error = "cancelled", "interrupted (Ctrl-C)"
        except BaseException as e:  # noqa: BLE001 - every failure must end in `finished`
            status, error, tb = "failed", describe_error(e, folder=rd.path), traceback.format_exc()
            print(tb, file=sys.stderr, flush=True)
        writer.write(FinishedEvent(status=status, error=error, traceback=tb))
    return {"completed": EXIT_COMPLETED, "failed": EXIT_FAILED,
            "cancelled": EXIT_CANCELLED}[status]


def _redirect_output(path: Path) -> None:
    # The job's own stdout/stderr (library warnings, progress bars, a crash in
    # C code) all land in stderr.log, whoever started the process.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    if sys.stdout is not None and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)


def _install_sigterm() -> None:
    state = {"seen": False}

    def on_sigterm(signum, frame):  # noqa: ARG001 - signal handler shape
        if state["seen"]:
            return  # one is enough: let the cleanup and the `finished` event go through
        state["seen"] = True
        raise Terminated("terminated (SIGTERM) after the cancel grace period")

    signal.signal(signal.SIGTERM, on_sigterm)


def main(argv: Optional[list[str]] = None) -> int:
    """Command-line entry: set the offline environment, redirect output, run the job."""
    parser = argparse.ArgumentParser(prog="python -m workbench.jobs.run",
                                     description="Run one workbench job in RUN_DIR.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint that verifies")
    parser.add_argument("--checkpoint", metavar="step-N", help="with --resume: continue from this checkpoint")
    parser.add_argument("--no-redirect", action="store_true",
                        help="keep stdout/stderr on the console instead of stderr.log")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return EXIT_USAGE if e.code else EXIT_COMPLETED
    rd = RunDir(args.run_dir.resolve())
    if not rd.config.is_file():
        print(f"{rd.path}: not a run directory (no config.yaml)", file=sys.stderr)
        return EXIT_USAGE
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    if not args.no_redirect:
        _redirect_output(rd.stderr)
    _install_sigterm()
    return run_job(rd, resume=args.resume, checkpoint=args.checkpoint)


if __name__ == "__main__":
    # Run the copy imported under its real name: under ``-m`` this file is also
    # ``__main__``, and a recipe's ``from workbench.jobs.run import StopRequested``
    # must be the class the runner catches.
    from workbench.jobs.run import main as _main

    sys.exit(_main())
