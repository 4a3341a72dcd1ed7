"""The demo: the whole RLHF loop on a tiny model, end to end, in a few minutes on a CPU.

A synthetic task with a preference the demo knows exactly, so every stage
can be checked against the truth:

- **Task.** A tiny readable language (:mod:`workbench.train.demo_task`):
  prompts such as ``"Tell me about the river."``, responses of one to
  three short sentences, half of them good (polite, kind, on-topic), half
  bad (rude, unkind or off-topic).
- **Annotator.** A scripted one (:func:`preference_score`): +1 per good
  sentence, -1 per bad one; the higher sum is preferred; equal scores are a
  tie, and ties give no pair. A person applies the same rule at a glance.

:func:`build_demo` prepares everything up to the reward model, in the
workspace, through the same code paths a user's clicks take:

1. a random-init tiny Llama (hidden 128, 2 layers, 4 heads) and its
   word-level tokenizer (whole words only, so decoded text never glues
   words together or shows half a character) in ``models/demo-base``;
2. an SFT dataset ``demo-sft`` of chat demonstrations (good and bad
   sentences alike), and an **SFT job** (all weights) so the model writes
   the language and stops;
3. candidates sampled from the SFT checkpoint for every prompt, stored as
   prompts and candidates; one scripted ranking per prompt (annotator
   ``"scripted"``); :func:`~workbench.store.annotations.rankings_to_dataset`
   expands them into the preference dataset ``demo-pairs``, split by prompt
   with :func:`workbench.data.ops.split`;
4. a pairwise ranking queue over the demo prompts for the person at the
   keyboard (:data:`QUEUE_NAME`), so the Rank page opens on an item, and
   the Quality view measures how often they agree with the script.

:func:`run_demo` then runs the **reward-model job** (all weights, from the
SFT checkpoint) and the **PPO job** (LoRA on the SFT checkpoint, scored by
the reward model) and summarizes what happened: held-out reward accuracy,
reward-model score and true annotator score of the PPO samples early and
late, KL, timings, and a **blind comparison**: PPO and SFT samples on
held-out prompts, scored by the annotator, with PPO's win rate and its
Wilson 95% interval (:func:`workbench.data.quality.blind_comparison`, what
the app's comparison queues report).

Length bias (the FACTS.md pitfall): if the chosen response is mostly the
longer one, the reward model learns "longer is better" and PPO rambles. In
the demonstrations each sentence is good or bad with the same probability,
so a response's true score is symmetric around 0 whatever its length and
the longer response of a pair wins about half the time; :func:`build_demo` reports that fraction (``chosen_longer``) and the
reward job reports ``eval/length_corr``.

Every training step runs in a real job (``python -m workbench.jobs.run``)
through the :class:`~workbench.jobs.supervisor.Supervisor`, followed live
through its events (the progress callback gets each step), so the runs
appear in the run list with their events, checkpoints and logs. Jobs
inherit this process's environment: for models this small one thread per
job (``OMP_NUM_THREADS=1``) is about as fast as two and much faster when
something else holds a core. Building the base model and sampling the
candidates run in the calling process and import torch and transformers:
call these functions from the CLI or a worker process, never from the GUI
process (DESIGN.md section 3).

Measured on 2 CPU cores shared with other work (load 4-8), ``OMP_NUM_THREADS=1``,
seed 0: :data:`FULL` took 212 s (SFT 59 s, reward model 52 s, PPO 92 s,
comparison 3 s): held-out reward accuracy 0.997, PPO score 2.3 -> 5.9,
annotator score of the samples 0.36 -> 0.83, KL 2.1 nats; on the held-out
prompts PPO beat SFT in 78% (95% CI 70%-84%) of the decisive pairs (SFT
scores 0.06 there, PPO 0.82). :data:`QUICK` (the e2e test) took 245 s
under load 8: accuracy 0.995, PPO score 2.0 -> 5.4, annotator score 0.26
-> 0.97, KL 3.0, PPO won 76% (68%-82%).
"""

