"""The page registry: which pages the main window offers and where their classes live.

A page is named by ``"module:Class"`` and imported only when first shown,
so a page that needs pyqtgraph (or anything slow to import) costs nothing
at start-up. The contract a page class follows is in :mod:`ui.common.page`.
A page whose module is missing, or that fails to build, becomes a panel
saying so instead of taking the window down.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget


@dataclass(frozen=True)
class PageSpec:
    """One navigation entry: its title, a one-line description (tooltip and
    placeholder text) and the page class as ``"package.module:ClassName"``."""

    title: str
    description: str
    target: str

    @property
    def module_name(self) -> str:
        return self.target.partition(":")[0]

    @property
    def class_name(self) -> str:
        return self.target.partition(":")[2]


#: The main window's pages, in navigation order (Ctrl+1 .. Ctrl+4).
DEFAULT_PAGES: tuple[PageSpec, ...] = (
    PageSpec("Rank", "Compare model responses side by side and record your preferences.",
             "ui.ranking.panel:RankingPanel"),
    PageSpec("Datasets", "Browse, search, edit, import and export datasets.",
             "ui.datasets.manager:DatasetManagerPanel"),
    PageSpec("Train", "Configure and launch SFT, reward-model and PPO runs.",
             "ui.training.panel:TrainingPanel"),
    PageSpec("Runs", "Follow live reward and KL curves, and revisit past runs.",
             "ui.training.runs:RunsPanel"),
)


class PageUnavailable(Exception):
    """The page's module is not part of this installation."""


def load_page_class(spec: PageSpec) -> "type[QWidget]":
    """Import and return the page class named by ``spec.target``.

    Raises :class:`PageUnavailable` when the page's own module does not
    exist (a missing dependency of an existing module is a real error and
    propagates as ``ImportError``).
    """
    try:
        module = importlib.import_module(spec.module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if spec.module_name == missing or spec.module_name.startswith(missing + "."):
            raise PageUnavailable(f"{spec.module_name} is not installed") from exc
        raise
    try:
        return getattr(module, spec.class_name)
    except AttributeError:
        raise PageUnavailable(f"{spec.module_name} has no class {spec.class_name}") from None


def build_page(spec: PageSpec, parent: "Optional[QWidget]" = None) -> "QWidget":
    """Build the page for ``spec``, or a panel explaining why it could not be built."""
    import traceback

    from .page_panels import PageErrorPanel, PlaceholderPanel

    try:
        cls = load_page_class(spec)
    except PageUnavailable:
        return PlaceholderPanel(spec.title, spec.description + "\n\nThis page is not available "
                                "in this installation yet.", parent)
    try:
        return cls(parent)
    except Exception:  # noqa: BLE001 - one broken page must not take the window down
        return PageErrorPanel(spec, traceback.format_exc(), parent)


def static_shortcuts(spec: PageSpec) -> Optional[list[tuple[str, str]]]:
    """The page's ``shortcuts()`` when it can be called on the class (a static or
    class method), so the shortcuts dialog can list a page not built yet;
    ``None`` when the page has none or needs an instance."""
    import inspect

    try:
        cls = load_page_class(spec)
    except Exception:  # noqa: BLE001 - a page that cannot load has no shortcuts to list
        return None
    attr = inspect.getattr_static(cls, "shortcuts", None)
    if isinstance(attr, (staticmethod, classmethod)):
        return list(cls.shortcuts())
    return None
