"""The PPO engine on tiny CPU models: config, masking, the first step's KL, job
events, checkpoints, exact resume after a cancel, divergence, and a learning check.

The job tests run the real runner in this process (``run_job``) on a
"sharp" copy of the tiny model: its final norm is scaled up so the policy's
logits can actually move (a random-init tiny Llama's logits span about +-1,
so PPO barely changes it), which makes the resume comparison meaningful.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from workbench.jobs import run as J
from workbench.jobs.events import (CheckpointEvent, FinishedEvent, MetricEvent, SamplesEvent,
                                   WarningEvent, read_events)
from workbench.jobs.rundir import (COMPLETE, clear_cancel, list_checkpoints, new_run_dir,
                                   request_cancel)
from workbench.train import ppo
from workbench.train.ppo import METRIC_NAMES, PPOConfig, PPOTrainer

# Metrics that measure wall time, not the computation.
TIMING = {"time/step_s", "eps"}


@pytest.fixture(autouse=True)
def offline_env(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: tiny models gain nothing from two, and lose a lot when another
    process holds the second core (every op then waits for the descheduled thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def models(ppo_models) -> dict[str, Path]:
    """``{"policy", "sharp", "gpt2", "reward"}`` (see ``ppo_models`` in conftest.py)."""
    return ppo_models


def prompts() -> list[str]:
    from workbench.models.tiny import demo_prompts

    return demo_prompts()[:12]


def make_trainer(policy: Path, reward: Path) -> PPOTrainer:
    cfg = PPOConfig.from_dict({"policy_model": str(policy), "reward_model": str(reward), "prompts": prompts(),
                               "batch_size": 6, "mini_batch_size": 3, "max_new_tokens": 8, "temperature": 0.9})
    return PPOTrainer(cfg)


@pytest.fixture(scope="module")
def trainer(models) -> PPOTrainer:
    """A trainer on the plain tiny model and reward model; tests only read and roll out."""
    return make_trainer(models["policy"], models["reward"])


@pytest.fixture(scope="module")
def gpt2_trainer(models) -> PPOTrainer:
    return make_trainer(models["gpt2"], models["reward"])


# --------------------------------------------------------------------------- config and prompts


def test_config_reads_yaml_values_and_names_bad_fields():
    cfg = PPOConfig.from_dict({"policy_model": "m", "reward_model": "r", "prompts": ["a"], "lr": "5e-5",
                               "total_steps": 10.0, "missing_eos_penalty": None, "kl_horizon": 100})
    assert cfg.lr == 5e-5 and cfg.total_steps == 10 and cfg.kl_horizon == 100.0
    assert isinstance(cfg.total_steps, int) and isinstance(cfg.kl_horizon, float)
    with pytest.raises(ppo.ConfigError, match="unknown PPO config key.*learning_rte"):
        PPOConfig.from_dict({"policy_model": "m", "prompts": ["a"], "learning_rte": 1})
    with pytest.raises(ppo.ConfigError, match="mini_batch_size: must divide batch_size"):
        PPOConfig.from_dict({"policy_model": "m", "prompts": ["a"], "batch_size": 6, "mini_batch_size": 4})
    with pytest.raises(ppo.ConfigError, match="kl_estimator"):
        PPOConfig.from_dict({"policy_model": "m", "prompts": ["a"], "kl_estimator": "k9"})
    with pytest.raises(ppo.ConfigError, match="total_steps: expected int"):
        PPOConfig.from_dict({"policy_model": "m", "prompts": ["a"], "total_steps": 2.5})
    with pytest.raises(ppo.ConfigError, match="adaptive_kl: expected bool"):
        PPOConfig.from_dict({"policy_model": "m", "prompts": ["a"], "adaptive_kl": "yes"})
    from dataclasses import fields
    assert all(f.metadata.get("help") for f in fields(PPOConfig))


def test_prompts_from_jsonl_with_line_numbers_in_errors(tmp_path):
    good = tmp_path / "p.jsonl"
    good.write_text('{"prompt": "Tell me about river."}\n\n{"prompt": "Hi"}\n', encoding="utf-8")
    assert ppo.load_prompts(str(good)) == ["Tell me about river.", "Hi"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"text": "no prompt"}\n', encoding="utf-8")
    with pytest.raises(ppo.DataError, match=r"bad.jsonl:2: field 'prompt'"):
        ppo.load_prompts(str(bad))


def test_prompt_sampler_is_seeded_and_resumable():
    a = ppo.PromptSampler([f"p{i}" for i in range(5)], seed=3)
    first = a.next_batch(3)
    state = a.state_dict()
    rest = a.next_batch(6)  # crosses into the next epoch
    b = ppo.PromptSampler([f"p{i}" for i in range(5)], seed=3)
    b.load_state_dict(state)
    assert b.next_batch(6) == rest
    assert sorted(first + rest[:2]) == [f"p{i}" for i in range(5)]  # an epoch is a permutation


# --------------------------------------------------------------------------- rollout mechanics


def test_reference_equals_policy_before_training(trainer):
    """LoRA's B starts at zero: the adapter-disabled reference is the policy, so KL is exactly 0."""
    ro = trainer.rollout(prompts()[:6])
    assert torch.equal(ro.logprobs, ro.ref_logprobs)
    assert torch.count_nonzero(ro.values) == 0  # zero-initialized value head
    rewards, non_score, kl = ppo.P.per_token_rewards(ro.scores, ro.logprobs, ro.ref_logprobs, ro.mask, 0.2)
    assert torch.equal(kl, torch.zeros_like(kl)) and torch.equal(non_score, torch.zeros_like(non_score))


