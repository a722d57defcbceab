"""The dataset doctor's numpy parts against the libraries they replace (issue 21): imagehash.phash,
scikit-learn's StratifiedKFold, LogisticRegression and NearestNeighbors, cleanlab's
find_label_issues. Those libraries are development requirements only (requirements-dev.txt)."""

import glob
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from core.data.duplicates import perceptual_hash
from core.data.images import read_rgb
from core.modeling import label_check
from core.modeling.confident_learning import find_label_issues
from core.modeling.label_check import (
    cross_validated_probabilities,
    find_outliers,
    fold_indices,
    nearest_distances,
)
from core.modeling.logistic import fit_logistic_regression

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_PHOTOS = sorted(glob.glob(os.path.join(ROOT, "resources", "demo", "train", "*", "*.jpg")))


def reference_phash(image: np.ndarray) -> int:
    import imagehash

    bits = imagehash.phash(Image.fromarray(image)).hash.flatten().astype(np.uint8)
    return int(np.packbits(bits).view(">u8")[0])


def made_images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    ramp = np.tile(np.linspace(0, 255, 50), (40, 1))
    stripes = (np.indices((64, 64)).sum(axis=0) % 2) * 255
    return {
        "flat": np.full((30, 30, 3), 77, np.uint8),
        "horizontal ramp": np.repeat(ramp[..., None], 3, axis=2).astype(np.uint8),
        "vertical ramp": np.repeat(ramp.T[..., None], 3, axis=2).astype(np.uint8),
        "checkerboard": np.repeat(stripes[..., None], 3, axis=2).astype(np.uint8),
        "noise": rng.integers(0, 256, (64, 48, 3), dtype=np.uint8),
        "tiny": rng.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    }


def test_the_perceptual_hash_has_imagehashs_bits_on_photos():
    assert len(DEMO_PHOTOS) >= 12
    photos = DEMO_PHOTOS[:: max(1, len(DEMO_PHOTOS) // 24)]
    for path in photos:
        for side in (None, 64):  # in full, and as the doctor reads it
            image = read_rgb(path, side) if side else read_rgb(path)
            assert perceptual_hash(image) == reference_phash(image), (path, side)


@pytest.mark.parametrize("name", list(made_images()))
def test_the_perceptual_hash_has_imagehashs_bits_on_flat_striped_and_noisy_images(name):
    image = made_images()[name]
    assert perceptual_hash(image) == reference_phash(image)


LABEL_SETS = {
    "balanced": np.repeat(np.arange(4), 25),
    "unbalanced, classes out of order": np.array([3] * 40 + [0] * 7 + [5] * 13 + [1] * 3),
    "a class smaller than the folds": np.array([0] * 20 + [1] * 20 + [2] * 2 + [3]),
    "binary": np.array([1, 0] * 17 + [1] * 5),
}


@pytest.mark.parametrize("name", list(LABEL_SETS))
@pytest.mark.parametrize("folds", [2, 3, 5])
def test_the_folds_are_scikit_learns_stratified_folds(name, folds):
    from sklearn.model_selection import StratifiedKFold

    labels = np.random.default_rng(len(name)).permutation(LABEL_SETS[name])
    for seed in (0, 7):
        reference = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # scikit-learn's "a class is smaller than"
            expected = list(reference.split(np.zeros(len(labels)), labels))
        ours = fold_indices(labels, folds, seed)
        assert len(ours) == folds
        for (train, held_out), (train_ref, held_out_ref) in zip(ours, expected, strict=True):
            np.testing.assert_array_equal(held_out, held_out_ref)
            np.testing.assert_array_equal(train, train_ref)


def test_every_image_is_held_out_once_and_each_class_spread_evenly():
    labels = np.array([0] * 31 + [1] * 9 + [2] * 2 + [3])
    folds = fold_indices(labels, 3, seed=0)
    held_out = np.concatenate([h for _, h in folds])
    assert sorted(held_out.tolist()) == list(range(len(labels)))
    for train, held in folds:
        assert not set(train) & set(held) and len(train) + len(held) == len(labels)
    for k in range(4):
        per_fold = [int(np.sum(labels[h] == k)) for _, h in folds]
        assert max(per_fold) - min(per_fold) <= 1  # the class with 1 image is in one fold only
    with pytest.raises(ValueError, match="at least 2 folds"):
        fold_indices(labels, 1, seed=0)


def blobs(rng, n, d, k, spread=1.0):
    centres = rng.normal(size=(k, d)) * 0.4
    labels = rng.integers(0, k, n)
    return (centres[labels] + spread * rng.normal(size=(n, d))).astype(np.float32), labels


@pytest.mark.parametrize(("n", "d", "k", "C"), [(300, 20, 3, 0.1), (400, 30, 2, 1.0), (600, 200, 10, 0.1)])
def test_logistic_regression_gives_scikit_learns_probabilities(n, d, k, C):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(n)
    features, labels = blobs(rng, n + 200, d, k)
    features[:, 3] = 5.0  # a constant feature is left as it is, as StandardScaler does
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=C))
    reference.fit(features[:n], labels[:n])
    model = fit_logistic_regression(features[:n], labels[:n], C=C)
    np.testing.assert_array_equal(model.classes, reference.classes_)
    ours, theirs = model.probabilities(features[n:]), reference.predict_proba(features[n:])
    assert np.abs(ours - theirs).max() < 1e-2
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, atol=1e-9)


