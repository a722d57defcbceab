"""The settings panel: every TrainingConfig field that is not about the data folders.

Each widget's range comes from core.config.LIMITS, so a value the engine would reject cannot be
entered.
"""

from __future__ import annotations

import math
import re

from PySide6.QtCore import Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.config import LIMITS, MODEL_NAMES, Augmentation, TrainingConfig
from gui.placement_panel import PlacementPanel

MODEL_HINTS = {
    "small-cnn": "small CNN trained from scratch: fast, good for simple images",
    "mobilenetv2": "MobileNetV2 transfer learning: light, pretrained on ImageNet when cached",
    "efficientnetb0": "EfficientNetB0 transfer learning: most accurate, slowest",
}
RESIZE_LABELS = {"stretch": "Stretch to square", "crop": "Centre crop to square"}
_ONE_TWO_FIVE = (1.0, 2.0, 5.0)
CACHE_MEMORY_MAX_MB = 1024 * 1024  # 1 TB: the engine has no upper limit; a spin box needs one


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
        grid = _one_two_five_grid(self.minimum(), self.maximum())
        current = self.value()
        if steps > 0:
            above = [v for v in grid if v > current * (1 + 1e-9)]
            target = above[min(steps, len(above)) - 1] if above else self.maximum()
        else:
            below = [v for v in grid if v < current * (1 - 1e-9)]
            target = below[-min(-steps, len(below))] if below else self.minimum()
        self.setValue(target)


def _one_two_five_grid(low: float, high: float) -> list[float]:
    values = []
    for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for mantissa in _ONE_TWO_FIVE:
            value = float(f"{mantissa}e{exponent}")
            if low <= value <= high:
                values.append(value)
    return values


def _int_spin(name: str, suffix: str = "", step: int = 1) -> QSpinBox:
    box = QSpinBox()
    low, high = LIMITS[name]
    box.setRange(int(low), int(high))
    box.setSingleStep(step)
    box.setSuffix(suffix)
    box.setAccelerated(True)
    return box


