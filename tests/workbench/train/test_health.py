"""PPO health rules over metric series (no Qt, no torch)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from workbench.jobs.events import MetricEvent
from workbench.jobs.metrics import MetricStore, RunFeed
from workbench.train.health import HealthMonitor, HealthThresholds, check_run

DATA = Path(__file__).resolve().parents[2] / "ui" / "training" / "data"


def store_of(**series) -> MetricStore:
    """A store with one point per step (1, 2, ...) for each named list of values."""
    st = MetricStore()
    n = max(len(v) for v in series.values())
    for i in range(n):
        values = {name.replace("__", "/"): vals[i] for name, vals in series.items() if i < len(vals)}
        st.add(MetricEvent(step=i + 1, values=values, time=float(i)))
    return st


def codes(warnings) -> list[str]:
    return [w.code for w in warnings]


def recorded(name: str) -> MetricStore:
    feed = RunFeed(DATA / name)
    feed.catch_up()
    return feed.store


# -- recorded real runs --------------------------------------------------------------------------
def test_a_healthy_real_ppo_run_raises_nothing():
    # The demo's own settings: k1 KL dips to about -0.01 in the first steps by noise alone.
    store = recorded("ppo_demo")
    assert min(store.get("objective/kl").values) < 0
    assert check_run(store) == []


def test_a_real_reward_hacking_run_is_caught_when_length_runs_away():
    # Recorded with lr 3e-3 and no KL penalty: responses grew from ~5 to ~25 tokens of glued words.
    warnings = check_run(recorded("ppo_reward_hacking"))
    assert codes(warnings) == ["length_runaway"]
    w = warnings[0]
    assert w.step == 24 and w.active and w.last_step == 40 and w.metric == "response/length_mean"
    assert "reward hacking" in w.message and "since step 24" in w.message.lower()


def test_the_injected_copy_shows_negative_kl_and_nan():
    warnings = {w.code: w for w in check_run(recorded("ppo_demo_injected_nan_negative_kl"))}
    assert set(warnings) == {"kl_negative", "non_finite"}
    assert warnings["kl_negative"].step == 8 and warnings["kl_negative"].last_step == 11
    assert not warnings["kl_negative"].active  # it recovered at step 12
    assert warnings["non_finite"].metric == "loss/value_avg" and warnings["non_finite"].step == 20


# -- each rule -----------------------------------------------------------------------------------
def test_kl_noise_is_tolerated_but_a_sustained_negative_kl_warns_from_its_first_step():
    noise = [0.0, -0.01, 0.02, -0.05, -0.09, 0.01]
    assert check_run(store_of(objective__kl=noise)) == []
    w = check_run(store_of(objective__kl=noise + [-0.3, -0.4, -0.2, 0.5]))
    assert codes(w) == ["kl_negative"] and w[0].step == 7 and w[0].last_step == 9 and not w[0].active
    assert "since step 7" in w[0].message and "-0.2" in w[0].message
    # Two negative steps are not enough (patience 3).
    assert check_run(store_of(objective__kl=[0.1, -0.5, -0.5, 0.1])) == []


def test_the_kl_rule_follows_the_k1_series_when_the_run_logs_one():
    # objective/kl is in the configured estimator (k3 here, never negative); kl_k1 tells the truth.
    w = check_run(store_of(objective__kl=[0.2] * 5, objective__kl_k1=[0.1, -0.5, -0.5, -0.5, -0.5]))
    assert codes(w) == ["kl_negative"] and w[0].metric == "objective/kl_k1" and w[0].step == 2
    # A negative objective/kl (k2/k3 cannot be, but say k1) is not judged twice when kl_k1 exists.
    assert check_run(store_of(objective__kl=[-0.5] * 5, objective__kl_k1=[0.1] * 5)) == []


def test_many_truncated_responses_warn():
    assert check_run(store_of(response__truncated_frac=[0.9, 0.9, 0.1, 0.6, 0.6])) == []  # patience 3
    w = check_run(store_of(response__truncated_frac=[0.1, 0.6, 0.75, 1.0, 0.2]))
    assert codes(w) == ["truncated_high"] and w[0].step == 2 and w[0].last_step == 4 and not w[0].active
    assert "max_new_tokens" in w[0].message and "missing_eos_penalty" in w[0].message


def test_ratio_out_of_band():
    ok = [1.0, 0.99, 1.02, 0.85, 1.2]
    assert check_run(store_of(val__ratio=ok)) == []
    assert check_run(store_of(val__ratio=ok + [2.0, 1.0])) == []  # one step is noise (patience 2)
    w = check_run(store_of(val__ratio=ok + [2.0, 0.5, 1.0]))
    assert codes(w) == ["ratio_band"] and w[0].step == 6 and "[0.8, 1.25]" in w[0].message


def test_clip_fraction_staying_high():
    assert check_run(store_of(policy__clipfrac_avg=[0.3] * 4 + [0.1] + [0.3] * 4)) == []
    w = check_run(store_of(policy__clipfrac_avg=[0.05, 0.3, 0.35, 0.4, 0.3, 0.25]))
    assert codes(w) == ["clipfrac_high"] and w[0].step == 2 and w[0].active and "20%" in w[0].message


def test_non_finite_values_of_any_metric():
    w = check_run(store_of(loss=[1.0, math.nan, 0.5], grad_norm=[1.0, 2.0, math.inf]))
    by = {x.metric: x for x in w}
    assert by["loss"].title == "loss is NaN" and by["loss"].step == 2 and not by["loss"].active
    assert by["grad_norm"].title == "grad_norm is +inf" and by["grad_norm"].active


def test_length_runaway_needs_the_reward_to_rise_too():
    length = [5.0] * 10 + [5.0 + i for i in range(15)]
    rising = [float(i) for i in range(25)]
    w = check_run(store_of(response__length_mean=length, objective__rlhf_reward=rising))
    assert codes(w) == ["length_runaway"]
    # Same length growth while the reward falls: not reward hacking.
    assert check_run(store_of(response__length_mean=length, objective__rlhf_reward=rising[::-1])) == []
    # Reward rising, length flat: fine.
    assert check_run(store_of(response__length_mean=[5.0] * 25, objective__rlhf_reward=rising)) == []


def test_thresholds_are_configurable():
    t = HealthThresholds(clipfrac_max=0.5, clipfrac_patience=2)
    assert check_run(store_of(policy__clipfrac_avg=[0.3] * 10), t) == []
    assert codes(check_run(store_of(policy__clipfrac_avg=[0.6, 0.6]), t)) == ["clipfrac_high"]


# -- streaming -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ppo_reward_hacking", "ppo_demo_injected_nan_negative_kl"])
def test_point_by_point_updates_give_the_same_warnings_as_one_pass(name):
    feed = RunFeed(DATA / name)
    monitor = HealthMonitor()
    changes = []
    size = (DATA / name / "events.jsonl").stat().st_size
    while feed.offset < size:
        feed.poll(max_bytes=300)  # a few events at a time, like a live tail
        changes += monitor.update(feed.store)
    assert monitor.warnings == check_run(recorded(name))
    assert changes  # reported as they happened


def test_a_rewound_series_is_judged_again():
    st = store_of(objective__kl=[0.1, -0.5, -0.5, -0.5, -0.5])
    monitor = HealthMonitor()
    assert codes(monitor.update(st)) == ["kl_negative"]
    # A resume from step 1 re-reports steps 2.. with healthy values: the old streak is gone.
    for step in range(2, 6):
        st.add(MetricEvent(step=step, values={"objective/kl": 0.2}, time=10.0 + step))
    monitor.update(st)
    assert monitor.warnings == []
