"""How long reading run folders takes: read_run_info over N run folders shaped like the engine's
(config.json, report.json, checkpoint.json with a full history, a model file), best of 3 passes.

    python bench/run_info.py [--runs 1000] [--epochs 50]

The runs index (issue 13) lists folders through read_run_info; its target is 1,000 runs in under 1 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core import files
from core.config import TrainingConfig
from core.runs import checkpoints, run_folder
from core.runs.run_info import read_run_info


def make_runs(root: str, runs: int, epochs: int) -> list[str]:
    config = TrainingConfig(train_dir="data", epochs=epochs).to_dict()
    history = [{"epoch": e, "loss": 1 / (e + 1), "accuracy": 0.5, "val_loss": 1.1 / (e + 1),
                "val_accuracy": 0.6, "learning_rate": 0.001} for e in range(epochs)]
    stats = [{"epoch": e, "seconds": 3.2, "images_per_second": 800.0, "data_wait": 0.1, "save_seconds": 0.05}
             for e in range(epochs)]
    folders = []
    for index in range(runs):
        run_dir = os.path.join(root, f"20261129-{index:06d}-small-cnn")
        model_file = checkpoints.model_path(run_dir, epochs - 1)
        os.makedirs(os.path.dirname(model_file))
        with open(model_file, "wb") as handle:
            handle.write(b"model")
        files.write_json(os.path.join(run_dir, run_folder.CONFIG_FILE), config)
        model_name = os.path.relpath(model_file, run_dir)
        state = checkpoints.Checkpoint(epochs - 1, model_name, config, history, stats, history[-1], {}, 100.0)
        files.write_json(os.path.join(run_dir, checkpoints.CHECKPOINT_FILE), dataclasses.asdict(state))
        report = engine_report(config, stats, model_name)
        files.write_json(os.path.join(run_dir, run_folder.REPORT_FILE), report)
        folders.append(run_dir)
    return folders


def engine_report(config: dict, stats: list[dict], model_file: str) -> dict:
    """report.json with every key the engine writes (core.training.run.Run._report)."""
    classes = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    counts = {"train": dict.fromkeys(classes, 400), "val": dict.fromkeys(classes, 80)}
    split = {"hash": "ab" * 32, "files": 2000, "class_counts": counts["train"]}
    best = {"epoch": len(stats) - 1, "val_loss": 0.1, "val_accuracy": 0.9}
    environment = {"python": "3.11.7", "tensorflow": "2.21.0", "keras": "3.15.1", "numpy": "2.4.6",
                   "pillow": "12.3.0", "PySide6": "6.11.3", "os": "Linux", "cpu": "AMD EPYC", "gpus": []}
    return {
        "status": "completed", "message": "", "out_of_memory": False, "process": None,
        "class_names": classes, "counts": counts, "skipped": [], "device": "CPU only",
        "model": config["model"], "duration_seconds": 160.0, "epochs_completed": len(stats), "best": best,
        "final": {"loss": 0.1, "accuracy": 0.95, "val_loss": 0.1, "val_accuracy": 0.9}, "config": config,
        "dataset_fingerprint": {"train": split, "val": split, "hash": "cd" * 32}, "environment": environment,
        "started_at": "2026-11-29T10:00:00+0000", "epochs": stats, "stopped_early": None,
        "pretrained_weights": None, "weights_note": "", "resumes": [], "checkpoint": model_file,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="fitstudio-run-info-")
    try:
        folders = make_runs(root, args.runs, args.epochs)
        times = []
        for _ in range(3):
            started = time.perf_counter()
            infos = [read_run_info(folder) for folder in folders]
            times.append(time.perf_counter() - started)
        assert all(info.status == "completed" and info.can_resume for info in infos)
        print(f"read_run_info over {args.runs} runs of {args.epochs} epochs: best {min(times):.3f} s, "
              f"passes {', '.join(f'{t:.3f}' for t in times)} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
