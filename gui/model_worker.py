"""One long-lived thread that owns the opened model: loading, evaluating, predicting and exporting.

Keras keeps some settings per thread, so the model is loaded and used on the same thread, never on
the GUI thread. `ModelService` (GUI thread) queues jobs to `ModelWorker` (moved to its own QThread
through gui.worker.start_worker, so the thread registry knows it) and turns the worker's signals into
plain callbacks that run on the GUI thread. Only plain data crosses: `ModelInfo` describes the loaded
model; the Keras model itself never leaves the worker thread.

The engine modules (core.modeling.model_io, core.modeling.evaluation, ...) import Keras, so they are
imported inside the job functions, on the worker thread: opening the window never imports TensorFlow.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from core.errors import FitStudioError
from core.training.failures import is_out_of_memory
from gui.worker import start_worker


@dataclass(frozen=True)
class ModelInfo:
    """What the window shows about the opened model (plain data, made on the worker thread)."""

    source: str  # what the user chose: a run folder or a .keras file
    name: str
    model_path: str
    run_dir: str | None
    class_names: tuple[str, ...]
    image_size: int
    resize_mode: str
    labels_known: bool
    parameters: int = 0
    train_dir: str | None = None  # from the run's config.json, when there is one
    val_dir: str | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def export_dir(self) -> str:
        """Where exports go by default: <run folder>/export, or beside the .keras file."""
        base = self.run_dir or os.path.dirname(os.path.abspath(self.model_path))
        return os.path.join(base, "export")


def describe(loaded: Any, source: str) -> ModelInfo:
    """ModelInfo for a core.modeling.model_io.LoadedModel (call on the worker thread)."""
    from core.runs.run_info import read_run_config

    config = read_run_config(loaded.run_dir or os.path.dirname(os.path.abspath(loaded.model_path)))
    try:
        parameters = int(loaded.model.count_params())
    except Exception:  # an unbuilt model: the number is only informative
        parameters = 0

    def folder_setting(key: str) -> str | None:
        value = config.get(key)
        return value if isinstance(value, str) and value else None

    return ModelInfo(
        source=source,
        name=loaded.name,
        model_path=loaded.model_path,
        run_dir=loaded.run_dir,
        class_names=tuple(loaded.class_names),
        image_size=int(loaded.image_size),
        resize_mode=loaded.resize_mode,
        labels_known=bool(loaded.labels_known),
        parameters=parameters,
        train_dir=folder_setting("train_dir"),
        val_dir=folder_setting("val_dir"),
    )


@dataclass
class JobContext:
    """What a job function gets on the worker thread."""

    worker: ModelWorker
    job_id: int
    cancel: threading.Event

    @property
    def model(self) -> Any:
        """The LoadedModel; raises FitStudioError when none is open."""
        if self.worker.loaded is None:
            raise FitStudioError("No model is open. Choose a run folder or a .keras file first.")
        return self.worker.loaded

    def set_model(self, loaded: Any) -> None:
        self.worker.loaded = loaded

    def progress(self, done: int, total: int) -> None:
        self.worker.job_progress.emit(self.job_id, int(done), int(total))

    def message(self, text: str) -> None:
        self.worker.job_message.emit(self.job_id, str(text))


@dataclass
class _Job:
    job_id: int
    fn: Callable[[JobContext], Any]
    cancel: threading.Event = field(default_factory=threading.Event)


class ModelWorker(QObject):
    """Runs queued jobs one after another on its thread until `stop()`; owns the LoadedModel."""

    job_started = Signal(int)
    job_progress = Signal(int, int, int)  # job id, done, total
    job_message = Signal(int, str)
    job_result = Signal(int, object)
    job_failed = Signal(int, str, str, bool)  # job id, message, details (empty for user errors), cancelled
    finished = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self.loaded: Any = None  # touched only on the worker thread

    def submit(self, job: _Job) -> None:
        """Thread-safe."""
        self._jobs.put(job)

    def stop(self) -> None:
        """Thread-safe: the thread ends after the queued jobs (cancel them first to end sooner)."""
        self._jobs.put(None)

    @Slot()
    def run(self) -> None:
        try:
            while (job := self._jobs.get()) is not None:
                self._run(job)
        finally:
            self.loaded = None  # the model is released on the thread that made it
            self.finished.emit()

    def _run(self, job: _Job) -> None:
        if job.cancel.is_set():
            self.job_failed.emit(job.job_id, "Stopped.", "", True)
            return
        self.job_started.emit(job.job_id)
        context = JobContext(self, job.job_id, job.cancel)
        try:
            value = job.fn(context)
        except Exception as exc:
            if job.cancel.is_set():
                self.job_failed.emit(job.job_id, "Stopped.", "", True)
            elif isinstance(exc, FitStudioError):
                self.job_failed.emit(job.job_id, str(exc), "", False)
            else:
                text = _out_of_memory(exc) or f"{type(exc).__name__}: {exc}"
                self.job_failed.emit(job.job_id, text, traceback.format_exc(), False)
        else:
            self.job_result.emit(job.job_id, value)


def _out_of_memory(exc: Exception) -> str | None:
    if is_out_of_memory(exc):
        return "Out of memory: use a smaller batch size, or close other programs, and try again."
    return None


@dataclass
class _Callbacks:
    kind: str
    on_result: Callable[[Any], None] | None
    on_error: Callable[[str, str, bool], None] | None
    on_progress: Callable[[int, int], None] | None
    on_message: Callable[[str], None] | None


class JobHandle:
    def __init__(self, job: _Job, kind: str):
        self._job, self.kind = job, kind

    @property
    def job_id(self) -> int:
        return self._job.job_id

    def cancel(self) -> None:
        self._job.cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._job.cancel.is_set()


class ModelService(QObject):
    """The window's one opened model and the queue of work on it (lives on the GUI thread).

    Callbacks given to `submit` run on the GUI thread. `loaded(info)` / `load_failed(source, message)`
    follow every `load()`; `busy_changed(bool)` says whether a job is queued or running.
    """

    loading = Signal(str)  # source
    loaded = Signal(object)  # ModelInfo
    load_failed = Signal(str, str)  # source, message
    busy_changed = Signal(bool)
    job_done = Signal(str)  # kind, after its callbacks ran
    stopped = Signal()  # the thread has ended after stop(), and the model with it

    def __init__(self, load_fn: Callable[[str], Any] | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._load_fn = load_fn
        self.info: ModelInfo | None = None
        self.loading_source: str | None = None
        self.last_error: str | None = None
        self._worker: ModelWorker | None = None
        self._thread: QThread | None = None
        self._ids = itertools.count(1)
        self._jobs: dict[int, tuple[JobHandle, _Callbacks]] = {}

    # --- state -------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    @property
    def has_thread(self) -> bool:
        """The model thread exists (busy, or idle holding the open model) and must stop before exit."""
        return self._thread is not None

    def running(self, kind: str) -> JobHandle | None:
        """The queued or running job of this kind, if any."""
        return next((handle for handle, _ in self._jobs.values() if handle.kind == kind), None)

    # --- loading -----------------------------------------------------------------------------

    def load(self, source: str) -> JobHandle:
        """Opens `source` on the worker thread; the model open before is closed either way."""
        source = (
            os.path.normpath(os.path.abspath(os.path.expanduser(source.strip()))) if source.strip() else ""
        )
        self.info, self.last_error, self.loading_source = None, None, source
        self.loading.emit(source)
        load_fn = self._load_fn

        def job(context: JobContext) -> ModelInfo:
            context.set_model(None)
            if load_fn is None:
                from core.modeling.model_io import load_model

                loaded = load_model(source)
            else:
                loaded = load_fn(source)
            context.set_model(loaded)
            return describe(loaded, source)

        return self.submit(
            "load",
            job,
            on_result=self._on_loaded,
            on_error=lambda message, _details, _cancelled: self._on_load_failed(source, message),
        )

    def _on_loaded(self, info: ModelInfo) -> None:
        if info.source != self.loading_source:
            return  # a newer load was asked for meanwhile
        self.info, self.loading_source = info, None
        self.loaded.emit(info)

    def _on_load_failed(self, source: str, message: str) -> None:
        if source != self.loading_source:
            return
        self.loading_source, self.last_error = None, message
        self.load_failed.emit(source, message)

    # --- jobs --------------------------------------------------------------------------------

    def submit(
        self,
        kind: str,
        fn: Callable[[JobContext], Any],
        *,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[str, str, bool], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        on_message: Callable[[str], None] | None = None,
    ) -> JobHandle:
        """Queues fn(context) for the worker thread; callbacks run on the GUI thread.

        on_error(message, details, cancelled): details is a traceback only for unexpected errors.
        """
        worker = self._ensure_worker()
        job = _Job(next(self._ids), fn)
        handle = JobHandle(job, kind)
        was_busy = self.busy
        self._jobs[job.job_id] = (handle, _Callbacks(kind, on_result, on_error, on_progress, on_message))
        if not was_busy:
            self.busy_changed.emit(True)
        worker.submit(job)
        return handle

    def cancel_all(self) -> None:
        for handle, _ in self._jobs.values():
            handle.cancel()

    def _ensure_worker(self) -> ModelWorker:
        if self._worker is None:
            worker = ModelWorker()
            worker.job_progress.connect(self._on_progress)
            worker.job_message.connect(self._on_message)
            worker.job_result.connect(self._on_result)
            worker.job_failed.connect(self._on_failed)
            self._worker = worker
            self._thread = start_worker(
                worker, "FitStudio model", on_thread_finished=self._on_thread_finished
            )
        return self._worker

    @Slot(int, int, int)
    def _on_progress(self, job_id: int, done: int, total: int) -> None:
        entry = self._jobs.get(job_id)
        if entry and entry[1].on_progress:
            entry[1].on_progress(done, total)

    @Slot(int, str)
    def _on_message(self, job_id: int, text: str) -> None:
        entry = self._jobs.get(job_id)
        if entry and entry[1].on_message:
            entry[1].on_message(text)

    @Slot(int, object)
    def _on_result(self, job_id: int, value: Any) -> None:
        callbacks = self._finish(job_id)
        if callbacks is not None:
            try:
                if callbacks.on_result:
                    callbacks.on_result(value)
            finally:
                self._after(callbacks)

    @Slot(int, str, str, bool)
    def _on_failed(self, job_id: int, message: str, details: str, cancelled: bool) -> None:
        callbacks = self._finish(job_id)
        if callbacks is not None:
            try:
                if callbacks.on_error:
                    callbacks.on_error(message, details, cancelled)
            finally:
                self._after(callbacks)

    def _finish(self, job_id: int) -> _Callbacks | None:
        entry = self._jobs.pop(job_id, None)
        return entry[1] if entry else None

    def _after(self, callbacks: _Callbacks) -> None:
        if not self.busy:
            self.busy_changed.emit(False)
        self.job_done.emit(callbacks.kind)

    # --- shutting down -----------------------------------------------------------------------

    def stop(self) -> None:
        """Cancels the jobs and lets the thread end, without waiting: `stopped` follows when it has.

        Never blocks the GUI thread. Evaluation and prediction stop within one batch, an export at
        its next step (a TensorFlow Lite conversion under way runs to its end first).
        """
        self.cancel_all()
        if self._worker is None:
            self.stopped.emit()
            return
        self._worker.stop()

    @Slot()
    def _on_thread_finished(self) -> None:
        if self._thread is None:
            return
        self._thread.wait()  # `finished` is emitted just before the thread returns: a moment at most
        self._thread, self._worker = None, None
        self.info = None
        self.stopped.emit()
