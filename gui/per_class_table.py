"""The Evaluate tab's per-class table: precision, recall, F1 and support of each class, then the macro
average in bold; a value under 50% in dark red. It is as tall as its rows (up to a limit, then it
scrolls), so the confusion matrix below it gets the rest of the height."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

PER_CLASS_COLUMNS = ("Class", "Precision", "Recall", "F1", "Support")
MAX_ROWS_IN_VIEW = 9
LOW_SCORE = 0.5  # a precision, recall or F1 under this is shown in red


class PerClassTable(QTableWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(0, len(PER_CLASS_COLUMNS), parent)
        self.setObjectName("classTable")
        self.setHorizontalHeaderLabels(list(PER_CLASS_COLUMNS))
        self.verticalHeader().hide()
        self.setAlternatingRowColors(True)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setShowGrid(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(PER_CLASS_COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self._fit_height()

    def clear_rows(self) -> None:
        self.setRowCount(0)
        self._fit_height()

    def show_result(self, result) -> None:
        """One row per class of a core.modeling.evaluation.EvaluationResult, then the macro average."""
        names = list(result.class_names)
        macro = result.macro_average
        self.setRowCount(len(names) + 1)
        for row, name in enumerate([*names, "Macro average"]):
            values = result.per_class.get(name) if row < len(names) else {**macro, "support": result.total}
            cells = [
                name,
                f"{values['precision']:.1%}",
                f"{values['recall']:.1%}",
                f"{values['f1']:.1%}",
                f"{int(values['support']):,}",
            ]
            for column, text in enumerate(cells):
                self.setItem(row, column, self._cell(text, column, values, is_average=row == len(names)))
        self._fit_height()

    @staticmethod
    def _cell(text: str, column: int, values: dict[str, float], is_average: bool) -> QTableWidgetItem:
        item = QTableWidgetItem(text)
        if column:
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if is_average:
            font = QFont(item.font())
            font.setBold(True)
            item.setFont(font)
        elif column in (1, 2, 3) and values[PER_CLASS_COLUMNS[column].lower()] < LOW_SCORE:
            item.setForeground(Qt.GlobalColor.darkRed)
        return item

    def _fit_height(self) -> None:
        """All rows in view up to MAX_ROWS_IN_VIEW (then it scrolls)."""
        rows = max(self.rowCount(), 3)
        row_height = self.verticalHeader().defaultSectionSize()
        height = self.horizontalHeader().sizeHint().height() + min(rows, MAX_ROWS_IN_VIEW) * row_height
        self.setFixedHeight(height + 2 * self.frameWidth() + 2)
