"""The run's Keras callbacks: each one concern, each owning its state.

`RunCallback` adds three hooks to `keras.callbacks.Callback`:

    get_state() / set_state(state)   what the callback must carry over a resume; the checkpoint
                                     stores every callback's state dict in one flat namespace
                                     (core.runs.checkpoints.Checkpoint.states), so keys are unique
    report()                         keys this callback adds to report.json

The run lists them in the order Keras calls them (core.training.run.Run._callbacks). Order
matters only in `on_epoch_end`: recorders first, then the policy that reacts to them, then the
checkpoint that saves everything, then the report and the EpochEnd event that tell about it.

Keras calls `on_epoch_end` also for an epoch cut short by Stop. The run keeps nothing of such an
epoch: `StreamProgress`, first in the list, empties the logs, and every callback after it records
only epochs whose logs are not empty (`finished(logs)`).

Adding a concern: write a RunCallback (or use a Keras one) and add one line to `Run._callbacks`;
if it keeps state or reports, add it to `Run._stateful` too. Its state keys go into the
checkpoint's `extra` and come back through `set_state` on resume. For example the TensorBoard
writer (core.training.tensorboard.TensorBoardLog) is placed after HistoryRecorder and writes its
rows; "only the chief writes" under a distribution
strategy leaves CheckpointSaver and ReportProgress out of the list on the other workers. The one
concern that is not a Keras hook is the fine-tuning switch (FineTune): it recompiles the model
between two `fit` calls, as Keras's recipe does.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from core import files
from core.config import TrainingConfig
from core.data.dataset import SkippedFile
from core.events import BatchEnd, EpochEnd, Event, FineTuneStarted, Message
from core.runs import checkpoints, run_folder
from core.tf_runtime import load_keras

keras = load_keras()  # the callbacks subclass keras.callbacks.Callback: TensorFlow loads on import
MIN_LEARNING_RATE = 1e-7


class RunCallback(keras.callbacks.Callback):
    """A Keras callback that is part of a run: it may carry state over a resume and add to the report."""

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Takes this callback's keys from a checkpoint's states (all callbacks' keys are there)."""

    def report(self) -> dict[str, Any]:
        return {}


def finished(logs: dict | None) -> bool:
    """An epoch that ran to its end; a cut-short one reaches the callbacks with empty logs."""
    return bool(logs)


def learning_rate(model: Any) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def improves(value: float | None, best: float | None) -> bool:
    """A lower val_loss is better; a NaN or missing best never blocks a real value."""
    if value is None or not math.isfinite(value):
        return False
    return best is None or not math.isfinite(best) or value < best


