"""Live prediction on camera frames: at most one frame on the model thread, the newest one next.

A camera gives 30 frames a second and a model may answer two. Queueing every frame would make the
answers lag further and further behind what the camera shows; `LivePredictor` instead keeps one
frame in flight on the model thread (a background job of gui.model_worker.ModelService) and, while
it runs, holds only the newest frame offered, dropping the one it replaces. So the answer is never
more than one prediction old, whatever the model's speed.

Answers are smoothed over the last few frames (the mean of their probabilities), so the bars do not
jump with every frame's noise. `RateMeter` counts frames per second for the indicator.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal

from gui.model_worker import JobContext, ModelService

SMOOTHING_FRAMES = 5


@dataclass(frozen=True)
class HeatmapLayer:
    """A heatmap ready to lay over frames of its size: its colours and, per pixel, their weight in
    1/256ths (core.modeling.explain.overlay's opacity). Made once per answer on the model thread,
    so each shown frame costs an integer blend (~9 ms at 640 x 480) instead of a colouring (~90 ms)."""

    colours: np.ndarray  # (h, w, 3) uint16
    weights: np.ndarray  # (h, w, 1) uint16, 0..256

    @classmethod
    def of(cls, heatmap: np.ndarray) -> HeatmapLayer:
        from core.modeling.explain import colourise

        opacity = 0.25 + 0.45 * np.clip(heatmap, 0, 1)
        weights = np.round(opacity * 256).astype(np.uint16)[..., None]
        return cls(colourise(heatmap).astype(np.uint16), weights)

    def over(self, frame: np.ndarray) -> np.ndarray:
        """The frame with the heatmap over it; the frame alone when its size differs."""
        if frame.shape[:2] != self.colours.shape[:2]:
            return frame
        blended = frame.astype(np.uint16) * (256 - self.weights) + self.colours * self.weights
        return (blended >> 8).astype(np.uint8)


@dataclass(frozen=True)
class LiveAnswer:
    """One prediction, as plain data: made on the model thread, shown on the GUI thread."""

    class_names: tuple[str, ...]
    probabilities: np.ndarray  # this frame's
    heatmap: np.ndarray | None = None  # (h, w) 0..1 over the frame, with "Why?"
    layer: HeatmapLayer | None = None  # the heatmap, coloured for the view


def live_job(frame: np.ndarray, explain: bool) -> Callable[[JobContext], LiveAnswer]:
    def job(context: JobContext) -> LiveAnswer:
        from core.modeling.frames import classify_frames, explain_frame

        loaded = context.model
        if not explain:
            return LiveAnswer(tuple(loaded.class_names), classify_frames(loaded, [frame])[0])
        probabilities, heatmap = explain_frame(loaded, frame)
        return LiveAnswer(tuple(loaded.class_names), probabilities, heatmap, HeatmapLayer.of(heatmap))

    return job


class RateMeter:
    """Events per second over the last `window` seconds."""

    def __init__(self, window: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.window, self.clock = window, clock
        self._times: deque[float] = deque()

    def tick(self) -> None:
        now = self.clock()
        self._times.append(now)
        while self._times and self._times[0] < now - self.window:
            self._times.popleft()

    def rate(self) -> float:
        now = self.clock()
        while self._times and self._times[0] < now - self.window:
            self._times.popleft()
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], 1e-6)
        return (len(self._times) - 1) / span


class LivePredictor(QObject):
    """Predicts on offered frames, one at a time, newest first; emits the smoothed answer."""

    answered = Signal(object, object)  # smoothed LiveAnswer, the frame it was made on
    failed = Signal(str)

    def __init__(self, service: ModelService, parent: QObject | None = None):
        super().__init__(parent)
        self.service = service
        self.explain = False
        self.offered = self.predicted = self.dropped = 0
        self.rate = RateMeter()
        self._in_flight = False
        self._pending: np.ndarray | None = None
        self._recent: deque[np.ndarray] = deque(maxlen=SMOOTHING_FRAMES)
        self._classes: tuple[str, ...] = ()
        self._stopped = False
        service.loaded.connect(lambda _info: self.reset())

    @property
    def busy(self) -> bool:
        return self._in_flight

    def offer(self, frame: np.ndarray) -> None:
        """A new frame: predicted now when the model thread is free, else kept as the next one."""
        if self._stopped or self.service.info is None:
            return
        self.offered += 1
        if self._in_flight:
            if self._pending is not None:
                self.dropped += 1
            self._pending = frame
            return
        self._submit(frame)

    def reset(self) -> None:
        """A new model: forget the smoothing, whose classes may differ."""
        self._recent.clear()
        self._classes = ()

    def stop(self) -> None:
        """No more frames are sent (the answer in flight is still received)."""
        self._stopped = True
        self._pending = None

    def _submit(self, frame: np.ndarray) -> None:
        self._in_flight = True
        self.service.submit(
            "live", live_job(frame, self.explain), background=True,
            on_result=lambda answer: self._on_answer(answer, frame), on_error=self._on_error,
        )

    def _on_answer(self, answer: LiveAnswer, frame: np.ndarray) -> None:
        self.predicted += 1
        self.rate.tick()
        if answer.class_names != self._classes:
            self.reset()
            self._classes = answer.class_names
        self._recent.append(answer.probabilities)
        smoothed = LiveAnswer(answer.class_names, np.mean(self._recent, axis=0), answer.heatmap, answer.layer)
        self._next()
        self.answered.emit(smoothed, frame)

    def _on_error(self, message: str, _details: str, cancelled: bool) -> None:
        self._next()
        if not cancelled:
            self.failed.emit(message)

    def _next(self) -> None:
        self._in_flight = False
        pending, self._pending = self._pending, None
        if pending is not None and not self._stopped:
            self._submit(pending)
