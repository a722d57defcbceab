"""The thin Keras callback between `fit` and the engine: it forwards progress as plain events,
times each epoch, and stops training (and the validation pass) when the cancel flag is set."""

from __future__ import annotations

import time

import keras

from core.events import BatchEnd, EpochEnd, Message


class EngineCallback(keras.callbacks.Callback):
    def __init__(self, run, train_stream, val_stream):
        super().__init__()
        self.run = run
        self.train_stream = train_stream
        self.val_stream = val_stream
        self.steps = len(train_stream)
        self.val_steps = len(val_stream)
        self.train_images = len(train_stream.files)
        self._skips_reported = 0
        self._epoch = 0
        self._epoch_started = 0.0
        self._train_ended: float | None = None
        self._steps_done = 0
        self._val_steps_done = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.train_stream.set_epoch(epoch)
        self.train_stream.take_wait_seconds()
        self._epoch = epoch
        self._epoch_started = time.perf_counter()
        self._train_ended = None
        self._steps_done = 0
        self._val_steps_done = 0

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        self._steps_done = batch + 1
        elapsed = max(time.perf_counter() - self._epoch_started, 1e-9)
        images = min(self._steps_done * self.train_stream.order.batch_size, self.train_images)
        self.run.emit(
            BatchEnd(
                epoch=self._epoch,
                step=batch,
                steps=self.steps,
                loss=float(logs.get("loss", float("nan"))),
                accuracy=float(logs.get("accuracy", float("nan"))),
                images_per_second=images / elapsed,
            )
        )
        self._report_new_skips()
        self.run.trained_since_checkpoint = True
        if self.run.cancel.is_set():
            self.model.stop_training = True

    def on_test_begin(self, logs=None):
        if self._train_ended is None:
            self._train_ended = time.perf_counter()

    def on_test_batch_end(self, batch, logs=None):
        self._val_steps_done = batch + 1
        if self.run.cancel.is_set():
            self.model.stop_evaluating = True

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self._report_new_skips()
        interrupted = self._steps_done < self.steps or self._val_steps_done < self.val_steps
        if self.run.cancel.is_set() and interrupted:
            return  # a partial epoch is not a result: nothing of it goes into the history
        train_seconds = max((self._train_ended or now) - self._epoch_started, 1e-9)
        waited = self.train_stream.take_wait_seconds()
        stats = {
            "seconds": now - self._epoch_started,
            "images_per_second": self.train_images / train_seconds,
            "data_wait": min(1.0, waited / train_seconds),
        }
        epoch_logs = {key: float(value) for key, value in (logs or {}).items()}
        if self.run.epoch_finished(epoch, epoch_logs, stats):
            self.model.stop_training = True
        best = self.run.best["epoch"] if self.run.best else None
        stopping = self.model.stop_training and not self.run.cancel.is_set()
        self.run.emit(
            EpochEnd(
                epoch=epoch,
                epochs=self.run.config.epochs,
                logs=epoch_logs,
                seconds=stats["seconds"],
                images_per_second=stats["images_per_second"],
                data_wait=stats["data_wait"],
                best_epoch=best,
                learning_rate_change=self.run.lr_change,
                stopped_early=stopping and bool(self.run.stopped_early),
            )
        )

    def _report_new_skips(self) -> None:
        new = self.run.skipped[len(self.run.train_files.skipped) + self._skips_reported :]
        for skipped in new:
            self.run.emit(Message(f"Skipped {skipped.path}: {skipped.reason}", "warning"))
        self._skips_reported += len(new)
