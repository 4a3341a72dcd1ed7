"""Record the PPO run folders the runs-page tests replay (not a test; run by hand).

    rlhf-workbench demo --quick WS        # or the full demo: an SFT and a reward-model run
    python tests/ui/training/data/record_ppo_runs.py WS NAME [KEY=VALUE ...]

Starts a real PPO job (the workbench's own engine, through the supervisor)
on the demo's SFT checkpoint with the demo's reward model, overriding the
demo's PPO settings with ``KEY=VALUE`` (YAML values; with ``eval_every`` set and no
``eval_prompts``, the eval set is the demo's held-out prompts), waits for it, and
copies its run folder (``config.yaml``, ``events.jsonl``, ``stderr.log``;
no checkpoints) to ``tests/ui/training/data/NAME/``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import yaml

from workbench.jobs.rundir import latest_complete_checkpoint
from workbench.jobs.supervisor import Supervisor
from workbench.models.tiny import demo_prompts

HERE = Path(__file__).resolve().parent


def latest_run(ws: Path, stage: str) -> Path:
    runs = sorted(p for p in (ws / "runs").iterdir() if f"-{stage}-" in p.name)
    if not runs:
        raise SystemExit(f"{ws}: no {stage} run (build the demo first)")
    return runs[-1]


def main(argv: list[str]) -> int:
    ws, name, overrides = Path(argv[0]).resolve(), argv[1], argv[2:]
    config = {
        "policy_model": str(latest_complete_checkpoint(latest_run(ws, "sft"))),
        "reward_model": str(latest_complete_checkpoint(latest_run(ws, "reward"))),
        "prompts": demo_prompts(), "device": "cpu", "dtype": "fp32", "lora_r": 16, "lora_alpha": 32,
        "batch_size": 64, "mini_batch_size": 32, "ppo_epochs": 4, "lr": 5e-5, "lr_scheduler": "constant",
        "max_new_tokens": 16, "temperature": 0.7, "kl_coef": 0.2, "total_steps": 60, "save_every": 0,
        "samples_every": 1, "num_samples": 8, "seed": 0,
    }
    for item in overrides:
        key, _, value = item.partition("=")
        config[key] = yaml.safe_load(value)
    if config.get("eval_every") and not config.get("eval_prompts"):
        from workbench.train.demo_task import held_out_prompts

        config["eval_prompts"] = held_out_prompts()  # the demo's blind-comparison prompts
    sup = Supervisor(ws)
    handle = sup.start("ppo", config)
    info = sup.wait(handle.run_id, timeout=1200, poll=True)
    print(f"{handle.run_id}: {info.status} {info.error or ''}")
    out = HERE / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    for f in ("config.yaml", "events.jsonl", "stderr.log"):
        shutil.copy2(handle.path / f, out / f)
    (out / "RUN_ID").write_text(handle.run_id + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
