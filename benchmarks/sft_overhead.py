"""Per-step overhead of our SFT job against a plain TRL ``SFTTrainer`` script.

Both sides train the same tiny LoRA model on the same rows:

- **ours**: a real ``sft`` job started through :class:`~workbench.jobs.supervisor.Supervisor`
  on a workspace dataset (a frozen snapshot), so the step loop carries everything the
  product adds: :class:`~workbench.train.callbacks.JobCallback` (a cancel check every
  step, one ``metric`` event per logged step, written and fsynced to ``events.jsonl``),
  the job's stdout/stderr going to ``stderr.log``, and our checkpoints;
- **plain**: a short script that loads the same model folder and the same snapshot
  exported with :func:`~workbench.data.exporter.export_dataset` (``jsonl``, TRL-ready),
  adds the same LoRA (same rank/alpha/dropout/targets, seeded the same way) and runs
  ``SFTTrainer`` with the same trainer arguments our recipe passes (batch, max_length,
  steps, seed, lr and schedule, ``use_cpu=True, bf16=False``, a log every step,
  ``disable_tqdm=True``, no eval, ``report_to="none"``). It also says
  ``activation_checkpointing=False`` (our config's ``gradient_checkpointing`` default):
  TRL's ``SFTConfig`` turns gradient checkpointing on by default, which alone made the
  plain script about 2x slower per step on the tiny model.

Each side runs in its own child process with ``OMP_NUM_THREADS=1`` (and the offline
``HF_*`` variables), both pinned to the same CPU (``--cpu``; the last one by default);
the two alternate, ``--repeat`` times each, and the best run of each side counts.

Step time: the mean time per optimizer step after the first ``--warmup`` steps, i.e.
``(t[last] - t[warmup]) / (last - warmup)``. For our job ``t`` is the ``time`` of each
step's first ``metric`` event (the one carrying ``loss``; the end-of-training summary
log at the last step is skipped); for the plain script it is ``time.perf_counter()``
taken by a ``TrainerCallback.on_step_end``. Both are one timestamp per step, so the
difference is one full step period on either side. A step slower than 3x its run's
median is counted and reported as a stall (an fsync held up by other disk traffic
shows up as one).

Checkpoints: by default **periodic saves are off on both sides** (our ``save_steps=0``:
the job saves only its final checkpoint, after the last step and so outside the timed
window; the plain script uses ``save_strategy="no"``). ``--save-steps N`` saves at the
same cadence on both sides instead (ours through ``ctx.checkpoint``: temp folder,
fsync, ``COMPLETE``, rename; plain: HF's ``checkpoint-N`` folders); those steps are then
inside the timed window.

With ``--profile`` (or automatically when the ratio is above the target) it also
measures where our overhead goes: in-process, the cost of one ``metric`` event with and
without fsync, of the per-step cancel check and of ``JobCallback``'s two hooks per step;
in real jobs, an instrumented run of our recipe (timers around the callback hooks and
around each fsync of ``events.jsonl``) and an ablation whose event writer does not fsync.
Both are recipes registered for this benchmark's jobs only, through
``WORKBENCH_EXTRA_RECIPES``; the product code is not changed.

The last line printed is one JSON object ``{"step_time_ratio": ours / plain, ...}``
(best ours / best plain; target <= 1.05), with ``pair_ratio_median`` beside it: the median
of each round's ours / plain, a cross-check that drifts less when the machine's speed
changes between rounds (on a shared 2-core VM it moved 10-30% within a minute, more than
the overhead measured here; use ``--repeat 5`` or more there)::

    python benchmarks/sft_overhead.py [--steps 100] [--warmup 5] [--repeat 3] [--save-steps 0]
                                      [--cpu N] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = 1.05
#: Set in this process before anything imports torch, so both children inherit it.
JOB_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
DATASET = "demos"
#: Stage names of the profiling recipes (registered for this benchmark's jobs only).
NOFSYNC_STAGE = "sft_bench_nofsync"
TIMED_STAGE = "sft_bench_timed"
TIMING_FILE = "bench_timing.json"
#: A step slower than this many times its run's median counts as a stall.
STALL = 3.0

PLAIN = r"""
import json, sys, time
spec = json.loads(sys.argv[1])
import torch
from datasets import load_dataset
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback, set_seed
from trl import SFTConfig, SFTTrainer

