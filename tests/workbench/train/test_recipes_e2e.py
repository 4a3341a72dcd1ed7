"""One tiny end-to-end run per recipe through the real Supervisor (DESIGN.md section 6.8):
SFT, reward model, DPO, a cancelled SFT run resumed to the end (whose real checkpoints then
pass the resume check, until one is cut), and a run that diverges.

The jobs start together (``queue=False``) when the module's first test asks for them:
each pays about 5 s of imports, and they overlap.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time

import pytest
import yaml

from workbench.jobs.events import (CheckpointEvent, EventTailer, FinishedEvent, LogEvent, MetricEvent,
                                   StartedEvent, WarningEvent, read_events)
from workbench.jobs.rundir import list_checkpoints, request_cancel
from workbench.jobs.supervisor import Supervisor

pytestmark = pytest.mark.slow
TIMEOUT = 120


def _cancel_at_first_metric(path, stop: threading.Event) -> None:
    """Ask the run to stop as soon as it reports its first training step."""
    tailer = EventTailer(path / "events.jsonl")
    while not stop.is_set():
        if any(isinstance(e, MetricEvent) for e in tailer.read()):
            request_cancel(path)
            return
        time.sleep(0.02)


@pytest.fixture(scope="module")
def runs(train_ws, small_config):
    sup = Supervisor(train_ws)
    configs = {
        "sft": ("sft", {**small_config("demos", save_steps=3), "model": {
            **small_config()["model"], "save_merged": True}}),
        "reward": ("reward", {**small_config("pairs", learning_rate=5e-4),
                              "model": {"ref": "./models/tiny", "lora": False}, "eval_steps": 2}),
        "dpo": ("dpo", {**small_config("pairs"), "beta": 0.2}),
        # Long enough to be cancelled mid-run; resumed later to its end.
        "cancel": ("sft", small_config("demos", max_steps=300, lr_scheduler="constant")),
        # A real divergence: lr 1e30 overflows fp32 at the second step.
        "nan": ("sft", small_config("demos_text", learning_rate=1e30, max_steps=10, save_steps=1,
                                          keep_checkpoints=0)),
    }
    handles = {name: sup.start(stage, config, queue=False) for name, (stage, config) in configs.items()}
    stop = threading.Event()
    watcher = threading.Thread(target=_cancel_at_first_metric, args=(handles["cancel"].path, stop), daemon=True)
    watcher.start()
    yield sup, handles
    stop.set()
    for handle in handles.values():  # whatever a failed test left running
        info = handle.info()
        if info.alive and info.pid:
            try:
                os.killpg(info.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            sup.wait(info.run_id, timeout=10)


def finished_run(runs, name):
    sup, handles = runs
    info = handles[name].wait(timeout=TIMEOUT)
    tailer = EventTailer(handles[name].path / "events.jsonl")
    events = []
    while batch := tailer.read():
        events += batch
    assert tailer.errors == []  # every line parses
    return info, events, handles[name].path


def metrics(events) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list] = {}
    for e in events:
        if isinstance(e, MetricEvent):
            for k, v in e.values.items():
                out.setdefault(k, []).append((e.step, v))
    return out


def test_sft_job_end_to_end(runs):
    info, events, path = finished_run(runs, "sft")
    assert info.status == "completed", (info.error, (path / "stderr.log").read_text()[-3000:])
    assert isinstance(events[0], StartedEvent) and events[0].stage == "sft"
    assert isinstance(events[-1], FinishedEvent) and events[-1].status == "completed"
    m = metrics(events)
    assert [s for s, _ in m["loss"]] == [1, 2, 3, 4, 5, 6] and all(math.isfinite(v) for _, v in m["loss"])
    for name in ("grad_norm", "learning_rate", "mean_token_accuracy", "num_tokens", "eval_loss"):
        assert name in m
    assert [e.step for e in events if isinstance(e, CheckpointEvent)] == [3, 6, 6]  # periodic, then final
    assert [s for s, _ in list_checkpoints(path)] == [3, 6]
    final = path / "checkpoints" / "step-6"
    assert (final / "COMPLETE").is_file() and (final / "adapter_model.safetensors").is_file()
    manifest = json.loads((final / "workbench.json").read_text())
    assert manifest["final"] and manifest["adapter"] and manifest["merged"] == "merged"
    assert manifest["conversational"] is True  # 'demos' is a chat dataset; PPO's 'auto' formats read this
    # The merged model is a full model folder the next stage can take.
    from workbench.models.refs import check_model_ref
    check_model_ref(final / "merged")
    assert (path / "checkpoints" / "step-3" / "optimizer.pt").is_file()  # resumable
    # The snapshot is pinned: in a log line, config.yaml (a resume reads the same records) and env.json.
    env = json.loads((path / "env.json").read_text())
    snapshot = env["dataset"]["snapshot"]
    assert len(snapshot) == 64 and env["dataset"] == {"name": "demos", "snapshot": snapshot, "kind": "sft",
                                                      "train_rows": 24, "validation_rows": 6}
    assert yaml.safe_load((path / "config.yaml").read_text())["data"]["snapshot"] == snapshot
    assert manifest["snapshot"] == snapshot
    assert any(isinstance(e, LogEvent) and snapshot[:12] in e.message for e in events)


def test_reward_job_reports_held_out_metrics(runs):
    info, events, path = finished_run(runs, "reward")
    assert info.status == "completed", (info.error, (path / "stderr.log").read_text()[-3000:])
    m = metrics(events)
    for name in ("loss", "accuracy", "margin", "mean_reward"):  # TRL's training metrics
        assert name in m
    evals = {k: v for k, v in m.items() if k.startswith("eval/")}
    assert set(evals) == {"eval/accuracy", "eval/margin", "eval/reward_mean", "eval/reward_std",
                          "eval/length_corr", "eval/loss"}
    assert [s for s, _ in evals["eval/accuracy"]] == [2, 4, 6]  # every eval_steps; the end is step 6
    assert all(0 <= v <= 1 for _, v in evals["eval/accuracy"])
    assert all(-1 <= v <= 1 for _, v in evals["eval/length_corr"])
    assert all(v >= 0 for _, v in evals["eval/reward_std"])
    final = path / "checkpoints" / "step-6"
    assert (final / "model.safetensors").is_file()  # all weights trained: a full reward model folder
    assert json.loads((final / "config.json").read_text())["architectures"] == ["LlamaForSequenceClassification"]


def test_dpo_job_end_to_end(runs):
    info, events, path = finished_run(runs, "dpo")
    assert info.status == "completed", (info.error, (path / "stderr.log").read_text()[-3000:])
    m = metrics(events)
    assert [s for s, _ in m["loss"]] == [1, 2, 3, 4, 5, 6]
    for name in ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                 "eval_loss"):
        assert name in m
    assert m["loss"][0][1] == pytest.approx(math.log(2), abs=1e-3)  # policy == reference at the start
    assert [s for s, _ in list_checkpoints(path)] == [6]


def test_cancel_mid_run_saves_a_checkpoint_and_resume_finishes_it(runs):
    sup, handles = runs
    info, events, path = finished_run(runs, "cancel")
    assert info.status == "cancelled", (info.error, (path / "stderr.log").read_text()[-3000:])
    assert "checkpoint saved" in info.error
    [(step, folder)] = list_checkpoints(path)
    assert 1 <= step < 300
    assert (folder / "optimizer.pt").is_file() and (folder / "adapter_model.safetensors").is_file()
    assert [e.step for e in events if isinstance(e, CheckpointEvent)] == [step]

    info = sup.resume(handles["cancel"].run_id, queue=False).wait(timeout=TIMEOUT)
    assert info.status == "completed", (info.error, (path / "stderr.log").read_text()[-3000:])
    events = read_events(path / "events.jsonl")
    second = max(i for i, e in enumerate(events) if isinstance(e, StartedEvent))
    assert events[second].resume_from == f"checkpoints/step-{step}"
    steps = [s for s, _ in metrics(events[second:])["loss"]]
    assert steps[0] == step + 1 and steps[-1] == 300  # continues where it stopped
    assert [s for s, _ in list_checkpoints(path)] == [step, 300]


def test_real_checkpoints_verify_and_a_truncated_one_is_passed_over(runs):
    """The HF/TRL files of real checkpoints (adapter, optimizer, scheduler, RNG, trainer state) pass
    the resume check; cut the newest one's weights and a resume falls back to the one before."""
    from workbench.jobs.checkpoints import resume_checkpoint, verify_checkpoint

    _sup, handles = runs
    path = handles["cancel"].path  # resumed to its end by the test above: two checkpoints
    found = list_checkpoints(path)
    assert len(found) == 2
    for _step, folder in found + list_checkpoints(handles["sft"].path) + list_checkpoints(handles["reward"].path):
        assert verify_checkpoint(folder) is None, folder
    weights = found[-1][1] / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    chosen, warnings = resume_checkpoint(path)
    assert chosen == found[0][1]
    assert len(warnings) == 1 and str(found[-1][1]) in warnings[0] and "adapter_model.safetensors" in warnings[0]


def test_a_diverging_run_warns_stops_and_fails(runs):
    info, events, path = finished_run(runs, "nan")
    assert info.status == "failed" and "training diverged at step" in info.error
    warnings = [e for e in events if isinstance(e, WarningEvent)]
    assert [w.code for w in warnings] == ["nan_loss"]
    bad_step = warnings[0].step
    losses = dict(metrics(events)["loss"])
    assert not math.isfinite(losses[bad_step]) and max(losses) == bad_step  # stopped right there
    # Steps before it were saved (save_steps 1); the diverged weights were not.
    assert [s for s, _ in list_checkpoints(path)] == list(range(1, bad_step))
