"""GPU check: 4-bit QLoRA SFT, reward-model and PPO steps on a ~0.5B Qwen2-shaped model, peak memory
and tokens/s against the workbench's own memory estimate.

One prepared script for a machine with a GPU (sized for a few minutes on an
H200, not yet run on one; the whole run, model building included, is capped
by ``--budget``, 420 s by default, and a stage the budget leaves no time for
is reported as skipped), which
also runs on the CPU with a much smaller model (``--cpu-small``, chosen
automatically when there is no CUDA device) so that it is tested everywhere.

What it does:

1. **Model.** A random-init ``Qwen2ForCausalLM`` with the shape of
   Qwen2.5-0.5B (hidden 896, 24 layers, 14 heads, 2 KV heads, MLP 4864,
   vocabulary 151,936, tied embeddings: 494M parameters), built locally from
   a config (no download), saved in bf16 with a word-level tokenizer that
   covers the whole vocabulary (``w<id>`` words, the demo's chat template
   and special tokens), so sampled ids decode and re-tokenize to themselves.
   A one-label ``Qwen2ForSequenceClassification`` of the same shape is the
   reward model PPO scores with. Synthetic data of fixed lengths: every
   demonstration and every response of a pair has the same number of
   words, and each word is one token, so the tokens per step are exact.
2. **Stages**, each a real job through the
   :class:`~workbench.jobs.supervisor.Supervisor` (the product's recipes,
   registered under benchmark-only stage names through
   ``WORKBENCH_EXTRA_RECIPES`` by a wrapper that resets and then reads the
   CUDA peak-memory counters and the process's peak RSS around the recipe):
   ``sft`` (QLoRA: 4-bit NF4 base + LoRA r=16 on all linear layers),
   ``reward`` (the same on preference pairs), ``ppo`` (4-bit policy with a
   LoRA adapter, 4-bit reward model).
3. **Figures** per stage: peak GPU memory (``torch.cuda.max_memory_allocated``
   and ``max_memory_reserved``; neither includes the CUDA context, which the
   estimate counts as part of its 0.75 GiB overhead) or, on the CPU, the
   job's peak RSS; the estimate of :func:`workbench.train.vram.estimate_config`
   for the same config (PPO with the real prompt length) and measured /
   estimate; tokens/s from the job's metric timestamps, first step (warm-up)
   excluded: SFT ``batch x tokens``, reward ``batch x 2 x tokens`` (chosen and
   rejected), PPO ``batch x (prompt + mean response length)`` per step time.

Every stage is run and reported on its own: a stage that fails (a missing
bitsandbytes, out of memory, a job error, the time budget) is recorded with
its error in the JSON and the others still run. The last line printed is one
JSON object::

    {"ok": bool, "mode": "gpu" | "cpu-small", "device": ..., "seconds": ...,
     "model": {...}, "stages": {"sft": {"ok", "peak_mb", "estimate_mb",
     "memory_ratio", "tokens_per_s", "s_per_step", ...}, "reward": {...}, "ppo": {...}}}

``peak_mb`` is the peak reserved GPU memory on a GPU, the peak RSS on the
CPU. The exit status is 0 when every stage passed, 1 otherwise.

    .venv/bin/python benchmarks/gpu_check.py              # GPU if there is one, else --cpu-small
    .venv/bin/python benchmarks/gpu_check.py --cpu-small  # the small CPU version (about a minute)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: find benchmarks._common
from benchmarks._common import OFFLINE_ENV, REPO, peak_rss_mb  # noqa: E402

STAGES = ("sft", "reward", "ppo")
#: Benchmark-only stage names of the measuring wrappers (``WORKBENCH_EXTRA_RECIPES``).
RECIPE_NAMES = {stage: f"gpucheck_{stage}" for stage in STAGES}
#: Written by the wrapper into the run folder: the job process's own peak memory.
MEASURE_FILE = "gpu_check.json"
MB = 1024 ** 2


@dataclass(frozen=True)
class Mode:
    """Model shape and stage sizes of one way of running the check."""

    name: str
    device: str
    # -- the model (Qwen2 shape)
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    save_dtype: str
    # -- data: words per prompt and per response (one token each)
    prompt_words: int
    response_words: int
    # -- SFT and reward
    batch: int
    max_length: int
    steps: int
    # -- PPO
    ppo_batch: int
    ppo_mini_batch: int
    ppo_epochs: int
    new_tokens: int
    ppo_steps: int
    quantization: Optional[str] = "4bit"
    budget_s: float = 420.0


#: Qwen2.5-0.5B's shape on the GPU.
GPU = Mode(name="gpu", device="cuda", hidden=896, layers=24, heads=14, kv_heads=2, intermediate=4864,
           vocab=151936, save_dtype="bfloat16", prompt_words=96, response_words=400, batch=8, max_length=512,
           steps=20, ppo_batch=32, ppo_mini_batch=8, ppo_epochs=2, new_tokens=128, ppo_steps=3)
#: A model small enough for a CPU test (same architecture and code paths).
CPU_SMALL = Mode(name="cpu-small", device="cpu", hidden=64, layers=2, heads=4, kv_heads=2, intermediate=128,
                 vocab=1024, save_dtype="float32", prompt_words=6, response_words=12, batch=2, max_length=32,
                 steps=3, ppo_batch=4, ppo_mini_batch=2, ppo_epochs=1, new_tokens=6, ppo_steps=2, budget_s=600.0)


# =========================================================================== the job side


def _measured(ctx, run) -> None:
    """Run a recipe and write its process's peak memory to ``MEASURE_FILE`` (also when it fails)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    try:
        run(ctx)
    finally:
        rec: dict[str, Any] = {"seconds": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rec.update(peak_allocated_mb=torch.cuda.max_memory_allocated() / MB,
                       peak_reserved_mb=torch.cuda.max_memory_reserved() / MB,
                       device_name=torch.cuda.get_device_name(),
                       device_total_mb=torch.cuda.get_device_properties(0).total_memory / MB)
        (ctx.run_dir.path / MEASURE_FILE).write_text(json.dumps(rec), encoding="utf-8")


def sft_recipe(ctx) -> None:
    from workbench.train import sft

    _measured(ctx, sft.run)


def reward_recipe(ctx) -> None:
    from workbench.train import reward

    _measured(ctx, reward.run)


def ppo_recipe(ctx) -> None:
    from workbench.train import ppo

    _measured(ctx, ppo.run)


# =========================================================================== setup


def _letter_words(n: int) -> list[str]:
    """The first ``n`` lowercase strings by length, then alphabetically: a, b, ..., z, aa, ab, ..."""
    import itertools
    import string

    out: list[str] = []
    for length in itertools.count(1):
        for letters in itertools.product(string.ascii_lowercase, repeat=length):
            if len(out) == n:
                return out
            out.append("".join(letters))
    return out


def build_tokenizer(vocab: int):
    """A Qwen2 tokenizer (byte-level BPE, Qwen2's pre-tokenizer) that fills ``vocab``: the 256 byte
    symbols, the demo's special tokens, then space-led letter words (``" ab"``), each one token.

    transformers loads any ``qwen2`` folder's tokenizer as ``Qwen2Tokenizer``, whatever
    ``tokenizer.json`` holds, so this is one of its kind. Returns ``(tokenizer, first word id)``.
    """
    from tokenizers import pre_tokenizers
    from transformers import Qwen2Tokenizer

    from workbench.models.tiny import BOS_TOKEN, CHAT_TEMPLATE, EOS_TOKEN, PAD_TOKEN, ROLE_TOKENS, SPECIAL_TOKENS

    words = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    for t in SPECIAL_TOKENS:
        words[t] = len(words)
    first = len(words)
    merges = []
    for w in _letter_words(vocab - first):
        token = "\u0120" + w  # byte-level symbol of the leading space
        words[token] = len(words)
        merges.append((token[:-1], token[-1]))  # every prefix is a word listed earlier (shorter)
    tok = Qwen2Tokenizer(vocab=words, merges=merges, unk_token=None, bos_token=BOS_TOKEN, eos_token=EOS_TOKEN,
                         pad_token=PAD_TOKEN, additional_special_tokens=list(ROLE_TOKENS),
                         model_max_length=4096, padding_side="right", clean_up_tokenization_spaces=False)
    tok.chat_template = CHAT_TEMPLATE
    return tok, first


def build_models(models_dir: Path, mode: Mode) -> tuple[Path, Path, dict]:
    """The random-init Qwen2 policy and reward model folders, and facts about them."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2ForSequenceClassification

    tok, first_word = build_tokenizer(mode.vocab)
    config = Qwen2Config(vocab_size=mode.vocab, hidden_size=mode.hidden, intermediate_size=mode.intermediate,
                         num_hidden_layers=mode.layers, num_attention_heads=mode.heads,
                         num_key_value_heads=mode.kv_heads, max_position_embeddings=4096, rope_theta=1e6,
                         tie_word_embeddings=True, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id)
    dtype = getattr(torch, mode.save_dtype)
    folders = []
    with torch.random.fork_rng(devices=[]):
        for name, cls, extra in (("qwen2-policy", Qwen2ForCausalLM, {}),
                                 ("qwen2-reward", Qwen2ForSequenceClassification, {"num_labels": 1})):
            torch.manual_seed(len(folders))
            base = {k: v for k, v in config.to_dict().items() if k not in ("id2label", "label2id")}
            cfg = Qwen2Config.from_dict({**base, **extra})
            if extra:
                cfg.architectures = ["Qwen2ForSequenceClassification"]
            model = cls(cfg).to(dtype)
            params = sum(p.numel() for p in model.parameters())
            if not extra:
                model.generation_config.pad_token_id = tok.pad_token_id
                model.generation_config.bos_token_id = tok.bos_token_id
                model.generation_config.eos_token_id = tok.eos_token_id
                policy_params = params
            out = models_dir / name
            model.save_pretrained(out, safe_serialization=True)
            tok.save_pretrained(out)
            folders.append(out)
            del model
    return folders[0], folders[1], {"params": policy_params, "first_word_id": first_word,
                                    "shape": {k: getattr(mode, k) for k in ("hidden", "layers", "heads", "kv_heads",
                                                                            "intermediate", "vocab")}}


def build_workspace(root: Path, mode: Mode) -> dict:
    """Workspace with the two models and fixed-length data; returns paths and token counts."""
    from workbench.store import datasets as D
    from workbench.store.records import Record
    from workbench.store.workspace import Workspace

    with Workspace.init(root) as ws:
        policy, reward, info = build_models(ws.models_dir, mode)
        rng = random.Random(0)

        tok, first = build_tokenizer(mode.vocab)
        ids = range(first, mode.vocab)

        def text(n: int) -> str:  # n words, n tokens
            return tok.decode([rng.choice(ids) for _ in range(n)])

        rows = max(mode.steps * mode.batch, 8)
        prompts = [text(mode.prompt_words) for _ in range(max(rows, mode.ppo_batch))]
        with ws.transaction() as conn:
            d = D.create_dataset(conn, "demos", "sft", "conversational", "gpu_check: fixed-length demonstrations")
            for p in prompts[:rows]:
                D.add_record(conn, d, Record(messages=[{"role": "user", "content": p},
                                                       {"role": "assistant", "content": text(mode.response_words)}]))
            d = D.create_dataset(conn, "pairs", "preference", "conversational", "gpu_check: fixed-length pairs")
            for p in prompts[:rows]:
                D.add_record(conn, d, Record(prompt=[{"role": "user", "content": p}],
                                             chosen=[{"role": "assistant", "content": text(mode.response_words)}],
                                             rejected=[{"role": "assistant", "content": text(mode.response_words)}]))
    conversation = [{"role": "user", "content": prompts[0]}, {"role": "assistant", "content": text(mode.response_words)}]
    seq = len(tok.apply_chat_template(conversation, tokenize=True, return_dict=True)["input_ids"])
    prompt_len = len(tok.apply_chat_template(conversation[:1], add_generation_prompt=True, tokenize=True,
                                             return_dict=True)["input_ids"])
    if seq > mode.max_length:
        raise RuntimeError(f"a demonstration is {seq} tokens, over max_length {mode.max_length}")
    return {"policy": policy, "reward": reward, "model": info, "seq_tokens": seq, "prompt_tokens": prompt_len,
            "prompts": prompts[:mode.ppo_batch * 2]}


def stage_configs(mode: Mode, built: dict) -> dict[str, dict]:
    """The job config of each stage."""
    lora = {"lora": True, "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "quantization": mode.quantization}
    training = {"max_steps": mode.steps, "batch_size": mode.batch, "max_length": mode.max_length,
                "logging_steps": 1, "save_steps": 0, "learning_rate": 2e-4, "device": mode.device, "seed": 0}
    return {
        "sft": {"model": {"ref": f"./models/{built['policy'].name}", **lora}, "data": {"dataset": "demos"},
                "training": training},
        "reward": {"model": {"ref": f"./models/{built['policy'].name}", **lora}, "data": {"dataset": "pairs"},
                   "training": training, "eval_steps": 0},
        "ppo": {"policy_model": str(built["policy"]), "reward_model": str(built["reward"]),
                "prompts": built["prompts"], "quantization": mode.quantization,
                "reward_quantization": mode.quantization, "device": mode.device, "lora_r": 16, "lora_alpha": 32,
                "batch_size": mode.ppo_batch, "mini_batch_size": mode.ppo_mini_batch, "ppo_epochs": mode.ppo_epochs,
                "max_new_tokens": mode.new_tokens, "total_steps": mode.ppo_steps, "save_every": 0,
                "samples_every": 0, "seed": 0},
    }


def memory_estimate(stage: str, config: dict, workspace: Path, prompt_tokens: int) -> dict:
    """What :mod:`workbench.train.vram` expects for this config (PPO with the real prompt length)."""
    from workbench.train import vram

    setup = vram.setup_from_config(stage, config)
    if stage == "ppo":
        setup = replace(setup, prompt_tokens=prompt_tokens)
    est = vram.estimate(setup, workspace)
    return {"estimate_mb": est.total / MB, "estimate_parts_mb": {p.key: round(p.bytes / MB, 1) for p in est.parts}}


# =========================================================================== running a stage


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def run_stage(sup, stage: str, config: dict, timeout: float) -> dict:
    """Run one stage's job to its end; its metric events and the wrapper's measurements."""
    from workbench.jobs.events import MetricEvent, read_events

    handle = sup.start(RECIPE_NAMES[stage], config, queue=False)
    t0 = time.perf_counter()
    try:
        info = sup.wait(handle.run_id, timeout=timeout, interval=0.2)
    except TimeoutError:
        handle.cancel()
        raise RuntimeError(f"{stage} job {handle.run_id} did not finish within the time left ({timeout:.0f} s)")
    wall = time.perf_counter() - t0
    measure = handle.path / MEASURE_FILE
    measured = json.loads(measure.read_text(encoding="utf-8")) if measure.is_file() else {}
    if info.status != "completed":
        tail = (handle.path / "stderr.log").read_text(errors="replace").strip().splitlines()[-3:] \
            if (handle.path / "stderr.log").is_file() else []
        raise RuntimeError(f"{stage} job {handle.run_id} {info.status}: {info.error or ''} "
                           f"{' | '.join(tail)}".strip())
    events = [e for e in read_events(handle.path / "events.jsonl") if isinstance(e, MetricEvent)]
    return {"events": events, "measured": measured, "wall_s": wall, "run_id": handle.run_id}


def step_seconds(events, key: str) -> float:
    """Mean seconds per step after the first, from the first ``key``-carrying metric event of each step."""
    first: dict[int, float] = {}
    for e in events:
        if key in e.values:
            first.setdefault(int(e.step), float(e.time))
    steps = sorted(first)
    if len(steps) < 2:
        raise RuntimeError(f"need at least 2 steps with {key!r} to time, saw {len(steps)}")
    return (first[steps[-1]] - first[steps[0]]) / (steps[-1] - steps[0])


def stage_figures(stage: str, ran: dict, mode: Mode, built: dict) -> dict:
    """tokens/s, s/step and the peak memory of one finished stage."""
    events, m = ran["events"], ran["measured"]
    if stage == "ppo":
        times = [e.values["time/step_s"] for e in events if "time/step_s" in e.values][1:]
        lengths = [e.values["response/length_mean"] for e in events if "response/length_mean" in e.values][1:]
        if not times:
            raise RuntimeError("PPO reported fewer than 2 steps to time")
        s_step = sum(times) / len(times)
        tokens = mode.ppo_batch * (built["prompt_tokens"] + sum(lengths) / len(lengths))
        extra = {"episodes_per_s": mode.ppo_batch / s_step, "response_length": sum(lengths) / len(lengths)}
    else:
        s_step = step_seconds(events, "loss")
        tokens = mode.batch * built["seq_tokens"] * (2 if stage == "reward" else 1)
        extra = {}
    gpu = "peak_reserved_mb" in m
    peak = m.get("peak_reserved_mb") if gpu else m.get("peak_rss_mb")
    return {"ok": True, "s_per_step": s_step, "tokens_per_step": tokens, "tokens_per_s": tokens / s_step,
            "peak_mb": peak, "peak_kind": "cuda_reserved" if gpu else "rss",
            "peak_allocated_mb": m.get("peak_allocated_mb"), "peak_rss_mb": m.get("peak_rss_mb"),
            "job_s": ran["wall_s"], "run_id": ran["run_id"], **extra}


def check(mode: Mode, work: Path, stages=STAGES) -> dict:
    """Build, run every stage (each failure recorded, never raised) and return the result dict."""
    t_start = time.perf_counter()
    result: dict[str, Any] = {"ok": False, "mode": mode.name, "device": mode.device, "stages": {},
                              "sizes": asdict(mode)}
    try:
        built = build_workspace(work / "ws", mode)
    except Exception as e:  # noqa: BLE001 -- reported, then every stage fails with it
        err = f"setup failed: {type(e).__name__}: {_one_line(e)}"
        result["stages"] = {s: {"ok": False, "error": err} for s in stages}
        result["seconds"] = time.perf_counter() - t_start
        return result
    result["model"] = {**built["model"], "seq_tokens": built["seq_tokens"], "prompt_tokens": built["prompt_tokens"]}
    result["setup_s"] = time.perf_counter() - t_start
    print(f"{mode.name}: random-init Qwen2 ({built['model']['params'] / 1e6:.1f}M parameters, "
          f"{mode.quantization or 'no'} quantization) built in {result['setup_s']:.0f} s", flush=True)

    from workbench.jobs.supervisor import Supervisor

    sup = Supervisor(work / "ws")
    configs = stage_configs(mode, built)
    for stage in stages:
        left = mode.budget_s - (time.perf_counter() - t_start)
        fig: dict[str, Any] = {"ok": False}
        try:
            fig.update(memory_estimate(stage, configs[stage], work / "ws", built["prompt_tokens"]))
        except Exception as e:  # noqa: BLE001
            fig["estimate_error"] = f"{type(e).__name__}: {_one_line(e)}"
        try:
            if left < 10:
                raise RuntimeError(f"skipped: the {mode.budget_s:.0f} s budget is spent")
            fig.update(stage_figures(stage, run_stage(sup, stage, configs[stage], left), mode, built))
            if fig.get("estimate_mb") and fig.get("peak_kind") == "cuda_reserved":  # RSS: mostly libraries
                fig["memory_ratio"] = fig["peak_mb"] / fig["estimate_mb"]
        except Exception as e:  # noqa: BLE001 -- a failed stage is a figure too
            fig.update(ok=False, error=f"{type(e).__name__}: {_one_line(e)}")
        result["stages"][stage] = fig
        print(_describe(stage, fig), flush=True)
    result["ok"] = all(f.get("ok") for f in result["stages"].values())
    result["seconds"] = time.perf_counter() - t_start
    return result


def _describe(stage: str, f: dict) -> str:
    if not f.get("ok"):
        return f"{stage:>6}: FAILED: {f.get('error')}"
    kind = "GPU reserved" if f["peak_kind"] == "cuda_reserved" else "RSS"
    est = f.get("estimate_mb")
    vs = (f" vs estimate {est:,.0f} MB (measured/estimate {f['memory_ratio']:.2f})" if "memory_ratio" in f
          else f" (estimate {est:,.1f} MB, not comparable: RSS counts the libraries)" if est else "")
    extra = f", {f['episodes_per_s']:.1f} episodes/s" if "episodes_per_s" in f else ""
    return (f"{stage:>6}: {f['tokens_per_s']:,.0f} tokens/s ({f['s_per_step']:.3f} s/step{extra}); "
            f"peak {kind} {f['peak_mb']:,.0f} MB{vs}; job {f['job_s']:.0f} s")


def _rounded(x: Any) -> Any:
    if isinstance(x, float):
        return round(x, 4)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    return x


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-small", action="store_true", help="the small CPU version (default without CUDA)")
    ap.add_argument("--no-quantization", action="store_true", help="full precision instead of 4-bit")
    ap.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    ap.add_argument("--budget", type=float, default=None, help="seconds for the whole run (default: the mode's)")
    ap.add_argument("--keep", type=Path, default=None, help="build in this folder and keep it (default: a temp folder)")
    args = ap.parse_args(argv)

    os.environ.update(OFFLINE_ENV)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["WORKBENCH_EXTRA_RECIPES"] = ";".join(f"{name}=benchmarks.gpu_check:{stage}_recipe"
                                                     for stage, name in RECIPE_NAMES.items())
    # The jobs import this module by name for the measuring wrappers.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    import torch

    mode = CPU_SMALL if args.cpu_small or not torch.cuda.is_available() else GPU
    if args.no_quantization:
        mode = replace(mode, quantization=None)
    if args.budget is not None:
        mode = replace(mode, budget_s=args.budget)
    work = args.keep or Path(tempfile.mkdtemp(prefix="gpu_check_"))
    try:
        result = check(mode, work, args.stages)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    result["torch"] = torch.__version__
    print(f"{'all stages passed' if result['ok'] else 'some stages FAILED'} in {result['seconds']:.0f} s")
    print(json.dumps(_rounded(result)))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