from __future__ import annotations

import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from ..errors import Cancelled, WorkbenchError
from ..progress import CancelToken, ProgressFn, no_progress
from . import demo_task as task
from .demo_task import preference_score, scripted_ordering  # noqa: F401 - the demo's public API

#: Annotator name of the scripted rankings.
ANNOTATOR = "scripted"
#: Workspace names the demo creates.
BASE_MODEL = "demo-base"
SFT_DATASET = "demo-sft"
PAIRS_DATASET = "demo-pairs"
#: Tag of the demo's prompts, and the name of the ranking queue the demo opens on.
PROMPT_TAG = "demo"
QUEUE_NAME = "demo prompts · pairwise"


@dataclass(frozen=True)
class DemoSizes:
    """How big each stage of the demo is. :data:`FULL` is the default, :data:`QUICK` the test's."""

    # -- the tiny model
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 256
    # -- SFT on the demonstrations (all weights: a random-init model has nothing to adapt)
    sft_examples: int = 8000
    sft_epochs: float = 3.0
    sft_lr: float = 1e-3
    sft_batch_size: int = 32
    min_sentences: int = 1
    max_sentences: int = 3
    # -- candidates and rankings. The longest demonstration is 22 tokens with its EOS. At 0.7 the
    # SFT model garbles fewer sentences than at 1.0, so PPO starts from (and stays near) cleaner text.
    candidates_per_prompt: int = 16
    sample_temperature: float = 0.7
    max_new_tokens: int = 28
    validation: float = 0.1  # share of pairs held out (whole prompts) for the reward model
    # -- reward model (all weights, from the SFT checkpoint)
    rm_epochs: float = 3.0
    rm_lr: float = 5e-4
    rm_batch_size: int = 16
    # -- PPO (LoRA policy on the SFT checkpoint). lr 1e-4 rises gradually (a readable curve),
    # 3e-4 within ~15 steps. The KL coefficient holds the policy near the SFT model's grammar: at
    # 0.2 it drifted into garbled sentences full of kind words ("The village is a lovely."), at 0.5
    # over 60 steps into repeats ("The bridge is lovely. The bridge is lovely."), both overrated
    # by the reward model and not by the annotator (seed 0: PPO won 66% [58%, 73%] at 0.5, 78%
    # [70%, 84%] at 1.0). Rollouts at the candidates' temperature, so the reward model scores the
    # kind of text it was trained on.
    ppo_steps: int = 60
    ppo_lr: float = 1e-4
    ppo_batch_size: int = 64
    ppo_mini_batch_size: int = 32
    ppo_epochs: int = 4
    kl_coef: float = 1.0
    lora_r: int = 16
    temperature: float = 0.7
    samples_per_step: int = 16  # PPO responses reported per step (the demo scores them with the annotator)
    # -- the blind comparison: this many samples of each model per held-out prompt
    compare_samples: int = 16
    # -- bookkeeping
    job_timeout_s: float = 600.0


#: The demo as the product shows it: a gradual reward curve, under two minutes on 2 cores.
FULL = DemoSizes()
#: Less data, fewer PPO steps at a faster learning rate and a looser KL: learns as clearly, faster.
QUICK = replace(FULL, sft_examples=6000, sft_epochs=2.0, candidates_per_prompt=12, ppo_steps=30, ppo_lr=3e-4,
                kl_coef=0.5)


# =========================================================================== the task


def demo_response(rng: random.Random, prompt: str, sizes: DemoSizes = FULL) -> str:
    """A demonstration answering ``prompt`` (:func:`workbench.train.demo_task.demo_response`)."""
    return task.demo_response(rng, prompt, min_sentences=sizes.min_sentences, max_sentences=sizes.max_sentences)


def _user(prompt: str) -> list[dict]:
    return [{"role": "user", "content": prompt}]


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


