"""The CLI through real subprocesses, as scripts use it."""

import json
import os
import subprocess
import sys
from pathlib import Path


BIN = [sys.executable, "-m", "workbench.cli"]


def run(*args, check=True):
    proc = subprocess.run([*BIN, *map(str, args)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}): {proc.stderr}")
    return proc


def test_console_script_is_installed():
    scripts = Path(sys.executable).parent
    assert (scripts / "rlhf-workbench").exists()


def test_workspace_and_data_commands(tmp_path):
    ws = tmp_path / "ws"
    assert "Workspace ready" in run("workspace", "init", ws).stdout
    src = tmp_path / "pairs.jsonl"
    src.write_text("".join(json.dumps({"prompt": f"p{i}", "chosen": "a", "rejected": "b"}) + "\n"
                           for i in range(20)), encoding="utf-8")
    out = json.loads(run("data", "import", src, "--workspace", ws, "--name", "prefs", "--json").stdout)
    assert {"dataset": "prefs", "kind": "preference", "rows": 20, "skipped": 0}.items() <= out.items()
    listed = json.loads(run("data", "list", "--workspace", ws, "--json").stdout)
    assert [d["name"] for d in listed["datasets"]] == ["prefs"]
    stats = json.loads(run("data", "stats", "prefs", "--workspace", ws, "--json").stdout)
    assert stats["rows"] == 20
    split = json.loads(run("data", "split", "prefs", "--workspace", ws, "--validation", "0.25", "--json").stdout)
    assert split["validation"] == 5
    snap = json.loads(run("data", "freeze", "prefs", "--workspace", ws, "--json").stdout)
    exp = json.loads(run("data", "export", f"prefs@{snap['hash'][:8]}", "--workspace", ws, "--format", "csv",
                         "--out", tmp_path / "o.csv", "--json").stdout)
    assert exp["rows"] == 20 and exp["snapshot"] == snap["hash"]
    info = json.loads(run("workspace", "info", "--workspace", ws, "--json").stdout)
    assert info["datasets"] == 1 and info["records"] == 20 and info["snapshots"] == 1
    # Column mapping and --kind.
    qa = tmp_path / "qa.csv"
    qa.write_text("question,answer\nWhat?,That.\n", encoding="utf-8")
    out = json.loads(run("data", "import", qa, "--workspace", ws, "--name", "qa", "--map", "question=prompt",
                         "--map", "answer=completion", "--kind", "sft", "--json").stdout)
    assert out["rows"] == 1 and out["kind"] == "sft"


def test_failure_is_one_line_naming_file_line_field(tmp_path):
    ws = tmp_path / "ws"
    run("workspace", "init", ws)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n'
                   '{"prompt": "a", "chosen": 5, "rejected": "c"}\n', encoding="utf-8")
    proc = run("data", "import", bad, "--workspace", ws, "--name", "x", "--json", check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "bad.jsonl:2" in lines[0] and "'chosen'" in lines[0]
    assert proc.stdout == ""
    listed = json.loads(run("data", "list", "--workspace", ws, "--json").stdout)
    assert listed["datasets"] == []
    skipped = json.loads(run("data", "import", bad, "--workspace", ws, "--name", "x", "--skip-invalid",
                             "--json").stdout)
    assert skipped["rows"] == 1 and skipped["skipped"] == 1
    assert skipped["skipped_rows"][0] == {"line": 2, "field": "chosen",
                                          "message": "expected a string or a list of messages, got integer"}


def test_missing_workspace_and_dataset_errors(tmp_path):
    proc = run("data", "list", "--workspace", tmp_path / "nope", check=False)
    assert proc.returncode == 1 and "not a workspace" in proc.stderr
    run("workspace", "init", tmp_path / "ws")
    proc = run("data", "stats", "ghost", "--workspace", tmp_path / "ws", check=False)
    assert proc.returncode == 1 and "no dataset named 'ghost'" in proc.stderr


def test_import_linter_contract_holds():
    """workbench (the core) must never import PySide6, pyqtgraph or ui."""
    root = Path(__file__).resolve().parents[2]
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "KEPT" in proc.stdout


def test_runs_list_show_cancel_on_a_real_job(tmp_path):
    """`runs` drives the supervisor: a held probe job is listed, cancelled, and shown."""
    import time

    from workbench.jobs.supervisor import Supervisor

    ws = tmp_path / "ws"
    run("workspace", "init", ws)
    assert "No runs yet" in run("runs", "list", "--workspace", ws).stdout
    handle = Supervisor(ws).start("probe", {"hold_s": 60})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = json.loads(run("runs", "list", "--workspace", ws, "--json").stdout)["runs"]
        if runs and runs[0]["status"] == "running":
            break
        time.sleep(0.2)
    assert runs[0]["run_id"] == handle.run_id and runs[0]["status"] == "running"
    cancelled = json.loads(run("runs", "cancel", handle.run_id, "--workspace", ws, "--json").stdout)
    assert cancelled["status"] == "cancelled" and not cancelled["alive"]
    shown = json.loads(run("runs", "show", handle.run_id, "--workspace", ws, "--json").stdout)
    assert shown["status"] == "cancelled" and shown["stage"] == "probe"
    proc = run("runs", "show", "no-such-run", "--workspace", ws, check=False)
    assert proc.returncode == 1 and "no run 'no-such-run'" in proc.stderr
