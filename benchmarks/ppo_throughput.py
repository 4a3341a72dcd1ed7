"""PPO throughput and memory: our engine vs trl 1.12.0's ``trl.experimental.ppo.PPOTrainer``.

trl removed its PPO trainer in 1.13.0 (the venv has trl 1.16), so this script
installs trl==1.12.0, the last release with it, into a throwaway folder
(:mod:`benchmarks._common`: ``pip install --no-deps --target``; the venv's own
trl is never touched, only the trl child process gets the folder).

It builds one tiny random-init Llama with :func:`build_tiny_model` (default:
the demo's size, hidden 128, 2 layers, 4 heads, intermediate 256) and a
reward model from it with :func:`build_tiny_reward_model`, then runs the same
PPO settings in two child processes, each on its own so that its peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own:

- **ours**: :class:`workbench.train.ppo.PPOTrainer`, calling ``train_step()``
  in a loop (the loop of the ``ppo`` job recipe, without its event writing);
- **trl**: ``trl.experimental.ppo.PPOTrainer.train()`` from trl 1.12.0, with a
  callback that stamps the time at each ``on_step_end``.

Both children run with the same ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``
(default 1), ``HF_HUB_OFFLINE=1`` and telemetry off. Each runs ``--warmup``
steps (excluded) and then ``--steps`` timed steps; episodes/s is
``batch_size x steps / (time of the last step end - time of the last warm-up
step end)``, so each side's whole loop is timed (trl's per-step logging,
``gc.collect()`` and data loader included). The runs alternate (ours first in
odd rounds, trl first in even ones) and the best of ``--repeat`` is reported
(the highest episodes/s; the lowest peak RSS).

    .venv/bin/python benchmarks/ppo_throughput.py [--hidden 128] [--steps 10] [--warmup 2] [--repeat 3]
    .venv/bin/python benchmarks/ppo_throughput.py --large   # hidden 512, 4 layers, 8 heads, MLP 1024

At the demo's size a PPO step is mostly Python and framework overhead (many
small kernels); ``--large`` (:data:`LARGE`) makes the matrix products
dominate, so the ratio there says how the two implementations compare when
compute is what costs (the number of forward/backward passes each side runs
and their sizes), not their per-call overhead. The JSON says which size ran
(``config.size``).

The last line is ``{"eps_ratio": ..., "rss_ratio": ...}``, ours divided by
trl 1.12.0's (eps_ratio > 1: ours is faster; rss_ratio < 1: ours uses less
memory); the line above it is a fuller JSON with both sides' figures. If trl
1.12.0 cannot be installed or run here the script exits with status 2 and a
message saying why.

Same settings on both sides: batch 64 prompts (episodes) per step, 2
minibatches of 32 (trl: ``per_device_train_batch_size=64``,
``gradient_accumulation_steps=1``, ``num_mini_batches=2``, so exactly one
optimizer step per minibatch, as ours), 4 PPO epochs, 16 new tokens, sampling
temperature 0.7 with no top-k/top-p, stop at EOS, KL coefficient 0.2 (k1),
gamma 1, lambda 0.95, clip ranges 0.2, vf_coef 0.1, no reward whitening, no
missing-EOS penalty, AdamW (non-fused, eps 1e-5, no weight decay) at a
constant lr 5e-5, fp32, no gradient checkpointing, LoRA r=16, alpha=32,
dropout 0 on all linear layers of the policy, reference = the policy with its
adapter disabled, seed 42, the demo's 36 PPO prompts (chat-templated, left
padded). The models are random-init, so responses almost never end early:
both sides generate the full 16 tokens for every episode (the JSON reports
the EOS counts so this can be checked).

What differs per step, by design of the two implementations (so read the
ratio as "our engine vs trl 1.12's PPO as it was", not as identical math):

- **Value model.** trl 1.12 needs a separate value model: here, as in its
  examples, a second copy of the reward model (a full sequence classifier,
  all of its weights trained and in the optimizer, with its own backbone
  forward and backward in every minibatch and its own forward in the
  rollout). Ours has a linear value head on the policy's last hidden state
  (shared body: one forward gives log-probs and values; the optimizer holds
  only the LoRA adapter and the head). The JSON reports each side's number
  of trained parameters.
- **Rollout log-probs.** trl takes the rollout log-probs from the scores
  ``generate`` returns (``output_scores=True``; no policy forward after
  generation). Ours runs a policy forward after generation (which it needs
  anyway for the values and the per-token entropy, and which makes the
  log-probs follow exactly the same code path as the training forward).
  Rollout forwards per step: trl = reference + value model + reward model;
  ours = policy (+ value head) + reference + reward model.
- **Reward-model input.** trl feeds the policy's token ids straight to the
  reward model (it assumes a shared tokenizer). Ours decodes the responses
  and re-tokenizes the chat-templated conversation with the reward model's
  own tokenizer (CPU work trl does not do).
- **Batching of rollout passes.** trl generates and runs its rollout forwards
  in chunks of ``local_rollout_forward_batch_size`` (set to the batch size,
  64, its default); ours generates the whole batch at once and runs the
  rollout forwards in chunks of ``mini_batch_size`` (32).
- **Gradient clipping.** Ours clips the gradient norm to 1.0 every minibatch;
  trl 1.12's PPO loop never clips (``max_grad_norm`` is unused).
- **Per-step extras.** trl logs through the HF callback machinery, calls
  ``gc.collect()`` twice and empties the accelerator cache every step and
  loads prompts through a ``DataLoader``; ours computes a few more metrics
  (k3 KL, entropy, response length). The full collections are not free:
  trl's process tracks about 0.5 million Python objects, and on 2 CPU cores
  each ``gc.collect()`` took about 0.25 s, roughly a third of trl's step at
  the default size (measured once by timing ``gc.collect`` in the trl child;
  this script times trl's loop as shipped). trl's process also imports pandas,
  datasets and accelerate, which shows in its peak RSS; the JSON reports
  each side's RSS at the start of training too.
- **Small math differences** (see :mod:`workbench.train.ppo_math`): where the
  score is added (the last response token vs one past it), masked vs
  unmasked approxkl and ratio means. No effect on the cost.

Requires network access to PyPI (or the configured pip index) for the
trl==1.12.0 install, unless ``--trl-dir`` points at a folder that already
holds it.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: find benchmarks._common
from benchmarks._common import (TRL_VERSION, BenchError, child_env, child_main, ensure_trl,  # noqa: E402
                                import_trl112, peak_rss_mb, rss_now_mb, run_child, trl_ppo_parts)


#: ``--large``: a model where compute, not Python overhead, dominates a CPU PPO step.
LARGE = {"hidden": 512, "layers": 4, "heads": 8, "intermediate": 1024}


def _fail(message: str) -> None:
    print(f"ppo_throughput: {message}", file=sys.stderr)
    raise SystemExit(2)


# =========================================================================== children (run with --child)


def _check_no_checkpointing(impl: str, model) -> None:
    """Both sides must run without activation checkpointing (trl's configs default it on)."""
    if any(getattr(m, "gradient_checkpointing", False) is True for m in model.modules()):
        raise BenchError(f"{impl}: gradient checkpointing is on in the model; the comparison assumes it off")


def _result(impl: str, spec: dict, stamps: list[float], t_start: float, t_imported: float,
            t_ready: float, rss_start: float, trainable: int, extra: dict) -> dict:
    import torch

    warmup, steps, batch = spec["warmup"], spec["steps"], spec["batch_size"]
    if len(stamps) != warmup + steps:
        raise BenchError(f"{impl}: expected {warmup + steps} step ends, saw {len(stamps)}")
    ends = [t_ready] + stamps
    step_s = [b - a for a, b in zip(ends, ends[1:])]
    seconds = stamps[-1] - stamps[warmup - 1]
    return {
        "impl": impl,
        "eps": batch * steps / seconds,
        "seconds": seconds,
        "step_s": [round(s, 4) for s in step_s],
        "peak_rss_mb": peak_rss_mb(),
        "rss_start_mb": rss_start,
        "import_s": t_imported - t_start,
        "setup_s": t_ready - t_imported,
        "trainable_params": trainable,
        "threads": torch.get_num_threads(),
        **extra,
    }


def child_ours(spec: dict) -> dict:
    t_start = time.perf_counter()
    import torch  # noqa: F401

    from workbench.train.ppo import PPOConfig, PPOTrainer

    t_imported = time.perf_counter()
    cfg = PPOConfig.from_dict({
        "policy_model": spec["policy_dir"], "reward_model": spec["reward_dir"], "prompts": spec["prompts"],
        "device": "cpu", "dtype": "fp32", "gradient_checkpointing": False,
        "lora_r": spec["lora_r"], "lora_alpha": 2 * spec["lora_r"], "lora_dropout": 0.0,
        "lora_target_modules": "all-linear",
        "batch_size": spec["batch_size"], "mini_batch_size": spec["mini_batch_size"],
        "ppo_epochs": spec["ppo_epochs"], "lr": spec["lr"], "lr_scheduler": "constant",
        "max_grad_norm": 1.0, "max_new_tokens": spec["max_new_tokens"], "temperature": spec["temperature"],
        "top_k": 0, "top_p": 1.0, "kl_coef": spec["kl_coef"], "kl_estimator": "k1", "whiten_rewards": False,
        "missing_eos_penalty": None, "gamma": 1.0, "lam": 0.95, "cliprange": 0.2, "cliprange_value": 0.2,
        "vf_coef": 0.1, "total_steps": spec["warmup"] + spec["steps"], "save_every": 0, "samples_every": 0,
        "seed": spec["seed"],
    })
    trainer = PPOTrainer(cfg)
    _check_no_checkpointing("ours", trainer.model)
    trainable = sum(p.numel() for p in trainer.params)
    rss_start = rss_now_mb()
    t_ready = time.perf_counter()
    stamps, eos, lengths = [], [], []
    for _ in range(spec["warmup"] + spec["steps"]):
        metrics, _ro = trainer.train_step()
        stamps.append(time.perf_counter())
        eos.append(metrics["val/num_eos_tokens"])
        lengths.append(metrics["response/length_mean"])
    return _result("ours", spec, stamps, t_start, t_imported, t_ready, rss_start, trainable, {
        "num_eos_mean": sum(eos) / len(eos), "response_length_mean": sum(lengths) / len(lengths),
        "last_scores": metrics["objective/scores"], "last_kl": metrics["objective/kl"],
    })


def child_trl(spec: dict) -> dict:
    t_start = time.perf_counter()
    import torch  # noqa: F401 - counted in the import time, as on our side

    trl = import_trl112(spec["trl_dir"])
    where = Path(trl.__file__).resolve()
    try:
        from trl.experimental.ppo import PPOConfig, PPOTrainer
    except Exception as e:  # noqa: BLE001
        raise BenchError(f"trl {TRL_VERSION}'s trl.experimental.ppo does not import here: "
                         f"{type(e).__name__}: {e}") from e
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    t_imported = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(spec["policy_dir"], padding_side="left")
    # The same prompt ids as ours: the chat template's generation prompt, no extra special tokens.
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
             for p in spec["prompts"]]
    dataset = Dataset.from_dict({"input_ids": [tok(t, add_special_tokens=False)["input_ids"] for t in texts]})
    batch, steps = spec["batch_size"], spec["warmup"] + spec["steps"]
    policy, reward, value, args, peft_config = trl_ppo_parts(spec, PPOConfig, batch, steps, None)

    stamps: list[float] = []
    all_logs: list[dict] = []

    class Stamp(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())

        def on_log(self, args, state, control, logs=None, **kwargs):
            all_logs.append(dict(logs or {}))

    trainer = PPOTrainer(args=args, processing_class=tok, model=policy, ref_model=None, reward_model=reward,
                         train_dataset=dataset, value_model=value, peft_config=peft_config, callbacks=[Stamp()])
    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    if not trainer.is_peft_model or trainer.ref_model is not None:
        raise BenchError("trl's PPOTrainer did not take the adapter-disabled policy as its reference")
    _check_no_checkpointing("trl", trainer.model)
    trainable = sum(p.numel() for g in trainer.optimizer.param_groups for p in g["params"])
    rss_start = rss_now_mb()
    t_ready = time.perf_counter()
    trainer.train()
    eos = [r["val/num_eos_tokens"] for r in all_logs if "val/num_eos_tokens" in r]
    last = next((r for r in reversed(all_logs) if "objective/scores" in r), {})
    return _result("trl", spec, stamps, t_start, t_imported, t_ready, rss_start, trainable, {
        "num_eos_mean": sum(eos) / len(eos) if eos else math.nan,
        "last_scores": last.get("objective/scores"), "last_kl": last.get("objective/kl"),
        "trl": f"{trl.__version__} ({where.parent})",
    })


