"""Import speed and memory: our validated, stored import vs ``datasets.load_dataset("json")``.

Generates a 200k-pair JSONL file, imports it into a fresh workspace in a
child process (so peak RSS is the import's own), then loads the same file
with the Hugging Face ``datasets`` JSON loader (fresh cache) in another
child process, and prints both speeds and their ratio. The last line is one
JSON object: ``{"rows_per_s", "baseline_rows_per_s", "ratio", "peak_rss_mb"}``.

    python benchmarks/import_speed.py [--rows 200000] [--repeat 3] [--layout pairs|ultrafeedback]

``--layout ultrafeedback`` writes HuggingFaceH4/ultrafeedback_binarized rows
(a string prompt, chosen/rejected whole conversations, scores): the per-row
path a public layout takes, instead of the whole-column path of plain pairs.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma "
         "tau upsilon phi chi psi omega").split()

OURS = r"""
import json, resource, sys, time
from workbench.store.workspace import Workspace
from workbench.data.importer import import_file
ws = Workspace.init(sys.argv[2])
t = time.perf_counter()
report = import_file(ws, sys.argv[1], "bench")
dt = time.perf_counter() - t
report.checkpoint_thread.join()  # the WAL copied into the database file, off the caller's time
ckpt = time.perf_counter() - t
print(json.dumps({"rows": report.rows, "seconds": dt, "with_checkpoint_s": ckpt,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

BASELINE = r"""
import json, resource, sys, time
import datasets
datasets.disable_progress_bars()
t = time.perf_counter()
ds = datasets.load_dataset("json", data_files=sys.argv[1], split="train", cache_dir=sys.argv[2])
dt = time.perf_counter() - t
print(json.dumps({"rows": ds.num_rows, "seconds": dt,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def generate(path: Path, rows: int, seed: int = 0, layout: str = "pairs") -> None:
    rnd = random.Random(seed)

    def words(n: int) -> str:
        return " ".join(rnd.choice(WORDS) for _ in range(n))

    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            prompt, chosen, rejected = f"Question {i}: {words(12)}?", words(30), words(25)
            if layout == "ultrafeedback":
                user = {"role": "user", "content": prompt}
                row = {"prompt": prompt, "prompt_id": f"{i:08x}",
                       "chosen": [user, {"role": "assistant", "content": chosen}],
                       "rejected": [user, {"role": "assistant", "content": rejected}],
                       "messages": [user, {"role": "assistant", "content": chosen}],
                       "score_chosen": 8.0, "score_rejected": 4.5}
            else:
                row = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
            f.write(json.dumps(row) + "\n")


def child(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each; the best is reported")
    ap.add_argument("--layout", choices=("pairs", "ultrafeedback"), default="pairs",
                    help="rows to generate: plain pairs (default) or UltraFeedback binarized rows")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "pairs.jsonl"
        generate(data, args.rows, layout=args.layout)
        size_mb = data.stat().st_size / 1e6
        print(f"file: {args.rows:,} {args.layout} rows, {size_mb:.1f} MB")
        ours, base = [], []
        for i in range(args.repeat):
            # Alternate so both see the same page-cache and machine load.
            ours.append(child(OURS, str(data), str(tmp / f"ws{i}")))
            base.append(child(BASELINE, str(data), str(tmp / f"cache{i}")))
            print(f"run {i + 1}: workbench {ours[-1]['seconds']:.2f} s until committed, "
                  f"{ours[-1]['with_checkpoint_s']:.2f} s with the background WAL checkpoint "
                  f"(peak RSS {ours[-1]['peak_rss_mb']:.0f} MB), "
                  f"datasets {base[-1]['seconds']:.2f} s (peak RSS {base[-1]['peak_rss_mb']:.0f} MB)")
        best_ours = min(ours, key=lambda r: r["seconds"])
        best_base = min(base, key=lambda r: r["seconds"])
        assert best_ours["rows"] == best_base["rows"] == args.rows
        rps = args.rows / best_ours["seconds"]
        brps = args.rows / best_base["seconds"]
        peak = max(r["peak_rss_mb"] for r in ours)
        print(f"workbench import (validate + store in SQLite): {rps:,.0f} rows/s")
        print(f"datasets.load_dataset('json') (arrow cache):   {brps:,.0f} rows/s")
        rps_ckpt = args.rows / best_ours["with_checkpoint_s"]
        print(f"  counting the background WAL checkpoint too: {rps_ckpt:,.0f} rows/s "
              f"(ratio {rps_ckpt / brps:.2f}x)")
        print(f"ratio {rps / brps:.2f}x (target >= 1.0), peak RSS {peak:.0f} MB (target < 500)")
        print(json.dumps({"rows_per_s": round(rps), "baseline_rows_per_s": round(brps),
                          "ratio": round(rps / brps, 3), "peak_rss_mb": round(peak, 1)}))


if __name__ == "__main__":
    main()
