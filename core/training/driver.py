"""train(config, on_event, cancel) and resume(run_dir, ...): from folders to a complete run folder.

The engine knows nothing of its listeners: it calls `on_event` with the plain dataclasses of
`core.events`, always from the thread that called `train`. Setting `cancel` stops the run within
one batch; the model trained so far is saved. After every epoch a checkpoint is written from which
`resume` continues exactly as if the run had never stopped. TensorFlow is imported lazily, so
importing this module (for TrainingConfig) costs nothing.
"""

from __future__ import annotations

import math
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core import files
from core.config import TrainingConfig
from core.data.dataset import FileSet, SkippedFile, load_split
from core.errors import ConfigError, DatasetError
from core.events import Event, Message, RunFailed, RunFinished, RunResult, RunStarted
from core.runs import run_folder
from core.training import checkpoints
from core.training.checkpoints import Checkpoint

__all__ = ["TrainingConfig", "resume", "train"]
MIN_LEARNING_RATE = 1e-7


def train(
    config: TrainingConfig,
    on_event: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
) -> RunResult:
    """Trains as `config` says and returns how the run ended.

    Raises DatasetError or ConfigError (with a message for the user) when the run cannot start;
    once the run folder exists, every failure is caught, reported and saved in report.json.
    """
    train_files, val_files = _prepare(config, config.out_dir)
    return _Run(config, train_files, val_files, on_event or _ignore, cancel or threading.Event()).execute()


def resume(
    run_dir: str,
    on_event: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
) -> RunResult:
    """Continues a cancelled, failed or killed run from its last checkpoint, in the same run folder.

    `epochs` (the new total) extends a finished run. `batch_size` lets a run that ran out of memory
    go on with smaller batches; the run is then no longer identical to an uninterrupted one.
    """
    checkpoint = checkpoints.read(run_dir)
    config = TrainingConfig.from_dict(checkpoint.config)
    if epochs is not None:
        config = config.replace(epochs=epochs)
    if batch_size is not None:
        config = config.replace(batch_size=batch_size)
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
    run = _Run(config, train_files, val_files, on_event or _ignore, cancel or threading.Event())
    run.run_dir, run.resume_from = run_dir, checkpoint
    return run.execute()


def _prepare(config: TrainingConfig, out_dir: str) -> tuple[FileSet, FileSet]:
    config.validate()
    unwritable = run_folder.check_writable(out_dir)
    if unwritable:
        raise ConfigError(unwritable)
    return load_split(config.train_dir, config.val_dir, config.val_split, config.seed)


def _ignore(event: Event) -> None:
    pass


