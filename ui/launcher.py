"""The ``rlhf-workbench`` console script.

``rlhf-workbench`` alone or ``rlhf-workbench gui [--workspace DIR]`` opens the
desktop app; every other command is the headless CLI in
:mod:`workbench.cli`. The launcher lives on the UI side because the core
package must never import Qt (import-linter contract), while the headless
commands must never pay for it: Qt is imported only for the GUI.
"""

from __future__ import annotations

import sys
from typing import Optional


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] == "gui":
        from ui.app import main as gui_main
        return gui_main(argv[1:])
    from workbench.cli import main as cli_main
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
