"""Ranking unlabeled images for a person to label: the images the model is least sure of first.

Strategies (each scores an image's probabilities; the highest score is asked first):
- margin: top-1 minus top-2 probability, smallest first (torn between two classes);
- entropy: the entropy of all the probabilities, largest first (unsure among many classes);
- least-confidence: the top probability, smallest first;
- random: a seeded shuffle, the baseline the others are measured against (bench/active_learning.py).

Near duplicates (the dataset doctor's perceptual hash and grey-copy correlation,
core.data.duplicates) are spread out: the first copy of a picture keeps its place, and each further
copy is deferred behind every image that has no copy ranked before it, so one batch of the ranking
does not hold ten copies of one picture. Ties keep the order the files were found in.

`accept_above` moves the images the model is sure of into the training folder's class folders,
through core.data.labeling (logged, undoable, never overwriting, never outside the unlabeled folder).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from core.data.dataset import SkippedFile
from core.data.duplicates import Fingerprint, UnionFind, find_duplicates, fingerprint_all
from core.data.fixes import Move, MoveError
from core.data.labeling import label_image
from core.errors import DatasetError

STRATEGIES = ("margin", "entropy", "least-confidence", "random")
DEFAULT_STRATEGY = "margin"


@dataclass(frozen=True)
class Suggestion:
    """One unlabeled image, as the model sees it. Plain data: it crosses to the window's thread."""

    path: str
    suggested: str  # the most probable class
    probability: float  # its probability
    margin: float  # top-1 minus top-2 probability
    entropy: float  # in nats, of all the class probabilities
    rank: int  # 1 = ask first
    probabilities: tuple[float, ...] = field(default=(), compare=False, repr=False)

    def to_json(self) -> dict:
        return {
            "path": self.path, "suggested": self.suggested, "probability": round(self.probability, 6),
            "margin": round(self.margin, 6), "entropy": round(self.entropy, 6), "rank": self.rank,
        }


@dataclass
class Ranking:
    unlabeled_dir: str
    strategy: str
    class_names: list[str]
    suggestions: list[Suggestion]  # rank order, most uncertain first
    skipped: list[SkippedFile]  # unreadable files, with the reason
    model_path: str = ""

    def to_json(self, limit: int | None = None) -> dict:
        return {
            "unlabeled": self.unlabeled_dir, "strategy": self.strategy, "model": self.model_path,
            "class_names": self.class_names,
            "images": [s.to_json() for s in self.suggestions[:limit]],
            "total": len(self.suggestions),
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
        }


@dataclass
class Accepted:
    moves: list[Move]
    refused: list[SkippedFile]  # path and why it was not moved


# --- scores and order ------------------------------------------------------------------------------


def margins(probabilities: np.ndarray) -> np.ndarray:
    top_two = -np.sort(-probabilities, axis=1)[:, :2]
    if probabilities.shape[1] < 2:
        return top_two[:, 0]
    return top_two[:, 0] - top_two[:, 1]


def entropies(probabilities: np.ndarray) -> np.ndarray:
    clipped = np.clip(probabilities, 1e-12, 1.0)
    return -(probabilities * np.log(clipped)).sum(axis=1)