# =========================================================================== the parent


def run_side(kind: str, spec_path: Path, env: dict) -> dict:
    who = "our engine" if kind == "ours" else f"trl {TRL_VERSION}'s PPOTrainer"
    return run_child(Path(__file__), kind, spec_path, env, who)


def build_models(folder: Path, hidden: int, layers: int, heads: int, intermediate: int) -> tuple[Path, Path]:
    from workbench.models.tiny import build_tiny_model, build_tiny_reward_model

    policy = build_tiny_model(folder / "policy", hidden_size=hidden, num_layers=layers, num_heads=heads,
                              intermediate_size=intermediate, seed=0)
    reward = build_tiny_reward_model(folder / "reward", policy, seed=1)
    return policy, reward


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=128, help="hidden size of the tiny Llama (the demo's: 128)")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=None, help="MLP size; default 2 x hidden")
    ap.add_argument("--batch-size", type=int, default=64, help="episodes per PPO step")
    ap.add_argument("--mini-batch-size", type=int, default=32)
    ap.add_argument("--ppo-epochs", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--lora-r", type=int, default=16, help="LoRA rank (alpha = 2 x rank)")
    ap.add_argument("--steps", type=int, default=10, help="timed PPO steps per run")
    ap.add_argument("--warmup", type=int, default=2, help="PPO steps run before the timed ones (>= 1)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side, alternating; the best is reported")
    ap.add_argument("--threads", type=int, default=1, help="OMP/MKL threads of both children")
    ap.add_argument("--trl-dir", type=Path, default=None,
                    help=f"folder for trl=={TRL_VERSION} (reused if it already holds it); default: a temporary "
                         "folder removed at the end")
    ap.add_argument("--large", action="store_true",
                    help="the larger CPU config (hidden 512, 4 layers, 8 heads, MLP 1024) instead of "
                         "--hidden/--layers/--heads/--intermediate")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.large:
        for key, value in LARGE.items():
            setattr(args, key, value)
    if args.child:
        child_main({"ours": child_ours, "trl": child_trl}, *args.child)
        return
    if args.warmup < 1 or args.steps < 1 or args.repeat < 1:
        ap.error("--warmup, --steps and --repeat must be >= 1")
    if args.batch_size % args.mini_batch_size:
        ap.error("--mini-batch-size must divide --batch-size")

    work = Path(tempfile.mkdtemp(prefix="ppo_throughput_"))
    try:
        trl_dir = ensure_trl(args.trl_dir or work / "trl112", work)

        t = time.perf_counter()
        policy_dir, reward_dir = build_models(work / "models", args.hidden, args.layers, args.heads,
                                              args.intermediate or 2 * args.hidden)
        print(f"tiny Llama hidden {args.hidden}, {args.layers} layers, {args.heads} heads, reward model "
              f"from it: built in {time.perf_counter() - t:.1f} s")
        from workbench.train.demo_task import prompts as demo_prompts

        # The demo's 36 PPO prompts, repeated so trl's drop_last DataLoader never runs short of a batch.
        total = args.batch_size * (args.warmup + args.steps)
        prompts = demo_prompts() * max(1, math.ceil(total / len(demo_prompts())))
        spec = {
            "policy_dir": str(policy_dir), "reward_dir": str(reward_dir), "prompts": prompts,
            "batch_size": args.batch_size, "mini_batch_size": args.mini_batch_size, "ppo_epochs": args.ppo_epochs,
            "max_new_tokens": args.max_new_tokens, "temperature": 0.7, "kl_coef": 0.2, "lr": 5e-5,
            "lora_r": args.lora_r, "steps": args.steps, "warmup": args.warmup, "seed": 42,
            "trl_dir": str(trl_dir), "out_dir": str(work / "trl_out"),
        }
        spec_path = work / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        envs = {"ours": child_env(args.threads, None), "trl": child_env(args.threads, trl_dir)}

        print(f"PPO: batch {args.batch_size}, minibatch {args.mini_batch_size}, {args.ppo_epochs} epochs, "
              f"{args.max_new_tokens} new tokens, LoRA r={args.lora_r}; {args.warmup} warm-up + {args.steps} "
              f"timed steps per run, OMP_NUM_THREADS={args.threads}, best of {args.repeat}", flush=True)
        runs: dict[str, list[dict]] = {"ours": [], "trl": []}
        for i in range(args.repeat):
            order = ("ours", "trl") if i % 2 == 0 else ("trl", "ours")
            for kind in order:
                r = run_side(kind, spec_path, envs[kind])
                runs[kind].append(r)
                print(f"run {i + 1} {kind:>4}: {r['eps']:6.1f} episodes/s ({r['seconds'] / args.steps:.3f} s/step), "
                      f"peak RSS {r['peak_rss_mb']:.0f} MB (at training start {r['rss_start_mb']:.0f} MB), "
                      f"import {r['import_s']:.1f} s, setup {r['setup_s']:.1f} s, "
                      f"EOS/batch {r['num_eos_mean']:.1f}", flush=True)
    except BenchError as e:
        _fail(str(e))
    finally:
        shutil.rmtree(work, ignore_errors=True)  # models, spec, and trl unless --trl-dir named a folder

    best = {k: max(v, key=lambda r: r["eps"]) for k, v in runs.items()}
    rss = {k: min(r["peak_rss_mb"] for r in v) for k, v in runs.items()}
    eps_ratio = best["ours"]["eps"] / best["trl"]["eps"]
    rss_ratio = rss["ours"] / rss["trl"]
    print()
    print(f"{'':28}{'ours':>12}{'trl ' + TRL_VERSION:>14}{'ours/trl':>10}")
    print(f"{'episodes/s (best)':28}{best['ours']['eps']:12.1f}{best['trl']['eps']:14.1f}{eps_ratio:10.2f}")
    print(f"{'s/step (best)':28}{best['ours']['seconds'] / args.steps:12.3f}"
          f"{best['trl']['seconds'] / args.steps:14.3f}{1 / eps_ratio:10.2f}")
    print(f"{'peak RSS MB (lowest)':28}{rss['ours']:12.0f}{rss['trl']:14.0f}{rss_ratio:10.2f}")
    start = {k: min(r["rss_start_mb"] for r in v) for k, v in runs.items()}
    print(f"{'RSS at training start MB':28}{start['ours']:12.0f}{start['trl']:14.0f}"
          f"{start['ours'] / start['trl']:10.2f}")
    print(f"{'trained parameters':28}{best['ours']['trainable_params']:12,}{best['trl']['trainable_params']:14,}")
    full = {
        "eps_ours": round(best["ours"]["eps"], 2), "eps_trl": round(best["trl"]["eps"], 2),
        "eps_ratio": round(eps_ratio, 3),
        "peak_rss_mb_ours": round(rss["ours"], 1), "peak_rss_mb_trl": round(rss["trl"], 1),
        "rss_ratio": round(rss_ratio, 3),
        "rss_start_mb_ours": round(start["ours"], 1), "rss_start_mb_trl": round(start["trl"], 1),
        "eps_runs_ours": [round(r["eps"], 2) for r in runs["ours"]],
        "eps_runs_trl": [round(r["eps"], 2) for r in runs["trl"]],
        "trainable_params_ours": best["ours"]["trainable_params"],
        "trainable_params_trl": best["trl"]["trainable_params"],
        "num_eos_mean_ours": best["ours"]["num_eos_mean"], "num_eos_mean_trl": best["trl"]["num_eos_mean"],
        "config": {"size": "large" if args.large else "demo" if (args.hidden, args.layers) == (128, 2) else "custom",
                   "hidden": args.hidden, "layers": args.layers, "heads": args.heads,
                   "intermediate": args.intermediate or 2 * args.hidden, "batch_size": args.batch_size,
                   "mini_batch_size": args.mini_batch_size, "ppo_epochs": args.ppo_epochs,
                   "max_new_tokens": args.max_new_tokens, "lora_r": args.lora_r, "steps": args.steps,
                   "warmup": args.warmup, "repeat": args.repeat, "threads": args.threads},
        "trl": best["trl"].get("trl"),
    }
    print(json.dumps(full))
    print(json.dumps({"eps_ratio": round(eps_ratio, 3), "rss_ratio": round(rss_ratio, 3)}))


if __name__ == "__main__":
    main()
