"""The Train tab: data and settings on the left, live plots, summary and log on the right.

It only shows. The run's lifecycle, the resume policy and the times belong to a TrainingController
(gui/training_controller.py, no widgets); this page builds the TrainingConfig from its panels, asks
the controller to train, resume or stop, and turns the controller's signals into plots, progress
and messages. The dialogs are in gui/training_dialogs.py; the run's live progress (plots, status strip,
log) is fed by gui/run_progress_view.py, and the log's words come from gui/training_messages.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import QLabel, QPushButton, QWidget

from core.config import PRETRAINED_MODELS, TrainingConfig
from core.data.dataset import inspect
from core.errors import ConfigError
from core.events import RunResult, RunStarted
from core.modeling.weights import weight_file_name
from core.runs.run_info import RunInfo, read_run_info
from gui import training_dialogs, training_layout, training_messages
from gui.data_panel import TRAIN, DataPanel
from gui.log_panel import LogPanel
from gui.plots import LivePlots
from gui.run_progress_view import RunProgressView
from gui.run_widgets import DataWaitMeter, RunStatus, RunSummary, WorkersMeter
from gui.settings_panel import SettingsPanel
from gui.settings_store import SettingsStore
from gui.training_controller import (
    ResumeRefused,
    TrainingController,
    default_resume_fn,
    default_train_fn,
    failure_note,
    is_resumable,
)
from gui.warmup import WarmUp, WarmUpTarget
from gui.weights_import import WeightsImport


class TrainingPage(QWidget):
    running_changed = Signal(bool)
    run_folder_opened = Signal(str)  # the run's folder exists (a new run's, or the one resumed)
    idle = Signal()  # the training thread has fully stopped
    status_message = Signal(str)
    device_seen = Signal(str)
    sweep_started = Signal(str)  # sweep_dir: a sweep from the "Sweep…" dialog (gui.sweep_dialog)

    def __init__(self, store: SettingsStore, train_fn: Callable = default_train_fn, inspect_fn=inspect,
                 parent: QWidget | None = None, resume_fn: Callable = default_resume_fn):
        super().__init__(parent)
        self.controller = TrainingController(train_fn, resume_fn, parent=self)
        self.warm_up = WarmUp(parent=self)
        self.warm_up_label = QLabel()
        self.store = store
        self.weights = WeightsImport(parent=self)
        self.data = DataPanel(inspect_fn=inspect_fn)
        self.settings = SettingsPanel()
        self.plots = LivePlots()
        self.log = LogPanel()
        self.summary = RunSummary()
        self.run_status = RunStatus()
        self.train_button = QPushButton("Train")
        self.stop_button = QPushButton("Stop")
        self.resume_button = QPushButton("Resume")
        self.resume_run_button = QPushButton("Resume a run folder…")
        self.summary_resume_button = QPushButton("Resume")
        # The window's Run menu can list these; their enabled state is kept here.
        self.resume_action = QAction("&Resume last run", self)
        self.resume_run_action = QAction("Resume run &folder…", self)
        self.data_wait_label = DataWaitMeter()
        self.workers_label = WorkersMeter()  # a distributed run's workers, each at its batch
        self.train_hint = QLabel()
        self.progress_view = RunProgressView(self.controller, self.plots, self.run_status, self.log,
                                             self.data_wait_label, self.workers_label, parent=self)
        training_layout.lay_out(self)
        self._connect()
        self._connect_controller()
        self._load_settings()

    # The engine functions and the run's state live in the controller; tests reach them here too.
    train_fn = property(lambda self: self.controller.train_fn,
                        lambda self, fn: setattr(self.controller, "train_fn", fn))
    resume_fn = property(lambda self: self.controller.resume_fn,
                         lambda self, fn: setattr(self.controller, "resume_fn", fn))
    worker = property(lambda self: self.controller.worker)
    importing_weights = property(lambda self: self.weights.busy)
    last_result = property(lambda self: self.controller.last_result)

    @property
    def is_running(self) -> bool:
        return self.controller.is_running

    # --- construction -------------------------------------------------------------------------

    def _connect(self) -> None:
        self.train_button.clicked.connect(self.start_training)
        self.stop_button.clicked.connect(self.stop_training)
        self.resume_action.triggered.connect(self.resume_last_run)
        self.resume_run_action.triggered.connect(lambda: self.resume_run_folder())
        self.resume_button.clicked.connect(self.resume_action.trigger)
        self.resume_run_button.clicked.connect(self.resume_run_action.trigger)
        self.summary_resume_button.clicked.connect(self.resume_last_run)
        self.data.changed.connect(self._update_buttons)
        self.data.changed.connect(self._warm_up_current)
        self.settings.changed.connect(self._warm_up_current)
        self.warm_up.text_changed.connect(self._show_warm_up)
        self.data.folder_used.connect(self._remember_folder)
        self.summary.open_folder_requested.connect(self.open_folder)
        self.settings.epochs.valueChanged.connect(self._preview_epochs)
        self.settings.advanced_toggled.connect(self.store.set_advanced_settings_open)
        self.settings.import_weights_button.clicked.connect(self.import_weights)
        self.weights.busy_changed.connect(self._on_weights_busy)
        self.weights.imported.connect(self._on_weights_imported)
        self.weights.failed.connect(self._on_weights_import_failed)

    def _load_settings(self) -> None:
        config = self.store.load_config()
        self._base_config = config
        self.settings.set_config(config)
        self.settings.set_advanced_visible(self.store.advanced_settings_open())
        self._preview_epochs(config.epochs)
        self.data.set_recent(self.store.recent_folders())
        self.data.set_folders(config.train_dir, config.val_dir, config.val_split,
                              self.store.last_validation_folder())

    def save_settings(self) -> None:
        self.store.save_config(self.current_config())
        if self.data.val_field.path():
            self.store.set_last_validation_folder(self.data.val_field.path())

    def _preview_epochs(self, epochs: int) -> None:
        """Before any run the empty plots span the epochs that Train would run."""
        if not self.is_running and self.plots.is_empty():
            self.plots.show_epochs(epochs)

    def _remember_folder(self, path: str) -> None:
        self.data.set_recent(self.store.add_recent_folder(path))

    def _connect_controller(self) -> None:
        run = self.controller
        run.message.connect(self.log.log)
        run.run_started.connect(self._on_run_started)
        run.run_finished.connect(self._on_run_finished)
        run.run_failed.connect(self._on_run_failed)
        run.start_failed.connect(self._on_start_failed)
        run.running_changed.connect(self._on_running_changed)
        run.idle.connect(self.idle)
        self.progress_view.status_message.connect(self.status_message)

    # --- state ----------------------------------------------------------------------------------

    def open_sweep_dialog(self):
        """The sweep dialog, its ranges filled in from the current settings."""
        from gui.sweep_dialog import SweepDialog

        dialog = SweepDialog(self.current_config(), self)
        dialog.sweep_started.connect(self.sweep_started)
        dialog.show()
        return dialog

    def current_config(self) -> TrainingConfig:
        return self.data.apply_to(self.settings.apply_to(self._base_config))

    def _update_buttons(self) -> None:
        problem = self.data.problem()
        self.train_button.setEnabled(not self.is_running and not self.importing_weights and problem is None)
        self.stop_button.setEnabled(self.is_running and not self.controller.stopping)
        self.train_hint.setText("" if self.is_running else problem or "")
        self.train_button.setToolTip(problem or "Start training with these settings")
        self._update_resume()

    def _update_resume(self) -> None:
        offer = self.controller.resume_offer()
        self.resume_action.setEnabled(offer.unfinished)
        self.resume_button.setEnabled(offer.unfinished)
        if offer.unfinished:
            tip = f"Continue {offer.run_name} after epoch {offer.epochs_completed}"
        else:
            tip = "Continue the last run after a Stop or a failure (nothing to resume now)"
        self.resume_button.setToolTip(tip)
        self.resume_run_action.setEnabled(not self.is_running)
        self.resume_run_button.setEnabled(not self.is_running)
        self.summary_resume_button.setVisible(offer.resumable)
        if offer.resumable:
            self.summary_resume_button.setText("Resume" if offer.unfinished else "Train more…")
            self.summary_resume_button.setToolTip(
                "Continue this run from its last finished epoch" if offer.unfinished
                else "Continue this finished run for more epochs, in the same run folder"
            )

    def _warm_up_current(self) -> None:
        """Prepares the images the next run would read: the training folder once it is scanned, and
        the validation folder once it is ready too."""
        train = self.data.reports.get(TRAIN)
        self.settings.set_image_count(train.total if train is not None and not train.error else 0)
        if self.is_running or train is None or train.error:
            self.warm_up.request(None)
            return
        config = self.current_config()
        if self.data.problem() is not None:
            config = config.replace(val_dir=None)
        self.warm_up.request(WarmUpTarget.of(config))

    def _show_warm_up(self, text: str) -> None:
        self.warm_up_label.setText(text)
        self.warm_up_label.setVisible(bool(text))

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
        self._show_new_run(config.epochs)
        self.log.log(training_messages.start_line(config))
        self.warm_up.stop()  # at once: the run reads the same disk cache and takes over from here
        return self.controller.start(config)

    def train_like(self, run_dir: str) -> bool:
        """Loads the settings of the run in `run_dir` (the Runs tab's "Train again like it"); the next
        Train then warns when the run's data changed since."""
        if self.is_running:
            return False
        try:
            config = TrainingConfig.from_dict(read_run_info(run_dir).config)
        except (ConfigError, TypeError) as exc:
            self.show_error("These settings cannot be used", f"The settings of {run_dir} are unusable: {exc}")
            return False
        self._base_config = config
        self.settings.set_config(config)
        self.data.set_folders(config.train_dir, config.val_dir, config.val_split,
                              self.store.last_validation_folder())
        self.controller.like_run = run_dir
        name = os.path.basename(os.path.normpath(run_dir))
        self.log.log(f"Loaded the settings of {name}. Change any of them, then press Train.")
        self.status_message.emit(f"Settings of {name} loaded: press Train to train again like it.")
        return True

    def resume_last_run(self) -> bool:
        """Continues the last run shown: a stopped or failed one to its configured epochs; a
        completed one asks for the new total first."""
        offer = self.controller.resume_offer()
        if not offer.resumable:
            return False
        run_dir = self.controller.last_result.run_dir
        if not offer.unfinished:
            return self.resume_run_folder(run_dir)
        return self.start_resume(run_dir, batch_size=self.controller.resume_batch_size)

    def resume_run_folder(self, run_dir: str | None = None) -> bool:
        """Asks for a run folder (unless given), shows what it holds and asks for the new total of
        epochs, then resumes it."""
        if self.is_running:
            return False
        if not run_dir:
            last = self.controller.last_result
            run_dir = self.choose_run_folder((last.run_dir if last else "") or self.current_config().out_dir)
            if not run_dir:
                return False
        try:
            info, default = self.controller.resumable_folder(run_dir)
        except ResumeRefused as refused:
            self.show_error(refused.title, str(refused))
            return False
        epochs = self.ask_resume_epochs(info, default)
        return epochs is not None and self.start_resume(run_dir, epochs)

    def start_resume(self, run_dir: str, epochs: int | None = None, batch_size: int | None = None) -> bool:
        """Continues `run_dir` from its checkpoint up to `epochs` in all (None: its configured total),
        with smaller batches when `batch_size` is given (after running out of memory)."""
        if self.is_running:
            return False
        try:
            info, total = self.controller.plan_resume(run_dir, epochs)
        except ResumeRefused as refused:
            self.show_error(refused.title, str(refused))
            return False
        self._show_new_run(total)
        # The earlier epochs are known already: show them while TensorFlow loads.
        self.plots.load_history(info.history)
        self.plots.mark_resume(info.done)
        self.log.log(training_messages.resume_line(run_dir, info.done, total, batch_size))
        self.warm_up.stop()
        return self.controller.start_resume(run_dir, epochs, total, info.done, batch_size)

    def _show_new_run(self, epochs: int) -> None:
        self.summary.hide()
        self.progress_view.new_run(epochs)

    def stop_training(self) -> None:
        """Asks the run to stop within one batch; the partial run folder is kept."""
        if not self.controller.stop():
            return
        self.log.log("Stopping after the current batch…")
        self.status_message.emit("Stopping…")
        self._update_buttons()

    def _on_running_changed(self, running: bool) -> None:
        self.data.setEnabled(not running)
        self.settings.setEnabled(not running)
        self.progress_view.running_changed(running)
        if running:
            # While TensorFlow still loads, the window says so instead.
            self.status_message.emit("Reading the images and building the model…")
        else:
            self._warm_up_current()
        self._update_buttons()
        self.running_changed.emit(running)

    # --- a run's start and end (GUI thread; its progress: gui.run_progress_view) --------------------

    def _on_run_started(self, event: RunStarted) -> None:
        self.run_folder_opened.emit(event.run_dir)
        self.progress_view.run_started(event)
        self.device_seen.emit(event.device)
        self.status_message.emit("Training…")

    def _on_run_finished(self, result: RunResult) -> None:
        self._show_result(result)
        line, level, status = training_messages.finished_words(result, self.plots.early_stop_x is not None)
        self.log.log(line, level)
        self.status_message.emit(status)

    def _on_run_failed(self, message: str, details: str, result: RunResult) -> None:
        self._show_result(result)
        self.log.log(f"The run failed: {message}", "error")
        self.status_message.emit("Training failed.")
        note, resumable = failure_note(result, self.controller.resume_batch_size)
        self.show_error("Training failed", message, details, note=note, offer_resume=resumable)

    def _on_start_failed(self, message: str, details: str) -> None:
        self.log.log(f"Training could not start: {message}", "error")
        self.status_message.emit("Training could not start.")
        self.show_error("Training could not start", message, details)

    def _show_result(self, result: RunResult) -> None:
        self.plots.set_best_epoch(result.best_epoch)
        self.summary.show_result(result)

    # --- importing pretrained weights -------------------------------------------------------------

    def import_weights(self) -> bool:
        """Asks for a weight file for the chosen model and has it checked and copied into the cache."""
        config = self.current_config()
        if self.is_running or self.importing_weights or config.model not in PRETRAINED_MODELS:
            return False
        source = self.choose_weights_file(config.model, weight_file_name(config.model, config.image_size))
        if not source:
            return False
        self.log.log(f"Checking {source} as {config.model} weights…")
        self.status_message.emit("Checking the weight file…")
        return self.weights.start(source, config.model, config.image_size)

    def _on_weights_imported(self, model: str, target: str) -> None:
        self.log.log(f"Imported the {model} weights as {target}: the next runs use them.", "success")
        self.status_message.emit("Weights imported.")

    def _on_weights_import_failed(self, message: str, details: str) -> None:
        self.log.log(f"The weight file was not imported: {message}", "error")
        self.status_message.emit("Weights not imported.")
        self.show_error("These weights cannot be used", message, details)

    def _on_weights_busy(self, busy: bool) -> None:
        self.settings.import_weights_button.setEnabled(
            not busy and self.current_config().model in PRETRAINED_MODELS)
        self._update_buttons()

    # --- things a test replaces ----------------------------------------------------------------

    def choose_weights_file(self, model: str, expected_name: str) -> str:
        return training_dialogs.choose_weights_file(self, model, expected_name)

    def show_error(self, title: str, message: str, details: str = "", note: str = "",
                   offer_resume: bool = False) -> None:
        """An error box that does not block; with `offer_resume` its Resume button resumes the last run."""
        self._error_box = training_dialogs.error_box(self, title, message, details, note,
                                                     self.resume_last_run if offer_resume else None)

    def choose_run_folder(self, start: str) -> str:
        return training_dialogs.choose_run_folder(self, start)

    def ask_resume_epochs(self, info: RunInfo, default: int) -> int | None:
        return training_dialogs.ask_resume_epochs(self, info, default)

    def open_folder(self, path: str) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.abspath(path)))


__all__ = [
    "TrainingPage",
    "default_resume_fn",
    "default_train_fn",
    "is_resumable",
]
