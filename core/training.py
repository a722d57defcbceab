"""train(config, on_event, cancel): one training from folders to a complete run folder.

The engine knows nothing of its listeners: it calls `on_event` with the plain dataclasses of
`core.events`, always from the thread that called `train`. Setting `cancel` stops the run within
one batch; the model trained so far is saved. TensorFlow is imported here lazily, so importing
this module (for TrainingConfig) costs nothing.
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

from core import runs
from core.config import TrainingConfig
from core.dataset import FileSet, SkippedFile, load_split
from core.errors import ConfigError
from core.events import (
    Event,
    Message,
    RunFailed,
    RunFinished,
    RunResult,
    RunStarted,
)

__all__ = ["TrainingConfig", "train"]


def train(
    config: TrainingConfig,
    on_event: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
) -> RunResult:
    """Trains as `config` says and returns how the run ended.

    Raises DatasetError or ConfigError (with a message for the user) when the run cannot start;
    once the run folder exists, every failure is caught, reported and saved in report.json.
    """
    emit = on_event or (lambda event: None)
    cancel = cancel or threading.Event()
    config.validate()
    unwritable = runs.check_writable(config.out_dir)
    if unwritable:
        raise ConfigError(unwritable)
    train_files, val_files = load_split(config.train_dir, config.val_dir, config.val_split, config.seed)
    run = _Run(config, train_files, val_files, emit, cancel)
    return run.execute()


@dataclass
class _Run:
    config: TrainingConfig
    train_files: FileSet
    val_files: FileSet
    emit: Callable[[Event], None]
    cancel: threading.Event
    run_dir: str = ""
    device: str = ""
    pretrained: bool | None = None
    weights_note: str = ""
    history: list[dict[str, float]] = field(default_factory=list)
    epoch_stats: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, float] | None = None
    skipped: list[SkippedFile] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    model: Any = None

    def execute(self) -> RunResult:
        import keras

        from core.device import configure_gpus, describe_compute_device

        configure_gpus()
        keras.utils.set_random_seed(self.config.seed)
        self.device = describe_compute_device()
        self.skipped = list(self.train_files.skipped)
        self.run_dir = runs.create_run_dir(self.config.out_dir, self.config.model)
        runs.write_json(os.path.join(self.run_dir, runs.CONFIG_FILE), self.config.to_dict())
        runs.write_labels(self.run_dir, self.train_files.class_names)
        self.emit(Message(f"Run folder: {os.path.abspath(self.run_dir)}"))
        for skipped in self.skipped:
            self.emit(Message(f"Skipped {skipped.path}: {skipped.reason}", "warning"))
        status, message, details = "completed", "", ""
        streams = []
        try:
            streams = self._streams()
            self._fit(*streams)
            if self.cancel.is_set():
                status, message = "cancelled", "Stopped by the user."
        except Exception as exc:
            status, message, details = "failed", describe_failure(exc), traceback.format_exc()
        finally:
            for stream in streams:
                stream.close()
        try:
            self._save_final_models()
        except Exception as exc:
            status, message = "failed", f"{message} The final model could not be saved: {exc}".strip()
            details = details or traceback.format_exc()
        result = self._result(status, message)
        runs.write_json(os.path.join(self.run_dir, runs.REPORT_FILE), self._report(result))
        self.emit(RunFailed(message, details, result) if status == "failed" else RunFinished(result))
        return result

    def _streams(self):
        from core.pipeline import ImageStream

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
        train_stream = ImageStream(self.train_files, shuffle=True, cache=train_cache, **shared)
        val_stream = ImageStream(self.val_files, shuffle=False, cache=val_cache, **shared)
        return train_stream, val_stream

    def _caches(self):
        """One decoded-image cache per stream, in memory while the budget lasts, else on disk."""
        from core.pipeline import DecodedCache, default_cache_budget_bytes

        if not self.config.cache:
            return None, None
        budget = self.config.cache_memory_mb * 1024**2 or default_cache_budget_bytes()
        caches = []
        for files in (self.train_files, self.val_files):
            cache = DecodedCache(len(files), self.config.image_size, budget)
            budget -= 0 if cache.on_disk else cache.nbytes
            where = f"on disk ({cache.path})" if cache.on_disk else "in memory"
            self.emit(Message(f"Caching {len(files)} decoded images {where}: {cache.nbytes / 1e6:.0f} MB"))
            caches.append(cache)
        return caches

    def _fit(self, train_stream, val_stream) -> None:
        import keras

        from core.callbacks import EngineCallback
        from core.models import build_model

        built = build_model(
            self.config.model,
            len(self.train_files.class_names),
            self.config.image_size,
            self.config.augmentation,
            self.config.seed,
        )
        self.model, self.pretrained, self.weights_note = built.model, built.pretrained, built.note
        self.emit(Message(built.note, "warning" if built.pretrained is False else "info"))
        self.model.compile(
            optimizer=keras.optimizers.Adam(self.config.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        self.emit(
            RunStarted(
                run_dir=self.run_dir,
                class_names=list(self.train_files.class_names),
                train_counts=self.train_files.counts(),
                val_counts=self.val_files.counts(),
                steps_per_epoch=len(train_stream),
                validation_steps=len(val_stream),
                epochs=self.config.epochs,
                initial_epoch=0,
                batch_size=self.config.batch_size,
                device=self.device,
                pretrained=self.pretrained,
            )
        )
        self.model.fit(
            train_stream,
            validation_data=val_stream,
            epochs=self.config.epochs,
            steps_per_epoch=len(train_stream),
            validation_steps=len(val_stream),
            callbacks=[EngineCallback(self, train_stream, val_stream)],
            verbose=0,
        )

    def _skipped_while_training(self, path: str, reason: str) -> None:
        # Called on a decode thread: only record here; the callback reports it from the
        # training thread at the end of the batch.
        self.skipped.append(SkippedFile(path, reason))

    def epoch_finished(self, epoch: int, logs: dict[str, float], stats: dict[str, float]) -> None:
        saving_started = time.perf_counter()
        self.history.append({"epoch": epoch, **logs})
        val_loss = logs.get("val_loss", math.inf)
        if self.best is None or val_loss < self.best["val_loss"]:
            self.best = {"epoch": epoch, **logs}
            runs.save_model(self.model, os.path.join(self.run_dir, runs.BEST_MODEL_FILE))
        runs.save_model(self.model, os.path.join(self.run_dir, runs.LAST_MODEL_FILE))
        runs.write_history(self.run_dir, self.history)
        save_seconds = time.perf_counter() - saving_started
        self.epoch_stats.append({"epoch": epoch, **stats, "save_seconds": save_seconds})
        result = self._result("running", "")
        runs.write_json(os.path.join(self.run_dir, runs.REPORT_FILE), self._report(result))

    def _save_final_models(self) -> None:
        if self.model is None:
            return
        runs.save_model(self.model, os.path.join(self.run_dir, runs.LAST_MODEL_FILE))
        if self.best is None:  # no epoch finished: the best we have is what was trained so far
            runs.save_model(self.model, os.path.join(self.run_dir, runs.BEST_MODEL_FILE))

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
            duration_seconds=time.time() - self.started,
            message=message,
            history=list(self.history),
        )

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
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "duration_seconds": round(result.duration_seconds, 3),
            "epochs_completed": result.epochs_completed,
            "best": {
                "epoch": result.best_epoch,
                "val_loss": result.best_val_loss,
                "val_accuracy": result.best_val_accuracy,
            },
            "final": result.final_logs,
            "epochs": self.epoch_stats,
            "config": self.config.to_dict(),
        }


def describe_failure(exc: BaseException) -> str:
    kind = type(exc).__name__
    if kind == "ResourceExhaustedError" or isinstance(exc, MemoryError):
        return "Out of memory: reduce batch size or image size, then train again."
    return f"{kind}: {exc}"
