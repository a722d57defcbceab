"""Evaluating a trained model over a folder-per-class dataset: accuracy, loss, per-class
precision/recall/F1, the confusion matrix and one result per image.

Images stream through the training pipeline (`ImageStream`, file order, threaded decoding), so
memory holds a few batches, never the dataset. Each returned image is traced to its path by index,
so every readable image is counted exactly once and files that fail to decode are reported, not
guessed at. Runs in a worker thread: `on_progress(done, total)` after each batch, and a
`threading.Event` checked between batches stops it (`EvaluationCancelled`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core import files
from core.data.dataset import FileSet, SkippedFile, list_classes, scan
from core.errors import DatasetError, FitStudioError
from core.modeling.model_io import LoadedModel, as_loaded
from core.runs.run_folder import LABELS_FILE

LOSS_EPSILON = 1e-7  # probabilities are clipped to [eps, 1] before the log, as Keras does
DEFAULT_BATCH_SIZE = 32


class EvaluationCancelled(FitStudioError):
    """The evaluation was stopped before it finished."""


@dataclass
class ImageResult:
    path: str
    true_label: int
    predicted_label: int
    probabilities: np.ndarray  # float32, one per class

    @property
    def correct(self) -> bool:
        return self.true_label == self.predicted_label

    @property
    def confidence(self) -> float:
        """The model's probability for the class it predicted."""
        return float(self.probabilities[self.predicted_label])

    @property
    def true_probability(self) -> float:
        return float(self.probabilities[self.true_label])


@dataclass
class EvaluationResult:
    class_names: list[str]
    accuracy: float
    loss: float
    per_class: dict[str, dict[str, float]]  # name -> precision, recall, f1, support
    confusion_matrix: np.ndarray  # int64 (classes, classes): row = true class, column = predicted
    images: list[ImageResult]  # in file order
    skipped: list[SkippedFile]
    data_dir: str = ""
    model_path: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.images)

    @property
    def macro_average(self) -> dict[str, float]:
        """Unweighted mean of precision, recall and F1 over the classes."""
        return {
            key: float(np.mean([row[key] for row in self.per_class.values()]))
            for key in ("precision", "recall", "f1")
        }

    def misclassified(self) -> list[ImageResult]:
        """Wrong predictions, the most confidently wrong first."""
        wrong = [image for image in self.images if not image.correct]
        return sorted(wrong, key=lambda image: image.confidence, reverse=True)

    def images_in_cell(self, true_label: int, predicted_label: int) -> list[ImageResult]:
        """The images of one confusion-matrix cell, the most confident first."""
        found = [
            image
            for image in self.images
            if image.true_label == true_label and image.predicted_label == predicted_label
        ]
        return sorted(found, key=lambda image: image.confidence, reverse=True)

    def to_json(self, include_images: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.model_path,
            "data": self.data_dir,
            "total": self.total,
            "accuracy": self.accuracy,
            "loss": self.loss,
            "class_names": list(self.class_names),
            "confusion_matrix": self.confusion_matrix.tolist(),
            "per_class": {name: dict(row) for name, row in self.per_class.items()},
            "macro_average": self.macro_average,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "notes": list(self.notes),
        }
        if include_images:
            data["images"] = [self._image_row(image) for image in self.images]
        return data

    def csv_header(self) -> list[str]:
        return [
            "path",
            "true_class",
            "predicted_class",
            "correct",
            "confidence",
            "true_class_probability",
            *(f"p_{name}" for name in self.class_names),
        ]

    def write_csv(self, path: str) -> None:
        """One row per image: path, true and predicted class, correct, and every probability."""
        files.write_csv(path, self.csv_header(), (self._csv_row(image) for image in self.images))

    def _csv_row(self, image: ImageResult) -> list:
        row = self._image_row(image)
        return [
            row["path"],
            row["true_class"],
            row["predicted_class"],
            int(row["correct"]),
            f"{row['confidence']:.6f}",
            f"{row['true_class_probability']:.6f}",
            *(f"{p:.6f}" for p in image.probabilities),
        ]

    def _image_row(self, image: ImageResult) -> dict[str, Any]:
        return {
            "path": image.path,
            "true_class": self.class_names[image.true_label],
            "predicted_class": self.class_names[image.predicted_label],
            "correct": image.correct,
            "confidence": image.confidence,
            "true_class_probability": image.true_probability,
            "probabilities": [float(p) for p in image.probabilities],
        }


