"""Edit one record by hand: its text fields (or chat turns), scores, label and tags.

The dialog checks the edit with the importer's own rules
(:func:`workbench.data.edit.record_from_fields`) when the user saves; a
problem is shown under the fields, naming the field, and the dialog stays
open with that field focused. The caller stores the accepted
:attr:`RecordEditDialog.record` (on the page's undo stack).
"""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFrame, QGridLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPlainTextEdit, QPushButton, QScrollArea, QSizePolicy, QToolButton,
                               QVBoxLayout, QWidget)

from workbench.data.edit import EditError, record_from_fields
from workbench.data.messages import ROLES
from workbench.store.records import Record

from ..common.render import wrap_mode_for

_ROLE_ORDER = ["system", "user", "assistant", "tool", "developer", "function"]
ROLE_CHOICES = [r for r in _ROLE_ORDER if r in ROLES] + sorted(ROLES - set(_ROLE_ORDER))
MIN_TURN_HEIGHT = 48
MAX_TURN_HEIGHT = 320
_TITLES = {"prompt": "Prompt", "completion": "Completion", "messages": "Conversation", "chosen": "Chosen",
           "rejected": "Rejected"}


def text_fields(kind: str, record: Record) -> list[str]:
    """The text fields an edit of a ``kind`` record shows, in order."""
    if kind == "preference":
        return ["prompt", "chosen", "rejected"]
    if kind == "sft":
        return ["messages"] if record.messages is not None else ["prompt", "completion"]
    if kind == "unpaired":
        return ["prompt", "completion"]
    return ["prompt"]


class TurnRow(QFrame):
    """One chat turn: role, content, and a button removing it."""

    def __init__(self, message: dict, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.extra = {k: v for k, v in message.items() if k not in ("role", "content")}
        self.role = QComboBox()
        self.role.addItems(ROLE_CHOICES)
        role = str(message.get("role", "user"))
        if self.role.findText(role) < 0:
            self.role.addItem(role)   # shown as stored; validation says what is wrong with it
        self.role.setCurrentText(role)
        content = message.get("content", "")
        text = content if isinstance(content, str) else str(content)
        self.content = QPlainTextEdit()
        self.content.setWordWrapMode(wrap_mode_for(text))  # a long line must not freeze the dialog
        self.content.setPlainText(text)
        self.content.setTabChangesFocus(True)
        # As tall as its text (within limits), so a one-line system turn does not take the
        # room a long answer needs; it follows the text while the user types.
        self.content.document().documentLayout().documentSizeChanged.connect(self._fit_content)
        self._fit_content()
        self.remove_button = QToolButton()
        self.remove_button.setText("Remove")
        self.remove_button.setToolTip("Remove this turn")
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.role)
        top.addStretch(1)
        top.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 4)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.content)

    def _fit_content(self, *args) -> None:
        lines = max(1.0, self.content.document().size().height())   # plain-text layout: lines
        frame = 2 * self.content.frameWidth() + 2 * int(self.content.document().documentMargin()) + 4
        height = int(lines * self.content.fontMetrics().lineSpacing()) + frame
        self.content.setFixedHeight(max(MIN_TURN_HEIGHT, min(MAX_TURN_HEIGHT, height)))

    def value(self) -> dict:
        return {"role": self.role.currentText(), "content": self.content.toPlainText(), **self.extra}