@pytest.mark.parametrize("which", ["trainer", "gpt2_trainer"])
def test_logprobs_match_what_generate_sampled_with_left_padding(which, request):
    """position_ids = cumsum(mask) - 1 and logits / temperature: the forward pass reproduces
    the distribution each token was sampled from, for short (padded) and long prompts alike."""
    trainer = request.getfixturevalue(which)
    batch = ["Hi.", "Tell me about the long and winding river in the summer."]
    query_ids, query_mask = trainer._encode_prompts(batch)
    assert (query_mask[0] == 0).any(), "the short prompt must be left-padded"
    out = trainer.model.generate(
        input_ids=query_ids, attention_mask=query_mask, do_sample=True, temperature=trainer.config.temperature,
        top_k=0, top_p=1.0, max_new_tokens=8, eos_token_id=trainer.eos_ids, pad_token_id=trainer.pad_id,
        output_logits=True, return_dict_in_generate=True)
    response_ids = out.sequences[:, query_ids.shape[1]:]
    sampled = torch.log_softmax(torch.stack(out.logits, 1).float() / trainer.config.temperature, -1)
    expected = torch.gather(sampled, -1, response_ids.unsqueeze(-1)).squeeze(-1)
    ro = trainer.evaluate(batch, query_ids, query_mask, response_ids)
    assert torch.allclose(ro.logprobs[ro.mask], expected[ro.mask], atol=1e-4)
    # Each row alone, without padding, gives the same numbers.
    for i, prompt in enumerate(batch):
        q, m = trainer._encode_prompts([prompt])
        alone = trainer.evaluate([prompt], q, m, response_ids[i:i + 1])
        assert torch.allclose(alone.logprobs[0], ro.logprobs[i], atol=1e-5)
        assert alone.scores[0].item() == pytest.approx(ro.scores[i].item(), abs=1e-5)


def test_dropout_is_off_so_the_first_ratio_is_one(gpt2_trainer):
    """GPT-2 has dropout layers; in training mode the forward must still repeat exactly."""
    trainer = gpt2_trainer
    ro = trainer.rollout(prompts()[:3])
    trainer.model.train()
    try:
        logits, values = trainer.forward(ro.input_ids, ro.attention_mask, ro.query_ids.shape[1])
    finally:
        trainer.model.eval()
    new = trainer.token_logprobs(logits, ro.response_ids)
    _loss, stats = ppo.P.clipped_policy_loss(new, ro.logprobs, torch.ones_like(new), ro.mask, 0.2)
    assert stats["ratio"].item() == pytest.approx(1.0, abs=1e-5) and stats["clipfrac"].item() == 0.0


def test_tokens_after_the_first_eos_are_masked_everywhere(trainer):
    eos, pad = trainer.eos_ids[0], trainer.pad_id
    word = trainer.tokenizer.encode(" good", add_special_tokens=False)
    junk = trainer.tokenizer.encode(" terrible awful", add_special_tokens=False)
    assert eos != pad
    batch = prompts()[:3]
    query_ids, query_mask = trainer._encode_prompts(batch)

    def responses(after_eos: list[int]) -> torch.Tensor:
        rows = [word + [eos] + after_eos, word + word + word, [eos] + after_eos + word]
        width = max(len(r) for r in rows)
        return torch.tensor([r + [pad] * (width - len(r)) for r in rows])

    a = trainer.evaluate(batch, query_ids, query_mask, responses(junk + junk))
    b = trainer.evaluate(batch, query_ids, query_mask, responses([pad] * len(junk) + [eos] * len(junk)))
    n = len(word)
    assert a.mask.sum(1).tolist() == [n + 1, 3 * n, 1]  # the first EOS is in, nothing after it
    assert a.contains_eos.tolist() == [True, False, True]
    assert a.responses == [" good", " good good good", ""]
    assert a.responses[0] == b.responses[0]
    for name in ("logprobs", "ref_logprobs", "values", "entropy"):
        x, y = getattr(a, name), getattr(b, name)
        assert torch.equal(x[~a.mask], torch.zeros_like(x[~a.mask])), name  # nothing stored past EOS
        assert torch.allclose(x[a.mask], y[b.mask], atol=1e-6), name  # junk after EOS changes nothing
    assert torch.allclose(a.scores, b.scores, atol=1e-6)
    rewards, _, _ = ppo.P.per_token_rewards(a.scores, a.logprobs, a.ref_logprobs, a.mask, 0.1)
    assert rewards[0, n].item() == pytest.approx(a.scores[0].item())  # the score sits on the EOS


