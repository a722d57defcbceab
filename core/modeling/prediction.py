"""Classifying new images: files and folders (searched recursively) -> top-k classes per image.

Images are decoded by the training pipeline (`ImageStream`: the model's input size and the run's
resize mode, threaded), so a prediction sees exactly what evaluation sees. Files that cannot be
read are listed with the reason and the rest go on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from core import files
from core.data.dataset import FileSet, SkippedFile, find_images
from core.errors import FitStudioError
from core.modeling.model_io import LoadedModel, as_loaded

DEFAULT_TOP_K = 3
DEFAULT_BATCH_SIZE = 32


class PredictionCancelled(FitStudioError):
    """The prediction was stopped before it finished."""


@dataclass
class Prediction:
    path: str
    probabilities: np.ndarray  # float32, one per class, in the model's class order
    class_names: list[str]

    @property
    def top_class(self) -> str:
        return self.class_names[int(np.argmax(self.probabilities))]

    @property
    def top_probability(self) -> float:
        return float(np.max(self.probabilities))

    def top_k(self, k: int = DEFAULT_TOP_K) -> list[tuple[str, float]]:
        """The k most probable classes, most probable first (ties: lower class index first)."""
        order = np.argsort(-self.probabilities, kind="stable")[: max(1, k)]
        return [(self.class_names[i], float(self.probabilities[i])) for i in order]


@dataclass
class PredictionResult:
    class_names: list[str]
    predictions: list[Prediction]  # in the order the paths were given / found
    skipped: list[SkippedFile]
    model_path: str = ""

    def csv_header(self, top_k: int = DEFAULT_TOP_K) -> list[str]:
        header = ["path", "top_class", "probability"]
        for rank in range(2, self._k(top_k) + 1):
            header += [f"class_{rank}", f"probability_{rank}"]
        return header

    def rows(self, top_k: int = DEFAULT_TOP_K) -> list[list]:
        """One row per image: path, then (class, probability) for each of the top k."""
        rows = []
        for prediction in self.predictions:
            row: list = [prediction.path]
            for name, probability in prediction.top_k(self._k(top_k)):
                row += [name, probability]
            rows.append(row)
        return rows

    def write_csv(self, path: str, top_k: int = DEFAULT_TOP_K) -> None:
        rows = ([f"{v:.6f}" if isinstance(v, float) else v for v in row] for row in self.rows(top_k))
        files.write_csv(path, self.csv_header(top_k), rows)

    def format_table(self, top_k: int = DEFAULT_TOP_K) -> str:
        """A table for the terminal: path, then "class probability" for each of the top k."""
        k = self._k(top_k)
        cells = [[p.path, *(f"{name} {prob:.3f}" for name, prob in p.top_k(k))] for p in self.predictions]
        header = ["path", "top class", *(f"#{rank}" for rank in range(2, k + 1))]
        widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in [header, *cells]
        ]
        return "\n".join(lines) + "\n"

    def _k(self, top_k: int) -> int:
        return max(1, min(top_k, len(self.class_names)))


def collect_images(paths: Iterable[str]) -> tuple[list[str], list[SkippedFile]]:
    """Image files from `paths`: folders are searched recursively (image extensions only); a file
    named explicitly is tried whatever its extension. Missing paths are reported, duplicates
    dropped, order kept."""
    found: list[str] = []
    skipped: list[SkippedFile] = []
    seen: set[str] = set()
    for path in paths:
        if os.path.isdir(path):
            candidates = find_images(path)
            if not candidates:
                skipped.append(SkippedFile(path, "folder without image files"))
        elif os.path.isfile(path):
            candidates = [path]
        else:
            skipped.append(SkippedFile(path, "does not exist"))
            continue
        for candidate in candidates:
            key = os.path.abspath(candidate)
            if key not in seen:
                seen.add(key)
                found.append(candidate)
    return found, skipped


def predict(
    model: str | LoadedModel,
    paths: Iterable[str],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    decode_threads: int | None = None,
) -> PredictionResult:
    """Classifies the images in `paths` (files or folders). Never raises for an unreadable image:
    it goes to `skipped`. Raises ModelLoadError for a bad model, PredictionCancelled when stopped."""
    from core.data.pipeline import classify_batches

    loaded = as_loaded(model)
    cancel = cancel or threading.Event()
    readable, skipped = collect_images(paths)
    result = PredictionResult(list(loaded.class_names), [], skipped, loaded.model_path)
    if not readable:
        return result
    files = FileSet(list(loaded.class_names), readable, np.zeros(len(readable), dtype=np.int32))
    for indices, probabilities in classify_batches(
        files, loaded.predict, loaded.image_size, batch_size=batch_size, resize_mode=loaded.resize_mode,
        decode_threads=decode_threads, cancel=cancel, on_progress=on_progress, skipped=skipped,
    ):
        for index, row in zip(indices, probabilities, strict=True):
            result.predictions.append(Prediction(readable[index], row, result.class_names))
    if cancel.is_set():
        raise PredictionCancelled("The prediction was stopped.")
    return result
