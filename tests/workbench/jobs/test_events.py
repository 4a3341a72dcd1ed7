"""Event encoding, decoding, the writer's durability rules and the tailer."""

import json
import math
import re

import pytest

from workbench.jobs.events import (CheckpointEvent, EventDecodeError, EventTailer, EventWriter,
                                   FinishedEvent, LogEvent, MetricEvent, SamplesEvent,
                                   StartedEvent, WarningEvent, decode, encode, read_events)

EVENTS = [
    StartedEvent(run_id="20261123-014500-sft-ab12", stage="sft", pid=42,
                 config={"lr": 1e-4, "model": "tiny"}, resume_from="checkpoints/step-3", time=1.5),
    MetricEvent(step=3, values={"objective/kl": 0.25, "loss": 1.0}, time=2.0),
    SamplesEvent(step=3, rows=[{"prompt": "p\nq", "response": "é \ud800", "score": 0.5},
                               {"prompt": "p", "response": "r", "score": None}], time=2.5),
    SamplesEvent(step=4, rows=[{"prompt": "held out ☂", "response": "greedy", "score": -1.25}], kind="eval",
                 time=2.75),
    CheckpointEvent(step=3, path="checkpoints/step-3", time=3.0),
    LogEvent(level="info", message="NaN", time=3.5),
    WarningEvent(code="kl_high", message="KL above 10", step=None, time=4.0),
    FinishedEvent(status="failed", error="boom", traceback="Traceback ...\n", time=5.0),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: f"{e.type}-{getattr(e, 'kind', '')}")
def test_round_trip(event):
    line = encode(event)
    assert "\n" not in line and line.isascii()
    assert json.loads(line)["type"] == event.type
    assert decode(line) == event


