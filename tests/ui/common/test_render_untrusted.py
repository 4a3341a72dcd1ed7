"""Stored text and names are data: the record viewers load no resource an image link
names, and labels / tooltips showing user data never interpret it as markup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel

from workbench.data.importer import import_file
from workbench.store.workspace import Workspace

REPO = Path(__file__).resolve().parents[3]

# Run in a child: on a viewer that reads what images link to, /dev/zero aborts the
# process (std::bad_alloc) and a FIFO blocks it forever; the parent sees that as a
# crash or a timeout instead of hanging the test run.
_VIEWER_SCRIPT = r"""
import json, sys
from PySide6.QtWidgets import QApplication
app = QApplication(["x", "-platform", "offscreen"])
from ui.common.render import MarkdownView
png, fifo = sys.argv[1], sys.argv[2]
view = MarkdownView()
view.resize(700, 500)
view.show()
out = {}
for name, md in [("png", f"Look: ![a red square]({png}) and a relative ![same](big.png)"),
                 ("fifo", f"Hangs? ![pipe]({fifo})"),
                 ("zero", "Endless: ![zero](/dev/zero) ![](file:///dev/zero)")]:
    view.set_markdown(md)
    app.processEvents()
    view.viewport().grab()   # paint: images are fetched at layout and paint time
    out[name] = {"height": view.document().size().height(), "text": view.toPlainText()}
print(json.dumps(out))
"""


def _limit_memory() -> None:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # /dev/zero fails fast, not the machine


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_markdown_viewer_loads_no_image_it_links_to(tmp_path):
    from PySide6.QtGui import QColor, QImage

    png = tmp_path / "big.png"
    image = QImage(400, 400, QImage.Format.Format_RGB32)
    image.fill(QColor("red"))
    assert image.save(str(png))
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    env = dict(os.environ, PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-c", _VIEWER_SCRIPT, str(png), str(fifo)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, preexec_fn=_limit_memory)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shown = json.loads(proc.stdout.strip().splitlines()[-1])
    for case in ("png", "fifo", "zero"):
        assert shown[case]["height"] < 150, (case, shown[case])   # a loaded 400 px image would be taller
    assert "[image: a red square]" in shown["png"]["text"] and "[image: same]" in shown["png"]["text"]
    assert "[image: pipe]" in shown["fifo"]["text"]
    assert "[image: zero]" in shown["zero"]["text"]


HOSTILE = '<img src="{png}"> <b>bold</b>'


@pytest.fixture
def hostile_ws(tmp_path):
    """A dataset whose name and records are HTML naming a local image."""
    png = tmp_path / "img.png"
    png.write_bytes(b"")  # never read: it only has to be a plausible path
    name = HOSTILE.format(png=png)
    root = tmp_path / "ws"
    ws = Workspace.init(root)
    rows = [{"prompt": f"{name} prompt number {i} with enough text to get a tooltip",
             "completion": f"![x]({png}) {name}"} for i in range(3)]
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_file(ws, src, name).checkpoint_thread.join()
    ws.close()
    return root, name


def _rich_labels_with(text: str) -> list[str]:
    return [f"{type(w.parent()).__name__}.{w.objectName() or '?'}: {w.text()[:60]!r}"
            for w in QApplication.allWidgets()
            if isinstance(w, QLabel) and text in w.text() and w.textFormat() != Qt.TextFormat.PlainText]


def test_names_and_records_are_plain_text_in_labels_and_tooltips(qtbot, hostile_ws):
    from ui.datasets.manager import DatasetManagerPanel

    root, name = hostile_ws
    panel = DatasetManagerPanel()
    qtbot.addWidget(panel)
    panel.resize(1280, 800)
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_workspace(root)
    try:
        qtbot.waitUntil(lambda: panel.current_dataset is not None and panel.model.complete
                        and not panel.model.busy, timeout=10_000)
        assert panel.current_dataset.name == name
        index = panel.model.index(0, panel.model.column_of("prompt"))
        panel.table.setCurrentIndex(index)
        qtbot.waitUntil(lambda: panel.detail.detail is not None, timeout=10_000)
        assert "[image: x]" in panel.detail.completion.view.toPlainText()
        # Dialogs that put the dataset name in a heading.
        for action in (panel.stats_action, panel.dedup_action):
            panel.toolbar.widgetForAction(action).click()
        qtbot.wait(50)
        assert _rich_labels_with("<img") == []
        # A tooltip that looks like HTML is rendered as HTML: user data is escaped.
        from PySide6.QtGui import Qt as GuiQt  # QtGui's Qt namespace holds mightBeRichText

        tip = index.data(Qt.ItemDataRole.ToolTipRole)
        assert not GuiQt.mightBeRichText(tip) and tip.replace("\u200b", "").startswith(name)  # reads the same
        assert not GuiQt.mightBeRichText(panel.dataset_list.item(0, 0).toolTip())
    finally:
        for dialog in (panel.stats_dialog, panel.action_dialog):
            if dialog is not None:
                dialog.reject()
        panel.shutdown()


def test_plain_tooltip_reads_the_same_and_is_never_markup():
    from PySide6.QtGui import Qt as GuiQt

    from ui.common.render import plain_tooltip

    for text in ('<img src="/dev/zero">', "failed: dataset '<b>x</b>' & co\nline two", "<!doctype html><qt>"):
        tip = plain_tooltip(text)
        assert not GuiQt.mightBeRichText(tip) and tip.replace("\u200b", "") == text
