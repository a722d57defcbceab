"""Collecting a class from the camera: while a class's button (or number key) is held, frames are
saved into its folder at the chosen rate; releasing it ends the burst, which can be undone.

Widget-free, so tests drive it with frames and a clock. The rate is kept by the frames themselves:
a frame is saved when at least 1/rate seconds have passed since the last saved one, so a camera that
stalls never produces two copies of one picture. Saving a small JPEG takes milliseconds and happens
on the GUI thread; a folder that cannot be written stops the burst with a message.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, Signal

from core.data.capture import Burst, CaptureLog, UndoResult, add_class_folder, count_class_images
from core.errors import FitStudioError

DEFAULT_RATE = 5.0  # frames per second


class FrameCapture(QObject):
    counts_changed = Signal()  # a frame saved, a class added, a burst undone, a new folder
    burst_finished = Signal(str, int)  # class, frames saved
    failed = Signal(str)

    def __init__(self, clock: Callable[[], float] = time.monotonic, parent: QObject | None = None):
        super().__init__(parent)
        self.clock = clock
        self.rate = DEFAULT_RATE
        self.root = ""
        self.counts: dict[str, int] = {}  # images in each class folder
        self.log = CaptureLog()
        self._burst: Burst | None = None
        self._last_saved = float("-inf")

    # --- the training folder -----------------------------------------------------------------

    def set_root(self, root: str) -> None:
        """The training folder whose classes are collected; its class folders are counted."""
        self.stop()
        self.root = root
        self.log = CaptureLog()  # an undo never reaches into another folder
        self.counts = count_class_images(root) if root else {}
        self.counts_changed.emit()

    def recount(self) -> None:
        """Counts the class folders again (files added or removed outside FitStudio)."""
        if self._burst is None:
            self.counts = count_class_images(self.root) if self.root else {}
            self.counts_changed.emit()

    @property
    def class_names(self) -> list[str]:
        return sorted(self.counts)

    def add_class(self, name: str) -> str:
        """Creates the class folder; raises FitStudioError (CaptureError) for a bad name."""
        if not self.root:
            raise FitStudioError("Choose a training folder in the Train tab first.")
        folder = add_class_folder(self.root, name)
        name = os.path.basename(folder)
        self.counts.setdefault(name, 0)
        self.counts_changed.emit()
        return name

    # --- a burst -----------------------------------------------------------------------------

    @property
    def recording(self) -> str | None:
        return self._burst.class_name if self._burst else None

    def start(self, class_name: str) -> None:
        if self._burst is not None or class_name not in self.counts:
            return
        self._burst = self.log.start(class_name, os.path.join(self.root, class_name))
        self._last_saved = float("-inf")

    def offer(self, frame: np.ndarray) -> None:
        """A frame from the camera: saved when a burst is on and its turn has come."""
        if self._burst is None:
            return
        now = self.clock()
        if now - self._last_saved < 1.0 / self.rate - 1e-9:
            return
        try:
            self.log.save(self._burst, frame)
        except FitStudioError as exc:
            self.stop()
            self.failed.emit(str(exc))
            return
        self._last_saved = now
        self.counts[self._burst.class_name] += 1
        self.counts_changed.emit()

    def stop(self) -> None:
        burst, self._burst = self._burst, None
        if burst is None:
            return
        self.log.finish(burst)
        if burst.count:
            self.burst_finished.emit(burst.class_name, burst.count)

    def undo_last_burst(self) -> UndoResult | None:
        self.stop()
        result = self.log.undo_last()
        if result is not None:
            self.counts[result.class_name] = max(0, self.counts.get(result.class_name, 0) - result.removed)
            self.counts_changed.emit()
        return result

    @property
    def can_undo(self) -> bool:
        return self.log.last is not None
