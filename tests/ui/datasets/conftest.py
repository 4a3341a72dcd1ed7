"""Shared set-up for the dataset manager tests: a real workspace with real imported datasets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PAIRS = [
    {"prompt": "Write a haiku about rain", "chosen": "Soft rain on the roof,\nthe gutters hum along.",
     "rejected": "Rain is wet.", "tags": ["poetry"], "score_chosen": 8.0, "score_rejected": 2.0},
    {"prompt": "Explain recursion in one sentence", "chosen": "A function that solves a problem by calling "
     "itself on smaller pieces of it.", "rejected": "Recursion is recursion.", "tags": ["code", "cs"],
     "score_chosen": 9.0, "score_rejected": 1.0},
    {"prompt": "How do I reverse a list in Python?", "chosen": "Use `items[::-1]`:\n\n```python\n"
     "print([1, 2, 3][::-1])\n```", "rejected": "You cannot reverse lists.", "tags": ["code"],
     "score_chosen": 7.5, "score_rejected": 0.5},
    {"prompt": "capital of France?", "chosen": "Paris.", "rejected": "Lyon.", "score_chosen": 6.0,
     "score_rejected": 3.0},
    {"prompt": "Another haiku, about snow", "chosen": "White hush on the pines", "rejected": "Snow is cold.",
     "tags": ["poetry"], "score_chosen": 5.0, "score_rejected": 4.0},
    {"prompt": "Best way to learn piano?", "chosen": "Short daily practice with a teacher.",
     "rejected": "Buy a piano.", "score_chosen": 6.5, "score_rejected": 2.5},
]

CHATS = [
    {"messages": [{"role": "system", "content": "You are terse."},
                  {"role": "user", "content": "What is 2 + 2?"},
                  {"role": "assistant", "content": "4"}]},
    {"messages": [{"role": "user", "content": "Name a prime number"},
                  {"role": "assistant", "content": "Seven is prime."}]},
]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def datasets_ws(tmp_path):
    """A workspace with ``pairs`` (standard preference, scored, tagged) and ``chats`` (conversational SFT)."""
    from workbench.data.importer import import_file
    from workbench.store.workspace import Workspace

    root = tmp_path / "ws"
    ws = Workspace.init(root)
    import_file(ws, write_jsonl(tmp_path / "pairs.jsonl", PAIRS), "pairs").checkpoint_thread.join()
    import_file(ws, write_jsonl(tmp_path / "chats.jsonl", CHATS), "chats").checkpoint_thread.join()
    ws.close()
    return root


@pytest.fixture
def open_panel(qtbot):
    """``open_panel(root)``: a shown DatasetManagerPanel on ``root`` with its first dataset loaded."""
    from ui.datasets.manager import DatasetManagerPanel

    panels = []

    def make(root, *, wait_dataset: bool = True):
        panel = DatasetManagerPanel()
        qtbot.addWidget(panel)
        panel.resize(1280, 800)
        panel.show()
        qtbot.waitExposed(panel)
        panel.set_workspace(root)
        if wait_dataset:
            qtbot.waitUntil(lambda: panel.current_dataset is not None and panel.model.complete
                            and not panel.model.busy, timeout=10_000)
        panels.append(panel)
        return panel

    yield make
    for panel in panels:
        panel.shutdown()
