"""Run folders made by hand as the engine leaves them (config.json, checkpoint, report.json with every
key the runs index reads), for the runs index and Runs tab tests; no TensorFlow."""

from __future__ import annotations

import dataclasses
import os
import socket

from core import files
from core.config import TrainingConfig
from core.runs import checkpoints, run_folder

FINGERPRINT = {"train": {"hash": "a" * 64, "files": 24, "class_counts": {"x": 12, "y": 12}},
               "val": {"hash": "b" * 64, "files": 8, "class_counts": {"x": 4, "y": 4}}, "hash": "c" * 64}


def history(epochs):
    return [{"epoch": e, "loss": 1.0 / (e + 1), "accuracy": 0.5 + e / 10, "val_loss": 1.2 / (e + 1),
             "val_accuracy": 0.4 + e / 10} for e in range(epochs)]


def make_run(root, name, status="completed", done=2, epochs=2, started="2026-11-29T10:00:00+0000",
             **config_changes):
    """A run folder as the engine leaves it: config, checkpoint (and model.keras) after `done` epochs,
    report.json."""
    run_dir = os.path.join(str(root), name)
    os.makedirs(run_dir)
    settings = {"train_dir": "data/train", "val_dir": "data/val", "epochs": epochs, **config_changes}
    config = TrainingConfig(**settings).to_dict()
    files.write_json(os.path.join(run_dir, run_folder.CONFIG_FILE), config)
    rows = history(done)
    best = min(rows, key=lambda row: row["val_loss"]) if rows else {}
    model_file = None
    if done:
        path = checkpoints.model_path(run_dir, done - 1)
        os.makedirs(os.path.dirname(path))
        with open(path, "wb") as handle:
            handle.write(b"model")
        model_file = os.path.relpath(path, run_dir)
        state = checkpoints.Checkpoint(done - 1, model_file, config, rows, [], best, {}, 3.0)
        files.write_json(os.path.join(run_dir, checkpoints.CHECKPOINT_FILE), dataclasses.asdict(state))
        files.copy_file(path, os.path.join(run_dir, run_folder.BEST_MODEL_FILE))
    process = {"pid": os.getpid(), "host": socket.gethostname()} if status == "running" else None
    files.write_json(os.path.join(run_dir, run_folder.REPORT_FILE), {
        "status": status, "message": "", "process": process, "model": config["model"],
        "duration_seconds": 3.0 * done, "epochs_completed": done, "config": config,
        "best": {"epoch": best.get("epoch"), "val_loss": best.get("val_loss"),
                 "val_accuracy": best.get("val_accuracy")},
        "dataset_fingerprint": FINGERPRINT, "environment": {"tensorflow": "2.21.0"},
        "started_at": started, "checkpoint": model_file,
    })
    return run_dir


def add_epoch(run_dir):
    """The run (training) finishes one more epoch: its checkpoint and report say so."""
    checkpoint_file = os.path.join(run_dir, checkpoints.CHECKPOINT_FILE)
    state = files.read_json(checkpoint_file)
    done = state["epoch"] + 2
    state.update(epoch=done - 1, history=history(done))
    files.write_json(checkpoint_file, state)
    report_file = os.path.join(run_dir, run_folder.REPORT_FILE)
    files.write_json(report_file, {**files.read_json(report_file), "epochs_completed": done})