def test_reward_model_scores_the_chat_templated_text(trainer):
    assert trainer.reward_text("Tell me about river.", "good day") == \
        "<|user|>\nTell me about river.\n<|assistant|>\ngood day<|eos|>"
    pairs = [("Tell me about river.", "good day"), ("Hi.", "a much longer and happier response, lovely")]
    scores = trainer.score([p for p, _ in pairs], [r for _, r in pairs])
    for (p, r), s in zip(pairs, scores):
        enc = trainer.rm_tokenizer(trainer.reward_text(p, r), return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            alone = trainer.reward_model(**enc).logits[0, 0].item()
        assert s.item() == pytest.approx(alone, abs=1e-5)  # right padding in the batch changes nothing


# --------------------------------------------------------------------------- the job


def job_config(models, **over) -> dict:
    cfg = {"policy_model": str(models["sharp"]), "reward_model": str(models["reward"]), "prompts": prompts(),
           "batch_size": 8, "mini_batch_size": 4, "ppo_epochs": 2, "max_new_tokens": 8, "temperature": 1.0,
           "lr": 3e-3, "warmup_steps": 1, "kl_coef": 0.1, "adaptive_kl": True, "kl_target": 0.5,
           "kl_horizon": 40, "kl_estimator": "k3", "whiten_rewards": True, "missing_eos_penalty": 0.5,
           "lora_r": 4, "lora_alpha": 8, "total_steps": 5, "save_every": 3, "samples_every": 2,
           "num_samples": 3, "seed": 7}
    cfg.update(over)
    return cfg


def run_ppo(rd, *, resume=False) -> tuple[int, list]:
    code = J.run_job(rd, resume=resume)  # the default registry: "ppo" must be registered
    return code, read_events(rd.events)


def metrics_by_step(events) -> dict[int, dict[str, float]]:
    return {e.step: e.values for e in events if isinstance(e, MetricEvent)}  # later runs win


@pytest.fixture(scope="module")
def full_run(models, tmp_path_factory):
    """An uninterrupted 5-step run: ``(run dir, exit code, events)``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        rd = new_run_dir(tmp_path_factory.mktemp("runs"), "ppo", job_config(models))
        code, events = run_ppo(rd)
    return rd, code, events


def test_a_job_reports_every_metric_samples_and_complete_checkpoints(full_run):
    rd, code, events = full_run
    assert code == J.EXIT_COMPLETED, events[-1]
    assert isinstance(events[-1], FinishedEvent) and events[-1].status == "completed"
    metrics = metrics_by_step(events)
    assert sorted(metrics) == [1, 2, 3, 4, 5]
    for step, values in metrics.items():
        assert set(METRIC_NAMES) <= set(values), set(METRIC_NAMES) - set(values)
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        assert not bad, (step, bad)
    assert metrics[1]["objective/kl"] == 0.0 and metrics[1]["objective/kl_k3"] == 0.0
    assert metrics[5]["objective/kl_k3"] > 0  # the sharp policy does move
    assert metrics[1]["kl_coef"] == 0.1 and metrics[2]["kl_coef"] != 0.1  # adaptive
    assert metrics[1]["lr"] < metrics[2]["lr"]  # warmup, then linear decay
    assert metrics[2]["lr"] > metrics[5]["lr"] > 0

    samples = [e for e in events if isinstance(e, SamplesEvent)]
    assert [s.step for s in samples] == [1, 2, 4]
    assert all(len(s.rows) == 3 and all(isinstance(r["score"], float) for r in s.rows) for s in samples)
    assert all(r["prompt"] in prompts() for s in samples for r in s.rows)

    assert [e.step for e in events if isinstance(e, CheckpointEvent)] == [3, 5]
    assert [step for step, _ in list_checkpoints(rd)] == [3, 5]
    last = rd.checkpoints / "step-5"
    for name in (COMPLETE, "adapter/adapter_model.safetensors", "adapter/adapter_config.json",
                 ppo.VALUE_HEAD_FILE, ppo.OPTIMIZER_FILE, ppo.SCHEDULER_FILE, ppo.RNG_FILE, ppo.STATE_FILE):
        assert (last / name).is_file(), name
    state = json.loads((last / ppo.STATE_FILE).read_text())
    assert state["step"] == 5 and state["kl_controller"]["type"] == "adaptive"
    assert state["sampler"] == {"epoch": 3, "pos": 4, "num_prompts": 12}  # 40 prompts drawn from 12


def test_cancel_saves_a_checkpoint_and_resume_continues_exactly(models, full_run, tmp_path, monkeypatch):
    _rd, _code, full_events = full_run
    expected = metrics_by_step(full_events)

    # Ask for a cancel as soon as step 2 is reported; the recipe sees it at the next step boundary.
    report = J.JobContext.metric

    def metric_then_cancel(self, step, values=None, /, **named):
        report(self, step, values, **named)
        if step == 2:
            request_cancel(self.run_dir)

    rd = new_run_dir(tmp_path / "runs", "ppo", job_config(models))
    with monkeypatch.context() as mp:
        mp.setattr(J.JobContext, "metric", metric_then_cancel)
        code, events = run_ppo(rd)
    assert code == J.EXIT_CANCELLED and events[-1].status == "cancelled"
    assert sorted(metrics_by_step(events)) == [1, 2]
    assert [step for step, _ in list_checkpoints(rd)] == [2]  # saved on cancel (save_every is 3)

    clear_cancel(rd)
    code, events = run_ppo(rd, resume=True)
    assert code == J.EXIT_COMPLETED, events[-1]
    resumed = metrics_by_step(events)
    assert sorted(resumed) == [1, 2, 3, 4, 5]
    for step in (3, 4, 5):
        for name, want in expected[step].items():
            if name in TIMING:
                continue
            got = resumed[step][name]
            assert math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-6), (step, name, got, want)
    assert [step for step, _ in list_checkpoints(rd)] == [2, 3, 5]


def test_a_nan_score_warns_and_fails_the_job(models, tmp_path, monkeypatch):
    def nan_scores(self, prompts, responses, finished=None):
        return torch.full((len(prompts),), float("nan"))

    monkeypatch.setattr(PPOTrainer, "score", nan_scores)
    rd = new_run_dir(tmp_path / "runs", "ppo", job_config(models, total_steps=3))
    code, events = run_ppo(rd)
    assert code == J.EXIT_FAILED
    warnings = [e for e in events if isinstance(e, WarningEvent)]
    assert [(w.code, w.step) for w in warnings] == [("nan_score", 1)]
    assert "non-finite score" in events[-1].error
    assert not any(isinstance(e, MetricEvent) for e in events)
    assert list_checkpoints(rd) == []


def test_the_score_rises_with_a_hand_made_reward(models):
    """Reward = spaces in the response (word-initial tokens): the sharp policy learns it fast."""
    cfg = PPOConfig.from_dict({"policy_model": str(models["sharp"]), "prompts": prompts(), "batch_size": 16,
                               "mini_batch_size": 8, "ppo_epochs": 4, "max_new_tokens": 8, "temperature": 1.0,
                               "lr": 3e-3, "lr_scheduler": "constant", "kl_coef": 0.0, "lora_r": 8,
                               "lora_alpha": 16, "seed": 0})
    trainer = PPOTrainer(cfg, reward_fn=lambda ps, rs: [float(r.count(" ")) for r in rs])
    scores = [trainer.train_step()[0]["objective/scores"] for _ in range(8)]
    assert sum(scores[-2:]) / 2 > scores[0] + 2.0, scores


def test_a_nan_loss_stops_the_step(models, monkeypatch):
    cfg = PPOConfig.from_dict({"policy_model": str(models["policy"]), "prompts": prompts(), "batch_size": 4,
                               "mini_batch_size": 2, "max_new_tokens": 4})
    trainer = PPOTrainer(cfg, reward_fn=lambda ps, rs: [1.0] * len(rs))

    def nan_value_loss(*args, **kwargs):
        return torch.tensor(float("nan")), torch.tensor(0.0)

    monkeypatch.setattr(ppo.P, "clipped_value_loss", nan_value_loss)
    with pytest.raises(ppo.TrainingDiverged, match="step 1: the PPO loss is nan") as info:
        trainer.train_step()
    assert info.value.code == "nan_loss" and trainer.step == 0


# --------------------------------------------------------------------------- train_step against hand-computed numbers


def _reference_step(delta, kl, values, scores, lengths, *, kl_coef, gamma, lam, eps, c, rows):
    """PPO's step in plain Python (no torch, no ppo_math): rewards, whitened advantages, returns,
    and the first minibatch's policy and value losses for a policy whose log-probs are the
    rollout's + ``delta`` and whose value head still outputs 0."""
    rewards, adv_raw, returns = [], [], []
    for b, n in enumerate(lengths):
        r = [-kl_coef * kl[b][t] for t in range(n)]
        r[n - 1] += scores[b]
        a, last = [0.0] * n, 0.0
        for t in reversed(range(n)):
            next_v = values[b][t + 1] if t + 1 < n else 0.0
            last = r[t] + gamma * next_v - values[b][t] + (gamma * lam * last if t + 1 < n else 0.0)
            a[t] = last
        rewards.append(r)
        adv_raw.append(a)
        returns.append([a[t] + values[b][t] for t in range(n)])
    flat = [x for a in adv_raw for x in a]
    mean = sum(flat) / len(flat)
    var = sum((x - mean) ** 2 for x in flat) / (len(flat) - 1)
    adv = [[(x - mean) / math.sqrt(var + 1e-8) for x in a] for a in adv_raw]
    pg, vf, vf_noclip, pg_noclip, n_tok = [], [], [], [], 0
    for b in rows:
        for t in range(lengths[b]):
            ratio, a, ret = math.exp(delta[b][t]), adv[b][t], returns[b][t]
            pg.append(max(-a * ratio, -a * min(max(ratio, 1 - eps), 1 + eps)))
            pg_noclip.append(-a * ratio)
            clipped_v = min(max(0.0, values[b][t] - c), values[b][t] + c)
            vf.append(max(ret ** 2, (clipped_v - ret) ** 2))
            vf_noclip.append(ret ** 2)
            n_tok += 1
    return {"rewards": rewards, "advantages": adv, "returns": returns, "pg_loss": sum(pg) / n_tok,
            "vf_loss": 0.5 * sum(vf) / n_tok, "pg_noclip": sum(pg_noclip) / n_tok,
            "vf_noclip": 0.5 * sum(vf_noclip) / n_tok}


@pytest.mark.parametrize("accumulation", [1, 2])
def test_train_step_on_a_hand_built_rollout_matches_hand_computed_numbers(models, accumulation):
    """Rewards, advantages, returns and the first update's losses of ``train_step`` on a rollout
    whose log-probs, reference log-probs, values and scores are set by hand. Rows of 3, 2, 1 and
    3 tokens (the last one cut off), ratios well outside the clip range, values whose clipping
    matters: removing the ratio, the clipping, advantage whitening, the token mean or the value
    targets changes a number here."""
    cfg = PPOConfig.from_dict({"policy_model": str(models["policy"]), "prompts": prompts(), "batch_size": 4,
                               "mini_batch_size": 2, "gradient_accumulation_steps": accumulation, "ppo_epochs": 1,
                               "max_new_tokens": 3, "kl_coef": 0.5, "gamma": 0.9, "lam": 0.8, "cliprange": 0.2,
                               "cliprange_value": 0.2, "vf_coef": 0.1, "temperature": 0.8, "lr": 1e-3})
    trainer = PPOTrainer(cfg, reward_fn=lambda ps, rs: [0.0] * len(rs))
    tok = trainer.tokenizer
    eos, pad = trainer.eos_ids[0], trainer.pad_id
    w = [tok.encode(x, add_special_tokens=False)[0] for x in (" good", " river", " sad")]
    batch = prompts()[:4]
    query_ids, query_mask = trainer._encode_prompts(batch)
    response_ids = torch.tensor([[w[0], w[1], eos], [w[2], eos, pad], [eos, pad, pad], [w[1], w[0], w[2]]])
    ro = trainer.evaluate(batch, query_ids, query_mask, response_ids)
    lengths = [3, 2, 1, 3]
    assert ro.mask.sum(1).tolist() == lengths and ro.contains_eos.tolist() == [True, True, True, False]

    delta = [[0.4, -0.4, 0.1], [-0.5, 0.3, 0], [0.45, 0, 0], [0.05, -0.35, 0.6]]
    kl = [[0.2, -0.1, 0.3], [0.0, 0.4, 0], [-0.2, 0, 0], [0.1, 0.1, 0.5]]
    values = [[0.5, -0.3, 0.25], [0.1, 0.6, 0], [-0.4, 0, 0], [0.3, 0.0, -0.5]]
    scores = [1.0, -0.5, 2.0, 0.3]
    policy = ro.logprobs.clone()  # what the (still unchanged) policy gives at the first update
    as_tensor = lambda rows: torch.where(ro.mask, torch.tensor(rows, dtype=torch.float32), 0.0)  # noqa: E731
    ro.logprobs = torch.where(ro.mask, policy - as_tensor(delta), 0.0)
    ro.ref_logprobs = torch.where(ro.mask, ro.logprobs - as_tensor(kl), 0.0)
    ro.values = as_tensor(values)
    ro.scores = torch.tensor(scores)

    metrics, _ = trainer.train_step(rollout=ro)
    first = trainer.last_step["minibatches"][0]
    ref = _reference_step(delta, kl, values, scores, lengths, kl_coef=0.5, gamma=0.9, lam=0.8, eps=0.2, c=0.2,
                          rows=first["indices"])
    got = trainer.last_step
    for name in ("rewards", "advantages", "returns"):
        for b, n in enumerate(lengths):
            assert got[name][b, :n].tolist() == pytest.approx(ref[name][b], abs=1e-5), (name, b)
            assert torch.count_nonzero(got[name][b, n:]) == 0, (name, b)
    # A few by hand: row 2 is its EOS alone: reward = score - 0.5 * kl = 2.0 + 0.1 = 2.1, return
    # = reward (nothing after it); row 0's last token 1.0 - 0.15 = 0.85.
    assert got["rewards"][2, 0].item() == pytest.approx(2.1) and got["returns"][2, 0].item() == pytest.approx(2.1)
    assert got["rewards"][0].tolist() == pytest.approx([-0.1, 0.05, 0.85])
    assert first["pg_loss"] == pytest.approx(ref["pg_loss"], abs=1e-5)
    assert first["vf_loss"] == pytest.approx(ref["vf_loss"], abs=1e-5)
    # The numbers are sensitive to what they check: clipping matters for both losses here.
    assert abs(ref["pg_loss"] - ref["pg_noclip"]) > 1e-3 and abs(ref["vf_loss"] - ref["vf_noclip"]) > 1e-3
    assert metrics["objective/kl"] == pytest.approx(sum(map(sum, kl)) / 4, abs=1e-5)
    assert metrics["objective/non_score_reward"] == pytest.approx(-0.5 * sum(map(sum, kl)) / 4, abs=1e-5)
    assert metrics["objective/scores"] == pytest.approx(sum(scores) / 4)
    assert metrics["episode"] == 4 and metrics["response/truncated_frac"] == 0.25
    assert len(trainer.last_step["minibatches"]) == 2  # batch 4 / minibatch 2, one epoch


def test_a_batch_without_response_tokens_is_a_clear_training_error(models):
    cfg = PPOConfig.from_dict({"policy_model": str(models["policy"]), "prompts": prompts(), "batch_size": 2,
                               "mini_batch_size": 2, "max_new_tokens": 3})
    trainer = PPOTrainer(cfg, reward_fn=lambda ps, rs: [0.0] * len(rs))
    eos, pad = trainer.eos_ids[0], trainer.pad_id
    query_ids, query_mask = trainer._encode_prompts(prompts()[:2])
    ro = trainer.evaluate(prompts()[:2], query_ids, query_mask, torch.tensor([[eos, pad, pad], [pad, pad, pad]]))
    with pytest.raises(ppo.PPOStepError, match="holds only 1 response token") as err:
        trainer.train_step(rollout=ro)
    assert err.value.code == "too_few_tokens" and trainer.step == 0


def test_score_normalization_calibrates_on_reference_samples_and_survives_a_checkpoint(models, tmp_path):
    calls: list[list[float]] = []

    def spaces(ps, rs):
        calls.append([float(r.count(" ")) + 0.5 * len(r) for r in rs])
        return calls[-1]

    over = {"normalize_scores": True, "normalize_samples": 6, "score_clip": 0.5, "missing_eos_penalty": 0.25,
            "forward_batch_size": 4}
    cfg = PPOConfig.from_dict({"policy_model": str(models["sharp"]), "prompts": prompts(), "batch_size": 4,
                               "mini_batch_size": 2, "max_new_tokens": 6, "temperature": 1.0, **over})
    trainer = PPOTrainer(cfg, reward_fn=spaces)
    start = trainer.sampler.state_dict()
    metrics, ro = trainer.train_step()
    calibration = calls[0] + calls[1]  # 6 samples in forward batches of 4 and 2
    assert [len(c) for c in calls] == [4, 2, 4]
    mean = sum(calibration) / 6
    std = math.sqrt(sum((x - mean) ** 2 for x in calibration) / 5)
    assert trainer.score_norm == pytest.approx((mean, std))
    assert start == {"epoch": 0, "pos": 0, "num_prompts": 12} and trainer.sampler.pos == 4  # cursor untouched
    expected = [min(max((x - mean) / std, -0.5), 0.5) - (0.0 if eos else 0.25)
                for x, eos in zip(calls[2], ro.contains_eos.tolist())]
    assert any(abs(x - mean) / std > 0.5 for x in calls[2])  # the clip is at work
    assert ro.scores.tolist() == pytest.approx(expected, abs=1e-5)
    assert metrics["objective/scores_raw"] == pytest.approx(sum(calls[2]) / 4, abs=1e-5)
    trainer.save_checkpoint(tmp_path)
    again = PPOTrainer(cfg, reward_fn=spaces)
    again.load_checkpoint(tmp_path)
    assert again.score_norm == trainer.score_norm  # a resumed run does not calibrate again
    again.train_step()
    assert len(calls) == 4


def test_adaptive_kl_needs_a_starting_coefficient():
    with pytest.raises(ppo.ConfigError, match="^kl_coef: must be > 0 with adaptive_kl"):
        PPOConfig.from_dict({"policy_model": "m", "prompts": ["a"], "adaptive_kl": True, "kl_coef": 0})
    assert PPOConfig.from_dict({"policy_model": "m", "prompts": ["a"], "kl_coef": 0}).kl_coef == 0.0


# --------------------------------------------------------------------------- a critic from the reward model


def test_a_critic_from_the_reward_model_starts_with_its_scores_trains_and_resumes(models, tmp_path):
    cfg = PPOConfig.from_dict({"policy_model": str(models["policy"]), "reward_model": str(models["reward"]),
                               "value_model": "reward_model", "prompts": prompts(), "batch_size": 4,
                               "mini_batch_size": 2, "max_new_tokens": 4, "lr": 1e-2, "seed": 3})
    trainer = PPOTrainer(cfg)
    assert trainer.value_head is None and trainer.critic is not None
    tok = trainer.tokenizer
    good = tok.encode(" good", add_special_tokens=False)[0]
    query_ids, query_mask = trainer._encode_prompts(prompts()[:1])  # one row: no padding anywhere
    response = torch.tensor([[good, good, trainer.eos_ids[0]]])
    ro = trainer.evaluate(prompts()[:1], query_ids, query_mask, response)
    full = torch.cat([query_ids, response], 1)
    context = query_ids.shape[1]
    with torch.no_grad():  # V(s_t) = the reward model's score of the prompt and the first t response tokens
        want = [trainer.reward_model(input_ids=full[:, :context + t]).logits[0, 0].item() for t in range(3)]
    assert ro.values[0].tolist() == pytest.approx(want, abs=1e-4)
    assert ro.values.abs().min() > 0  # not the shared head's zeros

    trainer.train_step()
    trainer.save_checkpoint(tmp_path)
    assert (tmp_path / ppo.CRITIC_DIR / "adapter_model.safetensors").is_file()
    assert not (tmp_path / ppo.VALUE_HEAD_FILE).exists()
    moved = trainer.evaluate(prompts()[:1], query_ids, query_mask, response).values
    assert not torch.allclose(moved, ro.values, atol=1e-4)  # the critic trained
    again = PPOTrainer(cfg)
    again.load_checkpoint(tmp_path)
    assert torch.allclose(again.evaluate(prompts()[:1], query_ids, query_mask, response).values, moved, atol=1e-6)
    # The scorer is the critic's model with its adapter off (one copy of the reward model), and the
    # critic's training (adapter and score head) leaves the scores what the reward model says.
    assert isinstance(trainer.reward_model, ppo.AdapterOff) and trainer.reward_model.model is trainer.critic.model
    from workbench.models.loading import load_reward_model

    frozen = load_reward_model(str(models["reward"]), pad_token_id=tok.pad_token_id)
    texts = [trainer.reward_text(p, "good good", True) for p in prompts()[:3]]
    enc = trainer.rm_tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=not trainer.reward_chat)
    with torch.no_grad():
        want_scores = frozen(**enc).logits[:, 0]
    assert trainer.score(prompts()[:3], ["good good"] * 3).tolist() == pytest.approx(want_scores.tolist(), abs=1e-5)


