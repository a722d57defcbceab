"""The Moves list of the Data health view: every move logged in the dataset folders (core.data.fixes),
newest first, and Undo for the selected one.

A log can come with a dataset from someone else: an entry whose paths lead out of its dataset folder
is listed as refused ("outside this dataset") and cannot be undone; core.data.fixes refuses it too.
An image labeled in from an unlabeled folder goes back there only once the person has confirmed
that folder, so the log alone never decides where a file outside the dataset is written.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QListWidgetItem, QMessageBox, QPushButton, QWidget

from core.data import fixes
from core.errors import FitStudioError
from core.modeling.findings import split_of

MOVE_ROLE = Qt.ItemDataRole.UserRole + 1


class MovesPanel(QWidget):
    """The logged moves of a training (and validation) folder, and Undo."""

    said = Signal(str, bool)  # a line for the status bar: text, is it an error
    dataset_changed = Signal()  # a file was put back

    def __init__(self, train_dir: str, val_dir: str | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.train_dir, self.val_dir = train_dir, val_dir
        self._busy = False
        self.list = QListWidget()
        self.list.setObjectName("moves")
        self.list.setMaximumHeight(110)
        self.list.currentItemChanged.connect(lambda *_: self._show_undo())
        self.undo_button = QPushButton("Undo move")
        self.undo_button.clicked.connect(self.undo_selected)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.undo_button, 0, Qt.AlignmentFlag.AlignTop)
        self.refresh()

    def set_busy(self, busy: bool) -> None:
        """No undo while a check reads the folders."""
        self._busy = busy
        self._show_undo()

    def refresh(self) -> None:
        self.list.clear()
        roots = [r for r in (self.train_dir, self.val_dir) if r and os.path.isdir(r)]
        moves = [(root, move) for root in roots for move in fixes.read_moves(root)]
        for root, move in sorted(moves, key=lambda entry: entry[1].at, reverse=True):
            text = f"{move.at.replace('T', ' ')[:19]}  {split_of(root, self.val_dir)}: {move.describe()}"
            state = f"  (refused: {move.refused})" if move.refused else "  (undone)" if move.undone else ""
            item = QListWidgetItem(text + state)
            item.setData(MOVE_ROLE, (root, move))
            if move.refused:
                item.setToolTip("This log entry points outside its dataset folder: it is never carried out.")
            if move.undone or move.refused:
                item.setForeground(Qt.GlobalColor.gray)
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)
        self._show_undo()

    def selected(self) -> tuple[str, fixes.Move] | None:
        """The selected move and its dataset folder, when it can be undone."""
        item = self.list.currentItem()
        entry = item.data(MOVE_ROLE) if item is not None else None
        return entry if entry is not None and not entry[1].undone and not entry[1].refused else None

    def undo_selected(self) -> None:
        selected = self.selected()
        if selected is None:
            return
        root, move = selected
        if move.action == "label" and not self.confirm_return(move):
            return
        try:
            fixes.undo(root, move.id, origin=move.origin or None)
        except FitStudioError as exc:
            self.said.emit(str(exc), True)
            self.refresh()  # the log may have changed under us: show what it says now
            return
        self.said.emit(f"Put back {move.source}. Check again to see it among the findings.", False)
        self.refresh()
        self.dataset_changed.emit()

    def confirm_return(self, move: fixes.Move) -> bool:
        """Asks before an image goes back out of the dataset, into the folder it was labeled from."""
        answer = QMessageBox.question(
            self, "Put the image back?",
            f"{move.target} was labeled from {move.origin}.\n\nMove it back into {move.origin}?",
        )
        return answer == QMessageBox.StandardButton.Yes

    def _show_undo(self) -> None:
        self.undo_button.setEnabled(not self._busy and self.selected() is not None)