class StepTimer(TrainerCallback):
    def __init__(self):
        self.times = []
    def on_step_end(self, args, state, control, **kwargs):
        self.times.append((state.global_step, time.perf_counter()))

t0 = time.perf_counter()
set_seed(spec["seed"])
tokenizer = AutoTokenizer.from_pretrained(spec["model"])
if tokenizer.pad_token is None:
    tokenizer.pad_token = tokenizer.eos_token
tokenizer.padding_side = "right"
model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=torch.float32, use_safetensors=True)
model = get_peft_model(model, LoraConfig(r=spec["lora_r"], lora_alpha=spec["lora_alpha"],
                                         lora_dropout=spec["lora_dropout"], target_modules="all-linear",
                                         task_type="CAUSAL_LM", bias="none"))
train = load_dataset("json", data_files=spec["data"], split="train", cache_dir=spec["cache"])
save = {"save_strategy": "steps", "save_steps": spec["save_steps"]} if spec["save_steps"] else \
    {"save_strategy": "no"}
args = SFTConfig(output_dir=spec["out"], max_steps=spec["steps"], per_device_train_batch_size=spec["batch"],
                 gradient_accumulation_steps=1, max_length=spec["max_length"], learning_rate=spec["lr"],
                 seed=spec["seed"], lr_scheduler_type="linear", warmup_steps=0.0, weight_decay=0.0,
                 max_grad_norm=1.0, logging_strategy="steps", logging_steps=1, logging_first_step=True,
                 logging_nan_inf_filter=False, eval_strategy="no", report_to="none", disable_tqdm=True,
                 use_cpu=True, bf16=False, fp16=False, packing=False, assistant_only_loss=True,
                 activation_checkpointing=False, **save)
timer = StepTimer()
trainer = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer,
                     callbacks=[timer])
trainer.train()
print(json.dumps({"steps": timer.times, "wall_s": time.perf_counter() - t0}))
"""


# -- the ablation recipe (runs inside a job process, profiling only) ---------------------------
def nofsync_recipe(ctx) -> None:
    """Our SFT recipe with the job's event writer not fsyncing (everything else unchanged)."""
    from workbench.train import sft

    ctx._writer.fsync = False
    sft.run(ctx)


def timed_recipe(ctx) -> None:
    """Our SFT recipe, unchanged, with timers around ``JobCallback.on_step_end`` /
    ``on_log`` and around each fsync of the events file; the durations go to
    ``RUN_DIR/bench_timing.json``."""
    from workbench.train import callbacks, sft

    rec: dict = {"fsync": [], "on_step_end": [], "on_log": []}
    writer = ctx._writer
    write = writer._write

    def timed_write(data: bytes, *, sync: bool = True) -> None:  # the same write and fsync policy, timed
        t = time.perf_counter()
        write(data, sync=sync)
        rec["fsync"].append(time.perf_counter() - t)

    writer._write = timed_write
    for name in ("on_step_end", "on_log"):
        def timed(self, *a, _orig=getattr(callbacks.JobCallback, name), _name=name, **k):
            t = time.perf_counter()
            try:
                return _orig(self, *a, **k)
            finally:
                rec[_name].append(time.perf_counter() - t)
        setattr(callbacks.JobCallback, name, timed)
    try:
        sft.run(ctx)
    finally:
        (ctx.run_dir.path / TIMING_FILE).write_text(json.dumps(rec), encoding="utf-8")


