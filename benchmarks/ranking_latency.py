"""Ranking latency: from a decision key press to the next item painted, with 100,000 queued items.

Builds a workspace of ``--items`` prompts (two Markdown candidates each, a
few hundred characters with a code block, like real responses), opens a
pairwise queue in the real :class:`ui.ranking.panel.RankingPanel` (shown,
active), and presses decision keys (1, 2, T, B, A) with ``QTest.keyClick``.
Each sample runs from just before the key press to the moment the first
response column of the next item has finished painting (the panel's
``item_painted``), with the event loop running in between as it does for a
person. Every decision is committed (its own ``synchronous=FULL``
transaction) before the next item is shown; the commit is timed separately
so the split between the disk and the screen is visible.

Between presses the event loop runs until idle (the prefetch top-up happens
there, after the paint, as it would while the annotator reads).

    python benchmarks/ranking_latency.py [--items 100000] [--decisions 600] [--warmup 30]

Offscreen by default (``QT_QPA_PLATFORM=offscreen``); under ``xvfb-run`` with
``QT_QPA_PLATFORM=xcb`` it paints a real X window. Prints the figures and
ends with one JSON line ``{"p50_ms", "p99_ms", ...}``. Target: p99 < 16 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ANSWERS = [
    "Use slicing to get a reversed copy:\n\n```python\nnums = [3, 1, 2]\nprint(nums[::-1])\n```\n\n"
    "Slicing never changes the original list, so it is safe inside loops. For very large lists "
    "`reversed()` avoids the copy because it returns an iterator.",
    "The simplest way is the list method:\n\n```python\nnums.reverse()\n```\n\nIt reverses **in place** "
    "and returns `None`, which trips people up when they write `nums = nums.reverse()`. If you need a "
    "new list, use `list(reversed(nums))`.",
    "A reward model scores a response to a prompt. It is trained on pairs where a person preferred one "
    "answer over another, with a loss that pushes the preferred score above the other. PPO then "
    "maximises that score while a KL penalty keeps the policy near the reference model.",
    "1. Collect prompts.\n2. Sample several responses per prompt.\n3. Rank them.\n4. Train a reward "
    "model on the pairs.\n5. Optimise the policy with PPO.\n\nEach step feeds the next; the rankings are "
    "the only human signal in the loop.",
]


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def build_workspace(root: Path, items: int, seed: int = 0) -> int:
    from workbench.store import queue as Q
    from workbench.store.workspace import Workspace

    rnd = random.Random(seed)
    now = time.time()
    with Workspace.init(root) as ws:
        with ws.transaction() as c:
            c.executemany("INSERT INTO prompts(id, prompt, style, tags, created_at) VALUES (?,?,'standard','[\"bench\"]',?)",
                          ((i + 1, f"Question {i}: how would you explain this to a new colleague? ({rnd.random():.6f})",
                            now) for i in range(items)))
            c.executemany("INSERT INTO candidates(prompt_id, response, model, params, created_at) VALUES (?,?,?,'{}',?)",
                          ((i // 2 + 1, f"{ANSWERS[(i * 7 + i // 2) % 4]}\n\n_Variant {i}._", f"m{i % 2}", now)
                           for i in range(2 * items)))
            queue_id = Q.create_queue(c, Q.QueueSpec(annotator="bench", repeat_every=20))
        # As after an import: the bulk of the data copied into the database file and on disk, so the
        # decisions below pay for their own commits, not for flushing the build.
        ws.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    os.sync()
    return queue_id


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--decisions", type=int, default=600)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--workspace", help="folder for the workspace (default: a temp folder)")
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    tmp = tempfile.TemporaryDirectory(prefix="ranking-latency-")
    root = Path(args.workspace or tmp.name) / "ws"
    t = time.perf_counter()
    build_workspace(root, args.items)
    build_s = time.perf_counter() - t
    print(f"workspace: {args.items:,} prompts x 2 candidates built in {build_s:.1f} s ({root})", flush=True)

    from PySide6.QtCore import QEventLoop, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from workbench.store import queue as Q
    from ui.ranking.panel import RankingPanel

    app = QApplication.instance() or QApplication(sys.argv[:1])
    commits: list[float] = []
    real_commit = Q.RankingQueue._commit

    def timed_commit(self, decision):
        t0 = time.perf_counter()
        real_commit(self, decision)
        commits.append((time.perf_counter() - t0) * 1000)

    Q.RankingQueue._commit = timed_commit

    t = time.perf_counter()
    panel = RankingPanel()
    panel.resize(1280, 800)
    panel.show()
    panel.set_workspace(root)
    panel.activateWindow()
    panel.setFocus()
    deadline = time.monotonic() + 10
    while QApplication.activeWindow() is not panel and time.monotonic() < deadline:
        app.processEvents()
    open_s = time.perf_counter() - t
    while panel._count_task is not None and panel._count_task.running:  # the first count, off-thread
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
    print(f"panel open with the queue in {open_s * 1000:.0f} ms; "
          f"{panel.progress_label.text()} (platform {app.platformName()})", flush=True)

    painted_at: list[float] = []
    panel.item_painted.connect(lambda: painted_at.append(time.perf_counter()))
    keys = [Qt.Key_1, Qt.Key_2, Qt.Key_T, Qt.Key_B, Qt.Key_A]
    samples: list[float] = []
    commit_samples: list[float] = []
    for i in range(args.warmup + args.decisions):
        app.processEvents()  # idle: the prefetch refill and anything else pending
        before, n_commits = len(painted_at), len(commits)
        t0 = time.perf_counter()
        QTest.keyClick(panel, keys[i % len(keys)])
        while len(painted_at) == before:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
        if i >= args.warmup:
            samples.append((painted_at[-1] - t0) * 1000)
            commit_samples.extend(commits[n_commits:])
    rest = [s - c for s, c in zip(samples, commit_samples)]
    result = {
        "p50_ms": round(percentile(samples, 0.50), 3),
        "p99_ms": round(percentile(samples, 0.99), 3),
        "max_ms": round(max(samples), 3),
        "commit_p50_ms": round(percentile(commit_samples, 0.50), 3),
        "commit_p99_ms": round(percentile(commit_samples, 0.99), 3),
        "show_and_paint_p50_ms": round(percentile(rest, 0.50), 3),
        "show_and_paint_p99_ms": round(percentile(rest, 0.99), 3),
        "items": args.items,
        "decisions": len(samples),
        "platform": app.platformName(),
    }
    print(f"key press -> next item painted over {len(samples)} decisions: p50 {result['p50_ms']:.2f} ms, "
          f"p99 {result['p99_ms']:.2f} ms, max {result['max_ms']:.2f} ms "
          f"(mean {statistics.fmean(samples):.2f} ms)")
    print(f"  of which the fsynced commit: p50 {result['commit_p50_ms']:.2f} ms, p99 {result['commit_p99_ms']:.2f} ms;"
          f" showing and painting: p50 {result['show_and_paint_p50_ms']:.2f} ms, "
          f"p99 {result['show_and_paint_p99_ms']:.2f} ms")
    slow = sorted(zip(samples, commit_samples), reverse=True)[:5]
    print("  slowest (total / commit ms): " + ", ".join(f"{a:.1f}/{b:.1f}" for a, b in slow))
    print(f"  target p99 < 16 ms: {'met' if result['p99_ms'] < 16 else 'MISSED'}")
    panel.shutdown()
    tmp.cleanup()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