def test_logistic_regression_converges_on_separable_classes_and_handles_one_class():
    rng = np.random.default_rng(5)
    features, labels = blobs(rng, 300, 40, 4, spread=0.05)  # far apart: weights grow until C stops them
    model = fit_logistic_regression(features, labels, C=1.0)
    assert model.iterations < 500
    assert np.mean(model.probabilities(features).argmax(axis=1) == labels) == 1.0
    single = fit_logistic_regression(features[:10], np.full(10, 2), C=1.0)
    np.testing.assert_array_equal(single.classes, [2])
    np.testing.assert_array_equal(single.probabilities(features[:3]), np.ones((3, 1)))


def test_cross_validated_probabilities_match_scikit_learns_pipeline_fold_by_fold():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(11)
    features, labels = blobs(rng, 240, 24, 4)
    ours = cross_validated_probabilities(features, labels, 5, seed=3)  # class 4 has no image
    expected = np.zeros_like(ours)
    splitter = StratifiedKFold(n_splits=3, shuffle=True, random_state=3)
    for train, held_out in splitter.split(features, labels):
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=0.1))
        classifier.fit(features[train], labels[train])
        expected[np.ix_(held_out, classifier.classes_)] = classifier.predict_proba(features[held_out])
    assert np.abs(ours - expected).max() < 1e-2
    assert not ours[:, 4].any()


def test_cross_validation_survives_a_class_left_with_one_image_or_none():
    """Unreadable images skipped by the model's features can leave such classes behind."""
    rng = np.random.default_rng(12)
    features, labels = blobs(rng, 90, 6, 3)
    labels[labels == 2] = 1
    labels[0] = 2  # one image of class 2; class 3 has none
    probabilities = cross_validated_probabilities(features, labels, 4, seed=0)
    assert probabilities.shape == (90, 4) and np.isfinite(probabilities).all()
    assert probabilities[0, 2] == 0.0  # its fold's model never saw class 2
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert not cross_validated_probabilities(features[:1], labels[:1], 4).any()