class TurnsEditor(QWidget):
    """An editable list of chat turns (role + content each)."""

    def __init__(self, messages: list, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.rows: list[TurnRow] = []
        self._rows_layout = QVBoxLayout()
        self._rows_layout.setContentsMargins(0, 0, 0, 0)
        self._rows_layout.setSpacing(4)
        self.add_button = QPushButton("Add turn")
        self.add_button.clicked.connect(self._on_add_clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._rows_layout)
        layout.addWidget(self.add_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        for message in messages or []:
            self.add_turn(message if isinstance(message, dict) else {"role": "user", "content": str(message)})

    def add_turn(self, message: Optional[dict] = None) -> TurnRow:
        if message is None:
            last = self.rows[-1].role.currentText() if self.rows else "assistant"
            message = {"role": "assistant" if last == "user" else "user", "content": ""}
        row = TurnRow(message)
        row.remove_button.clicked.connect(lambda: self.remove_turn(row))
        self.rows.append(row)
        self._rows_layout.addWidget(row)
        return row

    def remove_turn(self, row: TurnRow) -> None:
        self.rows.remove(row)
        row.setParent(None)
        row.deleteLater()

    def value(self) -> list[dict]:
        return [row.value() for row in self.rows]

    def setFocus(self) -> None:  # noqa: N802 - focus the first turn's text
        if self.rows:
            self.rows[0].content.setFocus()
        else:
            self.add_button.setFocus()

    def _on_add_clicked(self) -> None:
        self.add_turn().content.setFocus()


class RecordEditDialog(QDialog):
    """Edit ``record`` of a dataset of ``kind`` and ``style``; :attr:`record` holds the result."""

    def __init__(self, kind: str, style: str, record: Record, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.kind, self.style, self.original = kind, style, record
        self.record: Optional[Record] = None
        self.setWindowTitle(f"Edit record #{record.id}")
        self.editors: dict[str, Any] = {}

        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(6)
        fields = text_fields(kind, record)
        if kind == "preference":
            self._place(grid, "prompt", record.prompt, 0, 0, 2)
            self._place(grid, "chosen", record.chosen, 2, 0, 1)
            self._place(grid, "rejected", record.rejected, 2, 1, 1)
            grid.setRowStretch(3, 2)    # the responses get twice the prompt's height
            for col, name in enumerate(("score_chosen", "score_rejected")):
                edit = QLineEdit("" if getattr(record, name) is None else f"{getattr(record, name):g}")
                edit.setPlaceholderText("no score")
                edit.setObjectName(name)
                box = QHBoxLayout()
                box.addWidget(QLabel("Score:"))
                box.addWidget(edit, 1)
                grid.addLayout(box, 4, col)
                self.editors[name] = edit
        else:
            for i, name in enumerate(fields):
                self._place(grid, name, getattr(record, name), 2 * i, 0, 2)
        row = grid.rowCount()
        if kind == "unpaired":
            self.label_combo = QComboBox()
            self.label_combo.addItem("good (desirable)", True)
            self.label_combo.addItem("bad (undesirable)", False)
            self.label_combo.setCurrentIndex(0 if record.label else 1)
            self.editors["label"] = self.label_combo
            grid.addWidget(QLabel("Label:"), row, 0, 1, 2)
            grid.addWidget(self.label_combo, row + 1, 0, 1, 2)
            row += 2
        self.tags_edit = QLineEdit(", ".join(record.tags or ()))
        self.tags_edit.setPlaceholderText("comma-separated, e.g. math, hard")
        self.editors["tags"] = self.tags_edit
        tags_box = QHBoxLayout()
        tags_box.addWidget(QLabel("Tags:"))
        tags_box.addWidget(self.tags_edit, 1)
        grid.addLayout(tags_box, row, 0, 1, 2)

        body = QWidget()
        body.setLayout(grid)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(body)

        note = QLabel("Saving stores the edit as a new record and hides the original, which frozen snapshots "
                      "keep; Undo brings the original back.")
        note.setWordWrap(True)
        note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.error_label = QLabel()
        self.error_label.setObjectName("editError")
        self.error_label.setWordWrap(True)
        self.error_label.setTextFormat(Qt.TextFormat.PlainText)
        font = QFont(self.error_label.font())
        font.setWeight(QFont.Weight.DemiBold)
        self.error_label.setFont(font)
        self.error_label.setVisible(False)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(note)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self.resize(900, 640 if kind == "preference" or style == "conversational" else 520)

    @property
    def save_button(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Save)

    def _place(self, grid: QGridLayout, name: str, value: Any, row: int, col: int, span: int) -> None:
        title = QLabel(_TITLES.get(name, name))
        title.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        font = QFont(title.font())
        font.setWeight(QFont.Weight.DemiBold)
        title.setFont(font)
        if self.style == "conversational" or name == "messages":
            editor: QWidget = TurnsEditor(value if isinstance(value, list) else [])
        else:
            text = "" if value is None else str(value)
            editor = QPlainTextEdit()
            editor.setWordWrapMode(wrap_mode_for(text))  # a long line must not freeze the dialog
            editor.setPlainText(text)
            editor.setTabChangesFocus(True)
            editor.setMinimumHeight(90)
        editor.setObjectName(name)
        editor.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        grid.addWidget(title, row, col, 1, span)
        grid.addWidget(editor, row + 1, col, 1, span)
        grid.setRowStretch(row + 1, 1)
        self.editors[name] = editor

    def field_values(self) -> dict[str, Any]:
        """What the user entered, as :func:`record_from_fields` takes it."""
        out: dict[str, Any] = {}
        for name, editor in self.editors.items():
            if isinstance(editor, TurnsEditor):
                out[name] = editor.value()
            elif isinstance(editor, QPlainTextEdit):
                out[name] = editor.toPlainText()
            elif isinstance(editor, QComboBox):
                out[name] = editor.currentData()
            elif isinstance(editor, QLineEdit):
                out[name] = editor.text()
        return out

    def accept(self) -> None:  # noqa: D401 - Qt override: validate before closing
        try:
            record = record_from_fields(self.kind, self.style, self.field_values())
        except EditError as exc:
            self.show_error(exc.field, exc.message)
            return
        self.record = record
        super().accept()

    def show_error(self, field: str, message: str) -> None:
        title = _TITLES.get(field.split("[")[0], field)
        self.error_label.setText(f"\u26a0 {title} ({field}): {message}")
        self.error_label.setVisible(True)
        editor = self.editors.get(field.split("[")[0])
        if editor is not None:
            editor.setFocus()
