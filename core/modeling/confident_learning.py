"""Likely label errors by confident learning, in numpy.

Confident learning (Northcutt, Jiang and Chuang, "Confident Learning: Estimating Uncertainty in
Dataset Labels", JAIR 70, 2021) counts, from out-of-sample predicted probabilities, how many images
of each given class confidently belong to each other class, then flags that many images per pair of
classes: those with the largest margin for the other class. This module computes what cleanlab 2.x's
`filter.find_label_issues(labels, pred_probs, return_indices_ranked_by="self_confidence")` returns
with its other options left at their defaults (filter_by="prune_by_noise_rate", frac_noise=1,
min_examples_per_class=1), step for step, so that the doctor flags the images it flagged while
cleanlab was a dependency; tests/core/test_numeric_doctor.py compares the two.

1. Per-class thresholds: the mean probability of class k over the images labelled k (paper, eq. 2).
2. The confident joint C[given, true]: each image counts where its given label meets the class whose
   probability reaches its threshold (the most probable such class if several do); the diagonal is
   at least 1.
3. Calibration (paper, eq. 3): each row scaled to the number of images with that label, the whole to
   the number of images, rounded to integers keeping each row's total.
4. Prune by noise rate: for every off-diagonal count C[k, j], the C[k, j] images labelled k with the
   largest margin p_j - p_k are flagged (after the diagonal is raised to at least one image per
   class, as cleanlab does).
5. An image whose given class is still its most probable one is never flagged.
6. The flagged images are ranked by self-confidence, the probability of the given label, lowest first.
"""

from __future__ import annotations

import numpy as np

MIN_THRESHOLD = 2e-6  # thresholds are kept above the fuzz of the >= comparison below
FUZZ = 1e-6  # the slack of probability comparisons
MISSING_CLASS_THRESHOLD = 2.0  # a class nobody is labelled with: no probability reaches it
TINY = 1e-100  # divides safely by an empty row


def find_label_issues(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Indices of the likely mislabelled images, most suspect first. `labels` (n,) are integers in
    [0, classes); `probabilities` (n, classes) are out-of-sample (a model that never saw the image)."""
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities)
    counts = confident_joint(labels, probabilities)
    flagged = _prune_by_noise_rate(labels, probabilities, _keep_one_per_class(counts.T))
    boosted = probabilities.copy()
    boosted[np.arange(len(labels)), labels] += FUZZ
    flagged[boosted.argmax(axis=1) == labels] = False
    indices = np.flatnonzero(flagged)
    self_confidence = probabilities[indices, labels[indices]]
    return indices[np.argsort(self_confidence)]


def confident_thresholds(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """(classes,) the mean probability of each class among the images given it."""
    present = set(labels.tolist())
    thresholds = [
        np.mean(probabilities[:, k][labels == k]) if k in present else MISSING_CLASS_THRESHOLD
        for k in range(probabilities.shape[1])
    ]
    return np.clip(thresholds, a_min=MIN_THRESHOLD, a_max=None)


def confident_joint(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """(classes, classes) calibrated integer counts of images by [given label, likely true label]."""
    classes = probabilities.shape[1]
    confident = probabilities >= confident_thresholds(labels, probabilities) - FUZZ
    how_many = confident.sum(axis=1)
    true_guess = np.where(how_many > 1, probabilities.argmax(axis=1), confident.argmax(axis=1))
    sure = how_many > 0
    joint = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(joint, (labels[sure], true_guess[sure]), 1)
    np.fill_diagonal(joint, joint.diagonal().clip(min=1))
    return _calibrate(joint, np.bincount(labels, minlength=classes))


def _calibrate(joint: np.ndarray, label_counts: np.ndarray) -> np.ndarray:
    rows = (joint.T / np.clip(joint.sum(axis=1), a_min=TINY, a_max=None) * label_counts).T
    scaled = rows / np.clip(np.sum(rows), a_min=TINY, a_max=None) * sum(label_counts)
    return _round_rows(scaled)


def _keep_one_per_class(prune_counts: np.ndarray) -> np.ndarray:
    """`prune_counts` ([true, given], the confident joint transposed) with each diagonal entry at
    least 1, what it gained taken evenly from the non-zero entries of its column."""
    diagonal = np.diagonal(prune_counts)
    raised = np.maximum(diagonal, 1)
    others = np.maximum(np.count_nonzero(prune_counts, axis=0) - 1.0, 1.0)
    adjusted = prune_counts - (raised - diagonal) / others
    adjusted[adjusted < 0] = 0
    np.fill_diagonal(adjusted, raised)
    return _round_rows(adjusted.astype(int)).astype(int)


def _prune_by_noise_rate(
    labels: np.ndarray, probabilities: np.ndarray, prune_counts: np.ndarray
) -> np.ndarray:
    flagged = np.zeros(len(labels), dtype=bool)
    for given in range(probabilities.shape[1]):
        members = np.flatnonzero(labels == given)
        if len(members) <= 1:  # a class of one image keeps it
            continue
        rows = probabilities[members]
        in_class = np.zeros(len(members), dtype=bool)
        for true in range(probabilities.shape[1]):
            how_many = prune_counts[true, given]
            if true != given and how_many > 0:
                margin = rows[:, true] - rows[:, given]
                in_class[np.argsort(-margin)[:how_many]] = True
        flagged[members] = in_class
    return flagged


def _round_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row rounded to integers whose sum is the row's sum rounded: the entries with the largest
    remainders take the difference."""
    return np.apply_along_axis(_round_keeping_sum, 1, matrix).astype(int)


def _round_keeping_sum(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    rounded = values.round()
    target = np.sum(values).round()
    total = np.sum(rounded).round()
    while abs(total - target) > FUZZ:
        difference = np.round(target - total)
        increment = -1 if difference < 0 else 1
        changes = min(int(abs(difference)), len(values))
        for i in np.argsort(values - rounded)[::-increment][:changes]:
            rounded[i] += increment
        total = np.sum(rounded).round()
    return rounded.astype(int)
