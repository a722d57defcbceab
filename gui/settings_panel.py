"""The settings panel: every TrainingConfig field that is not about the data folders.

Each widget's range comes from core.config.LIMITS, so a value the engine would reject cannot be
entered. The settings most runs change stay in view; the rest (resize mode, learning-rate plateau,
seed, decode threads, cache, output folder) fold under "Advanced", whose header says how many of
them differ from the defaults while it is folded. The tooltips and other words are in
gui.settings_text, the spin boxes in gui.spin_boxes.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.config import LIMITS, MODEL_NAMES, PRETRAINED_MODELS, Augmentation, TrainingConfig
from gui.placement_panel import PlacementPanel
from gui.settings_text import (
    ADVANCED_TOOLTIP,
    MODEL_HINTS,
    MODEL_TOOLTIP,
    SETTING_TOOLTIPS,
    feature_cost_text,
)
from gui.spin_boxes import ScientificSpinBox, limited_spin_box

RESIZE_LABELS = {"stretch": "Stretch to square", "crop": "Centre crop to square"}
CACHE_MEMORY_MAX_MB = 1024 * 1024  # 1 TB: the engine has no upper limit; a spin box needs one
CACHE_DISK_MAX_MB = 16 * 1024 * 1024


# The folded settings: TrainingConfig field -> label of its row.
ADVANCED_FIELDS = {
    "resize_mode": "Resize",
    "class_weights": "Class weights",
    "reduce_lr_patience": "Reduce LR",
    "reduce_lr_factor": "Reduce LR",
    "seed": "Seed",
    "decode_threads": "Decode threads",
    "cache": "Image cache",
    "cache_memory_mb": "Cache memory",
    "cache_disk_mb": "Disk cache",
    "fine_tune_after": "Fine-tune",
    "fine_tune_layers": "Fine-tune",
    "fine_tune_learning_rate": "Fine-tune LR",
    "weights_url": "Weights mirror",
    "out_dir": "Output folder",
    "gpus": "Device",
    "cluster": "Train on",
    "workers": "Workers",
    "precision": "Precision",
    "jit": "XLA",
}


class SettingsPanel(QGroupBox):
    changed = Signal()
    advanced_toggled = Signal(bool)  # the Advanced section was opened (True) or folded

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Model and training", parent)
        self.epochs = limited_spin_box("epochs")
        self.batch_size = limited_spin_box("batch_size")
        self.image_size = limited_spin_box("image_size", " px", step=16)
        self.model = QComboBox()
        for name in MODEL_NAMES:
            self.model.addItem(name, name)
            self.model.setItemData(self.model.count() - 1, MODEL_HINTS.get(name, ""), 3)  # tooltip role
        self.import_weights_button = QPushButton("Import weights…")
        self.weights_url = QLineEdit()
        self.weights_url.setPlaceholderText("Keras's servers")
        self.learning_rate = ScientificSpinBox(*LIMITS["learning_rate"])
        self.resize_mode = QComboBox()
        for mode, label in RESIZE_LABELS.items():
            self.resize_mode.addItem(label, mode)
        self.seed = limited_spin_box("seed")
        self.decode_threads = QSpinBox()
        self.decode_threads.setRange(0, 64)
        self.decode_threads.setSpecialValueText("Automatic (one per core)")
        self.early_stopping_patience = limited_spin_box("early_stopping_patience", " epochs")
        self.early_stopping_patience.setSpecialValueText("Off")
        self.reduce_lr_patience = limited_spin_box("reduce_lr_patience", " epochs")
        self.reduce_lr_patience.setSpecialValueText("Off")
        self.reduce_lr_factor = QDoubleSpinBox()
        self.reduce_lr_factor.setRange(*LIMITS["reduce_lr_factor"])
        self.reduce_lr_factor.setDecimals(2)
        self.reduce_lr_factor.setSingleStep(0.05)
        self.reduce_lr_factor.setPrefix("\u00d7 ")
        self.fine_tune_after = limited_spin_box("fine_tune_after", " epochs")
        self.fine_tune_after.setPrefix("after ")
        self.fine_tune_after.setSpecialValueText("Off")
        self.fine_tune_layers = limited_spin_box("fine_tune_layers", " layers")
        self.fine_tune_layers.setPrefix("top ")
        self.fine_tune_learning_rate = ScientificSpinBox(*LIMITS["fine_tune_learning_rate"])
        self.balance_classes = QCheckBox("Balance classes")
        self.fast_training = QCheckBox("Fast training (cached features)")
        self.fast_training.setChecked(True)
        self.feature_copies = limited_spin_box("feature_copies")
        self.feature_copies.setPrefix("augmented copies: ")
        self.feature_copies.setSpecialValueText("no augmented copies")
        self.feature_cost = QLabel()
        self.feature_cost.setObjectName("hint")
        self.feature_cost.setWordWrap(True)
        self._image_count = 0
        self.cache = QCheckBox("Keep decoded images")
        self.cache_memory_mb = QSpinBox()
        self.cache_memory_mb.setRange(0, CACHE_MEMORY_MAX_MB)
        self.cache_memory_mb.setSingleStep(256)
        self.cache_memory_mb.setSuffix(" MB")
        self.cache_memory_mb.setSpecialValueText("Automatic (¼ of RAM)")
        self.cache_memory_mb.setAccelerated(True)
        self.cache_disk_mb = QSpinBox()
        self.cache_disk_mb.setRange(0, CACHE_DISK_MAX_MB)
        self.cache_disk_mb.setSingleStep(512)
        self.cache_disk_mb.setSuffix(" MB")
        self.cache_disk_mb.setSpecialValueText("Off (nothing kept between runs)")
        self.cache_disk_mb.setAccelerated(True)
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
        self.advanced_toggle = QToolButton()
        self._advanced_rows: list[int] = []
        self.placement = PlacementPanel()
        self._build_layout()
        self._add_tooltips()
        self._connect_changes()
        self.set_advanced_visible(False)

    def _build_layout(self) -> None:
        form = self.form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setVerticalSpacing(5)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(self.import_weights_button)
        form.addRow("Model", model_row)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Image size", self.image_size)
        form.addRow("Learning rate", self.learning_rate)
        form.addRow("Augmentation", self._augmentation_row())
        fast_row = QHBoxLayout()
        fast_row.addWidget(self.fast_training)
        fast_row.addWidget(self.feature_copies)
        form.addRow("Speed", fast_row)
        form.addRow("", self.feature_cost)
        form.addRow("Early stopping", self.early_stopping_patience)
        self.advanced_toggle.setObjectName("advancedToggle")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setAutoRaise(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setCursor(Qt.CursorShape.PointingHandCursor)
        form.addRow(self.advanced_toggle)
        lr_row = QHBoxLayout()
        lr_row.addWidget(self.reduce_lr_patience, 3)
        lr_row.addWidget(self.reduce_lr_factor, 2)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_dir, 1)
        out_row.addWidget(self.out_browse)
        fine_tune_row = QHBoxLayout()
        fine_tune_row.addWidget(self.fine_tune_after, 1)
        fine_tune_row.addWidget(self.fine_tune_layers, 1)
        for label, field in (("Resize", self.resize_mode), ("Class weights", self.balance_classes),
                             ("Reduce LR", lr_row),
                             ("Fine-tune", fine_tune_row), ("Fine-tune LR", self.fine_tune_learning_rate),
                             ("Weights mirror", self.weights_url), ("Seed", self.seed),
                             ("Decode threads", self.decode_threads), ("Image cache", self.cache),
                             ("Cache memory", self.cache_memory_mb), ("Disk cache", self.cache_disk_mb),
                             ("Output folder", out_row)):
            form.addRow(label, field)
            self._advanced_rows.append(form.rowCount() - 1)
        outer = QVBoxLayout(self)
        outer.addLayout(form)
        outer.addWidget(self.placement)

    def _augmentation_row(self) -> QWidget:
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        for index, box in enumerate(self.augment.values()):
            grid.addWidget(box, 0, index)
        augment = QWidget()
        augment.setLayout(grid)
        return augment

    # --- the Advanced section -----------------------------------------------------------------

    def set_advanced_visible(self, visible: bool) -> None:
        """Opens or folds the Advanced section (without emitting advanced_toggled)."""
        self.advanced_toggle.blockSignals(True)
        self.advanced_toggle.setChecked(visible)
        self.advanced_toggle.blockSignals(False)
        self._show_advanced(visible)

    def advanced_visible(self) -> bool:
        return self.advanced_toggle.isChecked()

    def _on_advanced_toggled(self, visible: bool) -> None:
        self._show_advanced(visible)
        self.advanced_toggled.emit(visible)

    def _show_advanced(self, visible: bool) -> None:
        for row in self._advanced_rows:
            self.form.setRowVisible(row, visible)
        self.placement.setVisible(visible)  # one computer with one device is the common case
        arrow = Qt.ArrowType.DownArrow if visible else Qt.ArrowType.RightArrow
        self.advanced_toggle.setArrowType(arrow)
        self._describe_advanced()

    def changed_advanced_settings(self) -> list[str]:
        """Labels of the folded rows whose values differ from the defaults (each label once)."""
        current, defaults = self.apply_to(TrainingConfig()), TrainingConfig()
        labels = [label for name, label in ADVANCED_FIELDS.items()
                  if getattr(current, name) != getattr(defaults, name)]
        return list(dict.fromkeys(labels))

    def _describe_advanced(self) -> None:
        changed = self.changed_advanced_settings()
        folded_note = f" ({len(changed)} changed)" if changed and not self.advanced_visible() else ""
        self.advanced_toggle.setText(f"Advanced{folded_note}")
        tip = ADVANCED_TOOLTIP
        if changed:
            tip += "\nChanged from the defaults: " + ", ".join(changed)
        self.advanced_toggle.setToolTip(tip)

    def _add_tooltips(self) -> None:
        self.model.setToolTip(MODEL_TOOLTIP)
        for name, tip in SETTING_TOOLTIPS.items():
            getattr(self, name).setToolTip(tip)

    def _connect_changes(self) -> None:
        for box in (self.epochs, self.batch_size, self.image_size, self.seed, self.decode_threads,
                    self.early_stopping_patience, self.reduce_lr_patience, self.reduce_lr_factor,
                    self.cache_memory_mb, self.cache_disk_mb, self.fine_tune_after, self.fine_tune_layers,
                    self.fine_tune_learning_rate):
            box.valueChanged.connect(self.changed)
        self.cache.toggled.connect(self.changed)
        self.balance_classes.toggled.connect(self.changed)
        # A setting that does nothing in the current state is shown disabled, not hidden.
        self.reduce_lr_patience.valueChanged.connect(
            lambda value: self.reduce_lr_factor.setEnabled(value > 0))
        self.cache.toggled.connect(self.cache_memory_mb.setEnabled)
        self.cache.toggled.connect(self.cache_disk_mb.setEnabled)
        self.learning_rate.valueChanged.connect(self.changed)
        self.model.currentIndexChanged.connect(self.changed)
        self.resize_mode.currentIndexChanged.connect(self.changed)
        for box in self.augment.values():
            box.toggled.connect(self.changed)
        self.out_dir.textChanged.connect(self.changed)
        self.changed.connect(self._describe_advanced)
        self.advanced_toggle.toggled.connect(self._on_advanced_toggled)
        self.weights_url.textChanged.connect(self.changed)
        self.model.currentIndexChanged.connect(self._enable_pretrained_settings)
        self.fine_tune_after.valueChanged.connect(self._enable_pretrained_settings)
        self.placement.changed.connect(self.changed)  # once: it was connected again on every model change
        self.fast_training.toggled.connect(self.changed)
        self.feature_copies.valueChanged.connect(self.changed)
        self.fast_training.toggled.connect(self._enable_pretrained_settings)
        self.image_size.valueChanged.connect(self._describe_feature_cost)
        self.feature_copies.valueChanged.connect(self._describe_feature_cost)
        for box in self.augment.values():
            box.toggled.connect(self._enable_pretrained_settings)

    def _enable_pretrained_settings(self) -> None:
        pretrained = self.model.currentData() in PRETRAINED_MODELS
        self.import_weights_button.setEnabled(pretrained)
        self.weights_url.setEnabled(pretrained)
        self.fine_tune_after.setEnabled(pretrained)
        fine_tuning = pretrained and self.fine_tune_after.value() > 0
        self.fine_tune_layers.setEnabled(fine_tuning)
        self.fine_tune_learning_rate.setEnabled(fine_tuning)
        # Cached features need a frozen pretrained base; augmented copies need augmentation.
        self.fast_training.setEnabled(pretrained)
        fast = pretrained and self.fast_training.isChecked()
        self.feature_copies.setEnabled(fast and any(box.isChecked() for box in self.augment.values()))
        self._describe_feature_cost()

    def set_image_count(self, count: int) -> None:
        """The training images the next run reads, for the estimate of the features' one-time cost."""
        self._image_count = count
        self._describe_feature_cost()

    def _describe_feature_cost(self) -> None:
        model = self.model.currentData()
        fast = model in PRETRAINED_MODELS and self.fast_training.isChecked()
        self.feature_cost.setVisible(fast)
        if not fast:
            return
        # Training images are seen through their copies (or plainly without), so: one pass per view.
        views = max(1, self.feature_copies.value() if self.feature_copies.isEnabled() else 0)
        self.feature_cost.setText(feature_cost_text(model, self.image_size.value(), views, self._image_count))

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
        self.balance_classes.setChecked(config.class_weights == "auto")
        self.cache_memory_mb.setValue(config.cache_memory_mb)
        self.cache_memory_mb.setEnabled(config.cache)
        self.cache_disk_mb.setValue(config.cache_disk_mb)
        self.cache_disk_mb.setEnabled(config.cache)
        self.weights_url.setText(config.weights_url)
        self.fine_tune_after.setValue(config.fine_tune_after)
        self.fine_tune_layers.setValue(config.fine_tune_layers)
        self.fine_tune_learning_rate.setValue(config.fine_tune_learning_rate)
        self.fast_training.setChecked(config.features != "none")
        self.feature_copies.setValue(config.feature_copies)
        self._enable_pretrained_settings()
        self.placement.set_config(config)

    def apply_to(self, config: TrainingConfig) -> TrainingConfig:
        """`config` with every field this panel edits replaced by the panel's values."""
        pretrained = self.model.currentData() in PRETRAINED_MODELS
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
            cache_disk_mb=self.cache_disk_mb.value(),
            weights_url=self.weights_url.text().strip(),
            # Only a pretrained base can be fine-tuned; for small-cnn the (disabled) box keeps its value.
            fine_tune_after=self.fine_tune_after.value() if pretrained else 0,
            fine_tune_layers=self.fine_tune_layers.value(),
            fine_tune_learning_rate=float(self.fine_tune_learning_rate.value()),
            class_weights="auto" if self.balance_classes.isChecked() else "none",
            # "auto": cached wherever the run can (not on Ray workers); for small-cnn it does nothing.
            features="auto" if self.fast_training.isChecked() or not pretrained else "none",
            feature_copies=self.feature_copies.value() if self.feature_copies.isEnabled() else 0,
        )
