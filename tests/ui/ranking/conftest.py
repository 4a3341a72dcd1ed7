"""Fixtures for the Rank page tests: small workspaces and a shown, active RankingPanel."""

from __future__ import annotations

from pathlib import Path

import pytest

JOB_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}

RESPONSES = [
    "Use slicing: `items[::-1]` returns a new reversed list.",
    "Call `items.reverse()` to reverse the list in place.",
    "Wrap `reversed(items)` in `list()` to get a reversed copy.",
    "Sort it backwards with `sorted(items, reverse=True)`.",
]


def make_workspace(root: Path, *, prompts: int = 6, k: int = 2, tag: str = "python") -> dict[int, list[int]]:
    """A workspace with ``prompts`` prompts of ``k`` candidates (models m0..m{k-1}); {prompt: [candidates]}."""
    from workbench.store import annotations as A
    from workbench.store.workspace import Workspace

    out = {}
    with Workspace.init(root) as ws:
        with ws.transaction() as c:
            for i in range(prompts):
                pid = A.add_prompt(c, f"Question {i}: how do I reverse a list in Python?", tags=[tag])
                out[pid] = [A.add_candidate(c, pid, f"{RESPONSES[j % 4]} (variant {i})", model=f"m{j}")
                            for j in range(k)]
    return out


def create_queue(root: Path, **spec) -> int:
    from workbench.store import queue as Q
    from workbench.store.workspace import Workspace

    with Workspace.open(root) as ws:
        with ws.transaction() as c:
            return Q.create_queue(c, Q.QueueSpec(**{"annotator": "ana", "repeat_every": 0, **spec}))


@pytest.fixture
def open_panel(qtbot):
    """``open_panel(root)``: a RankingPanel on ``root``, shown and active; shut down after the test."""
    from PySide6.QtWidgets import QApplication

    from ui.ranking.panel import RankingPanel

    panels = []

    def make(root: Path) -> RankingPanel:
        panel = RankingPanel()
        qtbot.addWidget(panel)
        panel.resize(1100, 720)
        panel.show()
        qtbot.waitExposed(panel)
        panel.set_workspace(root)
        activate(qtbot, panel)
        panels.append(panel)
        return panel

    yield make
    for panel in panels:
        panel.shutdown()
    QApplication.processEvents()


def activate(qtbot, panel) -> None:
    """Give the page's window the focus (shortcuts need an active window)."""
    from PySide6.QtWidgets import QApplication

    panel.activateWindow()
    panel.setFocus()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is panel.window())


@pytest.fixture(scope="session")
def tiny_chat_model(tmp_path_factory) -> Path:
    from workbench.models.tiny import build_tiny_model

    with pytest.MonkeyPatch.context() as mp:
        for key, value in JOB_ENV.items():
            mp.setenv(key, value)
        return build_tiny_model(tmp_path_factory.mktemp("rank_model") / "tiny")


@pytest.fixture
def job_env(monkeypatch):
    for key, value in JOB_ENV.items():
        monkeypatch.setenv(key, value)
