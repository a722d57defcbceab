"""The dataset doctor's report as a person reads it: one `Finding` per duplicate group, leak, label
issue, outlier, unreadable file and class count, a figure per check for its summary card, and where
each image lies (`place_of`: its split, class and path below its dataset folder).

Plain data and text only, no Qt: the Data health window (gui/data_health.py) shows these, and the
tests read them without a window.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.paths import inside

if TYPE_CHECKING:
    from core.modeling.doctor import HealthReport

CHECKS = ("duplicates", "leaks", "label_issues", "outliers", "imbalance", "unreadable")
CHECK_TITLES = {
    "duplicates": "Duplicates",
    "leaks": "Leaks",
    "label_issues": "Label errors",
    "outliers": "Outliers",
    "imbalance": "Imbalance",
    "unreadable": "Unreadable",
}
NO_FIGURE = "\u2013"  # an en dash: not checked (yet)
IMBALANCE_WORTH_SAYING = 1.5  # largest/smallest class count from which the card turns amber


@dataclass(frozen=True)
class Finding:
    """One row of the findings list: what it says, the images it shows, how to keep it."""

    check: str
    text: str
    paths: tuple[str, ...]
    key: str = ""  # "" for what cannot be kept (imbalance, unreadable files)
    source: Any = None  # the engine's finding (DuplicateGroup, Leak, LabelIssue, ...)


@dataclass(frozen=True)
class Place:
    """Where an image lies: the dataset folder (split) that holds it, and its path below it."""

    split: str  # "train" or "val"; "" when it lies in neither (a class folder linked elsewhere)
    root: str | None  # the split's folder, where moves of the image happen; None when in neither
    relative: str  # "/"-separated below the root; the whole path when in neither

    @property
    def class_name(self) -> str:
        return self.relative.split("/")[0] if self.root else ""

    def __str__(self) -> str:
        return f"{self.split}/{self.relative}" if self.root else self.relative


@dataclass(frozen=True)
class CardFigure:
    figure: str  # a count, a ratio, or NO_FIGURE
    detail: str
    state: str  # "none" (not checked), "good" or "bad"


def split_of(root: str, val_dir: str | None) -> str:
    """The name a person sees for a dataset folder: "val" for the validation folder, else "train"."""
    return "val" if val_dir and root == val_dir else "train"


def place_of(path: str, train_dir: str, val_dir: str | None) -> Place:
    """The split `path` lies in, with links resolved (core.paths.inside): an image in a class folder
    linked out of the dataset is in neither, and cannot be moved from the window."""
    for root in (train_dir, val_dir):
        resolved = inside(root, path) if root else None
        if resolved is not None:
            relative = os.path.relpath(resolved, os.path.realpath(root)).replace(os.sep, "/")
            return Place(split_of(root, val_dir), root, relative)
    return Place("", None, path)


def findings_of(report: HealthReport) -> dict[str, list[Finding]]:
    """The report's findings as list rows, by check."""

    def where(path: str) -> str:
        return str(place_of(path, report.train_dir, report.val_dir))

    found: dict[str, list[Finding]] = {check: [] for check in CHECKS}
    for group in report.duplicates:
        names = ", ".join(where(p) for p in group.paths[:3]) + (" …" if len(group.paths) > 3 else "")
        text = f"{len(group.paths)} {group.kind} copies: {names}"
        found["duplicates"].append(Finding("duplicates", text, tuple(group.paths), group.key, group))
    for leak in report.leaks:
        found["leaks"].append(Finding(
            "leaks", f"{leak.kind.capitalize()}: {where(leak.train)} is also {where(leak.val)}",
            (leak.train, leak.val), leak.key, leak,
        ))
    for issue in report.label_issues:
        found["label_issues"].append(Finding(
            "label_issues",
            f"{where(issue.path)}: in '{issue.given}', looks like '{issue.suggested}' "
            f"({issue.score:.0%} likely wrong)",
            (issue.path,), issue.key, issue,
        ))
    for outlier in report.outliers:
        found["outliers"].append(Finding(
            "outliers", f"{where(outlier.path)}: unlike the other images (score {outlier.score:.1f})",
            (outlier.path,), outlier.key, outlier,
        ))
    for skipped in report.skipped:
        found["unreadable"].append(Finding("unreadable", f"{where(skipped.path)}: {skipped.reason}",
                                           (skipped.path,), "", skipped))
    for split, counts in report.class_counts.items():
        for name, count in counts.items():
            weight = report.class_weights.get(name) if split == "train" else None
            suffix = f", suggested class weight {weight:.2f}" if weight is not None else ""
            found["imbalance"].append(Finding("imbalance", f"{split}/{name}: {count} images{suffix}", ()))
    return found


def card_figure(check: str, report: HealthReport, count: int) -> CardFigure:
    """What the summary card of `check` shows, given how many of its findings remain."""
    if check == "imbalance":
        ratio = largest_ratio(report)
        if ratio is None:
            return CardFigure(NO_FIGURE, "largest/smallest", "none")
        state = "bad" if ratio >= IMBALANCE_WORTH_SAYING else "good"
        return CardFigure(f"{ratio:.1f}x", "largest/smallest", state)
    if check in ("label_issues", "outliers") and not report.label_source:
        return CardFigure(NO_FIGURE, "not checked", "none")
    if check == "leaks" and not report.val_dir:
        return CardFigure(NO_FIGURE, "no validation folder", "none")
    return count_figure(count)


def count_figure(count: int) -> CardFigure:
    return CardFigure(str(count), "found" if count else "none found", "bad" if count else "good")


def label_note(report: HealthReport) -> str:
    """How the labels were checked, for the line under the buttons."""
    if report.label_source == "quick model":
        return "Labels checked with a quick model trained for the check."
    if report.label_source:
        return f"Labels checked with the features of {report.label_source}."
    return " ".join(report.notes) if report.notes else "Labels were not checked."


def nothing_found(check: str, report: HealthReport | None) -> str:
    if report is None:
        return ""
    if check == "imbalance":
        ratio = largest_ratio(report)
        return (f"The largest class has {ratio:.1f}x the images of the smallest. Tick 'Balance classes' in "
                "the training settings to weight the loss by class.") if ratio else ""
    return f"No {CHECK_TITLES[check].lower()} found."


def hint(finding: Finding) -> str:
    """What a person can do about the selected finding."""
    if finding.check == "unreadable":
        return "This file cannot be trained on. Quarantine it to get it out of the way."
    if len(finding.paths) > 1:
        return ("Pick the copy to move or quarantine; 'Not a problem' keeps them all and hides this "
                "finding from now on.")
    if finding.check == "label_issues":
        return "Move it to the suggested class if the model is right, or keep it where it is."
    return "Quarantine it if it does not belong in the dataset, or keep it."


def largest_ratio(report: HealthReport) -> float | None:
    return max((ratio for ratio in report.imbalance().values() if ratio), default=None)
