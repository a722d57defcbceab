"""What the dataset doctor finds, what it misses, what it wrongly flags, and how long it takes.

    python bench/doctor.py                       # digits with injected problems, ~2,000 images
    python bench/doctor.py --photos              # also: time on 2,000 photo-sized JPEGs (bench/data)
    python bench/doctor.py --folder DIR [--no-labels]   # also: time on any dataset folder
    python bench/doctor.py --model runs/RUN      # label check on a trained model's features

The digits dataset: scikit-learn's 1,797 handwritten digits upscaled to 32 px RGB PNGs, 10 classes,
split 80/20 into train/ and val/ (seeded), then injected with known problems:
  - exact duplicates: 15 training images copied under another name (5 of them as BMP: same
    pixels, other format);
  - near duplicates: 15 training images copied re-encoded as JPEG, resized or recoloured;
  - leaks: 10 training images copied into val/ (5 exact, 5 re-encoded);
  - flipped labels: 30 training images moved to a wrong class folder;
  - outliers: 5 images of noise or of a photo, in random classes;
  - unreadable: 3 files (empty, truncated, not an image).
A finding counts as found when it names an injected problem; everything else it reports is a false
alarm. Note that the clean digits themselves hold some near-identical pairs (bench/near_duplicates.py).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from PIL import Image, ImageEnhance  # noqa: E402


def make_digits_dataset(root: str, seed: int = 0, side: int = 32) -> dict[str, set]:
    """Writes the dataset with its injected problems; returns what was injected, by check."""
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    digits = load_digits()
    order = rng.permutation(len(digits.images))
    n_val = len(order) // 5
    paths = []
    for position, index in enumerate(order):
        split = "val" if position < n_val else "train"
        grey = Image.fromarray(np.uint8(digits.images[index] * (255 / 16)), mode="L")
        image = grey.resize((side, side), Image.Resampling.BILINEAR).convert("RGB")
        path = os.path.join(root, split, f"digit{digits.target[index]}", f"{index:04d}.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        image.save(path)
        paths.append((split, int(digits.target[index]), path))
    train = [(label, path) for split, label, path in paths if split == "train"]
    picks = iter(rng.permutation(len(train)))
    checks = ("exact", "near", "leaks", "flips", "outliers", "unreadable")
    injected: dict[str, set] = {key: set() for key in checks}
    for n in range(15):
        _, path = train[next(picks)]
        copy = path.replace(".png", f"_copy.{'bmp' if n < 5 else 'png'}")
        Image.open(path).save(copy)
        injected["exact"].add(frozenset((path, copy)))
    for n in range(15):
        _, path = train[next(picks)]
        image = Image.open(path).convert("RGB")
        copy = path.replace(".png", "_near.jpg" if n % 3 == 0 else "_near.png")
        if n % 3 == 0:
            image.save(copy, quality=70)
        elif n % 3 == 1:
            image.resize((28, 28), Image.Resampling.BICUBIC).save(copy)
        else:
            ImageEnhance.Brightness(image).enhance(1.1).save(copy)
        injected["near"].add(frozenset((path, copy)))
    for n in range(10):
        label, path = train[next(picks)]
        target = os.path.join(root, "val", f"digit{label}", f"leak_{n}" + (".png" if n < 5 else ".jpg"))
        Image.open(path).convert("RGB").save(target, **({} if n < 5 else {"quality": 90}))
        injected["leaks"].add((path, target))
    for _ in range(30):
        label, path = train[next(picks)]
        wrong = (label + int(rng.integers(1, 10))) % 10
        target = os.path.join(root, "train", f"digit{wrong}", "flipped_" + os.path.basename(path))
        shutil.move(path, target)
        injected["flips"].add((target, f"digit{label}"))
    photo = _photo()
    for n in range(5):
        target = os.path.join(root, "train", f"digit{int(rng.integers(0, 10))}", f"odd_{n}.png")
        if n % 2:
            Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(target)
        else:
            top, left = (int(v) for v in rng.integers(0, 300, 2))
            Image.fromarray(photo[top : top + 96, left : left + 96]).resize((side, side)).save(target)
        injected["outliers"].add(target)
    broken = os.path.join(root, "train", "digit0")
    with open(os.path.join(broken, "empty.png"), "wb"):
        pass
    buffer = io.BytesIO()
    Image.open(train[0][1] if os.path.exists(train[0][1]) else target).convert("RGB").save(buffer, "JPEG")
    with open(os.path.join(broken, "truncated.jpg"), "wb") as handle:
        handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with open(os.path.join(broken, "notes.png"), "w") as handle:
        handle.write("not an image")
    injected["unreadable"] = {os.path.join(broken, n) for n in ("empty.png", "truncated.jpg", "notes.png")}
    return injected


def _photo() -> np.ndarray:
    from sklearn.datasets import load_sample_images

    return load_sample_images().images[0]


def score(report, injected: dict[str, set]) -> list[tuple[str, int, int, int]]:
    """(check, injected, found, false alarms) rows."""
    rows = []
    exact_groups = [frozenset(g.paths) for g in report.duplicates if g.kind == "exact"]
    near_groups = [frozenset(g.paths) for g in report.duplicates if g.kind == "near"]
    rows.append(_groups("exact duplicates", injected["exact"], exact_groups))
    rows.append(_groups("near duplicates", injected["near"], near_groups))
    leaks = {(leak.train, leak.val) for leak in report.leaks}
    rows.append(_found("leaks", injected["leaks"], leaks))
    flips = {issue.path: issue.suggested for issue in report.label_issues}
    flipped = {path for path, _ in injected["flips"]}
    # an injected outlier flagged as a label error is a problem found, not a false alarm
    rows.append(_found("flipped labels", flipped, flips.keys() - injected["outliers"]))
    right = sum(flips.get(path) == truth for path, truth in injected["flips"])
    rows.append(("  ... with the right suggested class", len(flipped), right, 0))
    rows.append(("  (injected outliers among label errors)", len(injected["outliers"]),
                 len(flips.keys() & injected["outliers"]), 0))
    rows.append(_found("outliers", injected["outliers"], {o.path for o in report.outliers}))
    rows.append(_found("unreadable", injected["unreadable"], {s.path for s in report.skipped}))
    return rows


def _found(name: str, injected: set, reported: set) -> tuple[str, int, int, int]:
    return (name, len(injected), len(reported & injected), len(reported - injected))


def _groups(name, injected: set, found: list[frozenset]) -> tuple[str, int, int, int]:
    hits = sum(any(pair <= group for group in found) for pair in injected)
    false = sum(not any(pair <= group for pair in injected) for group in found)
    return (name, len(injected), hits, false)


LOAD_BEFORE = os.getloadavg()


def run_digits(model: str | None) -> None:
    from core.modeling.doctor import check_dataset

    with tempfile.TemporaryDirectory(prefix="fitstudio-doctor-") as folder:
        injected = make_digits_dataset(folder)
        train, val = os.path.join(folder, "train"), os.path.join(folder, "val")
        images = sum(len(files) for _, _, files in os.walk(folder))
        started, cpu = time.perf_counter(), time.process_time()
        report = check_dataset(train, val, model)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"digits with injected problems: {images} files, label check: {report.label_source}; "
              f"{seconds:.1f} s wall, {cpu:.1f} s CPU (TensorFlow's import included), "
              f"load average before/after: {LOAD_BEFORE[0]:.1f}/{os.getloadavg()[0]:.1f}")
        print(f"{'check':<38}{'injected':>9}{'found':>7}{'false alarms':>14}")
        for name, count, found, false in score(report, injected):
            print(f"{name:<38}{count:>9}{found:>7}{false:>14}")


def run_photos() -> None:
    from bench.pipeline import make_photos  # the pipeline bench's 2,000 photo-sized JPEGs

    root = make_photos(os.path.join(ROOT, "bench", "data", "photos-2000"), 2000)
    run_folder(root, "2,000 photo-sized JPEGs (1024x768..2000x1500)", check_labels=True)


def run_folder(root: str, what: str, check_labels: bool) -> None:
    from core.modeling.doctor import check_dataset

    started, cpu, load = time.perf_counter(), time.process_time(), os.getloadavg()[0]
    report = check_dataset(root, None, check_labels=check_labels)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    images = sum(report.class_counts["train"].values())
    labels = "checked" if check_labels else "not checked"
    print(f"\n{what}: {root}, {images} images, labels {labels}: {seconds:.1f} s wall, {cpu:.1f} s CPU, "
          f"load average before/after {load:.1f}/{os.getloadavg()[0]:.1f}; "
          f"duplicate groups {len(report.duplicates)}, label issues {len(report.label_issues)}, "
          f"outliers {len(report.outliers)}, unreadable {len(report.skipped)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", action="store_true", help="also time 2,000 photo-sized JPEGs")
    parser.add_argument("--folder", help="also time the doctor on this dataset folder")
    parser.add_argument("--no-labels", action="store_true", help="with --folder: skip the label check")
    parser.add_argument("--skip-digits", action="store_true", help="only the --photos/--folder timing")
    parser.add_argument("--model", help="a run folder whose features the label check uses")
    args = parser.parse_args()
    if not args.skip_digits:
        run_digits(args.model)
    if args.photos:
        run_photos()
    if args.folder:
        run_folder(args.folder, "folder", check_labels=not args.no_labels)


if __name__ == "__main__":
    main()