class SettingsPanel(QGroupBox):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Model and training", parent)
        self.epochs = _int_spin("epochs")
        self.batch_size = _int_spin("batch_size")
        self.image_size = _int_spin("image_size", " px", step=16)
        self.model = QComboBox()
        for name in MODEL_NAMES:
            self.model.addItem(name, name)
            self.model.setItemData(self.model.count() - 1, MODEL_HINTS.get(name, ""), 3)  # tooltip role
        self.learning_rate = ScientificSpinBox(*LIMITS["learning_rate"])
        self.resize_mode = QComboBox()
        for mode, label in RESIZE_LABELS.items():
            self.resize_mode.addItem(label, mode)
        self.seed = _int_spin("seed")
        self.decode_threads = QSpinBox()
        self.decode_threads.setRange(0, 64)
        self.decode_threads.setSpecialValueText("Automatic (one per core)")
        self.early_stopping_patience = _int_spin("early_stopping_patience", " epochs")
        self.early_stopping_patience.setSpecialValueText("Off")
        self.reduce_lr_patience = _int_spin("reduce_lr_patience", " epochs")
        self.reduce_lr_patience.setSpecialValueText("Off")
        self.reduce_lr_factor = QDoubleSpinBox()
        self.reduce_lr_factor.setRange(*LIMITS["reduce_lr_factor"])
        self.reduce_lr_factor.setDecimals(2)
        self.reduce_lr_factor.setSingleStep(0.05)
        self.reduce_lr_factor.setPrefix("\u00d7 ")
        self.cache = QCheckBox("Keep decoded images")
        self.cache_memory_mb = QSpinBox()
        self.cache_memory_mb.setRange(0, CACHE_MEMORY_MAX_MB)
        self.cache_memory_mb.setSingleStep(256)
        self.cache_memory_mb.setSuffix(" MB")
        self.cache_memory_mb.setSpecialValueText("Automatic (¼ of RAM)")
        self.cache_memory_mb.setAccelerated(True)
        self.augment = {
            "flip": QCheckBox("Flip"),
            "rotation": QCheckBox("Rotate"),
            "zoom": QCheckBox("Zoom"),
            "contrast": QCheckBox("Contrast"),
        }
        self.out_dir = QLineEdit()
        self.out_dir.setPlaceholderText("runs")
        self.out_browse = QToolButton(text="…")
        self.out_browse.setToolTip("Choose the folder where run folders are created")
        self.out_browse.clicked.connect(self._browse_out_dir)
        self.placement = PlacementPanel()
        self._build_layout()
        self._add_tooltips()
        self._connect_changes()

    def _build_layout(self) -> None:
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setVerticalSpacing(5)
        form.addRow("Model", self.model)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Image size", self.image_size)
        form.addRow("Resize", self.resize_mode)
        form.addRow("Learning rate", self.learning_rate)
        form.addRow("Early stopping", self.early_stopping_patience)
        lr_row = QHBoxLayout()
        lr_row.addWidget(self.reduce_lr_patience, 3)
        lr_row.addWidget(self.reduce_lr_factor, 2)
        form.addRow("Reduce LR", lr_row)
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        for index, box in enumerate(self.augment.values()):
            grid.addWidget(box, 0, index)
        augment = QWidget()
        augment.setLayout(grid)
        form.addRow("Augmentation", augment)
        form.addRow("Seed", self.seed)
        form.addRow("Decode threads", self.decode_threads)
        form.addRow("Image cache", self.cache)
        form.addRow("Cache memory", self.cache_memory_mb)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_dir, 1)
        out_row.addWidget(self.out_browse)
        form.addRow("Output folder", out_row)
        outer = QVBoxLayout(self)
        outer.addLayout(form)
        outer.addWidget(self.placement)

    def _add_tooltips(self) -> None:
        self.model.setToolTip("\n".join(f"{k}: {v}" for k, v in MODEL_HINTS.items()))
        self.epochs.setToolTip("Passes over the training images")
        self.batch_size.setToolTip("Images per training step; lower it if memory runs out")
        self.image_size.setToolTip("Side of the square model input; transfer models work best at 224")
        self.learning_rate.setToolTip("Step size of the Adam optimizer (arrow keys step 1-2-5 per decade)")
        self.seed.setToolTip("Same seed, same data and settings: same shuffling and initial weights")
        self.decode_threads.setToolTip("Threads that decode images while the model trains")
        self.early_stopping_patience.setToolTip(
            "Stop when the validation loss has not improved for this many epochs "
            "(the best epoch is kept as model.keras). Off: always train every epoch."
        )
        self.reduce_lr_patience.setToolTip(
            "Reduce the learning rate on a plateau: multiply it by the factor when the validation loss "
            "has not improved for this many epochs. Off: keep the learning rate."
        )
        self.reduce_lr_factor.setToolTip("What the learning rate is multiplied by on a plateau")
        self.cache.setToolTip(
            "Decode every image once and keep the pixels for the following epochs: in memory while "
            "the budget lasts, else in a temporary file on disk"
        )
        self.cache_memory_mb.setToolTip(
            "Memory the decoded-image cache may use; what does not fit goes to a disk file. "
            "Automatic: a quarter of this computer's memory"
        )
        self.out_dir.setToolTip("Each run creates a new folder here with the model, history and report")

    def _connect_changes(self) -> None:
        for box in (self.epochs, self.batch_size, self.image_size, self.seed, self.decode_threads,
                    self.early_stopping_patience, self.reduce_lr_patience, self.reduce_lr_factor,
                    self.cache_memory_mb):
            box.valueChanged.connect(self.changed)
        self.cache.toggled.connect(self.changed)
        # A setting that does nothing in the current state is shown disabled, not hidden.
        self.reduce_lr_patience.valueChanged.connect(
            lambda value: self.reduce_lr_factor.setEnabled(value > 0))
        self.cache.toggled.connect(self.cache_memory_mb.setEnabled)
        self.learning_rate.valueChanged.connect(self.changed)
        self.model.currentIndexChanged.connect(self.changed)
        self.resize_mode.currentIndexChanged.connect(self.changed)
        for box in self.augment.values():
            box.toggled.connect(self.changed)
        self.out_dir.textChanged.connect(self.changed)
        self.placement.changed.connect(self.changed)

    def _browse_out_dir(self) -> None:
        folder = self.choose_folder("Output folder for runs", self.out_dir.text() or ".")
        if folder:
            self.out_dir.setText(folder)

    def choose_folder(self, title: str, start: str) -> str:
        """The folder dialog; a method so tests can replace it."""
        return QFileDialog.getExistingDirectory(self, title, start)

    # --- TrainingConfig mapping -------------------------------------------------------------

    def set_config(self, config: TrainingConfig) -> None:
        self.epochs.setValue(config.epochs)
        self.batch_size.setValue(config.batch_size)
        self.image_size.setValue(config.image_size)
        self.model.setCurrentIndex(max(0, self.model.findData(config.model)))
        self.resize_mode.setCurrentIndex(max(0, self.resize_mode.findData(config.resize_mode)))
        self.learning_rate.setValue(config.learning_rate)
        self.seed.setValue(config.seed)
        for name, box in self.augment.items():
            box.setChecked(getattr(config.augmentation, name))
        self.out_dir.setText(config.out_dir)
        self.decode_threads.setValue(config.decode_threads)
        self.early_stopping_patience.setValue(config.early_stopping_patience)
        self.reduce_lr_patience.setValue(config.reduce_lr_patience)
        self.reduce_lr_factor.setValue(config.reduce_lr_factor)
        self.reduce_lr_factor.setEnabled(config.reduce_lr_patience > 0)
        self.cache.setChecked(config.cache)
        self.cache_memory_mb.setValue(config.cache_memory_mb)
        self.cache_memory_mb.setEnabled(config.cache)
        self.placement.set_config(config)

    def apply_to(self, config: TrainingConfig) -> TrainingConfig:
        """`config` with every field this panel edits replaced by the panel's values."""
        return self.placement.apply_to(config).replace(
            epochs=self.epochs.value(),
            batch_size=self.batch_size.value(),
            image_size=self.image_size.value(),
            model=self.model.currentData(),
            resize_mode=self.resize_mode.currentData(),
            learning_rate=float(self.learning_rate.value()),
            seed=self.seed.value(),
            augmentation=Augmentation(**{name: box.isChecked() for name, box in self.augment.items()}),
            out_dir=self.out_dir.text().strip() or "runs",
            decode_threads=self.decode_threads.value(),
            early_stopping_patience=self.early_stopping_patience.value(),
            reduce_lr_patience=self.reduce_lr_patience.value(),
            reduce_lr_factor=round(float(self.reduce_lr_factor.value()), 2),
            cache=self.cache.isChecked(),
            cache_memory_mb=self.cache_memory_mb.value(),
        )
