"""Progress callbacks and cancel tokens for long core functions.

Core functions take a plain ``progress(fraction, message)`` callable and a
:class:`CancelToken`, never a Qt object (DESIGN.md section 6, Orange3's
``wrap_callback``). The UI adapts them to signals on its own side.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

from .errors import Cancelled

ProgressFn = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:  # noqa: ARG001 - callback shape
    """A progress callback that ignores everything."""


class CancelToken:
    """A thread-safe flag a long operation polls at safe points."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled")


def check(cancel: Optional[CancelToken]) -> None:
    """Raise :class:`Cancelled` if ``cancel`` is set (``None`` never cancels)."""
    if cancel is not None:
        cancel.raise_if_cancelled()