def planted_noise(seed: int, n: int, k: int, noise: float):
    """Out-of-sample-like probabilities of a decent classifier, with `noise` of the labels flipped."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), truth] += rng.uniform(0.5, 4.0, n)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = truth.copy()
    flipped = rng.choice(n, int(noise * n), replace=False)
    labels[flipped] = (truth[flipped] + rng.integers(1, k, len(flipped))) % k
    return labels, probabilities.astype(np.float32), set(flipped.tolist())


@pytest.mark.parametrize(
    ("seed", "n", "k", "noise"), [(0, 600, 3, 0.1), (1, 1500, 10, 0.05), (2, 400, 2, 0.2)]
)
def test_label_issues_are_cleanlabs_in_cleanlabs_order(seed, n, k, noise):
    from cleanlab.filter import find_label_issues as cleanlab_find_label_issues

    labels, probabilities, flipped = planted_noise(seed, n, k, noise)
    expected = cleanlab_find_label_issues(
        labels, probabilities, return_indices_ranked_by="self_confidence", n_jobs=1
    )
    ours = find_label_issues(labels, probabilities)
    np.testing.assert_array_equal(ours, expected)
    assert len(set(ours.tolist()) & flipped) > 0.5 * len(flipped)  # it does find the planted flips


def test_label_issues_match_cleanlab_with_a_single_image_class_and_a_missing_class():
    from cleanlab.filter import find_label_issues as cleanlab_find_label_issues

    labels, probabilities, _ = planted_noise(4, 300, 5, 0.1)
    labels[labels == 4] = 3  # no image labelled 4, though the model gives it probability
    labels[np.flatnonzero(labels == 2)[1:]] = 1  # a single image labelled 2
    with pytest.warns(UserWarning):
        expected = cleanlab_find_label_issues(
            labels, probabilities, return_indices_ranked_by="self_confidence", n_jobs=1
        )
    np.testing.assert_array_equal(find_label_issues(labels, probabilities), expected)


def test_nearest_distances_are_scikit_learns_in_blocks(monkeypatch):
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(8)
    points = rng.normal(size=(203, 12)).astype(np.float32)
    points[50] = points[51]  # a duplicate: distance 0 to another point
    expected = NearestNeighbors(n_neighbors=6).fit(points).kneighbors(points)[0][:, 1:]
    ours = nearest_distances(points, 5)
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    assert ours[50, 0] == ours[51, 0] == 0.0  # exactly, despite float32 products
    monkeypatch.setattr(label_check, "NEIGHBOUR_ROWS", 16)  # many blocks, a ragged last one
    np.testing.assert_array_equal(nearest_distances(points, 5), ours)
    monkeypatch.setattr(label_check, "NEIGHBOUR_BLOCK_VALUES", 1)  # one row at a time
    np.testing.assert_array_equal(nearest_distances(points, 5), ours)
    assert nearest_distances(points[:3], 5).shape == (3, 2)  # fewer points than neighbours


def test_outliers_are_those_scikit_learns_neighbours_give():
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(2)
    features = 1 + 0.1 * rng.normal(size=(300, 64))
    features[[7, 99, 250]] = rng.normal(size=(3, 64))
    paths = [f"{i}.png" for i in range(len(features))]
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    typical = NearestNeighbors(n_neighbors=11).fit(unit).kneighbors(unit)[0][:, 1:].mean(axis=1)
    median = np.median(typical)
    scores = (typical - median) / (1.4826 * np.median(np.abs(typical - median)))
    expected = [(f"{i}.png", round(float(scores[i]), 2)) for i in np.argsort(-scores) if scores[i] > 6]
    ours = [(o.path, o.score) for o in find_outliers(paths, features)]
    assert [p for p, _ in ours] == [p for p, _ in expected]
    assert {p for p, _ in ours} == {"7.png", "99.png", "250.png"}
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in expected], atol=0.02)


def test_the_doctor_runs_without_scikit_learn_cleanlab_imagehash_or_scipy(tmp_path):
    """The runtime requirements no longer hold them: the checks must not import them."""
    script = """
import sys
for name in ("sklearn", "cleanlab", "imagehash", "scipy", "pandas", "pywt"):
    sys.modules[name] = None  # importing any of them now raises ImportError
import numpy as np
from core.data.duplicates import fingerprint_all, find_duplicates
from core.modeling.label_check import cross_validated_probabilities, find_outliers, rank_label_issues
prints, reasons, _ = fingerprint_all(sys.argv[1:])
assert reasons == [None] * len(prints) and find_duplicates(prints) == []
rng = np.random.default_rng(0)
features, labels = rng.normal(size=(60, 8)), np.repeat([0, 1, 2], 20)
probabilities = cross_validated_probabilities(features, labels, 3)
rank_label_issues([str(i) for i in range(60)], labels, probabilities, ["a", "b", "c"])
find_outliers([str(i) for i in range(60)], features)
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", script, *DEMO_PHOTOS[:3]],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
