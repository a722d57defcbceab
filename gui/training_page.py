"""The Train tab: data and settings on the left, live plots, summary and log on the right.

It owns one run at a time: it builds the TrainingConfig from the panels, starts a TrainingWorker on a
QThread, and turns the worker's signals into plots, progress and messages. A run that was stopped,
failed or killed - or a finished one that should train longer - continues in its own run folder
through a ResumeWorker: same signals, same locking, same Stop.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable

from PySide6.QtCore import QSize, Qt, QThread, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.config import LIMITS, PRETRAINED_MODELS, TrainingConfig
from core.data.dataset import inspect
from core.errors import ConfigError
from core.events import (
    BatchEnd,
    DownloadProgress,
    EpochEnd,
    FineTuneStarted,
    RunResult,
    RunStarted,
    WorkerProgress,
)
from core.formatting import format_size
from core.modeling.weights import weight_file_name
from core.runs.run_info import RunInfo, half_batch_size, read_run_info
from gui.data_panel import TRAIN, DataPanel
from gui.log_panel import LogPanel
from gui.plots import LivePlots
from gui.run_widgets import RunStatus, RunSummary
from gui.settings_panel import SettingsPanel
from gui.settings_store import SettingsStore
from gui.warmup import WarmUp, WarmUpTarget
from gui.worker import ResumeWorker, TrainingWorker, run_in_thread, start_worker

DATA_WAIT_TOOLTIP = (
    "Share of the last epoch the model waited for images; high values mean decoding is the "
    "bottleneck (more decode threads, the image cache or a smaller image size help)."
)
DATA_WAIT_HIGH = 0.3  # from here on the meter is shown as a warning
def default_train_fn(config, on_event, cancel, like=None):
    from core.training.driver import train  # keeps TensorFlow's import cost off start-up

    return train(config, on_event, cancel, like=like)


def default_resume_fn(run_dir, on_event, cancel, epochs=None, batch_size=None):
    from core.training.driver import resume  # keeps TensorFlow's import cost off start-up

    return resume(run_dir, on_event, cancel, epochs=epochs, batch_size=batch_size)


def is_resumable(result: RunResult | None) -> bool:
    """The run left a checkpoint (at least one finished epoch) in a folder that still exists."""
    return bool(result is not None and result.run_dir and read_run_info(result.run_dir).can_resume)


def default_import_weights_fn(source, model, image_size):
    from core.modeling.weights import import_weights  # loads TensorFlow to check the file

    return import_weights(source, model, image_size)


def smaller_batch_size(result: RunResult | None) -> int | None:
    """Half the batch size of a run that ran out of memory (None otherwise, or at 1 already)."""
    if result is None or not result.out_of_memory:
        return None
    return half_batch_size(read_run_info(result.run_dir).batch_size)


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
        self.warm_up = WarmUp(parent=self)
        self.warm_up_label = QLabel()
        self.store = store
        self.train_fn = train_fn
        self.resume_fn = resume_fn
        self.import_weights_fn = default_import_weights_fn
        self.importing_weights = False
        self.worker: TrainingWorker | None = None
        self.thread: QThread | None = None
        self.last_result: RunResult | None = None
        self._resume_batch_size: int | None = None  # halved after running out of memory
        self._like_run: str | None = None  # the run whose settings were loaded for the next Train
        self._started_at = 0.0
        self._run_started_at: float | None = None
        self._epochs = 0
        self._initial_epoch = 0
        self._last_batch: BatchEnd | None = None
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
        self.resume_button.setMinimumHeight(36)
        self.resume_button.setToolTip("Continue the last run from its last finished epoch")
        self.resume_run_button.setObjectName("linkButton")
        self.resume_run_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.resume_run_button.setToolTip(
            "Continue any run folder from its last checkpoint, or train a finished run for more epochs"
        )
        self.resume_action.setToolTip(self.resume_button.toolTip())
        self.resume_run_action.setToolTip(self.resume_run_button.toolTip())
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button, 2)
        buttons.addWidget(self.resume_button, 1)
        buttons.addWidget(self.stop_button, 1)
        self.sweep_button = QPushButton("Sweep…")
        self.sweep_button.setToolTip("Search learning rate, batch size, model and augmentation in several "
                                     "trials, bad ones stopped early (the Runs tab shows them)")
        self.sweep_button.clicked.connect(self.open_sweep_dialog)
        buttons.addWidget(self.sweep_button, 1)
        self.warm_up_label.setObjectName("warmUpLabel")
        self.warm_up_label.setToolTip("Decoding the training images into the disk cache while you set up, "
                                      "so the first epoch starts fast; Train takes over from here")
        self.warm_up_label.hide()
        hint_row = QHBoxLayout()
        hint_row.addWidget(self.train_hint, 1)
        hint_row.addWidget(self.warm_up_label, 0, Qt.AlignmentFlag.AlignTop)
        hint_row.addWidget(self.resume_run_button, 0, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
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
        # As wide as the panels need (the data panel's folder rows and table): never clipped on the
        # right, as the horizontal scroll bar is off.
        scrollbar = scroll.style().pixelMetric(scroll.style().PixelMetric.PM_ScrollBarExtent)
        left.setMinimumWidth(max(400, panels.minimumSizeHint().width() + scrollbar + 6))
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(scroll, 1)
        left_layout.addLayout(buttons)
        left_layout.addLayout(hint_row)
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
        self.splitter.setSizes([left.minimumWidth(), 1360 - left.minimumWidth()])
        self.right_splitter.setSizes([560, 160])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.splitter)
        self._attach_to_run_widgets()

    def _attach_to_run_widgets(self) -> None:
        """The summary banner offers Resume, and the status strip shows the data-wait meter.

        Both widgets belong to this page and are only placed into the banner's and strip's layouts,
        so run_widgets.py stays free of training logic.
        """
        self.summary_resume_button.hide()
        summary_layout = self.summary.layout()
        if summary_layout is not None:
            summary_layout.addWidget(self.summary_resume_button)
        self.data_wait_label.setObjectName("dataWaitLabel")
        self.data_wait_label.setToolTip(DATA_WAIT_TOOLTIP)
        self.data_wait_label.hide()
        status_layout = self.run_status.layout()
        if status_layout is not None:
            index = status_layout.indexOf(self.run_status.speed_label)
            status_layout.insertWidget(index + 1 if index >= 0 else -1, self.data_wait_label)
            status_layout.insertWidget(status_layout.indexOf(self.data_wait_label) + 1, self.workers_label)
        self.workers_label.setObjectName("workersLabel")
        self.workers_label.hide()

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

    # --- state ----------------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self.thread is not None

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
        self.stop_button.setEnabled(self.is_running and not (self.worker and self.worker.cancel_requested))
        if self.is_running:
            self.train_hint.setText("")
        else:
            self.train_hint.setText(problem or "")
        self.train_button.setToolTip(problem or "Start training with these settings")
        self._update_resume()

    def _update_resume(self) -> None:
        result = self.last_result
        resumable = not self.is_running and is_resumable(result)
        unfinished = resumable and result.status in ("cancelled", "failed")
        self.resume_action.setEnabled(unfinished)
        self.resume_button.setEnabled(unfinished)
        if unfinished:
            tip = f"Continue {os.path.basename(result.run_dir)} after epoch {result.epochs_completed}"
        else:
            tip = "Continue the last run after a Stop or a failure (nothing to resume now)"
        self.resume_button.setToolTip(tip)
        self.resume_run_action.setEnabled(not self.is_running)
        self.resume_run_button.setEnabled(not self.is_running)
        self.summary_resume_button.setVisible(resumable)
        if resumable:
            self.summary_resume_button.setText("Resume" if unfinished else "Train more…")
            self.summary_resume_button.setToolTip(
                "Continue this run from its last finished epoch" if unfinished
                else "Continue this finished run for more epochs, in the same run folder"
            )

    def _warm_up_current(self) -> None:
        """Prepares the images the next run would read: the training folder once it is scanned, and
        the validation folder once it is ready too."""
        train = self.data.reports.get(TRAIN)
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
        self._prepare_run(config.epochs)
        self.log.log(f"Starting {config.model}: {config.epochs} epochs, batch size {config.batch_size}, "
                     f"{config.image_size} px images.")
        train_fn = functools.partial(self.train_fn, like=self._like_run) if self._like_run else self.train_fn
        self._like_run = None
        self._start_worker(TrainingWorker(config, train_fn))
        return True

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
        self._like_run = run_dir
        name = os.path.basename(os.path.normpath(run_dir))
        self.log.log(f"Loaded the settings of {name}. Change any of them, then press Train.")
        self.status_message.emit(f"Settings of {name} loaded: press Train to train again like it.")
        return True

    def resume_last_run(self) -> bool:
        """Continues the last run shown: a stopped or failed one to its configured epochs; a
        completed one asks for the new total first."""
        result = self.last_result
        if self.is_running or not is_resumable(result):
            return False
        if result.status == "completed":
            return self.resume_run_folder(result.run_dir)
        return self.start_resume(result.run_dir, batch_size=self._resume_batch_size)

    def resume_run_folder(self, run_dir: str | None = None) -> bool:
        """Asks for a run folder (unless given), shows what it holds and asks for the new total of
        epochs, then resumes it."""
        if self.is_running:
            return False
        if not run_dir:
            start = self.last_result.run_dir if self.last_result and self.last_result.run_dir else ""
            run_dir = self.choose_run_folder(start or self.current_config().out_dir)
            if not run_dir:
                return False
        info = read_run_info(run_dir)
        if not info.can_resume:
            self.show_error("This run cannot be resumed", info.resume_problem)
            return False
        default = info.total if info.unfinished else info.done + 5
        epochs = self.ask_resume_epochs(info, default)
        if epochs is None:
            return False
        return self.start_resume(run_dir, epochs)

    def start_resume(self, run_dir: str, epochs: int | None = None, batch_size: int | None = None) -> bool:
        """Continues `run_dir` from its checkpoint up to `epochs` in all (None: its configured total),
        with smaller batches when `batch_size` is given (after running out of memory)."""
        if self.is_running:
            return False
        info = read_run_info(run_dir)
        if not info.can_resume:
            self.show_error("This run cannot be resumed", info.resume_problem)
            return False
        total = epochs or info.total
        if total <= info.done:
            self.show_error(
                "Nothing to resume",
                f"This run has already trained {info.done} epochs of {info.total}. Use "
                f"“{self.resume_run_button.text()}” and ask for more epochs to continue it.",
            )
            return False
        self._prepare_run(total, initial_epoch=info.done)
        # The earlier epochs are known already: show them while TensorFlow loads.
        self.plots.load_history(info.history)
        self.plots.mark_resume(info.done)
        self.log.log(f"Resuming {os.path.basename(os.path.normpath(run_dir))} after epoch {info.done}: "
                     f"training up to epoch {total}"
                     + (f" with batches of {batch_size}." if batch_size else "."))
        self._start_worker(ResumeWorker(run_dir, self.resume_fn, epochs, batch_size))
        return True

    def _prepare_run(self, epochs: int, initial_epoch: int = 0) -> None:
        self.last_result = None
        self.summary.hide()
        self.plots.reset(epochs)
        self._epochs, self._initial_epoch = epochs, initial_epoch
        self._last_batch, self._run_started_at = None, None
        self.data_wait_label.hide()
        self.workers_label.hide()
        self._worker_steps.clear()
        self._started_at = time.monotonic()

    def _start_worker(self, worker: TrainingWorker) -> None:
        self.warm_up.stop()  # at once: the run reads the same disk cache and takes over from here
        self.worker = worker
        self.worker.message.connect(self._on_message)
        self.worker.download_progress.connect(self._on_download_progress)
        self.worker.fine_tune_started.connect(self._on_fine_tune_started)
        self.worker.run_started.connect(self._on_run_started)
        self.worker.batches_end.connect(self._on_batches_end)
        self.worker.worker_progress.connect(self._on_worker_progress)
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
        # While TensorFlow still loads, the window says so instead.
        self.status_message.emit("Reading the images and building the model…")
        self._lock(True)

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
        self._warm_up_current()
        self.idle.emit()

    # --- engine events (GUI thread) -------------------------------------------------------------

    def _on_message(self, text: str, level: str) -> None:
        self.log.log(text, level)

    def _on_download_progress(self, event: DownloadProgress) -> None:
        if event.done:
            self.run_status.preparing()
            return
        if event.received_bytes == 0:
            size = format_size(event.total_bytes) if event.total_bytes else "size unknown"
            self.log.log(f"Downloading {event.file_name} ({size}) from {event.url}…")
            self.status_message.emit("Downloading pretrained weights… (Stop cancels)")
        self.run_status.show_download(event.received_bytes, event.total_bytes)

    def _on_run_started(self, event: RunStarted) -> None:
        self.run_folder_opened.emit(event.run_dir)
        self._run_started_at = time.monotonic()
        self._epochs, self._initial_epoch = event.epochs, event.initial_epoch
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
        if self._last_batch is None or newest.epoch != self._last_batch.epoch:
            self.run_status.show_epoch(newest.epoch, self._epochs, newest.steps)
        self.run_status.show_batch(newest.step, newest.images_per_second)
        self._last_batch = newest

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
        if result.status == "cancelled":
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
        resumable = is_resumable(result)
        self._resume_batch_size = smaller_batch_size(result)
        if resumable and self._resume_batch_size:
            note = (f"Epochs 1 to {result.epochs_completed} are saved. Resume continues the run from "
                    f"there with batches of {self._resume_batch_size} images, half as many.")
        elif resumable:
            note = (f"Epochs 1 to {result.epochs_completed} are saved. Resume continues the run from "
                    "there with the same settings; to change them, start a new run with Train.")
        else:
            note = "No epoch finished, so there is nothing to resume: change the settings and train again."
        self.show_error("Training failed", message, details, note=note, offer_resume=resumable)

    def _on_start_failed(self, message: str, details: str) -> None:
        self.log.log(f"Training could not start: {message}", "error")
        self.status_message.emit("Training could not start.")
        self.show_error("Training could not start", message, details)

    def _show_result(self, result: RunResult) -> None:
        self.last_result = result
        self._resume_batch_size = None
        self.plots.set_best_epoch(result.best_epoch)
        self.summary.show_result(result)

    def _tick(self) -> None:
        if not self._started_at:
            return
        elapsed = time.monotonic() - self._started_at
        remaining = None
        batch = self._last_batch
        session_epochs = self._epochs - self._initial_epoch  # a resumed run times only what it trains
        if batch is not None and self._run_started_at is not None and session_epochs > 0:
            trained = batch.epoch - self._initial_epoch + (batch.step + 1) / max(batch.steps, 1)
            done = trained / session_epochs
            running = time.monotonic() - self._run_started_at
            remaining = running * (1 - done) / done if done > 0 else None
        self.run_status.show_times(elapsed, remaining if self.is_running else None)

    # --- importing pretrained weights -------------------------------------------------------------

    def import_weights(self) -> bool:
        """Asks for a weight file for the chosen model and copies it into the Keras cache once a worker
        thread has checked that it loads into that architecture."""
        config = self.current_config()
        if self.is_running or self.importing_weights or config.model not in PRETRAINED_MODELS:
            return False
        expected = weight_file_name(config.model, config.image_size)
        source = self.choose_weights_file(config.model, expected)
        if not source:
            return False
        self.importing_weights = True
        self.settings.import_weights_button.setEnabled(False)
        self._update_buttons()
        self.log.log(f"Checking {source} as {config.model} weights…")
        self.status_message.emit("Checking the weight file…")
        run_in_thread(self.import_weights_fn, source, config.model, config.image_size,
                      on_result=lambda target: self._on_weights_imported(config.model, target),
                      on_error=self._on_weights_import_failed, on_done=self._on_weights_import_done,
                      name="FitStudio weights import")
        return True

    def _on_weights_imported(self, model: str, target: str) -> None:
        self.log.log(f"Imported the {model} weights as {target}: the next runs use them.", "success")
        self.status_message.emit("Weights imported.")

    def _on_weights_import_failed(self, message: str, details: str) -> None:
        self.log.log(f"The weight file was not imported: {message}", "error")
        self.status_message.emit("Weights not imported.")
        self.show_error("These weights cannot be used", message, details)

    def _on_weights_import_done(self) -> None:
        self.importing_weights = False
        self.settings.import_weights_button.setEnabled(self.current_config().model in PRETRAINED_MODELS)
        self._update_buttons()

    # --- things a test replaces ----------------------------------------------------------------

    def choose_weights_file(self, model: str, expected_name: str) -> str:
        """The file dialog of "Import weights…"; a method so tests can replace it."""
        path, _ = QFileDialog.getOpenFileName(
            self, f"Import {model} weights (Keras's file: {expected_name})", os.path.expanduser("~"),
            "Keras weight files (*.h5 *.hdf5);;All files (*)",
        )
        return path

    def show_error(self, title: str, message: str, details: str = "", note: str = "",
                   offer_resume: bool = False) -> None:
        """A window-modal message box that does not block the event loop (open(), not exec()).

        `message` is the headline (the engine's message, e.g. "Out of memory: reduce batch size or
        image size…"); `note` says what can be done; with `offer_resume` a Resume button continues
        the last run.
        """
        box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.NoButton,
                          self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        if note:
            box.setInformativeText(note)
        if details:
            box.setDetailedText(details)
        if offer_resume:
            resume = box.addButton("Resume", QMessageBox.ButtonRole.AcceptRole)
            resume.clicked.connect(lambda: QTimer.singleShot(0, self.resume_last_run))
            box.addButton(QMessageBox.StandardButton.Close)
            box.setDefaultButton(QMessageBox.StandardButton.Close)
        else:
            box.addButton(QMessageBox.StandardButton.Ok)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        self._error_box = box
        box.open()

    def choose_run_folder(self, start: str) -> str:
        """The folder dialog of "Resume a run folder…"; a method so tests can replace it."""
        return QFileDialog.getExistingDirectory(self, "Resume a run folder", start)

    def ask_resume_epochs(self, info: RunInfo, default: int) -> int | None:
        """Asks for the new total of epochs (more than `info.done`); None when cancelled.
        A method so tests can answer it."""
        text = (f"{info.name}\n{info.describe()}\n\n"
                "Train until epoch:")
        value, ok = QInputDialog.getInt(self, "Resume run", text, default, info.done + 1,
                                        int(LIMITS["epochs"][1]))
        return value if ok else None

    def open_folder(self, path: str) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.abspath(path)))


__all__ = [
    "TrainingPage",
    "default_resume_fn",
    "default_train_fn",
    "is_resumable",
]
