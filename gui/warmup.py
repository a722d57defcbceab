"""Preparing images while the user sets up: the training folder is decoded into the disk cache in the
background, so the first epoch of the next run reads most images instead of decoding them.

One warm-up at a time, on a worker thread (gui.worker.run_in_thread) that runs the engine's
core.data.warmup.warm_up at low priority, for the folders, image size and resize mode of the current
settings. A change of any of them restarts it after a short pause (typing "224" does not start three);
Train stops it at once, and the run takes over the same cache.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, QThread, QTimer, Signal

from core.config import TrainingConfig
from gui.worker import run_in_thread

RESTART_DELAY_MS = 800


@dataclass(frozen=True)
class WarmUpTarget:
    roots: tuple[str, ...]
    image_size: int
    resize_mode: str
    budget_mb: int

    @classmethod
    def of(cls, config: TrainingConfig) -> WarmUpTarget | None:
        """What a run with `config` would read; None when it keeps nothing on disk."""
        if not config.cache or config.cache_disk_mb <= 0:
            return None
        roots = (config.train_dir,) + ((config.val_dir,) if config.val_dir else ())
        return cls(roots, config.image_size, config.resize_mode, config.cache_disk_mb)


def default_warm_up_fn(target: WarmUpTarget, cancel: threading.Event, progress: Callable[[int, int], None]):
    from core.data.disk_cache import DiskCache
    from core.data.warmup import warm_up

    cache = DiskCache(budget_bytes=target.budget_mb * 1024**2)
    return warm_up(target.roots, target.image_size, target.resize_mode, cache=cache, cancel=cancel,
                   on_progress=progress)


class WarmUp(QObject):
    """Keeps one warm-up running for the latest requested target; `text_changed` carries the
    indicator's text ("Preparing images: 62%", "Images prepared", or "" to hide it)."""

    text_changed = Signal(str)

    def __init__(self, warm_up_fn: Callable = default_warm_up_fn, parent: QObject | None = None):
        super().__init__(parent)
        self._warm_up_fn = warm_up_fn
        self._wanted: WarmUpTarget | None = None
        self._running: WarmUpTarget | None = None
        self._cancel: threading.Event | None = None
        self.thread: QThread | None = None
        self.last_error = ""
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(RESTART_DELAY_MS)
        self._timer.timeout.connect(self._start)

    @property
    def target(self) -> WarmUpTarget | None:
        return self._running

    def request(self, target: WarmUpTarget | None) -> None:
        """Warms `target` from now on (after a short pause); None stops warming."""
        if target == self._wanted:
            return
        self._wanted = target
        self._cancel_running()
        if target is None:
            self._timer.stop()
            self.text_changed.emit("")
        else:
            self._timer.start()

    def stop(self) -> None:
        """Stops at once (Train was pressed, the window closes): the thread ends within one image."""
        self.request(None)

    def _cancel_running(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def _start(self) -> None:
        if self.thread is not None:
            return  # the cancelled warm-up is still finishing its image; _done starts the next one
        target = self._wanted
        if target is None:
            return
        cancel = threading.Event()
        self._running, self._cancel = target, cancel
        self.text_changed.emit("Preparing images…")
        self.thread = run_in_thread(
            self._warm_up_fn, target, cancel,
            on_progress=lambda done, total: self._progress(cancel, done, total),
            on_result=lambda result: self._finished(cancel, result),
            on_error=lambda message, details: self._failed(cancel, message),
            on_done=self._done,
            name="FitStudio warm-up",
        )

    def _progress(self, cancel: threading.Event, done: int, total: int) -> None:
        if not cancel.is_set() and total:
            self.text_changed.emit(f"Preparing images: {100 * done // total}%")

    def _finished(self, cancel: threading.Event, result) -> None:
        if not cancel.is_set():
            complete = result.total and result.done == result.total
            self.text_changed.emit("Images prepared" if complete else "")

    def _failed(self, cancel: threading.Event, message: str) -> None:
        self.last_error = message
        if not cancel.is_set():  # the cache only saves time: training works without it
            self.text_changed.emit("")

    def _done(self) -> None:
        finished, cancelled = self._running, self._cancel is None or self._cancel.is_set()
        self.thread, self._running, self._cancel = None, None, None
        # A request that arrived while the last warm-up was finishing its image starts now.
        pending = self._wanted is not None and (cancelled or self._wanted != finished)
        if pending and not self._timer.isActive():
            self._timer.start()
