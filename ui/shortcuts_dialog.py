"""Help > Keyboard Shortcuts: every shortcut of the app, grouped, with a filter.

The entries come from :meth:`ui.main_window.MainWindow.shortcut_entries`
(menu actions, the welcome screen, and each page's optional
``shortcuts()``; see :mod:`ui.common.page`).
"""

from __future__ import annotations

from typing import Iterable, Optional

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QLineEdit, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)


class ShortcutsDialog(QDialog):
    """A read-only list of ``(section, keys, description)`` entries."""

    def __init__(self, entries: Iterable[tuple[str, str, str]], parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard Shortcuts")
        self.resize(600, 560)
        self.entries = list(entries)

        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by key or action\u2026")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._on_filter_edit_text_changed)

        self.tree = QTreeWidget()
        self.tree.setObjectName("shortcutsTree")
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Action", "Shortcut"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QTreeWidget.SelectionMode.NoSelection)
        self.tree.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)

        sections: dict[str, QTreeWidgetItem] = {}
        for section, keys, what in self.entries:
            parent_item = sections.get(section)
            if parent_item is None:
                parent_item = QTreeWidgetItem(self.tree, [section, ""])
                font = QFont(parent_item.font(0))
                font.setWeight(QFont.Weight.DemiBold)
                parent_item.setFont(0, font)
                parent_item.setFirstColumnSpanned(True)
                sections[section] = parent_item
            QTreeWidgetItem(parent_item, [what, keys])
        self.tree.expandAll()

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.filter_edit)
        layout.addWidget(self.tree, 1)
        layout.addWidget(buttons)

    def visible_entries(self) -> list[tuple[str, str, str]]:
        """The entries the filter leaves visible, as ``(section, keys, description)``."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            section = self.tree.topLevelItem(i)
            for j in range(section.childCount()):
                child = section.child(j)
                if not child.isHidden():
                    out.append((section.text(0), child.text(1), child.text(0)))
        return out

    @Slot(str)
    def _on_filter_edit_text_changed(self, text: str) -> None:
        needle = text.strip().lower()
        for i in range(self.tree.topLevelItemCount()):
            section = self.tree.topLevelItem(i)
            shown = 0
            for j in range(section.childCount()):
                child = section.child(j)
                hit = not needle or needle in child.text(0).lower() or needle in child.text(1).lower()
                child.setHidden(not hit)
                shown += hit
            section.setHidden(shown == 0)
