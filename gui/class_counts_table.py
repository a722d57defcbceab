"""The Data panel's table of classes: how many training and validation images each class has, each
count drawn as a bar proportional to the largest. With a split instead of a validation folder, the
counts are those core.data.dataset.stratified_split will produce."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyledItemDelegate,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from core.data.dataset import DatasetReport

COUNT_ROLE = Qt.ItemDataRole.UserRole + 1  # the count as a fraction of the largest: the bar's length
BAR_COLOUR_ROLE = Qt.ItemDataRole.UserRole
TRAIN_COLOUR, VAL_COLOUR = "#9ec5fe", "#a3d9b1"


def split_counts(count: int, fraction: float) -> tuple[int, int]:
    """(train, validation) of one class as core.data.dataset.stratified_split will split it."""
    n_val = min(max(round(count * fraction), 1), count - 1) if count >= 2 else 0
    return count - n_val, n_val


def class_count_rows(
    train: DatasetReport | None, val: DatasetReport | None, split: float | None
) -> list[tuple[str, int | None, int | None]]:
    """(class, training images, validation images) per class of either folder; with `split` (a
    fraction) the training folder's counts are split instead of reading `val`."""
    if train is None or not train.class_names:
        return []
    names = list(train.class_names)
    if val is not None:
        names += [n for n in val.class_names if n not in names]
    rows = []
    for name in names:
        n_train = train.counts.get(name)
        if split is not None and n_train is not None:
            rows.append((name, *split_counts(n_train, split)))
        else:
            rows.append((name, n_train, val.counts.get(name) if val else None))
    return rows


class CountBarDelegate(QStyledItemDelegate):
    """Draws a count cell as a bar proportional to the largest count, with the number on it."""

    def paint(self, painter: QPainter, option, index) -> None:
        fraction = index.data(COUNT_ROLE)
        if isinstance(fraction, float) and fraction > 0:
            rect = option.rect.adjusted(3, 4, -3, -4)
            bar = QRect(rect.left(), rect.top(), max(2, int(rect.width() * fraction)), rect.height())
            painter.save()
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(index.data(BAR_COLOUR_ROLE) or TRAIN_COLOUR))
            painter.drawRoundedRect(bar, 3, 3)
            painter.restore()
        super().paint(painter, option, index)


class ClassCountsTable(QTableWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(0, 3, parent)
        self.setObjectName("classTable")
        self.setHorizontalHeaderLabels(["Class", "Training", "Validation"])
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.verticalHeader().setVisible(False)
        self.setShowGrid(False)
        self.setAlternatingRowColors(True)
        self.setMinimumHeight(90)
        self.setMaximumHeight(160)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Fixed)
            self.setColumnWidth(column, 96)
            self.setItemDelegateForColumn(column, CountBarDelegate(self))

    def show_counts(
        self, train: DatasetReport | None, val: DatasetReport | None, split: float | None
    ) -> None:
        """The classes of the reports (see class_count_rows); the header says whether validation is
        split off."""
        val_header = "Validation" if split is None else "Val (split)"
        self.setHorizontalHeaderLabels(["Class", "Training", val_header])
        rows = class_count_rows(train, val, split)
        largest = max([max(t or 0, v or 0) for _, t, v in rows] or [1]) or 1
        self.setRowCount(len(rows))
        for row, (name, n_train, n_val) in enumerate(rows):
            self.setItem(row, 0, QTableWidgetItem(name))
            self.setItem(row, 1, _count_item(n_train, largest, TRAIN_COLOUR))
            self.setItem(row, 2, _count_item(n_val, largest, VAL_COLOUR))


def _count_item(count: int | None, largest: int, colour: str) -> QTableWidgetItem:
    item = QTableWidgetItem("-" if count is None else str(count))
    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
    if count is not None:
        item.setData(COUNT_ROLE, count / largest)
        item.setData(BAR_COLOUR_ROLE, colour)
    return item
