"""The job runner in this process: the context a recipe gets, the finished event
for each way a job ends, and the error texts a user reads."""

import math

import pytest

from workbench.errors import DataError
from workbench.jobs import run as J
from workbench.jobs.events import (CheckpointEvent, FinishedEvent, LogEvent, MetricEvent,
                                   SamplesEvent, StartedEvent, WarningEvent, read_events)
from workbench.jobs.rundir import latest_complete_checkpoint, new_run_dir, request_cancel

REGISTRY = {name: f"jobs_test_recipes:{name}" for name in
            ("fail", "oom", "report_all", "steps")} | {"missing": "jobs_test_recipes:nope"}


@pytest.fixture
def job(tmp_path, test_recipes):
    """``job(stage, config, resume=False) -> (exit status, events)`` run in-process."""
    def run(stage, config=None, *, resume=False, rd=None):
        rd = rd or new_run_dir(tmp_path / "runs", stage, config or {})
        code = J.run_job(rd, resume=resume, registry=REGISTRY)
        return code, read_events(rd.events), rd
    return run


def test_a_recipe_reports_every_kind_of_event(job):
    code, events, rd = job("report_all", {"lr": 0.1, "nested": {"x": 1}})
    assert code == J.EXIT_COMPLETED
    kinds = [type(e) for e in events]
    assert kinds == [StartedEvent, MetricEvent, SamplesEvent, WarningEvent, CheckpointEvent,
                     LogEvent, FinishedEvent]
    started, metric, samples, warning, ckpt, log, finished = events
    assert started.stage == "report_all" and started.run_id == rd.run_id
    assert started.config == {"lr": 0.1}  # scalars only in the summary
    assert metric.values["objective/kl"] == 0.5 and math.isnan(metric.values["loss"])
    assert metric.values["lr"] == 1e-4
    assert samples.rows[0]["score"] == -math.inf and samples.rows[1]["score"] is None
    assert warning == WarningEvent(code="kl_high", message="KL is high", step=1, time=warning.time)
    assert ckpt.path == "checkpoints/step-1" and (rd.path / ckpt.path / "weights.txt").is_file()
    assert log.level == "debug"
    assert finished.status == "completed" and finished.error is None
    assert rd.env.is_file() and (rd.path / "pid").is_file()


def test_a_failing_recipe_ends_failed_with_its_traceback(job, capsys):
    code, events, _rd = job("fail")
    assert code == J.EXIT_FAILED
    finished = events[-1]
    assert finished.status == "failed"
    assert finished.error == "RuntimeError: boom from a test recipe"
    assert "jobs_test_recipes.py" in finished.traceback and "raise RuntimeError" in finished.traceback
    assert "boom from a test recipe" in capsys.readouterr().err  # what stderr.log gets in a job


@pytest.mark.parametrize("stage, message", [
    ("nope", "unknown stage 'nope'; known stages: fail, missing, oom, report_all, steps"),
    ("missing", "stage 'missing': jobs_test_recipes has no function 'nope'"),
])
def test_unknown_stages_fail_clearly(job, stage, message):
    code, events, rd = job(stage)
    assert code == J.EXIT_FAILED
    assert events[-1].status == "failed" and events[-1].error == message
    assert not rd.env.exists()  # it failed before doing any work


def test_out_of_memory_gets_actionable_advice(job):
    _code, events, _rd = job("oom")
    error = events[-1].error
    assert error.startswith("The GPU ran out of memory.")
    for hint in ("4-bit", "batch size", "checkpointing", "maximum sequence length",
                 "CUDA out of memory. Tried to allocate 2.00 GiB"):
        assert hint in error


def test_describe_error():
    try:
        try:
            raise RuntimeError("CUDA error: out of memory")
        except RuntimeError as e:
            raise ValueError("while loading the model") from e
    except ValueError as chained:
        assert J.is_out_of_memory(chained)
        assert J.describe_error(chained).startswith(J.OOM_ADVICE)
    assert J.describe_error(DataError("bad row", file="d.jsonl", line=3)) == "d.jsonl:3: bad row"
    assert J.describe_error(KeyError()) == "KeyError"
    assert J.describe_error(ValueError("x" * 5000)).endswith(" ...")
    assert not J.is_out_of_memory(MemoryError("host RAM"))


def test_a_stop_request_ends_the_job_cancelled(job, tmp_path):
    rd = new_run_dir(tmp_path / "runs", "steps", {"n_steps": 5, "step_s": 0})
    request_cancel(rd)  # already there when the recipe first looks
    code, events, rd = job("steps", rd=rd)
    assert code == J.EXIT_CANCELLED
    assert events[-1] == FinishedEvent(status="cancelled", error="stopped at a step boundary",
                                       time=events[-1].time)
    assert not any(isinstance(e, MetricEvent) for e in events)
    assert latest_complete_checkpoint(rd) is None  # nothing done, nothing to save


def test_resume_passes_the_latest_checkpoint_and_logs_it(job, tmp_path):
    rd = new_run_dir(tmp_path / "runs", "steps", {"n_steps": 6, "step_s": 0, "every": 2})
    code, events, rd = job("steps", rd=rd)
    assert code == J.EXIT_COMPLETED and latest_complete_checkpoint(rd).name == "step-5"
    code, events, rd = job("steps", rd=rd, resume=True)
    second = events[events.index(next(e for e in events[1:] if isinstance(e, StartedEvent))):]
    assert second[0].resume_from == "checkpoints/step-5"
    assert second[1] == LogEvent(level="info", message="resuming from checkpoints/step-5",
                                 time=second[1].time)
    assert not any(isinstance(e, MetricEvent) for e in second)  # nothing left after step 5
    assert second[-1].status == "completed"


def test_recipes_registry_takes_extras_from_the_environment(monkeypatch):
    monkeypatch.setenv(J.EXTRA_RECIPES_ENV, "a=m:f; bad ;b=n:g;")
    got = J.recipes()
    assert got["a"] == "m:f" and got["b"] == "n:g" and got["probe"] == J.RECIPES["probe"]
    assert "bad" not in got


def test_summarize_config_keeps_scalars_and_cuts_long_strings():
    got = J.summarize_config({"a": 1, "b": None, "c": "x" * 300, "d": [1], "e": {"f": 2}})
    assert got == {"a": 1, "b": None, "c": "x" * 200 + "..."}
