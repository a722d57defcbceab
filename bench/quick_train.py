"""Training a frozen MobileNetV2's head on cached features, against training it end to end.

    python bench/quick_train.py                  # 512 photo-sized JPEGs, 224 px, 10 epochs
    python bench/quick_train.py --images 256 --epochs 10

Makes (or reuses) photo-sized JPEGs under bench/data/ (as bench/pipeline.py makes them) and an
ImageNet-format MobileNetV2 weight file (random weights, seeded, in Keras's legacy HDF5 layout: the
file the app would download), then trains through the engine, each run in a fresh process:
  1. end to end with the base frozen (--features none), with a fresh disk cache;
  2. a first run on cached features (--features cached), with another fresh disk cache: it decodes
     the images and computes their features once;
  3. a second run on the same data with another learning rate: the features come from the cache;
  4. the first and the second run one after the other in one process, as the window runs them
     (its worker thread lives in the window's process), with another fresh disk cache: the row
     times the second.
Reported: wall time from train() to the saved model (TensorFlow already imported), the features'
one-time cost, and the final validation accuracy. No augmentation, --feature-copies 0, learning rate
1e-2 (the made weights' features vary little, and a head on them learns slowly at 1e-3), 3e-3 for the
second run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

WEIGHTS_NAME = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--run", help=argparse.SUPPRESS)  # runs one after another in a child process
    parser.add_argument("--make-weights", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_weights:
        write_weights(*args.make_weights)
        return
    if args.run:
        results = [one_run(values) for values in json.loads(args.run)]
        print(json.dumps(results[-1]))  # the row is the last run's
        return
    from pipeline import make_photos

    data = make_photos(os.path.join(ROOT, "bench", "data", f"photos-{args.images}"), args.images)
    work = tempfile.mkdtemp(prefix="fitstudio-quick-train-")
    try:
        keras_home = os.path.join(work, "keras-home")
        make_weights(keras_home, data)
        base = {"train_dir": data, "val_dir": None, "val_split": 0.2, "model": "mobilenetv2",
                "image_size": args.size, "epochs": args.epochs, "batch_size": args.batch,
                "learning_rate": 1e-2, "out_dir": os.path.join(work, "runs")}
        first, second = {**base, "features": "cached"}, {**base, "features": "cached", "learning_rate": 3e-3}
        runs = [  # (row, the runs of one process (the row times the last), its disk cache)
            ("end to end, base frozen", [{**base, "features": "none"}], "cache-e2e"),
            ("cached features, first run", [first], "cache-features"),
            ("cached features, second run (lr 3e-3)", [second], "cache-features"),
            ("second run after the first in one process, as in the window", [first, second], "cache-window"),
        ]
        rows = []
        for title, configs, cache in runs:
            env = {**os.environ, "KERAS_HOME": keras_home, "FITSTUDIO_OFFLINE": "1",
                   "FITSTUDIO_CACHE_DIR": os.path.join(work, cache)}
            output = subprocess.run([sys.executable, __file__, "--run", json.dumps(configs)], env=env,
                                    check=True, capture_output=True, text=True).stdout
            rows.append((title, json.loads(output.strip().splitlines()[-1])))
            print(title, rows[-1][1], flush=True)
        print_table(args, rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def make_weights(keras_home: str, data: str) -> None:
    """A headless MobileNetV2 saved as Keras's ImageNet file would be: seeded random weights, with each
    BatchNormalization's statistics set from a batch of the bench's images (one pass in training mode
    with momentum 0), so its features are well scaled, as pretrained ones are."""
    folder = os.path.join(keras_home, "models")
    os.makedirs(folder, exist_ok=True)
    subprocess.run([sys.executable, __file__, "--make-weights", os.path.join(folder, WEIGHTS_NAME), data],
                   check=True)


def write_weights(path: str, data: str) -> None:
    import h5py
    import numpy as np

    from core.data.dataset import load_split
    from core.data.images import decode_image
    from core.modeling.weights import build_backbone
    from core.tf_runtime import load_keras

    keras = load_keras()
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(7)
    backbone = build_backbone("mobilenetv2", 224)
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    files = load_split(data, None, 0.2, 7)[0]
    sample = np.random.default_rng(7).choice(len(files), size=min(64, len(files)), replace=False)
    images = np.stack([decode_image(files.paths[i], 224, "stretch") for i in sample]).astype("float32")
    backbone(images / 127.5 - 1.0, training=True)
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, backbone)


def one_run(values: dict) -> dict:
    import time

    from core.config import TrainingConfig
    from core.tf_runtime import load_keras
    from core.training.driver import train

    load_keras()
    started = time.perf_counter()
    result = train(TrainingConfig.from_dict(values))
    seconds = time.perf_counter() - started
    with open(os.path.join(result.run_dir, "report.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    return {"status": result.status, "seconds": seconds, "features": report.get("features"),
            "val_accuracy": result.history[-1]["val_accuracy"], "epoch_seconds":
            [round(epoch["seconds"], 2) for epoch in report["epochs"]]}


def print_table(args, rows) -> None:
    reference = rows[0][1]["seconds"]
    print(f"\nMobileNetV2 (made ImageNet-format weights), {args.images} photo-sized JPEGs, {args.size} px, "
          f"{args.epochs} epochs, batch {args.batch}, no augmentation, --feature-copies 0\n")
    print("| run | wall time, train() to saved model | features: computed / reused, seconds | speed-up "
          "| final val accuracy |")
    print("|---|---|---|---|---|")
    for title, row in rows:
        features = row["features"] or {}
        cost = (f"{features['computed']} / {features['reused']}, {features['seconds']:.1f} s"
                if features.get("cached") else "-")
        print(f"| {title} | {row['seconds']:.1f} s | {cost} | {reference / row['seconds']:.1f}x "
              f"| {row['val_accuracy']:.3f} |")


if __name__ == "__main__":
    main()
