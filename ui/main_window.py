"""The workbench's top-level window: navigation on the left, one page per task."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Slot
from PySide6.QtGui import QAction, QFont, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

APP_NAME = "RLHF Workbench"


@dataclass(frozen=True)
class _PageSpec:
    title: str
    description: str


# The order here is the order of the navigation list and of the stacked pages.
_PAGES = (
    _PageSpec(
        "Rank",
        "Compare model responses side by side and record your preferences "
        "(coming in the ranking view).",
    ),
    _PageSpec(
        "Datasets",
        "Manage imported datasets (coming in the dataset manager).",
    ),
    _PageSpec(
        "Train",
        "Configure and launch SFT, reward-model and PPO runs "
        "(coming in the training panel).",
    ),
    _PageSpec(
        "Runs",
        "Follow live reward and KL curves, and revisit past runs "
        "(coming in the runs view).",
    ),
)


class PlaceholderPanel(QWidget):
    """A calm, centered note saying what a page will hold once it is built."""

    def __init__(self, title: str, description: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"placeholder_{title.lower()}")

        title_label = QLabel(title)
        title_label.setObjectName("placeholderTitle")
        title_font = QFont(title_label.font())
        title_font.setPointSizeF(title_font.pointSizeF() * 1.6)
        title_font.setWeight(QFont.Weight.DemiBold)
        title_label.setFont(title_font)
        title_label.setAlignment(Qt.AlignmentFlag.AlignCenter)

        description_label = QLabel(description)
        description_label.setObjectName("placeholderDescription")
        description_label.setWordWrap(True)
        description_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # A muted role from the system palette rather than a fixed grey, so the
        # text stays readable under dark themes too.
        description_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        description_font = QFont(description_label.font())
        description_font.setPointSizeF(description_font.pointSizeF() * 1.1)
        description_label.setFont(description_font)

        # Labels go in without alignment flags: an aligned widget gets its
        # size hint, not its height-for-width, and a wrapped label is clipped.
        column = QWidget()
        column.setMaximumWidth(520)
        column_layout = QVBoxLayout(column)
        column_layout.setContentsMargins(0, 0, 0, 0)
        column_layout.setSpacing(10)
        column_layout.addWidget(title_label)
        column_layout.addWidget(description_label)

        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(column, 4)
        row.addStretch(1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(48, 48, 48, 48)
        layout.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(1)

        self.title = title
        self.description = description


class MainWindow(QMainWindow):
    """Top-level window: a navigation list switching the workbench's pages.

    For now the workspace is only displayed (title and status bar); opening
    it through ``workbench.store`` arrives with the store API.
    """

    def __init__(self, workspace_path: str | None = None) -> None:
        super().__init__()
        self._workspace_path: Path | None = None

        self._navigation = QListWidget()
        self._navigation.setObjectName("navigation")
        self._navigation.setFrameShape(QFrame.Shape.NoFrame)
        self._navigation.setFixedWidth(180)
        self._navigation.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # The sidebar reads as chrome, not as a content list: the window colour.
        self._navigation.setBackgroundRole(QPalette.ColorRole.Window)

        self._pages = QStackedWidget()
        self._pages.setObjectName("pages")

        # Explicit row heights: QSS item padding is painted but not counted in
        # QListWidget's size hints, so padded rows would overlap.
        row_height = self._navigation.fontMetrics().height() + 18
        for spec in _PAGES:
            item = QListWidgetItem(spec.title)
            item.setSizeHint(QSize(0, row_height))
            item.setToolTip(spec.description)
            self._navigation.addItem(item)
            self._pages.addWidget(PlaceholderPanel(spec.title, spec.description))

        self._navigation.currentRowChanged.connect(self._on_navigation_current_row_changed)
        self._navigation.setCurrentRow(0)

        separator = QFrame()
        separator.setFrameShape(QFrame.Shape.VLine)
        separator.setFrameShadow(QFrame.Shadow.Sunken)

        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._navigation)
        layout.addWidget(separator)
        layout.addWidget(self._pages, 1)
        self.setCentralWidget(central)

        self._build_menus()

        # A permanent label rather than showMessage(): transient messages are
        # wiped whenever a menu item shows its status tip.
        self._workspace_label = QLabel()
        self._workspace_label.setObjectName("workspaceLabel")
        self._workspace_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.statusBar().addWidget(self._workspace_label, 1)

        self.resize(1200, 780)
        self.set_workspace_path(workspace_path)

    # -- public API -------------------------------------------------------

    @property
    def navigation(self) -> QListWidget:
        """The navigation list on the left (one row per page)."""
        return self._navigation

    @property
    def pages(self) -> QStackedWidget:
        """The stacked pages switched by the navigation list."""
        return self._pages

    @property
    def workspace_path(self) -> Path | None:
        """The workspace folder shown in the title and status bar, if any."""
        return self._workspace_path

    def set_workspace_path(self, workspace_path: str | Path | None) -> None:
        """Show ``workspace_path`` in the window title and the status bar."""
        if workspace_path is None or str(workspace_path) == "":
            self._workspace_path = None
            self.setWindowTitle(APP_NAME)
            self._workspace_label.setText("No workspace open \u2014 File \u25b8 Open Workspace\u2026")
            self._workspace_label.setToolTip("")
            return
        path = Path(workspace_path).expanduser().absolute()
        self._workspace_path = path
        # Path("/").name is empty; fall back to the full path for the title.
        self.setWindowTitle(f"{APP_NAME} \u2014 {path.name or str(path)}")
        self._workspace_label.setText(f"Workspace: {path}")
        self._workspace_label.setToolTip(str(path))

    # -- menus ------------------------------------------------------------

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")

        open_action = QAction("&Open Workspace\u2026", self)
        open_action.setShortcut(QKeySequence.StandardKey.Open)
        open_action.setStatusTip("Choose a workspace folder")
        open_action.triggered.connect(self._on_open_workspace_triggered)
        file_menu.addAction(open_action)

        file_menu.addSeparator()

        quit_action = QAction("&Quit", self)
        # StandardKey.Quit is empty on Windows; Ctrl+Q is what users expect.
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        help_menu = self.menuBar().addMenu("&Help")
        about_action = QAction(f"&About {APP_NAME}", self)
        about_action.setMenuRole(QAction.MenuRole.AboutRole)
        about_action.triggered.connect(self._on_about_triggered)
        help_menu.addAction(about_action)

    # -- slots ------------------------------------------------------------

    @Slot(int)
    def _on_navigation_current_row_changed(self, row: int) -> None:
        if row >= 0:
            self._pages.setCurrentIndex(row)

    @Slot()
    def _on_open_workspace_triggered(self) -> None:
        start = str(self._workspace_path) if self._workspace_path else str(Path.home())
        chosen = QFileDialog.getExistingDirectory(self, "Open Workspace", start)
        if chosen:
            self.open_workspace(chosen)

    def open_workspace(self, folder: str | Path) -> bool:
        """Open (creating or migrating) the workspace in ``folder`` and show it.

        On failure the user sees why in a message box and the current
        workspace stays as it was; returns whether it opened.
        """
        from workbench.errors import WorkbenchError
        from workbench.store.workspace import Workspace

        try:
            Workspace.init(folder).close()
        except (WorkbenchError, OSError) as exc:
            QMessageBox.warning(self, "Cannot open workspace", str(exc))
            return False
        self.set_workspace_path(folder)
        return True

    @Slot()
    def _on_about_triggered(self) -> None:
        QMessageBox.about(
            self,
            f"About {APP_NAME}",
            f"<h3>{APP_NAME} {_app_version()}</h3>"
            "<p>Rank model responses, manage the datasets they become, and "
            "train SFT, reward-model and PPO stages on your own machine.</p>",
        )


def _app_version() -> str:
    # Read from the installed distribution so the About box never drifts
    # from pyproject.toml.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rlhf-workbench")
    except PackageNotFoundError:
        return ""
