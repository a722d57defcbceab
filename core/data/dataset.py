"""Folder-per-class datasets: scanning, checking every file, the train/validation split, the report.

A dataset root holds one subfolder per class. Classes are the sorted subfolder names, the order
`keras.utils.image_dataset_from_directory` uses, so a label index means the same in both.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from core.data.images import IMAGE_EXTENSIONS, ImageInfo, UnreadableImage, is_image_file, probe_image
from core.errors import DatasetError

MIN_IMAGES_PER_CLASS_WARNING = 10
# Where the dataset doctor sets images aside (core.data.fixes): inside the root, never a class.
QUARANTINE_DIR = "_quarantine"
IMBALANCE_WARNING_RATIO = 3.0


class ScanCancelled(DatasetError):
    """The scan was asked to stop (another folder was chosen, or the window closed)."""


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class FileSet:
    """Readable images and their integer labels, in a stable order."""

    class_names: list[str]
    paths: list[str]
    labels: np.ndarray  # int32, same length as paths
    skipped: list[SkippedFile] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> dict[str, int]:
        per_label = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, per_label, strict=True)}

    def shard(self, index: int, count: int) -> FileSet:
        """Shard `index` of `count`: every count-th file from `index` on. The shards are disjoint,
        cover the set, differ in size by at most one, and (files being sorted by class) each holds
        every class in nearly the same proportion. Skipped files stay with shard 0 only, so they are
        reported once."""
        if not 0 <= index < count:
            raise ValueError(f"shard {index} of {count} does not exist")
        part = self.subset(np.arange(index, len(self), count))
        part.skipped = self.skipped if index == 0 else []
        return part

    def subset(self, indices: np.ndarray) -> FileSet:
        return FileSet(
            self.class_names,
            [self.paths[i] for i in indices],
            self.labels[indices],
            self.skipped,
        )


@dataclass
class DatasetReport:
    """What `inspect` prints and the window's data panel shows."""

    root: str
    class_names: list[str]
    counts: dict[str, int]
    skipped: list[SkippedFile]
    min_size: tuple[int, int] | None  # (width, height) of the smallest readable image
    max_size: tuple[int, int] | None
    warnings: list[str]
    error: str | None  # why the folder cannot be trained on, None when it can

    @property
    def usable(self) -> bool:
        return self.error is None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict:
        return {
            "root": self.root,
            "usable": self.usable,
            "error": self.error,
            "class_names": self.class_names,
            "counts": self.counts,
            "total": self.total,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "min_size": list(self.min_size) if self.min_size else None,
            "max_size": list(self.max_size) if self.max_size else None,
            "warnings": self.warnings,
        }


def list_classes(root: str) -> list[str]:
    """Sorted class subfolders of `root`; raises DatasetError saying what to fix."""
    if not root:
        raise DatasetError("No folder was given. Choose a folder with one subfolder per class.")
    if not os.path.exists(root):
        raise DatasetError(f"The folder {root} does not exist. Check the path.")
    if not os.path.isdir(root):
        raise DatasetError(
            f"{root} is a file, not a folder. Choose the folder that holds the class subfolders."
        )
    names = sorted(
        entry.name
        for entry in os.scandir(root)
        if entry.is_dir() and not entry.name.startswith(".") and entry.name != QUARANTINE_DIR
    )
    if not names:
        raise DatasetError(
            f"{root} has no class subfolders. Put the images of each class in a subfolder named "
            "after the class, e.g. train/cat/*.jpg and train/dog/*.jpg."
        )
    return names


def find_images(folder: str, cancel: threading.Event | None = None) -> list[str]:
    """Image files below `folder`, recursively, skipping hidden files and folders, sorted.

    Linked folders are followed, each real folder once: a link back up the tree would otherwise
    make the walk endless."""
    found, visited = [], set()
    for parent, dirs, files in os.walk(folder, followlinks=True):
        _stop_if_cancelled(cancel)
        real = os.path.realpath(parent)
        if real in visited:
            dirs[:] = []
            continue
        visited.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(parent, f) for f in sorted(files) if is_image_file(f))
    return found


