"""Active learning: how many labels uncertainty sampling saves against labeling at random.

    python bench/active_learning.py                  # digits and the photo-like fruit, 3 repeats
    python bench/active_learning.py --rounds 20 --repeats 5 --sets digits

Each set is split, per repeat (a different seed), into a seed set of 5 images per class, a
validation set, and a pool whose labels are hidden. Each round the strategy picks 20 images of the
pool (core.modeling.label_ranking.uncertainty_order: the order the Label tab and `main.py label`
use); the "person" labels them with the hidden truth; the model retrains on all labels so far and
is scored on the validation set. Strategies: margin, entropy and random (the baseline).

The model: scikit-learn's LogisticRegression on fixed features, retrained from scratch each round,
which is what the Label tab does with cached backbone features (a head on fixed features). Features:
- digits: scikit-learn's 1,797 8x8 handwritten digits, the 64 pixels scaled to 0..1 (10 classes;
  360 for validation, the rest the pool);
- fruit: photo-like pictures made here with the demo dataset's renderer (resources/make_demo.py),
  six kinds whose colours overlap (apple, orange, lemon, banana, lime, plum; round or crescent), 150
  pool + 40 validation per kind; features: a saturation-weighted 24-bin hue histogram and a 12x12
  grey copy. (A pretrained backbone's features would be better; its weights cannot be downloaded
  here.)

Prints, per set, the mean validation accuracy against the number of labels for each strategy, and
the target: the labels margin needs to reach random's final accuracy, as a share of random's labels
(target: 60 % or less).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "resources"))

import numpy as np  # noqa: E402

from core.modeling.label_ranking import uncertainty_order  # noqa: E402

STRATEGIES = ("margin", "entropy", "random")
SEED_PER_CLASS = 5
ROUND_SIZE = 20
FRUIT_SKINS = {  # hue range (0..1), saturation range, shape
    "apple": ((-0.04, 0.03), (0.6, 0.9), "apple"),
    "orange": ((0.04, 0.10), (0.7, 0.95), "lime"),
    "lemon": ((0.12, 0.17), (0.6, 0.9), "lime"),
    "banana": ((0.11, 0.16), (0.6, 0.9), "banana"),
    "lime": ((0.2, 0.3), (0.5, 0.85), "lime"),
    "plum": ((0.72, 0.85), (0.35, 0.7), "apple"),
}


def digits() -> tuple[np.ndarray, np.ndarray, int]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data / 16.0, data.target, 360


def fruit(per_class: int = 190, seed: int = 7) -> tuple[np.ndarray, np.ndarray, int]:
    import make_demo

    rng = np.random.default_rng(seed)
    features, labels = [], []
    demo_skins = dict(make_demo.SKINS)
    for label, (hues, saturations, shape) in enumerate(FRUIT_SKINS.values()):
        make_demo.SKINS[shape] = (hues, saturations)  # the renderer colours by the shape's name
        for _ in range(per_class):
            features.append(picture_features(make_demo.render(shape, rng)))
            labels.append(label)
    make_demo.SKINS.update(demo_skins)
    return np.array(features), np.array(labels), 40 * len(FRUIT_SKINS)


def picture_features(picture) -> np.ndarray:
    hsv = np.asarray(picture.resize((48, 48)).convert("HSV"), dtype=np.int64).reshape(-1, 3)
    histogram = np.bincount(hsv[:, 0] * 24 // 256, weights=hsv[:, 1] / 255.0, minlength=24)
    grey = np.asarray(picture.convert("L").resize((12, 12)), dtype=np.float64).ravel() / 255.0
    return np.concatenate([histogram / max(histogram.sum(), 1e-9) * 4, grey])


def split(labels: np.ndarray, validation: int, rng: np.random.Generator):
    order = rng.permutation(len(labels))
    val, rest = order[:validation], order[validation:]
    seed = np.concatenate([rest[labels[rest] == c][:SEED_PER_CLASS] for c in np.unique(labels)])
    pool = np.setdiff1d(rest, seed)
    return seed, rng.permutation(pool), val


def fit_score(x, y, labeled, val):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=2000, C=10.0)
    model.fit(x[labeled], y[labeled])
    return model, float((model.predict(x[val]) == y[val]).mean())


def learning_curve(x, y, seed, pool, val, strategy, rounds, repeat):
    labeled, pool = list(seed), np.array(pool)
    model, accuracy = fit_score(x, y, labeled, val)
    curve = [(len(labeled), accuracy)]
    for round_number in range(rounds):
        probabilities = model.predict_proba(x[pool])
        chosen = uncertainty_order(probabilities, strategy, seed=1000 * repeat + round_number)[:ROUND_SIZE]
        labeled += list(pool[chosen])  # the person answers with the hidden truth: y[labeled]
        pool = np.delete(pool, chosen)
        model, accuracy = fit_score(x, y, labeled, val)
        curve.append((len(labeled), accuracy))
    return curve


def run_set(name, x, y, validation, rounds, repeats):
    curves = {strategy: [] for strategy in STRATEGIES}
    started = time.perf_counter()
    for repeat in range(repeats):
        seed, pool, val = split(y, validation, np.random.default_rng(repeat))
        for strategy in STRATEGIES:
            curves[strategy].append(learning_curve(x, y, seed, pool, val, strategy, rounds, repeat))
    labels = [count for count, _ in curves["random"][0]]
    mean = {s: np.mean([[acc for _, acc in curve] for curve in curves[s]], axis=0) for s in STRATEGIES}
    print(f"\n{name}: {len(y)} images, {len(np.unique(y))} classes, validation {validation}, "
          f"{repeats} repeats, {time.perf_counter() - started:.0f} s")
    print("| labels | " + " | ".join(STRATEGIES) + " |")
    print("|---:|" + "---:|" * len(STRATEGIES))
    for index, count in enumerate(labels):
        print(f"| {count} | " + " | ".join(f"{mean[s][index]:.3f}" for s in STRATEGIES) + " |")
    target = mean["random"][-1]
    for strategy in ("margin", "entropy"):
        reached = next((labels[i] for i, acc in enumerate(mean[strategy]) if acc >= target), None)
        share = f"{reached / labels[-1]:.0%}" if reached else "never"
        print(f"{strategy} reaches random's final {target:.3f} with {reached} labels: {share} of "
              f"random's {labels[-1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sets", nargs="+", default=["digits", "fruit"], choices=["digits", "fruit"])
    args = parser.parse_args()
    for name in args.sets:
        x, y, validation = digits() if name == "digits" else fruit()
        run_set(name, x, y, validation, args.rounds, args.repeats)


if __name__ == "__main__":
    main()