def test_a_critic_needs_the_policys_tokenizer(models, tmp_path):
    from workbench.models.tiny import build_tiny_model, build_tiny_reward_model

    other = build_tiny_model(tmp_path / "other", vocab_size=300)
    rm = build_tiny_reward_model(tmp_path / "other-rm", other, seed=2)
    cfg = PPOConfig.from_dict({"policy_model": str(models["policy"]), "reward_model": str(rm),
                               "value_model": "reward_model", "prompts": prompts(), "batch_size": 2,
                               "mini_batch_size": 2})
    with pytest.raises(ppo.ConfigError, match="^value_model: 'reward_model': the critic reads the policy's tokens"):
        PPOTrainer(cfg)


# --------------------------------------------------------------------------- full fine-tuning


def test_full_fine_tuning_trains_every_weight_against_a_frozen_reference(models, tmp_path):
    from workbench.train.outputs import describe_checkpoint

    cfg = PPOConfig.from_dict({"policy_model": str(models["sharp"]), "prompts": prompts(), "lora": False,
                               "batch_size": 4, "mini_batch_size": 2, "max_new_tokens": 6, "temperature": 1.0,
                               "lr": 1e-3, "kl_coef": 0.1, "seed": 1})
    trainer = PPOTrainer(cfg, reward_fn=lambda ps, rs: [float(r.count(" ")) for r in rs])
    ref_before = {k: v.clone() for k, v in trainer.ref_model.state_dict().items()}
    n_params = sum(p.numel() for p in trainer.model.parameters())
    assert sum(p.numel() for p in trainer.params) == n_params + trainer.value_head.summary.weight.numel() + 1
    first, _ = trainer.train_step()
    second, _ = trainer.train_step()
    assert first["objective/kl"] == 0.0 and second["objective/kl_k3"] > 0  # the policy left the reference
    assert all(torch.equal(v, ref_before[k]) for k, v in trainer.ref_model.state_dict().items())
    trainer.save_checkpoint(tmp_path)
    out = describe_checkpoint(tmp_path, stage="ppo")
    assert out.kind == "model" and out.model_folder == tmp_path  # the next stage loads it as it is
    saved = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    third, _ = trainer.train_step()  # (the RNG is global: step before the next trainer seeds it)
    again = PPOTrainer(cfg, reward_fn=lambda ps, rs: [float(r.count(" ")) for r in rs])
    again.load_checkpoint(tmp_path)
    assert all(torch.equal(v, saved[k]) for k, v in again.model.state_dict().items())
    resumed, _ = again.train_step()
    assert resumed["objective/kl_k3"] == pytest.approx(third["objective/kl_k3"], rel=1e-4, abs=1e-7)
    assert resumed["loss/policy_avg"] == pytest.approx(third["loss/policy_avg"], rel=1e-4, abs=1e-7)
    with pytest.raises(ppo.ConfigError, match="^quantization: needs lora"):
        PPOConfig.from_dict({"policy_model": "m", "prompts": ["a"], "lora": False, "quantization": "4bit"})


