"""Likely label errors and outliers, from out-of-sample predictions.

An image's predicted probabilities must come from a model that never saw its label, or a model that
memorised a wrong label would vouch for it. Two ways to get them:

- from a trained model (`model_features`): the input of its last layer for every image, then
  k-fold logistic regression on those features (`cross_validated_probabilities`);
- without one, a quick model trained for the purpose (`quick_model_probabilities`): the small CNN on
  32 px copies of the images, trained once per fold on the other folds and asked about its fold.

Confident learning (core.modeling.confident_learning, as cleanlab's `find_label_issues`) then ranks
the images whose folder disagrees with the probabilities (`rank_label_issues`). Outliers
(`find_outliers`) are images whose features lie far from those of their nearest neighbours,
compared with how far that is for a typical image.

Keras (through core.tf_runtime) is loaded inside the functions; the folds, the logistic regression,
the neighbours and confident learning are numpy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.data.dataset import FileSet, SkippedFile
from core.errors import FitStudioError
from core.modeling.confident_learning import find_label_issues
from core.modeling.logistic import fit_logistic_regression
from core.tf_runtime import load_keras

# The quick model: 3 folds of the small CNN at 32 px, about 10,000 images seen per fold (8 epochs
# of 1,230 images; at least 4 epochs, at most 12). On the 1,845 digits of bench/doctor.py with 30
# flipped labels it found 24 flips with 5 false alarms in 33 CPU-seconds; 5 folds x 6 epochs found
# 23 with 2 in 56 CPU-seconds, 5 folds x 10 epochs of 128 found 24 with 6 in 67.
FOLDS = 3
QUICK_IMAGE_SIZE = 32
QUICK_BATCH_SIZE = 64
QUICK_LEARNING_RATE = 3e-3
QUICK_IMAGES_PER_FOLD = 10_000
OUTLIER_NEIGHBOURS = 10
# An image is an outlier when the mean distance to its nearest neighbours exceeds the median of
# that distance by this many robust standard deviations (1.4826 x the median absolute deviation).
OUTLIER_SPREAD = 6.0
NEIGHBOUR_BLOCK_VALUES = 8 * 1024 * 1024  # distances per block of the neighbour search (32 MB)
NEIGHBOUR_ROWS = 256  # at most this many points' candidates at once (21 MB of differences at 1,280)
NEIGHBOUR_SPARE = 5  # candidates beyond the neighbours, should rounding misorder the farthest ones
# The inverse L2 penalty of the logistic regression on a model's features (scikit-learn's C; the
# doctor has always fitted with 0.1, ten times scikit-learn's default penalty).
LOGISTIC_C = 0.1
# Its stopping point: no gradient entry above this. scikit-learn stops at 1e-4, which on features like
# a model's (ReLU of a projection of the digits, bench/doctor_numeric.py) leaves probabilities up to
# 0.06 from the optimum; 1e-5 comes within 0.005 of it for twice the iterations (cheaper ones).
LOGISTIC_TOLERANCE = 1e-5


class CheckCancelled(FitStudioError):
    """The dataset check was stopped before it finished."""


@dataclass(frozen=True)
class LabelIssue:
    path: str
    given: str
    suggested: str
    score: float  # 1 - the out-of-sample probability of the given class: how likely it is wrong
    given_probability: float
    suggested_probability: float
    digest: str = ""  # the file's digest (core.data.duplicates), for "not a problem"

    @property
    def key(self) -> str:
        return f"label:{self.digest}:{self.given}"


@dataclass(frozen=True)
class Outlier:
    path: str
    score: float  # robust standard deviations beyond the typical distance to the nearest images
    digest: str = ""

    @property
    def key(self) -> str:
        return f"outlier:{self.digest}"


def folds_for(labels: np.ndarray, num_classes: int) -> int:
    """How many folds the smallest class allows (at most FOLDS); 0 when a class has under 2 images."""
    smallest = int(np.bincount(labels, minlength=num_classes).min()) if len(labels) else 0
    return min(FOLDS, smallest) if smallest >= 2 else 0


def fold_indices(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training indices, held-out indices) of each of `folds` folds, every class spread evenly over
    them in a shuffled order: the very folds of scikit-learn's StratifiedKFold(n_splits=folds,
    shuffle=True, random_state=seed), so results do not change with the library gone. A class with
    fewer images than folds lands in as many folds as it has images."""
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, not {folds}")
    random = np.random.RandomState(seed)  # the legacy generator: scikit-learn's shuffles, exactly
    _, first_seen, encoded = np.unique(labels, return_index=True, return_inverse=True)
    _, appearance = np.unique(first_seen, return_inverse=True)
    encoded = appearance[encoded]  # classes numbered by first appearance, as scikit-learn does
    classes = len(first_seen)
    ordered = np.sort(encoded)  # fold i takes every folds-th image of the sorted labels from i on
    per_fold = np.asarray([np.bincount(ordered[i::folds], minlength=classes) for i in range(folds)])
    held_out_in = np.empty(len(labels), dtype=np.int64)
    for k in range(classes):
        assignment = np.arange(folds).repeat(per_fold[:, k])
        random.shuffle(assignment)
        held_out_in[encoded == k] = assignment
    everything = np.arange(len(labels))
    return [(everything[held_out_in != i], everything[held_out_in == i]) for i in range(folds)]


