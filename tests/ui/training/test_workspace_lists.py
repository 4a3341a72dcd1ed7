"""The Train page's workspace lists (read on a worker thread, no Qt) treat run folders as untrusted."""

from __future__ import annotations


def billion_laughs(path):
    """The classic alias bomb (~440 bytes, 9**9 'lol's once expanded)."""
    lines = ["stage: reward", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    lines.append("model: {ref: *i}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_the_train_pages_lists_read_run_configs_with_the_same_loader(tmp_path):
    """The Train page starts each stage's form from its latest run's config.yaml: a copied-in
    run folder whose config is an alias bomb is left out, not handed to the form."""
    from ui.training.workspace_lists import read_lists
    from workbench.jobs.rundir import new_run_dir
    from workbench.jobs.supervisor import Supervisor
    from workbench.store.workspace import Workspace

    Workspace.init(tmp_path / "ws").close()
    good = new_run_dir(tmp_path / "ws" / "runs", "sft", {"model": {"ref": "org/tiny"}})
    hostile = new_run_dir(tmp_path / "ws" / "runs", "reward", {})
    billion_laughs(hostile.config)
    lists = read_lists(tmp_path / "ws", Supervisor(tmp_path / "ws").list_runs())
    assert lists.last_configs["sft"]["model"] == {"ref": "org/tiny"} and good.config.is_file()
    assert "reward" not in lists.last_configs
