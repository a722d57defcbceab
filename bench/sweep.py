"""Sweeps on scikit-learn's digits (issue 24): 8 trials, learning rates 1e-5 to 1e-1, 6 epochs, with
ASHA against every trial run to the end, and the default settings' single run.

    .venv/bin/python bench/sweep.py [--trials 8] [--epochs 6] [--image-size 64]

Targets: the best trial's validation accuracy is at least the default run's; ASHA's wall time is
0.6x or less of running every trial to the end. Both sweeps draw the same trials (same seed) on one
local Ray cluster of this machine's cores. Prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core.config import TrainingConfig
from core.training.sweep.runner import SweepRequest, run_sweep
from core.training.sweep.space import parse_dimension

VAL_FRACTION = 0.2


def write_all_digits(root: str) -> tuple[str, str]:
    """Every one of the 1,797 digits as a PNG, a fifth of each class held out for validation."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for digit in range(10):
        images = digits.images[digits.target == digit]
        held_out = int(len(images) * VAL_FRACTION)
        for index, pixels in enumerate(images):
            split = "val" if index < held_out else "train"
            path = os.path.join(root, split, str(digit), f"{index:04d}.png")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.fromarray((pixels * 255 / 16).astype(np.uint8)).convert("RGB").save(path)
    return os.path.join(root, "train"), os.path.join(root, "val")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="fitstudio-bench-sweep-")
    train_dir, val_dir = write_all_digits(root)
    base = TrainingConfig(train_dir=train_dir, val_dir=val_dir, epochs=args.epochs,
                          image_size=args.image_size,
                          out_dir=os.path.join(root, "runs"), cache_disk_mb=0)
    rows = [default_run(base)]
    space = {"learning_rate": parse_dimension("learning_rate", "1e-5:1e-1")}
    for scheduler in ("none", "asha"):
        request = SweepRequest(base, space, args.trials, "val_accuracy", scheduler)
        started = time.perf_counter()
        finished = run_sweep(request)
        seconds = time.perf_counter() - started
        epochs = sum(trial["epochs_completed"] for trial in finished.trials)
        best = finished.best or {}
        rows.append((f"sweep, scheduler {scheduler}", seconds, epochs, best.get("val_accuracy"),
                     best.get("settings", {}).get("learning_rate")))
    print(f"\n{args.trials} trials, {args.epochs} epochs, {args.image_size} px, {os.cpu_count()} cores\n")
    print("| what | wall time (s) | epochs trained | best val accuracy | its learning rate |")
    print("|---|---|---|---|---|")
    for name, seconds, epochs, accuracy, rate in rows:
        print(f"| {name} | {seconds:.1f} | {epochs} | {accuracy:.3f} | {rate:g} |")
    default_accuracy, none_seconds, asha_seconds = rows[0][3], rows[1][1], rows[2][1]
    print(f"\nASHA / every trial to the end: {asha_seconds / none_seconds:.2f}x (target <= 0.6); best trial "
          f"{rows[2][3]:.3f} vs default {default_accuracy:.3f} (target: at least the default's)")


def default_run(base: TrainingConfig) -> tuple[str, float, int, float, float]:
    from core.training.driver import train

    started = time.perf_counter()
    result = train(base)
    seconds = time.perf_counter() - started
    accuracy = max(row["val_accuracy"] for row in result.history)
    return "default settings, one run in this process", seconds, result.epochs_completed, accuracy, \
        base.learning_rate


if __name__ == "__main__":
    main()
