"""Deletes that SQLite's foreign-key checks make slow without child-column indexes.

With ``foreign_keys = ON`` every deleted parent row is looked up in each
child column that references it. Two deletes a user makes:

- **undo a ranking** (Ctrl+Z in the Rank page): ``DELETE FROM rankings``
  checks ``records.ranking_id``, one lookup per undo, in a workspace of
  ``--records`` imported records;
- **delete a dataset** of ``--small`` rows while another dataset's snapshot
  of ``--records`` rows exists: every deleted record is looked up in
  ``snapshot_records.record_id``.

Each is timed on the workspace as migrated (schema v4 indexes), then the
same workspace with those indexes dropped (the baseline, v3), in the same
run. Prints one JSON line ``{"undo_ms", "undo_baseline_ms", "undo_speedup",
"delete_ms", "delete_baseline_ms", "delete_speedup"}`` (medians).

    python benchmarks/store_deletes.py [--records 300000] [--small 2000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.store import annotations as A  # noqa: E402
from workbench.store import datasets as D  # noqa: E402
from workbench.store.workspace import Workspace  # noqa: E402

V4_INDEXES = ("records_by_ranking", "records_by_candidate", "snapshot_records_by_record", "candidates_by_parent",
              "queue_skips_by_prompt")


def build(root: Path, records: int) -> None:
    with Workspace.init(root) as ws:
        with ws.transaction() as c:
            big = D.create_dataset(c, "big", "preference", "standard")
            c.executemany("INSERT INTO records(dataset_id, prompt, chosen, rejected) VALUES (?, ?, ?, ?)",
                          ((big, f"prompt {i}", "a fine answer", "a poor one") for i in range(records)))
        with ws.transaction() as c:
            D.freeze(c, "big", note="benchmark")
            pid = A.add_prompt(c, [{"role": "user", "content": "hello"}])
            for text in ("one", "two"):
                A.add_candidate(c, pid, [{"role": "assistant", "content": text}])


def time_undo(ws: Workspace, repeats: int) -> float:
    pid = ws.conn.execute("SELECT id FROM prompts").fetchone()[0]
    cands = [r[0] for r in ws.conn.execute("SELECT id FROM candidates WHERE prompt_id = ?", (pid,))]
    samples = []
    for _ in range(repeats):
        with ws.transaction() as c:
            rid = A.record_ranking(c, pid, "bench", [[cands[0]], [cands[1]]])
        t = time.perf_counter()
        with ws.transaction() as c:
            c.execute("DELETE FROM rankings WHERE id = ?", (rid,))
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def time_delete(ws: Workspace, small: int, repeats: int) -> float:
    samples = []
    for i in range(repeats):
        name = f"small-{i}"
        with ws.transaction() as c:
            ds = D.create_dataset(c, name, "preference", "standard")
            c.executemany("INSERT INTO records(dataset_id, prompt, chosen, rejected) VALUES (?, ?, ?, ?)",
                          ((ds, f"q {j}", "x", "y") for j in range(small)))
        t = time.perf_counter()
        with ws.transaction() as c:
            D.delete_dataset(c, name)
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wb-deletes-"))
    try:
        build(tmp / "v4", args.records)
        shutil.copytree(tmp / "v4", tmp / "v3")
        with Workspace.open(tmp / "v3") as ws, ws.transaction() as c:
            for name in V4_INDEXES:
                c.execute(f"DROP INDEX {name}")
        out = {}
        for label, folder, delete_repeats in (("", "v4", args.repeats), ("_baseline", "v3", 3)):
            with Workspace.open(tmp / folder) as ws:
                if label:  # Workspace.open must not have re-created what the baseline dropped
                    left = {r[0] for r in ws.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
                    assert not left & set(V4_INDEXES), left & set(V4_INDEXES)
                out[f"undo{label}_ms"] = round(time_undo(ws, args.repeats), 2)
                out[f"delete{label}_ms"] = round(time_delete(ws, args.small, delete_repeats), 1)
        out["undo_speedup"] = round(out["undo_baseline_ms"] / out["undo_ms"], 1)
        out["delete_speedup"] = round(out["delete_baseline_ms"] / out["delete_ms"], 1)
        print(f"{args.records:,} records (and a snapshot of them); undo a ranking, delete a "
              f"{args.small:,}-row dataset", file=sys.stderr, flush=True)
        print(json.dumps(out))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
