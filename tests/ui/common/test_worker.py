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
