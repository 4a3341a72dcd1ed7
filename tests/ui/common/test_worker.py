"""The background-task helper: results, errors and cancellation reach the GUI
thread as signals, and progress is throttled."""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import QThread

from ui.common.worker import run_in_thread
from workbench.errors import Cancelled


def test_result_arrives_on_gui_thread(qtbot) -> None:
    seen = {}

    def fn(progress, cancel):
        seen["worker"] = threading.get_ident()
        progress(0.5, "half")
        return 42

    results = []
    task = run_in_thread(fn, on_success=lambda r: results.append((r, QThread.currentThread())))
    with qtbot.waitSignal(task.done, timeout=5000):
        pass
    assert results and results[0][0] == 42
    assert results[0][1] is QThread.currentThread()  # delivered on the GUI thread
    assert seen["worker"] != threading.get_ident()
    assert task.finished_ok and not task.running


def test_error_is_reported_not_lost(qtbot) -> None:
    def fn(progress, cancel):
        raise ValueError("bad line 3")

    errors = []
    task = run_in_thread(fn, on_failure=errors.append)
    with qtbot.waitSignal(task.done, timeout=5000):
        pass
    assert isinstance(errors[0], ValueError) and "line 3" in str(errors[0])
    assert task.error is errors[0] and not task.finished_ok


def test_cancel_stops_a_cooperative_loop(qtbot) -> None:
    started = threading.Event()

    def fn(progress, cancel):
        started.set()
        while True:
            if cancel.cancelled:
                raise Cancelled("stopped")
            time.sleep(0.001)

    cancelled = []
    task = run_in_thread(fn, on_cancelled=lambda: cancelled.append(True))
    assert started.wait(5)
    task.cancel()
    with qtbot.waitSignal(task.done, timeout=5000):
        pass
    assert cancelled == [True] and not task.finished_ok


def test_progress_is_throttled_but_last_update_kept(qtbot) -> None:
    def fn(progress, cancel):
        for i in range(20000):
            progress(i / 20000, f"row {i}")
        progress(1.0, "done")

    updates = []
    task = run_in_thread(fn, on_progress=lambda f, m: updates.append((f, m)))
    with qtbot.waitSignal(task.done, timeout=10000):
        pass
    assert updates[-1] == (1.0, "done")
    assert len(updates) < 200  # 20,001 calls collapsed to a few per 50 ms


def test_deleting_the_owner_of_a_running_task_does_not_abort_the_process(tmp_path) -> None:
    """A page closed (and deleted) while its worker still runs: before the thread belonged to the
    application, dropping the Task destroyed a running QThread and Qt aborted the process. Run in a
    child process so that an abort fails this test instead of the whole suite."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "drop_task.py"
    script.write_text(
        "import gc, sys, time, threading\n"
        "from PySide6.QtCore import QCoreApplication, QObject, QTimer\n"
        "from ui.common.worker import run_in_thread\n"
        "app = QCoreApplication(sys.argv)\n"
        "ended = threading.Event()\n"
        "def slow(progress, cancel):\n"
        "    time.sleep(0.5)\n"
        "    ended.set()\n"
        "    return 42\n"
        "owner = QObject()\n"
        "task = run_in_thread(slow, parent=owner)\n"
        "del task\n"
        "owner.deleteLater()\n"
        "del owner\n"
        "gc.collect()\n"
        "QTimer.singleShot(1500, app.quit)\n"
        "app.exec()\n"
        "print('ended' if ended.is_set() else 'not ended')\n",
        encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
                          cwd=str(Path(__file__).resolve().parents[3]))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ended"


def test_wait_for_workers_waits_for_every_running_thread(qtbot) -> None:
    import threading
    import time

    from ui.common.worker import run_in_thread, wait_for_workers

    ended = []
    lock = threading.Lock()

    def slow(progress, cancel):
        time.sleep(0.3)
        with lock:
            ended.append(1)

    tasks = [run_in_thread(slow) for _ in range(3)]
    assert wait_for_workers(5000)
    assert len(ended) == 3
    for task in tasks:
        assert task.wait(0)
