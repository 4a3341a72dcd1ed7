"""Showing very long stored values: a 1 MB line without a break opportunity beside a 1 MB
value of ordinary text lines, in the record viewer (``ui.common.render.MarkdownView``).

Qt's paragraph layout is quadratic in a line's length when nothing in it may break (before
the viewer cut long values, a 1 MB line took 94 s, 300 KB 9 s). Measured, each the median of
``--repeat`` runs, from ``set_markdown`` to the end of a synchronous repaint:

- ``line_ms``: the 1 MB unbreakable line (cut for display, with "Show all");
- ``prose_ms``: 1 MB of 80-character lines (also cut): the baseline;
- ``show_all_line_ms``: "Show all" on the 1 MB line (plain text split into 1,000-character
  blocks);
- ``editor_line_ms``: the 1 MB line in a record editor (``QPlainTextEdit``, wrapping anywhere:
  Qt's default word-boundary wrap is quadratic too);
- ``uncut_30k_ms``: for scale, a 30 KB unbreakable line laid out whole, the way the viewer
  used to lay out every value (1 MB is not tried: minutes).

Ends with one JSON line: ``{"line_ms", "prose_ms", "show_all_line_ms", "editor_line_ms",
"uncut_30k_ms", "ratio"}`` where ``ratio = line_ms / prose_ms`` (target: a 1 MB line shows within 200 ms,
so about the ordinary value's time).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from PySide6.QtGui import QTextDocument
    from PySide6.QtWidgets import QApplication, QPlainTextEdit

    from ui.common.render import MARKDOWN_FEATURES, MarkdownView, wrap_mode_for

    app = QApplication.instance() or QApplication([])
    view = MarkdownView()
    view.resize(900, 700)
    view.show()
    app.processEvents()

    def timed(action) -> float:
        samples = []
        for _ in range(args.repeat):
            view.set_markdown("")
            app.processEvents()
            start = time.perf_counter()
            action()
            view.viewport().repaint()
            app.processEvents()
            samples.append((time.perf_counter() - start) * 1000)
        return statistics.median(samples)

    line = "x" * 1_000_000
    prose = "\n".join(("lorem ipsum dolor sit amet " * 3)[:79] for _ in range(12_500))
    line_ms = timed(lambda: view.set_markdown(line))
    prose_ms = timed(lambda: view.set_markdown(prose))
    show_all_ms = timed(lambda: (view.set_markdown(line), view.show_all()))

    def uncut() -> None:  # the old path: the whole value handed to Qt's Markdown layout
        view.document().setMarkdown("y" * 30_000, QTextDocument.MarkdownFeatures(MARKDOWN_FEATURES))

    uncut_ms = timed(uncut)
    editor = QPlainTextEdit()
    editor.resize(900, 700)
    editor.show()
    samples = []
    for _ in range(args.repeat):
        editor.clear()
        app.processEvents()
        start = time.perf_counter()
        editor.setWordWrapMode(wrap_mode_for(line))
        editor.setPlainText(line)
        editor.viewport().repaint()
        app.processEvents()
        samples.append((time.perf_counter() - start) * 1000)
    editor_ms = statistics.median(samples)
    result = {"line_ms": round(line_ms, 1), "prose_ms": round(prose_ms, 1),
              "show_all_line_ms": round(show_all_ms, 1), "editor_line_ms": round(editor_ms, 1),
              "uncut_30k_ms": round(uncut_ms, 1),
              "ratio": round(line_ms / prose_ms, 2)}
    print(f"1 MB line {line_ms:.0f} ms, 1 MB of lines {prose_ms:.0f} ms, show all {show_all_ms:.0f} ms, "
          f"in an editor {editor_ms:.0f} ms; a 30 KB line laid out whole {uncut_ms:.0f} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
