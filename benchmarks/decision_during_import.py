"""Ranking decisions while a large import runs in another process: latency and "busy" failures.

Builds a workspace with a pairwise ranking queue, then times decisions
(``RankingQueue.choose``: the ranking committed with ``synchronous=FULL`` and
the next item taken) in two phases of the same run:

1. baseline: ``--decisions`` decisions with nothing else writing;
2. during an import: a child process imports a ``--rows``-row JSONL file
   (preference pairs, ~100 bytes a row) into the same workspace while this
   process keeps deciding, one decision every ``--interval-ms``, until the
   import has finished.

A decision that fails with "busy" (the workspace's write lock held past the
connection's 10 s lock timeout) is counted, not retried. Prints both
phases' p50/p99, their ratio, the busy count and the import's own time, and
ends with one JSON line. Target: p99 during the import < 100 ms, zero busy.

``--layout nectar`` imports Nectar rows instead (a prompt and 7 ranked
answers each): an import that stores rankings is one transaction from its
first ranking on, so this shows what a decision meets then.

    python benchmarks/decision_during_import.py [--rows 1000000] [--decisions 200] [--interval-ms 20]
                                                [--layout preference|nectar]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

IMPORT = r"""
import sys, time
from workbench.store.workspace import Workspace
from workbench.data.importer import import_file
ws = Workspace.open(sys.argv[1])
t = time.perf_counter()
print("START", flush=True)
report = import_file(ws, sys.argv[2], "big")
print("DONE", report.rows, time.perf_counter() - t, flush=True)
ws.close()
"""

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho".split()


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def write_jsonl(path: Path, rows: int, layout: str = "preference") -> None:
    rnd = random.Random(0)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            w = " ".join(rnd.choice(WORDS) for _ in range(8))
            if layout == "nectar":   # berkeley-nest/Nectar: an HH-style prompt, 7 answers ranked 1..7
                row = {"prompt": f"\n\nHuman: Question {i}: {w}?\n\nAssistant:",
                       "answers": [{"answer": f"answer {k} {w}", "model": f"model-{k}", "rank": k}
                                   for k in range(1, 8)]}
            else:
                row = {"prompt": f"Question {i}: {w}?", "chosen": f"good {w}", "rejected": f"bad {i}"}
            f.write(json.dumps(row) + "\n")


def build(root: Path, items: int) -> int:
    from workbench.store import queue as Q
    from workbench.store.workspace import Workspace

    now = time.time()
    with Workspace.init(root) as ws:
        with ws.transaction() as c:
            c.executemany("INSERT INTO prompts(id, prompt, style, created_at) VALUES (?,?,'standard',?)",
                          ((i + 1, f"Prompt {i}: which answer is better?", now) for i in range(items)))
            c.executemany("INSERT INTO candidates(prompt_id, response, params, created_at) VALUES (?,?,'{}',?)",
                          ((i // 2 + 1, f"Answer {i} " + "text " * 40, now) for i in range(2 * items)))
            queue_id = Q.create_queue(c, Q.QueueSpec(annotator="bench"))
        ws.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return queue_id


def decide(queue, latencies: list[float], rnd: random.Random) -> bool:
    """One decision; False when it failed because the workspace was busy."""
    from workbench.errors import WorkspaceBusyError

    t = time.perf_counter()
    try:
        queue.choose(rnd.randrange(2))
    except WorkspaceBusyError:
        return False
    latencies.append((time.perf_counter() - t) * 1000)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows in the imported file")
    ap.add_argument("--decisions", type=int, default=200, help="baseline decisions")
    ap.add_argument("--interval-ms", type=float, default=20.0, help="pause between decisions during the import")
    ap.add_argument("--layout", choices=("preference", "nectar"), default="preference",
                    help="what the imported file holds: pairs, or Nectar rankings (stored as rankings)")
    args = ap.parse_args()

    from workbench.store import queue as Q
    from workbench.store.workspace import Workspace

    rnd = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="decide-import-") as tmp:
        tmp = Path(tmp)
        data = tmp / "big.jsonl"
        write_jsonl(data, args.rows, args.layout)
        items = args.decisions + 20_000
        queue_id = build(tmp / "ws", items)
        ws = Workspace.open(tmp / "ws")
        ws.conn.execute("PRAGMA wal_autocheckpoint = 0")   # as the Rank page: checkpoints run elsewhere
        queue = Q.RankingQueue(ws.conn, queue_id)

        baseline: list[float] = []
        baseline_busy = sum(not decide(queue, baseline, rnd) for _ in range(args.decisions))

        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        child = subprocess.Popen([sys.executable, "-c", IMPORT, str(tmp / "ws"), str(data)], cwd=REPO,
                                 env=env, stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "START"
        during: list[float] = []
        busy = 0
        started = time.perf_counter()
        while child.poll() is None:
            busy += not decide(queue, during, rnd)
            time.sleep(args.interval_ms / 1000)
        wall = time.perf_counter() - started
        out = child.stdout.read().split()
        child.stdout.close()
        if child.returncode != 0 or not out or out[0] != "DONE":
            raise SystemExit(f"the import failed (exit {child.returncode})")
        import_rows, import_s = int(out[1]), float(out[2])
        ws.close()

    p50_base, p99_base = percentile(baseline, 0.5), percentile(baseline, 0.99)
    p50, p99 = percentile(during, 0.5), percentile(during, 0.99)
    print(f"baseline (no import): {len(baseline)} decisions, p50 {p50_base:.1f} ms, p99 {p99_base:.1f} ms, "
          f"busy {baseline_busy}")
    print(f"during a {import_rows:,}-row import ({import_s:.1f} s, {wall:.1f} s of deciding): "
          f"{len(during)} decisions, p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(during, default=0):.1f} ms, "
          f"busy {busy}")
    print(f"ratio p99 during/baseline: {p99 / p99_base:.2f}x; target p99 < 100 ms, zero busy")
    print(json.dumps({"layout": args.layout, "rows": import_rows, "import_s": round(import_s, 2), "decisions": len(during),
                      "p50_ms": round(p50, 2), "p99_ms": round(p99, 2), "max_ms": round(max(during, default=0), 2),
                      "baseline_p50_ms": round(p50_base, 2), "baseline_p99_ms": round(p99_base, 2),
                      "p99_ratio": round(p99 / p99_base, 2), "busy": busy, "baseline_busy": baseline_busy}))


if __name__ == "__main__":
    main()