def uncertainty(probabilities: np.ndarray, strategy: str, seed: int = 0) -> np.ndarray:
    """One score per row of `probabilities` (n, classes): the higher, the sooner it is asked."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if strategy == "margin":
        return -margins(probabilities)
    if strategy == "entropy":
        return entropies(probabilities)
    if strategy == "least-confidence":
        return -probabilities.max(axis=1)
    if strategy == "random":
        return np.random.default_rng(seed).random(len(probabilities))
    raise ValueError(f"Unknown strategy '{strategy}'. Choose one of: {', '.join(STRATEGIES)}.")


def uncertainty_order(probabilities: np.ndarray, strategy: str, seed: int = 0) -> np.ndarray:
    """Row indices, most uncertain first; ties in the given order."""
    return np.argsort(-uncertainty(probabilities, strategy, seed), kind="stable")


def spread_duplicates(order: np.ndarray | list[int], groups: list[list[int]]) -> list[int]:
    """`order` with near duplicates spread out. `groups` lists the rows that are copies of one
    picture. Each row's place is (how many of its copies come before it, its place in `order`):
    first copies keep their order, second copies follow all of them, and so on."""
    position = {int(row): place for place, row in enumerate(order)}
    copies_before = dict.fromkeys(position, 0)
    for group in groups:
        for count, row in enumerate(sorted(group, key=position.__getitem__)):
            copies_before[row] = count
    return sorted(position, key=lambda row: (copies_before[row], position[row]))


def duplicate_groups(prints: list[Fingerprint | None]) -> list[list[int]]:
    """Rows whose images are the same picture (exact or near), as the dataset doctor finds them."""
    readable = [index for index, item in enumerate(prints) if item is not None]
    if len(readable) < 2:
        return []
    row_of = {prints[index].path: index for index in readable}
    joined = UnionFind(len(prints))
    for group in find_duplicates([prints[index] for index in readable]):
        rows = [row_of[path] for path in group.paths]
        for other in rows[1:]:
            joined.union(rows[0], other)
    return joined.groups()


def rank_probabilities(
    paths: list[str],
    probabilities: np.ndarray,
    class_names: list[str],
    strategy: str = DEFAULT_STRATEGY,
    groups: list[list[int]] | None = None,
    seed: int = 0,
) -> list[Suggestion]:
    """The suggestions for `paths` (one row of `probabilities` each), most uncertain first, near
    duplicates (`groups` of row indices) spread out."""
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(len(paths), len(class_names))
    order = uncertainty_order(probabilities, strategy, seed)
    if groups:
        order = spread_duplicates(order, groups)
    top = probabilities.argmax(axis=1) if len(paths) else np.zeros(0, int)
    margin, entropy = margins(probabilities), entropies(probabilities)
    return [
        Suggestion(
            paths[row], class_names[top[row]], float(probabilities[row, top[row]]), float(margin[row]),
            float(entropy[row]), rank, tuple(float(p) for p in probabilities[row]),
        )
        for rank, row in enumerate((int(r) for r in order), start=1)
    ]


# --- a folder --------------------------------------------------------------------------------------


def rank_folder(
    model,
    unlabeled_dir: str,
    strategy: str = DEFAULT_STRATEGY,
    *,
    spread: bool = True,
    batch_size: int = 32,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    known_prints: dict[str, Fingerprint] | None = None,
) -> Ranking:
    """Scores every image below `unlabeled_dir` with `model` (a run folder, a .keras file or a
    LoadedModel) and ranks them. Unreadable files are listed in `skipped`. Raises DatasetError for a
    folder that is missing or holds no image, ModelLoadError for a bad model, PredictionCancelled
    when stopped. `known_prints` (path -> fingerprint) keeps the perceptual hashes between calls: a
    later call hashes only the images it has not seen."""
    from core.data.dataset import find_images
    from core.modeling.prediction import PredictionCancelled, predict

    if strategy not in STRATEGIES:
        raise DatasetError(f"Unknown strategy '{strategy}'. Choose one of: {', '.join(STRATEGIES)}.")
    if not os.path.isdir(unlabeled_dir):
        raise DatasetError(f"The unlabeled folder {unlabeled_dir} does not exist or is not a folder.")
    paths = find_images(unlabeled_dir, cancel)
    if not paths:
        raise DatasetError(f"{unlabeled_dir} holds no image files (searched with its subfolders).")
    cancel = cancel or threading.Event()
    result = predict(model, paths, batch_size=batch_size, on_progress=on_progress, cancel=cancel)
    scored = [p.path for p in result.predictions]
    probabilities = np.array([p.probabilities for p in result.predictions]).reshape(
        len(scored), len(result.class_names)
    )
    groups = None
    if spread and len(scored) > 1:
        prints = _fingerprints(scored, {} if known_prints is None else known_prints, cancel)
        if cancel.is_set():
            raise PredictionCancelled("The ranking was stopped.")
        groups = duplicate_groups(prints)
    suggestions = rank_probabilities(scored, probabilities, result.class_names, strategy, groups, seed)
    return Ranking(unlabeled_dir, strategy, list(result.class_names), suggestions, result.skipped,
                   result.model_path)


def accept_above(ranking: Ranking, threshold: float, train_dir: str) -> Accepted:
    """Moves every image whose top probability is at least `threshold` into
    `train_dir/<suggested>/`. An image that cannot be moved (outside the unlabeled folder, gone, a
    read-only folder) is listed in `refused` with the reason; the others still move."""
    accepted = Accepted([], [])
    for suggestion in ranking.suggestions:
        if suggestion.probability < threshold:
            continue
        try:
            accepted.moves.append(
                label_image(train_dir, ranking.unlabeled_dir, suggestion.path, suggestion.suggested)
            )
        except MoveError as exc:
            accepted.refused.append(SkippedFile(suggestion.path, str(exc)))
    return accepted


def _fingerprints(
    paths: list[str], known: dict[str, Fingerprint], cancel: threading.Event
) -> list[Fingerprint | None]:
    """The fingerprint of each path, hashing only those not in `known` (which is filled in). A file
    changed since it was hashed is rare here (the folder is being labeled, not edited); a stale
    hash only moves it in the spreading, never in the scores."""
    new = [path for path in paths if path not in known]
    prints, _, _ = fingerprint_all(new, cancel=cancel)
    known.update((path, item) for path, item in zip(new, prints, strict=True) if item is not None)
    return [known.get(path) for path in paths]