# =========================================================================== jobs


class _Stage:
    """Maps one stage's own progress (0..1) onto a slice of the caller's progress bar."""

    def __init__(self, progress: ProgressFn, lo: float, hi: float, name: str):
        self.progress, self.lo, self.hi, self.name = progress, lo, hi, name

    def __call__(self, fraction: float, message: str) -> None:
        f = min(1.0, max(0.0, fraction))
        self.progress(self.lo + (self.hi - self.lo) * f, f"{self.name}: {message}")


def _run_job(sup, stage: str, config: dict, *, total_steps: int, progress: _Stage,
             cancel: Optional[CancelToken], timeout_s: float, headline: str = "loss") -> dict:
    """Start a job, follow its events until it ends, and return what was seen.

    Returns ``{"run_dir", "run_id", "events", "live_metrics", "seconds"}``:
    ``live_metrics`` counts the metric events read while the job was still
    running (what a watching GUI would have drawn). Raises
    :class:`WorkbenchError` if the job did not complete, :class:`Cancelled`
    (after cancelling the job) if ``cancel`` was set.
    """
    from ..jobs.events import MetricEvent
    from ..jobs.supervisor import TERMINAL

    t0 = time.monotonic()
    handle = sup.start(stage, config)
    tailer = handle.tail()
    events: list = []
    live = 0
    progress(0.0, f"started run {handle.run_id}")

    def take(new: list, running: bool) -> None:
        nonlocal live
        events.extend(new)
        for ev in new:
            if isinstance(ev, MetricEvent):
                live += running
                value = ev.values.get(headline)
                tail = f", {headline} {value:.3f}" if value is not None and math.isfinite(value) else ""
                progress(ev.step / max(1, total_steps), f"step {ev.step}/{total_steps}{tail}")

    while True:
        sup.poll()  # a run queued behind someone else's job starts when that one ends
        new = tailer.read()
        info = handle.info()  # after the read: still running now means it ran while we read
        running = not (info.status in TERMINAL and not info.alive)
        take(new, running)
        if not running:
            while rest := tailer.read():  # whatever it wrote between the read and its end
                take(rest, False)
            break
        if cancel is not None and cancel.cancelled:
            handle.cancel()
            raise Cancelled(f"cancelled during the {stage} job (run {handle.run_id})")
        if time.monotonic() - t0 > timeout_s:
            handle.cancel()
            raise WorkbenchError(f"the {stage} job (run {handle.run_id}) took longer than {timeout_s:g} s")
        time.sleep(0.1)
    if tailer.errors:
        raise WorkbenchError(f"run {handle.run_id}: unreadable events: {tailer.errors[0]}")
    if info.status != "completed":
        raise WorkbenchError(f"the {stage} job (run {handle.run_id}) {info.status}: {info.error} "
                             f"(see {handle.path / 'stderr.log'})")
    progress(1.0, f"run {handle.run_id} completed")
    return {"run_dir": handle.path, "run_id": handle.run_id, "events": events, "live_metrics": live,
            "seconds": time.monotonic() - t0}


def _final_model(run_dir: Path) -> Path:
    """The model folder a completed run left: its last checkpoint, or the LoRA-merged
    model inside it (``merged/``) when the recipe saved one."""
    import json

    from ..jobs.rundir import latest_complete_checkpoint

    path = latest_complete_checkpoint(run_dir)
    if path is None:
        raise WorkbenchError(f"run {run_dir.name} completed without a checkpoint")
    try:
        merged = json.loads((path / "workbench.json").read_text(encoding="utf-8")).get("merged")
    except (OSError, ValueError):
        merged = None
    return path / merged if merged else path


