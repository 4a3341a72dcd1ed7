"""Runs page responsiveness: event-loop stalls while a job streams metrics, and 1M-point redraws.

1. **Stall while tailing.** A real writer process (``EventWriter``, the job's own
   writer, fsync policy included) appends PPO-shaped events to a run's
   ``events.jsonl``: ``--rate`` metric events a second (default 50), each with
   the PPO engine's 19 metrics, plus a ``samples`` event of 16 rows every 10
   steps and a ``log`` line every 100. The run folder holds ``--history``
   steps already (default 5000: a long run re-attached, its first read on a
   worker thread). A standalone :class:`ui.training.runs.RunsPanel` (its own
   ``JobMonitor``, its real timer, plots, health rules, samples table and log
   console) shows the run while it grows for ``--seconds``. A 5 ms
   ``QTimer`` latency probe on the GUI thread records how late each tick
   fires; a stall is that lateness. Reported: p50 / p99 / max stall (ms)
   over the whole window (the headline), and split into the attach phase
   (until one second after the first read of the history is done: that
   read, the page's own ``JobMonitor`` reading the whole file once, and
   building the plots) and the steady phase (tailing and redrawing only);
   the worst stalls with when they happened; and the points the plots hold
   at the end against the steps written (the panel must keep up, not skip).

2. **1M-point redraw.** One :class:`ui.training.plots.MetricPlotView`
   (600x400) over a series of 1,000,000 points: each round appends one
   point (a live run growing), re-sets the curve (``setData``) and repaints
   synchronously (``repaint()``: peak downsampling, clip-to-view); the
   median of ``--rounds`` rounds counts. Reported without smoothing (the
   headline) and with EMA smoothing on (raw + smoothed curve).

Runs offscreen unless ``QT_QPA_PLATFORM`` says otherwise. The last line is
one JSON object ``{"stall_p99_ms": ..., "redraw_ms": ...}`` (targets: stall
p99 < 50 ms, redraw < 10 ms)::

    python benchmarks/training_panel.py [--seconds 20] [--rate 50] [--history 5000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: The PPO engine's metric names (``workbench.train.ppo.METRIC_NAMES``; that module imports torch).
PPO_METRICS = ("objective/kl", "objective/kl_k3", "objective/entropy", "objective/non_score_reward",
               "objective/rlhf_reward", "objective/scores", "policy/approxkl_avg", "policy/clipfrac_avg",
               "policy/entropy_avg", "loss/policy_avg", "loss/value_avg", "val/clipfrac_avg", "val/ratio",
               "val/num_eos_tokens", "response/length_mean", "lr", "kl_coef", "time/step_s", "eps")

WRITER = textwrap.dedent("""
    import math, random, sys, time
    from workbench.jobs.events import EventWriter, LogEvent, MetricEvent, SamplesEvent, StartedEvent
    path, first, history, rate, seconds = sys.argv[1], 1, int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    names = sys.argv[5].split(",")
    rng = random.Random(0)

    def values(step):
        return {n: math.sin(step / (50 + i)) + rng.random() * 0.1 + i for i, n in enumerate(names)}

    def emit(w, step, t):
        w.write(MetricEvent(step=step, values=values(step), time=t))
        if step % 10 == 0:
            w.write(SamplesEvent(step=step, rows=[{"prompt": f"Tell me about topic {k}.",
                                                   "response": "good kind warm " * 4, "score": rng.random()}
                                                  for k in range(16)], time=t))
        if step % 100 == 0:
            w.write(LogEvent(level="info", message=f"step {step}", time=t))

    with EventWriter(path) as w:
        t0 = time.time() - history / rate
        w.write(StartedEvent(run_id="bench", stage="ppo", pid=0, time=t0))
        for step in range(1, history + 1):
            emit(w, step, t0 + step / rate)
        print("ready", flush=True)
        sys.stdin.readline()  # go
        start = time.perf_counter()
        step = history
        while time.perf_counter() - start < seconds:
            step += 1
            emit(w, step, time.time())
            delay = start + (step - history) / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        print(step, flush=True)