def quick_model_probabilities(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    *,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(out-of-sample probabilities (n, classes), features (n, d)) from the small CNN trained once
    per fold on `images` (n, 32, 32, 3 uint8). The features of all images come from the last fold's
    model, so that they share one space. Raises CheckCancelled when `cancel` is set."""
    keras = load_keras()

    cancel = cancel or threading.Event()
    folds = fold_indices(labels, folds_for(labels, num_classes), seed)
    fold_size = len(folds[0][0])
    epochs = int(np.clip(round(QUICK_IMAGES_PER_FOLD / max(1, fold_size)), 4, 12))
    batch_size = int(np.clip(fold_size // 8, 8, QUICK_BATCH_SIZE))  # a small dataset still takes steps
    total, done = len(folds) * epochs, 0
    probabilities = np.zeros((len(labels), num_classes), dtype=np.float32)

    def epoch_done() -> None:
        nonlocal done
        done += 1
        if on_progress:
            on_progress(done, total)

    keras.utils.set_random_seed(seed)
    model = _quick_model(num_classes, seed)
    fresh = _Restart(model)
    for train_idx, held_out in folds:
        fresh.restart()
        model.fit(
            images[train_idx], labels[train_idx], batch_size=batch_size, epochs=epochs, verbose=0,
            callbacks=[_progress_and_cancel(epoch_done, cancel)],
        )
        if cancel.is_set():
            raise CheckCancelled("The check was stopped.")
        probabilities[held_out] = _in_batches(model, images[held_out])
    extractor = keras.Model(model.input, model.get_layer("pool_global").output)
    return probabilities, _in_batches(extractor, images)


class _Restart:
    """Puts a compiled model back to its initial weights and optimizer state, so every fold starts
    afresh while Keras keeps the training function it traced for the first (tracing a new model
    costs seconds, more than a fold of a small dataset trains)."""

    def __init__(self, model):
        model.optimizer.build(model.trainable_variables)
        self.model = model
        self.weights = [w.numpy() for w in model.weights]
        self.optimizer_state = [v.numpy() for v in model.optimizer.variables]

    def restart(self) -> None:
        for weight, value in zip(self.model.weights, self.weights, strict=True):
            weight.assign(value)
        for variable, value in zip(self.model.optimizer.variables, self.optimizer_state, strict=True):
            variable.assign(value)


def model_features(
    model,
    files: FileSet,
    *,
    batch_size: int = 32,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    skipped: list[SkippedFile] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(indices into `files` of the images read, their features): what the trained model (a
    LoadedModel) feeds its last layer, with the model's own input size and resize mode."""
    keras = load_keras()

    from core.data.pipeline import classify_batches

    network = model.model
    extractor = keras.Model(network.input, network.layers[-1].input)

    def features_of(images: np.ndarray) -> np.ndarray:
        return np.asarray(extractor.predict_on_batch(np.asarray(images, np.float32)), np.float32)

    indices, rows = [], []
    for batch_indices, batch_features in classify_batches(
        files, features_of, model.image_size, batch_size=batch_size, resize_mode=model.resize_mode,
        cancel=cancel, on_progress=on_progress, skipped=skipped,
    ):
        indices.append(batch_indices)
        rows.append(batch_features.reshape(len(batch_indices), -1))
    if cancel is not None and cancel.is_set():
        raise CheckCancelled("The check was stopped.")
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    return np.concatenate(indices), np.concatenate(rows)


def cross_validated_probabilities(
    features: np.ndarray, labels: np.ndarray, num_classes: int, *, seed: int = 0
) -> np.ndarray:
    """Out-of-sample probabilities (n, classes) of logistic regression on standardised features,
    k-fold: each image's row comes from the model fitted on the other folds."""
    probabilities = np.zeros((len(labels), num_classes), dtype=np.float32)
    if len(labels) < 2:
        return probabilities
    # Images the model could not read may leave a class empty or with one image: the folds then
    # follow the smallest class present, and a single image sits in one fold, unknown to its model.
    present = np.bincount(labels, minlength=num_classes)
    folds = min(FOLDS, max(2, int(present[present > 0].min())))
    for train_idx, held_out in fold_indices(labels, folds, seed):
        model = fit_logistic_regression(
            features[train_idx], labels[train_idx], C=LOGISTIC_C, tolerance=LOGISTIC_TOLERANCE
        )
        probabilities[np.ix_(held_out, model.classes)] = model.probabilities(features[held_out])
    return probabilities


def rank_label_issues(
    paths: list[str], labels: np.ndarray, probabilities: np.ndarray, class_names: list[str]
) -> list[LabelIssue]:
    """The images confident learning finds likely mislabelled (core.modeling.confident_learning),
    most suspect first, with the suggested class."""
    issues = []
    for index in find_label_issues(labels, probabilities):
        row, given = probabilities[index], int(labels[index])
        others = np.argsort(-row, kind="stable")
        suggested = int(others[0] if others[0] != given else others[1])
        issues.append(
            LabelIssue(
                path=paths[index],
                given=class_names[given],
                suggested=class_names[suggested],
                score=round(float(1.0 - row[given]), 4),
                given_probability=round(float(row[given]), 4),
                suggested_probability=round(float(row[suggested]), 4),
            )
        )
    return issues


def find_outliers(paths: list[str], features: np.ndarray) -> list[Outlier]:
    """Images unlike any other, most unusual first: the mean cosine distance to their nearest
    neighbours is far beyond what it is for a typical image."""
    if len(paths) <= OUTLIER_NEIGHBOURS + 1:
        return []
    norms = np.sqrt(np.einsum("ij,ij->i", features, features))  # no squared copy of the features
    unit = features / np.maximum(norms, 1e-12)[:, None]
    typical = nearest_distances(unit, OUTLIER_NEIGHBOURS).mean(axis=1)
    median = float(np.median(typical))
    spread = 1.4826 * float(np.median(np.abs(typical - median)))
    if spread <= 0:
        return []
    scores = (typical - median) / spread
    order = np.argsort(-scores, kind="stable")
    return [Outlier(paths[i], round(float(scores[i]), 2)) for i in order if scores[i] > OUTLIER_SPREAD]


def nearest_distances(points: np.ndarray, neighbours: int) -> np.ndarray:
    """(n, neighbours) the Euclidean distances from each of `points` (n, d) to its `neighbours`
    nearest other points, nearest first. A float32 matrix product over a block of rows at a time
    (at most NEIGHBOUR_BLOCK_VALUES distances, 32 MB, whatever n: 50,000 x 1,280 features fit)
    picks a few more candidates than needed; their distances are then computed from the differences
    (|a|^2 + |b|^2 - 2 a.b cancels to noise of ~1e-3 for near-identical images; a - b keeps 7 digits)."""
    count = len(points)
    keep = min(neighbours + 1, count)  # + 1: each point is its own nearest, at distance 0
    candidates = min(keep + NEIGHBOUR_SPARE, count)
    approximate = np.asarray(points, np.float32)
    squared_norms = np.einsum("ij,ij->i", approximate, approximate)
    rows_per_block = max(1, min(NEIGHBOUR_ROWS, NEIGHBOUR_BLOCK_VALUES // max(count, 1)))
    nearest = np.empty((count, keep))
    for start in range(0, count, rows_per_block):
        rows = slice(start, min(start + rows_per_block, count))
        block = approximate[rows] @ approximate.T  # then in place: one block in memory at a time
        block *= -2.0
        block += squared_norms[rows, None]
        block += squared_norms[None, :]
        closest = np.argpartition(block, candidates - 1, axis=1)[:, :candidates]
        differences = approximate[closest] - approximate[rows, None]
        distances = np.sqrt(np.sum(np.square(differences), axis=2))  # pairwise sums: ~1e-7 relative
        nearest[rows] = np.sort(distances, axis=1)[:, :keep]
    return nearest[:, 1:]


def _quick_model(num_classes: int, seed: int):
    keras = load_keras()

    from core.modeling.models import build_model

    model = build_model("small-cnn", num_classes, QUICK_IMAGE_SIZE, seed=seed).model
    model.compile(
        optimizer=keras.optimizers.Adam(QUICK_LEARNING_RATE),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _in_batches(model, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The model's outputs for `images`, called directly (`predict` would retrace its function for
    every new fold's model and warn about it)."""
    keras = load_keras()

    outputs = [
        keras.ops.convert_to_numpy(model(images[start : start + batch_size], training=False))
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(outputs).astype(np.float32)


def _progress_and_cancel(on_epoch: Callable[[], None], cancel: threading.Event):
    """A Keras callback: `on_epoch()` after each epoch; stops within a batch once `cancel` is set."""
    keras = load_keras()

    class ProgressAndCancel(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if cancel.is_set():
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            on_epoch()

    return ProgressAndCancel()
