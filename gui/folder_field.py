"""A folder chooser: an editable combo box of recent folders, a Browse button, and folder drag and drop.

Used wherever the window asks for a folder (Data panel, Evaluate, Export, Label);
`local_folder_from_urls` is the same drop rule for the main window.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QUrl, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QPushButton, QWidget


def local_folder_from_urls(urls: list[QUrl]) -> str | None:
    """The first local folder among dropped URLs, or None."""
    for url in urls:
        path = url.toLocalFile()
        if path and os.path.isdir(path):
            return path
    return None



class FolderField(QWidget):
    """An editable combo box of recent folders, a Browse button, and folder drag and drop."""

    chosen = Signal(str)

    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = title
        self.combo = QComboBox()
        self.combo.setEditable(True)
        self.combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(16)
        self.combo.lineEdit().setPlaceholderText("Folder with one subfolder per class")
        self.combo.lineEdit().editingFinished.connect(self._edited)
        self.combo.activated.connect(lambda index: self._emit(self.combo.itemText(index)))
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo, 1)
        layout.addWidget(self.browse)
        self.setAcceptDrops(True)
        self._last = ""

    def path(self) -> str:
        return self.combo.currentText().strip()

    def set_path(self, path: str, emit: bool = True) -> None:
        self.combo.setEditText(path)
        self.combo.setToolTip(path)
        if emit:
            self._emit(path)
        else:
            self._last = path

    def set_recent(self, folders: list[str]) -> None:
        text = self.combo.currentText()
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItems(folders)
        self.combo.setEditText(text)
        self.combo.blockSignals(False)

    def choose_folder(self) -> str:
        """The folder dialog; a method so tests can replace it."""
        start = self.path() if os.path.isdir(self.path()) else os.path.expanduser("~")
        return QFileDialog.getExistingDirectory(self, self.title, start)

    def _browse(self) -> None:
        folder = self.choose_folder()
        if folder:
            self.set_path(folder)

    def _edited(self) -> None:
        if self.path() != self._last:
            self._emit(self.path())

    def _emit(self, path: str) -> None:
        path = path.strip()
        self._last = path
        self.combo.setToolTip(path)
        self.chosen.emit(path)

    def dragEnterEvent(self, event) -> None:
        if local_folder_from_urls(event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        folder = local_folder_from_urls(event.mimeData().urls())
        if folder:
            self.set_path(folder)
            event.acceptProposedAction()
