"""The confusion matrix as a heatmap: counts in the cells, class names on both axes, click a cell.

Colour is the row-normalised value (the share of a true class that went to each prediction): blue
on the diagonal (right), red off it (mistakes), so a glance finds where the model goes wrong.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

_RIGHT = QColor("#1d4ed8")
_WRONG = QColor("#d92d20")
_EMPTY = QColor("#f9fafb")


def _blend(colour: QColor, fraction: float) -> QColor:
    """White -> colour as fraction goes 0 -> 1 (a little tint for any non-zero value)."""
    fraction = 0.0 if fraction <= 0 else 0.08 + 0.92 * min(1.0, fraction)
    return QColor(
        round(255 + (colour.red() - 255) * fraction),
        round(255 + (colour.green() - 255) * fraction),
        round(255 + (colour.blue() - 255) * fraction),
    )


class ConfusionHeatmap(QWidget):
    cell_clicked = Signal(int, int)  # true class, predicted class

    MARGIN = 8
    AXIS_TITLE = 18

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("confusionHeatmap")
        self.setMouseTracking(True)
        self.setMinimumSize(220, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.matrix = np.zeros((0, 0), dtype=np.int64)
        self.class_names: list[str] = []
        self.selected: tuple[int, int] | None = None
        self._hover: tuple[int, int] | None = None

    # --- data --------------------------------------------------------------------------------

    def set_matrix(self, matrix: np.ndarray, class_names: list[str]) -> None:
        matrix = np.asarray(matrix, dtype=np.int64)
        if matrix.shape != (len(class_names), len(class_names)):
            raise ValueError(f"a {len(class_names)}-class matrix is square, not {matrix.shape}")
        self.matrix, self.class_names = matrix, list(class_names)
        self.selected, self._hover = None, None
        self.updateGeometry()
        self.update()

    def clear(self) -> None:
        self.set_matrix(np.zeros((0, 0), dtype=np.int64), [])

    def select(self, true_label: int | None, predicted_label: int | None = None) -> None:
        self.selected = None if true_label is None else (true_label, predicted_label)
        self.update()

    def row_fractions(self) -> np.ndarray:
        totals = self.matrix.sum(axis=1, keepdims=True)
        return np.divide(self.matrix, totals, out=np.zeros(self.matrix.shape), where=totals > 0)

    def cell_colour(self, true_label: int, predicted_label: int) -> QColor:
        fraction = float(self.row_fractions()[true_label, predicted_label])
        if self.matrix[true_label, predicted_label] == 0:
            return _EMPTY
        return _blend(_RIGHT if true_label == predicted_label else _WRONG, fraction)

    # --- geometry ----------------------------------------------------------------------------

    def _label_font(self) -> QFont:
        font = QFont(self.font())
        n = len(self.class_names)
        if n > 12:
            font.setPointSizeF(max(6.5, font.pointSizeF() - 1.5))
        return font

    def _layout(self) -> tuple[QRect, float, bool]:
        """(grid rectangle, cell size, column labels rotated)."""
        n = max(len(self.class_names), 1)
        metrics = QFontMetrics(self._label_font())
        row_label_w = min(
            max((metrics.horizontalAdvance(name) for name in self.class_names), default=0) + 10, 160
        )
        area = self.rect().adjusted(self.MARGIN, self.MARGIN, -self.MARGIN, -self.MARGIN)
        left = area.left() + self.AXIS_TITLE + row_label_w
        longest = max((metrics.horizontalAdvance(name) for name in self.class_names), default=0)
        available_w = area.right() - left
        cell = available_w / n
        rotated = longest + 8 > cell
        column_label_h = (min(longest, 140) + 8) if rotated else metrics.height() + 6
        top = area.top() + self.AXIS_TITLE + column_label_h
        cell = max(4.0, min(cell, (area.bottom() - top) / n, 110.0))
        spare = available_w - cell * n  # centre the grid in the room it does not use
        left += max(0, round(spare / 2) - 20)
        grid = QRect(left, top, round(cell * n), round(cell * n))
        return grid, cell, rotated

    def cell_rect(self, true_label: int, predicted_label: int) -> QRect:
        grid, cell, _ = self._layout()
        return QRectF(
            grid.left() + predicted_label * cell, grid.top() + true_label * cell, cell, cell
        ).toRect()

    def cell_at(self, point: QPoint) -> tuple[int, int] | None:
        n = len(self.class_names)
        if n == 0:
            return None
        grid, cell, _ = self._layout()
        if not grid.contains(point):
            return None
        row = int((point.y() - grid.top()) // cell)
        column = int((point.x() - grid.left()) // cell)
        if 0 <= row < n and 0 <= column < n:
            return row, column
        return None

    def sizeHint(self) -> QSize:
        n = max(len(self.class_names), 3)
        side = min(60 * n + 160, 640)
        return QSize(side, side)

    def hasHeightForWidth(self) -> bool:
        return False

    # --- painting ----------------------------------------------------------------------------

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("#ffffff"))
        n = len(self.class_names)
        if n == 0:
            painter.setPen(QColor("#667085"))
            painter.drawText(
                self.rect(),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                "The confusion matrix appears here after an evaluation.",
            )
            return
        grid, cell, rotated = self._layout()
        fractions = self.row_fractions()
        label_font = self._label_font()
        metrics = QFontMetrics(label_font)
        count_font = QFont(self.font())
        count_font.setBold(True)
        count_font.setPointSizeF(max(6.5, min(13.0, cell / 4.2)))
        share_font = QFont(self.font())
        share_font.setPointSizeF(max(6.0, min(9.0, cell / 7.0)))
        show_share = cell >= 46
        show_counts = cell >= 16
        for row in range(n):
            for column in range(n):
                rect = QRectF(grid.left() + column * cell, grid.top() + row * cell, cell, cell)
                colour = self.cell_colour(row, column)
                painter.setPen(QPen(QColor("#ffffff"), 1.5))
                painter.setBrush(colour)
                painter.drawRect(rect)
                if not show_counts:
                    continue
                count = int(self.matrix[row, column])
                dark = colour.lightness() < 150
                painter.setPen(QColor("#ffffff") if dark else QColor("#101828" if count else "#98a2b3"))
                painter.setFont(count_font)
                if show_share and count:
                    upper = QRectF(rect.left(), rect.top(), rect.width(), rect.height() * 0.62)
                    painter.drawText(
                        upper, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom, str(count)
                    )
                    painter.setFont(share_font)
                    painter.setPen(QColor("#e0eaff") if dark else QColor("#475467"))
                    lower = QRectF(
                        rect.left(), rect.top() + rect.height() * 0.62, rect.width(), rect.height() * 0.3
                    )
                    painter.drawText(
                        lower,
                        Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                        f"{fractions[row, column]:.0%}",
                    )
                else:
                    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(count))
        for cell_index, colour, width in ((self._hover, "#667085", 1.5), (self.selected, "#101828", 2.5)):
            if cell_index is not None and cell_index[1] is not None:
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.setPen(QPen(QColor(colour), width))
                row, column = cell_index
                painter.drawRect(
                    QRectF(grid.left() + column * cell, grid.top() + row * cell, cell, cell).adjusted(
                        1, 1, -1, -1
                    )
                )
        # class names: rows (true) on the left, columns (predicted) on top
        painter.setFont(label_font)
        painter.setPen(QColor("#344054"))
        for i, name in enumerate(self.class_names):
            row_rect = QRectF(
                self.MARGIN + self.AXIS_TITLE,
                grid.top() + i * cell,
                grid.left() - self.MARGIN - self.AXIS_TITLE - 6,
                cell,
            )
            painter.drawText(
                row_rect,
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                metrics.elidedText(name, Qt.TextElideMode.ElideRight, int(row_rect.width())),
            )
            x = grid.left() + (i + 0.5) * cell
            if rotated:
                painter.save()
                painter.translate(x + metrics.ascent() / 2 - 1, grid.top() - 6)
                painter.rotate(-60)
                painter.drawText(0, 0, metrics.elidedText(name, Qt.TextElideMode.ElideRight, 140))
                painter.restore()
            else:
                column_rect = QRectF(
                    grid.left() + i * cell, grid.top() - metrics.height() - 6, cell, metrics.height() + 2
                )
                painter.drawText(
                    column_rect,
                    Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom,
                    metrics.elidedText(name, Qt.TextElideMode.ElideRight, int(cell) - 4),
                )
        title_font = QFont(self.font())
        title_font.setBold(True)
        painter.setFont(title_font)
        painter.setPen(QColor("#475467"))
        painter.drawText(
            QRectF(grid.left(), self.MARGIN, grid.width(), self.AXIS_TITLE),
            Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
            "Predicted class",
        )
        painter.save()
        widest = max(metrics.horizontalAdvance(name) for name in self.class_names)
        title_x = max(self.MARGIN, grid.left() - 6 - min(widest, 160) - self.AXIS_TITLE - 4)
        painter.translate(title_x, grid.top() + grid.height() / 2)
        painter.rotate(-90)
        painter.drawText(
            QRectF(-grid.height() / 2, 0, grid.height(), self.AXIS_TITLE),
            Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
            "True class",
        )
        painter.restore()

    # --- mouse -------------------------------------------------------------------------------

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position().toPoint())
        if cell != self._hover:
            self._hover = cell
            self.setCursor(Qt.CursorShape.PointingHandCursor if cell else Qt.CursorShape.ArrowCursor)
            self.update()
        if cell is not None:
            QToolTip.showText(event.globalPosition().toPoint(), self.describe_cell(*cell), self)
        else:
            QToolTip.hideText()
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:
        self._hover = None
        self.update()
        super().leaveEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position().toPoint())
        if cell is not None and event.button() == Qt.MouseButton.LeftButton:
            self.selected = cell
            self.update()
            self.cell_clicked.emit(*cell)
            return
        super().mousePressEvent(event)

    def describe_cell(self, true_label: int, predicted_label: int) -> str:
        count = int(self.matrix[true_label, predicted_label])
        total = int(self.matrix[true_label].sum())
        true_name, predicted_name = self.class_names[true_label], self.class_names[predicted_label]
        share = f" ({count / total:.0%} of {true_name})" if total else ""
        images = f"{count} image{'s' if count != 1 else ''}"
        if true_label == predicted_label:
            return f"{true_name} recognised correctly: {images}{share}. Click to list them."
        return f"{true_name} predicted as {predicted_name}: {images}{share}. Click to list them."
