"""Metric series, smoothing, CSV, run feeds and text tails (no Qt)."""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from workbench.errors import Cancelled
from workbench.jobs.events import (FinishedEvent, LogEvent, MetricEvent, SamplesEvent, StartedEvent, WarningEvent,
                                   encode)
from workbench.jobs.metrics import (TOKENS_PER_S, KeyMetricScanner, MetricSeries, MetricStore, RunFeed, TextTail,
                                    ema, format_key_metric, key_metric, stores_to_csv)
from workbench.progress import CancelToken

DATA = Path(__file__).resolve().parents[2] / "ui" / "training" / "data"


def naive_ema(xs, w):
    out, acc, n = [], 0.0, 0
    for x in xs:
        if not math.isfinite(x):
            out.append(math.nan)
            continue
        n += 1
        acc = w * acc + (1 - w) * x
        out.append(acc / (1 - w ** n) if w > 0 else x)
    return out


def metric(step, t=None, **values):
    return MetricEvent(step=step, values=values, time=1000.0 + step if t is None else t)


# -- smoothing -----------------------------------------------------------------------------------
@pytest.mark.parametrize("w", [0.0, 0.05, 0.3, 0.6, 0.9, 0.99, 0.999])
def test_ema_matches_the_textbook_recursion(w):
    rng = np.random.default_rng(0)
    xs = rng.normal(size=3000) * 10 + np.linspace(0, 50, 3000)
    out, state = ema(xs, w)
    np.testing.assert_allclose(out, naive_ema(xs.tolist(), w), rtol=1e-9, atol=1e-9)
    assert state.count == 3000


def test_ema_continues_from_its_state():
    xs = np.random.default_rng(1).normal(size=1000)
    whole, _ = ema(xs, 0.95)
    a, st = ema(xs[:7], 0.95)
    b, st = ema(xs[7:500], 0.95, st)
    c, _ = ema(xs[500:], 0.95, st)
    np.testing.assert_allclose(np.concatenate([a, b, c]), whole, rtol=1e-12)


def test_ema_skips_non_finite_points_without_poisoning_the_rest():
    xs = np.array([1.0, 2.0, math.nan, 4.0, math.inf, 5.0])
    out, _ = ema(xs, 0.5)
    assert math.isnan(out[2]) and math.isnan(out[4])
    np.testing.assert_allclose(out[[0, 1, 3, 5]], naive_ema([1.0, 2.0, 4.0, 5.0], 0.5))


def test_ema_rejects_a_weight_of_one():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        ema(np.ones(3), 1.0)


# -- series --------------------------------------------------------------------------------------
def test_series_grows_past_its_capacity_and_keeps_every_point():
    s = MetricSeries("loss", capacity=2)
    for i in range(100):
        s.append(i, 10.0 + i, i * 0.5)
    assert len(s) == 100 and s.steps.tolist() == list(range(100))
    assert s.values[-1] == 49.5 and s.times[0] == 10.0 and s.last_step == 99


def test_a_repeated_step_replaces_the_later_points_no_duplicates():
    s = MetricSeries("loss")
    for i in range(1, 11):
        s.append(i, float(i), float(i))
    # A resume from the checkpoint at step 6 reports 7, 8, ... again with new values.
    s.append(7, 100.0, -7.0)
    s.append(8, 101.0, -8.0)
    assert s.steps.tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    assert s.values.tolist()[-2:] == [-7.0, -8.0] and s.rewinds == 1
    s.append(8, 102.0, -80.0)  # the same step again: the later report wins
    assert s.steps.tolist()[-1] == 8 and s.values[-1] == -80.0 and len(s) == 8


def test_extend_refuses_steps_that_do_not_increase():
    s = MetricSeries("x")
    s.extend([1, 2, 3], [0, 0, 0], [1, 2, 3])
    with pytest.raises(ValueError, match="strictly increasing"):
        s.extend([3, 4], [0, 0], [0, 0])
    with pytest.raises(ValueError, match="strictly increasing"):
        s.extend([5, 5], [0, 0], [0, 0])
    assert len(s) == 3


def test_smoothed_is_cached_incremental_and_reset_by_a_rewind():
    s = MetricSeries("x")
    xs = np.random.default_rng(2).normal(size=300)
    for i, x in enumerate(xs[:100]):
        s.append(i, 0.0, x)
    first = s.smoothed(0.9)
    for i, x in enumerate(xs[100:], start=100):
        s.append(i, 0.0, x)
    np.testing.assert_allclose(s.smoothed(0.9), naive_ema(xs.tolist(), 0.9), rtol=1e-9)
    np.testing.assert_allclose(first, naive_ema(xs[:100].tolist(), 0.9), rtol=1e-9)
    s.append(50, 0.0, 1000.0)  # rewind: the cache must not keep the old tail
    np.testing.assert_allclose(s.smoothed(0.9), naive_ema(xs[:50].tolist() + [1000.0], 0.9), rtol=1e-9)
    np.testing.assert_array_equal(s.smoothed(0.0), s.values)