def _metric_series(events, name: str) -> list[tuple[int, float]]:
    from ..jobs.events import MetricEvent

    return [(e.step, e.values[name]) for e in events if isinstance(e, MetricEvent) and name in e.values]


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def true_score_series(events) -> list[float]:
    """Per reported step, the annotator's mean :func:`preference_score` of the PPO run's training
    samples; the eval set's completions (``kind == "eval"``, at their own temperature and on
    other prompts) are left out, so the curve stays one series of rollout samples."""
    from ..jobs.events import SamplesEvent

    return [_mean([preference_score(r["response"], r["prompt"]) for r in e.rows])
            for e in events if isinstance(e, SamplesEvent) and e.kind == "train"]


def _ends(series: Sequence[float], share: float = 0.2) -> tuple[float, float]:
    """Mean of the first and of the last ``share`` of ``series`` (at least one value each)."""
    k = max(1, int(round(len(series) * share)))
    return _mean(series[:k]), _mean(series[-k:])


# =========================================================================== sampling


def sample_candidates(model_ref: Union[str, Path], prompts: Sequence[str], n: int, *, seed: int = 0,
                      temperature: float = 1.0, max_new_tokens: int = 16,
                      workspace: Optional[Union[str, Path]] = None) -> list[list[str]]:
    """``n`` sampled responses per prompt from the chat model ``model_ref`` (in this process).

    ``model_ref`` is anything the Generate page takes
    (:func:`workbench.generate.models.resolve_model`): a model folder, or a
    run or checkpoint folder, whose LoRA adapter (a PPO run's) is applied to
    its base model. Prompts are chat-templated and left-padded; sampling is
    seeded without touching the caller's RNG state. Responses are decoded
    without special tokens; those cut off at ``max_new_tokens`` (no EOS)
    are kept: the annotator judges the words either way.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from ..generate.models import resolve_model

    resolved = resolve_model(model_ref, workspace)
    tokenizer = AutoTokenizer.from_pretrained(resolved.tokenizer or resolved.base, padding_side="left")
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar in the caller's terminal
    try:
        model = AutoModelForCausalLM.from_pretrained(resolved.base, use_safetensors=True)
        if resolved.adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, resolved.adapter)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    model.eval()
    texts = [tokenizer.apply_chat_template(_user(p), add_generation_prompt=True, tokenize=False) for p in prompts]
    out: list[list[str]] = []
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for start in range(0, len(texts), 8):
            enc = tokenizer(texts[start:start + 8], return_tensors="pt", padding=True, add_special_tokens=False)
            gen = model.generate(**enc, do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                                 max_new_tokens=max_new_tokens, num_return_sequences=n,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            decoded = tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            # Not stripped: the PPO engine decodes its responses the same way, and the reward
            # model should be trained on the text it will score.
            out += [decoded[i * n:(i + 1) * n] for i in range(len(decoded) // n)]
    return out


def blind_comparison(prompts: Sequence[str], a: Sequence[Sequence[str]], b: Sequence[Sequence[str]], *,
                     label_a: str = "A", label_b: str = "B"):
    """Model B against model A as the annotator judges them: the i-th sample of A and of B for
    each prompt form one blind pair, the higher :func:`preference_score` wins, equal scores tie.

    Tallied by :func:`workbench.data.quality.blind_comparison`, the same count and Wilson 95%
    interval a comparison queue of the app reports; returns its
    :class:`~workbench.data.quality.ComparisonResult`.
    """
    from ..data import quality

    rows, arm_of = [], {}
    for prompt, xs, ys in zip(prompts, a, b):
        for x, y in zip(xs, ys):
            ia, ib = len(arm_of), len(arm_of) + 1
            arm_of.update({ia: "a", ib: "b"})
            sa, sb = preference_score(x, prompt), preference_score(y, prompt)
            ordering = ((ia, ib),) if sa == sb else ((ia,), (ib,)) if sa > sb else ((ib,), (ia,))
            rows.append(quality.RankingRow(id=len(rows), prompt_id=0, annotator=ANNOTATOR, ordering=ordering,
                                           shown=(ia, ib)))
    return quality.blind_comparison(rows, arm_of, label_a=label_a, label_b=label_b)


# =========================================================================== the demo


def _login_name() -> str:
    """Who the demo's ranking queue is for: the login name (what the Rank page suggests)."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name on this system
        return "me"


