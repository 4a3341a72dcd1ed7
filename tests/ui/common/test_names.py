"""Model references read short: a run's checkpoint, a run's folder, a local folder, a hub id."""

from __future__ import annotations

import pytest

from ui.common.names import model_name


@pytest.mark.parametrize("ref, shown", [
    ("./runs/20261203-113525-sft-b84c/checkpoints/step-60/merged", "sft-b84c step-60"),
    ("./runs/20261203-131312-sft-4d07", "sft-4d07"),  # a run folder (was the whole dated id)
    ("/home/alex/rlhf/demo/runs/20261203-130809-sft-b7e6/", "sft-b7e6"),
    ("./models/demo-base", "demo-base"),
    ("/data/runs-archive/my-model", "my-model"),
    ("runs/my-model", "runs/my-model"),  # a hub id whose owner is called "runs" stays a hub id
    ("Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct"),
    ("", "\u2014"),
])
def test_model_name(ref, shown):
    assert model_name(ref) == shown
