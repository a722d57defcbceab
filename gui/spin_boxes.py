"""Spin boxes for training settings: an integer box bounded by core.config.LIMITS, and a box for values
spanning decades (learning rates) that shows 1e-05 rather than 0.00001 and steps 1-2-5 per decade."""

from __future__ import annotations

import math
import re

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox, QWidget

from core.config import LIMITS

ONE_TWO_FIVE = (1.0, 2.0, 5.0)


def limited_spin_box(name: str, suffix: str = "", step: int = 1) -> QSpinBox:
    """An integer spin box over core.config.LIMITS[name], so a value the engine rejects cannot be entered."""
    box = QSpinBox()
    low, high = LIMITS[name]
    box.setRange(int(low), int(high))
    box.setSingleStep(step)
    box.setSuffix(suffix)
    box.setAccelerated(True)
    return box


class ScientificSpinBox(QDoubleSpinBox):
    """A spin box for values spanning decades (learning rates): shows 0.001 or 1e-05, steps 1-2-5."""

    def __init__(self, low: float, high: float, parent: QWidget | None = None):
        super().__init__(parent)
        self.setDecimals(12)  # keeps tiny values exact; the text shows only significant digits
        self.setRange(low, high)

    def textFromValue(self, value: float) -> str:
        return f"{value:.3g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        stripped = text.strip()
        if not re.fullmatch(r"[0-9.eE+-]*", stripped):
            return QValidator.State.Invalid, text, pos
        try:
            value = float(stripped)
        except ValueError:
            return QValidator.State.Intermediate, text, pos
        if self.minimum() <= value <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos

    def stepBy(self, steps: int) -> None:
        grid = one_two_five_grid(self.minimum(), self.maximum())
        current = self.value()
        if steps > 0:
            above = [v for v in grid if v > current * (1 + 1e-9)]
            target = above[min(steps, len(above)) - 1] if above else self.maximum()
        else:
            below = [v for v in grid if v < current * (1 - 1e-9)]
            target = below[-min(-steps, len(below))] if below else self.minimum()
        self.setValue(target)


def one_two_five_grid(low: float, high: float) -> list[float]:
    values = []
    for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for mantissa in ONE_TWO_FIVE:
            value = float(f"{mantissa}e{exponent}")
            if low <= value <= high:
                values.append(value)
    return values
