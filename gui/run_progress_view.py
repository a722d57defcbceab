"""The Train tab's live view of a run: the engine's progress (downloads, features, batches, epochs,
the workers of a distributed run, the clock) drawn into the plots, the status strip and its meters,
and written to the log.

The page owns and places these widgets; this object only feeds them from the TrainingController's
signals, so the page keeps the user's commands (train, resume, stop, import weights) and what a run's
start and end mean for the window.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from core.events import BatchEnd, DownloadProgress, EpochEnd, FeatureProgress, FineTuneStarted, RunStarted
from gui import training_messages
from gui.log_panel import LogPanel
from gui.plots import LivePlots
from gui.run_widgets import DataWaitMeter, RunStatus, WorkersMeter
from gui.training_controller import TrainingController

CLOCK_MS = 1000  # how often elapsed time and the ETA are redrawn while a run trains


class RunProgressView(QObject):
    status_message = Signal(str)

    def __init__(self, controller: TrainingController, plots: LivePlots, run_status: RunStatus,
                 log: LogPanel, data_wait: DataWaitMeter, workers: WorkersMeter,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.controller, self.plots, self.run_status, self.log = controller, plots, run_status, log
        self.data_wait, self.workers = data_wait, workers
        self._shown_epoch: int | None = None  # the epoch the status strip shows
        self.clock = QTimer(self)
        self.clock.setInterval(CLOCK_MS)
        self.clock.timeout.connect(self.tick)
        controller.download_progress.connect(self._on_download_progress)
        controller.feature_progress.connect(self._on_feature_progress)
        controller.fine_tune_started.connect(self._on_fine_tune_started)
        controller.batches_end.connect(self._on_batches_end)
        controller.worker_progress.connect(workers.show_progress)
        controller.epoch_end.connect(self._on_epoch_end)

    def new_run(self, epochs: int) -> None:
        """Empty plots over `epochs`, and no meter of the last run."""
        self.plots.reset(epochs)
        self.data_wait.hide()
        self.workers.reset()
        self._shown_epoch = None

    def running_changed(self, running: bool) -> None:
        if running:
            self.run_status.preparing()
            self.clock.start()
        else:
            self.clock.stop()
            self.run_status.progress.hide()
        self.tick()

    def run_started(self, event: RunStarted) -> None:
        """Training begins (TensorFlow is loaded, the data read): the plots span the run, a resumed
        run's earlier epochs are drawn, and the log says where it trains and on what."""
        self.plots.reset(event.epochs)
        if event.fine_tune is not None:  # first: its marker replaces the lr marker of the same epoch
            self._on_fine_tune_started(event.fine_tune)
        if event.history:
            self.plots.load_history(event.history)
            self.plots.mark_resume(event.initial_epoch)
        self.run_status.show_epoch(event.initial_epoch, event.epochs, event.steps_per_epoch)
        for line in training_messages.run_started_lines(event):
            self.log.log(line)

    def tick(self) -> None:
        times = self.controller.times()
        if times is not None:
            self.run_status.show_times(*times)

    def _on_download_progress(self, event: DownloadProgress) -> None:
        if event.done:
            self.run_status.preparing()
            return
        if event.received_bytes == 0:
            self.log.log(training_messages.download_line(event))
            self.status_message.emit("Downloading pretrained weights… (Stop cancels)")
        self.run_status.show_download(event.received_bytes, event.total_bytes)

    def _on_feature_progress(self, event: FeatureProgress) -> None:
        self.run_status.show_features(event.done, event.total, event.images_per_second)
        if event.done == event.total:
            self.log.log(event.describe())
            self.run_status.preparing()
        else:
            self.status_message.emit(f"{event.describe()} (once: later runs reuse them; Stop cancels)")

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

    def _on_epoch_end(self, event: EpochEnd) -> None:
        self.plots.add_epoch(event.epoch, event.logs, event.best_epoch)
        if event.learning_rate_change is not None:
            self.plots.mark_lr_change(event.epoch, *event.learning_rate_change)
        if event.stopped_early:
            self.plots.mark_early_stop(event.epoch)
        self.data_wait.show_fraction(event.data_wait)
        self.log.log(training_messages.epoch_line(event))
