"""Helpers for the workspace tests under hard conditions (a deleted WAL, a full disk, a read-only folder)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import workbench

REPO = Path(workbench.__file__).resolve().parents[1]


def run_cli(*args) -> subprocess.CompletedProcess:
    """``python -m workbench.cli ARGS`` in a real process (its own SQLite connections)."""
    return subprocess.run([sys.executable, "-m", "workbench.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=REPO, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The CLI failed the way a person can read: non-zero exit, one line on stderr, no traceback."""
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def can_mount() -> bool:
    return sys.platform.startswith("linux") and hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(mb)``: a fresh tmpfs of ``mb`` MB (root only; the test is skipped otherwise)."""
    if not can_mount():
        pytest.skip("mounting a small file system needs root on Linux")
    mounted = []

    def make(mb: int, name: str = "disk") -> Path:
        path = tmp_path / name
        path.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mb}m", "tmpfs", str(path)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounted.append(path)
        return path

    yield make
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def read_only_view(tmp_path):
    """``read_only_view(folder)``: ``folder`` bind-mounted read-only (root only; skipped otherwise)."""
    if not can_mount():
        pytest.skip("a read-only bind mount needs root on Linux")
    mounted = []

    def make(folder: Path) -> Path:
        view = tmp_path / f"ro-{len(mounted)}"
        view.mkdir()
        for cmd in (["mount", "--bind", str(folder), str(view)],
                    ["mount", "-o", "remount,bind,ro", str(view)]):
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                if mounted or cmd[1] != "--bind":
                    subprocess.run(["umount", "-l", str(view)], capture_output=True)
                pytest.skip(f"cannot make a read-only bind mount here: {proc.stderr.strip()}")
        mounted.append(view)
        return view

    yield make
    for view in reversed(mounted):
        subprocess.run(["umount", "-l", str(view)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write a file into ``folder`` until its disk has no byte left."""
    ballast = folder / "ballast.bin"
    with open(ballast, "wb", buffering=0) as f:
        for size in (1 << 20, 65536, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass
    return ballast


def write_pairs(path: Path, n: int) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"prompt": f"Frage {i}: wie lange dauert's? " + "Wort " * 20,
                                "chosen": "eine gute Antwort " * 8, "rejected": "schlecht " * 6},
                               ensure_ascii=False) + "\n")
    return path
