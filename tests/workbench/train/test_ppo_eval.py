"""PPO's eval set: config, the validation split as held-out prompts, eval events at the right
steps, deterministic greedy completions, and training left exactly as it is without eval."""

from __future__ import annotations

import math

import pytest
import torch

from workbench.jobs import run as J
from workbench.jobs.events import MetricEvent, SamplesEvent, read_events
from workbench.jobs.rundir import new_run_dir
from workbench.train import ppo_config as C
from workbench.train.ppo import EVAL_METRICS, PPOConfig, PPOTrainer

TIMING = {"time/step_s", "eps"}
SAMPLED_EVAL_T = 2.0  # hot enough that the sharp tiny policy samples differently per seed
TRAIN_PROMPTS = ["Tell me about the sea.", "Describe a quiet morning.", "What is a good lunch?",
                 "Write about the river.", "Name a colour you like.", "How was the trip?"]
# Held out: not among the training prompts; one conversation with a system prompt, unicode.
EVAL_PROMPTS = ["Describe the mountains.", [{"role": "system", "content": "Réponds brièvement. 短く。"},
                                            {"role": "user", "content": "Wie war der Tag? 🌤"}],
                "Tell me about the forest.", "What is your favourite song?"]


@pytest.fixture(autouse=True)
def offline_env(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- config


def test_eval_config_needs_an_eval_set_and_sane_values():
    base = {"policy_model": "m", "prompts": ["p"]}
    assert C.load_ppo_config(base).eval_every == 0  # off by default
    for change, field in (({"eval_every": 5}, "eval_dataset"),
                          ({"eval_every": -1, "eval_prompts": ["q"]}, "eval_every"),
                          ({"eval_num": 0}, "eval_num"),
                          ({"eval_temperature": -0.1}, "eval_temperature"),
                          ({"eval_snapshot": "abcdef12"}, "eval_snapshot"),
                          ({"eval_dataset": "d", "eval_snapshot": "xyz"}, "eval_snapshot"),
                          ({"eval_every": 2, "eval_prompts": ["ok", [{"role": "system", "content": "x"}]]},
                           "eval_prompts")):
        with pytest.raises(C.ConfigError) as err:
            C.load_ppo_config({**base, **change})
        assert err.value.field == field, (change, err.value)
    ok = C.load_ppo_config({**base, "eval_every": 3, "eval_prompts": ["q"], "eval_temperature": 0})
    assert C.load_ppo_config(C.to_dict(ok)) == ok
    cfg = C.load_ppo_config({**base, "eval_every": 3, "eval_prompts": ["q"], "total_steps": 10})
    assert [s for s in range(1, 11) if C.eval_due(cfg, s)] == [1, 3, 6, 9, 10]
    assert not any(C.eval_due(C.load_ppo_config(base), s) for s in range(1, 20))


def test_the_eval_set_is_the_validation_split_and_training_leaves_it_out(train_ws, tiny_model):
    cfg = C.load_ppo_config({"policy_model": "m", "prompt_dataset": "pairs", "eval_dataset": "pairs",
                             "eval_every": 5})
    held_out, snapshot = C.read_prompt_dataset(cfg, train_ws, eval_set=True)
    train, same = C.read_prompt_dataset(cfg, train_ws)
    assert len(held_out) == 8 and len(train) == 32 and snapshot == same  # every 5th of 40 in validation
    assert not set(held_out) & set(train)
    # Another eval dataset: training takes every record of its own.
    other = C.load_ppo_config({"policy_model": "m", "prompt_dataset": "pairs", "eval_dataset": "demos",
                               "eval_every": 5})
    assert len(C.read_prompt_dataset(other, train_ws)[0]) == 40
    assert len(C.read_prompt_dataset(other, train_ws, eval_set=True)[0]) == 6
    ok = {"policy_model": "./models/tiny", "reward_model": "./models/tiny", "prompt_dataset": "prompts",
          "eval_every": 2}
    for change, field in (({"eval_dataset": "pairs_noval"}, "eval_dataset"),
                          ({"eval_dataset": "nope"}, "eval_dataset"),
                          ({"eval_dataset": "pairs", "eval_snapshot": "ffffff"}, "eval_snapshot"),
                          ({"eval_prompts": "missing.jsonl"}, "eval_prompts")):
        with pytest.raises(C.ConfigError) as err:
            C.validate_ppo_before_load(C.load_ppo_config({**ok, **change}), train_ws)
        assert err.value.field == field, (change, err.value)
    assert C.validate_ppo_before_load(C.load_ppo_config({**ok, "eval_dataset": "pairs"}), train_ws) == []


# --------------------------------------------------------------------------- the engine


def trainer_config(models, **over) -> dict:
    cfg = {"policy_model": str(models["sharp"]), "reward_model": str(models["reward"]), "prompts": TRAIN_PROMPTS,
           "eval_prompts": EVAL_PROMPTS, "batch_size": 6, "mini_batch_size": 3, "ppo_epochs": 2,
           "max_new_tokens": 8, "temperature": 1.0, "lr": 3e-3, "kl_coef": 0.1, "lora_r": 4, "lora_alpha": 8,
           "total_steps": 4, "save_every": 0, "samples_every": 2, "num_samples": 2, "seed": 3,
           "eval_every": 3, "eval_num": 3, "forward_batch_size": 2}
    cfg.update(over)
    return cfg


def test_greedy_eval_is_deterministic_and_leaves_the_random_state_alone(ppo_models):
    trainer = PPOTrainer(PPOConfig.from_dict(trainer_config(ppo_models)))
    assert len(trainer.eval_prompts) == 3  # eval_num of the 4
    before = torch.get_rng_state()
    rows, metrics = trainer.run_eval()
    assert torch.equal(torch.get_rng_state(), before)
    assert [r["prompt"] for r in rows] == [EVAL_PROMPTS[0], C.prompt_display(EVAL_PROMPTS[1]), EVAL_PROMPTS[2]]
    assert set(metrics) == set(EVAL_METRICS)
    assert math.isclose(metrics["eval/score"], sum(r["score"] for r in rows) / 3, rel_tol=1e-6)
    again, _ = trainer.run_eval()
    assert again == rows
    # Greedy: each response is the argmax continuation, token by token.
    query_ids, query_mask = trainer._encode_prompts(trainer.eval_prompts[:1])
    ids, mask = query_ids, query_mask
    for _ in range(trainer.config.max_new_tokens):
        with torch.no_grad():
            pos = (mask.long().cumsum(-1) - 1).clamp_min(0)
            nxt = trainer.model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1].argmax(-1)
        ids, mask = torch.cat([ids, nxt[:, None]], 1), torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        if int(nxt) in trainer.eos_ids:
            break
    response = ids[:, query_ids.shape[1]:]
    expected = trainer.decode_responses(response, torch.ones_like(response, dtype=torch.bool))
    assert rows[0]["response"] == expected[0]

    # A sampled eval draws its own seeded randomness, still without touching training's.
    trainer.config.eval_temperature = 1.5
    before = torch.get_rng_state()
    warm, _ = trainer.run_eval()
    assert torch.equal(torch.get_rng_state(), before) and trainer.run_eval()[0] == warm


