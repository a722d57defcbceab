"""The model bar at the top of the Evaluate, Predict and Export tabs: which model is open, and opening one.

Every tab has its own bar, all showing the one `ModelService`: opening a model in any tab opens it for
all. The bar lists recent models (kept in the settings under "models/recent"), browses for a run
folder or a .keras file, and shows the classes and input size once loaded, or why loading failed.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from gui.model_worker import ModelInfo, ModelService
from gui.settings_store import RECENT_MODELS_KEY, add_recent_path, recent_paths
from gui.text import escape


def recent_models(settings: QSettings | None) -> list[str]:
    return recent_paths(settings, RECENT_MODELS_KEY)


def describe_model(info: ModelInfo) -> str:
    """One line of rich text: name, classes, input size, parameters."""
    classes = ", ".join(info.class_names[:8]) + (", …" if info.num_classes > 8 else "")
    parts = [
        f"<b>{escape(info.name)}</b>",
        f"{info.num_classes} classes: {escape(classes)}",
        f"{info.image_size} x {info.image_size} px input ({escape(info.resize_mode)})",
    ]
    if info.parameters:
        parts.append(f"{info.parameters:,} parameters")
    if not info.labels_known:
        parts.append("<span style='color:#b54708'>no labels.txt: classes are numbered</span>")
    return " · ".join(parts)


class ModelBar(QFrame):
    """Shows and chooses the model of a ModelService."""

    model_chosen = Signal(str)

    def __init__(
        self, service: ModelService, settings: QSettings | None = None, parent: QWidget | None = None
    ):
        super().__init__(parent)
        self.setObjectName("modelBar")
        self.service = service
        self.settings = settings
        title = QLabel("Model")
        title.setObjectName("modelBarTitle")
        self.combo = QComboBox()
        self.combo.setEditable(True)
        self.combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(30)
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.combo.lineEdit().setPlaceholderText("A run folder or a .keras file")
        self.combo.lineEdit().returnPressed.connect(lambda: self.open(self.combo.currentText()))
        self.combo.activated.connect(lambda index: self.open(self.combo.itemText(index)))
        self.folder_button = QPushButton("Open run folder…")
        self.folder_button.setToolTip("A folder written by training: it holds model.keras and labels.txt")
        self.folder_button.clicked.connect(self._browse_folder)
        self.file_button = QPushButton("Open .keras file…")
        self.file_button.setToolTip("A Keras 3 model file; class names come from a labels.txt beside it")
        self.file_button.clicked.connect(self._browse_file)
        self.state = QLabel()
        self.state.setObjectName("modelState")
        self.state.setWordWrap(True)
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout()
        row.setSpacing(8)
        row.addWidget(title)
        row.addWidget(self.combo, 1)
        row.addWidget(self.folder_button)
        row.addWidget(self.file_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(4)
        layout.addLayout(row)
        layout.addWidget(self.state)
        service.loading.connect(self._on_loading)
        service.loaded.connect(self._on_loaded)
        service.load_failed.connect(self._on_failed)
        service.busy_changed.connect(self._update_enabled)
        self._refresh_recent()
        self._show_current()

    # --- choosing ----------------------------------------------------------------------------

    def choose_run_folder(self) -> str:
        """The folder dialog; a method so tests can replace it."""
        return QFileDialog.getExistingDirectory(self, "Open a run folder", self._start_folder())

    def choose_model_file(self) -> str:
        """The file dialog; a method so tests can replace it."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a Keras model", self._start_folder(), "Keras models (*.keras);;All files (*)"
        )
        return path

    def _start_folder(self) -> str:
        current = self.combo.currentText().strip()
        if current and os.path.exists(current):
            return current if os.path.isdir(current) else os.path.dirname(current)
        return os.path.abspath("runs") if os.path.isdir("runs") else os.path.expanduser("~")

    def _browse_folder(self) -> None:
        folder = self.choose_run_folder()
        if folder:
            self.open(folder)

    def _browse_file(self) -> None:
        path = self.choose_model_file()
        if path:
            self.open(path)

    def open(self, source: str) -> None:
        source = source.strip()
        if not source or self.service.busy:
            return
        self.model_chosen.emit(source)
        self.service.load(source)

    # --- showing -----------------------------------------------------------------------------

    def _set_state(self, text: str, state: str) -> None:
        self.state.setText(text)
        self.state.setProperty("state", state)
        self.state.style().unpolish(self.state)
        self.state.style().polish(self.state)

    def _show_current(self) -> None:
        if self.service.info is not None:
            self._on_loaded(self.service.info)
        elif self.service.loading_source:
            self._on_loading(self.service.loading_source)
        elif self.service.last_error:
            self._set_state(escape(self.service.last_error), "error")
        else:
            self._set_state("No model open. Choose the folder of a training run, or a .keras file.", "none")
        self._update_enabled()

    def _on_loading(self, source: str) -> None:
        self._set_text(source)
        self._set_state(f"Opening {escape(os.path.basename(source) or source)}…", "loading")
        self._update_enabled()

    def _on_loaded(self, info: ModelInfo) -> None:
        self._set_text(info.source)
        self._set_state(describe_model(info), "loaded")
        self.state.setToolTip(info.model_path)
        add_recent_path(self.settings, RECENT_MODELS_KEY, info.source)
        self._refresh_recent()

    def _on_failed(self, source: str, message: str) -> None:
        self._set_text(source)
        self._set_state(f"⚠ {escape(message)}", "error")
        self.state.setToolTip("")

    def _set_text(self, source: str) -> None:
        self.combo.setEditText(source)
        self.combo.setToolTip(source)

    def _refresh_recent(self) -> None:
        text = self.combo.currentText()
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItems(recent_models(self.settings))
        self.combo.setEditText(text)
        self.combo.blockSignals(False)

    def _update_enabled(self, *_args) -> None:
        free = not self.service.busy
        for widget in (self.combo, self.folder_button, self.file_button):
            widget.setEnabled(free)


class MessageBanner(QFrame):
    """An inline message (an error, or information) with an optional Details button; hidden when empty."""

    details_requested = Signal(str, str)  # message, details

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("messageBanner")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_button = QPushButton("Details…")
        self.details_button.clicked.connect(
            lambda: self.details_requested.emit(self.label.text(), self._details)
        )
        self.close_button = QPushButton("Dismiss")
        self.close_button.setObjectName("linkButton")
        self.close_button.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.details_button)
        layout.addWidget(self.close_button)
        self._details = ""
        self.hide()

    def show_message(self, text: str, level: str = "error", details: str = "") -> None:
        self._details = details
        self.label.setText(text)
        self.setProperty("level", level)
        for widget in (self, self.label):  # the label's colour depends on the frame's level
            widget.style().unpolish(widget)
            widget.style().polish(widget)
        self.details_button.setVisible(bool(details))
        self.show()

    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()

    def clear(self) -> None:
        self.label.setText("")
        self._details = ""
        self.hide()


def stat_card(caption: str) -> tuple[QFrame, QLabel]:
    """A white card with a big value and a caption below; returns (card, value label)."""
    card = QFrame()
    card.setObjectName("statCard")
    value = QLabel("\u2014")
    value.setObjectName("statValue")
    label = QLabel(caption)
    label.setObjectName("statCaption")
    layout = QVBoxLayout(card)
    layout.setContentsMargins(14, 8, 14, 8)
    layout.setSpacing(0)
    layout.addWidget(value)
    layout.addWidget(label)
    return card, value