def test_non_finite_floats_are_strict_json_and_round_trip():
    ev = MetricEvent(step=1, values={"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "x": 2})
    line = encode(ev)
    # Strict JSON: a parser that rejects NaN/Infinity literals reads it.
    data = json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} in {line}"))
    assert data["values"] == {"nan": "NaN", "inf": "Infinity", "ninf": "-Infinity", "x": 2.0}
    back = decode(line)
    assert math.isnan(back.values["nan"]) and back.values["inf"] == math.inf
    assert back.values["ninf"] == -math.inf and back.values["x"] == 2.0

    rows = decode(encode(SamplesEvent(step=1, rows=[{"prompt": "a", "response": "b",
                                                      "score": math.nan}]))).rows
    assert math.isnan(rows[0]["score"])


def test_only_float_fields_turn_names_back_into_floats():
    back = decode(encode(LogEvent(level="info", message="Infinity")))
    assert back.message == "Infinity"
    back = decode(encode(StartedEvent(run_id="r", stage="s", pid=1, config={"x": math.inf})))
    assert back.config == {"x": "Infinity"}  # free-form data: documented as a string


def test_encode_takes_numpy_like_scalars():
    class Scalar:  # what a 0-d tensor or numpy float offers
        def __float__(self):
            return 0.125

    assert decode(encode(MetricEvent(step=0, values={"loss": Scalar()}))).values == {"loss": 0.125}


@pytest.mark.parametrize("line, message", [
    ('{"type": "metric", "step": 1', "not a JSON line"),
    ("[1, 2]", "expected a JSON object"),
    ('{"type": "teleport"}', "unknown event type 'teleport'"),
    ('{"step": 1}', "unknown event type None"),
    ('{"type": "metric", "step": 1}', "missing field(s) values"),
    ('{"type": "metric", "step": "1", "values": {}}', "step: expected an integer"),
    ('{"type": "metric", "step": 1, "values": {"loss": "high"}}', "values['loss']: expected a number"),
    ('{"type": "finished", "status": "exploded"}', "status: expected one of"),
    ('{"type": "samples", "step": 1, "rows": ["x"]}', "rows: expected a list of objects"),
    ('{"type": "samples", "step": 1, "rows": [], "kind": "test"}', "kind: expected one of train, eval, got 'test'"),
    ('{"type": "samples", "step": 1, "rows": [], "kind": 2}', "kind: expected one of train, eval, got 2"),
])
def test_decode_rejects_malformed_lines_clearly(line, message):
    with pytest.raises(EventDecodeError, match=re.escape(message)):
        decode(line)


def test_samples_written_before_eval_sets_existed_read_as_training_samples():
    line = '{"type":"samples","step":2,"rows":[{"prompt":"p","response":"r","score":0.5}],"time":9.0}'
    ev = decode(line)
    assert ev.kind == "train" and ev.rows == [{"prompt": "p", "response": "r", "score": 0.5}]
    assert json.loads(encode(SamplesEvent(step=2, rows=[], kind="eval")))["kind"] == "eval"


def test_decode_ignores_unknown_fields_from_newer_writers():
    ev = decode('{"type": "log", "level": "info", "message": "hi", "time": 1, "color": "red"}')
    assert ev == LogEvent(level="info", message="hi", time=1.0)


def test_tailer_never_returns_a_partial_line(tmp_path):
    path = tmp_path / "events.jsonl"
    tailer = EventTailer(path)
    assert tailer.read() == []  # no file yet
    first, second = encode(EVENTS[1]), encode(EVENTS[4])
    path.write_text(first + "\n" + second[:10])
    assert tailer.read() == [EVENTS[1]]
    offset = tailer.offset
    assert offset == len(first) + 1
    assert tailer.read() == [] and tailer.offset == offset  # still only half a line
    with open(path, "a") as f:
        f.write(second[10:] + "\n" + encode(EVENTS[6]) + "\n")
    assert tailer.read() == [EVENTS[4], EVENTS[6]]
    assert tailer.read() == []


def test_tailer_is_cheap_when_nothing_changed(tmp_path, monkeypatch):
    path = tmp_path / "events.jsonl"
    path.write_text(encode(EVENTS[1]) + "\n")
    tailer = EventTailer(path)
    assert len(tailer.read()) == 1
    monkeypatch.setattr("builtins.open", lambda *a, **k: pytest.fail("opened an unchanged file"))
    assert tailer.read() == []


def test_tailer_skips_malformed_lines_and_reports_them(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(encode(EVENTS[1]) + "\n{torn\n\n" + encode(EVENTS[4]) + "\n")
    tailer = EventTailer(path)
    assert tailer.read() == [EVENTS[1], EVENTS[4]]
    assert len(tailer.errors) == 1 and tailer.errors[0].startswith("events.jsonl:2: not a JSON line")


def test_tailer_reads_in_chunks_and_restarts_on_a_replaced_file(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("".join(encode(e) + "\n" for e in EVENTS))
    tailer = EventTailer(path)
    got = []
    for _ in range(len(EVENTS) + 1):
        got += tailer.read(max_bytes=150)  # a line longer than that still comes whole
    assert got == EVENTS
    path.write_text(encode(EVENTS[0]) + "\n")  # shorter: a new file
    assert tailer.read() == [EVENTS[0]]


def test_writer_appends_durably_and_closes_a_torn_line(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventWriter(path) as w:
        w.write(EVENTS[0])
    with open(path, "a") as f:
        f.write('{"type": "metric", "st')  # the previous writer died mid-line
    with EventWriter(path) as w:
        w.write(EVENTS[6])
    assert read_events(path) == [EVENTS[0], EVENTS[6]]
    assert path.read_text().count("\n") == 3


def _deep_line(levels: int) -> str:
    """A metric line whose values nest ``levels`` lists deep (a corrupt or hostile writer)."""
    return '{"type":"metric","step":1,"values":{"loss":' + "[" * levels + "]" * levels + "}}"


@pytest.mark.parametrize("levels", [40, 1000, 100_000])
def test_a_deeply_nested_line_is_skipped_and_reported(tmp_path, levels):
    path = tmp_path / "events.jsonl"
    path.write_text(encode(EVENTS[1]) + "\n" + _deep_line(levels) + "\n" + encode(EVENTS[4]) + "\n")
    tailer = EventTailer(path)
    assert tailer.read() == [EVENTS[1], EVENTS[4]]
    assert tailer.errors == ["events.jsonl:2: nested deeper than 32 levels"]
    assert read_events(path) == [EVENTS[1], EVENTS[4]]


def test_error_messages_show_bounded_values():
    huge = "x" * 1_000_000
    for line in ('{"type": "metric", "step": "%s", "values": {}}' % huge,
                 '{"type": "%s"}' % huge,
                 '{"type": "finished", "status": [%s]}' % ",".join(["[[[1]]]"] * 10_000)):
        with pytest.raises(EventDecodeError) as err:
            decode(line)
        assert len(str(err.value)) < 300
