"""Background work for the window: QObject workers moved to QThreads, bridging engine events to signals.

Rules kept here so no panel has to remember them:
- a worker is a parentless QObject moved to its own QThread (never a QThread subclass);
- only plain data (str, numbers, the frozen dataclasses of core.events) crosses the thread boundary;
- results reach Python callbacks through a relay QObject that lives on the GUI thread, so callbacks
  always run on the GUI thread (a lambda connected straight to a worker signal would not);
- every started thread is kept in a registry until it has fully stopped, so Python never destroys a
  running QThread, the window can wait for them, and tests can fail on a leaked thread.
"""

from __future__ import annotations

import gc
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from core import tf_runtime
from core.errors import FitStudioError
from core.events import (
    BatchEnd,
    DownloadProgress,
    EpochEnd,
    FeatureProgress,
    FineTuneStarted,
    Message,
    RunFailed,
    RunFinished,
    RunStarted,
    WorkerProgress,
)


@dataclass
class _Entry:
    thread: QThread
    worker: QObject
    relay: QObject | None


_registry: list[_Entry] = []


def running_threads() -> list[QThread]:
    """Threads started through this module that are still running."""
    return [entry.thread for entry in _registry if entry.thread.isRunning()]


def wait_for_threads(timeout_ms: int = 30_000) -> bool:
    """Blocks until every registered thread has stopped; True when all did within the timeout.

    Works without an event loop because worker.finished quits its thread by a direct connection.
    """
    done = all(entry.thread.wait(timeout_ms) for entry in list(_registry))
    _forget_stopped()
    return done


def _forget_stopped() -> None:
    # Only stopped threads are dropped: Python must never destroy a running QThread. A relay is
    # kept until its last callback ran, or the results still queued for it would be lost.
    _registry[:] = [
        entry for entry in _registry
        if not entry.thread.isFinished() or (entry.relay is not None and not entry.relay.delivered)
    ]


def start_worker(
    worker: QObject, name: str, relay: QObject | None = None, on_thread_finished: Callable | None = None
) -> QThread:
    """Moves `worker` (which has `run()` and a `finished` signal) to a new thread and starts it.

    `on_thread_finished` (a slot of a GUI-thread QObject) is connected before the thread starts, so
    it cannot miss a thread that ends at once.
    """
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    # Direct: QThread.quit is thread-safe, and a queued call would never run while the GUI thread
    # is blocked in wait_for_threads().
    worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    if on_thread_finished is not None:
        thread.finished.connect(on_thread_finished)
    _forget_stopped()
    _registry.append(_Entry(thread, worker, relay))
    thread.start()
    return thread


class FunctionWorker(QObject):
    """Runs fn(*args) once; emits result(value) or failed(message, details), then finished."""

    result = Signal(object)
    failed = Signal(str, str)
    progress = Signal(int, int)
    finished = Signal()

    def __init__(self, fn: Callable[..., Any], *args: Any, with_progress: bool = False):
        super().__init__()
        self._fn, self._args, self._with_progress = fn, args, with_progress

    @Slot()
    def run(self) -> None:
        try:
            kwargs = {"progress": self.progress.emit} if self._with_progress else {}
            value = self._fn(*self._args, **kwargs)
        except Exception as exc:
            self.failed.emit(str(exc) or type(exc).__name__, traceback.format_exc())
        else:
            self.result.emit(value)
        finally:
            self.finished.emit()


def _owner_deleted(callback: Callable | None) -> bool:
    """True for a bound method of a QObject whose C++ side is gone (its page closed meanwhile)."""
    owner = getattr(callback, "__self__", None)
    return isinstance(owner, QObject) and not shiboken6.isValid(owner)


