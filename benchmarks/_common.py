"""Helpers the benchmark scripts share: trl 1.12.0 in a throwaway folder, child
environments, memory readings.

trl removed its PPO trainer in 1.13.0 (the venv has a later trl), so the PPO
benchmarks install trl==1.12.0, the last release with it, into a folder of
their own with ``pip install --no-deps --target`` (plus ``requests`` and its
pure-Python dependencies, which trl 1.12's ``trl.experimental`` needs to
import; torch is pinned by a constraints file so nothing can pull a CUDA
build). The venv's own trl is never touched: only a trl child process gets
the folder, first on ``PYTHONPATH``, and checks with :func:`import_trl112`
that it imported 1.12.0 from there.

Scripts run as ``python benchmarks/<name>.py`` import this module as
``benchmarks._common`` after putting the repository root on ``sys.path``.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRL_VERSION = "1.12.0"
#: Installed with --no-deps next to trl: requests (trl 1.12's experimental GRPO/RLOO modules import it,
#: and trl.experimental imports those) and requests' own pure-Python dependencies.
TRL_EXTRAS = ("requests", "urllib3", "charset-normalizer", "certifi", "idna")
TORCH_PIN = "torch==2.13.0"
#: Offline, quiet, single-tokenizer-thread settings every benchmark child runs with.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
               "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
               "TRL_EXPERIMENTAL_SILENCE": "1", "WANDB_DISABLED": "true"}


class BenchError(Exception):
    """The comparison cannot be made; the message says why."""


# -- trl 1.12.0 in a folder of its own -------------------------------------------------------------


def has_trl(target: Path) -> bool:
    """Whether ``target`` already holds trl==1.12.0 (with its PPO trainer) and :data:`TRL_EXTRAS`."""
    meta = target / f"trl-{TRL_VERSION}.dist-info"
    return meta.is_dir() and (target / "trl" / "experimental" / "ppo" / "ppo_trainer.py").is_file() and all(
        any(target.glob(f"{name.replace('-', '_')}-*.dist-info")) for name in TRL_EXTRAS)


def install_trl(target: Path, work: Path) -> None:
    """``pip install --no-deps --target`` trl==1.12.0 and requests into ``target``; BenchError if it fails."""
    constraints = work / "constraints.txt"
    constraints.write_text(TORCH_PIN + "\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet",
           "--no-deps", "--target", str(target), "-c", str(constraints), f"trl=={TRL_VERSION}", *TRL_EXTRAS]
    print("installing: " + " ".join(cmd[1:]), flush=True)
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise BenchError(f"pip did not finish installing trl=={TRL_VERSION} within 10 minutes") from None
    if out.returncode != 0:
        tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-15:])
        raise BenchError(f"cannot install trl=={TRL_VERSION} (the last release with PPOTrainer) into "
                         f"{target}: pip exited with {out.returncode}:\n{tail}")
    if not (target / "trl" / "experimental" / "ppo" / "ppo_trainer.py").is_file():
        raise BenchError(f"pip reported success but {target} holds no trl/experimental/ppo/ppo_trainer.py")


def ensure_trl(target: Path, work: Path) -> Path:
    """``target`` (resolved), holding trl 1.12.0: reused when it already does, else installed."""
    target = target.resolve()
    if has_trl(target):
        print(f"trl {TRL_VERSION} already in {target}")
    else:
        install_trl(target, work)
    return target


def import_trl112(trl_dir: str):
    """In a trl child: import trl and check it is 1.12.0 from ``trl_dir``; returns the module."""
    try:
        import trl
    except Exception as e:  # noqa: BLE001 -- report any import failure as the reason
        raise BenchError(f"trl {TRL_VERSION} does not import here: {type(e).__name__}: {e}") from e
    where = Path(trl.__file__).resolve()
    if trl.__version__ != TRL_VERSION or Path(trl_dir).resolve() not in where.parents:
        raise BenchError(f"the trl child imported trl {trl.__version__} from {where}, "
                         f"not {TRL_VERSION} from {trl_dir}")
    return trl


def trl_ppo_parts(spec: dict, PPOConfig, batch: int, steps: int, missing_eos_penalty=None):
    """In a trl child: trl 1.12's policy, reward and value models, ``PPOConfig`` and LoRA config
    for ``spec``, set as our engine runs (CPU, fp32, constant lr, k1 KL, no reward whitening,
    vf_coef 0.1). ``PPOConfig`` is the trl 1.12 class the caller imported. Returns
    ``(policy, reward, value, args, peft_config)``."""
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    policy = AutoModelForCausalLM.from_pretrained(spec["policy_dir"], dtype=torch.float32)
    reward = AutoModelForSequenceClassification.from_pretrained(spec["reward_dir"], num_labels=1,
                                                                dtype=torch.float32)
    value = AutoModelForSequenceClassification.from_pretrained(spec["reward_dir"], num_labels=1,
                                                               dtype=torch.float32)
    args = PPOConfig(
        output_dir=spec["out_dir"], report_to="none", save_strategy="no", logging_steps=1, disable_tqdm=True,
        use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False, seed=spec["seed"],
        per_device_train_batch_size=batch, gradient_accumulation_steps=1,
        num_mini_batches=batch // spec["mini_batch_size"], local_rollout_forward_batch_size=batch,
        num_ppo_epochs=spec["ppo_epochs"], total_episodes=batch * steps, num_sample_generations=0,
        response_length=spec["max_new_tokens"], temperature=spec["temperature"], stop_token="eos",
        missing_eos_penalty=missing_eos_penalty, kl_coef=spec["kl_coef"], kl_estimator="k1",
        whiten_rewards=False, gamma=1.0, lam=0.95, cliprange=0.2, cliprange_value=0.2, vf_coef=0.1,
        learning_rate=spec["lr"], lr_scheduler_type="constant", optim="adamw_torch", adam_epsilon=1e-5,
        weight_decay=0.0, dataloader_num_workers=0,
    )
    peft_config = LoraConfig(r=spec["lora_r"], lora_alpha=2 * spec["lora_r"], lora_dropout=0.0,
                             target_modules="all-linear", task_type="CAUSAL_LM", bias="none")
    return policy, reward, value, args, peft_config


def child_env(threads: int, trl_dir: Path | None) -> dict:
    """This process's environment for a benchmark child: ``threads`` OMP/MKL threads, offline,
    and (for a trl child) ``trl_dir`` first on ``PYTHONPATH``."""
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if trl_dir is not None:
        paths.insert(0, str(trl_dir))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if not paths:
        env.pop("PYTHONPATH")
    env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), **OFFLINE_ENV})
    return env


# -- memory ---------------------------------------------------------------------------------------


def rss_now_mb() -> float:
    """Current resident set size in MB (Linux), or NaN."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20  # KB on Linux, bytes on macOS


