"""The workbench's top-level window: a welcome screen while no workspace is
open; then navigation on the left and one page per task (Rank, Datasets,
Train, Runs), built on first visit from :mod:`ui.pages`.

What the window offers pages (see :mod:`ui.common.page`):
:meth:`MainWindow.show_page`, :meth:`MainWindow.page`,
:attr:`MainWindow.job_monitor` (one :class:`~ui.common.jobs.JobMonitor`),
and an undo group whose active stack follows the current page's
``undo_stack`` (Edit > Undo / Redo). Every built page gets
``set_workspace(root)`` when the workspace changes and ``shutdown()`` when
the window closes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional

# Start-up cost (see the class docstring): nothing imported here may pull the
# ``Qt`` namespace (~20 ms of enum set-up in PySide6), the job supervisor or
# the welcome screen before the first paint; those are imported where used.
from PySide6.QtCore import QElapsedTimer, QEvent, QSize, QTimer, Slot
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QKeySequence, QPalette, QUndoGroup
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QListWidget, QListWidgetItem, QMainWindow, QMenu,
                               QStackedWidget, QVBoxLayout, QWidget)

from workbench.store.workspace import DB_NAME

from .common.screen_fit import FRAME_ALLOWANCE
from .gpu_probe import GpuProbe
from .pages import DEFAULT_PAGES, PageSpec, build_page, static_shortcuts
from .settings import Settings
from .status_bar import StatusBarView

if TYPE_CHECKING:
    from .common.jobs import JobMonitor
    from .welcome import WelcomePanel

APP_NAME = "RLHF Workbench"
DEFAULT_SIZE = QSize(1200, 780)
#: The GPU probe starts this long after the window is shown (it imports torch
#: in a child process: a few seconds of CPU that should not slow start-up).
GPU_PROBE_DELAY_MS = 3000
#: If no paint event reaches the window this long after it is shown, the work
#: deferred to "after the first paint" runs anyway.
FIRST_PAINT_FALLBACK_MS = 500
#: Quitting while a Rank-page decision waits for another process's write lock: how long the
#: window retries on its own ("Saving…") before it asks whether to keep waiting or discard it.
SAVE_WAIT_S = 10


def default_demo_dir() -> Path:
    """Where "Open the Demo Workspace" builds (once) and opens the demo."""
    import platformdirs

    return Path(platformdirs.user_data_dir("rlhf-workbench", appauthor=False)) / "demo-workspace"


def workspace_exists(path: Path) -> bool:
    """Whether ``path`` still holds a workspace (its database file)."""
    return (path / DB_NAME).is_file()


def _plain(text: str) -> str:
    """Menu text without its mnemonic ampersand and trailing ellipsis."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("\u2026.")


