"""The status bar: queue counts from real queued/running jobs (held probe runs),
click-through to the Runs page, and the GPU label after a real probe job."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from PySide6.QtCore import Qt

import ui.status_bar
from ui.status_bar import gpu_text, queue_text
from workbench.jobs.supervisor import QUEUED, RUNNING, RunInfo, Supervisor


def _run(status: str, stage: str = "sft") -> RunInfo:
    return RunInfo(run_id=f"r-{status}", stage=stage, status=status, path=Path("."), created=0.0)


def test_queue_text() -> None:
    assert (ui.status_bar.RUNNING, ui.status_bar.QUEUED) == (RUNNING, QUEUED)  # kept in step
    assert queue_text([]) == "No jobs"
    assert queue_text([_run("completed"), _run("failed")]) == "No jobs"
    assert queue_text([_run(RUNNING)]) == "1 running"
    assert queue_text([_run(QUEUED), _run(QUEUED)]) == "2 queued"
    assert queue_text([_run(RUNNING), _run(QUEUED), _run(QUEUED)]) == "1 running \u00b7 2 queued"


def test_gpu_text() -> None:
    gib = 1024 ** 3
    assert gpu_text({"gpu_name": None, "mps_available": False}) == "No GPU (CPU)"
    one = {"gpu_name": "NVIDIA H200", "free_memory": int(139.14 * gib), "device_count": 1}
    assert gpu_text(one) == "NVIDIA H200 \u00b7 139.1 GiB free"
    assert gpu_text({**one, "device_count": 4}) == "NVIDIA H200 \u00b7 139.1 GiB free (+3 more)"


def test_status_bar_counts_real_running_and_queued_jobs(qtbot, make_window, workspace):
    sup = Supervisor(workspace)
    held = sup.start("probe", {"hold_s": 120})  # nothing else runs: it starts now
    waiting = sup.start("probe", {})  # one job at a time: this one waits in the queue
    try:
        window = make_window(workspace)
        button = window.status_bar_view.jobs_button
        qtbot.waitUntil(lambda: button.text() == "1 running \u00b7 1 queued", timeout=30000)
        assert held.run_id in button.toolTip() and waiting.run_id in button.toolTip()

        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert window.current_title() == "Runs"

        sup.cancel(waiting.run_id)
        qtbot.waitUntil(lambda: button.text() == "1 running", timeout=10000)
    finally:
        sup.cancel(waiting.run_id)
        sup.cancel(held.run_id, timeout=2.0)
    qtbot.waitUntil(lambda: button.text() == "No jobs", timeout=10000)


def test_gpu_label_after_a_real_probe(qtbot, make_window, workspace):
    earlier = Supervisor(workspace).start("probe", {})  # the probe of an earlier session
    assert earlier.wait(timeout=90).status == "completed"
    window = make_window(workspace, gpu_probe_delay_ms=0)
    label = window.status_bar_view.gpu_label
    qtbot.waitUntil(lambda: not label.text().startswith("GPU:"), timeout=90000)
    runs = Supervisor(workspace).list_runs()  # one probe per open: the earlier one was pruned
    assert [r.stage for r in runs] == ["probe"] and runs[0].status == "completed"
    assert runs[0].run_id != earlier.run_id
    info = json.loads((runs[0].path / "probe.json").read_text())
    assert label.text() == gpu_text(info)
    if shutil.which("nvidia-smi") is None:
        assert label.text() == "No GPU (CPU)"
    else:
        assert "GiB free" in label.text()
    assert f"torch {info['torch']}" in label.toolTip() and runs[0].run_id in label.toolTip()


def test_probe_waits_for_the_window_and_stops_with_it(qtbot, test_page_specs, workspace):
    from ui.main_window import MainWindow

    window = MainWindow(workspace, page_specs=test_page_specs, gpu_probe_delay_ms=60000)
    qtbot.addWidget(window)
    assert window.status_bar_view.gpu_label.text() == "GPU: probing\u2026"
    assert not window._probe_timer.isActive()  # counted from the first show, not construction
    window.show()
    qtbot.waitExposed(window)
    assert window._probe_timer.isActive()
    window.close()
    assert not window._probe_timer.isActive() and not window._probe.running
    assert Supervisor(workspace).list_runs() == []


def test_closing_the_workspace_mid_probe_stops_its_job_without_blocking(qtbot, make_window, workspace):
    window = make_window(workspace, gpu_probe_delay_ms=0)
    sup = Supervisor(workspace)
    qtbot.waitUntil(lambda: any(r.alive for r in sup.list_runs()), timeout=30000)
    window.close_workspace()  # returns at once: the probe's worker cancels the job
    assert window.is_welcome_shown()
    qtbot.waitUntil(lambda: all(not r.alive for r in sup.list_runs()), timeout=30000)
    (run,) = sup.list_runs()
    assert run.stage == "probe" and run.status in ("cancelled", "completed")
    assert window.status_bar_view.gpu_label.text() == ""  # nothing shown for a closed workspace
    probe = window._probe
    window.close()  # waits for the stopped worker: no thread outlives the window
    assert not any(task._thread.isRunning() for task in probe._running)
    qtbot.waitUntil(lambda: not probe._running)  # their done() signals arrive
