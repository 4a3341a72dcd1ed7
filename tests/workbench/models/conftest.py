"""Shared fixtures for the model tests: one tiny model per session, offline env.

Heavy imports (torch, transformers, peft) happen inside the fixtures and
tests, so collecting this folder stays cheap.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def offline_env(monkeypatch):
    """Every test runs as a job process does: hub offline, no telemetry."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """A tiny causal LM folder built once; tests must not modify it (use ``tiny_copy``)."""
    from workbench.models.tiny import build_tiny_model

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def tiny_copy(tiny_dir, tmp_path) -> Path:
    """A private copy of the tiny model folder that a test may break."""
    return Path(shutil.copytree(tiny_dir, tmp_path / "model"))
