"""Helpers for the workspace tests under hard conditions (a deleted WAL, a full disk, a read-only folder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