""")


def percentile(xs, q) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else 0.0


def stall_benchmark(app, seconds: float, rate: float, history: int) -> dict:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer

    from ui.training.runs import RunsPanel
    from workbench.jobs.rundir import new_run_dir, write_pid

    tmp = Path(tempfile.mkdtemp(prefix="bench-runs-"))
    rd = new_run_dir(tmp / "ws" / "runs", "ppo", {"note": "benchmark writer"})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(rd.events), str(history), str(rate), str(seconds),
                               ",".join(PPO_METRICS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=env)
    assert writer.stdout.readline().strip() == "ready"
    write_pid(rd, writer.pid)  # the supervisor sees a live job process: status "running"

    panel = RunsPanel()
    panel.resize(1280, 800)
    panel.show()
    stalls: list[float] = []
    stamps: list[float] = []  # when each probe fired (s since the panel opened)
    clock = QElapsedTimer()
    interval = 5
    probe = QTimer()
    probe.setTimerType(Qt.TimerType.PreciseTimer)
    probe.setInterval(interval)
    last = [0]

    def on_probe():
        now = clock.nsecsElapsed()
        if last[0]:
            stalls.append(max(0.0, (now - last[0]) / 1e6 - interval))
            stamps.append(time.perf_counter() - t_open)
        last[0] = now

    probe.timeout.connect(on_probe)
    t_open = time.perf_counter()
    clock.start()
    probe.start()
    panel.set_workspace(tmp / "ws")  # re-attach: the history is read on a worker thread
    writer.stdin.write("go\n")
    writer.stdin.flush()
    loaded_at = [None]

    def held() -> int:
        view = panel.plots.view_for("objective/kl")
        return view.point_count(rd.run_id, "objective/kl") if view is not None else 0

    def on_check():
        w = panel.watch_for(rd.run_id)
        if loaded_at[0] is None and w is not None and w.loaded:
            loaded_at[0] = time.perf_counter() - t_open

    check = QTimer()
    check.setInterval(50)
    check.timeout.connect(on_check)
    check.start()
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()  # a real event loop: the panel's timers, workers' signals, paints
    final_step = int(writer.stdout.readline())
    writer.wait(10)
    # Let the panel take in the last events (up to 3 s), then count what it holds.
    deadline = time.perf_counter() + 3
    while held() != final_step and time.perf_counter() < deadline:
        loop = QEventLoop()
        QTimer.singleShot(50, loop.quit)
        loop.exec()
    probe.stop()
    check.stop()
    loaded_at = loaded_at[0]
    held = held()
    redraws = panel.plots.redraws
    samples = panel.samples_view.shown_step
    panel.shutdown()
    panel.close()
    app.processEvents()
    settled = loaded_at + 1.0 if loaded_at is not None else 0.0
    steady = [s for s, t in zip(stalls, stamps) if t >= settled]
    attach = [s for s, t in zip(stalls, stamps) if t < settled]
    return {"stall_p50_ms": percentile(stalls, 50), "stall_p99_ms": percentile(stalls, 99),
            "steady_p99_ms": percentile(steady, 99), "steady_max_ms": max(steady) if steady else 0.0,
            "attach_p99_ms": percentile(attach, 99), "attach_max_ms": max(attach) if attach else 0.0,
            "worst": sorted(((round(st, 1), round(t, 2)) for st, t in zip(stalls, stamps)), reverse=True)[:5],
            "stall_max_ms": max(stalls) if stalls else 0.0, "probes": len(stalls),
            "steps_written": final_step, "points_held": held, "redraws": redraws,
            "first_read_s": loaded_at, "latest_samples_step": samples,
            "events_bytes": rd.events.stat().st_size}


def redraw_benchmark(app, n: int, rounds: int) -> dict:
    from PySide6.QtGui import QPalette

    from ui.training.plots import MetricPlotView, PlotSpec
    from workbench.jobs.metrics import RunFeed

    feed = RunFeed(Path(tempfile.mkdtemp(prefix="bench-feed-")) / "run")
    series = feed.store.series_for("objective/kl")
    rng = np.random.default_rng(0)
    steps = np.arange(1, n + 1)
    series.extend(steps, steps * 0.5, np.cumsum(rng.normal(size=n)))
    feed.store.start_time = 0.0
    view = MetricPlotView(PlotSpec("KL", (("objective/kl", "k1"),)))
    view.resize(600, 400)
    view.show()
    app.processEvents()
    colours = [view.palette().color(QPalette.ColorRole.Highlight)]
    out = {}
    for label, smoothing in (("raw", 0.0), ("smoothed", 0.9)):
        times = []
        for i in range(rounds + 2):
            step = n + 1 + i + (0 if label == "raw" else rounds + 2)
            series.append(step, step * 0.5, float(rng.normal()))
            t = time.perf_counter()
            changed = view.update_curves([feed], colours, smoothing, "step")
            view.plot_widget.repaint()
            dt = (time.perf_counter() - t) * 1000
            assert changed, "the curve was not re-set"
            if i >= 2:  # the first rounds build caches (and the smoothed array)
                times.append(dt)
        out[label] = {"median_ms": percentile(times, 50), "max_ms": max(times)}
    out["points"] = view.point_count(feed.run_id, "objective/kl")
    view.close()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=50.0, help="metric events per second")
    parser.add_argument("--history", type=int, default=5000, help="steps already in the file")
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    print(f"platform: {app.platformName()}")
    stall = stall_benchmark(app, args.seconds, args.rate, args.history)
    print(f"tailing {args.rate:g} PPO metric events/s for {args.seconds:g} s over {args.history} steps of history:")
    print(f"  first read (worker thread): {stall['first_read_s']:.2f} s of a {stall['events_bytes'] / 1e6:.1f} MB file")
    print(f"  event-loop stall p50 {stall['stall_p50_ms']:.2f} ms, p99 {stall['stall_p99_ms']:.2f} ms, "
          f"max {stall['stall_max_ms']:.1f} ms over {stall['probes']} probes")
    print(f"  after the first read + 1 s: p99 {stall['steady_p99_ms']:.2f} ms, max {stall['steady_max_ms']:.1f} ms; "
          f"before: p99 {stall['attach_p99_ms']:.2f} ms, max {stall['attach_max_ms']:.1f} ms")
    print(f"  worst stalls (ms, at s after opening): {stall['worst']}")
    print(f"  plots hold {stall['points_held']} of {stall['steps_written']} steps after {stall['redraws']} redraws; "
          f"samples table at step {stall['latest_samples_step']}")
    redraw = redraw_benchmark(app, args.points, args.rounds)
    print(f"redraw of a {redraw['points']:,}-point curve (append 1, setData, repaint), median of {args.rounds}:")
    print(f"  raw {redraw['raw']['median_ms']:.2f} ms (max {redraw['raw']['max_ms']:.2f}); "
          f"with smoothing {redraw['smoothed']['median_ms']:.2f} ms (max {redraw['smoothed']['max_ms']:.2f})")
    ok = stall["points_held"] == stall["steps_written"]
    print(json.dumps({"stall_p99_ms": round(stall["stall_p99_ms"], 2), "redraw_ms": round(redraw["raw"]["median_ms"], 2),
                      "stall_max_ms": round(stall["stall_max_ms"], 2),
                      "redraw_smoothed_ms": round(redraw["smoothed"]["median_ms"], 2),
                      "kept_up": ok, "steps_written": stall["steps_written"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
