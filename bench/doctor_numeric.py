"""The dataset doctor's numpy parts against the libraries they replaced (issue 21): time and agreement.

    python bench/doctor_numeric.py          # needs requirements-dev.txt (scikit-learn, cleanlab, imagehash)

- logistic regression, 5-fold-sized fits as the doctor does them (standardised, C=0.1) on features
  shaped like a model's (ReLU of a random projection of the 8x8 digits: 1,280 values) and on the
  32 px grey pixels of the digits (1,024 values);
- nearest neighbours of unit vectors (the outlier check), 10 neighbours;
- confident learning on planted label noise;
- the perceptual hash of 64 px images.
Each side timed once, wall seconds; agreement as the largest difference. scikit-learn and numpy
stop the logistic regression at the same tolerance at different points: the probabilities are
compared with a tightly converged fit, the optimum both approach.
"""

from __future__ import annotations

import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def digits_features():
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(0)
    model_like = np.maximum(digits.data @ rng.normal(size=(64, 1280)), 0).astype(np.float32)
    pixels = np.stack([
        np.asarray(Image.fromarray(np.uint8(image * 255 / 16)).resize((32, 32), Image.Resampling.BILINEAR),
                   np.float32).ravel()
        for image in digits.images
    ])
    return {"digits -> 1,280 ReLU features": model_like, "digits, 32 px grey pixels": pixels}, digits.target


def bench_logistic() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from core.modeling.label_check import LOGISTIC_TOLERANCE
    from core.modeling.logistic import fit_logistic_regression

    sets, labels = digits_features()
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(5, 1280)) * 0.3
    blob_labels = rng.integers(0, 5, 5000)
    sets["5,000 x 1,280 Gaussian blobs, 5 classes"] = (centres[blob_labels] + rng.normal(size=(5000, 1280)))
    print("logistic regression (fit on 80 %, probabilities of the other 20 %)")
    for name, features in sets.items():
        y = blob_labels if len(features) == 5000 else labels
        cut = len(y) * 4 // 5
        reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=0.1))
        _, theirs_s = timed(reference.fit, features[:cut], y[:cut])
        ours, ours_s = timed(fit_logistic_regression, features[:cut], y[:cut], C=0.1)
        doctors, doctors_s = timed(
            fit_logistic_regression, features[:cut], y[:cut], C=0.1, tolerance=LOGISTIC_TOLERANCE
        )
        optimum = fit_logistic_regression(features[:cut], y[:cut], C=0.1, tolerance=1e-9, max_iterations=5000)
        held_out = features[cut:]
        best = optimum.probabilities(held_out)

        def off(probabilities: np.ndarray, best: np.ndarray = best) -> str:
            return f"{np.abs(probabilities - best).max():.1e}"

        print(f"  {name}: largest probability difference from the optimum (numpy, tolerance 1e-9)")
        print(f"    scikit-learn, tolerance 1e-4: {theirs_s:.2f} s, {reference[-1].n_iter_[0]} iterations, "
              f"{off(reference.predict_proba(held_out))}")
        print(f"    numpy, tolerance 1e-4: {ours_s:.2f} s, {ours.iterations} iterations, "
              f"{off(ours.probabilities(held_out))}")
        print(f"    numpy, the doctor's {LOGISTIC_TOLERANCE:g}: {doctors_s:.2f} s, {doctors.iterations} "
              f"iterations, {off(doctors.probabilities(held_out))}")


def bench_neighbours() -> None:
    from sklearn.neighbors import NearestNeighbors

    from core.modeling.label_check import nearest_distances

    rng = np.random.default_rng(2)
    points = rng.normal(size=(10_000, 1280)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    (theirs, _), theirs_s = timed(NearestNeighbors(n_neighbors=11).fit(points).kneighbors, points)
    ours, ours_s = timed(nearest_distances, points, 10)
    print(f"nearest neighbours, 10,000 x 1,280: scikit-learn {theirs_s:.2f} s, numpy {ours_s:.2f} s, "
          f"largest distance difference {np.abs(theirs[:, 1:] - ours).max():.1e}")


def bench_confident_learning() -> None:
    from cleanlab.filter import find_label_issues as cleanlab_find_label_issues

    from core.modeling.confident_learning import find_label_issues

    rng = np.random.default_rng(3)
    n, k = 50_000, 20
    truth = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), truth] += rng.uniform(0.5, 4, n)
    probabilities = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    labels = truth.copy()
    flipped = rng.choice(n, n // 20, replace=False)
    labels[flipped] = (truth[flipped] + rng.integers(1, k, len(flipped))) % k
    theirs, theirs_s = timed(
        cleanlab_find_label_issues, labels, probabilities,
        return_indices_ranked_by="self_confidence", n_jobs=1,
    )
    ours, ours_s = timed(find_label_issues, labels, probabilities)
    print(f"confident learning, 50,000 images, 20 classes, 5 % flipped: cleanlab {theirs_s:.2f} s, numpy "
          f"{ours_s:.2f} s, {len(ours)} issues, same ranked indices: {np.array_equal(ours, theirs)}")


def bench_phash() -> None:
    import imagehash
    from PIL import Image

    from core.data.duplicates import perceptual_hash

    rng = np.random.default_rng(4)
    coarse = rng.integers(0, 256, (500, 8, 8, 3), dtype=np.uint8)
    images = [np.asarray(Image.fromarray(c).resize((64, 64), Image.Resampling.BICUBIC)) for c in coarse]
    theirs, theirs_s = timed(lambda: [str(imagehash.phash(Image.fromarray(i))) for i in images])
    ours, ours_s = timed(lambda: [f"{perceptual_hash(i):016x}" for i in images])
    print(f"perceptual hash, 500 images of 64 px: imagehash {theirs_s * 2:.2f} ms/image, numpy "
          f"{ours_s * 2:.2f} ms/image, same bits: {ours == theirs}")


if __name__ == "__main__":
    bench_logistic()
    bench_neighbours()
    bench_confident_learning()
    bench_phash()
