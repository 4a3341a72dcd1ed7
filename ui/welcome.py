"""The welcome screen: shown while no workspace is open.

:class:`WelcomePanel` offers New / Open / the demo workspace and the recent
workspaces (double-click or Enter opens one; a folder that no longer exists
is marked missing and can be removed from the list). It only emits
requests; the main window runs the dialogs and opens workspaces, so the
menus and this screen share one code path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import QRect, QSize, Qt, Signal, Slot
from PySide6.QtGui import QFont, QFontMetrics, QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (QFrame, QGridLayout, QHBoxLayout, QLabel, QListWidget, QStyle,
                               QStyledItemDelegate, QStyleOptionViewItem,
                               QListWidgetItem, QPushButton, QSizePolicy, QVBoxLayout, QWidget)

from .theme import app_icon

PATH_ROLE = Qt.ItemDataRole.UserRole
MISSING_ROLE = Qt.ItemDataRole.UserRole + 1


def workspace_exists(path: Path) -> bool:
    """Whether ``path`` still holds a workspace (its database file)."""
    return (path / "workspace.sqlite").is_file()


class RecentItemDelegate(QStyledItemDelegate):
    """Two lines per recent workspace: its name, then its folder in smaller, muted text."""

    _PAD_X, _PAD_Y, _GAP = 10, 7, 2

    def _fonts(self, option: QStyleOptionViewItem) -> tuple[QFont, QFont]:
        name_font = QFont(option.font)
        name_font.setWeight(QFont.Weight.DemiBold)
        path_font = QFont(option.font)
        path_font.setPointSizeF(option.font.pointSizeF() * 0.9)
        return name_font, path_font

    def sizeHint(self, option, index) -> QSize:  # noqa: N802 - Qt override
        name_font, path_font = self._fonts(option)
        height = QFontMetrics(name_font).height() + self._GAP + QFontMetrics(path_font).height()
        return QSize(200, height + 2 * self._PAD_Y)

    def paint(self, painter, option, index) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        # The item's own text: opt.text has the newline turned into U+2028 for display.
        name, _, path = str(index.data(Qt.ItemDataRole.DisplayRole) or "").partition("\n")
        opt.text = ""
        style = opt.widget.style() if opt.widget is not None else QStyle()
        painter.save()  # the style-sheet style may leave a clip or transform behind
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        painter.restore()

        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        missing = bool(index.data(MISSING_ROLE))
        palette = opt.palette
        if selected:
            name_color = path_color = palette.color(QPalette.ColorRole.HighlightedText)
        else:
            name_color = palette.color(QPalette.ColorGroup.Disabled if missing else QPalette.ColorGroup.Normal,
                                       QPalette.ColorRole.Text)
            path_color = palette.color(QPalette.ColorRole.PlaceholderText)
        name_font, path_font = self._fonts(opt)
        rect = opt.rect.adjusted(self._PAD_X, self._PAD_Y, -self._PAD_X, -self._PAD_Y)
        name_h = QFontMetrics(name_font).height()
        painter.save()
        painter.setFont(name_font)
        painter.setPen(name_color)
        painter.drawText(QRect(rect.left(), rect.top(), rect.width(), name_h),
                         int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                         QFontMetrics(name_font).elidedText(name, Qt.TextElideMode.ElideRight, rect.width()))
        painter.setFont(path_font)
        painter.setPen(path_color)
        top = rect.top() + name_h + self._GAP
        painter.drawText(QRect(rect.left(), top, rect.width(), rect.bottom() - top + 1),
                         int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                         QFontMetrics(path_font).elidedText(path, Qt.TextElideMode.ElideMiddle, rect.width()))
        painter.restore()


def _muted(label: QLabel) -> QLabel:
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


def _section_title(text: str) -> QLabel:
    label = QLabel(text)
    font = QFont(label.font())
    font.setWeight(QFont.Weight.DemiBold)
    font.setPointSizeF(font.pointSizeF() * 1.15)
    label.setFont(font)
    return label


class WelcomePanel(QWidget):
    """First screen: start a workspace, open one, or try the demo."""

    new_requested = Signal()
    open_requested = Signal()
    demo_requested = Signal()
    recent_activated = Signal(Path)
    recent_removed = Signal(Path)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcome")
        self._recent: list[Path] = []

        icon = QLabel()
        icon.setPixmap(app_icon().pixmap(QSize(72, 72)))
        icon.setFixedSize(72, 72)
        title = QLabel("RLHF Workbench")
        title.setObjectName("welcomeTitle")
        title_font = QFont(title.font())
        title_font.setPointSizeF(title_font.pointSizeF() * 2.0)
        title_font.setWeight(QFont.Weight.DemiBold)
        title.setFont(title_font)
        tagline = _muted(QLabel("Rank model responses side by side, manage the datasets those rankings "
                                "become, and train SFT, a reward model and PPO on your own machine."))
        tagline.setWordWrap(True)
        heading_text = QVBoxLayout()
        heading_text.setSpacing(4)
        heading_text.addWidget(title)
        heading_text.addWidget(tagline)
        heading = QHBoxLayout()
        heading.setSpacing(18)
        heading.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        heading.addLayout(heading_text, 1)

        # -- start column
        self.new_button = QPushButton("New Workspace\u2026")
        self.new_button.setObjectName("newWorkspaceButton")
        self.new_button.clicked.connect(self.new_requested)
        self.open_button = QPushButton("Open Workspace\u2026")
        self.open_button.setObjectName("openWorkspaceButton")
        self.open_button.clicked.connect(self.open_requested)
        self.demo_button = QPushButton("Open the Demo Workspace")
        self.demo_button.setObjectName("demoButton")
        self.demo_button.clicked.connect(self.demo_requested)
        start = QVBoxLayout()
        start.setSpacing(8)
        start.addWidget(_section_title("Start"))
        start.addWidget(self.new_button)
        start.addWidget(_muted(self._note("A workspace is one folder: its database, runs and models.")))
        start.addSpacing(6)
        start.addWidget(self.open_button)
        start.addSpacing(6)
        start.addWidget(self.demo_button)
        start.addWidget(_muted(self._note(
            "A tiny model, fine-tuned on demonstrations and ranked by a scripted annotator: "
            "ready for the reward model and PPO. Built once, in a minute or two.")))
        start.addStretch(1)
        for button in (self.new_button, self.open_button, self.demo_button):
            button.setMinimumHeight(button.sizeHint().height() + 8)

        # -- recent column
        self.recent_list = QListWidget()
        self.recent_list.setObjectName("recentList")
        self.recent_list.setUniformItemSizes(True)
        self.recent_list.setAlternatingRowColors(False)
        self.recent_list.setItemDelegate(RecentItemDelegate(self.recent_list))
        self.recent_list.setMinimumHeight(300)
        self.recent_list.itemActivated.connect(self._on_recent_list_item_activated)
        self.recent_list.currentItemChanged.connect(self._on_recent_list_current_item_changed)
        self.empty_label = _muted(QLabel("Workspaces you open appear here."))
        self.open_recent_button = QPushButton("Open")
        self.open_recent_button.clicked.connect(self._on_open_recent_button_clicked)
        self.remove_button = QPushButton("Remove from List")
        self.remove_button.setObjectName("removeRecentButton")
        self.remove_button.setToolTip("Forget this entry (the folder itself is not touched)")
        self.remove_button.clicked.connect(self._on_remove_button_clicked)
        remove_shortcut = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.recent_list)
        remove_shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
        remove_shortcut.activated.connect(self._on_remove_button_clicked)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.open_recent_button)
        buttons.addWidget(self.remove_button)
        recent = QVBoxLayout()
        recent.setSpacing(8)
        recent.addWidget(_section_title("Recent Workspaces"))
        recent.addWidget(self.recent_list, 1)
        recent.addWidget(self.empty_label)
        recent.addLayout(buttons)

        columns = QGridLayout()
        columns.setHorizontalSpacing(36)
        columns.addLayout(start, 0, 0)
        columns.addLayout(recent, 0, 1)
        columns.setColumnStretch(0, 2)
        columns.setColumnStretch(1, 3)

        card = QFrame()
        card.setObjectName("welcomeCard")
        card.setMaximumWidth(920)
        card.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        card_layout = QVBoxLayout(card)
        card_layout.setContentsMargins(0, 0, 0, 0)
        card_layout.setSpacing(28)
        card_layout.addLayout(heading)
        card_layout.addLayout(columns)
        card.setMinimumHeight(360)

        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(card, 8)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(40, 40, 40, 40)
        layout.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(2)

        self.set_recent([])

    @staticmethod
    def _note(text: str) -> QLabel:
        label = QLabel(text)
        label.setWordWrap(True)
        return label

    # -- public API ---------------------------------------------------------------------
    @staticmethod
    def shortcuts() -> list[tuple[str, str]]:
        """The screen's keys, for Help > Keyboard Shortcuts."""
        return [("Enter or double-click", "Open the selected recent workspace"),
                ("Delete", "Remove the selected recent workspace from the list")]

    def set_recent(self, paths: list[Path]) -> None:
        """Show ``paths`` (most recent first); folders without a workspace are marked missing."""
        self._recent = list(paths)
        self._fill_recent()

    def recent_paths(self) -> list[Path]:
        return list(self._recent)

    def item_for(self, path: Path) -> Optional[QListWidgetItem]:
        for i in range(self.recent_list.count()):
            item = self.recent_list.item(i)
            if item.data(PATH_ROLE) == str(path):
                return item
        return None

    # -- internals ----------------------------------------------------------------------
    def _fill_recent(self) -> None:
        current = self.recent_list.currentItem()
        keep = current.data(PATH_ROLE) if current is not None else None
        self.recent_list.clear()
        for path in self._recent:
            missing = not workspace_exists(path)
            name = path.name or str(path)
            suffix = "  \u2014  missing" if missing else ""
            item = QListWidgetItem(f"{name}{suffix}\n{path}")
            item.setData(PATH_ROLE, str(path))
            item.setData(MISSING_ROLE, missing)
            item.setToolTip(f"{path} no longer holds a workspace" if missing else str(path))
            self.recent_list.addItem(item)
            if str(path) == keep:
                self.recent_list.setCurrentItem(item)
        has_items = bool(self._recent)
        self.recent_list.setVisible(has_items)
        self.empty_label.setVisible(not has_items)
        if has_items and self.recent_list.currentItem() is None:
            self.recent_list.setCurrentRow(0)
        self._update_buttons()

    def _update_buttons(self) -> None:
        item = self.recent_list.currentItem()
        self.remove_button.setEnabled(item is not None)
        self.open_recent_button.setEnabled(item is not None and not item.data(MISSING_ROLE))

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self._fill_recent()  # a folder may have appeared or vanished since

    # -- slots --------------------------------------------------------------------------
    @Slot(QListWidgetItem)
    def _on_recent_list_item_activated(self, item: QListWidgetItem) -> None:
        self.recent_activated.emit(Path(item.data(PATH_ROLE)))

    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_recent_list_current_item_changed(self, current, previous) -> None:  # noqa: ARG002
        self._update_buttons()

    @Slot()
    def _on_open_recent_button_clicked(self) -> None:
        item = self.recent_list.currentItem()
        if item is not None:
            self.recent_activated.emit(Path(item.data(PATH_ROLE)))

    @Slot()
    def _on_remove_button_clicked(self) -> None:
        item = self.recent_list.currentItem()
        if item is not None:
            self.recent_removed.emit(Path(item.data(PATH_ROLE)))
