"""Switching workspaces in the window: the Train page never shows the old workspace's runs as the
new one's (the window used to hand the pages the new workspace while its job monitor still held
the old workspace's runs)."""

from ui.main_window import MainWindow
from workbench.jobs.supervisor import FAILED, Supervisor
from workbench.store.workspace import Workspace


def test_the_train_page_drops_the_old_workspaces_runs_on_a_switch(qtbot, tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        Workspace.init(root).close()
    # A real SFT job that fails at its config check (no such dataset): a failed run in A only.
    run = Supervisor(a).start("sft", {"model": {"ref": "./models/none"}, "data": {"dataset": "none"}})
    assert run.wait(timeout=120).status == FAILED

    window = MainWindow(workspace_path=a, gpu_probe_delay_ms=None, demo_dir=tmp_path / "demo")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    train = window.show_page("Train")
    qtbot.waitUntil(lambda: train.pipeline.cards["sft"].level == FAILED, timeout=30000)

    card = train.pipeline.cards["sft"]
    shown = []  # every status the card is given from the switch on, however briefly
    set_status = card.set_status
    monkeypatch.setattr(card, "set_status", lambda status: (shown.append(status.level), set_status(status)))
    assert window.open_workspace(b)
    qtbot.wait(600)
    assert shown and set(shown) == {"none"}, shown
    window.close()