# -- setup ------------------------------------------------------------------------------------
def build_workspace(root: Path, rows: int, seed: int = 0) -> tuple[Path, str, Path]:
    """A workspace with the tiny model in ``models/tiny`` and ``rows`` chat demonstrations
    (no validation split), frozen; returns (model folder, snapshot hash, exported jsonl)."""
    import shutil

    from workbench.data.exporter import export_dataset
    from workbench.models.tiny import NEUTRAL_WORDS, POSITIVE_WORDS, build_tiny_model, demo_prompts
    from workbench.store import datasets as R
    from workbench.store.records import Record
    from workbench.store.workspace import Workspace

    rng = random.Random(seed)
    pool = POSITIVE_WORDS + NEUTRAL_WORDS
    prompts = demo_prompts()
    with Workspace.init(root) as ws:
        build_tiny_model(root.parent / "tiny-build")
        shutil.copytree(root.parent / "tiny-build", ws.models_dir / "tiny")
        with ws.transaction() as c:
            d = R.create_dataset(c, DATASET, "sft", "conversational")
            for i in range(rows):
                reply = " ".join(rng.choice(pool) for _ in range(rng.randint(2, 12)))
                R.add_record(c, d, Record(messages=[{"role": "user", "content": prompts[i % len(prompts)]},
                                                    {"role": "assistant", "content": reply}]))
        with ws.transaction() as c:
            snapshot = R.freeze(c, DATASET, note="sft_overhead benchmark").hash
        data = root.parent / "demos.jsonl"
        report = export_dataset(ws, DATASET, "jsonl", data, snapshot=snapshot)
        assert report.rows == rows, report
        return ws.models_dir / "tiny", snapshot, data


def our_config(args, snapshot: str) -> dict:
    return {"model": {"ref": "./models/tiny", "lora": True, "lora_r": args.lora_r, "lora_alpha": args.lora_alpha,
                      "lora_dropout": 0.05, "lora_target_modules": "all-linear"},
            "data": {"dataset": DATASET, "snapshot": snapshot},
            "training": {"max_steps": args.steps, "batch_size": args.batch, "max_length": args.max_length,
                         "learning_rate": args.lr, "seed": args.seed, "logging_steps": 1,
                         "save_steps": args.save_steps, "device": "cpu"},
            "packing": False, "assistant_only_loss": True}


# -- the two sides ----------------------------------------------------------------------------
def mean_step(times: list[tuple[int, float]], warmup: int, steps: int) -> float:
    """Mean seconds per step from one timestamp per step, after the first ``warmup`` steps."""
    by_step = {}
    for step, t in times:
        by_step.setdefault(int(step), float(t))  # first timestamp of a step
    missing = [s for s in range(1, steps + 1) if s not in by_step]
    if missing:
        raise RuntimeError(f"no timestamp for steps {missing[:10]}")
    return (by_step[steps] - by_step[warmup]) / (steps - warmup)


def per_step(times: list[tuple[int, float]]) -> list[float]:
    by_step = {}
    for step, t in times:
        by_step.setdefault(int(step), float(t))
    ks = sorted(by_step)
    return [by_step[b] - by_step[a] for a, b in zip(ks, ks[1:])]


