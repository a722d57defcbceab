"""The Train tab: data and settings on the left, live plots, summary and log on the right.

It only shows. The run's lifecycle, the resume policy and the times belong to a TrainingController
(gui/training_controller.py, no widgets); this page builds the TrainingConfig from its panels, asks
the controller to train, resume or stop, and turns the controller's signals into plots, progress
and messages. The dialogs are in gui/training_dialogs.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import QLabel, QPushButton, QWidget

from core.config import PRETRAINED_MODELS, TrainingConfig
from core.data.dataset import inspect
from core.errors import ConfigError
from core.events import (
    BatchEnd,
    DownloadProgress,
    EpochEnd,
    FeatureProgress,
    FineTuneStarted,
    RunResult,
    RunStarted,
    WorkerProgress,
)
from core.formatting import format_size
from core.modeling.weights import weight_file_name
from core.runs.run_info import RunInfo, read_run_info
from gui import training_dialogs, training_layout
from gui.data_panel import TRAIN, DataPanel
from gui.log_panel import LogPanel
from gui.plots import LivePlots
from gui.run_widgets import RunStatus, RunSummary
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

DATA_WAIT_HIGH = 0.3  # from here on the meter is shown as a warning


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
        self.data_wait_label = QLabel()
        self.workers_label = QLabel()  # a distributed run's workers, each at its batch
        self._worker_steps: dict[int, WorkerProgress] = {}
        self._shown_epoch: int | None = None  # the epoch the status strip shows
        self.train_hint = QLabel()
        self._clock = QTimer(self)
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick)
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
        run.download_progress.connect(self._on_download_progress)
        run.feature_progress.connect(self._on_feature_progress)
        run.fine_tune_started.connect(self._on_fine_tune_started)
        run.run_started.connect(self._on_run_started)
        run.batches_end.connect(self._on_batches_end)
        run.worker_progress.connect(self._on_worker_progress)
        run.epoch_end.connect(self._on_epoch_end)
        run.run_finished.connect(self._on_run_finished)
        run.run_failed.connect(self._on_run_failed)
        run.start_failed.connect(self._on_start_failed)
        run.running_changed.connect(self._on_running_changed)
        run.idle.connect(self.idle)

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
        self.log.log(f"Starting {config.model}: {config.epochs} epochs, batch size {config.batch_size}, "
                     f"{config.image_size} px images.")
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
        self.log.log(f"Resuming {os.path.basename(os.path.normpath(run_dir))} after epoch {info.done}: "
                     f"training up to epoch {total}"
                     + (f" with batches of {batch_size}." if batch_size else "."))
        self.warm_up.stop()
        return self.controller.start_resume(run_dir, epochs, total, info.done, batch_size)

    def _show_new_run(self, epochs: int) -> None:
        self.summary.hide()
        self.plots.reset(epochs)
        self.data_wait_label.hide()
        self.workers_label.hide()
        self._worker_steps.clear()
        self._shown_epoch = None

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
        if running:
            self.run_status.preparing()
            self._clock.start()
            # While TensorFlow still loads, the window says so instead.
            self.status_message.emit("Reading the images and building the model…")
        else:
            self._clock.stop()
            self.run_status.progress.hide()
            self._warm_up_current()
        self._tick()
        self._update_buttons()
        self.running_changed.emit(running)

    # --- engine events (GUI thread) -------------------------------------------------------------

    def _on_download_progress(self, event: DownloadProgress) -> None:
        if event.done:
            self.run_status.preparing()
            return
        if event.received_bytes == 0:
            size = format_size(event.total_bytes) if event.total_bytes else "size unknown"
            self.log.log(f"Downloading {event.file_name} ({size}) from {event.url}…")
            self.status_message.emit("Downloading pretrained weights… (Stop cancels)")
        self.run_status.show_download(event.received_bytes, event.total_bytes)

    def _on_feature_progress(self, event: FeatureProgress) -> None:
        self.run_status.show_features(event.done, event.total, event.images_per_second)
        if event.done == event.total:
            self.log.log(event.describe())
            self.run_status.preparing()
        else:
            self.status_message.emit(f"{event.describe()} (once: later runs reuse them; Stop cancels)")

    def _on_run_started(self, event: RunStarted) -> None:
        self.run_folder_opened.emit(event.run_dir)
        self.plots.reset(event.epochs)
        if event.fine_tune is not None:  # first: its marker replaces the lr marker of the same epoch
            self._on_fine_tune_started(event.fine_tune)
        if event.history:
            self.plots.load_history(event.history)
            self.plots.mark_resume(event.initial_epoch)
        self.run_status.show_epoch(event.initial_epoch, event.epochs, event.steps_per_epoch)
        train_total, val_total = sum(event.train_counts.values()), sum(event.val_counts.values())
        self.log.log(
            f"Training on {event.device}: {len(event.class_names)} classes, {train_total} training and "
            f"{val_total} validation images, {event.steps_per_epoch} batches per epoch."
        )
        spread = event.distribution
        if spread.get("replicas", 1) > 1:
            self.log.log(
                f"{spread['strategy']}: {spread['workers']} worker(s), {spread['replicas']} replicas; "
                f"each step of {spread['global_batch']} images gives {spread['per_replica_batch']} to "
                "each replica."
            )
        self.device_seen.emit(event.device)
        self.status_message.emit("Training…")

    def _on_fine_tune_started(self, event: FineTuneStarted) -> None:
        self.plots.mark_fine_tune(event.epoch, event.learning_rate)

    def _on_batches_end(self, batches: tuple[BatchEnd, ...]) -> None:
        """Every batch since the last call: all go to the plots, the status shows the newest."""
        self.plots.add_batches(batches)
        newest = batches[-1]
        if newest.epoch != self._shown_epoch:
            self.run_status.show_epoch(newest.epoch, self.controller.epochs, newest.steps)
            self._shown_epoch = newest.epoch
        self.run_status.show_batch(newest.step, newest.images_per_second)

    def _on_worker_progress(self, event: WorkerProgress) -> None:
        """The status strip shows every worker's batch: a slow or stuck machine stands out."""
        self._worker_steps[event.rank] = event
        shown = [self._worker_steps[rank] for rank in sorted(self._worker_steps)]
        self.workers_label.setText("workers " + "  ".join(
            f"{p.rank}: {p.step + 1}/{p.steps}" for p in shown))
        self.workers_label.setToolTip("\n".join(
            f"worker {p.rank} on {p.host}: epoch {p.epoch + 1}, batch {p.step + 1} of {p.steps}, "
            f"{p.images_per_second:,.0f} images/s" for p in shown))
        self.workers_label.show()

    def _on_epoch_end(self, event: EpochEnd) -> None:
        self.plots.add_epoch(event.epoch, event.logs, event.best_epoch)
        if event.learning_rate_change is not None:
            self.plots.mark_lr_change(event.epoch, *event.learning_rate_change)
        if event.stopped_early:
            self.plots.mark_early_stop(event.epoch)
        self._show_data_wait(event.data_wait)
        logs = event.logs
        keys = ("loss", "accuracy", "val_loss", "val_accuracy")
        metrics = "  ".join(f"{key} {logs[key]:.4f}" for key in keys if key in logs)
        self.log.log(f"Epoch {event.epoch + 1}/{event.epochs}: {metrics}  ({event.seconds:.1f} s, "
                     f"{event.images_per_second:,.0f} images/s, waited for data {event.data_wait:.0%})")

    def _show_data_wait(self, fraction: float) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        self.data_wait_label.setText(f"data wait {fraction:.0%}")
        # A style sheet on the label itself: the application's sheet knows nothing of this meter.
        colour = "#b54708" if fraction >= DATA_WAIT_HIGH else "#475467"
        self.data_wait_label.setStyleSheet(f"color: {colour};")
        self.data_wait_label.show()

    def _on_run_finished(self, result: RunResult) -> None:
        self._show_result(result)
        if result.status == "cancelled" and not result.run_dir:  # stopped before a run folder was made
            self.log.log(result.message or "Stopped.", "warning")
            self.status_message.emit("Training stopped.")
        elif result.status == "cancelled":
            self.log.log(f"Stopped. The partial run is saved in {os.path.abspath(result.run_dir)}", "warning")
            self.status_message.emit("Training stopped.")
        else:
            self.log.log(f"Finished. The run is saved in {os.path.abspath(result.run_dir)}", "success")
            early = self.plots.early_stop_x is not None
            self.status_message.emit("Training stopped early." if early else "Training finished.")

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

    def _tick(self) -> None:
        times = self.controller.times()
        if times is not None:
            self.run_status.show_times(*times)

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
