"""The ``rlhf-workbench`` console script.

``rlhf-workbench`` alone, ``rlhf-workbench --workspace DIR`` or
``rlhf-workbench gui [--workspace DIR]`` opens the desktop app; every other
command is the headless CLI in :mod:`workbench.cli`. The launcher lives on the UI side because the core
package must never import Qt (import-linter contract), while the headless
commands must never pay for it: Qt is imported only for the GUI.
"""

from __future__ import annotations

import sys
from typing import Optional


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if getattr(sys, "frozen", False) and argv[:1] == ["-m"]:
        # A job started with this bundle as its interpreter (``python -m workbench.jobs.run``).
        sys.stderr.write("error: this app bundle has no training stack and cannot run jobs; set "
                         "RLHF_WORKBENCH_PYTHON to a Python with rlhf-workbench and torch installed "
                         "(see packaging/README.md)\n")
        return 2
    if not argv or argv[0] == "gui" or argv[0].startswith("--workspace"):
        from ui.app import main as gui_main
        return gui_main(argv[1:] if argv and argv[0] == "gui" else argv)
    from workbench.cli import main as cli_main
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
