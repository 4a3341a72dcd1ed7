"""Preference signal is never dropped silently: a file whose rows carry several responses, a rank,
a winner or a label imports with that signal or is refused naming the columns; ``--map`` can say
which reply a label column picks."""

from __future__ import annotations

import pytest

from workbench.data.importer import import_file
from workbench.errors import DataError, WorkbenchError

#: Files that imported as prompts-only (or SFT) before, their responses and labels "ignored":
#: name -> (rows, the columns the refusal must name).
WOULD_DROP = {
    "pku-renamed-label": ([{"prompt": "p?", "response_0": "a", "response_1": "b", "preferred": 1}],
                          ["response_0", "response_1", "preferred"]),
    "responses-without-ranks": ([{"prompt": "p?", "responses": ["a", "b", "c"]}], ["responses"]),
    "winner-column": ([{"prompt": "Quelle couleur ?", "answer_a": "bleu", "answer_b": "vert", "winner": "a"}],
                      ["answer_a", "answer_b", "winner"]),
    "sft-with-rank": ([{"prompt": "p?", "completion": "c", "rank": 2}], ["rank"]),
    "candidates-ranking": ([{"prompt": "p?", "candidates": ["x", "y"], "ranking": [2, 1]}],
                           ["candidates", "ranking"]),
    "no-prompt-two-outputs": ([{"question": "q?", "output_1": "x", "output_2": "y"}], ["output_1", "output_2"]),
    "messages-with-label": ([{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant",
                                                                              "content": "yo"}], "label": True}],
                            ["label"]),
}


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
@pytest.mark.parametrize("case", list(WOULD_DROP))
def test_rows_with_preference_signal_are_never_stored_as_prompts_only(kit, case, fmt):
    rows, columns = WOULD_DROP[case]
    path, _ = kit.write(kit.tmp_path, fmt, rows)
    before = kit.state(kit.ws)
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "d")
    msg = str(err.value)
    assert msg.startswith(f"{path}:") and "preference signal" in msg
    for column in columns:
        assert repr(column) in msg
    assert "--layout" in msg and "--map" in msg
    kit.assert_unchanged(kit.ws, before)


def test_public_layouts_that_used_to_drop_signal_now_import_it(kit):
    # The two files of the issue: several ranked answers per row, and response_0/1 + better_response_id.
    ranked = [{"prompt": "\n\nHuman: hi\n\nAssistant: ", "answers": [
        {"answer": "hello", "model": "m1", "rank": 1}, {"answer": "go away", "model": "m2", "rank": 2}]}]
    pku = [{"prompt": "p?", "response_0": "a", "response_1": "b", "better_response_id": 1,
            "safer_response_id": 1, "is_response_0_safe": True, "is_response_1_safe": True}]
    for name, rows in (("ranked", ranked), ("pku", pku)):
        path, _ = kit.write(kit.tmp_path, "jsonl", rows, stem=name)
        report = import_file(kit.ws, path, name)
        assert report.kind == "preference" and report.rows == 1


def test_kind_prompts_keeps_only_the_prompts_on_purpose(kit):
    path, _ = kit.write(kit.tmp_path, "jsonl", WOULD_DROP["winner-column"][0])
    report = import_file(kit.ws, path, "d", kind="prompts")
    assert (report.kind, report.rows) == ("prompts", 1)
    assert kit.contents(kit.ws, "d") == [{"prompt": "Quelle couleur ?"}]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_map_pick_says_which_reply_the_label_chose(kit, fmt):
    rows = [{"q": "Quelle couleur ?", "answer_a": "bleu", "answer_b": "vert", "winner": "a", "id": 1},
            {"q": "2+2?", "answer_a": "5", "answer_b": "4", "winner": "b", "id": 2}]
    path, lines = kit.write(kit.tmp_path, fmt, rows)
    report = import_file(kit.ws, path, "d", mapping=["q=prompt", "winner=pick(a:answer_a,b:answer_b)"])
    assert (report.shape, report.kind, report.ignored_fields) == ("preference", "preference", ["id"])
    assert kit.contents(kit.ws, "d") == [{"prompt": "Quelle couleur ?", "chosen": "bleu", "rejected": "vert"},
                                         {"prompt": "2+2?", "chosen": "4", "rejected": "5"}]
    assert [r.lineage.line for r in kit.records(kit.ws, "d")] == lines


