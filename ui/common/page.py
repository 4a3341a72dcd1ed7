"""What the main window expects of a page (Rank, Datasets, Train, Runs).

A page is a ``QWidget`` built with no arguments but ``parent``; the main
window builds it lazily on first visit (so pyqtgraph and friends are not
paid for at start-up) and then calls:

- ``set_workspace(root: Path | None)``: (re)bind to a workspace folder;
  ``None`` when none is open. Open your own ``Workspace.open(root)``
  connection; close the previous one.
- ``shutdown()``: the window is closing; stop timers, cancel or wait for
  worker threads, close connections.

Optional: an ``undo_stack`` attribute (``QUndoStack``); the window's
Edit > Undo/Redo follow the current page's stack. Optional:
``shortcuts() -> list[tuple[str, str]]``, the page's own keys as
``(keys, what it does)``, e.g. ``("Ctrl+Return", "Submit the ranking")``,
listed by Help > Keyboard Shortcuts; make it a ``staticmethod`` (or
``classmethod``) so the list shows it before the page is first built.
Pages reach the window (and each other) through ``self.window()``:
``MainWindow.show_page(title)`` returns the page, built if needed, and
``MainWindow.job_monitor`` is the shared :class:`ui.common.jobs.JobMonitor`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Protocol, runtime_checkable


@runtime_checkable
class Page(Protocol):
    def set_workspace(self, root: Optional[Path]) -> None: ...

    def shutdown(self) -> None: ...