# -- store ---------------------------------------------------------------------------------------
def test_store_x_axes_start_time_and_version():
    st = MetricStore()
    assert not st.add(StartedEvent(run_id="r", stage="sft", pid=1, time=900.0))
    v = st.version
    st.add(metric(1, t=960.0, loss=2.0))
    st.add(metric(2, t=1020.0, loss=1.5, grad_norm=0.3))
    assert st.version > v and st.names() == ["loss", "grad_norm"]
    assert st.x("loss", "step").tolist() == [1.0, 2.0]
    assert st.x("loss", "time").tolist() == [60.0, 120.0]
    assert st.x("grad_norm", "time").tolist() == [120.0]
    with pytest.raises(ValueError, match="x axis"):
        st.x("loss", "epoch")
    assert "loss" in st and "nope" not in st and st.get("nope") is None


def test_tokens_per_second_from_the_cumulative_count_restarts_after_a_resume():
    st = MetricStore()
    st.add(StartedEvent(run_id="r", stage="sft", pid=1, time=0.0))
    st.add(metric(10, t=10.0, num_tokens=1000.0))
    st.add(metric(20, t=12.0, num_tokens=5000.0))
    st.add(metric(30, t=14.0, num_tokens=7000.0))
    assert st.get(TOKENS_PER_S).values.tolist() == [2000.0, 1000.0]
    # A resumed process: no rate across the restart (its clock and counter differ).
    st.add(StartedEvent(run_id="r", stage="sft", pid=2, time=100.0))
    st.add(metric(31, t=120.0, num_tokens=100.0))
    st.add(metric(40, t=121.0, num_tokens=600.0))
    assert st.get(TOKENS_PER_S).steps.tolist() == [20, 30, 40]
    assert st.get(TOKENS_PER_S).values[-1] == 500.0


def test_csv_is_wide_with_empty_cells_and_nan_kept():
    st = MetricStore()
    st.add(StartedEvent(run_id="r", stage="reward", pid=1, time=1000.0))
    st.add(metric(1, loss=0.7))
    st.add(metric(2, loss=float("nan"), **{"eval/accuracy": 0.5}))
    st.add(metric(3, loss=0.5))
    buf = io.StringIO()
    assert st.write_csv(buf, run_id="run-a") == 3
    rows = list(csv.reader(io.StringIO(buf.getvalue())))
    assert rows[0] == ["run", "step", "time_s", "loss", "eval/accuracy"]
    assert rows[1] == ["run-a", "1", "1.000", "0.7", ""]
    assert rows[2] == ["run-a", "2", "2.000", "nan", "0.5"]
    assert rows[3][3:] == ["0.5", ""]


def test_csv_of_several_runs_keeps_columns_aligned():
    a, b = MetricStore(), MetricStore()
    a.add(metric(1, loss=1.0))
    b.add(metric(1, **{"objective/kl": 0.1}))
    b.add(metric(2, **{"objective/kl": 0.2}))
    rows = list(csv.reader(io.StringIO(stores_to_csv([("a", a), ("b", b)]))))
    assert rows[0] == ["run", "step", "time_s", "loss", "objective/kl"]
    assert [r[0] for r in rows[1:]] == ["a", "b", "b"]
    assert rows[1][3:] == ["1.0", ""] and rows[3][3:] == ["", "0.2"]


def test_copy_is_independent():
    st = MetricStore()
    st.add(metric(1, loss=1.0))
    c = st.copy()
    st.add(metric(2, loss=2.0))
    assert len(c.get("loss")) == 1 and len(st.get("loss")) == 2


# -- feed ----------------------------------------------------------------------------------------
def write(path: Path, *events, partial: str = "") -> None:
    with open(path, "a", encoding="ascii") as f:
        for e in events:
            f.write(encode(e) + "\n")
        f.write(partial)


def test_feed_reads_a_growing_file_once_waiting_for_partial_lines(tmp_path):
    rd = tmp_path / "run"
    rd.mkdir()
    ev = rd / "events.jsonl"
    feed = RunFeed(rd)
    write(ev, StartedEvent(run_id="run", stage="ppo", pid=1, time=0.0))
    line = encode(metric(1, kl=0.1))
    write(ev, partial=line[:7])
    feed.poll()
    assert "kl" not in feed.store
    write(ev, partial=line[7:] + "\n")
    write(ev, SamplesEvent(step=1, rows=[{"prompt": "p", "response": "r", "score": 1.5}]),
          LogEvent(level="info", message="hello"), WarningEvent(code="kl_high", message="KL high", step=1),
          FinishedEvent(status="completed"))
    upd = feed.poll()
    assert upd.metrics and len(upd.samples) == 1 and [e.message for e in upd.logs] == ["hello"]
    assert [w.code for w in upd.warnings] == ["kl_high"] and upd.status
    assert feed.finished.status == "completed" and feed.store.get("kl").values.tolist() == [0.1]
    # A resume: a new `started` makes the run live again.
    write(ev, StartedEvent(run_id="run", stage="ppo", pid=2, time=5.0), metric(2, kl=0.2))
    feed.poll()
    assert feed.finished is None and feed.store.get("kl").steps.tolist() == [1, 2]
    assert not feed.poll()  # nothing new: nothing read


