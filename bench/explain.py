"""How well each heatmap method points at what decides the class, and how long a heatmap takes.

    python bench/explain.py                  # small-cnn, 64 px, 3 seeds
    python bench/explain.py --seeds 1 --epochs 6

Trains small-cnn briefly on coloured squares at random places on colour noise (tests/squares.py:
the square is the only thing that tells the classes apart), then, for held-out images, counts how
often the maximum of each method's heatmap, placed back on the 80x60 image, lies on the square.
Every method explains the same trained model, the predicted class of each image.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("FITSTUDIO_OFFLINE", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

import numpy as np  # noqa: E402
from squares import make_square_dataset, strongest_point_on_square  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="model input side")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train", type=int, default=40, help="training images per class")
    parser.add_argument("--test", type=int, default=40, help="held-out images per class")
    parser.add_argument("--seeds", type=int, default=3, help="datasets and trainings")
    parser.add_argument("--model", default="small-cnn")
    args = parser.parse_args()
    from core.modeling.explain import METHODS

    hits = dict.fromkeys(METHODS, 0)
    seconds = dict.fromkeys(METHODS, 0.0)
    total, accuracy = 0, []
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory(prefix="fitstudio-bench-explain-") as scratch:
            loaded, boxes, acc = train_on_squares(scratch, args, seed)
            accuracy.append(acc)
            total += len(boxes)
            for method in METHODS:
                found, elapsed = localise(loaded, boxes, method)
                hits[method] += found
                seconds[method] += elapsed
            print(f"seed {seed}: val_accuracy {acc:.3f}, " + ", ".join(
                f"{m} {hits[m]}" for m in METHODS) + f" of {total} so far", flush=True)
    print(f"\n{args.model}, {args.size} px input, 80x60 images, {args.epochs} epochs, {args.train} "
          f"training images per class, {args.seeds} seeds, val_accuracy {np.mean(accuracy):.3f}")
    print(f"{'method':<10}  strongest point on the square   ms per image (incl. decode)")
    for method in METHODS:
        print(f"{method:<10}  {hits[method]:>4}/{total} = {hits[method] / total:6.1%}"
              f"             {1000 * seconds[method] / total:8.1f}")


def train_on_squares(scratch: str, args, seed: int):
    from core.config import TrainingConfig
    from core.modeling.model_io import load_model
    from core.training.driver import train

    make_square_dataset(os.path.join(scratch, "train"), args.train, seed=100 + seed)
    make_square_dataset(os.path.join(scratch, "val"), 10, seed=200 + seed)
    boxes = make_square_dataset(os.path.join(scratch, "test"), args.test, seed=300 + seed)
    config = TrainingConfig(
        train_dir=os.path.join(scratch, "train"), val_dir=os.path.join(scratch, "val"),
        epochs=args.epochs, batch_size=16, image_size=args.size, model=args.model,
        learning_rate=3e-3, seed=seed, out_dir=os.path.join(scratch, "runs"),
    )
    result = train(config)
    assert result.status == "completed", result.message
    return load_model(result.run_dir), boxes, result.final_logs.get("val_accuracy", float("nan"))


def localise(loaded, boxes: dict, method: str) -> tuple[int, float]:
    from core.modeling.explain import explain_images

    started = time.perf_counter()
    found = sum(
        strongest_point_on_square(explanation.heatmaps[0], boxes[explanation.path])
        for explanation in explain_images(loaded, list(boxes), method=method)
    )
    return found, time.perf_counter() - started


if __name__ == "__main__":
    main()