class MainWindow(QMainWindow):
    """Top-level window of the app.

    ``workspace_path`` opens (creating if needed, like ``--workspace``)
    that workspace; without it the welcome screen shows. ``page_specs``
    replaces the page registry (tests); ``gpu_probe_delay_ms=None`` turns
    the GPU probe off; ``demo_dir`` / ``demo_quick`` choose where and how
    big "Open the Demo Workspace" builds.

    Start-up order (``benchmarks/startup.py`` times spawn -> first paint):
    the window is painted first with its navigation, menus and status bar;
    right after that first paint it builds the current page and starts the
    job monitor (which imports the job supervisor). The welcome screen is
    built only when it is shown.
    """

    def __init__(self, workspace_path: str | Path | None = None, *, settings: Optional[Settings] = None,
                 page_specs: Optional[Iterable[PageSpec]] = None,
                 gpu_probe_delay_ms: Optional[int] = GPU_PROBE_DELAY_MS,
                 demo_dir: Optional[Path] = None, demo_quick: bool = False) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self._settings = settings or Settings()
        self._specs: tuple[PageSpec, ...] = tuple(page_specs or DEFAULT_PAGES)
        self._built: dict[str, QWidget] = {}
        self._workspace_path: Optional[Path] = None
        self._demo_dir = Path(demo_dir) if demo_dir is not None else None
        self._demo_quick = demo_quick
        self._demo_dialog = None
        self._shut_down = False
        self._quit_anyway = False
        self.quit_box = None  # the "Quit while jobs run?" question while it is up
        self.save_box = None  # the "Keep waiting / discard" question of a decision not saved yet
        self._save_timer = None  # polls the pages' pending decision while the close waits for it
        self._save_given_up = False  # closing on a termination signal went on without it (see above)
        self._first_paint_done = False
        self._pending_page: Optional[str] = None

        self._undo_group = QUndoGroup(self)
        self._job_monitor: Optional[JobMonitor] = None  # see the job_monitor property
        self._welcome: Optional["WelcomePanel"] = None  # see the welcome property

        # -- central area: welcome screen or the workbench (navigation + pages)
        self._navigation = QListWidget()
        self._navigation.setObjectName("navigation")
        self._navigation.setFrameShape(QFrame.Shape.NoFrame)
        self._navigation.setFixedWidth(180)
        # The sidebar reads as chrome, not as a content list: the window colour.
        self._navigation.setBackgroundRole(QPalette.ColorRole.Window)
        self._pages = QStackedWidget()
        self._pages.setObjectName("pages")
        # Explicit row heights: QSS item padding is painted but not counted in
        # QListWidget's size hints, so padded rows would overlap.
        row_height = self._navigation.fontMetrics().height() + 18
        for spec in self._specs:
            item = QListWidgetItem(spec.title)
            item.setSizeHint(QSize(0, row_height))
            item.setToolTip(spec.description)
            self._navigation.addItem(item)
            slot = QWidget()  # the page is built into this slot on first visit
            slot.setObjectName(f"slot_{spec.title.lower()}")
            QVBoxLayout(slot).setContentsMargins(0, 0, 0, 0)
            self._pages.addWidget(slot)
        self._navigation.currentRowChanged.connect(self._on_navigation_current_row_changed)
        separator = QFrame()
        separator.setFrameShape(QFrame.Shape.VLine)
        separator.setFrameShadow(QFrame.Shadow.Sunken)
        self._workbench = QWidget()
        workbench_layout = QHBoxLayout(self._workbench)
        workbench_layout.setContentsMargins(0, 0, 0, 0)
        workbench_layout.setSpacing(0)
        workbench_layout.addWidget(self._navigation)
        workbench_layout.addWidget(separator)
        workbench_layout.addWidget(self._pages, 1)

        self._central = QStackedWidget()
        self._central.addWidget(self._workbench)
        self.setCentralWidget(self._central)

        # -- status bar, job queue, GPU probe
        self._status = StatusBarView()
        self.setStatusBar(self._status)
        self._status.jobs_clicked.connect(self._on_status_jobs_clicked)
        self._probe = GpuProbe(self)
        self._probe.finished.connect(self._on_probe_finished)
        self._probe.failed.connect(self._on_probe_failed)
        self._probe_delay_ms = gpu_probe_delay_ms
        self._probe_pending = False
        self._probe_timer = QTimer(self)
        self._probe_timer.setSingleShot(True)
        self._probe_timer.timeout.connect(self._on_probe_timer_timeout)
        self._first_paint_fallback = QTimer(self)
        self._first_paint_fallback.setSingleShot(True)
        self._first_paint_fallback.setInterval(FIRST_PAINT_FALLBACK_MS)
        self._first_paint_fallback.timeout.connect(self._after_first_paint)

        self._build_menus()
        self._restore_window()
        if workspace_path is not None and str(workspace_path) != "":
            if not self.open_workspace(workspace_path, create=True):
                self._show_welcome()
        else:
            self._show_welcome()

    # == public API =======================================================================
    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def job_monitor(self) -> "JobMonitor":
        """The window's one :class:`JobMonitor` (share it; don't build one per page).

        Created on first use (it imports the job supervisor, which start-up
        does not need before the first paint), bound to the open workspace."""
        if self._job_monitor is None:
            from .common.jobs import JobMonitor

            self._job_monitor = JobMonitor(self)
            self._job_monitor.runs_changed.connect(self._status.set_runs)
            if self._workspace_path is not None:
                self._job_monitor.set_workspace(self._workspace_path)
        return self._job_monitor

    @property
    def undo_group(self) -> QUndoGroup:
        return self._undo_group

    @property
    def navigation(self) -> QListWidget:
        """The navigation list on the left (one row per page)."""
        return self._navigation

    @property
    def pages(self) -> QStackedWidget:
        """One slot per page, in navigation order; a slot holds its page once built."""
        return self._pages

    @property
    def welcome(self) -> "WelcomePanel":
        """The welcome screen (built on first use)."""
        if self._welcome is None:
            from .welcome import WelcomePanel

            welcome = WelcomePanel()
            welcome.new_requested.connect(self._on_new_workspace_triggered)
            welcome.open_requested.connect(self._on_open_workspace_triggered)
            welcome.demo_requested.connect(self._on_open_demo_triggered)
            welcome.recent_activated.connect(self._on_welcome_recent_activated)
            welcome.recent_removed.connect(self._on_welcome_recent_removed)
            welcome.set_recent(self._settings.recent_workspaces())
            self._central.addWidget(welcome)
            self._welcome = welcome
        return self._welcome

    @property
    def status_bar_view(self) -> StatusBarView:
        return self._status

    @property
    def page_specs(self) -> tuple[PageSpec, ...]:
        return self._specs

    @property
    def workspace_path(self) -> Optional[Path]:
        """The open workspace folder (``None`` while the welcome screen shows)."""
        return self._workspace_path

    @property
    def demo_dir(self) -> Path:
        return self._demo_dir or default_demo_dir()

    def is_welcome_shown(self) -> bool:
        return self._welcome is not None and self._central.currentWidget() is self._welcome

    def current_title(self) -> Optional[str]:
        row = self._navigation.currentRow()
        return self._specs[row].title if 0 <= row < len(self._specs) else None

    def page(self, title: str) -> Optional[QWidget]:
        """The page called ``title`` if it has been built, else ``None``."""
        return self._built.get(title)

    def show_page(self, title: str) -> QWidget:
        """Switch to the page called ``title`` (building it on first use) and return it."""
        row = self._row_of(title)
        self._pending_page = None  # an explicit choice wins over the start-up page
        if self._navigation.currentRow() != row:
            self._navigation.setCurrentRow(row)  # -> _on_navigation_current_row_changed
        else:
            self._activate_row(row)
        return self._built[title]

    def _on_page_action(self, title: str) -> None:
        """Ctrl+N: show the page and give it the keyboard, so its own keys (the Rank page's
        1/2/T...) work at once; left in the navigation list, focus would swallow them (and a
        letter there jumps to another page). Clicks in the list keep focus in the list."""
        from PySide6.QtCore import Qt  # not at import: the Qt namespace costs start-up time
        from PySide6.QtWidgets import QApplication

        page = self.show_page(title)
        if not page.isAncestorOf(QApplication.focusWidget()):
            page.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def open_workspace(self, folder: str | Path, *, create: bool = False) -> bool:
        """Open the workspace in ``folder`` (migrating it; with ``create``, creating it
        if needed) and show it. On failure the user sees why and the current
        workspace stays as it was; returns whether it opened."""
        from workbench.errors import WorkbenchError
        from workbench.store.workspace import Workspace

        path = Path(folder).expanduser().absolute()
        if not create:
            if not path.exists():
                self._warn("Cannot open workspace", f"{path} does not exist (moved or deleted?).")
                return False
            if path.is_dir() and not (path / DB_NAME).is_file():
                self._warn("Cannot open workspace",
                           f"{path} is not a workspace: it has no {DB_NAME}.\n\n"
                           "Use File \u25b8 New Workspace\u2026 to create a workspace in a new folder.")
                return False
        try:
            (Workspace.init(path) if create else Workspace.open(path)).close()
        except (WorkbenchError, OSError) as exc:
            self._warn("Cannot open workspace", str(exc))
            return False
        self._activate_workspace(path)
        return True

    def create_workspace(self, folder: str | Path) -> bool:
        """Create a workspace in ``folder`` (new or empty; an existing workspace is
        simply opened) and show it; returns whether it opened."""
        path = Path(folder).expanduser().absolute()
        if workspace_exists(path):
            return self.open_workspace(path)
        if path.is_dir() and any(path.iterdir()):
            self._warn("Cannot create workspace",
                       f"{path} is not empty. A workspace is a folder of its own: choose an empty "
                       "folder (the folder dialog can create one).")
            return False
        return self.open_workspace(path, create=True)

    def close_workspace(self) -> None:
        """Close the workspace and show the welcome screen."""
        if self._workspace_path is None:
            return
        self._workspace_path = None
        self._probe_timer.stop()
        self._probe_pending = False
        self._probe.stop(wait_ms=0)  # never block the window; the worker stops the job
        self._pending_page = None
        if self._job_monitor is not None:
            self._job_monitor.set_workspace(None)
        for page in self._built.values():
            page.set_workspace(None)
        self._settings.set_last_workspace(None)
        self._show_welcome()

    def open_demo_workspace(self) -> None:
        """Open the demo workspace, building it first (child process, progress dialog) if needed."""
        from workbench.cli import demo_is_complete

        target = self.demo_dir
        if demo_is_complete(target):
            self.open_workspace(target)
            return
        if self._demo_dialog is not None:
            if self._demo_dialog.builder.running:
                self._demo_dialog.raise_()
                return
            self._demo_dialog.deleteLater()  # kept until now so its outcome stays readable
        from .demo_builder import DemoBuildDialog

        dialog = DemoBuildDialog(target, quick=self._demo_quick, parent=self)
        dialog.accepted.connect(self._on_demo_dialog_accepted)
        self._demo_dialog = dialog
        dialog.start()

    @property
    def demo_dialog(self):
        """The last demo build dialog (``None`` before the first build)."""
        return self._demo_dialog

    def shortcut_entries(self) -> list[tuple[str, str, str]]:
        """Every shortcut of the app as ``(section, keys, what it does)``: the menus,
        the welcome screen, then each page's ``shortcuts()``."""
        from .welcome import WelcomePanel

        entries: list[tuple[str, str, str]] = []
        for top in self.menuBar().actions():
            if top.menu() is not None:
                self._menu_shortcuts(top.menu(), _plain(top.text()), entries)
        entries += [("Welcome screen", keys, what) for keys, what in WelcomePanel.shortcuts()]
        for spec in self._specs:
            page = self._built.get(spec.title)
            found = page.shortcuts() if page is not None and hasattr(page, "shortcuts") else static_shortcuts(spec)
            entries += [(f"{spec.title} page", keys, what) for keys, what in (found or [])]
        return entries

    # == menus ============================================================================
    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            keys = shortcut if isinstance(shortcut, list) else [shortcut]
            action.setShortcuts([QKeySequence(k) for k in keys])
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.new_action = self._action("&New Workspace\u2026", self._on_new_workspace_triggered,
                                       "Ctrl+N", "Create a workspace in a new folder")
        self.open_action = self._action("&Open Workspace\u2026", self._on_open_workspace_triggered,
                                        "Ctrl+O", "Open a workspace folder")
        self.recent_menu = QMenu("Open &Recent", self)
        self.recent_menu.setObjectName("recentMenu")
        self.demo_action = self._action("Open the &Demo Workspace\u2026", self._on_open_demo_triggered,
                                        tip="Build (once) and open a small workspace to try the app")
        self.import_action = self._action("&Import\u2026", self._on_import_triggered, "Ctrl+I",
                                          "Import a dataset file into the workspace")
        self.export_action = self._action("&Export\u2026", self._on_export_triggered, "Ctrl+E",
                                          "Export a dataset or snapshot")
        self.close_action = self._action("&Close Workspace", self._on_close_workspace_triggered,
                                         "Ctrl+Shift+W", "Close the workspace and show the welcome screen")
        # StandardKey.Quit is empty on Windows; Ctrl+Q is what users expect.
        self.quit_action = self._action("&Quit", self.close, "Ctrl+Q")
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        for item in (self.new_action, self.open_action, self.recent_menu, self.demo_action, None,
                     self.import_action, self.export_action, None, self.close_action, None, self.quit_action):
            if item is None:
                file_menu.addSeparator()
            elif isinstance(item, QMenu):
                file_menu.addMenu(item)
            else:
                file_menu.addAction(item)

        edit_menu = bar.addMenu("&Edit")
        self.undo_action = self._undo_group.createUndoAction(self, "&Undo")
        self.undo_action.setShortcuts([QKeySequence("Ctrl+Z")])
        self.redo_action = self._undo_group.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        edit_menu.addAction(self.undo_action)
        edit_menu.addAction(self.redo_action)

        view_menu = bar.addMenu("&View")
        self.page_actions: list[QAction] = []
        group = QActionGroup(self)
        for i, spec in enumerate(self._specs):
            action = QAction(spec.title, self)
            action.setCheckable(True)
            if i < 9:
                action.setShortcuts([QKeySequence(f"Ctrl+{i + 1}")])  # setShortcut() would set up the Qt namespace
            action.setStatusTip(spec.description)
            action.triggered.connect(lambda _checked=False, t=spec.title: self._on_page_action(t))
            group.addAction(action)
            view_menu.addAction(action)
            self.page_actions.append(action)

        help_menu = bar.addMenu("&Help")
        self.shortcuts_action = self._action("&Keyboard Shortcuts", self._on_shortcuts_triggered,
                                             ["Ctrl+/", "F1"])  # F1 as the README promises
        self.about_action = self._action(f"&About {APP_NAME}", self._on_about_triggered)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        help_menu.addAction(self.shortcuts_action)
        help_menu.addAction(self.about_action)
        self.refresh_recent()

    def _menu_shortcuts(self, menu: QMenu, section: str, out: list) -> None:
        for action in menu.actions():
            if action.menu() is not None:
                self._menu_shortcuts(action.menu(), section, out)
            elif action.shortcuts():
                keys = " or ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())
                out.append((section, keys, _plain(action.text())))

    def refresh_recent(self) -> None:
        """Re-read the recent workspaces (File > Open Recent and the welcome screen)."""
        recent = self._settings.recent_workspaces()
        if self._welcome is not None:
            self._welcome.set_recent(recent)
        self.recent_menu.clear()
        for path in recent:
            missing = not workspace_exists(path)
            action = self.recent_menu.addAction(f"{path}{'  (missing)' if missing else ''}")
            action.setData(str(path))
            action.setEnabled(not missing)
            action.triggered.connect(lambda _checked=False, p=path: self.open_workspace(p))
        if recent:
            self.recent_menu.addSeparator()
        clear = self.recent_menu.addAction("&Clear Menu")
        clear.setEnabled(bool(recent))
        clear.triggered.connect(self._on_clear_recent_triggered)

    def _update_actions(self) -> None:
        has_ws = self._workspace_path is not None
        for action in (self.import_action, self.export_action, self.close_action, *self.page_actions):
            action.setEnabled(has_ws)

    # == workspace and pages ==============================================================
    def _activate_workspace(self, path: Path) -> None:
        self._workspace_path = path
        self.setWindowTitle(f"{APP_NAME} \u2014 {path.name or str(path)}")
        self._status.set_workspace(path)
        self._settings.add_recent_workspace(path)
        self._settings.set_last_workspace(path)
        self.refresh_recent()
        if self._job_monitor is not None:  # before the pages: they take its runs as this workspace's
            self._job_monitor.set_workspace(path)
        for page in self._built.values():
            page.set_workspace(path)
        self._central.setCurrentWidget(self._workbench)
        self._update_actions()
        title = self._settings.last_page()
        title = title if title in {s.title for s in self._specs} else self._specs[0].title
        if self._first_paint_done:
            self.job_monitor  # noqa: B018 - created (bound to this workspace) if it was not yet
            self.show_page(title)
        else:
            # Select it now (the navigation shows it in the first paint); build it after.
            self._pending_page = title
            self._navigation.blockSignals(True)
            self._navigation.setCurrentRow(self._row_of(title))
            self._navigation.blockSignals(False)
        self._schedule_probe()

    def _show_welcome(self) -> None:
        self.setWindowTitle(APP_NAME)
        self._status.set_workspace(None)
        self._status.set_runs([])
        self.refresh_recent()
        self._central.setCurrentWidget(self.welcome)
        self._undo_group.setActiveStack(None)
        self._update_actions()

    def _row_of(self, title: str) -> int:
        for row, spec in enumerate(self._specs):
            if spec.title == title:
                return row
        raise KeyError(f"no page {title!r}; pages: {', '.join(s.title for s in self._specs)}")

    def _ensure_built(self, row: int) -> QWidget:
        spec = self._specs[row]
        page = self._built.get(spec.title)
        if page is None:
            slot = self._pages.widget(row)
            page = build_page(spec, slot)
            slot.layout().addWidget(page)
            page.show()  # the layout would show it only from a queued call, a beat later
            from .common.wheel_guard import guard_wheel_in

            guard_wheel_in(page)  # no field of a page changes under a scrolling wheel
            self._built[spec.title] = page
            stack = getattr(page, "undo_stack", None)
            if stack is not None:
                self._undo_group.addStack(stack)
            page.set_workspace(self._workspace_path)
        return page

    def _activate_row(self, row: int) -> None:
        page = self._ensure_built(row)
        self._pages.setCurrentIndex(row)
        item = self._navigation.item(row)
        if item is not None and not item.isSelected():  # a row already current (the first page on
            item.setSelected(True)  # opening a workspace) kept no highlight: no page looked shown
        self._undo_group.setActiveStack(getattr(page, "undo_stack", None))
        if row < len(self.page_actions):
            self.page_actions[row].setChecked(True)
        self._settings.set_last_page(self._specs[row].title)

    # == GPU probe ========================================================================
    def _schedule_probe(self) -> None:
        if self._probe_delay_ms is None or self._workspace_path is None:
            return
        self._status.show_gpu_probing()
        if self.isVisible():
            self._probe_timer.start(self._probe_delay_ms)
        else:
            self._probe_pending = True  # counted from the first show, see showEvent

    # == window state =====================================================================
    def _restore_window(self) -> None:
        geometry = self._settings.geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(DEFAULT_SIZE)
        self._fit_to_screen()
        state = self._settings.window_state()
        if state is not None:
            self.restoreState(state)

    def _fit_to_screen(self) -> None:
        """Never larger than the screen's available area (the default 1200x780 is taller than a
        1280x720 screen; a geometry saved on a bigger monitor comes back on a smaller one)."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return
        avail = screen.availableGeometry()
        # Before the first show the frame is unknown: leave room for a title bar and borders.
        frame = QSize(self.frameGeometry().width() - self.width(), self.frameGeometry().height() - self.height())
        if frame.isNull() or not self.isVisible():
            frame = FRAME_ALLOWANCE
        size = self.size().boundedTo(avail.size() - frame)
        if size != self.size():
            self.resize(size)
        x = min(max(self.x(), avail.left()), avail.right() - size.width() - frame.width() + 1)
        y = min(max(self.y(), avail.top()), avail.bottom() - size.height() - frame.height() + 1)
        if (x, y) != (self.x(), self.y()):
            self.move(max(x, avail.left()), max(y, avail.top()))

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._first_paint_done:
            self._first_paint_fallback.start()
        if self._probe_pending and self._workspace_path is not None:
            self._probe_pending = False
            self._probe_timer.start(self._probe_delay_ms)

    def event(self, event) -> bool:  # noqa: D401 - Qt override
        kind = event.type()
        # ApplicationPaletteChange reaches event(), not changeEvent(). Re-applying the
        # sheet sends StyleChange, not this, so there is no loop.
        if kind == QEvent.Type.ApplicationPaletteChange:
            from .theme import refresh_stylesheet

            refresh_stylesheet()  # palette() roles in the stylesheet follow the new palette
        handled = super().event(event)
        if kind == QEvent.Type.Paint and not self._first_paint_done:
            QTimer.singleShot(0, self._after_first_paint)
        return handled

    def _after_first_paint(self) -> None:
        """Start-up work that waits for the window to be on screen (see the class docstring)."""
        if self._first_paint_done or self._shut_down:
            return
        self._first_paint_done = True
        self._first_paint_fallback.stop()
        self._status.finish_setup()
        if self._workspace_path is not None:
            self.job_monitor  # noqa: B018 - created and bound to the workspace
        title, self._pending_page = self._pending_page, None
        if title is not None and self._workspace_path is not None:
            self.show_page(title)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if not self._shut_down and self._wait_for_saving():
            event.ignore()  # a decision still waits for the write lock: closes once it is saved
            return
        if not self._shut_down and not self._quit_anyway and self.ask_before_quit():
            event.ignore()  # asked (window-modal, never blocking): the answer closes the window or not
            return
        self.shutdown()
        super().closeEvent(event)

    def _saving_pages(self) -> list:
        return [page for page in self._built.values() if getattr(page, "saving", False)]

    def _wait_for_saving(self) -> bool:
        """Quitting while a decision waits for another process's write lock: keep the window,
        say "Saving…", retry on the page's timer, close once saved. After :data:`SAVE_WAIT_S`
        ask whether to keep waiting or discard it; nothing is dropped without that answer.
        Returns whether the close is deferred."""
        if not self._saving_pages() or self._save_given_up:
            return False
        if self.save_box is not None:
            if self._quit_anyway:   # a termination signal while the question is up: nobody answers it
                self._save_given_up = True   # the page's shutdown tries once more, then names it on stderr
                box, self.save_box = self.save_box, None
                box.close()
                return False
            self.save_box.raise_()
            return True
        if getattr(self, "_save_timer", None) is None:
            self._save_clock = QElapsedTimer()
            self._save_clock.start()
            self._save_timer = QTimer(self)
            self._save_timer.setInterval(100)
            self._save_timer.timeout.connect(self._on_save_timer_timeout)
            self._save_timer.start()
        self.statusBar().showMessage("Saving your last decision\u2026 another process is writing to the "
                                     "workspace; the window closes once it is saved")
        return True

    def _on_save_timer_timeout(self) -> None:
        if not self._saving_pages():
            self._save_timer.stop()
            self._save_timer = None
            self.statusBar().clearMessage()
            self.close()
        elif self._save_clock.elapsed() >= SAVE_WAIT_S * 1000 and self.save_box is None:
            self._save_timer.stop()
            if self._quit_anyway:   # a termination signal: nobody to ask; the page names it on stderr
                self._save_timer = None
                self._save_given_up = True
                self.close()
            else:
                self._ask_keep_waiting()

    def _ask_keep_waiting(self) -> None:
        from PySide6.QtCore import Qt
        from PySide6.QtWidgets import QMessageBox

        box = QMessageBox(QMessageBox.Icon.Warning, "Your last decision is not saved yet",
                          "Another process has been writing to the workspace for a while, so your last "
                          "decision on the Rank page could not be saved yet.",
                          QMessageBox.StandardButton.NoButton, self)
        box.setInformativeText("Keep waiting to save it (the window closes once it is saved), or "
                               "discard that one decision and quit.")
        wait = box.addButton("Keep waiting", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Discard it and quit", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(wait)
        box.setEscapeButton(wait)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def on_finished(_result: int) -> None:
            self.save_box = None
            if self._save_given_up:   # closed by a termination signal, not answered: discard nothing
                return
            if box.clickedButton() is wait:
                self._save_clock.restart()
                self._save_timer.start()
                return
            for page in self._saving_pages():
                page.discard_pending()
            self._save_timer = None
            self.close()

        box.finished.connect(on_finished)
        self.save_box = box
        box.open()  # window-modal; the page's retry timer keeps running meanwhile

    def close_without_asking(self) -> bool:
        """Close even while jobs run (a termination signal: nobody is there to answer)."""
        self._quit_anyway = True
        return self.close()

    def active_jobs(self) -> list:
        """The workspace's running and queued runs the user started (not the GPU probe)."""
        if self._job_monitor is None or self._workspace_path is None:
            return []
        return [r for r in self._job_monitor.active_runs() if r.stage != "probe"]

    def ask_before_quit(self) -> bool:
        """Quitting while jobs run: say that they keep running and will be re-attached, and offer
        to stop them. Returns whether it asked (then :attr:`quit_box` is up until answered; "Quit"
        or "Stop and quit" close the window)."""
        from PySide6.QtCore import Qt
        from PySide6.QtWidgets import QMessageBox

        from workbench.jobs.supervisor import QUEUED

        from .common.names import short_run_name
        from .common.text import plural

        if self.quit_box is not None:
            self.quit_box.raise_()
            return True
        jobs = self.active_jobs()
        if not jobs:
            return False
        running = [r for r in jobs if r.status != QUEUED]
        queued = [r for r in jobs if r.status == QUEUED]
        names = ", ".join(short_run_name(r.run_id) + (f" (step {r.last_step})" if r.last_step else "")
                          for r in running)
        text = (f"{plural(len(running), 'job')} still running: {names}." if running else
                f"{plural(len(queued), 'job')} waiting in the queue.")
        more = ("Running jobs keep running after you quit, in their own processes. When you open this "
                "workspace again, the Runs page re-attaches to them: curves, samples and logs continue "
                "where they are.")
        if queued:
            more += f" {plural(len(queued), 'queued job')} start{'s' if len(queued) == 1 else ''} " \
                    "once the workspace is open again."
        box = QMessageBox(QMessageBox.Icon.Question, "Quit while jobs run?", text,
                          QMessageBox.StandardButton.NoButton, self)
        box.setInformativeText(more + "\n\nStopping saves a checkpoint at the next step, so a run can be "
                               "resumed later.")
        keep = box.addButton("Quit, keep running", QMessageBox.ButtonRole.AcceptRole)
        stop = box.addButton("Stop and quit", QMessageBox.ButtonRole.DestructiveRole)
        stay = box.addButton("Don't quit", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.setEscapeButton(stay)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def on_finished(_result: int) -> None:
            self.quit_box = None
            clicked = box.clickedButton()
            if clicked is stop:
                self._stop_jobs(jobs)
            if clicked in (keep, stop):
                self._quit_anyway = True
                self.close()

        box.finished.connect(on_finished)
        self.quit_box = box
        box.open()  # window-modal; a nested event loop (exec) would block whoever called close()
        return True

    def _stop_jobs(self, jobs: list) -> None:
        """Ask each job to stop (it saves a checkpoint at its next step on its own; nothing
        here waits for it), and take queued ones out of the queue."""
        from workbench.jobs.rundir import request_cancel
        from workbench.jobs.supervisor import QUEUED

        sup = self._job_monitor.supervisor if self._job_monitor is not None else None
        if sup is None:
            return
        for run in jobs:
            try:
                if run.status == QUEUED:
                    sup.cancel(run.run_id)  # quick: it only leaves the queue
                else:
                    request_cancel(sup.run_dir(run.run_id))
            except Exception as exc:  # noqa: BLE001 - quitting goes on; say what could not be stopped
                self.statusBar().showMessage(f"Could not stop {run.run_id}: {exc}", 5000)

    def shutdown(self) -> None:
        """Save the window's settings and stop everything it runs (called on close)."""
        if self._shut_down:
            return
        self._shut_down = True
        self._settings.set_geometry(self.saveGeometry())
        self._settings.set_window_state(self.saveState())
        if self._demo_dialog is not None and self._demo_dialog.builder.running:
            self._demo_dialog.builder.cancel()
            self._demo_dialog.builder.wait(20000)
        self._probe_timer.stop()
        self._probe.stop()
        self._first_paint_fallback.stop()
        if self._job_monitor is not None:
            self._job_monitor.stop()
        for page in self._built.values():
            page.shutdown()
        from .common.worker import wait_for_workers
        wait_for_workers(10000)  # listing/reading workers the pages started and did not wait for
        self._settings.sync()

    def _warn(self, title: str, text: str) -> None:
        from PySide6.QtCore import Qt
        from PySide6.QtWidgets import QMessageBox

        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if self.isVisible():
            box.exec()
        else:
            box.open()  # during construction: never block the caller

    def _choose_folder(self, title: str) -> Optional[Path]:
        from PySide6.QtWidgets import QFileDialog

        start = self._workspace_path.parent if self._workspace_path else Path.home()
        chosen = QFileDialog.getExistingDirectory(self, title, str(start))
        return Path(chosen) if chosen else None

    # == slots ============================================================================
    @Slot(int)
    def _on_navigation_current_row_changed(self, row: int) -> None:
        if row >= 0:
            self._activate_row(row)

    @Slot()
    def _on_new_workspace_triggered(self) -> None:
        folder = self._choose_folder("New Workspace: choose or create an empty folder")
        if folder is not None:
            self.create_workspace(folder)

    @Slot()
    def _on_open_workspace_triggered(self) -> None:
        folder = self._choose_folder("Open Workspace")
        if folder is not None:
            self.open_workspace(folder)

    @Slot()
    def _on_open_demo_triggered(self) -> None:
        self.open_demo_workspace()

    @Slot()
    def _on_demo_dialog_accepted(self) -> None:
        self.open_workspace(self.demo_dir)

    @Slot()
    def _on_close_workspace_triggered(self) -> None:
        self.close_workspace()

    @Slot()
    def _on_clear_recent_triggered(self) -> None:
        self._settings.clear_recent_workspaces()
        self.refresh_recent()

    @Slot(Path)
    def _on_welcome_recent_activated(self, path: Path) -> None:
        self.open_workspace(path)

    @Slot(Path)
    def _on_welcome_recent_removed(self, path: Path) -> None:
        self._settings.remove_recent_workspace(path)
        self.refresh_recent()

    def _call_datasets(self, method: str) -> None:
        page = self.show_page("Datasets")
        action = getattr(page, method, None)
        if callable(action):
            action()
        else:
            self.statusBar().showMessage("The Datasets page is not available in this installation.", 5000)

    @Slot()
    def _on_import_triggered(self) -> None:
        self._call_datasets("open_import_wizard")

    @Slot()
    def _on_export_triggered(self) -> None:
        self._call_datasets("open_export_dialog")

    @Slot()
    def _on_status_jobs_clicked(self) -> None:
        if any(s.title == "Runs" for s in self._specs):
            self.show_page("Runs")

    @Slot()
    def _on_probe_timer_timeout(self) -> None:
        if self._workspace_path is not None and not self._shut_down:
            self._probe.start(self._workspace_path)

    @Slot(dict)
    def _on_probe_finished(self, info: dict) -> None:
        if self._probe.root == self._workspace_path:
            self._status.show_gpu(info)

    @Slot(str)
    def _on_probe_failed(self, message: str) -> None:
        if self._probe.root == self._workspace_path:
            self._status.show_gpu_error(message)

    @Slot()
    def _on_shortcuts_triggered(self) -> None:
        from PySide6.QtCore import Qt

        from .shortcuts_dialog import ShortcutsDialog

        dialog = ShortcutsDialog(self.shortcut_entries(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    @Slot()
    def _on_about_triggered(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.about(
            self,
            f"About {APP_NAME}",
            f"<h3>{APP_NAME} {_app_version()}</h3>"
            "<p>Rank model responses, manage the datasets they become, and "
            "train SFT, reward-model and PPO stages on your own machine.</p>"
            f"<p><small>Settings: {self._settings.file_name}</small></p>",
        )


def _app_version() -> str:
    # Read from the installed distribution so the About box never drifts
    # from pyproject.toml.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rlhf-workbench")
    except PackageNotFoundError:
        return ""
