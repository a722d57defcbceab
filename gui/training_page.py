"""The Train tab: data and settings on the left, live plots, summary and log on the right.

It owns one run at a time: it builds the TrainingConfig from the panels, starts a TrainingWorker on a
QThread, and turns the worker's signals into plots, progress and messages. A later issue adds other
tabs next to this one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from PySide6.QtCore import QSize, Qt, QThread, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.config import TrainingConfig
from core.dataset import inspect
from core.errors import ConfigError
from core.events import BatchEnd, EpochEnd, RunResult, RunStarted
from gui.data_panel import DataPanel
from gui.log_panel import LogPanel
from gui.plots import LivePlots
from gui.run_widgets import RunStatus, RunSummary, format_duration
from gui.settings_panel import SettingsPanel
from gui.settings_store import SettingsStore
from gui.worker import TrainingWorker, start_worker


def default_train_fn(config, on_event, cancel):
    from core.training import train  # keeps TensorFlow's import cost off start-up

    return train(config, on_event, cancel)


class TrainingPage(QWidget):
    running_changed = Signal(bool)
    idle = Signal()  # the training thread has fully stopped
    status_message = Signal(str)
    device_seen = Signal(str)

    def __init__(self, store: SettingsStore, train_fn: Callable = default_train_fn, inspect_fn=inspect,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.store = store
        self.train_fn = train_fn
        self.worker: TrainingWorker | None = None
        self.thread: QThread | None = None
        self.last_result: RunResult | None = None
        self._started_at = 0.0
        self._run_started_at: float | None = None
        self._epochs = 0
        self._last_batch: BatchEnd | None = None
        self.data = DataPanel(inspect_fn=inspect_fn)
        self.settings = SettingsPanel()
        self.plots = LivePlots()
        self.log = LogPanel()
        self.summary = RunSummary()
        self.run_status = RunStatus()
        self.train_button = QPushButton("Train")
        self.stop_button = QPushButton("Stop")
        self.train_hint = QLabel()
        self._clock = QTimer(self)
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick)
        self._build_layout()
        self._connect()
        self._load_settings()

    # --- construction -------------------------------------------------------------------------

    def _build_layout(self) -> None:
        self.train_button.setObjectName("primaryButton")
        self.train_button.setMinimumHeight(36)
        self.train_button.setIconSize(QSize(16, 16))
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setMinimumHeight(36)
        self.stop_button.setEnabled(False)
        self.train_hint.setObjectName("trainHint")
        self.train_hint.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button, 2)
        buttons.addWidget(self.stop_button, 1)
        panels = QWidget()
        panels.setObjectName("sidePanel")
        panels_layout = QVBoxLayout(panels)
        panels_layout.setContentsMargins(0, 0, 4, 0)
        panels_layout.addWidget(self.data)
        panels_layout.addWidget(self.settings)
        panels_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(panels)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Train and Stop stay in view below the scrolling panels, whatever the window height.
        left = QWidget()
        left.setObjectName("sidePanel")
        left.setMinimumWidth(400)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(scroll, 1)
        left_layout.addLayout(buttons)
        left_layout.addWidget(self.train_hint)
        right_top = QWidget()
        right_layout = QVBoxLayout(right_top)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.summary)
        right_layout.addWidget(self.plots, 1)
        self.right_splitter = QSplitter(Qt.Orientation.Vertical)
        self.right_splitter.addWidget(right_top)
        self.right_splitter.addWidget(self.log)
        self.right_splitter.setStretchFactor(0, 4)
        self.right_splitter.setStretchFactor(1, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.right_splitter)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([470, 890])
        self.right_splitter.setSizes([560, 160])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.splitter)

    def _connect(self) -> None:
        self.train_button.clicked.connect(self.start_training)
        self.stop_button.clicked.connect(self.stop_training)
        self.data.changed.connect(self._update_buttons)
        self.data.folder_used.connect(self._remember_folder)
        self.summary.open_folder_requested.connect(self.open_folder)

    def _load_settings(self) -> None:
        config = self.store.load_config()
        self._base_config = config
        self.settings.set_config(config)
        self.data.set_recent(self.store.recent_folders())
        self.data.set_folders(config.train_dir, config.val_dir, config.val_split,
                              self.store.last_validation_folder())

    def save_settings(self) -> None:
        self.store.save_config(self.current_config())
        if self.data.val_field.path():
            self.store.set_last_validation_folder(self.data.val_field.path())

    def _remember_folder(self, path: str) -> None:
        self.data.set_recent(self.store.add_recent_folder(path))

    # --- state ----------------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self.thread is not None

    def current_config(self) -> TrainingConfig:
        return self.data.apply_to(self.settings.apply_to(self._base_config))

    def _update_buttons(self) -> None:
        problem = self.data.problem()
        self.train_button.setEnabled(not self.is_running and problem is None)
        self.stop_button.setEnabled(self.is_running and not (self.worker and self.worker.cancel_requested))
        if self.is_running:
            self.train_hint.setText("")
        else:
            self.train_hint.setText(problem or "")
        self.train_button.setToolTip(problem or "Start training with these settings")

    def _lock(self, running: bool) -> None:
        self.data.setEnabled(not running)
        self.settings.setEnabled(not running)
        self._update_buttons()
        self.running_changed.emit(running)

    # --- starting and stopping ----------------------------------------------------------------

    def start_training(self) -> bool:
        if self.is_running or self.data.problem():
            return False
        try:
            config = self.current_config().validate()
        except ConfigError as exc:
            self.show_error("Cannot start training", str(exc))
            return False
        self.save_settings()
        self.last_result = None
        self.summary.hide()
        self.plots.reset(config.epochs)
        self._epochs, self._last_batch, self._run_started_at = config.epochs, None, None
        self._started_at = time.monotonic()
        self.log.log(f"Starting {config.model}: {config.epochs} epochs, batch size {config.batch_size}, "
                     f"{config.image_size} px images.")
        self.worker = TrainingWorker(config, self.train_fn)
        self.worker.message.connect(self._on_message)
        self.worker.run_started.connect(self._on_run_started)
        self.worker.batch_end.connect(self._on_batch_end)
        self.worker.epoch_end.connect(self._on_epoch_end)
        self.worker.run_finished.connect(self._on_run_finished)
        self.worker.run_failed.connect(self._on_run_failed)
        self.worker.start_failed.connect(self._on_start_failed)
        self.thread = start_worker(
            self.worker, "FitStudio training", on_thread_finished=self._on_thread_finished
        )
        self.run_status.preparing()
        self._clock.start()
        self._tick()
        self.status_message.emit("Loading TensorFlow and reading the images…")
        self._lock(True)
        return True

    def stop_training(self) -> None:
        """Asks the run to stop within one batch; the partial run folder is kept."""
        if self.worker is None or self.worker.cancel_requested:
            return
        self.worker.cancel()
        self.log.log("Stopping after the current batch…")
        self.status_message.emit("Stopping…")
        self._update_buttons()

    @Slot()
    def _on_thread_finished(self) -> None:
        if self.thread is not None:
            self.thread.wait()  # finished is emitted just before the thread returns
        self.thread, self.worker = None, None
        self._clock.stop()
        self._tick()
        self.run_status.progress.hide()
        self._lock(False)
        self.idle.emit()

    # --- engine events (GUI thread) -------------------------------------------------------------

    def _on_message(self, text: str, level: str) -> None:
        self.log.log(text, level)

    def _on_run_started(self, event: RunStarted) -> None:
        self._run_started_at = time.monotonic()
        self._epochs = event.epochs
        self.plots.reset(event.epochs)
        self.run_status.show_epoch(event.initial_epoch, event.epochs, event.steps_per_epoch)
        train_total, val_total = sum(event.train_counts.values()), sum(event.val_counts.values())
        self.log.log(
            f"Training on {event.device}: {len(event.class_names)} classes, {train_total} training and "
            f"{val_total} validation images, {event.steps_per_epoch} batches per epoch."
        )
        self.device_seen.emit(event.device)
        self.status_message.emit("Training…")

    def _on_batch_end(self, event: BatchEnd) -> None:
        self.plots.add_batch(event.epoch, event.step, event.steps, event.loss, event.accuracy)
        if event.step == 0:
            self.run_status.show_epoch(event.epoch, self._epochs, event.steps)
        self.run_status.show_batch(event.step, event.images_per_second)
        self._last_batch = event

    def _on_epoch_end(self, event: EpochEnd) -> None:
        self.plots.add_epoch(event.epoch, event.logs, event.best_epoch)
        logs = event.logs
        keys = ("loss", "accuracy", "val_loss", "val_accuracy")
        metrics = "  ".join(f"{key} {logs[key]:.4f}" for key in keys if key in logs)
        self.log.log(f"Epoch {event.epoch + 1}/{event.epochs}: {metrics}  ({event.seconds:.1f} s, "
                     f"{event.images_per_second:,.0f} images/s, waited for data {event.data_wait:.0%})")

    def _on_run_finished(self, result: RunResult) -> None:
        self._show_result(result)
        if result.status == "cancelled":
            self.log.log(f"Stopped. The partial run is saved in {os.path.abspath(result.run_dir)}", "warning")
            self.status_message.emit("Training stopped.")
        else:
            self.log.log(f"Finished. The run is saved in {os.path.abspath(result.run_dir)}", "success")
            self.status_message.emit("Training finished.")

    def _on_run_failed(self, message: str, details: str, result: RunResult) -> None:
        self._show_result(result)
        self.log.log(f"The run failed: {message}", "error")
        self.status_message.emit("Training failed.")
        self.show_error("Training failed", message, details)

    def _on_start_failed(self, message: str, details: str) -> None:
        self.log.log(f"Training could not start: {message}", "error")
        self.status_message.emit("Training could not start.")
        self.show_error("Training could not start", message, details)

    def _show_result(self, result: RunResult) -> None:
        self.last_result = result
        self.plots.set_best_epoch(result.best_epoch)
        self.summary.show_result(result)

    def _tick(self) -> None:
        if not self._started_at:
            return
        elapsed = time.monotonic() - self._started_at
        remaining = None
        batch = self._last_batch
        if batch is not None and self._run_started_at is not None and self._epochs:
            done = (batch.epoch + (batch.step + 1) / max(batch.steps, 1)) / self._epochs
            running = time.monotonic() - self._run_started_at
            remaining = running * (1 - done) / done if done > 0 else None
        self.run_status.show_times(elapsed, remaining if self.is_running else None)

    # --- things a test replaces ----------------------------------------------------------------

    def show_error(self, title: str, message: str, details: str = "") -> None:
        """A window-modal message box that does not block the event loop (open(), not exec())."""
        box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, self)
        if details:
            box.setDetailedText(details)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        self._error_box = box
        box.open()

    def open_folder(self, path: str) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.abspath(path)))


__all__ = ["TrainingPage", "default_train_fn", "format_duration"]
