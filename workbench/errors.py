"""Exceptions the core raises, each carrying what a user needs to act on it."""

from __future__ import annotations

import reprlib

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict = 3, 60, 60, 6, 6


def short_repr(value: object) -> str:
    """``repr(value)`` bounded in length and depth, for error messages: a value from an
    untrusted file (a megabyte string, an alias-expanded YAML tree, 1,000 nested
    lists) must not make the message itself huge, slow or recursive."""
    text = _SHORT.repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


class WorkbenchError(Exception):
    """Base class for errors that are shown to the user as one line."""


class DataError(WorkbenchError):
    """Bad input data, located by file, line (or row) and field.

    ``str(err)`` is the one-line message the CLI prints, e.g.
    ``data.jsonl:7: field 'chosen': expected a string or a list of messages, got int``.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None, unit: str = "line"):
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        self.unit = unit  # "line" for text formats, "row" for columnar ones
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}" if self.unit == "line" else f": row {self.line}"
        what = f"field '{self.field}': " if self.field else ""
        return f"{where}: {what}{self.message}"

    def to_dict(self) -> dict:
        return {"file": self.file, self.unit: self.line, "field": self.field,
                "message": self.message}


class WorkspaceError(WorkbenchError):
    """The workspace folder is missing, not a workspace, or too new for this version."""


class WorkspaceBusyError(WorkspaceError):
    """Another process held the workspace's write lock for longer than we waited."""


class DiskFullError(WorkspaceError):
    """No space left on the disk holding the workspace (or a run folder); says how much is free."""


class WorkspaceReadOnlyError(WorkspaceError):
    """The workspace can be read but not written (a read-only mount or backup, no permission, a full disk)."""


class NotFoundError(WorkbenchError):
    """A named dataset, snapshot or record does not exist."""


class Cancelled(WorkbenchError):
    """A long operation was cancelled through its cancel token."""