# --------------------------------------------------------------------------- the SFT model as an adapter


@pytest.fixture(scope="module")
def sft_adapter(models, tmp_path_factory) -> Path:
    """A LoRA adapter on the tiny policy with non-zero weights (what an unmerged LoRA SFT run
    leaves), with the tokenizer beside it and dropout in its config."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workbench.models.loading import apply_lora

    folder = tmp_path_factory.mktemp("sft adapter") / "step-6"
    lm = AutoModelForCausalLM.from_pretrained(models["sharp"], use_safetensors=True)
    peft_model = apply_lora(lm, r=4, alpha=8, dropout=0.1)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    peft_model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(models["sharp"]).save_pretrained(folder)
    return folder


def test_a_policy_adapter_trains_on_and_its_frozen_copy_is_the_reference(models, sft_adapter, tmp_path):
    from safetensors.torch import load_file

    cfg = PPOConfig.from_dict({"policy_model": str(models["sharp"]), "policy_adapter": str(sft_adapter),
                               "prompts": prompts(), "batch_size": 4, "mini_batch_size": 2, "max_new_tokens": 6,
                               "temperature": 1.0, "lr": 3e-3, "kl_coef": 0.1, "seed": 2})
    trainer = PPOTrainer(cfg, reward_fn=lambda ps, rs: [float(len(r)) for r in rs])
    ro = trainer.rollout(prompts()[:4])
    assert torch.equal(ro.logprobs, ro.ref_logprobs)  # the reference is the SFT adapter, not the bare base
    with trainer.model.disable_adapter():
        logits, _ = trainer.forward(ro.input_ids, ro.attention_mask, ro.query_ids.shape[1], reference=False)
    bare = torch.where(ro.mask, trainer.token_logprobs(logits, ro.response_ids), 0.0)
    assert (bare - ro.logprobs).abs().max() > 0.05
    frozen = {n: p.clone() for n, p in trainer.model.named_parameters() if ".reference." in n}
    assert frozen and not any(p.requires_grad for n, p in trainer.model.named_parameters() if ".reference." in n)
    first, _ = trainer.train_step()
    second, _ = trainer.train_step()
    assert first["objective/kl"] == 0.0 and second["objective/kl_k3"] > 0
    named = dict(trainer.model.named_parameters())
    assert all(torch.equal(named[n], p) for n, p in frozen.items())  # the reference never trains
    assert all(named[n].requires_grad for n in named if ".default." in n and "lora_" in n)
    trainer.save_checkpoint(tmp_path)
    saved = load_file(str(tmp_path / ppo.ADAPTER_DIR / "adapter_model.safetensors"))
    assert saved and not any("reference" in k for k in saved)
    assert not (tmp_path / ppo.ADAPTER_DIR / "reference").exists()
    again = PPOTrainer(cfg, reward_fn=lambda ps, rs: [0.0] * len(rs))
    again.load_checkpoint(tmp_path)
    again_named = dict(again.model.named_parameters())
    assert all(torch.equal(again_named[n], p) for n, p in named.items())
    with pytest.raises(ppo.ConfigError, match="^policy_adapter: needs lora"):
        PPOConfig.from_dict({"policy_model": "m", "prompts": ["a"], "lora": False, "policy_adapter": "x"})
    with pytest.raises(ppo.ConfigError, match="^policy_adapter: .* is not a LoRA adapter folder"):
        ppo.validate_ppo_before_load(PPOConfig.from_dict({"policy_model": str(models["sharp"]),
                                                          "reward_model": str(models["reward"]), "prompts": ["a"],
                                                          "policy_adapter": str(models["sharp"])}), None)


def test_stop_tokens_end_responses_like_the_eos(models):
    cfg = PPOConfig.from_dict({"policy_model": str(models["policy"]), "prompts": prompts(), "batch_size": 2,
                               "mini_batch_size": 2, "max_new_tokens": 4, "stop_tokens": [" river"]})
    trainer = PPOTrainer(cfg, reward_fn=lambda ps, rs: [0.0] * len(rs))
    stop = trainer.tokenizer.encode(" river", add_special_tokens=False)[0]
    good = trainer.tokenizer.encode(" good", add_special_tokens=False)[0]
    assert stop in trainer.eos_ids and trainer.tokenizer.eos_token_id in trainer.eos_ids
    query_ids, query_mask = trainer._encode_prompts(prompts()[:2])
    ro = trainer.evaluate(prompts()[:2], query_ids, query_mask, torch.tensor([[good, stop, good, good]] * 2))
    assert ro.mask.sum(1).tolist() == [2, 2] and ro.contains_eos.tolist() == [True, True]
    assert ro.responses == [" good", " good"]
    # A form gives one comma-separated string (stripped: stop tokens are special tokens, as a rule).
    assert PPOConfig.from_dict({**cfg.to_dict(), "stop_tokens": "<|im_end|>, <|eos|> ,"}).stop_token_list == \
        ["<|im_end|>", "<|eos|>"]
    assert PPOConfig.from_dict({**cfg.to_dict(), "stop_tokens": ""}).stop_token_list == []
    with pytest.raises(ppo.ConfigError, match="^stop_tokens: 'good day river' is [0-9]+ tokens"):
        PPOTrainer(PPOConfig.from_dict({**cfg.to_dict(), "stop_tokens": ["good day river"]}),
                   reward_fn=lambda ps, rs: [0.0] * len(rs))