def classification_metrics(
    true_labels: np.ndarray,
    predicted_labels: np.ndarray,
    probabilities: np.ndarray,
    num_classes: int,
) -> dict[str, Any]:
    """accuracy, loss (mean sparse categorical cross-entropy), the confusion matrix (true by row)
    and per-class precision/recall/F1/support, as lists indexed by class.

    A class the model never predicted has precision 0.0 (not NaN), one with no images recall 0.0,
    and F1 is 0.0 whenever precision + recall is 0, as scikit-learn's `zero_division=0` does.
    """
    true_labels = np.asarray(true_labels, dtype=np.int64)
    predicted_labels = np.asarray(predicted_labels, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(len(true_labels), num_classes)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (true_labels, predicted_labels), 1)
    total = len(true_labels)
    hits = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = np.divide(hits, predicted, out=np.zeros(num_classes), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros(num_classes), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(num_classes), where=both > 0)
    if total:
        true_probability = probabilities[np.arange(total), true_labels]
        loss = float(np.mean(-np.log(np.clip(true_probability, LOSS_EPSILON, 1.0))))
        accuracy = float(hits.sum() / total)
    else:
        loss, accuracy = float("nan"), float("nan")
    return {
        "accuracy": accuracy,
        "loss": loss,
        "confusion_matrix": confusion,
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.tolist(),
    }


def evaluate(
    model: str | LoadedModel,
    data_dir: str,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    decode_threads: int | None = None,
) -> EvaluationResult:
    """Classifies every image under `data_dir` (one subfolder per class, the model's classes).

    Raises ModelLoadError / DatasetError with a message for the user, EvaluationCancelled when
    `cancel` is set before the end.
    """
    from core.data.pipeline import classify_batches

    loaded = as_loaded(model)
    cancel = cancel or threading.Event()
    files, notes = evaluation_files(loaded, data_dir)
    skipped = list(files.skipped)
    indices, probabilities = [], []
    for batch_indices, batch_probabilities in classify_batches(
        files, loaded.predict, loaded.image_size, batch_size=batch_size, resize_mode=loaded.resize_mode,
        decode_threads=decode_threads, cancel=cancel, on_progress=on_progress, skipped=skipped,
    ):
        indices.append(batch_indices)
        probabilities.append(batch_probabilities)
    if cancel.is_set():
        raise EvaluationCancelled("The evaluation was stopped.")
    if not indices:
        raise DatasetError(f"No image in {data_dir} could be read; nothing was evaluated.")
    order = np.concatenate(indices)
    probs = np.concatenate(probabilities)
    true_labels = files.labels[order].astype(np.int64)
    predicted_labels = probs.argmax(axis=1)
    class_names = list(files.class_names)
    metrics = classification_metrics(true_labels, predicted_labels, probs, len(class_names))
    per_class = {
        name: {
            "precision": metrics["precision"][i],
            "recall": metrics["recall"][i],
            "f1": metrics["f1"][i],
            "support": int(metrics["support"][i]),
        }
        for i, name in enumerate(class_names)
    }
    images = [
        ImageResult(files.paths[index], int(true), int(pred), prob)
        for index, true, pred, prob in zip(order, true_labels, predicted_labels, probs, strict=True)
    ]
    return EvaluationResult(
        class_names=class_names,
        accuracy=metrics["accuracy"],
        loss=metrics["loss"],
        per_class=per_class,
        confusion_matrix=metrics["confusion_matrix"],
        images=images,
        skipped=skipped,
        data_dir=data_dir,
        model_path=loaded.model_path,
        notes=notes,
    )


def evaluation_files(loaded: LoadedModel, data_dir: str) -> tuple[FileSet, list[str]]:
    """The readable images of `data_dir`, labelled by the model's class order, and notes.

    The folder must have exactly the model's classes. A model without labels.txt (class_0..N)
    takes the folder's sorted class names, the order training uses, when the counts agree.
    """
    found = list_classes(data_dir)
    notes: list[str] = []
    expected = loaded.class_names
    if not loaded.labels_known and len(found) == len(expected):
        notes.append(
            f"The model has no {LABELS_FILE}; its outputs were taken to be the folder's classes "
            f"in sorted order: {', '.join(found)}."
        )
        expected = found
    problem = _class_difference(expected, found)
    if problem:
        raise DatasetError(f"{data_dir} does not have the model's classes: {problem}.")
    files, _ = scan(data_dir)
    # Folder labels follow sorted names; map them to the model's output order.
    remap = np.asarray([expected.index(name) for name in files.class_names], dtype=np.int32)
    labels = remap[files.labels] if len(files) else files.labels
    relabelled = FileSet(list(expected), files.paths, labels.astype(np.int32), files.skipped)
    if len(relabelled) == 0:
        raise DatasetError(f"{data_dir} has no readable image; nothing to evaluate.")
    return relabelled, notes


def _class_difference(model_classes: list[str], folder_classes: list[str]) -> str | None:
    missing = [c for c in model_classes if c not in folder_classes]
    extra = [c for c in folder_classes if c not in model_classes]
    if not missing and not extra:
        return None
    parts = []
    if missing:
        parts.append(f"no subfolder for {', '.join(missing)}")
    if extra:
        parts.append(f"subfolders the model does not know: {', '.join(extra)}")
    return "; ".join(parts) + f" (the model's classes are {', '.join(model_classes)})"