# -- child processes ------------------------------------------------------------------------------

#: The line prefix a child writes on stderr when the comparison cannot be made (then it exits 3).
ERROR_PREFIX = "BENCH-ERROR: "


def child_main(runners: dict, kind: str, spec_path: str) -> None:
    """In a child: run ``runners[kind](spec)`` on the JSON spec file and print its result as the
    last line; a :class:`BenchError` becomes one ``BENCH-ERROR:`` line on stderr and exit status 3."""
    import json

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    try:
        result = runners[kind](spec)
    except BenchError as e:
        print(f"{ERROR_PREFIX}{e}", file=sys.stderr)
        raise SystemExit(3)
    print(json.dumps(result))


def run_child(script: Path, kind: str, spec_path: Path, env: dict, who: str,
              timeout: float | None = None) -> dict:
    """Run ``script --child KIND SPEC`` (answered by :func:`child_main`) and return its JSON result;
    BenchError naming ``who`` with the child's reason (or its stderr tail) if it failed."""
    import json

    cmd = [sys.executable, str(Path(script).resolve()), "--child", kind, str(spec_path)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(REPO), timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{who} did not finish within {timeout:g} s") from None
    if out.returncode != 0:
        reason = next((line[len(ERROR_PREFIX):] for line in out.stderr.splitlines()
                       if line.startswith(ERROR_PREFIX)), None)
        tail = "\n".join(out.stderr.strip().splitlines()[-20:])
        raise BenchError(f"{who} failed in its child process (exit {out.returncode}): " + (reason or f"\n{tail}"))
    return json.loads(out.stdout.strip().splitlines()[-1])
