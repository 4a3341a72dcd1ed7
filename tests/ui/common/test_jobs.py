"""JobMonitor: a real queued and running job show up, off the GUI thread."""

from __future__ import annotations

from pathlib import Path

from ui.common.jobs import JobMonitor
from workbench.jobs.supervisor import CANCELLED, QUEUED, RUNNING, Supervisor
from workbench.store.workspace import Workspace


def test_monitor_lists_running_and_queued_runs(qtbot, tmp_path: Path) -> None:
    Workspace.init(tmp_path).close()
    sup = Supervisor(tmp_path)
    running = sup.start("probe", {"hold_s": 60})
    queued = sup.start("probe", {})
    monitor = JobMonitor(interval_ms=100)
    try:
        monitor.set_workspace(tmp_path)
        qtbot.waitUntil(lambda: [(r.run_id, r.status) for r in monitor.active_runs()]
                        == [(running.run_id, RUNNING), (queued.run_id, QUEUED)], timeout=60000)
        # Cancel the held job: the monitor's poll starts the queued one.
        sup.cancel(running.run_id)
        qtbot.waitUntil(lambda: any(r.run_id == running.run_id and r.status == CANCELLED
                                    for r in monitor.runs), timeout=30000)
        qtbot.waitUntil(lambda: any(r.run_id == queued.run_id and r.status != QUEUED
                                    for r in monitor.runs), timeout=30000)
        sup.wait(queued.run_id, timeout=60)
    finally:
        monitor.stop()
        for r in sup.list_runs():
            if r.alive:
                sup.cancel(r.run_id)


def test_no_workspace_means_no_runs(qtbot) -> None:
    monitor = JobMonitor()
    with qtbot.waitSignal(monitor.runs_changed) as blocker:
        monitor.set_workspace(None)
    assert blocker.args == [[]] and monitor.supervisor is None
