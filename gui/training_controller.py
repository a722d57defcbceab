"""One run at a time, without a widget: what the Train tab does, apart from showing it.

`TrainingController` starts a training or a resume on a worker thread (gui.worker), holds the run's
state (the worker, the last result, the batch size to resume with after running out of memory, the
run whose settings were loaded), decides whether and how the last run can be resumed, and computes the
elapsed and remaining time. It re-emits the worker's signals after updating that state, so a page
that listens to the controller always reads a state that matches what it is told.

Nothing here touches a widget; tests drive it with a fake engine and no window
(tests/gui/test_training_controller.py).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, QThread, Signal, Slot

from core.config import TrainingConfig
from core.events import BatchEnd, RunResult, RunStarted
from core.runs.run_info import RunInfo, half_batch_size, read_run_info
from gui.worker import ResumeWorker, TrainingWorker, start_worker

# The worker's signals that the controller passes on unchanged (after its own bookkeeping).
RELAYED = ("message", "download_progress", "feature_progress", "fine_tune_started", "worker_progress",
           "epoch_end", "start_failed")


def default_train_fn(config, on_event, cancel, like=None):
    from core.training.driver import train  # keeps TensorFlow's import cost off start-up

    return train(config, on_event, cancel, like=like)


def default_resume_fn(run_dir, on_event, cancel, epochs=None, batch_size=None):
    from core.training.driver import resume  # keeps TensorFlow's import cost off start-up

    return resume(run_dir, on_event, cancel, epochs=epochs, batch_size=batch_size)


def is_resumable(result: RunResult | None) -> bool:
    """The run left a checkpoint (at least one finished epoch) in a folder that still exists."""
    return bool(result is not None and result.run_dir and read_run_info(result.run_dir).can_resume)


def smaller_batch_size(result: RunResult | None) -> int | None:
    """Half the batch size of a run that ran out of memory (None otherwise, or at 1 already)."""
    if result is None or not result.out_of_memory:
        return None
    return half_batch_size(read_run_info(result.run_dir).batch_size)


def failure_note(result: RunResult | None, resume_batch_size: int | None) -> tuple[str, bool]:
    """What the user can do after a failed run, and whether Resume is offered."""
    if not is_resumable(result):
        return "No epoch finished, so there is nothing to resume: change the settings and train again.", False
    saved = f"Epochs 1 to {result.epochs_completed} are saved. Resume continues the run from there"
    if resume_batch_size:
        return f"{saved} with batches of {resume_batch_size} images, half as many.", True
    return f"{saved} with the same settings; to change them, start a new run with Train.", True


def remaining_seconds(batch: BatchEnd | None, epochs: int, initial_epoch: int,
                      training_seconds: float) -> float | None:
    """The time left, from the share of this session's epochs trained in `training_seconds`; None
    before the first batch. A resumed run counts only the epochs it trains itself."""
    session_epochs = epochs - initial_epoch
    if batch is None or session_epochs <= 0:
        return None
    trained = batch.epoch - initial_epoch + (batch.step + 1) / max(batch.steps, 1)
    done = trained / session_epochs
    return training_seconds * (1 - done) / done if done > 0 else None


@dataclass(frozen=True)
class ResumeOffer:
    """What Resume would do for the last run shown."""

    resumable: bool  # it left a checkpoint
    unfinished: bool  # stopped or failed: Resume continues it to its configured epochs
    run_name: str = ""
    epochs_completed: int = 0


class ResumeRefused(Exception):
    """A run folder that cannot be resumed as asked: `title` and the message, for a dialog."""

    def __init__(self, title: str, message: str):
        super().__init__(message)
        self.title = title


class TrainingController(QObject):
    message = Signal(str, str)
    download_progress = Signal(object)
    feature_progress = Signal(object)  # FeatureProgress
    fine_tune_started = Signal(object)
    worker_progress = Signal(object)
    epoch_end = Signal(object)
    start_failed = Signal(str, str)
    run_started = Signal(object)  # RunStarted
    batches_end = Signal(object)  # tuple[BatchEnd, ...]
    run_finished = Signal(object)  # RunResult
    run_failed = Signal(str, str, object)  # message, details, RunResult
    running_changed = Signal(bool)
    idle = Signal()  # the training thread has fully stopped

    def __init__(self, train_fn: Callable = default_train_fn, resume_fn: Callable = default_resume_fn,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.train_fn, self.resume_fn = train_fn, resume_fn
        self.worker: TrainingWorker | None = None
        self.thread: QThread | None = None
        self.last_result: RunResult | None = None
        self.resume_batch_size: int | None = None  # halved after running out of memory
        self.like_run: str | None = None  # the run whose settings were loaded for the next Train
        self.epochs = self.initial_epoch = 0
        self.last_batch: BatchEnd | None = None
        self._started_at = 0.0
        self._run_started_at: float | None = None

    # --- state -------------------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self.thread is not None

    @property
    def stopping(self) -> bool:
        return self.worker is not None and self.worker.cancel_requested

    def resume_offer(self) -> ResumeOffer:
        result = self.last_result
        if self.is_running or not is_resumable(result):
            return ResumeOffer(False, False)
        return ResumeOffer(True, result.status in ("cancelled", "failed"), os.path.basename(result.run_dir),
                           result.epochs_completed)

    def times(self, now: float | None = None) -> tuple[float, float | None] | None:
        """(seconds since Train, seconds left or None) of the current or last run; None before any."""
        if not self._started_at:
            return None
        now = time.monotonic() if now is None else now
        remaining = None
        if self.is_running and self._run_started_at is not None:
            remaining = remaining_seconds(self.last_batch, self.epochs, self.initial_epoch,
                                          now - self._run_started_at)
        return now - self._started_at, remaining

    # --- starting and stopping -------------------------------------------------------------------

    def start(self, config: TrainingConfig) -> bool:
        """Trains `config` (already validated); like the loaded run's settings, if any."""
        if self.is_running:
            return False
        train_fn = functools.partial(self.train_fn, like=self.like_run) if self.like_run else self.train_fn
        self.like_run = None
        self._prepare(config.epochs)
        self._start_worker(TrainingWorker(config, train_fn))
        return True

    @staticmethod
    def resumable_folder(run_dir: str) -> tuple[RunInfo, int]:
        """The run folder's state and the total of epochs to suggest: its configured total when it
        is unfinished, five more when it completed; ResumeRefused when it holds no checkpoint."""
        info = read_run_info(run_dir)
        if not info.can_resume:
            raise ResumeRefused("This run cannot be resumed", info.resume_problem)
        return info, info.total if info.unfinished else info.done + 5

    def plan_resume(self, run_dir: str, epochs: int | None = None) -> tuple[RunInfo, int]:
        """The run folder's state and the total of epochs a resume would train to (`epochs`, or its
        configured total); ResumeRefused when it cannot be resumed so."""
        info, _ = self.resumable_folder(run_dir)
        total = epochs or info.total
        if total <= info.done:
            raise ResumeRefused(
                "Nothing to resume",
                f"This run has already trained {info.done} epochs of {info.total}. Use "
                "“Resume a run folder…” and ask for more epochs to continue it.",
            )
        return info, total

    def start_resume(self, run_dir: str, epochs: int | None, total: int, done: int,
                     batch_size: int | None = None) -> bool:
        """Continues `run_dir` (planned with plan_resume) from epoch `done` up to `total`."""
        if self.is_running:
            return False
        self._prepare(total, initial_epoch=done)
        self._start_worker(ResumeWorker(run_dir, self.resume_fn, epochs, batch_size))
        return True

    def stop(self) -> bool:
        """Asks the run to stop within one batch; False when there is nothing (more) to stop."""
        if self.worker is None or self.worker.cancel_requested:
            return False
        self.worker.cancel()
        return True

    def _prepare(self, epochs: int, initial_epoch: int = 0) -> None:
        self.last_result = None
        self.epochs, self.initial_epoch = epochs, initial_epoch
        self.last_batch, self._run_started_at = None, None
        self._started_at = time.monotonic()

    def _start_worker(self, worker: TrainingWorker) -> None:
        self.worker = worker
        for name in RELAYED:
            getattr(worker, name).connect(getattr(self, name))
        worker.run_started.connect(self._on_run_started)
        worker.batches_end.connect(self._on_batches_end)
        worker.run_finished.connect(self._on_run_finished)
        worker.run_failed.connect(self._on_run_failed)
        self.thread = start_worker(worker, "FitStudio training", on_thread_finished=self._on_thread_finished)
        self.running_changed.emit(True)

    # --- the worker's news (GUI thread) -------------------------------------------------------------

    @Slot(object)
    def _on_run_started(self, event: RunStarted) -> None:
        self._run_started_at = time.monotonic()
        self.epochs, self.initial_epoch = event.epochs, event.initial_epoch
        self.run_started.emit(event)

    @Slot(object)
    def _on_batches_end(self, batches: tuple[BatchEnd, ...]) -> None:
        self.last_batch = batches[-1]
        self.batches_end.emit(batches)

    @Slot(object)
    def _on_run_finished(self, result: RunResult) -> None:
        self.last_result, self.resume_batch_size = result, None
        self.run_finished.emit(result)

    @Slot(str, str, object)
    def _on_run_failed(self, message: str, details: str, result: RunResult) -> None:
        self.last_result, self.resume_batch_size = result, smaller_batch_size(result)
        self.run_failed.emit(message, details, result)

    @Slot()
    def _on_thread_finished(self) -> None:
        if self.thread is not None:
            self.thread.wait()  # finished is emitted just before the thread returns
        self.thread, self.worker = None, None
        self.running_changed.emit(False)
        self.idle.emit()
