"""Locate files in the repository's ``resources/`` folder (icons, stylesheet)."""

from __future__ import annotations

import sys
from pathlib import Path


def _resources_root() -> Path:
    # A PyInstaller bundle unpacks its data files under sys._MEIPASS; there the
    # source layout (resources/ next to ui/) no longer exists.
    bundle_dir = getattr(sys, "_MEIPASS", None)
    if bundle_dir is not None:
        return Path(bundle_dir) / "resources"
    # Editable install: ui/common/resources.py -> repo root is two levels up.
    return Path(__file__).resolve().parents[2] / "resources"


def resource_path(*parts: str) -> Path:
    """Return the path of ``resources/<parts...>``.

    The file is not required to exist; callers decide what a missing
    resource means (an icon can be skipped, a preset cannot).
    """
    return _resources_root().joinpath(*parts)
