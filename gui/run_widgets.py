"""Small widgets about the current run: the progress strip for the status bar, its data-wait and
workers meters, and the end-of-run summary."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from core.events import RunResult, WorkerProgress
from core.formatting import format_duration, format_size
from core.runs.run_folder import BEST_MODEL_FILE

DATA_WAIT_HIGH = 0.3  # from here on the data-wait meter is shown as a warning
DATA_WAIT_TOOLTIP = (
    "Share of the last epoch the model waited for images; high values mean decoding is the "
    "bottleneck (more decode threads, the image cache or a smaller image size help)."
)


class RunStatus(QWidget):
    """Epoch k of N, a progress bar over the batches of the epoch, images per second, elapsed and ETA."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.epoch_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setFixedWidth(220)
        self.progress.setFormat("batch %v of %m")
        self.speed_label = QLabel()
        self.time_label = QLabel()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(12)
        for widget in (self.epoch_label, self.progress, self.speed_label, self.time_label):
            layout.addWidget(widget)
        self.clear()

    def clear(self) -> None:
        self.epoch_label.setText("")
        self.speed_label.setText("")
        self.time_label.setText("")
        self.progress.hide()

    def preparing(self) -> None:
        self.epoch_label.setText("Preparing…")
        self.speed_label.setText("")
        self.progress.setRange(0, 0)  # busy: TensorFlow loads and the data is checked
        self.progress.setFormat("")
        self.progress.show()

    def show_download(self, received: int, total: int | None) -> None:
        """Pretrained weights are downloading: bytes received of `total` (None: not known)."""
        self.epoch_label.setText("Downloading weights")
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(min(1000, round(1000 * received / total)))
            self.progress.setFormat(f"{format_size(received)} of {format_size(total)}")
        else:
            self.progress.setRange(0, 0)
            self.speed_label.setText(format_size(received))
        self.progress.show()

    def show_features(self, done: int, total: int, images_per_second: float) -> None:
        """The backbone's features of `done` of `total` images are computed."""
        self.epoch_label.setText("Computing features")
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"{done:,} of {total:,} images")
        self.speed_label.setText(f"{images_per_second:.0f} images/s")
        self.progress.show()

    def show_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        self.epoch_label.setText(f"Epoch {epoch + 1} of {epochs}")
        self.progress.setFormat("batch %v of %m")
        self.progress.setRange(0, max(steps, 1))
        self.progress.show()

    def show_batch(self, step: int, images_per_second: float) -> None:
        self.progress.setValue(step + 1)
        self.speed_label.setText(f"{images_per_second:,.0f} images/s")

    def show_times(self, elapsed: float, remaining: float | None) -> None:
        eta = f" · {format_duration(remaining)} left" if remaining is not None else ""
        self.time_label.setText(f"{format_duration(elapsed)} elapsed{eta}")


class RunSummary(QFrame):
    """How the last run ended, its best validation accuracy and epoch, duration, and its folder."""

    open_folder_requested = Signal(str)
    evaluate_requested = Signal(str)  # the run folder: open its model in the Evaluate tab

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("runSummary")
        self.title = QLabel()
        self.title.setObjectName("summaryTitle")
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_button = QPushButton("Open run folder")
        self.open_button.clicked.connect(lambda: self.open_folder_requested.emit(self.run_dir))
        self.evaluate_button = QPushButton("Evaluate this model")
        self.evaluate_button.setToolTip("Open this run's model in the Evaluate tab and evaluate it on its "
                                        "validation folder")
        self.evaluate_button.clicked.connect(lambda: self.evaluate_requested.emit(self.run_dir))
        self.run_dir = ""
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self.title)
        text.addWidget(self.details)
        layout = QHBoxLayout(self)
        layout.addLayout(text, 1)
        layout.addWidget(self.evaluate_button)
        layout.addWidget(self.open_button)
        self.hide()

    def show_result(self, result: RunResult) -> None:
        self.run_dir = result.run_dir
        titles = {
            "completed": "Training finished", "cancelled": "Training stopped", "failed": "Training failed"
        }
        self.setProperty("status", result.status)
        self.style().unpolish(self)
        self.style().polish(self)
        self.title.setText(titles.get(result.status, result.status))
        parts = []
        if result.best_val_accuracy is not None and result.best_epoch is not None:
            accuracy, epoch = result.best_val_accuracy, result.best_epoch + 1
            parts.append(f"Best validation accuracy <b>{accuracy:.1%}</b> at epoch {epoch}")
        parts.append(f"{result.epochs_completed} epoch{'s' if result.epochs_completed != 1 else ''} "
                     f"in {format_duration(result.duration_seconds)}")
        if result.message and result.status != "completed":
            parts.append(result.message)
        folder = os.path.abspath(result.run_dir) if result.run_dir else ""
        lines = " · ".join(parts)
        if folder:
            lines += f"<br><span style='color:#475467'>{folder}</span>"
        self.details.setText(lines)
        self.open_button.setEnabled(bool(result.run_dir) and os.path.isdir(result.run_dir))
        has_model = bool(result.run_dir) and os.path.isfile(os.path.join(result.run_dir, BEST_MODEL_FILE))
        self.evaluate_button.setEnabled(has_model)
        self.evaluate_button.setToolTip(
            "Open this run's model in the Evaluate tab and evaluate it on its validation folder" if has_model
            else "This run saved no model to evaluate")
        self.show()


class DataWaitMeter(QLabel):
    """"data wait 42%": the share of the last epoch the model waited for images; a warning colour
    from DATA_WAIT_HIGH on. Placed in the status strip by gui.training_layout."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("dataWaitLabel")
        self.setToolTip(DATA_WAIT_TOOLTIP)
        self.hide()

    def show_fraction(self, fraction: float) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        self.setText(f"data wait {fraction:.0%}")
        # A style sheet on the label itself: the application's sheet knows nothing of this meter.
        colour = "#b54708" if fraction >= DATA_WAIT_HIGH else "#475467"
        self.setStyleSheet(f"color: {colour};")
        self.show()


class WorkersMeter(QLabel):
    """A distributed run's workers, each at its batch ("workers 0: 4/4  1: 3/4"), so a slow or stuck
    machine stands out; the tooltip names each worker's host, epoch and speed."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("workersLabel")
        self._latest: dict[int, WorkerProgress] = {}  # rank -> its newest progress
        self.hide()

    def reset(self) -> None:
        self._latest.clear()
        self.hide()

    def show_progress(self, event: WorkerProgress) -> None:
        self._latest[event.rank] = event
        shown = [self._latest[rank] for rank in sorted(self._latest)]
        self.setText("workers " + "  ".join(f"{p.rank}: {p.step + 1}/{p.steps}" for p in shown))
        self.setToolTip("\n".join(
            f"worker {p.rank} on {p.host}: epoch {p.epoch + 1}, batch {p.step + 1} of {p.steps}, "
            f"{p.images_per_second:,.0f} images/s" for p in shown))
        self.show()