def build_demo(workspace_root: Union[str, Path], *, seed: int = 0, progress: Optional[ProgressFn] = None,
               sizes: DemoSizes = FULL, cancel: Optional[CancelToken] = None,
               annotator: Optional[str] = None) -> dict[str, Any]:
    """Build the demo in ``workspace_root`` (created if needed) up to the preference dataset.

    Makes the base model, the SFT dataset and SFT run, the prompts,
    candidates and scripted rankings, the split preference dataset, and the
    ranking queue of ``annotator`` (default: the login name, as the Rank
    page's; see the module docstring). The workspace must not hold a demo
    already.

    Returns ``{"workspace", "base_model", "sft_run", "sft_model",
    "sft_dataset", "pairs_dataset", "pairs", "pairs_train",
    "pairs_validation", "ties", "chosen_longer", "candidates",
    "candidate_score_mean", "queue_id", "live_metrics", "timing"}`` (folders as paths;
    ``ties`` is the share of candidate pairs dropped as ties;
    ``chosen_longer`` the share of pairs of different word counts where the
    chosen response is the longer one).
    """
    from ..data import ops
    from ..jobs.supervisor import Supervisor
    from ..models.tiny import build_tiny_model
    from ..store import annotations as A, datasets as D, queue as Q
    from ..store.records import Record
    from ..store.workspace import Workspace

    progress = progress or no_progress
    timing: dict[str, float] = {}
    t0 = time.monotonic()
    root = Path(workspace_root).resolve()

    def check() -> None:
        if cancel is not None and cancel.cancelled:
            raise Cancelled("demo cancelled")

    # 1. The base model and the demonstrations.
    progress(0.0, "building the tiny base model")
    with Workspace.init(root) as ws:
        base = ws.models_dir / BASE_MODEL
        existing = {d.name for d in D.list_datasets(ws.conn)} & {SFT_DATASET, PAIRS_DATASET}
        if base.exists() or existing:
            raise WorkbenchError(f"{root} already holds a demo ({', '.join(sorted(existing)) or base.name}); "
                                 "build the demo in a new workspace folder")
        tmp = ws.models_dir / f".tmp-{BASE_MODEL}"
        shutil.rmtree(tmp, ignore_errors=True)
        build_tiny_model(tmp, hidden_size=sizes.hidden_size, num_layers=sizes.num_layers,
                         num_heads=sizes.num_heads, intermediate_size=sizes.intermediate_size, seed=seed,
                         corpus=task.corpus(), tokenizer="words")
        tmp.rename(base)
        prompts = task.prompts()
        answered = task.all_prompts()  # the held-out prompts too: the SFT model knows their shape
        rng = random.Random(seed)
        with ws.transaction() as conn:
            ds = D.create_dataset(conn, SFT_DATASET, "sft", "conversational",
                                  "demo: good and bad answers alike (see the demo's task)")
            for i in range(sizes.sft_examples):
                prompt = answered[i % len(answered)]
                D.add_record(conn, ds, Record(messages=_user(prompt) + _assistant(demo_response(rng, prompt, sizes))))
    timing["setup_s"] = time.monotonic() - t0
    check()

    # 2. SFT: all weights (the random-init model has nothing for LoRA to adapt).
    sup = Supervisor(root)
    sft_steps = math.ceil(sizes.sft_examples / sizes.sft_batch_size) * math.ceil(sizes.sft_epochs)
    sft = _run_job(sup, "sft", {
        "model": {"ref": f"./models/{BASE_MODEL}", "lora": False},
        "data": {"dataset": SFT_DATASET},
        "training": {"learning_rate": sizes.sft_lr, "num_epochs": sizes.sft_epochs,
                     "batch_size": sizes.sft_batch_size, "max_length": 64, "logging_steps": 10,
                     "warmup_ratio": 0.05, "seed": seed, "device": "cpu"},
    }, total_steps=sft_steps, progress=_Stage(progress, 0.02, 0.75, "SFT"), cancel=cancel,
        timeout_s=sizes.job_timeout_s)
    timing["sft_s"] = sft["seconds"]
    sft_model = _final_model(sft["run_dir"])
    check()

    # 3. Candidates from the SFT model, scripted rankings, preference pairs.
    t1 = time.monotonic()
    progress(0.76, f"sampling {sizes.candidates_per_prompt} candidates for each of {len(prompts)} prompts")
    sampled = sample_candidates(sft_model, prompts, sizes.candidates_per_prompt, seed=seed,
                                temperature=sizes.sample_temperature, max_new_tokens=sizes.max_new_tokens)
    params = {"temperature": sizes.sample_temperature, "max_new_tokens": sizes.max_new_tokens, "seed": seed}
    checkpoint = str(sft_model.relative_to(root))
    progress(0.95, "ranking the candidates (scripted annotator)")
    with Workspace.open(root) as ws:
        texts: dict[int, str] = {}
        for prompt, responses in zip(prompts, sampled):
            with ws.transaction() as conn:  # one decision, one commit, as the ranking view does
                pid = A.add_prompt(conn, _user(prompt), tags=(PROMPT_TAG,))
                cands = [(A.add_candidate(conn, pid, _assistant(r), model=BASE_MODEL, checkpoint=checkpoint,
                                          params=params), r) for r in responses]
                texts.update({cid: (prompt, r) for cid, r in cands})
                A.record_ranking(conn, pid, ANNOTATOR, scripted_ordering(prompt, cands))
        with ws.transaction() as conn:
            n_pairs = A.rankings_to_dataset(conn, PAIRS_DATASET, annotator=ANNOTATOR)
        report = ops.split(ws, PAIRS_DATASET, validation=sizes.validation, seed=seed)
        # The person's first queue: the same prompts, which only the script has ranked so far.
        with ws.transaction() as conn:
            queue_id = Q.create_queue(conn, Q.QueueSpec(
                annotator=annotator or _login_name(), source=Q.PromptSource("tag", PROMPT_TAG), seed=seed,
                name=QUEUE_NAME))
        longer = decided = 0
        for rec in D.iter_records(ws.conn, D.get_dataset(ws.conn, PAIRS_DATASET)):
            a, b = (len(rec.chosen[-1]["content"].split()), len(rec.rejected[-1]["content"].split()))
            if a != b:
                decided += 1
                longer += a > b
    n = sizes.candidates_per_prompt
    all_pairs = len(prompts) * n * (n - 1) // 2
    timing["candidates_s"] = time.monotonic() - t1
    timing["build_s"] = time.monotonic() - t0
    progress(1.0, f"{n_pairs} preference pairs ({report.train} train, {report.validation} validation)")
    return {
        "workspace": root, "base_model": base, "sft_run": sft["run_dir"], "sft_model": sft_model,
        "sft_dataset": SFT_DATASET, "pairs_dataset": PAIRS_DATASET, "pairs": n_pairs,
        "pairs_train": report.train, "pairs_validation": report.validation,
        "ties": 1 - n_pairs / all_pairs if all_pairs else 0.0,
        "chosen_longer": longer / decided if decided else math.nan,
        "candidates": len(texts),
        "candidate_score_mean": _mean([preference_score(r, p) for p, r in texts.values()]),
        "queue_id": queue_id,
        "live_metrics": {"sft": sft["live_metrics"]},
        "timing": timing,
    }


