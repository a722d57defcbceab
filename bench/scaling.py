"""Scaling: the same training in one process against N Ray workers (and 1 GPU against all of them).

    python bench/scaling.py                    # demo dataset, small-cnn, 128 px, 4 epochs: 1 vs 2 workers
    python bench/scaling.py --workers 4        # 1 vs 4 workers
    python bench/scaling.py --gpus             # also 1 GPU vs all GPUs (MirroredStrategy), where there are
    python bench/scaling.py --precision        # also float32 vs mixed precision (MobileNetV2, 224 px)

Every configuration is a real `train` of the engine; the figures come from its report.json:
  img/s       training images per second, best epoch after the first (the first decodes and traces)
  data wait   share of that epoch the training loop waited for a batch
  efficiency  img/s of N workers (or GPUs) / (N x img/s of one)
  to epoch 1  seconds from the call to the end of the first epoch: start-up cost (Ray cluster,
              worker processes, TensorFlow imported in each)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from core import files  # noqa: E402
from core.config import TrainingConfig  # noqa: E402
from core.events import EpochEnd  # noqa: E402
from core.runs import run_folder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--train", help="training folder (default: the demo)")
    parser.add_argument("--val", help="validation folder")
    parser.add_argument("--gpus", action="store_true", help="also compare one GPU with all GPUs")
    parser.add_argument("--precision", action="store_true", help="also float32 against mixed precision")
    args = parser.parse_args()
    base = TrainingConfig(epochs=args.epochs, image_size=args.image_size, batch_size=args.batch)
    if args.train:
        base = base.replace(train_dir=args.train, val_dir=args.val)
    print(f"{len(os.sched_getaffinity(0))} CPU cores; {describe_gpus()}; {base.epochs} epochs, "
          f"{base.image_size} px, global batch {base.batch_size}\n")
    rows = [measure("1 process", base),
            # Workers on one computer open TensorFlow's servers on every interface: a bench consents.
            measure(f"{args.workers} Ray workers", base.replace(workers=args.workers, allow_open_ports=True))]
    rows[1]["efficiency"] = rows[1]["images_per_second"] / (args.workers * rows[0]["images_per_second"])
    if args.gpus:
        rows += [measure("1 GPU", base.replace(gpus="0")), measure("all GPUs", base.replace(gpus="all"))]
        gpus = rows[-1]["distribution"].get("replicas", 1)
        rows[-1]["efficiency"] = rows[-1]["images_per_second"] / (gpus * rows[-2]["images_per_second"])
    if args.precision:
        photo = base.replace(model="mobilenetv2", image_size=224)
        rows += [measure("MobileNetV2 float32", photo),
                 measure("MobileNetV2 mixed", photo.replace(precision="mixed"))]
    print_table(rows)


def describe_gpus() -> str:
    from core.training.device import list_gpus

    gpus = list_gpus()
    return ", ".join(gpu.label() for gpu in gpus) if gpus else "no GPU"


def measure(name: str, config: TrainingConfig) -> dict:
    from core.training.driver import train

    out = tempfile.mkdtemp(prefix="fitstudio-scaling-")
    started, first_epoch = time.perf_counter(), []

    def on_event(event) -> None:
        if isinstance(event, EpochEnd) and not first_epoch:
            first_epoch.append(time.perf_counter() - started)

    result = train(config.replace(out_dir=out), on_event)
    report = files.read_json(os.path.join(result.run_dir, run_folder.REPORT_FILE))
    later = report["epochs"][1:] or report["epochs"]
    best = max(later, key=lambda epoch: epoch["images_per_second"])
    row = {
        "name": name,
        "status": result.status,
        "images_per_second": best["images_per_second"],
        "data_wait": best["data_wait"],
        "images": best.get("images"),
        "to_first_epoch": first_epoch[0] if first_epoch else float("nan"),
        "val_accuracy": result.best_val_accuracy,
        "distribution": report.get("distribution") or {},
        "efficiency": None,
    }
    print(f"{name}: {row['images_per_second']:.0f} img/s, {result.status}, {result.duration_seconds:.0f} s",
          flush=True)
    return row


def print_table(rows: list[dict]) -> None:
    print("\n| configuration | img/s | data wait | efficiency | to epoch 1 | images/epoch | val acc |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        efficiency = f"{row['efficiency']:.0%}" if row["efficiency"] is not None else ""
        print(f"| {row['name']} | {row['images_per_second']:.0f} | {row['data_wait']:.0%} | {efficiency} | "
              f"{row['to_first_epoch']:.0f} s | {row['images']} | {row['val_accuracy']:.3f} |")


if __name__ == "__main__":
    main()