def scan(
    root: str,
    class_names: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> tuple[FileSet, list[ImageInfo]]:
    """Lists and probes every image under `root`; unreadable files go to `skipped`.

    With `class_names` given (a validation folder), the folder must hold exactly those classes.
    Setting `cancel` stops the scan at the next file with ScanCancelled.
    """
    found_classes = list_classes(root)
    if class_names is not None:
        _require_same_classes(class_names, found_classes, root)
    candidates = [
        (path, label)
        for label, name in enumerate(found_classes)
        for path in find_images(os.path.join(root, name), cancel)
    ]
    results = _probe_all([path for path, _ in candidates], progress, cancel)
    _stop_if_cancelled(cancel)
    paths, labels, infos, skipped = [], [], [], []
    for (path, label), result in zip(candidates, results, strict=True):
        if isinstance(result, ImageInfo):
            paths.append(path)
            labels.append(label)
            infos.append(result)
        else:
            skipped.append(SkippedFile(path, result))
    files = FileSet(found_classes, paths, np.asarray(labels, dtype=np.int32), skipped)
    return files, infos


def inspect(
    root: str,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> DatasetReport:
    """Scans `root` and says whether it can be trained on, never raising for a bad folder (a
    cancelled scan is a report whose error says so)."""
    try:
        files, infos = scan(root, progress=progress, cancel=cancel)
    except DatasetError as exc:
        return DatasetReport(root, [], {}, [], None, None, [], str(exc))
    counts = files.counts()
    areas = [(info.width * info.height, (info.width, info.height)) for info in infos]
    return DatasetReport(
        root=root,
        class_names=files.class_names,
        counts=counts,
        skipped=files.skipped,
        min_size=min(areas)[1] if areas else None,
        max_size=max(areas)[1] if areas else None,
        warnings=count_warnings(counts),
        error=usability_error(root, counts),
    )


def usability_error(root: str, counts: dict[str, int]) -> str | None:
    empty = [name for name, n in counts.items() if n == 0]
    if empty:
        return (
            f"{_names(empty)} in {root} {'has' if len(empty) == 1 else 'have'} no readable image. "
            f"Add images ({', '.join(sorted(IMAGE_EXTENSIONS))}) or remove the folder."
        )
    if len(counts) < 2:
        return (
            f"{root} has only one class ({_names(list(counts))}). A classifier needs at least two "
            "class subfolders."
        )
    return None


def count_warnings(counts: dict[str, int]) -> list[str]:
    found = []
    few = [name for name, n in counts.items() if 0 < n < MIN_IMAGES_PER_CLASS_WARNING]
    if few:
        found.append(
            f"Few images in {_names(few)} (under {MIN_IMAGES_PER_CLASS_WARNING}); "
            "the model will learn little about them."
        )
    nonzero = [n for n in counts.values() if n > 0]
    if len(nonzero) >= 2 and max(nonzero) >= IMBALANCE_WARNING_RATIO * min(nonzero):
        largest = max(counts, key=counts.get)
        smallest = min((k for k in counts if counts[k] > 0), key=counts.get)
        found.append(
            f"Classes are imbalanced: {largest} has {counts[largest]} images, {smallest} has "
            f"{counts[smallest]}. Accuracy will favour the larger class."
        )
    return found


def balanced_class_weights(counts: dict[str, int]) -> dict[str, float]:
    """Weights that make every class count as much in the loss as if all were equally large:
    n_images / (n_classes * n_class), as scikit-learn's class_weight="balanced". Classes without
    images get none (they cannot be trained on anyway)."""
    present = {name: n for name, n in counts.items() if n > 0}
    total = sum(present.values())
    return {name: round(total / (len(present) * n), 4) for name, n in present.items()}


def imbalance_ratio(counts: dict[str, int]) -> float | None:
    """The largest class count over the smallest non-empty one; None with fewer than two classes."""
    present = [n for n in counts.values() if n > 0]
    return round(max(present) / min(present), 3) if len(present) >= 2 else None


def class_mismatch(train_classes: list[str], val_classes: list[str]) -> str | None:
    only_train = [c for c in train_classes if c not in val_classes]
    only_val = [c for c in val_classes if c not in train_classes]
    if not only_train and not only_val:
        return None
    parts = []
    if only_train:
        parts.append(f"only in the training folder: {', '.join(only_train)}")
    if only_val:
        parts.append(f"only in the validation folder: {', '.join(only_val)}")
    return (
        "The training and validation folders must have the same class subfolders; classes "
        + "; ".join(parts)
        + "."
    )


def stratified_split(files: FileSet, fraction: float, seed: int) -> tuple[FileSet, FileSet]:
    """Takes `fraction` of every class (at least one image, never all) for validation."""
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for label in range(len(files.class_names)):
        members = np.flatnonzero(files.labels == label)
        rng.shuffle(members)
        n_val = round(len(members) * fraction)
        n_val = min(max(n_val, 1), len(members) - 1) if len(members) >= 2 else 0
        val_idx.extend(members[:n_val])
        train_idx.extend(members[n_val:])
    train_idx, val_idx = np.sort(train_idx), np.sort(val_idx)
    train = files.subset(train_idx.astype(np.int64))
    val = files.subset(val_idx.astype(np.int64))
    val.skipped = []  # reported once, with the training set
    return train, val


def _require_same_classes(expected: list[str], found: list[str], root: str) -> None:
    problem = class_mismatch(expected, found)
    if problem:
        raise DatasetError(f"{problem} (validation folder: {root})")


def _stop_if_cancelled(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise ScanCancelled("The scan was stopped.")


def _probe_all(
    paths: list[str], progress: Callable[[int, int], None] | None, cancel: threading.Event | None
) -> list:
    def check(path: str) -> ImageInfo | str:
        if cancel is not None and cancel.is_set():
            return "not checked: the scan was stopped"  # the caller raises ScanCancelled
        try:
            return probe_image(path)
        except UnreadableImage as exc:
            return str(exc)

    results = []
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        for done, result in enumerate(pool.map(check, paths, chunksize=16), start=1):
            results.append(result)
            if progress and (done % 256 == 0 or done == len(paths)):
                progress(done, len(paths))
    return results


def _names(classes: list[str]) -> str:
    quoted = [f"'{c}'" for c in classes]
    return ("class " if len(quoted) == 1 else "classes ") + ", ".join(quoted)


def load_split(
    train_dir: str,
    val_dir: str | None,
    val_split: float,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[FileSet, FileSet]:
    """The training and validation file sets of a run; raises DatasetError saying what to fix."""
    train, _ = scan(train_dir, progress=progress)
    problem = usability_error(train_dir, train.counts())
    if problem:
        raise DatasetError(problem)
    if not val_dir:
        train, val = stratified_split(train, val_split, seed)
        if len(val) == 0:
            raise DatasetError(
                f"No image of {train_dir} can be held out for validation: every class has a single "
                "image. Add images (at least two per class) or choose a validation folder."
            )
        return train, val
    val, _ = scan(val_dir, class_names=train.class_names, progress=progress)
    if len(val) == 0:
        raise DatasetError(
            f"The validation folder {val_dir} has no readable image. Add images to its class "
            "subfolders, or leave it empty to split off part of the training images instead."
        )
    train.skipped = train.skipped + val.skipped
    val.skipped = []
    return train, val