def run_demo(workspace_root: Union[str, Path], *, seed: int = 0, progress: Optional[ProgressFn] = None,
             steps: Optional[int] = None, sizes: DemoSizes = FULL,
             cancel: Optional[CancelToken] = None) -> dict[str, Any]:
    """The whole demo: :func:`build_demo`, then the reward-model job and the PPO job.

    ``steps`` overrides ``sizes.ppo_steps``. Returns :func:`build_demo`'s
    dict plus:

    - ``rm_accuracy``: held-out pair accuracy of the reward model (its last
      ``eval/accuracy``), and ``rm_length_corr`` (``eval/length_corr``);
    - ``ppo_score_first`` / ``ppo_score_last``: mean ``objective/scores``
      (reward-model score) over the first and last 20% of PPO steps;
    - ``true_score_first`` / ``true_score_last``: the same for the
      annotator's :func:`preference_score` of the reported PPO training samples,
      i.e. whether the policy learned the real preference, not a quirk of
      the reward model;
    - ``kl_last`` (k1) and ``kl_k3_last``: mean KL per response over the
      last 20% of steps; ``length_first`` / ``length_last``: mean response
      length in tokens;
    - ``ppo_win_rate`` / ``ppo_win_low`` / ``ppo_win_high``: the blind
      comparison on :func:`~workbench.train.demo_task.held_out_prompts`
      (``compare_samples`` samples of each model per prompt, scored by the
      annotator): PPO's share of the decisive pairs and its Wilson 95%
      interval; ``compare_ties`` the share of tied pairs, ``compare_n`` the
      pairs; ``sft_heldout_score`` / ``ppo_heldout_score`` the annotator's
      mean score of each model's samples there; ``examples``: a few
      ``{"prompt", "sft", "ppo"}`` of them, to read;
    - ``runs``: ``{"sft", "reward", "ppo"}`` run folders; ``rm_model``;
    - ``live_metrics``: per stage, metric events read while its job ran;
    - ``timing``: seconds per stage and ``total_s``.
    """
    from ..jobs.supervisor import Supervisor

    progress = progress or no_progress
    if steps is not None:
        sizes = replace(sizes, ppo_steps=int(steps))
    t0 = time.monotonic()
    result = build_demo(workspace_root, seed=seed, progress=_Stage(progress, 0.0, 0.55, "build"),
                        sizes=sizes, cancel=cancel)
    root: Path = result["workspace"]
    sup = Supervisor(root)
    timing = result["timing"]

    # 4a. Reward model: all weights from the SFT checkpoint, a fresh score head.
    rm_steps = math.ceil(result["pairs_train"] / sizes.rm_batch_size) * math.ceil(sizes.rm_epochs)
    rm = _run_job(sup, "reward", {
        "model": {"ref": f"./{result['sft_model'].relative_to(root).as_posix()}", "lora": False},
        "data": {"dataset": PAIRS_DATASET},
        "training": {"learning_rate": sizes.rm_lr, "num_epochs": sizes.rm_epochs,
                     "batch_size": sizes.rm_batch_size, "max_length": 64, "logging_steps": 10,
                     "seed": seed, "device": "cpu"},
        "eval_steps": 0,
    }, total_steps=rm_steps, progress=_Stage(progress, 0.55, 0.75, "reward model"), cancel=cancel,
        timeout_s=sizes.job_timeout_s)
    timing["reward_s"] = rm["seconds"]
    rm_model = _final_model(rm["run_dir"])
    accuracy = _metric_series(rm["events"], "eval/accuracy")
    length_corr = _metric_series(rm["events"], "eval/length_corr")

    # 4b. PPO: LoRA on the SFT model, the reward model scores, KL to the SFT model.
    ppo = _run_job(sup, "ppo", {
        "policy_model": str(result["sft_model"]), "reward_model": str(rm_model),
        "prompts": task.prompts(), "device": "cpu", "dtype": "fp32",
        "lora_r": sizes.lora_r, "lora_alpha": 2 * sizes.lora_r,
        "batch_size": sizes.ppo_batch_size, "mini_batch_size": sizes.ppo_mini_batch_size,
        "ppo_epochs": sizes.ppo_epochs, "lr": sizes.ppo_lr, "lr_scheduler": "constant",
        "max_new_tokens": sizes.max_new_tokens, "temperature": sizes.temperature,
        "kl_coef": sizes.kl_coef, "total_steps": sizes.ppo_steps, "save_every": 0,
        "samples_every": 1, "num_samples": min(sizes.samples_per_step, sizes.ppo_batch_size), "seed": seed,
    }, total_steps=sizes.ppo_steps, progress=_Stage(progress, 0.75, 0.95, "PPO"), cancel=cancel,
        timeout_s=sizes.job_timeout_s, headline="objective/scores")
    timing["ppo_s"] = ppo["seconds"]

    scores = [v for _, v in _metric_series(ppo["events"], "objective/scores")]
    kl = [v for _, v in _metric_series(ppo["events"], "objective/kl")]
    kl3 = [v for _, v in _metric_series(ppo["events"], "objective/kl_k3")]
    length = [v for _, v in _metric_series(ppo["events"], "response/length_mean")]
    true = true_score_series(ppo["events"])

    # 5. The blind comparison: PPO against SFT on prompts neither the rankings nor PPO saw.
    t1 = time.monotonic()
    held_out = task.held_out_prompts()
    progress(0.96, f"blind comparison: sampling SFT and PPO on {len(held_out)} held-out prompts")
    kw = dict(seed=seed + 1, temperature=sizes.temperature, max_new_tokens=sizes.max_new_tokens, workspace=root)
    sft_out = sample_candidates(result["sft_model"], held_out, sizes.compare_samples, **kw)
    ppo_out = sample_candidates(ppo["run_dir"], held_out, sizes.compare_samples, **kw)
    verdict = blind_comparison(held_out, sft_out, ppo_out, label_a="SFT", label_b="PPO")
    timing["compare_s"] = time.monotonic() - t1
    timing["total_s"] = time.monotonic() - t0
    result.update({
        "rm_model": rm_model,
        "rm_accuracy": accuracy[-1][1] if accuracy else math.nan,
        "rm_length_corr": length_corr[-1][1] if length_corr else math.nan,
        "ppo_steps": len(scores),
        "ppo_score_first": _ends(scores)[0], "ppo_score_last": _ends(scores)[1],
        "true_score_first": _ends(true)[0], "true_score_last": _ends(true)[1],
        "kl_last": _ends(kl)[1], "kl_k3_last": _ends(kl3)[1],
        "length_first": _ends(length)[0], "length_last": _ends(length)[1],
        "ppo_win_rate": verdict.win_rate_b if verdict.win_rate_b is not None else math.nan,
        "ppo_win_low": verdict.low, "ppo_win_high": verdict.high, "compare_ties": verdict.tie_rate,
        "compare_n": verdict.n, "compare": verdict.describe(),
        "sft_heldout_score": _mean([preference_score(r, p) for p, rs in zip(held_out, sft_out) for r in rs]),
        "ppo_heldout_score": _mean([preference_score(r, p) for p, rs in zip(held_out, ppo_out) for r in rs]),
        "examples": [{"prompt": p, "sft": a[0], "ppo": b[0]} for p, a, b in zip(held_out, sft_out, ppo_out)],
        "runs": {"sft": result["sft_run"], "reward": rm["run_dir"], "ppo": ppo["run_dir"]},
        "live_metrics": {**result["live_metrics"], "reward": rm["live_metrics"], "ppo": ppo["live_metrics"]},
        "sizes": asdict(sizes),
    })
    progress(1.0, f"done in {timing['total_s']:.0f} s: held-out reward accuracy {result['rm_accuracy']:.3f}, "
                  f"PPO score {result['ppo_score_first']:.2f} -> {result['ppo_score_last']:.2f}; "
                  f"{verdict.describe()}")
    return result
