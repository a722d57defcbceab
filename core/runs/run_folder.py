"""The run folder: everything one training leaves behind, written so that a crash at any moment
leaves readable files (through core.files).

    config.json   the TrainingConfig
    labels.txt    one class name per line, in label order
    history.csv   one row per finished epoch, the columns Keras's CSVLogger writes
    model.keras   the best epoch by val_loss
    last.keras    the latest weights
    report.json   counts, skipped files, device, timings, best and final metrics, how the run ended,
                  the environment and the dataset's fingerprint
    dataset.json.gz   every image's path, size and modification time (core.data.fingerprint)
    tensorboard/  train/ and validation/ event files of the epoch metrics (core.training.tensorboard)
    workers.json  while a distributed run trains: each worker's rank, host and pid
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import time
from typing import Any

from core.files import write_atomic, write_text

CONFIG_FILE = "config.json"
LABELS_FILE = "labels.txt"
HISTORY_FILE = "history.csv"
BEST_MODEL_FILE = "model.keras"
LAST_MODEL_FILE = "last.keras"
REPORT_FILE = "report.json"
WORKERS_FILE = "workers.json"
DATASET_MANIFEST_FILE = "dataset.json.gz"


def create_run_dir(out_dir: str, model_name: str, now: float | None = None) -> str:
    """A new `<out>/<YYYYmmdd-HHMMSS>-<model>` folder; a numeric suffix keeps two runs apart."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = os.path.join(out_dir, f"{stamp}-{model_name}")
    os.makedirs(out_dir, exist_ok=True)
    for attempt in range(1, 1000):
        path = base if attempt == 1 else f"{base}-{attempt}"
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a new run folder next to {base}")


def prepare_output_folder(out_dir: str, missing: str, purpose: str) -> str | None:
    """Makes `out_dir` for files to be written into; the problem, for the user, when it cannot be.

    `missing` is the message for an empty path; `purpose` ends "choose a folder to ..."."""
    if not out_dir:
        return missing
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        return f"{out_dir} is a file; choose a folder to {purpose}."
    problem = check_writable(out_dir)
    if problem:
        return problem
    os.makedirs(out_dir, exist_ok=True)
    return None


def check_writable(out_dir: str) -> str | None:
    """Why runs cannot be written under `out_dir`, or None when they can.

    Creates (and removes) a folder where the first one would go, as permission bits cannot tell:
    root may write anywhere by them, yet not under /proc or on a read-only mount.
    """
    probe_dir = out_dir
    while probe_dir and not os.path.exists(probe_dir):
        probe_dir = os.path.dirname(probe_dir)
    probe_dir = probe_dir or "."
    if not os.path.isdir(probe_dir):
        return f"The output folder {out_dir} is inside {probe_dir}, which is a file."
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".fitstudio-probe-", dir=probe_dir))
    except OSError as exc:
        return (
            f"The output folder {out_dir} cannot be created or written ({exc.strerror or exc}). "
            "Choose another output folder."
        )
    return None


def save_model(model: Any, path: str) -> None:
    write_atomic(path, model.save)


def write_labels(run_dir: str, class_names: list[str]) -> None:
    write_text(os.path.join(run_dir, LABELS_FILE), "".join(f"{name}\n" for name in class_names))


def read_labels(path: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.strip()]


def history_csv(history: list[dict[str, Any]]) -> str:
    """CSVLogger's layout: `epoch` first, then the metric names sorted."""
    keys = sorted({key for row in history for key in row if key != "epoch"})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for row in history:
        writer.writerow([row["epoch"], *(_csv_value(row.get(key)) for key in keys)])
    return buffer.getvalue()


def write_history(run_dir: str, history: list[dict[str, Any]]) -> None:
    write_text(os.path.join(run_dir, HISTORY_FILE), history_csv(history))


def read_history(run_dir: str) -> list[dict[str, Any]]:
    with open(os.path.join(run_dir, HISTORY_FILE), encoding="utf-8", newline="") as handle:
        return [
            {key: int(value) if key == "epoch" else float(value) for key, value in row.items() if value != ""}
            for row in csv.DictReader(handle)
        ]


def _csv_value(value: Any) -> Any:
    return "" if value is None else value
