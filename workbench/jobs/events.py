"""Typed job events and their one-JSON-object-per-line file format.

A job process reports everything it does as small typed events appended to
``RUN_DIR/events.jsonl`` (DESIGN.md section 3). The GUI and the CLI tail that
file; nothing else passes between a job and its watchers, so a restarted GUI
re-attaches by reading the file from the start.

Each event is a frozen dataclass whose class attribute ``type`` is the tag
written as the ``"type"`` key of its JSON line::

    {"type": "metric", "step": 12, "values": {"loss": 1.93}, "time": 1795400000.1}

Non-finite floats. JSON has no NaN or Infinity, and a NaN loss is exactly what
a user needs to see, so fields declared as floats (metric values, sample
scores) carry them as the strings ``"NaN"``, ``"Infinity"`` and
``"-Infinity"``. :func:`decode` turns those strings back into floats in
those fields only, so the round trip is exact and a log message that reads
"NaN" stays a string. Free-form dictionaries (the config summary in
:class:`StartedEvent`) are plain JSON data: a non-finite float there is
written as its string name and read back as that string.

Durability. :class:`EventWriter` flushes and fsyncs after every event: jobs
emit a few events per training step at most, an fsync costs about a
millisecond, and the events file is the durable record of the run (a metric
lost in a crash would be a hole in the curve the user is looking at).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Mapping, Optional, Union

from ..errors import WorkbenchError, short_repr

#: Levels a :class:`LogEvent` may carry.
LOG_LEVELS = ("debug", "info", "warning", "error")
#: Kinds of :class:`SamplesEvent`: training rollouts, or completions on the eval prompts.
SAMPLE_KINDS = ("train", "eval")
#: Final statuses a :class:`FinishedEvent` may carry.
FINISHED_STATUSES = ("completed", "cancelled", "failed")

_NONFINITE_NAMES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

#: Deepest nesting of objects and lists an event line may have. Our events nest a
#: few levels; a deeper line (corrupt or hostile) would make every reader of the
#: file recurse (``RecursionError`` in ``runs list``), so it is a bad line instead.
MAX_EVENT_DEPTH = 32


class EventDecodeError(WorkbenchError):
    """A line of an events file is not a valid event."""


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class StartedEvent:
    """The job process is up and has read its config.

    ``config`` is a summary (the config's top-level scalar values), enough to
    label the run in a list; the full config is ``config.yaml``.
    ``resume_from`` is the checkpoint path (relative to the run dir) a
    resumed run continues from, or ``None``.
    """

    type: ClassVar[str] = "started"
    run_id: str
    stage: str
    pid: int
    config: dict = field(default_factory=dict)
    resume_from: Optional[str] = None
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class MetricEvent:
    """Scalar metrics at one optimizer step, e.g. ``{"objective/kl": 0.8}``."""

    type: ClassVar[str] = "metric"
    step: int
    values: dict
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class SamplesEvent:
    """A few generated samples at one step.

    Each row is a dict with ``prompt`` (str), ``response`` (str) and
    ``score`` (float, or ``None`` when the stage does not score). ``kind``
    (one of :data:`SAMPLE_KINDS`) tells the training rollouts' samples from
    the completions on the held-out eval prompts; lines written before it
    existed read as ``"train"``.
    """

    type: ClassVar[str] = "samples"
    step: int
    rows: list
    kind: str = "train"
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class CheckpointEvent:
    """A complete checkpoint was committed; ``path`` is relative to the run dir."""

    type: ClassVar[str] = "checkpoint"
    step: int
    path: str
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class LogEvent:
    """A line of text for the run's log view; ``level`` is one of :data:`LOG_LEVELS`."""

    type: ClassVar[str] = "log"
    level: str
    message: str
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class WarningEvent:
    """Something the user should look at, with a stable ``code`` the GUI can key on
    (e.g. ``"nan_loss"``, ``"kl_high"``); ``step`` is ``None`` outside training steps."""

    type: ClassVar[str] = "warning"
    code: str
    message: str
    step: Optional[int] = None
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class FinishedEvent:
    """The job ended; ``status`` is one of :data:`FINISHED_STATUSES`.

    ``error`` is the one-line message for the user (``None`` when completed);
    ``traceback`` is the formatted Python traceback of a failure, if any.
    """

    type: ClassVar[str] = "finished"
    status: str
    error: Optional[str] = None
    traceback: Optional[str] = None
    time: float = field(default_factory=_now)


Event = Union[StartedEvent, MetricEvent, SamplesEvent, CheckpointEvent, LogEvent,
              WarningEvent, FinishedEvent]

#: Event classes by their ``type`` tag.
EVENT_TYPES: dict[str, type] = {cls.type: cls for cls in (
    StartedEvent, MetricEvent, SamplesEvent, CheckpointEvent, LogEvent, WarningEvent,
    FinishedEvent)}


# -- encoding ------------------------------------------------------------------------------
def _float_out(value: Any) -> Union[float, str, None]:
    """A float-typed field as JSON: finite floats as numbers, the others by name."""
    if value is None:
        return None
    x = float(value)  # also takes numpy scalars and 0-d tensors a recipe hands us
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def _plain(value: Any) -> Any:
    """Free-form data as strict JSON: non-finite floats become their string names."""
    if isinstance(value, float) and not math.isfinite(value):
        return _float_out(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _sample_row_out(row: Mapping) -> dict:
    out = _plain(dict(row))
    out["score"] = _float_out(row.get("score"))
    return out


def to_dict(event: Event) -> dict:
    """The event as a JSON-ready dict, ``type`` first."""
    out: dict[str, Any] = {"type": event.type}
    for f in fields(event):
        out[f.name] = getattr(event, f.name)
    if isinstance(event, MetricEvent):
        out["values"] = {str(k): _float_out(v) for k, v in event.values.items()}
    elif isinstance(event, SamplesEvent):
        out["rows"] = [_sample_row_out(r) for r in event.rows]
    return _plain(out)


def encode(event: Event) -> str:
    """One JSON line (without the trailing newline) for ``event``.

    ASCII-only on purpose: model outputs can hold lone surrogates that UTF-8
    cannot encode, and ``\\u`` escapes keep every event writable.
    """
    return json.dumps(to_dict(event), ensure_ascii=True, allow_nan=False, separators=(",", ":"))


# -- decoding ------------------------------------------------------------------------------
def _float_in(value: Any, what: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool):
        raise EventDecodeError(f"{what}: expected a number, got a boolean")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value in _NONFINITE_NAMES:
        return _NONFINITE_NAMES[value]
    raise EventDecodeError(f"{what}: expected a number, got {short_repr(value)}")


def _int_in(value: Any, what: str, *, optional: bool = False) -> Optional[int]:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventDecodeError(f"{what}: expected an integer, got {short_repr(value)}")
    return value


def _str_in(value: Any, what: str, *, optional: bool = False) -> Optional[str]:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise EventDecodeError(f"{what}: expected a string, got {short_repr(value)}")
    return value


def from_dict(data: Mapping) -> Event:
    """The event a :func:`to_dict` dict describes; unknown extra keys are ignored
    (a newer writer may add fields), missing or mistyped ones raise."""
    tag = data.get("type")
    cls = EVENT_TYPES.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise EventDecodeError(f"unknown event type {short_repr(tag)}; known: {', '.join(EVENT_TYPES)}")
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in data:
            kwargs[f.name] = data[f.name]
    missing = [f.name for f in fields(cls) if f.name not in kwargs
               and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise EventDecodeError(f"{tag} event: missing field(s) {', '.join(missing)}")
    where = f"{tag} event"
    if "time" in kwargs:
        kwargs["time"] = _float_in(kwargs["time"], f"{where}: time")
    if cls is StartedEvent:
        _str_in(kwargs["run_id"], f"{where}: run_id")
        _str_in(kwargs["stage"], f"{where}: stage")
        _int_in(kwargs["pid"], f"{where}: pid")
        if not isinstance(kwargs.get("config", {}), dict):
            raise EventDecodeError(f"{where}: config: expected an object")
        _str_in(kwargs.get("resume_from"), f"{where}: resume_from", optional=True)
    elif cls is MetricEvent:
        _int_in(kwargs["step"], f"{where}: step")
        values = kwargs["values"]
        if not isinstance(values, dict):
            raise EventDecodeError(f"{where}: values: expected an object of name -> number")
        kwargs["values"] = {k: _float_in(v, f"{where}: values[{short_repr(k)}]") for k, v in values.items()}
    elif cls is SamplesEvent:
        _int_in(kwargs["step"], f"{where}: step")
        rows = kwargs["rows"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise EventDecodeError(f"{where}: rows: expected a list of objects")
        kwargs["rows"] = [{**r, "score": _float_in(r.get("score"), f"{where}: rows[{i}].score")}
                          for i, r in enumerate(rows)]
        if kwargs.get("kind", "train") not in SAMPLE_KINDS:
            raise EventDecodeError(f"{where}: kind: expected one of {', '.join(SAMPLE_KINDS)}, "
                                   f"got {short_repr(kwargs['kind'])}")
    elif cls is CheckpointEvent:
        _int_in(kwargs["step"], f"{where}: step")
        _str_in(kwargs["path"], f"{where}: path")
    elif cls is LogEvent:
        _str_in(kwargs["level"], f"{where}: level")
        _str_in(kwargs["message"], f"{where}: message")
    elif cls is WarningEvent:
        _str_in(kwargs["code"], f"{where}: code")
        _str_in(kwargs["message"], f"{where}: message")
        _int_in(kwargs.get("step"), f"{where}: step", optional=True)
    elif cls is FinishedEvent:
        if kwargs["status"] not in FINISHED_STATUSES:
            raise EventDecodeError(f"{where}: status: expected one of "
                                   f"{', '.join(FINISHED_STATUSES)}, got {short_repr(kwargs['status'])}")
        _str_in(kwargs.get("error"), f"{where}: error", optional=True)
        _str_in(kwargs.get("traceback"), f"{where}: traceback", optional=True)
    return cls(**kwargs)


def _too_deep(data: Any) -> bool:
    """Whether parsed JSON nests objects/lists deeper than :data:`MAX_EVENT_DEPTH`
    (walked with a stack: checking by recursion would itself overflow)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_EVENT_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def decode(line: Union[str, bytes]) -> Event:
    """The event on one line of an events file.

    Raises :class:`EventDecodeError` (with what is wrong) for a line that is not
    JSON, not an object, nested deeper than :data:`MAX_EVENT_DEPTH`, of an
    unknown type, or missing a field.
    """
    too_deep = EventDecodeError(f"nested deeper than {MAX_EVENT_DEPTH} levels")
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError) as e:
        raise EventDecodeError(f"not a JSON line: {e}") from None
    except RecursionError:  # the C parser's own depth limit (about 1,000 levels)
        raise too_deep from None
    if _too_deep(data):
        raise too_deep
    if not isinstance(data, dict):
        raise EventDecodeError(f"expected a JSON object, got {type(data).__name__}")
    return from_dict(data)


# -- files ---------------------------------------------------------------------------------
class EventWriter:
    """Appends events to an events file, one line each, written unbuffered.

    Every write reaches the OS before :meth:`write` returns, so a killed job
    loses nothing. ``fsync`` (against an OS crash or power loss) is immediate
    for the events that matter on their own (started, checkpoint, warning,
    log, finished) and at most every :attr:`METRIC_FSYNC_S` seconds for
    metric and samples events: an fsync per training step cost ~0.35 ms and
    occasional 100+ ms stalls inside tiny-model steps
    (``benchmarks/sft_overhead.py``).

    Only the job process writes its events file (the supervisor appends a
    closing event only after the process is gone). If the file ends in a torn
    line (the previous writer was killed mid-write), a newline is added first
    so the torn line stays a single malformed line that readers skip, instead
    of swallowing the next event.
    """

    #: Longest time a metric or samples event waits for its fsync.
    METRIC_FSYNC_S = 1.0

    def __init__(self, path: Union[str, Path], *, fsync: bool = True):
        self.path = Path(path)
        self.fsync = fsync
        self._last_sync = 0.0
        self._f = open(self.path, "ab", buffering=0)
        size = self._f.seek(0, os.SEEK_END)
        if size:
            with open(self.path, "rb") as r:
                r.seek(size - 1)
                if r.read(1) != b"\n":
                    self._write(b"\n")

    def _write(self, data: bytes, *, sync: bool = True) -> None:
        view = memoryview(data)
        while view:
            n = self._f.write(view)
            view = view[n:]
        now = time.monotonic()
        if self.fsync and (sync or now - self._last_sync >= self.METRIC_FSYNC_S):
            os.fsync(self._f.fileno())
            self._last_sync = now

    def write(self, event: Event) -> None:
        """Append ``event``; fsync it now unless it is a frequent metric or samples event."""
        frequent = isinstance(event, (MetricEvent, SamplesEvent))
        self._write(encode(event).encode("ascii") + b"\n", sync=not frequent)

    def close(self) -> None:
        if self.fsync and not self._f.closed:
            os.fsync(self._f.fileno())  # whatever metric lines are still unsynced
        self._f.close()

    def __enter__(self) -> "EventWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def append_event(path: Union[str, Path], event: Event) -> None:
    """Append one event to ``path`` (opens and closes the file)."""
    with EventWriter(path) as w:
        w.write(event)


class EventTailer:
    """Reads the events appended to a file since the last call.

    :meth:`read` returns only complete lines: a partially written last line is
    left for a later call, and the byte offset of the first unread byte is
    kept in :attr:`offset`. When nothing changed, a call costs one ``stat``.
    Malformed lines are skipped and described in :attr:`errors` (as
    ``"events.jsonl:LINE: message"``), so one torn line from a killed job never
    stops a watcher. A missing file reads as empty; a file that shrank (was
    replaced) is read again from the start.
    """

    #: At most this many error descriptions are kept.
    MAX_ERRORS = 100

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        self.offset = 0
        self.line_no = 0  # complete lines consumed so far
        self.errors: list[str] = []

    def read(self, max_bytes: int = 8 << 20) -> list[Event]:
        """New complete events since the last call, reading about ``max_bytes`` at most
        (a watcher catches up on a long file over several calls; a single line
        longer than that is still read whole)."""
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return []
        if size < self.offset:
            self.offset, self.line_no = 0, 0
        if size == self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(max_bytes)
            while b"\n" not in data and len(data) >= max_bytes:
                more = f.read(max_bytes)
                if not more:
                    break
                data += more
        end = data.rfind(b"\n")
        if end < 0:
            return []  # only a partial line so far
        self.offset += end + 1
        events: list[Event] = []
        for raw in data[:end].split(b"\n"):
            self.line_no += 1
            raw = raw.strip()
            if not raw:
                continue
            try:
                events.append(decode(raw))
            except EventDecodeError as e:
                if len(self.errors) < self.MAX_ERRORS:
                    self.errors.append(f"{self.path.name}:{self.line_no}: {e}")
        return events


def read_events(path: Union[str, Path]) -> list[Event]:
    """All complete, valid events in ``path`` (see :class:`EventTailer`)."""
    tailer = EventTailer(path)
    out: list[Event] = []
    while True:
        before = tailer.offset
        out.extend(tailer.read())
        if tailer.offset == before:
            return out
