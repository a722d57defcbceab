"""The Camera tab: collect a class by holding its button in front of the camera, and watch the open
model's predictions live. A video file can stand in for the camera.

QtMultimedia is imported only when the tab is first shown (gui.camera_source), so the window opens
as fast without it; where it cannot load (no PySide6-Addons, or on Linux no libpulse), the tab says
why and the rest of the window works. Frames arrive as numpy arrays and go three ways: to the view,
to `FrameCapture` (saved while a class is held, gui.frame_capture) and to `LivePredictor` (one frame
at a time on the model thread, the newest next, gui.live_prediction). The training folder is the Train
tab's; `images_changed` asks the data panel to count again after each burst and undo.
"""

from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from core.data.video import VIDEO_EXTENSIONS
from core.errors import FitStudioError
from core.paths import demo_train_dir
from gui.frame_capture import DEFAULT_RATE, FrameCapture
from gui.heatmaps import WHY_TOOLTIP
from gui.live_prediction import LiveAnswer, LivePredictor, RateMeter
from gui.model_bar import MessageBanner, ModelBar
from gui.model_worker import ModelService
from gui.text import escape
from gui.thumbnails import pixmap_from_array

TOP_BARS = 3
MAX_CLASS_KEYS = 9
NO_CAMERA = "No camera is connected. Open a video file to collect or predict from it."


