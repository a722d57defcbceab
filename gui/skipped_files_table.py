"""The files a job could not read as images, with the reason for each (core.data's SkippedFile): a
table (in the Evaluate and Predict tabs) and a dialog around it (the Data panel's "skipped files")."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


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


class SkippedDialog(QDialog):
    """Lists the files the scans of `reports` (core.data.dataset.DatasetReport) could not read."""

    def __init__(self, reports: list, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Skipped files")
        self.resize(760, 360)
        skipped = [file for report in reports for file in report.skipped]
        self.table = SkippedFilesTable("Reason")
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.show_files(skipped)
        self.table.setColumnWidth(0, 420)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{len(skipped)} file(s) will not be used for training:"))
        layout.addWidget(self.table)
        layout.addWidget(buttons)
