"""A full disk: an import that runs out of space, reading with no byte free, a checkpoint that does not fit.

Each failure says "the disk holding <folder> is full (N MB free)" and what
was kept, on one line; reading commands keep working. A real tmpfs is
mounted (root only; skipped otherwise).
"""

from __future__ import annotations

import pytest

from workbench.jobs import run as J
from workbench.jobs.events import read_events
from workbench.jobs.rundir import latest_complete_checkpoint, new_run_dir

from .conftest import fill, one_line_error, run_cli, write_pairs


def _dataset_rows(stdout: str, name: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith(name)).split()[3]


def test_an_import_that_fills_the_disk_says_so_and_leaves_the_workspace_as_it_was(small_disk, tmp_path):
    ws = small_disk(6) / "ws"
    assert run_cli("workspace", "init", ws).returncode == 0
    small = write_pairs(tmp_path / "small.jsonl", 100)
    assert run_cli("data", "import", small, "--workspace", ws, "--name", "small").returncode == 0
    big = write_pairs(tmp_path / "big.jsonl", 60_000)   # ~13 MB: does not fit

    line = one_line_error(run_cli("data", "import", big, "--workspace", ws, "--name", "big"))
    assert f"the disk holding {ws} is full (" in line and " MB free)" in line
    assert "the import was not stored" in line
    assert "rollback" not in line

    # Reading works on the full disk, and shows exactly what was there before.
    listed = run_cli("data", "list", "--workspace", ws)
    assert listed.returncode == 0, listed.stderr
    assert _dataset_rows(listed.stdout, "small") == "100" and "big" not in listed.stdout
    info = run_cli("workspace", "info", "--workspace", ws, "--json")
    assert info.returncode == 0 and '"records": 100' in info.stdout


def test_with_no_byte_free_reading_commands_work_and_writes_say_why(small_disk, tmp_path):
    disk = small_disk(4)
    ws = disk / "ws"
    assert run_cli("workspace", "init", ws).returncode == 0
    small = write_pairs(tmp_path / "small.jsonl", 50)
    assert run_cli("data", "import", small, "--workspace", ws, "--name", "small").returncode == 0
    ballast = fill(disk)

    listed = run_cli("data", "list", "--workspace", ws)
    assert listed.returncode == 0, listed.stderr
    assert _dataset_rows(listed.stdout, "small") == "50"
    info = run_cli("workspace", "info", "--workspace", ws)
    assert info.returncode == 0, info.stderr
    out = tmp_path / "out.jsonl"   # exporting elsewhere works
    exported = run_cli("data", "export", "small", "--workspace", ws, "--format", "jsonl", "--out", out)
    assert exported.returncode == 0, exported.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 50

    line = one_line_error(run_cli("data", "import", small, "--workspace", ws, "--name", "again"))
    assert f"the disk holding {ws} is full (0.0 MB free)" in line and "nothing was changed" in line

    # With room again, the workspace is writable as before.
    ballast.unlink()
    assert run_cli("data", "import", small, "--workspace", ws, "--name", "again").returncode == 0
    assert _dataset_rows(run_cli("data", "list", "--workspace", ws).stdout, "again") == "50"


def test_a_checkpoint_that_does_not_fit_names_the_full_disk(small_disk, tmp_path):
    """torch.save on a full disk says "[enforce fail at inline_container.cc] unexpected pos"."""
    runs = small_disk(4) / "runs"
    rd = new_run_dir(runs, "big_checkpoint", {})
    code = J.run_job(rd, registry={"big_checkpoint": f"{__name__}:big_checkpoint"})
    assert code != J.EXIT_COMPLETED
    error = read_events(rd.events)[-1].error
    assert error.startswith(f"the disk holding {rd.path} is full (")
    assert "checkpoint being written was not kept" in error and "inline_container" not in error
    # The complete checkpoint before it is still there.
    assert latest_complete_checkpoint(rd).name == "step-1"


def big_checkpoint(ctx):
    torch = pytest.importorskip("torch")
    with ctx.checkpoint(1) as d:
        torch.save({"w": torch.zeros(10)}, d / "model.pt")
    with ctx.checkpoint(2) as d:
        torch.save({"w": torch.zeros(2_000_000)}, d / "model.pt")   # 8 MB on a 4 MB disk