class StreamProgress(RunCallback):
    """Feeds the stream its epoch (the data order), streams BatchEnd events and skipped files, and
    stops training (and the validation pass) within one batch of the cancel flag being set."""

    def __init__(self, train_stream, val_stream, emit: Callable[[Event], None], cancel: threading.Event,
                 skipped: list[SkippedFile], train_images: int | None = None):
        super().__init__()
        self.train_stream, self.emit, self.cancel = train_stream, emit, cancel
        self.steps, self.val_steps = len(train_stream), len(val_stream)
        # All the run's training images: more than this stream's when it is one worker's shard.
        self.train_images = train_images or len(train_stream.files)
        self.skipped, self._skips_reported = skipped, len(skipped)  # the earlier ones are reported
        self._epoch, self._epoch_started = 0, 0.0
        self._steps_done = self._val_steps_done = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.train_stream.set_epoch(epoch)
        self._epoch, self._epoch_started = epoch, time.perf_counter()
        self._steps_done = self._val_steps_done = 0

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        self._steps_done = batch + 1
        elapsed = max(time.perf_counter() - self._epoch_started, 1e-9)
        done = self.train_stream.order.bounds(batch)[1] / len(self.train_stream.files)
        images = done * self.train_images
        self.emit(
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
        if self.cancel.is_set():
            self.model.stop_training = True

    def on_test_batch_end(self, batch, logs=None):
        self._val_steps_done = batch + 1
        if self.cancel.is_set():
            self.model.stop_evaluating = True

    def on_epoch_end(self, epoch, logs=None):
        self._report_new_skips()
        cut_short = self._steps_done < self.steps or self._val_steps_done < self.val_steps
        if self.cancel.is_set() and cut_short and logs is not None:
            logs.clear()  # a partial epoch is not a result: nothing of it goes into the history

    def _report_new_skips(self) -> None:
        # Decode threads append to `skipped`; reporting happens here, on the training thread.
        new = self.skipped[self._skips_reported :]
        for skipped in new:
            self.emit(Message(f"Skipped {skipped.path}: {skipped.reason}", "warning"))
        self._skips_reported += len(new)


class EpochTimer(RunCallback):
    """Seconds, images trained on, images per second and data wait of each epoch, and the run's
    training time over all its sessions. State: `epoch_stats`, `elapsed_seconds`.

    The images are counted inside the model, by its loss tracker: over all replicas and workers,
    whatever sharded or dropped them on the way."""

    def __init__(self, started: float | None = None):
        super().__init__()
        self.started = time.time() if started is None else started
        self.earlier_seconds = 0.0  # training time of the sessions before a resume
        self.epoch_stats: list[dict[str, float]] = []
        self.train_stream = None
        self._epoch_started = 0.0
        self._train_ended: float | None = None
        self._images: int | None = None

    def watch(self, train_stream) -> None:
        """The stream whose images are counted and whose waits are measured."""
        self.train_stream = train_stream

    def elapsed(self) -> float:
        return self.earlier_seconds + time.time() - self.started

    def get_state(self) -> dict[str, Any]:
        return {"epoch_stats": self.epoch_stats, "elapsed_seconds": self.elapsed()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.epoch_stats = list(state["epoch_stats"])
        self.earlier_seconds = float(state["elapsed_seconds"])

    def add_to_last_epoch(self, key: str, value: float) -> None:
        """Lets a later callback time its own part of the epoch (e.g. saving)."""
        self.epoch_stats[-1][key] = value

    @property
    def last(self) -> dict[str, float]:
        return self.epoch_stats[-1]

    def on_epoch_begin(self, epoch, logs=None):
        self.train_stream.take_wait_seconds()
        self._epoch_started = time.perf_counter()
        self._train_ended = self._images = None

    def on_test_begin(self, logs=None):
        if self._train_ended is None:
            self._train_ended = time.perf_counter()
            self._images = trained_images(self.model)  # before the validation pass resets the tracker

    def on_epoch_end(self, epoch, logs=None):
        if not finished(logs):
            return
        now = time.perf_counter()
        train_seconds = max((self._train_ended or now) - self._epoch_started, 1e-9)
        waited = self.train_stream.take_wait_seconds()
        images = trained_images(self.model) if self._images is None else self._images
        self.epoch_stats.append({
            "epoch": epoch,
            "seconds": now - self._epoch_started,
            "images": images,
            "images_per_second": images / train_seconds,
            "data_wait": min(1.0, waited / train_seconds),
        })

    def report(self) -> dict[str, Any]:
        return {"started_at": now_iso(self.started), "epochs": self.epoch_stats}


class HistoryRecorder(RunCallback):
    """One row per finished epoch (the logs, plus the learning rate when it can change) and the best
    epoch by val_loss. State: `history`, `best`."""

    def __init__(self, record_learning_rate: bool):
        super().__init__()
        self.record_learning_rate = record_learning_rate
        self.history: list[dict[str, float]] = []
        self.best: dict[str, float] | None = None
        self.improved = False  # the last epoch is the new best

    def get_state(self) -> dict[str, Any]:
        return {"history": self.history, "best": self.best}

    def set_state(self, state: dict[str, Any]) -> None:
        self.history, self.best = list(state["history"]), state["best"]

    @property
    def epochs_done(self) -> int:
        return len(self.history)

    @property
    def best_epoch(self) -> int | None:
        return None if self.best is None else self.best["epoch"]

    def on_epoch_end(self, epoch, logs=None):
        if not finished(logs):
            return
        row = {key: float(value) for key, value in logs.items()}
        if self.record_learning_rate:
            row["learning_rate"] = learning_rate(self.model)  # the rate this epoch trained with
        self.history.append({"epoch": epoch, **row})
        self.improved = self.best is None or improves(row.get("val_loss"), self.best.get("val_loss"))
        if self.improved:
            self.best = {"epoch": epoch, **row}


class PlateauPolicy(RunCallback):
    """Learning-rate reduction and early stopping, both decided from the history alone, so a resumed
    run decides exactly as an uninterrupted one would. State: `last_lr_change_epoch`."""

    def __init__(self, config: TrainingConfig, history: HistoryRecorder, emit: Callable[[Event], None]):
        super().__init__()
        self.reduce_patience, self.factor = config.reduce_lr_patience, config.reduce_lr_factor
        self.stop_patience = config.early_stopping_patience
        self.history, self.emit = history, emit
        self.last_lr_change_epoch = -1
        self.lr_change: tuple[float, float] | None = None  # made at the end of the epoch just finished
        self.stopped_early = ""

    def get_state(self) -> dict[str, Any]:
        return {"last_lr_change_epoch": self.last_lr_change_epoch}

    def set_state(self, state: dict[str, Any]) -> None:
        self.last_lr_change_epoch = int(state["last_lr_change_epoch"])

    def on_epoch_end(self, epoch, logs=None):
        self.lr_change = None
        if not finished(logs):
            return
        waited = epoch - self.history.best_epoch
        patience = self.reduce_patience
        if patience and waited >= patience and epoch - self.last_lr_change_epoch >= patience:
            self._reduce_learning_rate(epoch, waited)
        if self.stop_patience and waited >= self.stop_patience:
            self.stopped_early = (
                f"Stopped early after epoch {epoch + 1}: val_loss has not improved for {waited} epochs "
                f"(best: epoch {self.history.best_epoch + 1})."
            )
            self.emit(Message(self.stopped_early))
            self.model.stop_training = True

    def _reduce_learning_rate(self, epoch: int, waited: int) -> None:
        old = learning_rate(self.model)
        new = max(old * self.factor, MIN_LEARNING_RATE)
        if new < old:
            self.model.optimizer.learning_rate = new
            self.last_lr_change_epoch = epoch
            self.lr_change = (old, new)
            text = f"val_loss has not improved for {waited} epochs: learning rate {old:.3g} -> {new:.3g}"
            self.emit(Message(text))

    def report(self) -> dict[str, Any]:
        return {"stopped_early": self.stopped_early or None}


class FineTune(RunCallback):
    """The second half of Keras's transfer-learning recipe: before epoch `fine_tune_after`, the top
    `fine_tune_layers` layers of the pretrained backbone are unfrozen (BatchNormalization stays
    frozen) and the model is compiled again with a fresh Adam at the fine-tuning learning rate, under
    the run's distribution strategy (`within(scope)`) and with XLA when the run uses it.

    As in Keras's recipe the switch happens between two `fit` calls (`boundaries` says where the run
    splits its epochs, `switch` is called before each part): a train function replaced in the middle
    of a fit fails under MirroredStrategy. The switch depends on the epoch alone, so a run resumed
    before it switches at the same epoch as an uninterrupted one, and a run resumed after it loads a
    checkpoint that already holds the unfrozen layers and the fine-tuning optimizer. State:
    `fine_tune` (None until the switch)."""

    def __init__(self, config: TrainingConfig, emit: Callable[[Event], None]):
        super().__init__()
        self.after, self.layers = config.fine_tune_after, config.fine_tune_layers
        self.rate, self.jit, self.emit = config.fine_tune_learning_rate, config.jit, emit
        self.started: dict[str, Any] | None = None  # {"from_epoch", "layers", "learning_rate"}
        self.scope: Callable[[], Any] = contextlib.nullcontext

    def within(self, scope: Callable[[], Any]) -> None:
        """The scope the model was built in (a strategy's): the new optimizer's variables, and the
        metrics compile makes, must be made in it too, mirrored on every replica and worker."""
        self.scope = scope

    def get_state(self) -> dict[str, Any]:
        return {"fine_tune": self.started}

    def set_state(self, state: dict[str, Any]) -> None:
        self.started = state.get("fine_tune")  # absent in checkpoints of earlier versions

    def report(self) -> dict[str, Any]:
        return {"fine_tune": self.started}

    def began(self) -> FineTuneStarted | None:
        """The switch, if it happened (in this session or an earlier one)."""
        if self.started is None:
            return None
        started = self.started
        return FineTuneStarted(started["from_epoch"], started["layers"], started["learning_rate"])

    def boundaries(self, start: int, epochs: int) -> list[int]:
        """The epochs at which the `fit` calls from `start` end: one at the switch, if it is ahead."""
        ahead = self.after and self.started is None and start < self.after < epochs
        return [self.after, epochs] if ahead else [epochs]

    def switch(self, model: Any, epoch: int) -> None:
        """Unfreezes and recompiles `model` when fine-tuning is due at `epoch`; else does nothing."""
        if not self.after or self.started is not None or epoch < self.after:
            return
        from core.modeling.models import backbone_of, compile_model, unfreeze_top_layers

        with self.scope():
            layers = unfreeze_top_layers(model, self.layers)
            compile_model(model, self.rate, jit=self.jit)
            model.optimizer.build(model.trainable_variables)
        self.started = {"from_epoch": epoch, "layers": layers, "learning_rate": self.rate}
        self.emit(Message(
            f"Fine-tuning from epoch {epoch + 1}: the top {layers} layers of {backbone_of(model).name} "
            f"are unfrozen (BatchNormalization stays frozen), learning rate {self.rate:.3g}"
        ))
        self.emit(self.began())


class CheckpointSaver(RunCallback):
    """After every finished epoch: the checkpoint (model, optimizer and every callback's state), a copy
    as model.keras when the epoch is the best, and history.csv. A failed write stops training and
    keeps the previous checkpoint. At the end, `save_final_models` leaves last.keras (and model.keras
    when no epoch finished). State: `model_file` is read back from the checkpoint itself."""

    def __init__(self, run_dir: str, config: TrainingConfig, history: HistoryRecorder, timer: EpochTimer,
                 states: Callable[[], dict[str, Any]], emit: Callable[[Event], None]):
        super().__init__()
        self.run_dir, self.config, self.history, self.timer = run_dir, config, history, timer
        self.states, self.emit = states, emit
        self.checkpoint_path: str | None = None
        # While the head trains on cached features: core.training.feature_stage.JoinedModelFiles, which
        # says where the best head goes and writes the joined model's files when the stage ends.
        self.joined: Any = None
        self.saved_epoch: int | None = None  # the epoch whose checkpoint this session wrote last
        self.trained_since_checkpoint = False
        self.failure = ""

    def restore(self, checkpoint: checkpoints.Checkpoint) -> None:
        self.checkpoint_path = os.path.join(self.run_dir, checkpoint.model_file)

    def on_train_batch_end(self, batch, logs=None):
        self.trained_since_checkpoint = True

    def on_epoch_end(self, epoch, logs=None):
        if not finished(logs):
            return
        saving_started = time.perf_counter()
        try:
            self._write(epoch)
        except OSError as exc:
            self.failure = (
                f"Could not write the checkpoint of epoch {epoch + 1} ({exc}). Training stopped; "
                + (f"the checkpoint of epoch {epoch} is kept." if epoch else "no epoch could be saved.")
            )
            self.emit(Message(self.failure, "warning"))
            self.model.stop_training = True
            return
        self.timer.add_to_last_epoch("save_seconds", time.perf_counter() - saving_started)

    def _write(self, epoch: int) -> None:
        state = checkpoints.Checkpoint.from_states(epoch, self.config.to_dict(), self.states())
        best = os.path.join(self.run_dir, run_folder.BEST_MODEL_FILE)
        best_copy = ((self.joined.best_head_path if self.joined else best),) if self.history.improved else ()
        # While the head trains on features it is rebuilt on resume: its arrays are the checkpoint.
        self.checkpoint_path = checkpoints.write(self.run_dir, self.model, state, best_copy,
                                                 arrays=self.joined is not None)
        self.saved_epoch, self.trained_since_checkpoint = epoch, False
        run_folder.write_history(self.run_dir, self.history.history)

    def save_final_models(self, model: Any) -> None:
        if model is None:
            return
        if self.joined:
            self.joined.write()
            return
        last = os.path.join(self.run_dir, run_folder.LAST_MODEL_FILE)
        if self.trained_since_checkpoint or self.checkpoint_path is None:
            run_folder.save_model(model, last)
        else:
            files.copy_file(self.checkpoint_path, last)
        if self.history.best is None:  # no epoch finished: the best we have is what was trained so far
            files.copy_file(last, os.path.join(self.run_dir, run_folder.BEST_MODEL_FILE))

    def report(self) -> dict[str, Any]:
        path = self.checkpoint_path
        return {"checkpoint": os.path.relpath(path, self.run_dir) if path else None}


class RunRecord(RunCallback):
    """What the run learns once and keeps over resumes: whether pretrained weights were loaded, from
    which file and source (and the note saying so), and when it was resumed. State: `pretrained`,
    `weights_note`, `weights`, `resumes`."""

    def __init__(self):
        super().__init__()
        self.pretrained: bool | None = None
        self.weights_note = ""
        self.weights: dict[str, Any] | None = None  # core.modeling.weights.Weights, for a backbone
        self.resumes: list[dict[str, Any]] = []

    def note_weights(self, built: Any) -> None:
        """Takes what core.modeling.models.build_model says about the model's weights."""
        self.pretrained, self.weights_note = built.pretrained, built.note
        self.weights = built.weights.to_dict() if built.weights else None

    def get_state(self) -> dict[str, Any]:
        return {"pretrained": self.pretrained, "weights_note": self.weights_note, "weights": self.weights,
                "resumes": self.resumes}

    def set_state(self, state: dict[str, Any]) -> None:
        self.pretrained, self.weights_note = state["pretrained"], state["weights_note"]
        self.weights = state.get("weights")  # absent in checkpoints of earlier versions
        self.resumes = list(state["resumes"])

    def note_resume(self, from_epoch: int) -> None:
        self.resumes.append({"from_epoch": from_epoch, "at": now_iso()})

    def report(self) -> dict[str, Any]:
        return {
            "pretrained_weights": self.pretrained,
            "weights_note": self.weights_note,
            "weights": self.weights,
            "resumes": self.resumes,
        }


class DiskCacheUse(RunCallback):
    """How this session's first epoch got its images, for report.json: from the disk cache of earlier
    runs (or the window's warm-up), or decoded now. Tells the disk cache's warnings (damaged files, a
    full budget) on the training thread, at each epoch's end."""

    def __init__(self, emit: Callable[[Event], None]):
        super().__init__()
        self.emit = emit
        self.streams: list = []

    def watch(self, streams: list) -> None:
        self.streams = list(streams)
        self.tell()

    def on_epoch_end(self, epoch, logs=None):
        self.tell()

    def on_train_end(self, logs=None):
        self.tell()

    def tell(self) -> None:
        stores = {id(s.cache.disk): s.cache.disk for s in self.streams if s.cache and s.cache.disk}
        for store in stores.values():
            for level, text in store.take_messages():
                self.emit(Message(text, level))

    def report(self) -> dict[str, Any]:
        return {"cache": {kind: sum(s.first_loads[kind] for s in self.streams)
                          for kind in ("reused", "decoded")}}


class ReportProgress(RunCallback):
    """Rewrites report.json (status "running") once each epoch's checkpoint is saved, so a killed run
    leaves a report that matches its checkpoint."""

    def __init__(self, saver: CheckpointSaver, write_running_report: Callable[[], None]):
        super().__init__()
        self.saver, self.write_running_report = saver, write_running_report

    def on_epoch_end(self, epoch, logs=None):
        if finished(logs) and self.saver.saved_epoch == epoch:
            self.write_running_report()


class EpochEvents(RunCallback):
    """The EpochEnd event, last, when the epoch is recorded, judged and saved."""

    def __init__(self, epochs: int, timer: EpochTimer, history: HistoryRecorder, policy: PlateauPolicy,
                 emit: Callable[[Event], None], cancel: threading.Event):
        super().__init__()
        self.epochs, self.timer, self.history, self.policy = epochs, timer, history, policy
        self.emit, self.cancel = emit, cancel

    def on_epoch_end(self, epoch, logs=None):
        if not finished(logs):
            return
        stats = self.timer.last
        stopping = self.model.stop_training and not self.cancel.is_set()
        self.emit(
            EpochEnd(
                epoch=epoch,
                epochs=self.epochs,
                logs={key: float(value) for key, value in logs.items()},
                seconds=stats["seconds"],
                images_per_second=stats["images_per_second"],
                data_wait=stats["data_wait"],
                best_epoch=self.history.best_epoch,
                learning_rate_change=self.policy.lr_change,
                stopped_early=stopping and bool(self.policy.stopped_early),
            )
        )


def trained_images(model: Any) -> int:
    """The images the model trained on since its metrics were last reset: its loss tracker's count,
    summed over all replicas (reading it is a collective op under MultiWorkerMirroredStrategy, which
    every worker's callbacks do at the same point)."""
    return round(float(keras.ops.convert_to_numpy(model._loss_tracker.count)))


def now_iso(moment: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(moment))