class _Relay(QObject):
    """Lives on the GUI thread; calls the plain Python callbacks of run_in_thread there, unless the
    widget they belong to was deleted while the work ran."""

    def __init__(self, on_result, on_error, on_progress, on_done):
        super().__init__()
        self._on_result, self._on_error = on_result, on_error
        self._on_progress, self._on_done = on_progress, on_done
        self.delivered = False  # set once `done` ran: nothing more is queued for this relay

    @staticmethod
    def _call(callback: Callable | None, *args: Any) -> None:
        if callback is not None and not _owner_deleted(callback):
            callback(*args)

    @Slot(object)
    def result(self, value: Any) -> None:
        self._call(self._on_result, value)

    @Slot(str, str)
    def failed(self, message: str, details: str) -> None:
        self._call(self._on_error, message, details)

    @Slot(int, int)
    def progress(self, done: int, total: int) -> None:
        self._call(self._on_progress, done, total)

    @Slot()
    def done(self) -> None:
        self.delivered = True
        self._call(self._on_done)


def run_in_thread(
    fn: Callable[..., Any],
    *args: Any,
    on_result: Callable[[Any], None] | None = None,
    on_error: Callable[[str, str], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_done: Callable[[], None] | None = None,
    name: str = "FitStudio worker",
) -> QThread:
    """Calls fn(*args) on a new thread; the callbacks run on the GUI thread.

    With `on_progress`, fn is called with a `progress=callable(done, total)` keyword.
    """
    worker = FunctionWorker(fn, *args, with_progress=on_progress is not None)
    relay = _Relay(on_result, on_error, on_progress, on_done)
    worker.result.connect(relay.result)
    worker.failed.connect(relay.failed)
    worker.progress.connect(relay.progress)
    worker.finished.connect(relay.done)
    return start_worker(worker, name, relay)


BATCH_INTERVAL_SECONDS = 0.1  # batches cross to the GUI thread at most 10 times a second, as the plots redraw


class BatchCoalescer:
    """Groups the per-batch events of the engine's thread into one delivery per `interval`.

    A batch that comes `interval` or more after the last delivery goes at once with everything
    pending; one that comes sooner waits, and a timer thread delivers it when `interval` is up if no
    later batch did. `flush()` delivers what is pending now: call it before any other event, so
    nothing overtakes a batch. Deliveries happen under one lock, in the order the batches came.
    """

    def __init__(self, deliver: Callable[[tuple[BatchEnd, ...]], None],
                 interval: float = BATCH_INTERVAL_SECONDS):
        self._deliver, self._interval = deliver, interval
        self._pending: list[BatchEnd] = []
        self._last_delivery = float("-inf")
        self._lock = threading.Condition()  # re-entrant: a direct slot may call flush()
        self._timer: threading.Thread | None = None
        self._closed = False

    def add(self, batch: BatchEnd) -> None:
        with self._lock:
            self._pending.append(batch)
            if time.monotonic() - self._last_delivery >= self._interval:
                self._send()
            elif len(self._pending) == 1:
                self._start_timer()
                self._lock.notify()

    def flush(self) -> None:
        with self._lock:
            self._send()

    def close(self) -> None:
        """Delivers what is pending and ends the timer thread."""
        with self._lock:
            self._send()
            self._closed = True
            self._lock.notify()
        if self._timer is not None:
            self._timer.join()

    def _send(self) -> None:
        if self._pending:
            batches, self._pending = tuple(self._pending), []
            self._last_delivery = time.monotonic()
            self._deliver(batches)

    def _start_timer(self) -> None:
        if self._timer is None and not self._closed:
            self._timer = threading.Thread(target=self._deliver_when_due, name="FitStudio batch timer",
                                           daemon=True)
            self._timer.start()

    def _deliver_when_due(self) -> None:
        with self._lock:
            while not self._closed:
                due_in = self._last_delivery + self._interval - time.monotonic()
                if not self._pending:
                    self._lock.wait()
                elif due_in > 0:
                    self._lock.wait(due_in)
                else:
                    self._send()


class TrainingWorker(QObject):
    """Runs one engine job (train, or resume of a run folder) and re-emits its events as signals
    carrying plain data.

    Per-batch events are grouped (BatchCoalescer): `batches_end` carries every batch since the last
    one, at most about 10 times a second whatever the batch rate, so a fast model cannot flood the
    GUI thread. Every other event first sends the batches before it, so the order is kept.
    Nothing here touches a widget: every slot connected to these signals runs on the GUI thread.
    """

    message = Signal(str, str)  # text, level
    download_progress = Signal(object)  # DownloadProgress of pretrained weights
    feature_progress = Signal(object)  # FeatureProgress: backbone features being computed
    run_started = Signal(object)  # RunStarted
    batches_end = Signal(object)  # tuple[BatchEnd, ...]: every batch since the last, in order
    worker_progress = Signal(object)  # WorkerProgress: one Ray worker's place in the epoch
    epoch_end = Signal(object)  # EpochEnd
    fine_tune_started = Signal(object)  # FineTuneStarted
    run_finished = Signal(object)  # RunResult of a completed or cancelled run
    run_failed = Signal(str, str, object)  # message, details, RunResult
    start_failed = Signal(str, str)  # message, details: the run could not start
    finished = Signal()  # always last

    def __init__(self, config, train_fn: Callable[..., Any]):
        super().__init__()
        self._config = config
        self._train_fn = train_fn
        self._cancel = threading.Event()
        self._batches = BatchCoalescer(self.batches_end.emit)
        self._froze = False  # gc.freeze() was called when the run started

    def cancel(self) -> None:
        """Thread-safe: asks the engine to stop within one batch."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def _job(self, on_event: Callable[[Any], None], cancel: threading.Event) -> Any:
        """The engine call, on this worker's thread."""
        return self._train_fn(self._config, on_event, cancel)

    @Slot()
    def run(self) -> None:
        try:
            self._job(self._on_event, self._cancel)
        except FitStudioError as exc:
            self.start_failed.emit(str(exc), "")
        except Exception as exc:  # the engine promises not to raise, but the window must survive
            self.start_failed.emit(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        finally:
            if self._froze:
                gc.unfreeze()  # the run's objects may be collected again, now that it is over
            self._batches.close()
            self.finished.emit()

    def _on_event(self, event) -> None:
        # Called on this worker's thread by the engine.
        if isinstance(event, BatchEnd):
            self._batches.add(event)
            return
        self._batches.flush()
        if isinstance(event, RunStarted) and not self._froze:
            # The model and the file lists, built by now, live as long as the run: out of the
            # collector's sight, no full collection stops the window while it trains.
            gc.freeze()
            self._froze = True
        if isinstance(event, WorkerProgress):
            self.worker_progress.emit(event)
        elif isinstance(event, EpochEnd):
            self.epoch_end.emit(event)
        elif isinstance(event, Message):
            self.message.emit(event.text, event.level)
        elif isinstance(event, DownloadProgress):
            self.download_progress.emit(event)
        elif isinstance(event, FeatureProgress):
            self.feature_progress.emit(event)
        elif isinstance(event, FineTuneStarted):
            self.fine_tune_started.emit(event)
        elif isinstance(event, RunStarted):
            self.run_started.emit(event)
        elif isinstance(event, RunFinished):
            self.run_finished.emit(event.result)
        elif isinstance(event, RunFailed):
            self.run_failed.emit(event.message, event.details, event.result)


class ResumeWorker(TrainingWorker):
    """Continues a run folder: calls resume_fn(run_dir, on_event, cancel, epochs[, batch_size]) with
    the same signals, cancellation and error handling as a training."""

    def __init__(self, run_dir: str, resume_fn: Callable[..., Any], epochs: int | None = None,
                 batch_size: int | None = None):
        super().__init__(config=None, train_fn=resume_fn)
        self.run_dir, self.epochs, self.batch_size = run_dir, epochs, batch_size

    def _job(self, on_event: Callable[[Any], None], cancel: threading.Event) -> Any:
        if self.batch_size is None:
            return self._train_fn(self.run_dir, on_event, cancel, self.epochs)
        return self._train_fn(self.run_dir, on_event, cancel, self.epochs, batch_size=self.batch_size)


class TensorFlowWatcher(QObject):
    """Relays core.tf_runtime's news (heard on whichever thread loads TensorFlow) as a signal whose
    slots run on the GUI thread. `detach()` before the receiver goes away."""

    changed = Signal(str)  # tf_runtime.LOADING, LOADED or FAILED

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        tf_runtime.add_listener(self._relay)

    def _relay(self, state: str) -> None:
        self.changed.emit(state)  # queued to the GUI thread when called from another thread

    def detach(self) -> None:
        tf_runtime.remove_listener(self._relay)