def test_map_pick_with_numeric_labels_and_a_value_it_does_not_name(kit):
    rows = [{"prompt": "p", "response_0": "a", "response_1": "b", "preferred": 1},
            {"prompt": "q", "response_0": "c", "response_1": "d", "preferred": 0},
            {"prompt": "r", "response_0": "e", "response_1": "f", "preferred": 2}]
    path, _ = kit.write(kit.tmp_path, "jsonl", rows)
    pick = ["preferred=pick(0:response_0,1:response_1)"]
    before = kit.state(kit.ws)
    with pytest.raises(DataError) as err:
        import_file(kit.ws, path, "d", mapping=pick)
    assert (err.value.line, err.value.field) == (3, "preferred") and "2" in err.value.message
    kit.assert_unchanged(kit.ws, before)
    report = import_file(kit.ws, path, "d", mapping=pick, skip_invalid=True)
    assert (report.rows, report.skipped) == (2, 1)
    assert [(r.chosen, r.rejected) for r in kit.records(kit.ws, "d")] == [("b", "a"), ("c", "d")]


@pytest.mark.parametrize("bad", ["pick()", "pick(a:x)", "pick(a:x,a:y)", "pick(a:x,b:x)", "pick(a=x,b=y)"])
def test_malformed_pick_is_refused(kit, bad):
    path, _ = kit.write(kit.tmp_path, "jsonl", [{"prompt": "p", "x": "a", "y": "b", "w": "a"}])
    with pytest.raises(WorkbenchError, match="pick"):
        import_file(kit.ws, path, "d", mapping=[f"w={bad}"])


def test_cli_layout_and_refusal(tmp_path):
    """``data import --layout``, the detection's reason, and a refusal as one line on stderr."""
    import json
    import os
    import subprocess
    import sys

    def run(*args):
        return subprocess.run([sys.executable, "-m", "workbench.cli", *map(str, args)], capture_output=True,
                              text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})

    ws = tmp_path / "ws"
    assert run("workspace", "init", ws).returncode == 0
    src = tmp_path / "pku.jsonl"
    src.write_text(json.dumps({"prompt": "p?", "response_0": "a", "response_1": "b", "better_response_id": 0,
                               "safer_response_id": 1}) + "\n", encoding="utf-8")
    proc = run("data", "import", src, "--workspace", ws, "--name", "help")
    assert proc.returncode == 0 and "Layout pku-saferlhf: 'response_0', 'response_1' and 'better_response_id'" \
        in proc.stdout
    out = json.loads(run("data", "import", src, "--workspace", ws, "--name", "safe", "--layout",
                         "pku-saferlhf-safer", "--json").stdout)
    assert (out["shape"], out["layout_reason"], out["rows"]) == ("pku-saferlhf-safer", "asked for with --layout", 1)
    bad = tmp_path / "w.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "answer_a": "x", "answer_b": "y", "winner": "a"}) + "\n",
                   encoding="utf-8")
    proc = run("data", "import", bad, "--workspace", ws, "--name", "w")
    assert proc.returncode != 0 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}:1: ") and "'winner'" in lines[0]
    proc = run("data", "import", bad, "--workspace", ws, "--name", "w", "--map", "winner=pick(a:answer_a,b:answer_b)")
    assert proc.returncode == 0, proc.stderr


def test_an_explicit_kind_sft_keeps_the_replies_on_purpose(kit):
    path, _ = kit.write(kit.tmp_path, "jsonl", WOULD_DROP["sft-with-rank"][0])
    report = import_file(kit.ws, path, "d", kind="sft")
    assert (report.kind, report.rows, report.ignored_fields) == ("sft", 1, ["rank"])


def test_the_cli_help_names_every_layout():
    import subprocess
    import sys

    from workbench.data.layouts import PUBLIC_LAYOUTS
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "data", "import", "--help"], capture_output=True,
                         text=True, timeout=60).stdout
    text = " ".join(out.replace("-\n", "-").split()).replace("- ", "-")   # argparse wraps at hyphens
    assert all(s.name in text for s in PUBLIC_LAYOUTS)


def test_preview_marks_the_columns_a_pick_reads_as_used(kit):
    from workbench.data.preview import preview_file

    rows = [{"q": "p", "answer_a": "x", "answer_b": "y", "winner": "a", "id": 1},
            {"q": "p2", "answer_a": "x", "answer_b": "y", "winner": "b", "id": 2, "late_extra": "z"}]
    path, _ = kit.write(kit.tmp_path, "jsonl", rows)
    p = preview_file(path, mapping={"q": "prompt", "winner": "pick(a:answer_a,b:answer_b)"})
    assert p.shape == "preference" and p.error is None
    assert {c: p.used(c) for c in p.columns} == {"q": True, "answer_a": True, "answer_b": True, "winner": True,
                                                 "id": False, "late_extra": False}
    assert [(s.content["chosen"], s.content["rejected"]) for s in p.stored] == [("x", "y"), ("y", "x")]
