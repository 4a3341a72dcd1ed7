"""An export never removes what it did not create: sentinel files in every target must survive.

The rule (``workbench.targets.check_target``): an existing non-empty target is
refused without ``overwrite``; with it, a file is replaced, a folder only when it
is a previous export of ours (its manifest lists every file in it); never the
workspace, a folder holding it, the home folder or a filesystem root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.data.exporter import EXPORT_FORMATS, FOLDER_FORMATS, export_dataset
from workbench.data.importer import import_file
from workbench.errors import WorkbenchError
from workbench.targets import MANIFEST, TargetError, check_target, write_manifest
from workbench.store.workspace import Workspace

ROWS = [{"prompt": [{"role": "user", "content": f"Wie heißt die Hauptstadt von Land {i}? 🌍"}],
         "chosen": [{"role": "assistant", "content": f"Die Hauptstadt ist Stadt {i}."}],
         "rejected": [{"role": "assistant", "content": "Keine Ahnung."}]} for i in range(12)]


@pytest.fixture
def ws(tmp_path):
    w = Workspace.init(tmp_path / "home" / "projects" / "ws")
    src = tmp_path / "pairs.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), encoding="utf-8")
    import_file(w, src, "pairs")
    yield w
    w.close()


def sentinel(folder: Path, name: str = "tax-return-2025.pdf") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"%PDF irreplaceable")
    return path


def survives(path: Path) -> bool:
    return path.is_file() and path.read_bytes() == b"%PDF irreplaceable"


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_a_documents_folder_is_never_replaced(ws, tmp_path, fmt):
    docs = tmp_path / "home" / "Documents"
    keep = sentinel(docs)
    for overwrite in (False, True):
        with pytest.raises(TargetError) as err:
            export_dataset(ws, "pairs", fmt, docs, overwrite=overwrite)
        assert str(docs) in str(err.value)
        assert survives(keep) and sorted(p.name for p in docs.iterdir()) == [keep.name]
    assert sorted(p.name for p in docs.parent.iterdir()) == ["Documents", "projects"]  # no temp left


@pytest.mark.parametrize("where", ["workspace", "parent", "grandparent"])
def test_the_workspace_and_its_ancestors_are_never_replaced(ws, where):
    target = {"workspace": ws.root, "parent": ws.root.parent, "grandparent": ws.root.parent.parent}[where]
    keep = sentinel(target, f"notes-{where}.txt")
    write_manifest(target, kind="dataset-export")  # even a forged marker listing every file there
    with pytest.raises(TargetError, match="is the workspace itself|contains the workspace"):
        export_dataset(ws, "pairs", "hf", target, overwrite=True)
    assert survives(keep) and (ws.root / "workspace.sqlite").is_file()
    assert ws.info().records == len(ROWS)


def test_home_and_filesystem_root_are_never_replaced(ws, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    keep = sentinel(home, ".bashrc")
    with pytest.raises(TargetError, match="home folder"):
        check_target(home, folder=True, overwrite=True)
    with pytest.raises(TargetError, match="root"):
        check_target(Path("/"), folder=True, overwrite=True)
    assert survives(keep)


def test_workspace_files_and_run_records_are_never_replaced(ws):
    run = ws.root / "runs" / "20260101-000000-sft-aa01"
    keep = sentinel(run, "config.yaml")
    with pytest.raises(TargetError, match="runs/"):
        export_dataset(ws, "pairs", "jsonl", keep, overwrite=True)
    with pytest.raises(TargetError, match="database"):
        export_dataset(ws, "pairs", "jsonl", ws.root / "workspace.sqlite", overwrite=True)
    assert survives(keep) and ws.info().records == len(ROWS)


def test_a_previous_export_folder_is_replaced_only_with_overwrite_and_only_if_untouched(ws, tmp_path):
    out = tmp_path / "exports" / "pairs_hf"
    first = export_dataset(ws, "pairs", "hf", out)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["created_by"] == "rlhf-workbench" and "data-00000-of-00001.arrow" in manifest["files"]
    with pytest.raises(TargetError, match="already exists"):
        export_dataset(ws, "pairs", "hf", out)
    again = export_dataset(ws, "pairs", "hf", out, overwrite=True)
    assert again.sha256 == first.sha256
    keep = sentinel(out, "my-notes.txt")  # the user put a file of their own into the export folder
    with pytest.raises(TargetError, match="my-notes.txt"):
        export_dataset(ws, "pairs", "hf", out, overwrite=True)
    assert survives(keep)
    assert sorted(p.name for p in out.parent.iterdir()) == ["pairs_hf"]  # no temporary or moved-aside copy



def test_a_previous_export_of_another_kind_is_never_replaced(ws, tmp_path):
    """A dataset export with overwrite does not take the place of a merged model (hours of work)
    that happens to be at the path, nor does a merge replace a dataset export."""
    from workbench.train.merge import MergeError, check_output
    from workbench.targets import MERGED_MODEL

    model = ws.root / "models" / "20261123-014500-sft-ab12-merged"
    model.mkdir(parents=True)
    (model / "config.json").write_text('{"model_type": "llama"}')
    (model / "model.safetensors").write_bytes(b"weights")
    write_manifest(model, kind=MERGED_MODEL, source="runs/x/checkpoints/step-2", base_model=None)
    with pytest.raises(TargetError, match="holds a merged model, not a dataset export"):
        export_dataset(ws, "pairs", "hf", model, overwrite=True)
    assert (model / "model.safetensors").read_bytes() == b"weights"
    exported = tmp_path / "pairs_hf"
    export_dataset(ws, "pairs", "hf", exported)
    with pytest.raises(MergeError, match="output: .*holds a dataset export, not a merged model"):
        check_output(exported, ws.root, overwrite=True)
    assert check_output(model, ws.root, overwrite=True).exists   # a previous merge still is replaceable

def test_a_file_is_replaced_only_with_overwrite(ws, tmp_path):
    out = tmp_path / "pairs.jsonl"
    out.write_text("keep me\n", encoding="utf-8")
    with pytest.raises(TargetError, match="already exists"):
        export_dataset(ws, "pairs", "jsonl", out)
    assert out.read_text(encoding="utf-8") == "keep me\n"
    report = export_dataset(ws, "pairs", "jsonl", out, overwrite=True)
    assert report.rows == len(ROWS) and out.read_text(encoding="utf-8").count("\n") == len(ROWS)
    # A folder where a file export should go, a file where a folder export should go, a symlink.
    folder = tmp_path / "folder.jsonl"
    keep = sentinel(folder)
    with pytest.raises(TargetError, match="is a folder"):
        export_dataset(ws, "pairs", "jsonl", folder, overwrite=True)
    with pytest.raises(TargetError, match="is a file"):
        export_dataset(ws, "pairs", "hf", out, overwrite=True)
    link = tmp_path / "link.jsonl"
    link.symlink_to(keep)
    with pytest.raises(TargetError, match="symbolic link"):
        export_dataset(ws, "pairs", "jsonl", link, overwrite=True)
    assert survives(keep)


@pytest.mark.parametrize("name", ["runs/new-export.jsonl", "runs/20260101-000000-sft-aa01/pairs.jsonl",
                                  "workspace.sqlite-journal", "workspace.sqlite-wal", "workspace.sqlite-shm"])
def test_a_new_path_in_runs_or_named_like_the_database_is_refused_too(ws, tmp_path, name):
    # Before, the protection applied only to paths that existed: a new export could be created
    # inside runs/ or as a database's journal/WAL/shm file (which SQLite would then read as its own).
    # (The open workspace's own -wal/-shm exist: the name is tried in a folder of its own.)
    (ws.root / "runs").mkdir(exist_ok=True)
    target = (ws.root if name.startswith("runs/") else tmp_path / "copy-of-ws") / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with pytest.raises(TargetError, match="runs/|database"):
        export_dataset(ws, "pairs", "jsonl", target)
    assert not target.exists() and ws.info().records == len(ROWS)
    with pytest.raises(TargetError, match="runs/|database"):
        check_target(target, folder=True, workspace=ws.root)


def test_empty_targets_are_free_to_take(ws, tmp_path):
    (tmp_path / "empty").mkdir()
    export_dataset(ws, "pairs", "hf", tmp_path / "empty")
    assert (tmp_path / "empty" / MANIFEST).is_file()
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert export_dataset(ws, "pairs", "jsonl", tmp_path / "empty.jsonl").rows == len(ROWS)


def test_the_rule_is_checked_again_right_before_the_rename(ws, tmp_path):
    out = tmp_path / "late"
    target = check_target(out, folder=True, workspace=ws.root)
    built = tmp_path / ".late.build"
    built.mkdir()
    keep = sentinel(out)  # appeared while the export was being written
    with pytest.raises(TargetError):
        target.replace_with(built)
    assert survives(keep) and built.is_dir()


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def test_cli_hf_export_to_dot_refuses_with_one_line(ws, tmp_path):
    """``data export --format hf --out .`` from a folder of one's own (and from the workspace)."""
    ws.close()
    project = tmp_path / "home" / "photos"
    keep = sentinel(project, "holiday.jpg")
    for cwd in (project, ws.root):
        for extra in ((), ("--overwrite",)):
            proc = _cli("data", "export", "pairs", "--workspace", ws.root, "--format", "hf", "--out", ".", *extra,
                        cwd=cwd)
            assert proc.returncode != 0
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in proc.stderr and str(cwd) in lines[0], proc.stderr
    assert survives(keep) and sorted(p.name for p in project.iterdir()) == ["holiday.jpg"]
    assert Workspace.open(ws.root).info().records == len(ROWS)
    # The flag does replace what is recognisably ours.
    out = tmp_path / "again.jsonl"
    assert _cli("data", "export", "pairs", "--workspace", ws.root, "--format", "jsonl", "--out", out,
                cwd=tmp_path).returncode == 0
    assert _cli("data", "export", "pairs", "--workspace", ws.root, "--format", "jsonl", "--out", out,
                cwd=tmp_path).returncode != 0
    assert _cli("data", "export", "pairs", "--workspace", ws.root, "--format", "jsonl", "--out", out, "--overwrite",
                cwd=tmp_path).returncode == 0


def test_every_folder_format_writes_a_manifest(ws, tmp_path):
    for fmt in FOLDER_FORMATS:
        out = tmp_path / f"out-{fmt}"
        export_dataset(ws, "pairs", fmt, out)
        listed = json.loads((out / MANIFEST).read_text())["files"]
        assert sorted(listed) == sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                                        if p.is_file() and p.name != MANIFEST)


def test_an_unwritable_target_is_one_clear_error_and_leaves_nothing(ws, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where a folder would have to be")
    with pytest.raises(WorkbenchError, match=r"notes.txt/pairs.jsonl: cannot write the export: .*nothing was written"):
        export_dataset(ws, "pairs", "jsonl", blocker / "pairs.jsonl")
    assert blocker.read_text() == "a file where a folder would have to be"