def test_catch_up_reads_a_recorded_run_with_progress_and_can_be_cancelled(tmp_path):
    src = DATA / "ppo_reward_hacking"
    feed = RunFeed(src)
    seen = []
    upd = feed.catch_up(lambda f, m: seen.append(f), chunk=4096)
    assert seen[-1] == 1.0 and len(seen) > 5 and seen == sorted(seen)
    assert feed.stage == "ppo" and feed.finished.status == "completed"
    assert len(feed.store.get("objective/kl")) == 40 and len(feed.samples) == 40
    assert len(upd.samples) == 40 and upd.metrics and not feed.errors
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        RunFeed(src).catch_up(cancel=token)


def test_a_torn_line_is_skipped_and_reported(tmp_path):
    rd = tmp_path / "run"
    rd.mkdir()
    write(rd / "events.jsonl", metric(1, loss=1.0), partial='{"type":"metric","st\n')
    write(rd / "events.jsonl", metric(2, loss=0.5))
    feed = RunFeed(rd)
    feed.catch_up()
    assert feed.store.get("loss").steps.tolist() == [1, 2]
    assert feed.errors and feed.errors[0].startswith("events.jsonl:2:")


# -- stderr tail ---------------------------------------------------------------------------------
def test_text_tail_starts_near_the_end_at_a_line_boundary(tmp_path):
    path = tmp_path / "stderr.log"
    path.write_text("".join(f"line {i}\n" for i in range(1000)))
    tail = TextTail(path, initial_bytes=100)
    text = tail.read()
    assert text.endswith("line 999\n") and text.startswith("line ") and len(text) <= 100
    assert tail.skipped == os.path.getsize(path) - len(text.encode())
    with open(path, "a") as f:
        f.write("more\npart")
    assert tail.read() == "more\n"
    with open(path, "a") as f:
        f.write("ial \xff\n")
    assert tail.read() == "partial \xff\n"
    path.write_text("new\n")  # replaced by a shorter file: read again from the start
    assert tail.read() == "new\n"
    assert TextTail(tmp_path / "missing.log").read() == ""


# -- key metric ----------------------------------------------------------------------------------
def test_key_metric_per_stage():
    assert key_metric("ppo", {"objective/scores": 1.5, "loss/value_avg": 2}) == ("score", 1.5)
    assert key_metric("reward", {"accuracy": 0.8, "eval/accuracy": 0.9}) == ("accuracy", 0.9)
    assert key_metric("sft", {"loss": 2.0}) == ("loss", 2.0)
    assert key_metric("probe", {}) is None
    assert key_metric("newstage", {"loss": 3.0}) == ("loss", 3.0)
    assert format_key_metric(("loss", 3.48312)) == "loss 3.483"
    assert format_key_metric(("loss", float("nan"))) == "loss nan"
    assert format_key_metric(None) == ""


def test_scanner_reads_incrementally_and_forgets_deleted_runs(tmp_path):
    runs = tmp_path / "runs"
    for name in ("sft_demo", "reward_demo", "ppo_demo"):
        shutil.copytree(DATA / name, runs / (DATA / name / "RUN_ID").read_text().strip())
    scanner = KeyMetricScanner()
    found = scanner.scan(sorted(runs.iterdir()))
    by_stage = {rid.split("-")[2]: v for rid, v in found.items()}
    assert by_stage["sft"][0] == "loss" and by_stage["reward"] == ("accuracy", 1.0)
    assert by_stage["ppo"][0] == "score"
    ppo = next(p for p in runs.iterdir() if "-ppo-" in p.name)
    write(ppo / "events.jsonl", metric(31, **{"objective/scores": 42.0}))
    assert scanner.scan(sorted(runs.iterdir()))[ppo.name] == ("score", 42.0)
    shutil.rmtree(ppo)
    assert ppo.name not in scanner.scan(sorted(runs.iterdir()))


def test_scanner_reads_only_the_end_of_a_long_file(tmp_path, monkeypatch):
    rd = tmp_path / "20261123-000000-ppo-abcd"
    rd.mkdir()
    write(rd / "events.jsonl", metric(1, **{"objective/scores": 1.0, "loss": 9.0}),
          *[metric(i, **{"objective/scores": float(i)}) for i in range(2, 400)])
    monkeypatch.setattr(KeyMetricScanner, "TAIL_BYTES", 1000)
    scanner = KeyMetricScanner()
    assert scanner.scan([rd]) == {rd.name: ("score", 399.0)}
    assert "loss" not in scanner._last[rd.name]  # step 1 lies before the window: not read
    assert not scanner._tailers[rd.name].errors  # the window starts at a line boundary
