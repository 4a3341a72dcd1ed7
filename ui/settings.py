"""Per-user settings of the app: recent workspaces, the last workspace and page,
window geometry and state.

A thin typed wrapper over :class:`QSettings` in INI format in the user scope
(``~/.config/rlhf-workbench/rlhf-workbench.conf`` on Linux), the same format
on every platform so tests can redirect it with
``QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)``
(see ``tests/ui/conftest.py``). Lists are stored as JSON text: PySide reads
a one-element QSettings list back as a plain string.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QByteArray, QSettings

ORGANIZATION = "rlhf-workbench"
APPLICATION = "rlhf-workbench"
#: How many recent workspaces File > Open Recent and the welcome screen keep.
MAX_RECENT = 10

_RECENT = "workspaces/recent"
_LAST_WORKSPACE = "workspaces/last"
_LAST_PAGE = "window/last_page"
_GEOMETRY = "window/geometry"
_STATE = "window/state"


def _norm(path: Path | str) -> Path:
    # Absolute but not resolved: a symlinked workspace keeps the name the user chose.
    return Path(path).expanduser().absolute()


class Settings:
    """The app's persisted preferences (one instance per window is fine: all
    instances read and write the same file)."""

    def __init__(self, qsettings: Optional[QSettings] = None) -> None:
        self._q = qsettings or QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                                         ORGANIZATION, APPLICATION)

    @property
    def file_name(self) -> str:
        """Where the settings live (for the About box and bug reports)."""
        return self._q.fileName()

    def sync(self) -> None:
        """Write pending changes to disk now (QSettings also does it on its own)."""
        self._q.sync()

    # -- workspaces ---------------------------------------------------------------------
    def recent_workspaces(self) -> list[Path]:
        """Recently opened workspaces, most recent first (missing folders included:
        the welcome screen shows them as missing)."""
        raw = self._q.value(_RECENT, "[]")
        try:
            items = json.loads(raw) if isinstance(raw, str) else []
        except ValueError:
            items = []  # a hand-edited file: forget the list rather than fail to start
        return [Path(p) for p in items if isinstance(p, str) and p][:MAX_RECENT]

    def _set_recent(self, paths: list[Path]) -> None:
        self._q.setValue(_RECENT, json.dumps([str(p) for p in paths[:MAX_RECENT]]))

    def add_recent_workspace(self, path: Path | str) -> None:
        """Put ``path`` first in the recent list (once)."""
        path = _norm(path)
        self._set_recent([path] + [p for p in self.recent_workspaces() if p != path])

    def remove_recent_workspace(self, path: Path | str) -> None:
        path = _norm(path)
        self._set_recent([p for p in self.recent_workspaces() if p != path])

    def clear_recent_workspaces(self) -> None:
        self._set_recent([])

    def last_workspace(self) -> Optional[Path]:
        """The workspace open when the app last closed (``None`` if none was)."""
        value = self._q.value(_LAST_WORKSPACE, "")
        return Path(value) if isinstance(value, str) and value else None

    def set_last_workspace(self, path: Path | str | None) -> None:
        self._q.setValue(_LAST_WORKSPACE, str(_norm(path)) if path else "")

    # -- window -------------------------------------------------------------------------
    def last_page(self) -> Optional[str]:
        value = self._q.value(_LAST_PAGE, "")
        return value if isinstance(value, str) and value else None

    def set_last_page(self, title: str) -> None:
        self._q.setValue(_LAST_PAGE, title)

    def geometry(self) -> Optional[QByteArray]:
        """``QWidget.saveGeometry()`` of the main window, if saved."""
        return self._bytes(_GEOMETRY)

    def set_geometry(self, data: QByteArray) -> None:
        self._q.setValue(_GEOMETRY, data)

    def window_state(self) -> Optional[QByteArray]:
        """``QMainWindow.saveState()`` (toolbars and docks), if saved."""
        return self._bytes(_STATE)

    def set_window_state(self, data: QByteArray) -> None:
        self._q.setValue(_STATE, data)

    def _bytes(self, key: str) -> Optional[QByteArray]:
        value = self._q.value(key)
        if isinstance(value, (QByteArray, bytes)) and len(value):
            return QByteArray(value)
        return None
