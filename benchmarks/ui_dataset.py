"""Dataset manager at a million rows: open, scroll to the end, search, and event-loop stalls.

Generates a 1,000,000-row preference dataset (JSONL, imported with the
real importer) into a temporary workspace, builds the search index, then
drives the real :class:`ui.datasets.manager.DatasetManagerPanel` in a Qt
application (offscreen unless ``QT_QPA_PLATFORM`` says otherwise) and
measures:

- ``open_ms``: ``set_workspace`` until the first rows of the record table
  are painted (dataset list read, first dataset selected, first page
  queried, previews fetched, viewport painted);
- ``scroll_end_ms``: ``scrollToBottom`` + paint of the last rows, once
  the full id list is there;
- ``search_ms``: typing a query and pressing Enter until the first
  results are painted (the worst of several queries);
- ``stall_p99_ms``: while a 200,000-row import runs on a worker thread
  the way the import wizard runs it (then the search index catches up,
  as the page does after an import), a 5 ms QTimer probes the event
  loop; the 99th percentile of how late it fires.

Prints the figures, then ONE JSON line
``{"open_ms", "scroll_end_ms", "search_ms", "stall_p99_ms"}``.
Targets: search < 200 ms, stall p99 < 50 ms.

    python benchmarks/ui_dataset.py [--rows 1000000] [--import-rows 200000]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

WORDS = ("the a model answer question python code function data list loop error value return result explain "
         "simple example user string number file read write open close test check good bad better best fast "
         "slow small large first last next step because however therefore memory thread process queue batch "
         "train reward policy gradient loss token sequence prompt response rank prefer helpful harmless "
         "honest safe clear wrong right maybe always never often rarely quickly carefully simply directly "
         "recipe bread flour water salt yeast oven minutes hours river mountain city country history science "
         "physics chemistry biology music guitar piano song poem story novel author travel ticket station "
         "haiku rain snow winter summer garden coffee tea kitchen").split()
#: Queries typed into the search field: common words, a rare one, a prefix, several terms.
QUERIES = ("python", "guitar piano", "q777777", "chemis", "haiku rain winter", "yeast flour oven bread")


def generate(path: Path, rows: int, seed: int) -> None:
    """Plain-word text needs no JSON escaping, so lines are formatted directly (fast)."""
    rnd = random.Random(seed)
    choice, randint = rnd.choice, rnd.randint
    with open(path, "w", encoding="utf-8") as f:
        buf = []
        for i in range(rows):
            prompt = " ".join(choice(WORDS) for _ in range(randint(6, 14)))
            chosen = " ".join(choice(WORDS) for _ in range(randint(18, 40)))
            rejected = " ".join(choice(WORDS) for _ in range(randint(8, 24)))
            buf.append(f'{{"prompt": "Q{i}: {prompt}?", "chosen": "{chosen}.", "rejected": "{rejected}."}}\n')
            if len(buf) == 10_000:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return 0.0
    k = min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))
    return values[k]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--import-rows", type=int, default=200_000)
    args = ap.parse_args()

    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from ui.common.worker import run_in_thread
    from ui.datasets.manager import DatasetManagerPanel
    from workbench.data.importer import import_file
    from workbench.store import search
    from workbench.store.workspace import Workspace

    app = QApplication.instance() or QApplication([])

    def wait_until(predicate, timeout_s: float = 120.0) -> None:
        deadline = time.perf_counter() + timeout_s
        while not predicate():
            if time.perf_counter() > deadline:
                raise TimeoutError("condition not reached")
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)

    with tempfile.TemporaryDirectory(prefix="ui-dataset-bench-") as tmp:
        tmp = Path(tmp)
        data = tmp / "pairs.jsonl"
        t = time.perf_counter()
        generate(data, args.rows, seed=1)
        print(f"generated {args.rows:,} pairs ({data.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
        ws = Workspace.init(tmp / "ws")
        t = time.perf_counter()
        report = import_file(ws, data, "pairs-1m")
        report.checkpoint_thread.join()
        print(f"imported in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        search.catch_up(ws.conn)
        index_s = time.perf_counter() - t
        print(f"search index built in {index_s:.1f} s ({args.rows / index_s:,.0f} records/s)")
        ws.close()
        data.unlink()

        panel = DatasetManagerPanel()
        panel.resize(1280, 800)
        panel.show()
        app.processEvents()
        table, model = panel.table, panel.model

        def painted_rows() -> bool:
            # A synchronous paint: the view asks the model for every visible cell.
            table.viewport().repaint()
            return True

        # -- open ---------------------------------------------------------------------------------
        t = time.perf_counter()
        panel.set_workspace(tmp / "ws")
        wait_until(lambda: model.rowCount() > 0)
        painted_rows()
        open_ms = (time.perf_counter() - t) * 1000
        wait_until(lambda: model.complete and not model.busy)
        full_ms = (time.perf_counter() - t) * 1000
        print(f"open: first rows painted after {open_ms:.0f} ms; full id list of {model.rowCount():,} "
              f"after {full_ms:.0f} ms")

        # -- scroll to the end ---------------------------------------------------------------------
        before = model.fetched_rows
        t = time.perf_counter()
        table.scrollToBottom()
        painted_rows()
        scroll_ms = (time.perf_counter() - t) * 1000
        last = model.index(model.rowCount() - 1, 1).data()
        print(f"scroll to the end: {scroll_ms:.1f} ms (fetched {model.fetched_rows - before} rows; "
              f"last row: {last[:40]!r})")

        # -- search --------------------------------------------------------------------------------
        times = {}
        for query in QUERIES:
            panel.search_edit.clear()
            wait_until(lambda: model.complete and not model.busy)
            panel.search_edit.setText(query)
            t = time.perf_counter()
            panel.search_edit.returnPressed.emit()     # Enter: no debounce wait
            wait_until(lambda: model.rowCount() > 0 or (model.complete and not model.busy))
            painted_rows()
            times[query] = (time.perf_counter() - t) * 1000
            wait_until(lambda: model.complete and not model.busy)
            total = (time.perf_counter() - t) * 1000
            print(f"search {query!r}: first results painted after {times[query]:.0f} ms; "
                  f"all {model.rowCount():,} matches after {total:.0f} ms")
        search_ms = max(times.values())
        panel.search_edit.clear()
        wait_until(lambda: model.complete and not model.busy)

        # -- event-loop stalls during a 200k-row import, then its indexing --------------------------
        small = tmp / "import.jsonl"
        generate(small, args.import_rows, seed=2)
        gaps: dict[str, list[float]] = {"import": [], "index": []}
        phase = ["import"]
        clock = QElapsedTimer()
        clock.start()
        last_tick = [clock.nsecsElapsed()]

        def tick() -> None:
            now = clock.nsecsElapsed()
            gaps[phase[0]].append(max(0.0, (now - last_tick[0]) / 1e6 - 5.0))
            last_tick[0] = now

        probe = QTimer()
        probe.setTimerType(Qt.TimerType.PreciseTimer)
        probe.setInterval(5)
        probe.timeout.connect(tick)
        root = tmp / "ws"

        def work(progress, cancel):
            # As the import wizard does: a worker thread with its own workspace connection.
            w = Workspace.open(root)
            try:
                return import_file(w, small, "imported-200k", progress=progress, cancel=cancel)
            finally:
                w.close()

        done = []
        t = time.perf_counter()
        probe.start()
        task = run_in_thread(work, on_success=done.append, on_failure=done.append)
        wait_until(lambda: bool(done), timeout_s=300)
        import_s = time.perf_counter() - t
        if isinstance(done[0], BaseException):
            raise done[0]
        phase[0] = "index"
        indexed = []
        panel.indexer.finished.connect(indexed.append)
        t = time.perf_counter()
        panel._on_import_wizard_imported("imported-200k")   # what the page does on the wizard's signal
        wait_until(lambda: bool(indexed), timeout_s=300)
        index2_s = time.perf_counter() - t
        probe.stop()
        task.wait()
        for name, values in gaps.items():
            print(f"event-loop lateness during the {name} ({len(values):,} probes): "
                  f"median {statistics.median(values) if values else 0:.1f} ms, "
                  f"p99 {percentile(values, 99):.1f} ms, max {max(values, default=0):.1f} ms")
        print(f"  (import of {args.import_rows:,} rows took {import_s:.1f} s, indexing {index2_s:.1f} s)")
        every = gaps["import"] + gaps["index"]
        stall_p99 = percentile(every, 99)
        panel.shutdown()

    print(f"targets: search < 200 ms ({'met' if search_ms < 200 else 'MISSED'}), "
          f"stall p99 < 50 ms ({'met' if stall_p99 < 50 else 'MISSED'})")
    print(json.dumps({"open_ms": round(open_ms, 1), "scroll_end_ms": round(scroll_ms, 1),
                      "search_ms": round(search_ms, 1), "stall_p99_ms": round(stall_p99, 1)}))


if __name__ == "__main__":
    main()
