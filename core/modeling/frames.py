"""Classifying frames: a camera's live frames (the Camera tab) and the frames of a video file
(`predict --video`).

A frame is an (h, w, 3) uint8 RGB array. It reaches the model through
`core.data.images.frame_to_model_input`, the same box and resampling as a decoded image file (and
the run's `crop` or `stretch`), so a frame gets the answer a JPEG of it would get.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from core import files
from core.data.images import frame_to_model_input
from core.data.video import VideoEnd, VideoReader
from core.modeling.model_io import LoadedModel, as_loaded
from core.modeling.prediction import PredictionCancelled

DEFAULT_BATCH_SIZE = 16


def classify_frames(loaded: LoadedModel, frames: Sequence[np.ndarray]) -> np.ndarray:
    """(n, classes) float32 probabilities for n frames of any size."""
    inputs = [frame_to_model_input(frame, loaded.image_size, loaded.resize_mode) for frame in frames]
    if not inputs:
        return np.zeros((0, loaded.num_classes), dtype=np.float32)
    return loaded.predict(np.stack(inputs))


def explain_frame(loaded: LoadedModel, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, heatmap): the heatmap is (h, w) float32 0..1 over the frame itself, for the
    predicted class (Grad-CAM, as the Predict tab's "Why?")."""
    from core.modeling.explain import _normalise, activation_model, align_heatmap

    model_input = frame_to_model_input(frame, loaded.image_size, loaded.resize_mode)
    probabilities, maps = activation_model(loaded).maps(model_input[None], [None])
    height, width = frame.shape[:2]
    heatmap = _normalise(align_heatmap(maps[0][0], width, height, loaded.resize_mode))
    return probabilities[0], heatmap


@dataclass(frozen=True)
class FramePrediction:
    frame_index: int
    time_s: float
    probabilities: np.ndarray  # float32, one per class


@dataclass
class VideoPredictionResult:
    video: str
    class_names: list[str]
    predictions: list[FramePrediction]
    end: VideoEnd

    def csv_header(self) -> list[str]:
        return ["time_s", "frame", "top_class", "probability", *(f"p_{name}" for name in self.class_names)]

    def rows(self) -> list[list]:
        rows = []
        for item in self.predictions:
            top = int(np.argmax(item.probabilities))
            rows.append([
                f"{item.time_s:.3f}", item.frame_index, self.class_names[top],
                f"{float(item.probabilities[top]):.6f}", *(f"{float(p):.6f}" for p in item.probabilities),
            ])
        return rows

    def write_csv(self, path: str) -> None:
        files.write_csv(path, self.csv_header(), self.rows())


def predict_video(
    model: str | LoadedModel,
    path: str,
    *,
    every_s: float | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cancel: threading.Event | None = None,
    on_progress: Callable[[int, float | None], None] | None = None,
) -> VideoPredictionResult:
    """Classifies every frame of the video at `path`, or one per `every_s` seconds. A video broken
    part way keeps the frames before the break (`end` says where). Raises UnreadableVideo for a file
    that is no video, PredictionCancelled when `cancel` is set; on_progress(frames done, seconds in)."""
    loaded = as_loaded(model)
    cancel = cancel or threading.Event()
    predictions: list[FramePrediction] = []
    with VideoReader(path) as reader:
        pending = []
        for frame in reader.frames(every_s):
            if cancel.is_set():
                raise PredictionCancelled("The prediction was stopped.")
            pending.append(frame)
            if len(pending) >= batch_size:
                predictions += _classify(loaded, pending)
                pending = []
                if on_progress:
                    on_progress(len(predictions), frame.time_s)
        predictions += _classify(loaded, pending)
        end = reader.end
    return VideoPredictionResult(path, list(loaded.class_names), predictions, end)


def _classify(loaded: LoadedModel, frames) -> list[FramePrediction]:
    probabilities = classify_frames(loaded, [frame.rgb for frame in frames])
    return [
        FramePrediction(frame.index, frame.time_s, row)
        for frame, row in zip(frames, probabilities, strict=True)
    ]
