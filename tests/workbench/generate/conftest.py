"""Fixtures for the generation tests: a tiny chat model and the job environment.

The model is built once per session (about a second); tests must not change it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: Set for this process and every job it spawns: no network, one thread per job (2 shared cores).
JOB_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module", autouse=True)
def job_env():
    mp = pytest.MonkeyPatch()
    for key, value in JOB_ENV.items():
        mp.setenv(key, value)
    yield
    mp.undo()


@pytest.fixture(scope="session")
def gen_model(tmp_path_factory) -> Path:
    """A tiny causal LM folder with a chat template; do not modify it."""
    from workbench.models.tiny import build_tiny_model

    with pytest.MonkeyPatch.context() as mp:
        for key, value in JOB_ENV.items():
            mp.setenv(key, value)
        return build_tiny_model(tmp_path_factory.mktemp("gen") / "model")
