"""`train`: a training without the window (a new run, `--like RUN` with any flag changed, or
`--resume RUN`), its flags, and the lines it prints while it trains.

Exit codes as every command (core.cli.common): 0 trained, 1 the run failed, 2 bad arguments or an
unusable folder, 130 stopped by Ctrl-C (the run so far is saved).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from core.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, stop_on_ctrl_c
from core.cli.terminal import LiveLine
from core.config import (
    CLASS_WEIGHT_MODES,
    MODEL_NAMES,
    PRECISIONS,
    RESIZE_MODES,
    Augmentation,
    TrainingConfig,
)
from core.errors import ConfigError, FitStudioError
from core.events import (
    BatchEnd,
    DownloadProgress,
    EpochEnd,
    FeatureProgress,
    Message,
    RunFailed,
    RunFinished,
    RunStarted,
)
from core.formatting import format_duration, format_size
from core.runs.run_info import read_run_info


def add_train_command(subparsers) -> None:
    train_parser = subparsers.add_parser("train", help="train a model without the window")
    add_training_arguments(train_parser)
    train_parser.set_defaults(handler=run_train)


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainingConfig()
    parser.add_argument("--train", metavar="DIR", help="training folder (default: the bundled demo)")
    validation = parser.add_mutually_exclusive_group()
    validation.add_argument("--val", metavar="DIR", help="validation folder with the same classes")
    validation.add_argument(
        "--val-split",
        metavar="F",
        type=float,
        help=f"fraction of each class held out for validation when there is no --val "
        f"(default {defaults.val_split})",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        metavar="N",
        help=f"epochs to train (default {defaults.epochs}); with --resume, the new total",
    )
    parser.add_argument(
        "--batch-size", type=int, metavar="N",
        help=f"images per batch (default {defaults.batch_size}); with --resume, the size to continue with "
        "(default: the run's own, or half of it when the run ran out of memory)",
    )
    # No flag below has an argparse default: a flag left out is None, so `--like RUN` can tell the
    # flags given (which override RUN's settings) from the rest; config_from_args fills in defaults.
    parser.add_argument(
        "--image-size",
        type=int,
        metavar="N",
        help=f"side of the square model input in pixels (default {defaults.image_size})",
    )
    parser.add_argument("--model", choices=MODEL_NAMES, help=f"(default {defaults.model})")
    parser.add_argument(
        "--lr",
        type=float,
        metavar="X",
        help=f"learning rate of the Adam optimizer (default {defaults.learning_rate})",
    )
    parser.add_argument(
        "--augment", action=argparse.BooleanOptionalAction,
        help="random flip, rotation, zoom and contrast on training batches (default: off)",
    )
    parser.add_argument(
        "--resize",
        choices=RESIZE_MODES,
        help=f"stretch to the square input, or centre-crop to it first (default {defaults.resize_mode})",
    )
    parser.add_argument("--seed", type=int, metavar="N", help=f"(default {defaults.seed})")
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="decode every image in every epoch and keep nothing on disk between runs",
    )
    parser.add_argument(
        "--cache-disk-mb",
        type=int,
        default=defaults.cache_disk_mb,
        metavar="MB",
        help="disk space for decoded images kept between runs, least recently used datasets removed "
        f"first (default {defaults.cache_disk_mb}; 0: keep nothing)",
    )
    parser.add_argument(
        "--out", metavar="DIR", help=f"folder the run folder is created in (default {defaults.out_dir})"
    )
    parser.add_argument(
        "--early-stopping",
        type=int,
        metavar="N",
        help="stop when val_loss has not improved for N epochs (default: off)",
    )
    parser.add_argument(
        "--reduce-lr",
        type=int,
        metavar="N",
        help="halve the learning rate when val_loss has not improved for N epochs (default: off)",
    )
    add_placement_arguments(parser, defaults)
    parser.add_argument(
        "--features", choices=("cached", "none"),
        help="cached: compute each image's backbone features once (kept in the disk cache for later "
        "runs) and train the head on them; none: run every image through the whole model every epoch "
        "(default: cached for mobilenetv2 and efficientnetb0 in this process, else none)",
    )
    parser.add_argument(
        "--feature-copies", type=int, metavar="K",
        help="with cached features and --augment, keep K augmented copies of each training image; "
        "each epoch trains on one of them (default 0: no augmentation on cached features)",
    )
    parser.add_argument(
        "--fine-tune-after",
        type=int,
        default=defaults.fine_tune_after,
        metavar="N",
        help="after N epochs with the pretrained backbone frozen, unfreeze its top layers and go on "
        "training with --fine-tune-lr (default: off)",
    )
    parser.add_argument(
        "--fine-tune-layers",
        type=int,
        default=defaults.fine_tune_layers,
        metavar="K",
        help=f"how many of the backbone's top layers fine-tuning unfreezes; BatchNormalization layers "
        f"stay frozen (default {defaults.fine_tune_layers})",
    )
    parser.add_argument(
        "--fine-tune-lr",
        type=float,
        default=defaults.fine_tune_learning_rate,
        metavar="X",
        help=f"learning rate while fine-tuning (default {defaults.fine_tune_learning_rate:g})",
    )
    parser.add_argument(
        "--weights-url",
        default=defaults.weights_url,
        metavar="URL",
        help="base URL of a mirror of Keras's weight files (default: $FITSTUDIO_WEIGHTS_URL, else "
        "Keras's servers); the file name is appended",
    )
    parser.add_argument(
        "--class-weights",
        choices=CLASS_WEIGHT_MODES,
        default=defaults.class_weights,
        help="auto: weight each class's loss by n_images / (n_classes * n_class) so small classes "
        "count as much as large ones (default: none)",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a stopped, failed or killed run from its last checkpoint (other settings "
        "come from the run; --epochs sets a new total)",
    )
    parser.add_argument(
        "--like",
        metavar="RUN_DIR",
        help="start a new run with the settings of RUN_DIR; any other flag given overrides its value "
        "(--train changes the training folder only; --val or --val-split the validation)",
    )
    # None marks a flag not given, so `train --like RUN` keeps RUN's value for it (config_from_args).
    parser.set_defaults(**dict.fromkeys((*_FLAG_FIELDS, *_SWITCHES)))


def add_placement_arguments(parser: argparse.ArgumentParser, defaults: TrainingConfig) -> None:
    """Where it trains (GPUs, Ray workers) and the speed switches."""
    where = parser.add_argument_group("where it trains and how fast (README: Several GPUs and machines)")
    where.add_argument(
        "--gpus", metavar="all|0,1", default=defaults.gpus,
        help="train on these GPUs of this computer at once (default: TensorFlow's choice, one device)",
    )
    where.add_argument(
        "--workers", type=int, metavar="N", default=defaults.workers,
        help="train in N worker processes on a Ray cluster started for the run (needs Ray: "
        "pip install -r requirements-cluster.txt); with --cluster, N workers there",
    )
    where.add_argument(
        "--cluster", metavar="ADDRESS", default=defaults.cluster,
        help="join the running Ray cluster at ADDRESS (host:port, from `ray start --head`); the data "
        "and --out folders must be at the same path on every machine",
    )
    where.add_argument(
        "--allow-open-ports", action="store_true",
        help="let --workers N run on this computer although TensorFlow's servers then accept "
        "unauthenticated connections on every network interface while the run lasts (for several "
        "GPUs of one computer, use --gpus)",
    )
    where.add_argument(
        "--max-restarts", type=int, metavar="N", default=defaults.max_restarts,
        help=f"restart the workers up to N times when one dies (default {defaults.max_restarts})",
    )
    where.add_argument(
        "--precision", choices=PRECISIONS, default=defaults.precision,
        help="mixed: compute in float16 (GPU) or bfloat16 (CPU), keep weights and the last layer float32",
    )
    where.add_argument("--jit", action="store_true", help="compile the training step with XLA")


# TrainingConfig field of each flag that maps one to one.
_FLAG_FIELDS = {
    "train": "train_dir", "val": "val_dir", "val_split": "val_split", "epochs": "epochs",
    "batch_size": "batch_size", "image_size": "image_size", "model": "model", "lr": "learning_rate",
    "resize": "resize_mode", "seed": "seed", "out": "out_dir", "early_stopping": "early_stopping_patience",
    "reduce_lr": "reduce_lr_patience", "cache_disk_mb": "cache_disk_mb", "weights_url": "weights_url",
    "fine_tune_after": "fine_tune_after", "fine_tune_layers": "fine_tune_layers",
    "fine_tune_lr": "fine_tune_learning_rate", "class_weights": "class_weights", "gpus": "gpus",
    "workers": "workers", "cluster": "cluster", "max_restarts": "max_restarts", "precision": "precision",
    "features": "features", "feature_copies": "feature_copies",
}
# Switches that only turn something on or off when given.
_SWITCHES = {"no_cache": ("cache", False), "jit": ("jit", True),
             "allow_open_ports": ("allow_open_ports", True)}


def config_from_args(args: argparse.Namespace, like: TrainingConfig | None = None) -> TrainingConfig:
    """The flags given, over `like` (a run's settings) or over the defaults (the bundled demo)."""
    given = {flag: getattr(args, flag) for flag in _FLAG_FIELDS}
    changes = {_FLAG_FIELDS[flag]: value for flag, value in given.items() if value is not None}
    changes.update(dict(_SWITCHES[flag] for flag in _SWITCHES if getattr(args, flag)))
    if args.augment is not None:
        changes["augmentation"] = Augmentation.all_on() if args.augment else Augmentation()
    if args.val_split is not None or (like is None and args.train and not args.val):
        changes["val_dir"] = None  # hold out part of the training folder
    return (like or TrainingConfig()).replace(**changes).validate()


def like_config(run_dir: str) -> TrainingConfig:
    """The settings of the run in `run_dir`; raises ConfigError saying what is wrong."""
    config = read_run_info(run_dir).config
    if not config:
        raise ConfigError(f"{run_dir} has no readable settings (config.json). Choose a run folder.")
    try:
        return TrainingConfig.from_dict(config)
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"The settings of {run_dir} cannot be used: {exc}") from None


