"""What the Train tab's log and status bar say about a run, in words: its start, the start of training
on a device, each epoch, a resume, a download and the end. Text only (no widgets), from the plain
engine events, so each line is tested without a window."""

from __future__ import annotations

import os

from core.config import TrainingConfig
from core.events import DownloadProgress, EpochEnd, RunResult, RunStarted
from core.formatting import format_size

EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def start_line(config: TrainingConfig) -> str:
    return (f"Starting {config.model}: {config.epochs} epochs, batch size {config.batch_size}, "
            f"{config.image_size} px images.")


def resume_line(run_dir: str, done: int, total: int, batch_size: int | None) -> str:
    batches = f" with batches of {batch_size}." if batch_size else "."
    return (f"Resuming {os.path.basename(os.path.normpath(run_dir))} after epoch {done}: "
            f"training up to epoch {total}{batches}")


def download_line(event: DownloadProgress) -> str:
    size = format_size(event.total_bytes) if event.total_bytes else "size unknown"
    return f"Downloading {event.file_name} ({size}) from {event.url}…"


def run_started_lines(event: RunStarted) -> list[str]:
    """Where it trains and on what; for a distributed run, how each step's batch is shared."""
    train_total, val_total = sum(event.train_counts.values()), sum(event.val_counts.values())
    lines = [f"Training on {event.device}: {len(event.class_names)} classes, {train_total} training and "
             f"{val_total} validation images, {event.steps_per_epoch} batches per epoch."]
    spread = event.distribution
    if spread.get("replicas", 1) > 1:
        lines.append(
            f"{spread['strategy']}: {spread['workers']} worker(s), {spread['replicas']} replicas; "
            f"each step of {spread['global_batch']} images gives {spread['per_replica_batch']} to "
            "each replica."
        )
    return lines


def epoch_line(event: EpochEnd) -> str:
    metrics = "  ".join(f"{key} {event.logs[key]:.4f}" for key in EPOCH_METRICS if key in event.logs)
    return (f"Epoch {event.epoch + 1}/{event.epochs}: {metrics}  ({event.seconds:.1f} s, "
            f"{event.images_per_second:,.0f} images/s, waited for data {event.data_wait:.0%})")


def finished_words(result: RunResult, stopped_early: bool) -> tuple[str, str, str]:
    """(log line, its level, status bar message) for a run that ended without failing."""
    if result.status == "cancelled" and not result.run_dir:  # stopped before a run folder was made
        return result.message or "Stopped.", "warning", "Training stopped."
    if result.status == "cancelled":
        return (f"Stopped. The partial run is saved in {os.path.abspath(result.run_dir)}", "warning",
                "Training stopped.")
    return (f"Finished. The run is saved in {os.path.abspath(result.run_dir)}", "success",
            "Training stopped early." if stopped_early else "Training finished.")
