"""The stats dialog: counts, duplicates, lengths, a histogram with data, token lengths."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PySide6.QtCore import Qt

from ui.datasets.stats_view import StatsDialog
from workbench.data import ops
from workbench.data.importer import import_file
from workbench.store.workspace import Workspace


@pytest.fixture
def ws(tmp_path):
    w = Workspace.init(tmp_path / "ws")
    rows = [{"prompt": f"Name {i} colours of the rainbow", "chosen": "red orange yellow " * (i % 7 + 1),
             "rejected": "blue"} for i in range(50)]
    rows += rows[:3]                                                   # 3 exact duplicates
    rows.append({**rows[0], "prompt": rows[0]["prompt"].upper()})     # 1 more, normalized only
    path = tmp_path / "prefs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_file(w, path, "prefs")
    ops.split(w, "prefs", validation=0.2, seed=1)
    yield w
    w.close()


def open_dialog(qtbot, ws) -> StatsDialog:
    dialog = StatsDialog(ws.root, "prefs")
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.view.stats is not None and not dialog.view.panel.busy, timeout=20_000)
    return dialog


def test_counts_and_histogram(qtbot, ws):
    dialog = open_dialog(qtbot, ws)
    view = dialog.view
    values = {k: v.text() for k, v in view._values.items()}
    expected = ops.stats(ws, "prefs")
    assert values["rows"] == "54"
    assert values["kind"] == "preference (standard)"
    assert values["train"] == f"{expected['splits']['train']:,}"
    assert values["validation"] == f"{expected['splits']['validation']:,}"
    assert values["unassigned"] == "0"
    assert values["unique_prompts"] == "50"
    assert (values["dup_exact"], values["dup_normalized"]) == ("3", "4")

    # The lengths table has one row per text field, with the core's figures.
    fields = [view.lengths.item(i, 0).text() for i in range(view.lengths.rowCount())]
    assert fields == ["prompt", "chosen", "rejected"]
    chosen = expected["length_chars"]["chosen"]
    row = fields.index("chosen")
    assert view.lengths.item(row, 3).text() == f"{chosen['min']:,}"
    assert view.lengths.item(row, 8).text() == f"{chosen['max']:,}"

    # The histogram has bars summing to the row count; picking another field redraws it.
    assert view.plot is not None and view.plot.isVisible()
    heights = list(view.bars.opts["height"])
    assert sum(heights) == 54 and len(heights) == len(expected["length_chars"]["prompt"]["histogram"]["counts"])
    view.field_combo.setFocus()
    qtbot.keyClick(view.field_combo, Qt.Key.Key_Down)
    assert view.field_combo.currentData() == "chosen"
    assert list(view.bars.opts["height"]) == chosen["histogram"]["counts"]
    assert "chosen length (characters)" in view.plot.getAxis("bottom").labelText


def test_token_lengths_with_a_local_tokenizer(qtbot, ws, tmp_path):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    words = sorted({w for line in ["red orange yellow blue Name colours of the rainbow"] for w in line.split()})
    tok = Tokenizer(WordLevel({w: i + 1 for i, w in enumerate(words)} | {"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    folder = tmp_path / "tok"
    folder.mkdir()
    tok.save(str(folder / "tokenizer.json"))

    dialog = open_dialog(qtbot, ws)
    view = dialog.view
    assert not view.tokens_button.isEnabled()
    qtbot.keyClicks(view.tokenizer_edit, str(folder))
    qtbot.mouseClick(view.tokens_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.stats is not None and "length_tokens" in view.stats and not view.panel.busy,
                    timeout=20_000)
    units = {view.lengths.item(i, 1).text() for i in range(view.lengths.rowCount())}
    assert units == {"characters", "tokens"}
    assert view.unit_combo.currentData() == "length_tokens"
    # "blue" is one token in every row: a single bar of 54.
    view.field_combo.setCurrentIndex(view.field_combo.findData("rejected"))
    assert list(view.bars.opts["height"]) == [54]


def test_bad_tokenizer_folder_is_reported(qtbot, ws, tmp_path):
    dialog = open_dialog(qtbot, ws)
    view = dialog.view
    qtbot.keyClicks(view.tokenizer_edit, str(tmp_path))
    qtbot.mouseClick(view.tokens_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.error is not None, timeout=20_000)
    assert "no tokenizer.json" in view.panel.status.text()
    assert view._values["rows"].text() == "54"      # the earlier figures stay


def test_dialog_modules_do_not_import_pyqtgraph_or_torch():
    code = ("import sys; import ui.datasets.stats_view, ui.datasets.import_wizard, ui.datasets.export_dialog, "
            "ui.datasets.actions; bad = [m for m in ('pyqtgraph', 'torch', 'transformers', 'datasets', 'trl') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"QT_QPA_PLATFORM": "offscreen", "PATH": ""})
    assert out.returncode == 0, out.stdout + out.stderr
