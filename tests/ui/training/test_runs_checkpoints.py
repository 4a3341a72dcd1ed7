"""Runs page and checkpoints: resume from a checkpoint the user picks (a damaged pick is refused
with a reason); the run's header shows its disk use."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QInputDialog

from workbench.jobs.events import StartedEvent, read_events
from workbench.jobs.rundir import list_checkpoints

from .test_runs_actions import click_run, panel, status, sup  # noqa: F401 - fixtures


def pick(item: str, tries: int = 250) -> None:
    """Choose ``item`` in the next input dialog once it is up."""
    def poll(left=tries):
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, QInputDialog) and dialog.isVisible():
            assert item in dialog.comboBoxItems()
            dialog.setTextValue(item)
            dialog.accept()
        elif left:
            QTimer.singleShot(20, lambda: poll(left - 1))
    QTimer.singleShot(0, poll)


def test_resume_from_a_chosen_checkpoint(qtbot, sup, panel):  # noqa: F811 - fixtures
    handle = sup.start("steps", {"n_steps": 400, "step_s": 0.02, "every": 2})
    qtbot.waitUntil(lambda: len(list_checkpoints(handle.path)) >= 3, timeout=20000)
    assert sup.cancel(handle.run_id, timeout=10).status == "cancelled"
    qtbot.waitUntil(lambda: status(panel, handle.run_id) == "cancelled", timeout=10000)
    assert [p.name for _s, p in list_checkpoints(handle.path)][:2] == ["step-1", "step-3"]
    click_run(qtbot, panel, handle.run_id)
    qtbot.waitUntil(lambda: "on disk (" in panel.run_label.text(), timeout=5000)
    count = len(list_checkpoints(handle.path))
    assert f"on disk ({count} checkpoints)" in panel.run_label.text()
    qtbot.waitUntil(panel.resume_from_button.isEnabled, timeout=5000)

    (handle.path / "checkpoints" / "step-3" / "step.txt").write_text("")  # damaged: refused when picked
    pick("step-3")
    qtbot.mouseClick(panel.resume_from_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "damaged: step.txt" in panel.status_label.text(), timeout=10000)
    assert not (handle.path / "QUEUED").exists()

    pick("step-1")
    qtbot.mouseClick(panel.resume_from_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "resumed from step-1" in panel.status_label.text(), timeout=10000)
    qtbot.waitUntil(lambda: sum(isinstance(e, StartedEvent) for e in read_events(handle.path / "events.jsonl")) == 2,
                    timeout=20000)
    started = [e for e in read_events(handle.path / "events.jsonl") if isinstance(e, StartedEvent)]
    assert started[-1].resume_from == "checkpoints/step-1"