@dataclass
class _Run:
    config: TrainingConfig
    train_files: FileSet
    val_files: FileSet
    emit: Callable[[Event], None]
    cancel: threading.Event
    run_dir: str = ""
    resume_from: Checkpoint | None = None
    device: str = ""
    pretrained: bool | None = None
    weights_note: str = ""
    history: list[dict[str, float]] = field(default_factory=list)
    epoch_stats: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, float] | None = None
    skipped: list[SkippedFile] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    earlier_seconds: float = 0.0  # training time of the sessions before a resume
    resumes: list[dict[str, Any]] = field(default_factory=list)
    last_lr_change_epoch: int = -1
    checkpoint_path: str | None = None
    trained_since_checkpoint: bool = False
    stopped_early: str = ""
    lr_change: tuple[float, float] | None = None  # made at the end of the epoch just finished
    write_failure: str = ""
    out_of_memory: bool = False
    model: Any = None

    def execute(self) -> RunResult:
        import keras

        from core.training.device import configure_gpus, describe_compute_device

        configure_gpus()
        keras.utils.set_random_seed(self.config.seed)
        self.device = describe_compute_device()
        self.skipped = list(self.train_files.skipped)
        self._open_run_dir()
        status, message, details = "completed", "", ""
        streams = []
        try:
            self._open_streams(streams)
            self._fit(*streams)
            status, message = self._outcome()
        except Exception as exc:
            status, message, details = "failed", describe_failure(exc), traceback.format_exc()
            self.out_of_memory = is_out_of_memory(exc)
        finally:
            for stream in streams:
                stream.close()
        try:
            self._save_final_models()
        except Exception as exc:
            status, message = "failed", f"{message} The final model could not be saved: {exc}".strip()
            details = details or traceback.format_exc()
        result = self._result(status, message)
        self._write_report(result)
        self.emit(RunFailed(message, details, result) if status == "failed" else RunFinished(result))
        return result

    def _open_run_dir(self) -> None:
        if self.resume_from is None:
            self.run_dir = run_folder.create_run_dir(self.config.out_dir, self.config.model)
            run_folder.write_labels(self.run_dir, self.train_files.class_names)
        else:
            self._restore(self.resume_from)
        files.write_json(os.path.join(self.run_dir, run_folder.CONFIG_FILE), self.config.to_dict())
        self.emit(Message(f"Run folder: {os.path.abspath(self.run_dir)}"))
        for skipped in self.skipped:
            self.emit(Message(f"Skipped {skipped.path}: {skipped.reason}", "warning"))

    def _restore(self, checkpoint: Checkpoint) -> None:
        self.history, self.epoch_stats, self.best = (
            checkpoint.history,
            checkpoint.epoch_stats,
            checkpoint.best,
        )
        self.earlier_seconds, self.last_lr_change_epoch = (
            checkpoint.elapsed_seconds,
            checkpoint.last_lr_change_epoch,
        )
        self.pretrained, self.weights_note = checkpoint.pretrained, checkpoint.weights_note
        self.checkpoint_path = os.path.join(self.run_dir, checkpoint.model_file)
        self.resumes = [*checkpoint.resumes, {"from_epoch": checkpoint.epoch + 1, "at": _now_iso()}]
        # A killed run may have written history.csv a moment after its checkpoint: the checkpoint wins.
        run_folder.write_history(self.run_dir, self.history)
        self.emit(Message(f"Resuming after epoch {checkpoint.epoch + 1} of {self.config.epochs}"))

    def _open_streams(self, streams: list) -> None:
        """Appends the training and validation streams to `streams` as they are made, so the caller
        closes whatever exists (thread pools, a disk cache) if the second one fails."""
        from core.data.pipeline import ImageStream

        shared = {
            "image_size": self.config.image_size,
            "batch_size": self.config.batch_size,
            "seed": self.config.seed,
            "resize_mode": self.config.resize_mode,
            "decode_threads": self.config.decode_threads or None,
            "cancel": self.cancel,
            "on_skip": self._skipped_while_training,
        }
        train_cache, val_cache = self._caches()
        streams.append(ImageStream(self.train_files, shuffle=True, cache=train_cache, **shared))
        streams.append(ImageStream(self.val_files, shuffle=False, cache=val_cache, **shared))

    def _caches(self):
        """One decoded-image cache per stream, in memory while the budget lasts, else on disk."""
        from core.data.pipeline import DecodedCache, default_cache_budget_bytes

        if not self.config.cache:
            return None, None
        budget = self.config.cache_memory_mb * 1024**2 or default_cache_budget_bytes()
        caches = []
        for split_files in (self.train_files, self.val_files):
            cache = DecodedCache(len(split_files), self.config.image_size, budget)
            budget -= 0 if cache.on_disk else cache.nbytes
            where = f"on disk ({cache.path})" if cache.on_disk else "in memory"
            size_mb = cache.nbytes / 1e6
            self.emit(Message(f"Caching {len(split_files)} decoded images {where}: {size_mb:.0f} MB"))
            caches.append(cache)
        return caches

    def _fit(self, train_stream, val_stream) -> None:
        from core.training.callbacks import EngineCallback

        if self.cancel.is_set():
            return  # stopped while TensorFlow loaded or the images were read: train nothing
        self.model = self._model()
        initial_epoch = len(self.history)
        self.emit(
            RunStarted(
                run_dir=self.run_dir,
                class_names=list(self.train_files.class_names),
                train_counts=self.train_files.counts(),
                val_counts=self.val_files.counts(),
                steps_per_epoch=len(train_stream),
                validation_steps=len(val_stream),
                epochs=self.config.epochs,
                initial_epoch=initial_epoch,
                batch_size=self.config.batch_size,
                device=self.device,
                pretrained=self.pretrained,
                history=list(self.history),
            )
        )
        self.model.fit(
            train_stream,
            validation_data=val_stream,
            initial_epoch=initial_epoch,
            epochs=self.config.epochs,
            # The stream shuffles images itself, seeded by epoch. Keras would also shuffle the batch
            # order with Python's global random state, which a resumed process cannot reproduce.
            shuffle=False,
            steps_per_epoch=len(train_stream),
            validation_steps=len(val_stream),
            callbacks=[EngineCallback(self, train_stream, val_stream)],
            verbose=0,
        )

    def _model(self):
        import keras

        from core.modeling.models import build_model

        if self.resume_from is not None:
            return checkpoints.load_model(self.run_dir, self.resume_from)
        built = build_model(
            self.config.model,
            len(self.train_files.class_names),
            self.config.image_size,
            self.config.augmentation,
            self.config.seed,
        )
        self.pretrained, self.weights_note = built.pretrained, built.note
        self.emit(Message(built.note, "warning" if built.pretrained is False else "info"))
        built.model.compile(
            optimizer=keras.optimizers.Adam(self.config.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return built.model

    def _skipped_while_training(self, path: str, reason: str) -> None:
        # Called on a decode thread: only record here; the callback reports it from the
        # training thread at the end of the batch.
        self.skipped.append(SkippedFile(path, reason))

    def epoch_finished(self, epoch: int, logs: dict[str, float], stats: dict[str, float]) -> bool:
        """Records a finished epoch and writes its checkpoint; True asks training to stop."""
        if self.config.reduce_lr_patience:
            logs = {**logs, "learning_rate": self._learning_rate()}
        self.history.append({"epoch": epoch, **logs})
        improved = self.best is None or _better(logs.get("val_loss"), self.best.get("val_loss"))
        if improved:
            self.best = {"epoch": epoch, **logs}
        stop = self._react_to_plateau(epoch)
        self.epoch_stats.append({"epoch": epoch, **stats})
        saving_started = time.perf_counter()
        try:
            self._write_checkpoint(epoch, improved)
        except OSError as exc:
            self.write_failure = (
                f"Could not write the checkpoint of epoch {epoch + 1} ({exc}). Training stopped; "
                + (f"the checkpoint of epoch {epoch} is kept." if epoch else "no epoch could be saved.")
            )
            self.emit(Message(self.write_failure, "warning"))
            return True
        self.epoch_stats[-1]["save_seconds"] = time.perf_counter() - saving_started
        self._write_report(self._result("running", ""))
        return stop

    def _write_checkpoint(self, epoch: int, improved: bool) -> None:
        state = Checkpoint(
            epoch=epoch,
            model_file="",
            config=self.config.to_dict(),
            history=self.history,
            epoch_stats=self.epoch_stats,
            best=self.best,
            seed_states={},
            elapsed_seconds=self._elapsed(),
            last_lr_change_epoch=self.last_lr_change_epoch,
            pretrained=self.pretrained,
            weights_note=self.weights_note,
            resumes=self.resumes,
        )
        best_copy = (os.path.join(self.run_dir, run_folder.BEST_MODEL_FILE),) if improved else ()
        self.checkpoint_path = checkpoints.write(self.run_dir, self.model, state, best_copy)
        self.trained_since_checkpoint = False
        run_folder.write_history(self.run_dir, self.history)

    def _react_to_plateau(self, epoch: int) -> bool:
        """Learning-rate reduction and early stopping, both decided from the history alone, so a
        resumed run decides exactly as an uninterrupted one would."""
        waited = epoch - self.best["epoch"]
        self.lr_change = None
        patience = self.config.reduce_lr_patience
        if patience and waited >= patience and epoch - self.last_lr_change_epoch >= patience:
            old = self._learning_rate()
            new = max(old * self.config.reduce_lr_factor, MIN_LEARNING_RATE)
            if new < old:
                self.model.optimizer.learning_rate = new
                self.last_lr_change_epoch = epoch
                self.lr_change = (old, new)
                self.emit(
                    Message(
                        f"val_loss has not improved for {waited} epochs: learning rate {old:.3g} -> {new:.3g}"
                    )
                )
        patience = self.config.early_stopping_patience
        if patience and waited >= patience:
            self.stopped_early = (
                f"Stopped early after epoch {epoch + 1}: val_loss has not improved for {waited} epochs "
                f"(best: epoch {self.best['epoch'] + 1})."
            )
            self.emit(Message(self.stopped_early))
            return True
        return False

    def _learning_rate(self) -> float:
        import keras

        return float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def _outcome(self) -> tuple[str, str]:
        if self.write_failure:
            return "failed", self.write_failure
        if self.cancel.is_set() and len(self.history) < self.config.epochs and not self.stopped_early:
            return "cancelled", "Stopped by the user."
        return "completed", self.stopped_early

    def _save_final_models(self) -> None:
        if self.model is None:
            return
        last = os.path.join(self.run_dir, run_folder.LAST_MODEL_FILE)
        if self.trained_since_checkpoint or self.checkpoint_path is None:
            run_folder.save_model(self.model, last)
        else:
            files.copy_file(self.checkpoint_path, last)
        if self.best is None:  # no epoch finished: the best we have is what was trained so far
            files.copy_file(last, os.path.join(self.run_dir, run_folder.BEST_MODEL_FILE))

    def _elapsed(self) -> float:
        return self.earlier_seconds + time.time() - self.started

    def _result(self, status: str, message: str) -> RunResult:
        best = self.best or {}
        return RunResult(
            run_dir=self.run_dir,
            status=status,
            epochs_completed=len(self.history),
            best_epoch=best.get("epoch"),
            best_val_accuracy=best.get("val_accuracy"),
            best_val_loss=best.get("val_loss"),
            final_logs={k: v for k, v in (self.history[-1] if self.history else {}).items() if k != "epoch"},
            duration_seconds=self._elapsed(),
            message=message,
            history=list(self.history),
            out_of_memory=self.out_of_memory,
        )

    def _write_report(self, result: RunResult) -> None:
        try:
            files.write_json(os.path.join(self.run_dir, run_folder.REPORT_FILE), self._report(result))
        except OSError as exc:  # a full disk must not turn a saved run into a crash
            self.emit(Message(f"Could not write report.json: {exc}", "warning"))

    def _report(self, result: RunResult) -> dict[str, Any]:
        return {
            "status": result.status,
            "message": result.message,
            "class_names": self.train_files.class_names,
            "counts": {"train": self.train_files.counts(), "val": self.val_files.counts()},
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "device": self.device,
            "model": self.config.model,
            "pretrained_weights": self.pretrained,
            "weights_note": self.weights_note,
            "started_at": _now_iso(self.started),
            "duration_seconds": round(result.duration_seconds, 3),
            "epochs_completed": result.epochs_completed,
            "best": {
                "epoch": result.best_epoch,
                "val_loss": result.best_val_loss,
                "val_accuracy": result.best_val_accuracy,
            },
            "final": result.final_logs,
            "stopped_early": self.stopped_early or None,
            "resumes": self.resumes,
            "checkpoint": os.path.relpath(self.checkpoint_path, self.run_dir)
            if self.checkpoint_path
            else None,
            "epochs": self.epoch_stats,
            "config": self.config.to_dict(),
        }


def _better(value: float | None, best: float | None) -> bool:
    """A lower val_loss is better; a NaN or missing best never blocks a real value."""
    if value is None or not math.isfinite(value):
        return False
    return best is None or not math.isfinite(best) or value < best


def _now_iso(moment: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(moment))


def is_out_of_memory(exc: BaseException) -> bool:
    return type(exc).__name__ == "ResourceExhaustedError" or isinstance(exc, MemoryError)


def describe_failure(exc: BaseException) -> str:
    if is_out_of_memory(exc):
        return "Out of memory: reduce batch size or image size, then train again."
    return f"{type(exc).__name__}: {exc}"
