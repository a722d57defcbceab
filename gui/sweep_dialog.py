"""The Train tab's "Sweep…" dialog: the ranges to search (filled in from the current settings), then
the sweep itself on a worker thread, with a line per trial's progress and Stop.

The engine does the work (core.training.sweep.runner.run_sweep); the dialog only builds the request
and shows events. `sweep_started(sweep_dir)` tells the window, which shows the sweep in the Runs tab.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from core.config import TrainingConfig
from core.errors import FitStudioError
from core.training.sweep.runner import (
    METRICS,
    SweepFinished,
    SweepRequest,
    SweepStarted,
    TrialUpdate,
    run_sweep,
)
from core.training.sweep.space import parse_dimension
from gui.worker import start_worker


def default_ranges(config: TrainingConfig) -> dict[str, str]:
    """The dialog's starting ranges: around the current settings."""
    rate, batch = config.learning_rate, config.batch_size
    batches = sorted({max(1, batch // 2), batch, min(1024, batch * 2)})
    return {
        "learning_rate": f"{max(rate / 10, 1e-7):g}:{min(rate * 10, 1.0):g}",
        "batch_size": ",".join(str(size) for size in batches),
        "model": config.model,
        "augment": "on,off",
    }


class SweepWorker(QObject):
    """Runs one sweep on its thread and re-emits its events (plain dataclasses) as signals."""

    event = Signal(object)  # SweepStarted, TrialUpdate, Message
    done = Signal(object)  # SweepFinished
    failed = Signal(str, str)
    finished = Signal()

    def __init__(self, request: SweepRequest, sweep_fn=run_sweep):
        super().__init__()
        self.request, self.sweep_fn = request, sweep_fn
        self.cancel = threading.Event()

    @Slot()
    def run(self) -> None:
        try:
            finished = self.sweep_fn(self.request, self._on_event, self.cancel)
            self.done.emit(finished)
        except FitStudioError as exc:
            self.failed.emit(str(exc), "")
        except Exception as exc:  # the window must survive a failing sweep
            self.failed.emit(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        finally:
            self.finished.emit()

    def _on_event(self, event: Any) -> None:
        if not isinstance(event, SweepFinished):
            self.event.emit(event)


class SweepDialog(QDialog):
    sweep_started = Signal(str)  # sweep_dir
    sweep_ended = Signal(str)  # sweep_dir

    def __init__(self, config: TrainingConfig, parent=None, sweep_fn=run_sweep):
        super().__init__(parent)
        self.setWindowTitle("Sweep: find good settings")
        self.config, self.sweep_fn = config, sweep_fn
        self.worker: SweepWorker | None = None
        ranges = default_ranges(config)
        self.fields = {name: QLineEdit(text) for name, text in ranges.items()}
        self.trials, self.epochs, self.concurrent = QSpinBox(), QSpinBox(), QSpinBox()
        self.trials.setRange(1, 1000)
        self.trials.setValue(8)
        self.epochs.setRange(1, 10_000)
        self.epochs.setValue(config.epochs)
        self.concurrent.setRange(0, 256)
        self.concurrent.setSpecialValueText("automatic")
        self.scheduler, self.metric = QComboBox(), QComboBox()
        self.scheduler.addItems(["asha", "none"])
        self.metric.addItems(list(METRICS))
        self.problem = QLabel()
        self.problem.setObjectName("sectionHint")
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.start_button, self.stop_button = QPushButton("Start sweep"), QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self._layout()
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)

    def _layout(self) -> None:
        form = QFormLayout()
        labels = {"learning_rate": "Learning rates (a:b log range, or a,b)", "batch_size": "Batch sizes",
                  "model": "Models", "augment": "Augmentation (on,off)"}
        for name, label in labels.items():
            form.addRow(label, self.fields[name])
        form.addRow("Trials", self.trials)
        form.addRow("Epochs per trial", self.epochs)
        form.addRow("Stop bad trials early", self.scheduler)
        form.addRow("Best by", self.metric)
        form.addRow("Trials at once", self.concurrent)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.log, 1)
        layout.addLayout(buttons)

    def request(self) -> SweepRequest:
        """The sweep the fields describe; raises ConfigError saying what is wrong."""
        space = {name: parse_dimension(name, field.text()) for name, field in self.fields.items()
                 if field.text().strip()}
        base = self.config.replace(epochs=self.epochs.value(), workers=1, cluster="")
        return SweepRequest(base, space, self.trials.value(), self.metric.currentText(),
                            self.scheduler.currentText(), self.concurrent.value()).validate()

    @property
    def is_running(self) -> bool:
        return self.worker is not None

    def start(self) -> bool:
        try:
            request = self.request()
        except FitStudioError as exc:
            self.problem.setText(str(exc))
            return False
        self.problem.setText("")
        self.worker = SweepWorker(request, self.sweep_fn)
        self.worker.event.connect(self._on_event)
        self.worker.done.connect(self._on_done)
        self.worker.failed.connect(lambda message, _details: self._line(f"The sweep failed: {message}"))
        start_worker(self.worker, "fitstudio-sweep", on_thread_finished=self._thread_finished)
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self._line("Starting the sweep (a Ray cluster on this computer)…")
        return True

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel.set()
            self.stop_button.setEnabled(False)
            self._line("Stopping every trial; the finished ones are kept…")

    def _on_event(self, event: Any) -> None:
        if isinstance(event, SweepStarted):
            self._line(f"{len(event.trials)} trials in {event.sweep_dir}, {event.concurrent} at once")
            self.sweep_started.emit(event.sweep_dir)
        elif isinstance(event, TrialUpdate):
            metrics = event.metrics
            score = f", val_acc {metrics['val_accuracy']:.3f}" if "val_accuracy" in metrics else ""
            self._line(f"trial {event.index:02d}: {event.status}, {event.epoch} epochs{score}")
        elif hasattr(event, "text"):
            self._line(event.text)

    def _on_done(self, finished: SweepFinished) -> None:
        best = finished.best
        best_text = f" Best: {best['run_dir']} {best['settings']}" if best else ""
        self._line(f"Sweep {finished.status}.{best_text}")
        self.sweep_ended.emit(finished.sweep_dir)

    def _thread_finished(self) -> None:
        self.worker = None
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def _line(self, text: str) -> None:
        self.log.appendPlainText(text)

    def reject(self) -> None:
        """Closing while the sweep runs stops it first (its finished trials are kept)."""
        if self.is_running:
            self.stop()
            return
        super().reject()
