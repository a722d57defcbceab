"""A summary card of the Data health view: a check's name, its figure (a count, a ratio, or a dash
when it was not checked) and a colour for how it went; clicking it (or Space) selects the check."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from core.modeling.findings import CHECK_TITLES, NO_FIGURE, CardFigure


class SummaryCard(QFrame):
    """A check's name, its number of findings (or a figure), and a colour for how it went; a click
    (or Space) selects it."""

    clicked = Signal()
    COLOURS = {"none": "#98a2b3", "good": "#067647", "bad": "#b42318"}

    def __init__(self, check: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.check = check
        self.setObjectName("healthCard")
        self.setMinimumSize(120, 70)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.title = QLabel(CHECK_TITLES[check])
        self.figure_label = QLabel()
        font = self.figure_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        self.figure_label.setFont(font)
        self.detail = QLabel()
        self.detail.setStyleSheet("color: #667085")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 6, 10, 6)
        layout.setSpacing(0)
        for label in (self.title, self.figure_label, self.detail):
            layout.addWidget(label)
        self._checked = False
        self.show_figure(CardFigure(NO_FIGURE, "", "none"))

    def show_figure(self, shown: CardFigure) -> None:
        self.figure, self.state = shown.figure, shown.state
        self.figure_label.setText(shown.figure)
        self.detail.setText(shown.detail)
        self._restyle()

    def isChecked(self) -> bool:  # Qt-style names, as a checkable button has
        return self._checked

    def setChecked(self, checked: bool) -> None:
        self._checked = checked
        self._restyle()

    def _restyle(self) -> None:
        background, border = ("#eff4ff", "#2563eb") if self._checked else ("#ffffff", "#d0d5dd")
        self.setStyleSheet(
            f"QFrame#healthCard {{ background: {background}; border: 1px solid {border};"
            f" border-left: 5px solid {self.COLOURS[self.state]}; border-radius: 6px; }}"
        )

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(event.position().toPoint()):
            self.clicked.emit()
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.clicked.emit()
            return
        super().keyPressEvent(event)
