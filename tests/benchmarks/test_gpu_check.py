"""benchmarks/gpu_check.py on the CPU: the small mode runs every stage as a real job and its
JSON line carries the figures; a failing stage is reported in the JSON, not raised."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
       "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _gpu_check():
    sys.path.insert(0, str(REPO))
    from benchmarks import gpu_check

    return gpu_check


def test_tokenizer_words_are_one_token_each_and_round_trip():
    gc = _gpu_check()
    tok, first = gc.build_tokenizer(2000)
    assert len(tok) == 2000
    ids = [first, first + 1, 1999, 1234]
    text = tok.decode(ids)
    assert tok(text, add_special_tokens=False)["input_ids"] == ids
    chat = tok.apply_chat_template([{"role": "user", "content": text}, {"role": "assistant", "content": text}],
                                   tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    # the assistant's 4 words and its EOS are the only learned tokens
    assert sum(chat["assistant_masks"]) == 5 and chat["input_ids"][-1] == tok.eos_token_id


def test_step_seconds_skips_the_first_step_and_needs_two():
    from workbench.jobs.events import MetricEvent

    gc = _gpu_check()
    events = [MetricEvent(step=1, values={"loss": 1.0}, time=10.0), MetricEvent(step=1, values={"x": 1}, time=10.5),
              MetricEvent(step=2, values={"loss": 1.0}, time=13.0), MetricEvent(step=4, values={"loss": 1.0}, time=14.0)]
    assert gc.step_seconds(events, "loss") == pytest.approx((14.0 - 10.0) / 3)
    with pytest.raises(RuntimeError, match="at least 2 steps"):
        gc.step_seconds(events[:2], "loss")


@pytest.mark.slow
def test_cpu_small_runs_every_stage_and_reports_the_figures():
    env = {**os.environ, **ENV, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH"))
                                                               if p)}
    out = subprocess.run([sys.executable, str(SCRIPT), "--cpu-small"], capture_output=True, text=True, env=env,
                         timeout=900, cwd=str(REPO))
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    result = json.loads(lines[-1])
    assert sum(line.lstrip().startswith("{") for line in lines) == 1  # exactly one JSON line, the last
    assert result["ok"] is True and result["mode"] == "cpu-small" and result["device"] == "cpu"
    assert result["sizes"]["quantization"] == "4bit"
    model = result["model"]
    for stage in ("sft", "reward", "ppo"):
        fig = result["stages"][stage]
        assert fig["ok"] is True, fig
        assert fig["tokens_per_s"] > 0 and fig["s_per_step"] > 0
        assert fig["peak_kind"] == "rss" and fig["peak_mb"] > 50  # a python process with torch loaded
        assert fig["estimate_mb"] > 0 and "weights" in fig["estimate_parts_mb"]
    sizes = result["sizes"]
    assert result["stages"]["sft"]["tokens_per_step"] == sizes["batch"] * model["seq_tokens"]
    assert result["stages"]["reward"]["tokens_per_step"] == 2 * sizes["batch"] * model["seq_tokens"]
    assert result["stages"]["ppo"]["episodes_per_s"] > 0
    assert 0 < result["stages"]["ppo"]["response_length"] <= sizes["new_tokens"]


@pytest.mark.slow
def test_a_failing_stage_is_reported_in_the_json(monkeypatch, capsys, tmp_path):
    gc = _gpu_check()
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    # main() sets these for its jobs; monkeypatch puts them back afterwards
    monkeypatch.setenv("WORKBENCH_EXTRA_RECIPES", "")
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    real = gc.stage_configs

    def broken(mode, built):
        configs = real(mode, built)
        configs["sft"]["data"]["dataset"] = "no_such_dataset"
        return configs

    monkeypatch.setattr(gc, "stage_configs", broken)
    code = gc.main(["--cpu-small", "--stages", "sft", "--keep", str(tmp_path / "work")])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 1 and result["ok"] is False
    sft = result["stages"]["sft"]
    assert sft["ok"] is False and "no_such_dataset" in sft["error"] and "failed" in sft["error"]
    assert sft["estimate_mb"] > 0  # the estimate needs no job