def run_train(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout  # looked up when called: a redirect, a test's capture
    from core.training.driver import resume, train

    printer = ProgressPrinter(out)
    if args.resume and args.like:
        raise ConfigError("Use --resume to continue a run, or --like to start a new one like it, not both.")
    with stop_on_ctrl_c() as cancel:
        if args.resume:
            batch_size = resume_batch_size(args.resume, args.batch_size, out)
            result = resume(args.resume, printer, cancel, epochs=args.epochs, batch_size=batch_size,
                            allow_open_ports=bool(args.allow_open_ports))
        elif args.like:
            config = config_from_args(args, like_config(args.like))
            out.write(f"Training like {read_run_info(args.like).name}\n")
            result = train(config, printer, cancel, like=args.like)
        else:
            result = train(config_from_args(args), printer, cancel)
    if result.status == "failed":
        return EXIT_FAILED
    return EXIT_INTERRUPTED if result.status == "cancelled" else EXIT_OK


def resume_batch_size(run_dir: str, asked: int | None, out: TextIO) -> int | None:
    """Says what the run holds and picks the batch size to resume with: `asked` when given, half the
    run's after it ran out of memory, else the run's own (None). Raises FitStudioError saying why a
    run cannot be resumed."""
    info = read_run_info(run_dir)
    if not info.can_resume:
        raise FitStudioError(f"{info.name} cannot be resumed. {info.resume_problem}")
    out.write(f"Resuming {info.name}: {info.describe()}\n")
    if asked is None and info.smaller_batch_size:
        out.write(
            f"Its last session ran out of memory: resuming with batches of {info.smaller_batch_size} "
            f"(half of {info.batch_size}). Use --batch-size N to choose another size.\n"
        )
        return info.smaller_batch_size
    return asked


def spread(event: RunStarted) -> str:
    """', 2 workers x 15 images per step (MultiWorkerMirroredStrategy)' for a distributed run."""
    shares = event.distribution
    if shares.get("replicas", 1) < 2:
        return ""
    where = f"{shares['workers']} workers" if shares["workers"] > 1 else f"{shares['replicas']} devices"
    return f", {where} x {shares['per_replica_batch']} images per step ({shares['strategy']})"


class ProgressPrinter:
    """Turns engine events into lines: one per epoch with an ETA, and a live batch line on a TTY."""

    def __init__(self, out: TextIO):
        self.terminal = LiveLine(out)
        self.started = time.perf_counter()
        self.epochs = 0
        self.first_epoch = 0

    def __call__(self, event) -> None:
        if isinstance(event, Message):
            self._line(("Warning: " if event.level == "warning" else "") + event.text)
        elif isinstance(event, DownloadProgress):
            self._download(event)
        elif isinstance(event, FeatureProgress):
            if event.done == event.total:
                self._line(event.describe())
            else:
                self.terminal.update(f"  {event.describe()} ")
        elif isinstance(event, RunStarted):
            self.epochs, self.first_epoch = event.epochs, event.initial_epoch
            self.started = time.perf_counter()
            counts = ", ".join(f"{name} {n}" for name, n in event.train_counts.items())
            self._line(
                f"Training {sum(event.train_counts.values())} images ({counts}), "
                f"validating on {sum(event.val_counts.values())}, on {event.device}{spread(event)}"
            )
        elif isinstance(event, BatchEnd):
            self.terminal.update(
                f"  epoch {event.epoch + 1}/{self.epochs}  batch {event.step + 1}/"
                f"{event.steps}  loss {event.loss:.4f}  acc {event.accuracy:.3f}  "
                f"{event.images_per_second:.0f} img/s "
            )
        elif isinstance(event, EpochEnd):
            self._line(self._epoch_line(event))
        elif isinstance(event, RunFinished | RunFailed):
            self._finished(event)

    def _download(self, event: DownloadProgress) -> None:
        """A line when the download starts and one when it succeeded; the bytes on the live line."""
        total = format_size(event.total_bytes) if event.total_bytes else "size unknown"
        if event.done:
            if event.received_bytes and event.received_bytes == event.total_bytes:
                self._line(f"Downloaded {event.file_name} ({total})")
            else:
                self.terminal.clear()  # a failed download: the run's message says why
        elif not event.received_bytes:
            self._line(f"Downloading {event.url} ({total})")
        else:
            self.terminal.update(f"  {event.file_name}: {format_size(event.received_bytes)} of {total} ")

    def _epoch_line(self, event: EpochEnd) -> str:
        logs = event.logs
        done = event.epoch + 1 - self.first_epoch
        remaining = (time.perf_counter() - self.started) / done * (self.epochs - event.epoch - 1)
        return (
            f"Epoch {event.epoch + 1}/{event.epochs}  loss {logs.get('loss', 0):.4f}  "
            f"acc {logs.get('accuracy', 0):.3f}  val_loss {logs.get('val_loss', 0):.4f}  "
            f"val_acc {logs.get('val_accuracy', 0):.3f}  {event.seconds:.1f}s  "
            f"{event.images_per_second:.0f} img/s  data wait {event.data_wait:.0%}  "
            f"ETA {format_duration(remaining)}"
        )

    def _finished(self, event) -> None:
        result = event.result
        if isinstance(event, RunFailed):
            self._line(f"Training failed: {event.message}")
        elif result.status == "cancelled" and not result.run_dir:  # stopped before a run folder was made
            self._line(result.message or "Stopped.")
            return
        elif result.status == "cancelled":
            self._line("Stopped; the model trained so far is saved.")
        if result.best_epoch is not None:
            self._line(
                f"Best epoch {result.best_epoch + 1}: val_accuracy "
                f"{result.best_val_accuracy:.3f}, val_loss {result.best_val_loss:.4f}; "
                f"{format_duration(result.duration_seconds)} in all"
            )
        self._line(f"Run folder: {result.run_dir}")

    def _line(self, text: str) -> None:
        self.terminal.print(text)

