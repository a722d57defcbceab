"""A table of the files a job could not read as images: the file, and why (core.data's SkippedFile).
Shared by the Evaluate and Predict tabs."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget


class SkippedFilesTable(QTableWidget):
    def __init__(self, reason_title: str, parent: QWidget | None = None):
        super().__init__(0, 2, parent)
        self.setObjectName("resultTable")
        self.setHorizontalHeaderLabels(["File", reason_title])
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setWordWrap(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)

    def show_files(self, skipped: list) -> None:
        """One row per skipped file (anything with `path` and `reason`); the full path as its tooltip."""
        self.setRowCount(len(skipped))
        for row, item in enumerate(skipped):
            self.setItem(row, 0, QTableWidgetItem(item.path))
            self.setItem(row, 1, QTableWidgetItem(item.reason))
            self.item(row, 0).setToolTip(item.path)
