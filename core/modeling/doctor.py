"""The dataset doctor: every check of a folder-per-class dataset in one pass, as one plain report.

    check_dataset(train_dir, val_dir, model, on_event=..., cancel=...) -> HealthReport

It reads every image once (core.data.duplicates: digest, perceptual hash, and a 32 px copy for
the quick model), then reports unreadable files, class counts with balancing weights, exact and
near duplicates within a split, the same pictures in training and validation (leaks), likely label
errors and outliers (core.modeling.label_check, over the training and validation images together).
Progress arrives as `CheckProgress` events, from the calling thread; setting `cancel` stops the
check within one step of work and raises CheckCancelled. Findings a person marked "not a problem"
(core.data.fixes.keep, remembered in the training folder) are left out and counted in `kept`.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.data.dataset import (
    FileSet,
    ScanCancelled,
    SkippedFile,
    balanced_class_weights,
    imbalance_ratio,
    scan,
)
from core.data.duplicates import (
    DuplicateGroup,
    Fingerprint,
    Leak,
    find_duplicates,
    find_leaks,
    fingerprint_all,
)
from core.data.fixes import kept_keys
from core.events import CheckEvent, CheckProgress
from core.modeling.label_check import CheckCancelled, LabelIssue, Outlier, folds_for

__all__ = ["CheckCancelled", "HealthReport", "check_dataset"]

QUICK_MODEL = "quick model"


@dataclass
class HealthReport:
    train_dir: str
    val_dir: str | None
    class_names: list[str]
    class_counts: dict[str, dict[str, int]]  # split -> class -> readable images
    class_weights: dict[str, float]  # what `train --class-weights auto` would use
    duplicates: list[DuplicateGroup] = field(default_factory=list)  # each with its split
    leaks: list[Leak] = field(default_factory=list)
    label_issues: list[LabelIssue] = field(default_factory=list)
    outliers: list[Outlier] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    label_source: str = ""  # QUICK_MODEL, the model path, or "" when labels were not checked
    notes: list[str] = field(default_factory=list)
    kept: int = 0  # findings left out because a person kept them
    seconds: float = 0.0

    def imbalance(self) -> dict[str, float | None]:
        return {split: imbalance_ratio(counts) for split, counts in self.class_counts.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "train_dir": self.train_dir,
            "val_dir": self.val_dir,
            "class_names": self.class_names,
            "class_counts": self.class_counts,
            "imbalance_ratio": self.imbalance(),
            "class_weights": self.class_weights,
            "duplicates": [
                {"kind": g.kind, "split": g.split, "paths": g.paths} for g in self.duplicates
            ],
            "leaks": [{"kind": leak.kind, "train": leak.train, "val": leak.val} for leak in self.leaks],
            "label_issues": [
                {"path": i.path, "given": i.given, "suggested": i.suggested, "score": i.score}
                for i in self.label_issues
            ],
            "outliers": [{"path": o.path, "score": o.score} for o in self.outliers],
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "label_check": self.label_source or None,
            "kept": self.kept,
            "notes": self.notes,
            "seconds": round(self.seconds, 2),
        }


def check_dataset(
    train_dir: str,
    val_dir: str | None = None,
    model: Any = None,
    *,
    check_labels: bool = True,
    on_event: Callable[[CheckEvent], None] | None = None,
    cancel: threading.Event | None = None,
    seed: int = 0,
) -> HealthReport:
    """Checks the dataset; `model` (a run folder, a .keras file or a LoadedModel) gives the features
    for the label check, else a quick model is trained. Raises DatasetError for a folder without
    classes or a validation folder with other classes, ModelLoadError for a bad model, and
    CheckCancelled when stopped."""
    started = time.perf_counter()
    steps = _Steps(on_event or (lambda event: None), cancel or threading.Event())
    files = _read(train_dir, val_dir, steps)
    report = HealthReport(
        train_dir, val_dir, files.class_names, files.counts_by_split(),
        balanced_class_weights(files.counts_by_split()["train"]), skipped=files.skipped,
    )
    steps.begin("Comparing images")
    report.duplicates = [
        dataclasses.replace(group, split=split)
        for split in files.split_names
        for group in find_duplicates(files.prints_of(split), steps.cancel)
    ]
    if val_dir:
        report.leaks = find_leaks(files.prints_of("train"), files.prints_of("val"), steps.cancel)
    steps.stop_if_cancelled()
    if check_labels:
        _check_labels(report, files, model, steps, seed)
    _leave_out_kept(report, train_dir)
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class _ReadFiles:
    """The readable images of both splits, training first, with their fingerprints."""

    class_names: list[str]
    split_names: list[str]  # ["train"] or ["train", "val"]
    paths: list[str]
    labels: np.ndarray
    split: list[str]  # the split of each image
    prints: list[Fingerprint]
    small: np.ndarray  # 32 px copies for the quick model
    skipped: list[SkippedFile]

    def prints_of(self, split: str) -> list[Fingerprint]:
        return [p for p, s in zip(self.prints, self.split, strict=True) if s == split]

    def counts_by_split(self) -> dict[str, dict[str, int]]:
        counts = {}
        for name in self.split_names:
            in_split = np.array([s == name for s in self.split], dtype=bool)
            per_class = np.bincount(self.labels[in_split], minlength=len(self.class_names))
            counts[name] = {c: int(n) for c, n in zip(self.class_names, per_class, strict=True)}
        return counts


def _read(train_dir: str, val_dir: str | None, steps: _Steps) -> _ReadFiles:
    try:
        reading = steps.progress("Reading the training folder")
        train, _ = scan(train_dir, progress=reading, cancel=steps.cancel)
        sets = [("train", train)]
        if val_dir:
            reading = steps.progress("Reading the validation folder")
            val, _ = scan(val_dir, class_names=train.class_names, progress=reading, cancel=steps.cancel)
            sets.append(("val", val))
    except ScanCancelled:
        raise CheckCancelled("The check was stopped.") from None
    paths = [path for _, files in sets for path in files.paths]
    labels = np.concatenate([files.labels for _, files in sets])
    split = [name for name, files in sets for _ in files.paths]
    prints, reasons, small = fingerprint_all(
        paths, on_progress=steps.progress("Reading every image"), cancel=steps.cancel, keep_small=True
    )
    steps.stop_if_cancelled()
    skipped = [s for _, files in sets for s in files.skipped]
    skipped += [SkippedFile(path, reason) for path, reason in zip(paths, reasons, strict=True) if reason]
    keep = np.array([p is not None for p in prints], dtype=bool)
    return _ReadFiles(
        class_names=train.class_names,
        split_names=[name for name, _ in sets],
        paths=[p for p, k in zip(paths, keep, strict=True) if k],
        labels=labels[keep],
        split=[s for s, k in zip(split, keep, strict=True) if k],
        prints=[p for p in prints if p is not None],
        small=small[keep],
        skipped=skipped,
    )


def _check_labels(report: HealthReport, files: _ReadFiles, model: Any, steps: _Steps, seed: int) -> None:
    from core.modeling import label_check

    classes = len(files.class_names)
    if folds_for(files.labels, classes) == 0:
        report.notes.append(
            "Labels were not checked: every class needs at least 2 readable images for the "
            "cross-validation that finds likely label errors."
        )
        return
    paths = files.paths
    if model is None:
        probabilities, features = label_check.quick_model_probabilities(
            files.small, files.labels, classes, seed=seed,
            on_progress=steps.progress("Training a quick model to check the labels"), cancel=steps.cancel,
        )
        labels, report.label_source = files.labels, QUICK_MODEL
    else:
        from core.modeling.model_io import as_loaded

        loaded = as_loaded(model)
        indices, features = label_check.model_features(
            loaded, FileSet(files.class_names, paths, files.labels),
            on_progress=steps.progress(f"Computing features with {loaded.name}"), cancel=steps.cancel,
            skipped=report.skipped,
        )
        paths, labels = [paths[i] for i in indices], files.labels[indices]
        steps.begin("Cross-validating on the model's features")
        probabilities = label_check.cross_validated_probabilities(features, labels, classes, seed=seed)
        report.label_source = loaded.model_path
    steps.stop_if_cancelled()
    steps.begin("Ranking likely label errors")
    digests = {p.path: p.digest for p in files.prints}
    report.label_issues = [
        dataclasses.replace(issue, digest=digests[issue.path])
        for issue in label_check.rank_label_issues(paths, labels, probabilities, files.class_names)
    ]
    # An image that looks like another class is not unlike every class: it is listed once, there.
    mislabelled = {issue.path for issue in report.label_issues}
    report.outliers = [
        dataclasses.replace(outlier, digest=digests[outlier.path])
        for outlier in label_check.find_outliers(paths, features)
        if outlier.path not in mislabelled
    ]


def _leave_out_kept(report: HealthReport, train_dir: str) -> None:
    kept = kept_keys(train_dir)
    if not kept:
        return
    for name in ("duplicates", "leaks", "label_issues", "outliers"):
        findings = getattr(report, name)
        remaining = [finding for finding in findings if finding.key not in kept]
        report.kept += len(findings) - len(remaining)
        setattr(report, name, remaining)


class _Steps:
    """Turns each step's (done, total) into CheckProgress events and stops when asked to."""

    def __init__(self, emit: Callable[[CheckEvent], None], cancel: threading.Event):
        self.emit, self.cancel = emit, cancel

    def begin(self, step: str) -> None:
        self.stop_if_cancelled()
        self.emit(CheckProgress(step, 0, 0))

    def progress(self, step: str) -> Callable[[int, int], None]:
        self.begin(step)
        return lambda done, total: self.emit(CheckProgress(step, done, total))

    def stop_if_cancelled(self) -> None:
        if self.cancel.is_set():
            raise CheckCancelled("The check was stopped.")
