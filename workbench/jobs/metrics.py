"""Metric series of a run, fed incrementally by its events (no Qt here).

The runs page plots a run's metrics while the job writes them, and after a
GUI restart rebuilds every curve from ``events.jsonl``. This module holds
what that needs without any widget:

- :class:`MetricSeries`: one metric's points (step, wall time, value) in
  growable numpy arrays, so a million-point curve is three arrays, not a
  million Python objects; with cached, incremental EMA smoothing.
- :class:`MetricStore`: the series of one run, fed by ``metric`` and
  ``started`` events; step or time x axis; a derived ``tokens/s``; CSV export.
- :class:`RunFeed`: everything the page shows about one run (metrics,
  samples, logs, warnings, the ``finished`` event) read from its events file
  with an :class:`~workbench.jobs.events.EventTailer`, so a re-attached view
  continues exactly where the file ends: no gap, no duplicate.
- :class:`TextTail`: the tail of a growing text file (``stderr.log``), read
  incrementally.
- :func:`key_metric` and :class:`KeyMetricScanner`: the one number a run
  list shows per run (final loss, accuracy or score).

Steps that go back. A run resumed from a checkpoint after a crash reports
the steps after that checkpoint again; the later report wins. A series that
receives a step at or below its last step drops its points from that step
on before appending (see :meth:`MetricSeries.append`), so a curve never
holds two points for one step and a resumed run draws the path it really took.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from ..progress import CancelToken, ProgressFn, no_progress
from .events import (CheckpointEvent, Event, EventTailer, FinishedEvent, LogEvent, MetricEvent,
                     SamplesEvent, StartedEvent, WarningEvent)
from .rundir import EVENTS, parse_run_id

#: The x axes a store can give.
X_AXES = ("step", "time")
#: Name of the derived throughput series (from HF's cumulative ``num_tokens``).
TOKENS_PER_S = "tokens/s"


# -- smoothing ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmaState:
    """Where an EMA left off: the biased accumulator and how many finite points it has seen."""

    acc: float = 0.0
    count: int = 0


def ema(values: np.ndarray, weight: float, state: Optional[EmaState] = None
        ) -> tuple[np.ndarray, EmaState]:
    """Debiased exponential moving average of ``values`` (TensorBoard's smoothing).

    ``weight`` in ``[0, 1)``: 0 returns the values unchanged, 0.9 averages
    over roughly the last ten points. Non-finite values are skipped (their
    output is NaN and they do not poison later points: a NaN loss should
    show as a hole in the smoothed curve, not end it). ``state`` continues
    a previous call, so smoothing a growing series costs only its new points.

    Vectorised in blocks (``y_i = w^(i+1) s + (1-w) w^i sum_k x_k w^-k``) with
    blocks short enough that ``w^-k`` stays far from overflow: a million
    points take tens of milliseconds instead of a Python loop's half second.
    """
    state = state or EmaState()
    x = np.asarray(values, dtype=np.float64)
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    finite = np.isfinite(x)
    if weight == 0.0 or not len(x):
        out = np.where(finite, x, np.nan)
        n = int(finite.sum())
        last = float(x[finite][-1]) if n else state.acc
        return out, EmaState(acc=last, count=state.count + n)
    xs = x[finite]
    n = len(xs)
    if not n:
        return np.full(len(x), np.nan), state
    # Blocks of B points: within a block the recurrence is a cumsum scaled by powers of w;
    # across blocks only the carried accumulator remains, a short scalar loop.
    block = max(1, min(n, int(600.0 / -math.log(weight))))  # w^-B stays below e^600
    pw = weight ** np.arange(block + 1, dtype=np.float64)
    nb = -(-n // block)
    padded = np.zeros(nb * block)
    padded[:n] = xs
    local = (1.0 - weight) * pw[:block] * np.cumsum(padded.reshape(nb, block) / pw[:block], axis=1)
    starts = np.empty(nb)
    s = state.acc
    ends = local[:, -1].tolist()
    for j in range(nb):
        starts[j] = s
        s = pw[block] * s + ends[j]
    acc = (local + starts[:, None] * pw[1:block + 1]).reshape(-1)[:n]
    s = float(acc[-1])
    # Debias 1 / (1 - w^count): only the first ~40/-ln(w) points differ from 1.
    debiased = acc
    first = int(40.0 / -math.log(weight)) + 1 - state.count
    if first > 0:
        m = min(n, first)
        debiased = acc.copy()
        debiased[:m] /= 1.0 - weight ** (state.count + np.arange(1, m + 1, dtype=np.float64))
    out = np.full(len(x), np.nan)
    out[finite] = debiased
    return out, EmaState(acc=s, count=state.count + len(xs))


# -- one series ---------------------------------------------------------------------------------
class MetricSeries:
    """One metric's points in step order: ``steps`` (int64), ``times`` (Unix s), ``values``.

    The array properties are read-only views of the filled part (no copy):
    later appends never change the points a view already holds, but a rewind
    may overwrite them, so copy a view you keep across changes.
    ``version`` changes with every change, ``rewinds`` with every rewind
    (a step reported again), so a watcher can tell "grew" from "changed".
    Everything a redraw needs is O(1) or incremental per point added: the
    steps as floats (an x axis), whether all values are finite, the EMA.
    """

    __slots__ = ("name", "_steps", "_xs", "_times", "_values", "_n", "_nonfinite", "version", "rewinds",
                 "_smooth")

    _ARRAYS = ("_steps", "_xs", "_times", "_values")

    def __init__(self, name: str, capacity: int = 64):
        self.name = name
        self._steps = np.empty(capacity, dtype=np.int64)
        self._xs = np.empty(capacity, dtype=np.float64)  # the steps as floats, for plotting
        self._times = np.empty(capacity, dtype=np.float64)
        self._values = np.empty(capacity, dtype=np.float64)
        self._n = 0
        self._nonfinite = 0
        self.version = 0
        self.rewinds = 0
        # (weight, points smoothed, buffer, state after them)
        self._smooth: Optional[tuple[float, int, np.ndarray, EmaState]] = None

    def __len__(self) -> int:
        return self._n

    def _view(self, arr: np.ndarray) -> np.ndarray:
        v = arr[:self._n]
        v.flags.writeable = False
        return v

    @property
    def steps(self) -> np.ndarray:
        return self._view(self._steps)

    @property
    def steps_float(self) -> np.ndarray:
        """The steps as float64 (kept alongside, so an x axis costs no conversion)."""
        return self._view(self._xs)

    @property
    def times(self) -> np.ndarray:
        return self._view(self._times)

    @property
    def values(self) -> np.ndarray:
        return self._view(self._values)

    @property
    def all_finite(self) -> bool:
        """Whether no value is NaN or infinite (kept up to date: O(1))."""
        return self._nonfinite == 0

    @property
    def last_step(self) -> Optional[int]:
        return int(self._steps[self._n - 1]) if self._n else None

    def _grow(self, need: int) -> None:
        cap = len(self._steps)
        if need <= cap:
            return
        new = max(need, cap * 2)
        for attr in self._ARRAYS:
            old = getattr(self, attr)
            arr = np.empty(new, dtype=old.dtype)
            arr[:self._n] = old[:self._n]
            setattr(self, attr, arr)

    def append(self, step: int, time: float, value: float) -> None:
        """Add a point; a ``step`` at or below the last one first drops the points from
        ``step`` on (the later report of a step wins, see the module docstring)."""
        if self._n and step <= self._steps[self._n - 1]:
            self._n = int(np.searchsorted(self._steps[:self._n], step, side="left"))
            self._nonfinite = int((~np.isfinite(self._values[:self._n])).sum())
            self.rewinds += 1
            self._smooth = None
        self._grow(self._n + 1)
        i = self._n
        self._steps[i], self._xs[i], self._times[i], self._values[i] = step, step, time, value
        if not math.isfinite(value):
            self._nonfinite += 1
        self._n = i + 1
        self.version += 1

    def extend(self, steps: Sequence[int], times: Sequence[float], values: Sequence[float]) -> None:
        """Append many points (steps strictly increasing and above the last one), e.g. in a
        benchmark; use :meth:`append` for points that may repeat a step."""
        steps_a = np.asarray(steps, dtype=np.int64)
        if not len(steps_a):
            return
        if (self._n and steps_a[0] <= self._steps[self._n - 1]) or np.any(np.diff(steps_a) <= 0):
            raise ValueError(f"{self.name}: extend() needs strictly increasing new steps")
        n, m = self._n, len(steps_a)
        self._grow(n + m)
        values_a = np.asarray(values, dtype=np.float64)
        self._steps[n:n + m] = steps_a
        self._xs[n:n + m] = steps_a
        self._times[n:n + m] = np.asarray(times, dtype=np.float64)
        self._values[n:n + m] = values_a
        self._nonfinite += int((~np.isfinite(values_a)).sum())
        self._n = n + m
        self.version += 1

    def smoothed(self, weight: float) -> np.ndarray:
        """The values under :func:`ema` with ``weight``, as a read-only view.

        Cached: a grown series smooths only its new points (into a growable
        buffer, no copy of the old ones); a changed weight or a rewind starts over.
        """
        if weight <= 0.0:
            return self.values
        cached = self._smooth
        if cached is None or cached[0] != weight or cached[1] > self._n:
            cached = (weight, 0, np.empty(max(64, self._n)), EmaState())
        w, done, buf, state = cached
        if done < self._n:
            more, state = ema(self._values[done:self._n], weight, state)
            if len(buf) < self._n:
                grown = np.empty(max(self._n, 2 * len(buf)))
                grown[:done] = buf[:done]
                buf = grown
            buf[done:self._n] = more
            self._smooth = (w, self._n, buf, state)
        v = buf[:self._n]
        v.flags.writeable = False
        return v


# -- one run's metrics --------------------------------------------------------------------------
class MetricStore:
    """The metric series of one run, in first-seen order, fed by events.

    Feed it every event of the run in file order (:meth:`add`); it takes
    ``metric`` events (one point per name) and ``started`` events (the start
    time for the time axis; a new process after a resume). ``version``
    changes with every change, so a view redraws only when it must.

    Derived: ``tokens/s`` from the cumulative ``num_tokens`` HF trainers log
    (difference over wall time between two reports of the same process).
    """

    def __init__(self) -> None:
        self.series: dict[str, MetricSeries] = {}
        self.start_time: Optional[float] = None
        self.version = 0
        self._tokens_prev: Optional[tuple[float, float]] = None  # (num_tokens, time) in this process

    def __contains__(self, name: str) -> bool:
        return name in self.series and len(self.series[name]) > 0

    def names(self) -> list[str]:
        """Metric names with at least one point, first-seen order."""
        return [n for n, s in self.series.items() if len(s)]

    def get(self, name: str) -> Optional[MetricSeries]:
        s = self.series.get(name)
        return s if s is not None and len(s) else None

    def series_for(self, name: str) -> MetricSeries:
        s = self.series.get(name)
        if s is None:
            s = self.series[name] = MetricSeries(name)
        return s

    def add(self, event: Event) -> bool:
        """Take one event; returns whether the metrics changed."""
        if isinstance(event, StartedEvent):
            if self.start_time is None:
                self.start_time = event.time
            self._tokens_prev = None  # a resumed process: its counter and clock start over
            return False
        if not isinstance(event, MetricEvent):
            return False
        if self.start_time is None:
            self.start_time = event.time
        for name, value in event.values.items():
            self.series_for(name).append(event.step, event.time, value)
        tokens = event.values.get("num_tokens")
        if tokens is not None and math.isfinite(tokens):
            prev = self._tokens_prev
            if prev is not None and event.time > prev[1] and tokens >= prev[0]:
                rate = (tokens - prev[0]) / (event.time - prev[1])
                self.series_for(TOKENS_PER_S).append(event.step, event.time, rate)
            self._tokens_prev = (tokens, event.time)
        self.version += 1
        return True

    def copy(self) -> "MetricStore":
        """An independent copy (e.g. for a worker thread to export while this one grows)."""
        out = MetricStore()
        out.start_time = self.start_time
        out.version = self.version
        for name, s in self.series.items():
            c = out.series_for(name)
            if len(s):
                c.extend(s.steps, s.times, s.values)
        return out

    def x(self, name: str, axis: str = "step") -> np.ndarray:
        """The x values of ``name``: steps, or seconds since the run started."""
        s = self.series[name]
        if axis == "step":
            return s.steps_float
        if axis == "time":
            return s.times - (self.start_time if self.start_time is not None else 0.0)
        raise ValueError(f"x axis {axis!r}: expected one of {', '.join(X_AXES)}")

    def write_csv(self, out: IO[str], names: Optional[Sequence[str]] = None, *,
                  run_id: Optional[str] = None) -> int:
        """Write the metrics as CSV; returns the number of data rows.

        Wide: one row per step, one column per metric (``names``, default
        every metric); a metric not reported at a step is an empty cell, a
        NaN stays ``nan``. Columns: ``run`` (when ``run_id`` is given),
        ``step``, ``time_s`` (seconds since the run started, at the step's
        first report), then the metrics.
        """
        names = list(names if names is not None else self.names())
        writer = csv.writer(out, lineterminator="\n")
        prefix = [run_id] if run_id is not None else []
        writer.writerow((["run"] if run_id is not None else []) + ["step", "time_s"] + names)
        rows = 0
        for row in _csv_rows(self, names):
            writer.writerow(prefix + row)
            rows += 1
        return rows


def _cell(v: float) -> str:
    return repr(float(v)) if math.isfinite(v) else str(v).lower()


def _csv_rows(store: MetricStore, names: Sequence[str]) -> Iterator[list]:
    """``[step, time_s, value per name ("" where the metric has no point at that step)]``."""
    present = [n for n in names if n in store]
    if not present:
        return
    series = [store.series[n] for n in present]
    steps = np.unique(np.concatenate([s.steps for s in series]))
    first_time = np.full(len(steps), np.inf)
    cols: dict[str, np.ndarray] = {}
    for n, s in zip(present, series):
        idx = np.searchsorted(steps, s.steps)
        col = np.full(len(steps), "", dtype=object)
        col[idx] = [_cell(v) for v in s.values.tolist()]
        cols[n] = col
        np.minimum.at(first_time, idx, s.times)
    start = store.start_time if store.start_time is not None else 0.0
    for i, step in enumerate(steps.tolist()):
        yield [step, f"{first_time[i] - start:.3f}"] + [cols[n][i] if n in cols else "" for n in names]


def stores_to_csv(stores: Sequence[tuple[str, MetricStore]], names: Optional[Sequence[str]] = None) -> str:
    """CSV text of several runs' metrics (overlaid runs), one block of rows per run with a
    ``run`` column first; ``names`` defaults to every metric any run has (first-seen order)."""
    if names is None:
        names = list(dict.fromkeys(n for _rid, st in stores for n in st.names()))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["run", "step", "time_s"] + list(names))
    for run_id, store in stores:
        for row in _csv_rows(store, names):
            writer.writerow([run_id] + row)
    return buf.getvalue()


# -- a growing text file ------------------------------------------------------------------------
class TextTail:
    """The new text of a growing file (``stderr.log``), read incrementally.

    The first :meth:`read` starts about ``initial_bytes`` before the end, at a
    line boundary (a long log is not read whole to show its tail; ``skipped``
    says how many bytes were left out); later calls return what was appended,
    complete lines only, decoded leniently (a job's output can hold any
    bytes). A file that shrank is read again from its start.
    """

    def __init__(self, path: Union[str, Path], *, initial_bytes: int = 64 << 10):
        self.path = Path(path)
        self.initial_bytes = initial_bytes
        self.offset: Optional[int] = None
        self.skipped = 0
        self._align = False  # the offset may sit mid-line: drop up to the first newline

    def read(self, max_bytes: int = 1 << 20) -> str:
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return ""
        if self.offset is None:
            self.offset = self.skipped = max(0, size - self.initial_bytes)
            self._align = self.offset > 0
        if size < self.offset:
            self.offset, self._align = 0, False
        if size == self.offset:
            return ""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(max_bytes)
        if self._align:
            cut = data.find(b"\n")
            if cut < 0:
                if len(data) >= max_bytes:  # a huge partial line: skip it whole
                    self.offset += len(data)
                    self.skipped += len(data)
                return ""
            self.offset += cut + 1
            self.skipped += cut + 1
            data = data[cut + 1:]
            self._align = False
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) < max_bytes:
                return ""  # a partial line: wait for its end
            end = len(data) - 1  # a line longer than max_bytes: show it in pieces
        self.offset += end + 1
        return data[:end + 1].decode("utf-8", errors="replace")


# -- everything about one run -------------------------------------------------------------------
@dataclass
class FeedUpdate:
    """What one :meth:`RunFeed.poll` brought in."""

    events: int = 0
    metrics: bool = False
    samples: list = field(default_factory=list)  # new SamplesEvent objects
    logs: list = field(default_factory=list)  # new LogEvent objects
    warnings: list = field(default_factory=list)  # new WarningEvent objects
    status: bool = False  # a started or finished event arrived

    def merge(self, other: "FeedUpdate") -> None:
        self.events += other.events
        self.metrics |= other.metrics
        self.samples.extend(other.samples)
        self.logs.extend(other.logs)
        self.warnings.extend(other.warnings)
        self.status |= other.status

    def __bool__(self) -> bool:
        return bool(self.events)


class RunFeed:
    """What the runs page shows about one run, fed from its events file.

    Call :meth:`poll` on a timer: it reads only what was appended since the
    last call (one ``stat`` when nothing changed) and updates :attr:`store`,
    :attr:`samples`, :attr:`logs`, :attr:`warnings`, :attr:`finished`.
    :meth:`catch_up` reads everything there is (for the first read of a long
    run, off the GUI thread). Not thread-safe: one thread at a time.
    """

    #: Log events kept (the oldest go first).
    MAX_LOGS = 5000
    #: Samples events kept (the oldest go first); each holds a few rows.
    MAX_SAMPLES = 2000

    def __init__(self, run_dir: Union[str, Path]):
        self.path = Path(run_dir)
        self.run_id = self.path.name
        parsed = parse_run_id(self.run_id)
        self.stage: Optional[str] = parsed[1] if parsed else None
        self.tailer = EventTailer(self.path / EVENTS)
        self.store = MetricStore()
        self.samples: deque[SamplesEvent] = deque(maxlen=self.MAX_SAMPLES)
        self.logs: deque[LogEvent] = deque(maxlen=self.MAX_LOGS)
        self.warnings: list[WarningEvent] = []
        self.checkpoints: list[CheckpointEvent] = []
        self.started: list[StartedEvent] = []
        self.finished: Optional[FinishedEvent] = None
        self.events_read = 0

    @property
    def errors(self) -> list[str]:
        """Malformed lines skipped so far (``events.jsonl:LINE: message``)."""
        return self.tailer.errors

    @property
    def offset(self) -> int:
        """Bytes of the events file consumed so far."""
        return self.tailer.offset

    def poll(self, max_bytes: int = 256 << 10) -> FeedUpdate:
        """Read the events appended since the last call (about ``max_bytes`` at most)."""
        return self._take(self.tailer.read(max_bytes))

    def catch_up(self, progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None,
                 chunk: int = 4 << 20, pause_s: float = 0.0) -> FeedUpdate:
        """Read the whole file as it is now, reporting progress by bytes (for a worker thread).

        ``pause_s``: sleep that long after each ``chunk`` bytes. Decoding is pure
        Python and holds the GIL; a GUI thread that needs it back (after every call
        into Qt) waits up to the interpreter's switch interval each time, so a
        worker decoding flat out makes the window stutter. Short pauses between
        small chunks let the GUI thread run freely in between.
        """
        total = FeedUpdate()
        try:
            size = os.stat(self.tailer.path).st_size
        except FileNotFoundError:
            size = 0
        while True:
            if cancel is not None:
                cancel.raise_if_cancelled()
            before = self.tailer.offset
            total.merge(self._take(self.tailer.read(chunk)))
            if size:
                progress(min(1.0, self.tailer.offset / size), f"read {self.tailer.offset:,} of {size:,} bytes")
            if self.tailer.offset == before:
                return total
            if pause_s > 0:
                time.sleep(pause_s)

    def _take(self, events: list[Event]) -> FeedUpdate:
        upd = FeedUpdate(events=len(events))
        for ev in events:
            if isinstance(ev, MetricEvent):
                upd.metrics |= self.store.add(ev)
            elif isinstance(ev, SamplesEvent):
                self.samples.append(ev)
                upd.samples.append(ev)
            elif isinstance(ev, LogEvent):
                self.logs.append(ev)
                upd.logs.append(ev)
            elif isinstance(ev, WarningEvent):
                self.warnings.append(ev)
                upd.warnings.append(ev)
            elif isinstance(ev, CheckpointEvent):
                self.checkpoints.append(ev)
            elif isinstance(ev, StartedEvent):
                self.store.add(ev)
                self.started.append(ev)
                self.stage = ev.stage
                self.finished = None  # a resumed process: the run is live again
                upd.status = True
            elif isinstance(ev, FinishedEvent):
                self.finished = ev
                upd.status = True
        self.events_read += len(events)
        return upd


# -- the number a run list shows ----------------------------------------------------------------
#: Per stage, the metrics whose last value sums a run up, best first (the first one present wins),
#: with the label the run list shows.
KEY_METRICS: dict[str, tuple[tuple[str, str], ...]] = {
    "sft": (("eval_loss", "eval loss"), ("loss", "loss")),
    "reward": (("eval/accuracy", "accuracy"), ("eval_accuracy", "accuracy"), ("accuracy", "train acc.")),
    "ppo": (("eval/score", "eval score"), ("objective/scores", "score"), ("objective/rlhf_reward", "RLHF reward")),
    "dpo": (("eval_rewards/accuracies", "accuracy"), ("rewards/accuracies", "train acc."), ("loss", "loss")),
}
_FALLBACK_KEYS = (("loss", "loss"),)


def key_metric(stage: Optional[str], last_values: dict[str, float]) -> Optional[tuple[str, float]]:
    """``(label, value)`` summing up a run from its metrics' last values, or ``None``."""
    for name, label in KEY_METRICS.get(stage or "", ()) + _FALLBACK_KEYS:
        if name in last_values:
            return label, last_values[name]
    return None


def format_key_metric(found: Optional[tuple[str, float]]) -> str:
    if found is None:
        return ""
    label, value = found
    if not math.isfinite(value):
        return f"{label} {value}"
    return f"{label} {value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{label} {value:.2e}"


class KeyMetricScanner:
    """Last metric values of many runs, read incrementally (for a run list).

    :meth:`scan` reads each run's events appended since the previous scan
    (a ``stat`` per run when nothing changed), keeping only the last value
    of each metric. The first scan of a run reads only the last
    :attr:`TAIL_BYTES` of its events file (the last values are there; a
    metric last reported before that window is not seen, and the next key
    metric in :data:`KEY_METRICS` is shown instead). Call it off the GUI
    thread. Not thread-safe: one scan at a time.
    """

    #: How much of a long events file the first scan reads (from the end).
    TAIL_BYTES = 256 << 10

    def __init__(self) -> None:
        self._tailers: dict[str, EventTailer] = {}
        self._last: dict[str, dict[str, float]] = {}
        self._stage: dict[str, Optional[str]] = {}

    def scan(self, run_dirs: Iterable[Union[str, Path]], cancel: Optional[CancelToken] = None
             ) -> dict[str, Optional[tuple[str, float]]]:
        """``{run_id: (label, value) or None}`` for ``run_dirs``; forgets runs not listed."""
        out: dict[str, Optional[tuple[str, float]]] = {}
        seen = set()
        for rd in run_dirs:
            path = Path(rd)
            run_id = path.name
            seen.add(run_id)
            if cancel is not None:
                cancel.raise_if_cancelled()
            tailer = self._tailers.get(run_id)
            if tailer is None:
                tailer = self._tailers[run_id] = EventTailer(path / EVENTS)
                tailer.offset = _line_start_near_end(tailer.path, self.TAIL_BYTES)
                parsed = parse_run_id(run_id)
                self._stage[run_id] = parsed[1] if parsed else None
                self._last[run_id] = {}
            last = self._last[run_id]
            for ev in _drain(tailer):
                if isinstance(ev, MetricEvent):
                    last.update(ev.values)
                elif isinstance(ev, StartedEvent):
                    self._stage[run_id] = ev.stage
            out[run_id] = key_metric(self._stage[run_id], last)
        for gone in set(self._tailers) - seen:
            del self._tailers[gone], self._last[gone], self._stage[gone]
        return out


def _line_start_near_end(path: Path, nbytes: int) -> int:
    """The offset of the first line that starts in the last ``nbytes`` of ``path`` (0 if shorter)."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return 0
    if size <= nbytes:
        return 0
    with open(path, "rb") as f:
        f.seek(size - nbytes - 1)
        data = f.read(nbytes + 1)
    cut = data.find(b"\n")
    return size if cut < 0 else size - nbytes - 1 + cut + 1


def _drain(tailer: EventTailer) -> Iterator[Event]:
    while True:
        before = tailer.offset
        yield from tailer.read()
        if tailer.offset == before:
            return
