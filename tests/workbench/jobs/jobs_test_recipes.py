"""Recipes for the job tests, registered through ``$WORKBENCH_EXTRA_RECIPES``.

They import no torch, so a test job starts in a fraction of a second. Every
loop is bounded (60 s) so a failing test never leaves a process spinning.
"""

from __future__ import annotations

import json
import os
import signal
import time

from workbench.jobs.run import OFFLINE_ENV, StopRequested

LIMIT_S = 60.0


def fail(ctx):
    ctx.log("about to fail")
    raise RuntimeError("boom from a test recipe")


def oom(ctx):
    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 23.65 GiB total)")


def report_env(ctx):
    ctx.log(json.dumps({"env": {k: os.environ.get(k) for k in OFFLINE_ENV}, "cwd": os.getcwd()}))


def report_all(ctx):
    """One event of each kind a recipe can emit."""
    ctx.metric(1, {"objective/kl": 0.5, "loss": float("nan")}, lr=1e-4)
    ctx.samples(1, [{"prompt": "p", "response": "r", "score": float("-inf")},
                    {"prompt": "q", "response": "s", "score": None}])
    ctx.warn("kl_high", "KL is high", step=1)
    with ctx.checkpoint(1) as d:
        (d / "weights.txt").write_text("w")
    ctx.log("done", level="debug")


def steps(ctx):
    """Count ``n_steps`` steps of ``step_s`` seconds; checkpoint every ``every`` steps
    and on cancel (keeping ``keep`` of them, 0: all); resume after the checkpoint's step."""
    n, step_s, every = int(ctx.config.get("n_steps", 10)), float(ctx.config.get("step_s", 0.05)), \
        int(ctx.config.get("every", 0))
    ctx.keep_checkpoints = int(ctx.config.get("keep", 0))
    first = 0
    if ctx.resume_from is not None:
        first = int((ctx.resume_from / "step.txt").read_text()) + 1
    for step in range(first, n):
        if ctx.should_stop():
            if step > first:  # save what was done since the start (or the resume)
                with ctx.checkpoint(step - 1) as d:
                    (d / "step.txt").write_text(str(step - 1))
            raise StopRequested("stopped at a step boundary")
        ctx.metric(step, loss=1.0 / (step + 1))
        if every and step % every == every - 1:
            with ctx.checkpoint(step) as d:
                (d / "step.txt").write_text(str(step))
        time.sleep(step_s)
    ctx.log(f"counted to {n}")


def ignore_cancel(ctx):
    ctx.log("ignoring the cancel file")
    deadline = time.monotonic() + LIMIT_S
    while time.monotonic() < deadline:
        time.sleep(0.05)


def ignore_sigterm(ctx):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ctx.log("ignoring SIGTERM")
    deadline = time.monotonic() + LIMIT_S
    while time.monotonic() < deadline:
        time.sleep(0.05)