def run_ours(ws_root: Path, config: dict, stage: str = "sft") -> dict:
    from workbench.jobs.events import CheckpointEvent, MetricEvent, read_events
    from workbench.jobs.supervisor import Supervisor

    sup = Supervisor(ws_root)
    t0 = time.perf_counter()
    handle = sup.start(stage, config, queue=False)
    info = sup.wait(handle.run_id, timeout=1800, interval=0.5)
    wall = time.perf_counter() - t0
    if info.status != "completed":
        tail = (handle.path / "stderr.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"our job {handle.run_id} ended {info.status}: {info.error}\n{tail}")
    events = read_events(handle.path / "events.jsonl")
    times = [(e.step, e.time) for e in events if isinstance(e, MetricEvent) and "loss" in e.values]
    ckpts = [e.step for e in events if isinstance(e, CheckpointEvent)]
    timing = handle.path / TIMING_FILE
    return {"steps": times, "wall_s": wall, "run_id": handle.run_id, "checkpoints": ckpts,
            "timing": json.loads(timing.read_text()) if timing.is_file() else None}


def stalls(times: list[tuple[int, float]], warmup: int) -> tuple[int, float]:
    """(steps slower than :data:`STALL` x the run's median, their time beyond the median in s),
    after the warm-up."""
    d = per_step(times)[warmup:]
    med = sorted(d)[len(d) // 2]
    slow = [x for x in d if x > STALL * med]
    return len(slow), sum(x - med for x in slow)


def run_plain(spec: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", PLAIN, json.dumps(spec)], capture_output=True, text=True,
                         env=dict(os.environ))
    if out.returncode:
        raise RuntimeError(f"plain TRL script failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- profiling --------------------------------------------------------------------------------
def micro_costs(folder: Path, n: int = 300) -> dict:
    """Per-call cost (ms) of what our callback does every step, in ``folder``'s file system."""
    from workbench.jobs.events import EventWriter, MetricEvent
    from workbench.jobs.rundir import RunDir, cancel_requested

    values = {"loss": 5.123, "grad_norm": 0.71, "learning_rate": 1e-3, "entropy": 5.9,
              "num_tokens": 12345.0, "mean_token_accuracy": 0.05, "epoch": 0.5}
    out = {}
    for fsync in (True, False):
        path = folder / f"events-{'fsync' if fsync else 'nofsync'}.jsonl"
        with EventWriter(path, fsync=fsync) as w:
            t = time.perf_counter()
            for i in range(n):
                w.write(MetricEvent(step=i, values=values))
            out["metric_event_fsync_ms" if fsync else "metric_event_nofsync_ms"] = \
                (time.perf_counter() - t) / n * 1e3
    rd = RunDir(folder)
    t = time.perf_counter()
    for _ in range(n * 10):
        cancel_requested(rd)
    out["cancel_check_ms"] = (time.perf_counter() - t) / (n * 10) * 1e3
    out.update(callback_cost(folder / "runs", values, n))
    return out


def callback_cost(runs: Path, values: dict, n: int) -> dict:
    """What :class:`JobCallback` adds to one logged step (``on_step_end`` + ``on_log``), in ms,
    with the job's real event writer (fsync on, then off)."""
    from transformers import TrainerControl, TrainerState

    from workbench.jobs.events import EventWriter
    from workbench.jobs.rundir import new_run_dir
    from workbench.jobs.run import JobContext
    from workbench.train.callbacks import JobCallback

    out = {}
    for fsync in (True, False):
        rd = new_run_dir(runs, "sft", {})
        with EventWriter(rd.events, fsync=fsync) as writer:
            cb = JobCallback(JobContext(rd, {}, stage="sft", writer=writer), save_steps=0)
            state, control = TrainerState(), TrainerControl()
            t = time.perf_counter()
            for step in range(1, n + 1):
                state.global_step = step
                cb.on_step_end(None, state, control)
                cb.on_log(None, state, control, logs=dict(values))
            out["callback_step_fsync_ms" if fsync else "callback_step_nofsync_ms"] = \
                (time.perf_counter() - t) / n * 1e3
    return out


def pin_cpu(cpu):
    """Pin this process (and so every child: the job and the plain script) to one CPU.

    Both sides then run on the same core, and the machine's other work (this process
    polling, other programs) mostly stays on the others: on a 2-core VM this cut the
    run-to-run spread of either side roughly in half. Returns the CPU, or ``None``.
    """
    if cpu == -1 or not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if cpu is None:
        if len(cpus) < 2:
            return None
        cpu = cpus[-1]
    os.sched_setaffinity(0, {cpu})
    return cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100, help="optimizer steps per run")
    ap.add_argument("--warmup", type=int, default=5, help="first steps left out of the mean")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side (alternating); the best counts")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--lora-alpha", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--save-steps", type=int, default=0,
                    help="0: no periodic saves on either side (default); N: save every N steps on both")
    ap.add_argument("--rows", type=int, default=0, help="dataset rows (default: steps x batch, one epoch)")
    ap.add_argument("--profile", action="store_true", help="also break our overhead down (see the doc)")
    ap.add_argument("--cpu", type=int, default=None,
                    help="pin this process and both children to this CPU (default: the last CPU when there "
                         "are several; -1: no pinning)")
    args = ap.parse_args()
    if not 0 < args.warmup < args.steps:
        ap.error("--warmup must be between 1 and --steps - 1")
    cpu = pin_cpu(args.cpu)
    os.environ.update(JOB_ENV)
    os.environ["WORKBENCH_EXTRA_RECIPES"] = (f"{NOFSYNC_STAGE}=benchmarks.sft_overhead:nofsync_recipe;"
                                             f"{TIMED_STAGE}=benchmarks.sft_overhead:timed_recipe")
    # The job process imports this module by name for the ablation recipe.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    sys.path.insert(0, str(REPO))

    with tempfile.TemporaryDirectory(prefix="sft-overhead-") as tmp:
        tmp = Path(tmp)
        rows = args.rows or args.steps * args.batch
        model_dir, snapshot, data = build_workspace(tmp / "ws", rows, seed=0)
        config = our_config(args, snapshot)
        spec = {"model": str(model_dir), "data": str(data), "steps": args.steps, "batch": args.batch,
                "max_length": args.max_length, "lr": args.lr, "seed": args.seed, "lora_r": args.lora_r,
                "lora_alpha": args.lora_alpha, "lora_dropout": 0.05, "save_steps": args.save_steps}
        print(f"tiny Llama LoRA r={args.lora_r}, {rows} chat rows, batch {args.batch}, max_length "
              f"{args.max_length}, {args.steps} steps (mean over steps {args.warmup + 1}-{args.steps}), "
              f"periodic saves: {'every %d steps on both' % args.save_steps if args.save_steps else 'off on both'}, "
              f"{'pinned to CPU %d' % cpu if cpu is not None else 'not pinned'}", flush=True)
        ours, plain = [], []
        for i in range(args.repeat):
            ours.append(run_ours(tmp / "ws", config))
            plain.append(run_plain({**spec, "out": str(tmp / f"plain{i}"), "cache": str(tmp / f"cache{i}")}))
            o = mean_step(ours[-1]["steps"], args.warmup, args.steps)
            p = mean_step(plain[-1]["steps"], args.warmup, args.steps)
            (so, se), (sp, sq) = stalls(ours[-1]["steps"], args.warmup), stalls(plain[-1]["steps"], args.warmup)
            print(f"run {i + 1}: ours {o * 1e3:.2f} ms/step ({ours[-1]['wall_s']:.1f} s wall, checkpoints at "
                  f"{ours[-1]['checkpoints']}, {so} stalled steps +{se * 1e3:.0f} ms), plain {p * 1e3:.2f} ms/step "
                  f"({plain[-1]['wall_s']:.1f} s in script, {sp} stalled steps +{sq * 1e3:.0f} ms), "
                  f"ratio {o / p:.3f}", flush=True)
        best_o = min(mean_step(r["steps"], args.warmup, args.steps) for r in ours)
        best_p = min(mean_step(r["steps"], args.warmup, args.steps) for r in plain)
        ratio = best_o / best_p

        def median(xs):
            xs = sorted(xs)
            return xs[len(xs) // 2]

        med_o = min(median(per_step(r["steps"])[args.warmup:]) for r in ours)
        med_p = min(median(per_step(r["steps"])[args.warmup:]) for r in plain)
        print(f"ours (Supervisor job, events + callback): {best_o * 1e3:.2f} ms/step "
              f"(median step {med_o * 1e3:.2f} ms)")
        print(f"plain TRL SFTTrainer script:              {best_p * 1e3:.2f} ms/step "
              f"(median step {med_p * 1e3:.2f} ms)")
        print(f"step time ratio {ratio:.3f} (target <= {TARGET}); overhead {(best_o - best_p) * 1e3:+.2f} ms/step")
        pairs = sorted(mean_step(o_["steps"], args.warmup, args.steps) / mean_step(p_["steps"], args.warmup, args.steps)
                       for o_, p_ in zip(ours, plain))
        pair_median = pairs[len(pairs) // 2] if len(pairs) % 2 else (pairs[len(pairs) // 2 - 1] +
                                                                   pairs[len(pairs) // 2]) / 2
        print(f"cross-check, median of the per-round ratios (each ours run against the plain run right after "
              f"it; less sensitive to the machine's speed drifting between rounds): {pair_median:.3f}")
        spread = {name: [mean_step(r["steps"], args.warmup, args.steps) * 1e3 for r in runs]
                  for name, runs in (("ours", ours), ("plain", plain))}
        print("run-to-run spread: " + ", ".join(f"{k} {min(v):.2f}-{max(v):.2f} ms/step ({max(v) / min(v) - 1:+.0%})"
                                                 for k, v in spread.items()))
        result = {"step_time_ratio": round(ratio, 4), "ours_ms": round(best_o * 1e3, 3),
                  "plain_ms": round(best_p * 1e3, 3), "steps": args.steps, "warmup": args.warmup,
                  "repeat": args.repeat, "save_steps": args.save_steps, "cpu": cpu,
                  "pair_ratio_median": round(pair_median, 4)}

        if args.profile or ratio > TARGET:
            print("profile: where our per-step time goes", flush=True)
            micro = micro_costs(tmp)
            print(f"  one metric event: {micro['metric_event_fsync_ms']:.3f} ms with fsync, "
                  f"{micro['metric_event_nofsync_ms']:.3f} ms without; cancel check (stat) "
                  f"{micro['cancel_check_ms'] * 1e3:.1f} us")
            cb, cbn = micro["callback_step_fsync_ms"], micro["callback_step_nofsync_ms"]
            print(f"  JobCallback per logged step (on_step_end + on_log, in-process): {cb:.3f} ms with fsync "
                  f"= {cb / (best_p * 1e3) * 100:.1f}% of a plain step; {cbn:.3f} ms without fsync "
                  f"= {cbn / (best_p * 1e3) * 100:.1f}%")
            nofsync, timed = [], []
            for i in range(args.repeat):
                timed.append(run_ours(tmp / "ws", config, stage=TIMED_STAGE))
                nofsync.append(run_ours(tmp / "ws", config, stage=NOFSYNC_STAGE))
                tm = timed[-1]["timing"]
                fs = tm["fsync"]
                end_ms, log_ms = (sum(tm[k]) / args.steps * 1e3 for k in ("on_step_end", "on_log"))
                t_ms = mean_step(timed[-1]["steps"], args.warmup, args.steps) * 1e3
                print(f"  instrumented job {i + 1}: {t_ms:.2f} ms/step; JobCallback {end_ms + log_ms:.3f} ms/step "
                      f"(on_step_end {end_ms:.3f}, on_log {log_ms:.3f}); {len(fs)} events fsynced, "
                      f"{sum(fs) / len(fs) * 1e3:.3f} ms mean, {max(fs) * 1e3:.1f} ms max, "
                      f"{sum(1 for x in fs if x > 0.01)} over 10 ms | without fsync "
                      f"{mean_step(nofsync[-1]['steps'], args.warmup, args.steps) * 1e3:.2f} ms/step", flush=True)
            best_n = min(mean_step(r["steps"], args.warmup, args.steps) for r in nofsync)
            all_fs = [x for r in timed for x in r["timing"]["fsync"]]
            cb_all = min((sum(r["timing"]["on_step_end"]) + sum(r["timing"]["on_log"])) / args.steps for r in timed)
            print(f"  ours without fsync (job-level ablation): best {best_n * 1e3:.2f} ms/step, ratio "
                  f"{best_n / best_p:.3f} (job-level differences smaller than the run-to-run spread are noise)")
            fs_step = min(sum(r["timing"]["fsync"]) for r in timed) / args.steps
            share = sorted((sum(r["timing"]["on_step_end"]) + sum(r["timing"]["on_log"])) / args.steps
                           / mean_step(r["steps"], args.warmup, args.steps) for r in timed)[len(timed) // 2]
            print(f"  in the real job, JobCallback costs {cb_all * 1e3:.3f} ms/step ({share:.1%} of that job's own "
                  f"step time, median over runs), of which ~{fs_step * 1e3:.3f} ms/step ({fs_step / cb_all:.0%}) is the fsync after "
                  f"each event; fsync took {sorted(all_fs)[len(all_fs) // 2] * 1e3:.3f} ms median, "
                  f"{max(all_fs) * 1e3:.1f} ms max over {len(all_fs)} events")
            result.update({"nofsync_ms": round(best_n * 1e3, 3), "nofsync_ratio": round(best_n / best_p, 4),
                           "job_callback_ms": round(cb_all * 1e3, 4), "job_callback_share": round(share, 4),
                           "fsync_per_step_ms": round(fs_step * 1e3, 4),
                           "fsync_median_ms": round(sorted(all_fs)[len(all_fs) // 2] * 1e3, 4),
                           "fsync_max_ms": round(max(all_fs) * 1e3, 2),
                           **{k: round(v, 4) for k, v in micro.items()}})
        print(json.dumps(result))


if __name__ == "__main__":
    main()
