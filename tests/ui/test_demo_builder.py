"""The demo workspace from the welcome screen: a real child process builds it (quick
sizes) with a progress bar, then the window opens it; Cancel (and, failing that,
SIGKILL plus the GUI's own clean-up) stops the build's jobs and leaves nothing behind."""

from __future__ import annotations

import os

import psutil
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from ui.demo_builder import DemoBuilder
from workbench.cli import DEMO_BUILDING_MARKER, demo_is_complete
from workbench.jobs.supervisor import Supervisor

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX process groups")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _sft_job_pid(qtbot, builder: DemoBuilder, target) -> int:
    """Wait until the build's SFT job runs; return its pid."""
    qtbot.waitUntil(lambda: "SFT: started run" in builder.message, timeout=120000)
    runs = Supervisor(target).list_runs()
    assert [r.stage for r in runs] == ["sft"] and runs[0].alive
    return runs[0].pid


@pytest.mark.slow
def test_demo_button_builds_the_demo_then_opens_it(qtbot, make_window, tmp_path):
    from workbench.store.datasets import list_datasets
    from workbench.store.workspace import Workspace

    window = make_window(demo_quick=True)
    qtbot.mouseClick(window.welcome.demo_button, Qt.MouseButton.LeftButton)
    dialog = window.demo_dialog
    assert dialog is not None and dialog.isVisible()
    fractions: list[float] = []
    dialog.builder.progressed.connect(lambda f, _m: fractions.append(f))

    qtbot.waitUntil(lambda: window.workspace_path == window.demo_dir, timeout=300000)
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.progress_bar.value() == 1000
    assert len(fractions) > 5 and fractions == sorted(fractions)
    assert demo_is_complete(window.demo_dir)
    with Workspace.open(window.demo_dir) as ws:
        names = {d.name for d in list_datasets(ws.conn)}
    assert {"demo-sft", "demo-pairs"} <= names
    assert window.windowTitle().endswith("demo-workspace")
    # The seed made the person's first ranking queue: the real Rank page opens on an item, not
    # "Nothing to rank yet" (the window here holds test pages).
    from ui.ranking.panel import RankingPanel

    rank = RankingPanel()
    qtbot.addWidget(rank)
    rank.set_workspace(window.demo_dir)
    try:
        qtbot.waitUntil(lambda: rank.current is not None, timeout=30000)
        assert len(rank.current.candidates) == 2 and rank.queue.spec.name == "demo prompts · pairwise"
    finally:
        rank.shutdown()

    window.close_workspace()  # a second time it opens at once: no new build
    qtbot.mouseClick(window.welcome.demo_button, Qt.MouseButton.LeftButton)
    assert window.workspace_path == window.demo_dir


def test_cancel_button_stops_the_build_and_removes_it(qtbot, make_window):
    window = make_window(demo_quick=True)
    window.open_demo_workspace()
    dialog = window.demo_dialog
    builder_pid = dialog.builder.pid
    job_pid = _sft_job_pid(qtbot, dialog.builder, window.demo_dir)
    assert (window.demo_dir / DEMO_BUILDING_MARKER).exists()

    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert dialog.cancel_button.text() == "Cancelling\u2026" and not dialog.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=60000)
    assert dialog.result() == QDialog.DialogCode.Rejected
    assert _gone(builder_pid)
    qtbot.waitUntil(lambda: _gone(job_pid), timeout=20000)
    assert not window.demo_dir.exists()
    assert window.is_welcome_shown() and window.workspace_path is None


def test_a_builder_that_must_be_killed_is_cleaned_up_by_the_gui(qtbot, tmp_path):
    """SIGKILL right after SIGTERM: the builder cannot clean up, so the GUI stops the SFT
    job (in its own session, it outlives the builder) and removes the folder."""
    target = tmp_path / "demo"
    builder = DemoBuilder(target, quick=True, kill_after_ms=0)
    builder.start()
    try:
        job_pid = _sft_job_pid(qtbot, builder, target)
        with qtbot.waitSignal(builder.cancelled, timeout=60000):
            builder.cancel()
    finally:
        if builder.running:
            builder.wait(30000)
    assert "error: cancelled" not in builder.stderr_text  # it was killed, not cancelled cleanly
    assert _gone(job_pid)
    assert not target.exists()


def test_a_failed_build_says_why_and_touches_nothing(qtbot, make_window):
    window = make_window(demo_quick=True)
    window.demo_dir.mkdir()
    (window.demo_dir / "notes.txt").write_text("mine")  # a folder the demo must not take over
    qtbot.mouseClick(window.welcome.demo_button, Qt.MouseButton.LeftButton)
    dialog = window.demo_dialog
    qtbot.waitUntil(lambda: dialog.error is not None, timeout=60000)
    assert "not an empty folder" in dialog.error and "not an empty folder" in dialog.message_label.text()
    assert dialog.cancel_button.text() == "Close" and dialog.isVisible()
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible() and window.is_welcome_shown()
    assert (window.demo_dir / "notes.txt").read_text() == "mine"