class CameraPage(QWidget):
    status_message = Signal(str)
    images_changed = Signal()  # frames were saved or undone: the data panel should count again

    def __init__(self, service: ModelService, settings=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.service = service
        self.source = None  # gui.camera_source.FrameSource, made when the tab is first shown
        self.multimedia_problem: str | None = None
        self.read_only = False
        self.capture = FrameCapture(parent=self)
        self.predictor = LivePredictor(service, self)
        self.shown_rate = RateMeter()
        self.answer: LiveAnswer | None = None
        self._frame: np.ndarray | None = None
        self._class_buttons: dict[str, QPushButton] = {}
        self._cameras: list = []  # QCameraDevice, once QtMultimedia is loaded
        # The number keys reach the page only when no text field has the focus: the page takes it
        # when shown and when its picture is clicked.
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._build_widgets(service, settings)
        self._build_layout()
        self.capture.counts_changed.connect(self._show_classes)
        self.capture.burst_finished.connect(self._burst_finished)
        self.capture.failed.connect(lambda message: self.banner.show_message(escape(message)))
        self.predictor.answered.connect(self._show_answer)
        self.predictor.failed.connect(self._prediction_failed)
        service.loaded.connect(lambda _info: self._clear_answer())
        self.rate_timer = QTimer(self)
        self.rate_timer.setInterval(500)
        self.rate_timer.timeout.connect(self._show_rates)
        self._show_classes()

    # --- building -----------------------------------------------------------------------------

    def _build_widgets(self, service: ModelService, settings) -> None:
        self.model_bar = ModelBar(service, settings)
        self.banner = MessageBanner()
        self.camera_combo = QComboBox()
        self.camera_combo.setMinimumContentsLength(24)
        self.camera_combo.activated.connect(self._camera_chosen)
        self.video_button = QPushButton("Open video…")
        self.video_button.setToolTip("Play a video file instead of the camera, to collect or predict from it")
        self.video_button.clicked.connect(self._browse_video)
        self.source_note = QLabel()
        self.source_note.setObjectName("sectionHint")
        self.rates = QLabel("")
        self.rates.setObjectName("sectionHint")
        self.view = QLabel("The camera's picture appears here.")
        self.view.setObjectName("cameraView")
        self.view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.view.setMinimumSize(320, 240)
        self.view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.view.setStyleSheet("background: #1d2433; color: #c8cfdb;")
        self.bars = [self._bar_row() for _ in range(TOP_BARS)]
        self.why_button = QPushButton("Why?")
        self.why_button.setCheckable(True)
        self.why_button.setToolTip(WHY_TOOLTIP)
        self.why_button.toggled.connect(self._why_toggled)
        self.folder_label = QLabel()
        self.folder_label.setWordWrap(True)
        self.class_grid = QGridLayout()
        self.class_grid.setSpacing(6)
        self.new_class = QLineEdit()
        self.new_class.setPlaceholderText("New class name")
        self.new_class.returnPressed.connect(self._add_class)
        self.add_class_button = QPushButton("Add class")
        self.add_class_button.clicked.connect(self._add_class)
        self.rate_box = QDoubleSpinBox()
        self.rate_box.setRange(0.5, 30.0)
        self.rate_box.setSingleStep(1.0)
        self.rate_box.setDecimals(1)
        self.rate_box.setSuffix(" per second")
        self.rate_box.setValue(DEFAULT_RATE)
        self.rate_box.valueChanged.connect(lambda value: setattr(self.capture, "rate", float(value)))
        self.undo_button = QPushButton("Undo last burst")
        self.undo_button.setToolTip("Delete the frames the last press saved (those only, if unchanged)")
        self.undo_button.clicked.connect(self.undo_last_burst)
        self.recording_label = QLabel("")
        self.recording_label.setObjectName("recordingLabel")

    def _bar_row(self) -> tuple[QLabel, QProgressBar]:
        name = QLabel("")
        bar = QProgressBar()
        bar.setRange(0, 1000)
        bar.setFormat("")
        bar.setTextVisible(True)
        return name, bar

    def _build_layout(self) -> None:
        source_row = QHBoxLayout()
        source_row.addWidget(QLabel("Source"))
        source_row.addWidget(self.camera_combo)
        source_row.addWidget(self.video_button)
        source_row.addWidget(self.source_note, 1)
        source_row.addWidget(self.rates)
        bars = QGridLayout()
        for row, (name, bar) in enumerate(self.bars):
            bars.addWidget(name, row, 0)
            bars.addWidget(bar, row, 1)
        bars.addWidget(self.why_button, 0, 2)
        bars.setColumnStretch(1, 1)
        left = QVBoxLayout()
        left.addWidget(self.view, 1)
        left.addLayout(bars)
        panel = QFrame()
        panel.setObjectName("cameraClasses")
        panel.setFixedWidth(320)
        right = QVBoxLayout(panel)
        title = QLabel("Collect")
        title.setObjectName("sectionTitle")
        right.addWidget(title)
        right.addWidget(self.folder_label)
        hint = QLabel("Press and hold a class's button, or its number key, to save frames into its folder.")
        hint.setWordWrap(True)
        hint.setObjectName("sectionHint")
        right.addWidget(hint)
        right.addLayout(self.class_grid)
        add_row = QHBoxLayout()
        add_row.addWidget(self.new_class, 1)
        add_row.addWidget(self.add_class_button)
        right.addLayout(add_row)
        form = QFormLayout()
        form.addRow("Save", self.rate_box)
        right.addLayout(form)
        right.addWidget(self.undo_button)
        right.addWidget(self.recording_label)
        right.addStretch(1)
        body = QHBoxLayout()
        body.addLayout(left, 1)
        body.addWidget(panel)
        layout = QVBoxLayout(self)
        layout.addWidget(self.model_bar)
        layout.addWidget(self.banner)
        layout.addLayout(source_row)
        layout.addLayout(body, 1)

    # --- the source: made on first show ----------------------------------------------------------

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.ensure_source()
        self.rate_timer.start()
        self.setFocus()
        if self.source is not None and not self.source.running:
            self._camera_chosen(self.camera_combo.currentIndex())

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        self.capture.stop()
        self.rate_timer.stop()
        if self.source is not None:
            self.source.stop()  # the camera's light goes off when the tab is left

    def ensure_source(self):
        """Imports QtMultimedia and makes the frame source, once; None when it cannot load."""
        if self.source is not None or self.multimedia_problem is not None:
            return self.source
        try:
            from gui.camera_source import FrameSource
        except ImportError as exc:
            self.multimedia_problem = (
                "The camera and videos need QtMultimedia (the PySide6-Addons package), which could not "
                f"be loaded: {exc}. On Linux, install libpulse0."
            )
            self.banner.show_message(escape(self.multimedia_problem))
            for widget in (self.camera_combo, self.video_button):
                widget.setEnabled(False)
            return None
        self.source = FrameSource(self)
        self.source.frame.connect(self.show_frame)
        self.source.problem.connect(lambda text: self.banner.show_message(escape(text)))
        self.source.video_ended.connect(lambda: self.status_message.emit("The video has ended."))
        self.source.cameras_changed.connect(self._list_cameras)
        self._list_cameras()
        return self.source

    def _list_cameras(self) -> None:
        self._cameras = self.source.cameras()
        self.camera_combo.clear()
        for device in self._cameras:
            self.camera_combo.addItem(device.description())
        self.camera_combo.setEnabled(bool(self._cameras))
        if not self._cameras:
            self.camera_combo.addItem("No camera")
            self.source_note.setText(NO_CAMERA)
        else:
            self.source_note.setText("")

    def _camera_chosen(self, index: int) -> None:
        if self.source is not None and 0 <= index < len(self._cameras):
            self.source.use_camera(self._cameras[index])

    def choose_video(self) -> str:
        """The file dialog; a method so tests can replace it."""
        patterns = " ".join(f"*{ext}" for ext in sorted(VIDEO_EXTENSIONS))
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a video", os.path.expanduser("~"), f"Videos ({patterns});;All files (*)"
        )
        return path

    def _browse_video(self) -> None:
        path = self.choose_video()
        if path and self.ensure_source() is not None:
            self.banner.clear()
            self.source.open_video(path)
            self.source_note.setText(f"Playing {os.path.basename(path)}")

    # --- frames -------------------------------------------------------------------------------

    def show_frame(self, frame: np.ndarray) -> None:
        """Every frame: shown, saved while a class is held, offered to the model."""
        self._frame = frame
        self.shown_rate.tick()
        self.capture.offer(frame)
        self.predictor.offer(frame)
        self._paint(frame)

    def _paint(self, frame: np.ndarray) -> None:
        layer = self.answer.layer if self.answer is not None and self.why_button.isChecked() else None
        pixmap = pixmap_from_array(layer.over(frame) if layer is not None else frame)
        self.view.setPixmap(
            pixmap.scaled(self.view.size(), Qt.AspectRatioMode.KeepAspectRatio,
                          Qt.TransformationMode.SmoothTransformation)
        )

    def _show_rates(self) -> None:
        parts = [f"{self.shown_rate.rate():.1f} frames/s shown"]
        if self.service.info is not None:
            parts.append(f"{self.predictor.rate.rate():.1f} predicted/s")
            parts.append(f"{self.predictor.dropped} skipped while the model was busy")
        self.rates.setText(" · ".join(parts))

    # --- live prediction ------------------------------------------------------------------------

    def _show_answer(self, answer: LiveAnswer, _frame: np.ndarray) -> None:
        self.answer = answer
        order = np.argsort(-answer.probabilities, kind="stable")
        for rank, (name, bar) in enumerate(self.bars):
            if rank < len(order):
                index = int(order[rank])
                probability = float(answer.probabilities[index])
                name.setText(answer.class_names[index])
                bar.setValue(round(probability * 1000))
                bar.setFormat(f"{probability:.0%}")
            else:
                name.setText("")
                bar.setValue(0)
                bar.setFormat("")

    def top_classes(self) -> list[tuple[str, float]]:
        """What the bars show: (class, smoothed probability), most probable first."""
        return [(name.text(), bar.value() / 1000) for name, bar in self.bars if name.text()]

    def _clear_answer(self) -> None:
        self.answer = None
        for name, bar in self.bars:
            name.setText("")
            bar.setValue(0)
            bar.setFormat("")

    def _why_toggled(self, checked: bool) -> None:
        self.predictor.explain = checked
        if self._frame is not None:
            self._paint(self._frame)

    def _prediction_failed(self, message: str) -> None:
        if self.why_button.isChecked():
            self.why_button.setChecked(False)  # e.g. a model without a convolutional layer
        self.banner.show_message(escape(message))

    # --- collecting -----------------------------------------------------------------------------

    def set_training_folder(self, folder: str) -> None:
        """The Train tab's training folder: its classes are listed and collected into."""
        if self.capture.recording:
            return
        self.read_only = bool(folder) and os.path.realpath(folder) == os.path.realpath(demo_train_dir())
        if folder != self.capture.root:
            self.capture.set_root(folder)
        else:
            self.capture.recount()
        if self.read_only:
            self.folder_label.setText(
                "The bundled demo dataset is not collected into: choose your own training folder in the "
                "Train tab (an empty folder is fine, then add classes here)."
            )
        elif folder:
            self.folder_label.setText(f"Into <b>{escape(folder)}</b>")
        else:
            self.folder_label.setText("Choose a training folder in the Train tab to collect into.")
        self._show_classes()

    def _show_classes(self) -> None:
        names = self.capture.class_names
        if list(self._class_buttons) != names:
            for button in self._class_buttons.values():
                self.class_grid.removeWidget(button)
                button.deleteLater()
            self._class_buttons = {}
            for position, name in enumerate(names):
                button = QPushButton()
                button.setCheckable(True)
                button.pressed.connect(lambda name=name: self.start_burst(name))
                button.released.connect(self.stop_burst)
                self.class_grid.addWidget(button, position // 2, position % 2)
                self._class_buttons[name] = button
        for position, name in enumerate(names):
            key = f"{position + 1}  " if position < MAX_CLASS_KEYS else ""
            button = self._class_buttons[name]
            button.setText(f"{key}{name}  ·  {self.capture.counts[name]}")
            button.setChecked(self.capture.recording == name)
            button.setEnabled(not self.read_only)
        can_add = bool(self.capture.root) and not self.read_only
        self.new_class.setEnabled(can_add)
        self.add_class_button.setEnabled(can_add)
        self.undo_button.setEnabled(self.capture.can_undo and not self.capture.recording)

    def start_burst(self, class_name: str) -> None:
        if self.read_only:
            return
        self.capture.start(class_name)
        if self.capture.recording:
            self.recording_label.setText(f"● Saving frames into {class_name}…")
        self._show_classes()

    def stop_burst(self) -> None:
        self.capture.stop()
        self.recording_label.setText("")
        self._show_classes()

    def _burst_finished(self, class_name: str, count: int) -> None:
        self.status_message.emit(f"Saved {count} frames into {class_name}.")
        self.images_changed.emit()

    def undo_last_burst(self) -> None:
        result = self.capture.undo_last_burst()
        if result is None:
            return
        kept = f"; {len(result.kept)} changed since were kept" if result.kept else ""
        self.status_message.emit(
            f"Removed the {result.removed} frames last saved into {result.class_name}{kept}."
        )
        self._show_classes()
        self.images_changed.emit()

    def _add_class(self) -> None:
        try:
            name = self.capture.add_class(self.new_class.text())
        except FitStudioError as exc:
            self.banner.show_message(escape(str(exc)))
            return
        self.new_class.clear()
        self.banner.clear()
        self.status_message.emit(f"Added the class {name}.")
        self.images_changed.emit()

    def mousePressEvent(self, event) -> None:
        self.setFocus()  # back from a text field to the number keys
        super().mousePressEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        name = self._class_for_key(event)
        if name is None:
            super().keyPressEvent(event)
        elif not event.isAutoRepeat():
            self.start_burst(name)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        name = self._class_for_key(event)
        if name is None:
            super().keyReleaseEvent(event)
        elif not event.isAutoRepeat() and self.capture.recording == name:
            self.stop_burst()

    def _class_for_key(self, event: QKeyEvent) -> str | None:
        names = self.capture.class_names
        position = event.key() - Qt.Key.Key_1
        return names[position] if 0 <= position < min(len(names), MAX_CLASS_KEYS) else None

    # --- closing --------------------------------------------------------------------------------

    def shutdown(self) -> None:
        self.capture.stop()
        self.predictor.stop()
        if self.source is not None:
            self.source.stop()
