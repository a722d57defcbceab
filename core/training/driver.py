"""train(config, on_event, cancel) and resume(run_dir, ...): from folders to a complete run folder.

The engine knows nothing of its listeners: it calls `on_event` with the plain dataclasses of
`core.events`, always from the thread that called `train`. Setting `cancel` stops the run within
one batch; the model trained so far is saved. After every epoch a checkpoint is written from which
`resume` continues exactly as if the run had never stopped. TensorFlow is imported lazily, so
importing this module (for TrainingConfig) costs nothing.

This module only checks the request and dispatches it: to one `core.training.run.Run` in this
process, or to Ray workers (`core.training.distribution.ray_launcher`) that each run one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from core.config import TrainingConfig
from core.data.dataset import FileSet, load_split
from core.errors import ConfigError, DatasetError
from core.events import Event, RunResult
from core.runs import checkpoints, run_folder
from core.runs.checkpoints import Checkpoint
from core.training.roles import Role

__all__ = ["TrainingConfig", "resume", "train"]


def train(
    config: TrainingConfig,
    on_event: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
    like: str | None = None,
    role: Role | None = None,
    run_dir: str = "",
) -> RunResult:
    """Trains as `config` says and returns how the run ended.

    `like` is the run folder this run repeats (`train --like`): when the data changed since that
    run, a warning names the files. Raises DatasetError or ConfigError (with a message for the user)
    when the run cannot start; once the run folder exists, every failure is caught, reported and
    saved in report.json. `role` replaces the run in this process (a sweep's trial adds its report to
    the sweep: core.training.sweep.trial); `run_dir`, an empty folder, is the run folder to fill.
    """
    train_files, val_files = _prepare(config, config.out_dir)
    return _dispatch(config, train_files, val_files, on_event, cancel, run_dir=run_dir, earlier_run=like,
                     role=role)


def resume(
    run_dir: str,
    on_event: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    allow_open_ports: bool = False,
    role: Role | None = None,
) -> RunResult:
    """Continues a cancelled, failed or killed run from its last checkpoint, in the same run folder.

    `epochs` (the new total) extends a finished run. `batch_size` lets a run that ran out of memory
    go on with smaller batches; the run is then no longer identical to an uninterrupted one.
    `allow_open_ports` lets a run of several workers on this computer continue although it was
    started without that consent (core.config.OPEN_PORTS_WARNING).
    """
    checkpoint = checkpoints.read(run_dir)
    config = TrainingConfig.from_dict(checkpoint.config)
    if epochs is not None:
        config = config.replace(epochs=epochs)
    if batch_size is not None:
        config = config.replace(batch_size=batch_size)
    if allow_open_ports:
        config = config.replace(allow_open_ports=True)
    done = checkpoint.epoch + 1
    if config.epochs <= done:
        raise ConfigError(
            f"This run has already trained {done} epochs of {config.epochs}. "
            f"Ask for more epochs to continue it (for example {done + 5})."
        )
    train_files, val_files = _prepare(config, run_dir)
    labels = run_folder.read_labels(os.path.join(run_dir, run_folder.LABELS_FILE))
    if train_files.class_names != labels:
        raise DatasetError(
            f"The training folder's classes ({', '.join(train_files.class_names)}) are no longer the "
            f"run's classes ({', '.join(labels)}). Restore the folder or start a new run."
        )
    return _dispatch(config, train_files, val_files, on_event, cancel, run_dir=run_dir,
                     resume_from=checkpoint, earlier_run=run_dir, role=role)


def _dispatch(config: TrainingConfig, train_files: FileSet, val_files: FileSet,
              on_event: Callable[[Event], None] | None, cancel: threading.Event | None, run_dir: str = "",
              resume_from: Checkpoint | None = None, earlier_run: str | None = None,
              role: Role | None = None) -> RunResult:
    """One run in this process, or Ray workers that find the checkpoint in `run_dir` themselves."""
    on_event = on_event or _ignore
    cancel = cancel or threading.Event()
    if config.distributed:
        from core.training.distribution.ray_launcher import train_on_ray

        return train_on_ray(config, train_files, val_files, on_event, cancel, run_dir=run_dir)
    from core.training.roles import LocalRole
    from core.training.run import Run

    run = Run(config, train_files, val_files, role or LocalRole(), on_event, cancel, run_dir,
              resume_from=resume_from, earlier_run=earlier_run)
    return run.execute()


def _prepare(config: TrainingConfig, out_dir: str) -> tuple[FileSet, FileSet]:
    config.validate()
    if config.distributed:
        from core.training.distribution.ray_launcher import require_ray

        require_ray()
    unwritable = run_folder.check_writable(out_dir)
    if unwritable:
        raise ConfigError(unwritable)
    return load_split(config.train_dir, config.val_dir, config.val_split, config.seed)


def _ignore(event: Event) -> None:
    pass