def run_job(models, tmp_path, **over) -> list:
    rd = new_run_dir(tmp_path / "runs", "ppo", trainer_config(models, **over))
    assert J.run_job(rd) == J.EXIT_COMPLETED
    return read_events(rd.events)


@pytest.fixture(scope="module")
def eval_runs(ppo_models, tmp_path_factory) -> tuple[list, list]:
    """The events of two 4-step jobs: eval sampled at SAMPLED_EVAL_T, and eval off."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return (run_job(ppo_models, tmp_path_factory.mktemp("a"), eval_temperature=SAMPLED_EVAL_T),
                run_job(ppo_models, tmp_path_factory.mktemp("b"), eval_every=0))


def test_a_job_reports_eval_samples_and_score_at_its_steps_and_trains_as_without_eval(eval_runs):
    with_eval, without = eval_runs

    evals = [e for e in with_eval if isinstance(e, SamplesEvent) and e.kind == "eval"]
    assert [e.step for e in evals] == [1, 3, 4]  # step 1, every 3rd, the last
    assert all(len(e.rows) == 3 and all(isinstance(r["score"], float) for r in e.rows) for e in evals)
    assert {r["prompt"] for e in evals for r in e.rows} <= {C.prompt_display(p) for p in EVAL_PROMPTS}
    train = [e for e in with_eval if isinstance(e, SamplesEvent) and e.kind == "train"]
    assert [e.step for e in train] == [1, 2, 4] and all(r["prompt"] in TRAIN_PROMPTS for e in train for r in e.rows)
    assert not [e for e in without if isinstance(e, SamplesEvent) and e.kind == "eval"]

    metrics = {e.step: e.values for e in with_eval if isinstance(e, MetricEvent)}
    plain = {e.step: e.values for e in without if isinstance(e, MetricEvent)}
    assert sorted(metrics) == sorted(plain) == [1, 2, 3, 4]
    for step in (1, 3, 4):
        want = sum(r["score"] for r in next(e for e in evals if e.step == step).rows) / 3
        assert math.isclose(metrics[step]["eval/score"], want, rel_tol=1e-6)
    assert "eval/score" not in metrics[2] and "eval/score" not in plain[4]
    for step, values in plain.items():  # eval on or off: the same training, to the bit
        for name, want in values.items():
            if name not in TIMING:
                assert metrics[step][name] == want, (step, name, metrics[step][name], want)


def test_a_cancelled_run_with_eval_resumes_exactly(ppo_models, eval_runs, tmp_path, monkeypatch):
    from workbench.jobs.rundir import clear_cancel, request_cancel

    expected = {e.step: e.values for e in eval_runs[0] if isinstance(e, MetricEvent)}
    expected_evals = {e.step: e.rows for e in eval_runs[0] if isinstance(e, SamplesEvent) and e.kind == "eval"}
    report = J.JobContext.metric

    def metric_then_cancel(self, step, values=None, /, **named):
        report(self, step, values, **named)
        if step == 2:
            request_cancel(self.run_dir)

    rd = new_run_dir(tmp_path / "runs", "ppo", trainer_config(ppo_models, eval_temperature=SAMPLED_EVAL_T))
    with monkeypatch.context() as mp:
        mp.setattr(J.JobContext, "metric", metric_then_cancel)
        assert J.run_job(rd) == J.EXIT_CANCELLED
    clear_cancel(rd)
    assert J.run_job(rd, resume=True) == J.EXIT_COMPLETED
    events = read_events(rd.events)
    resumed = {e.step: e.values for e in events if isinstance(e, MetricEvent)}
    for step in (3, 4):  # after the resume: training and the eval both as in the uninterrupted run
        for name, want in expected[step].items():
            if name not in TIMING:
                assert math.isclose(resumed[step][name], want, rel_tol=1e-5, abs_tol=1e-6), (step, name)
        assert [e.rows for e in events if isinstance(e, SamplesEvent) and e.kind == "eval"
                and e.step == step][-1] == expected_evals[step]


def test_a_job_evaluates_on_the_validation_split_and_pins_its_snapshot(train_ws, ppo_models, tmp_path):
    import shutil

    import yaml

    ws = tmp_path / "ws"  # a copy: the shared workspace must not keep this run
    shutil.copytree(train_ws, ws)
    config = {"policy_model": str(ppo_models["policy"]), "reward_model": str(ppo_models["reward"]),
              "prompt_dataset": "pairs", "eval_dataset": "pairs", "eval_every": 1, "eval_num": 50,
              "device": "cpu", "dtype": "fp32", "batch_size": 4, "mini_batch_size": 2, "ppo_epochs": 1,
              "max_new_tokens": 4, "total_steps": 1, "save_every": 0, "samples_every": 1, "num_samples": 4}
    rd = new_run_dir(ws / "runs", "ppo", config)
    assert J.run_job(rd) == J.EXIT_COMPLETED
    held_out, snapshot = C.read_prompt_dataset(C.load_ppo_config(config), ws, eval_set=True)
    events = read_events(rd.events)
    evals = [e for e in events if isinstance(e, SamplesEvent) and e.kind == "eval"]
    assert len(evals) == 1 and [r["prompt"] for r in evals[0].rows] == held_out  # all 8, in order
    train = [e for e in events if isinstance(e, SamplesEvent) and e.kind == "train"]
    assert train and not {r["prompt"] for r in train[0].rows} & set(held_out)
    pinned = yaml.safe_load(rd.config.read_text())
    assert pinned["eval_snapshot"] == pinned["snapshot"] == snapshot and pinned["eval_prompts"] == []


def test_a_relative_eval_prompt_file_is_read_from_the_workspace(train_ws, ppo_models, tmp_path):
    import json
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(train_ws, ws)
    lines = [json.dumps({"prompt": p}, ensure_ascii=False) for p in EVAL_PROMPTS]
    (ws / "held out ☂.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = {**trainer_config(ppo_models), "eval_prompts": "held out ☂.jsonl", "eval_every": 1, "eval_num": 4,
              "total_steps": 1, "ppo_epochs": 1}
    rd = new_run_dir(ws / "runs", "ppo", config)  # the job runs in the run folder, not the workspace
    assert J.run_job(rd) == J.EXIT_COMPLETED
    evals = [e for e in read_events(rd.events) if isinstance(e, SamplesEvent) and e.kind == "eval"]
    assert [r["prompt"] for r in evals[0].rows] == [C.prompt_display(p) for p in EVAL_PROMPTS]
