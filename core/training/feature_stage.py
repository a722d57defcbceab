"""The part of a run that trains a frozen backbone's head on cached features (TrainingConfig.features).

The run calls `FeatureStage.fit_data` once its model is built: for the epochs before fine-tuning
(all of them without it), the stage computes the features the disk cache lacks, splits the model
(core.modeling.features) and hands back the head and FeatureStreams to fit instead of the model and
the ImageStreams. Every callback of the run works unchanged on the head: the images it counts, its
loss and metrics, early stopping and learning-rate changes (the head shares the joined model's layers
and optimizer).

Checkpoints during the stage hold the head alone, as arrays (checkpoints.save_arrays): a few
kilobytes written in a millisecond, where the whole backbone would take most of an epoch's time to
write. The best epoch's head goes to best-head.npz beside them;
when the stage ends (the run's end, or fine-tuning), `JoinedModelFiles` writes last.keras and
model.keras as whole models, backbone plus trained head, so evaluation, prediction, explanation and
export need nothing else. A run resumed from a head checkpoint builds the model afresh and loads the
head, its optimizer state and its dropout's random state into it. From `fine_tune_after` on, the run
fits the joined model end to end on the images, and its checkpoints are whole models again.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from core import files
from core.config import TrainingConfig
from core.data.dataset import FileSet
from core.data.feature_cache import FeatureTable, copy_view, open_feature_store, plain_view
from core.data.feature_stream import FeatureStream
from core.events import Event, Message
from core.modeling import features as head_features
from core.runs import checkpoints, run_folder
from core.runs.checkpoints import Checkpoint
from core.training.callbacks import RunCallback

BEST_HEAD_FILE = "best-head.npz"  # the best epoch's head while it trains on features, as arrays


class JoinedModelFiles:
    """Where the stage's best head goes, and the joined model's last.keras and model.keras."""

    def __init__(self, run_dir: str, parts: head_features.ModelParts):
        self.run_dir, self.parts = run_dir, parts
        self.best_head_path = os.path.join(run_dir, BEST_HEAD_FILE)

    def write(self) -> None:
        """last.keras: the joined model as it is; model.keras: with the best epoch's head."""
        joined, head = self.parts.joined, self.parts.head
        last = os.path.join(self.run_dir, run_folder.LAST_MODEL_FILE)
        best = os.path.join(self.run_dir, run_folder.BEST_MODEL_FILE)
        run_folder.save_model(joined, last)
        if not os.path.exists(self.best_head_path):
            if not os.path.exists(best):  # no epoch finished: the best there is, is what was trained
                run_folder.save_model(joined, best)
            return
        current = head.get_weights()
        best_weights, _ = checkpoints.load_arrays(self.best_head_path)
        if all(np.array_equal(a, b) for a, b in zip(current, best_weights, strict=True)):
            files.copy_file(last, best)  # the last epoch is the best: one save of the backbone, not two
        else:
            head.set_weights(best_weights)
            try:
                run_folder.save_model(joined, best)
            finally:
                head.set_weights(current)
        os.remove(self.best_head_path)


class FeatureStage(RunCallback):
    """Computes or reuses the features of a run and makes the head's data. report(): `features`."""

    def __init__(self, config: TrainingConfig, emit: Callable[[Event], None], cancel: threading.Event):
        super().__init__()
        self.config, self.emit, self.cancel = config, emit, cancel
        self.end_epoch = config.fine_tune_after or config.epochs  # the head trains on features until
        self.counts: dict[str, Any] | None = None
        self.weights_sha256: str | None = None  # of the weights file the run's backbone was built from
        self.head_checkpoint = False  # the checkpoint resumed from holds the head alone
        self._training_head = False  # this session's checkpoints hold the head alone
        self._tables: list[FeatureTable] = []

    def applies(self, initial_epoch: int) -> bool:
        return self.config.cached_features and initial_epoch < self.end_epoch

    def fit_data(self, model: Any, weights_path: str | None, train_stream, val_stream, placement,
                 saver: Any) -> tuple | None:
        """(head, train data, val data) to fit until `end_epoch`; None when cancelled meanwhile.
        `saver` (the run's CheckpointSaver) then writes head checkpoints."""
        with placement.scope():  # the head fits under the strategy: made, compiled and built in it
            parts = head_features.split_model(model)
            head_features.compile_head(parts, jit=self.config.jit)
            parts.joined.optimizer.build(parts.head.trainable_variables)
        backbone = self._backbone(weights_path, parts.width)
        if backbone is None:
            self.emit(Message("The backbone has no weights file: its features are computed for this run "
                              "only, not kept for later runs."))
        if self.config.augmentation.any and not self.config.feature_copies:
            self.emit(Message("Augmentation is not applied while the head trains on cached features: keep "
                              "augmented copies (--feature-copies, or copies beside Fast training), or "
                              "train end to end (--features none).", "warning"))
        started = time.perf_counter()
        try:
            jobs = [self._job(train_stream, self.config.train_dir, backbone, parts.width, train=True),
                    self._job(val_stream, self.config.val_dir or self.config.train_dir, backbone, parts.width,
                              train=False)]
            complete = head_features.compute_features(parts.extractor, jobs, self.config.batch_size,
                                                      self.emit, self.cancel)
        finally:
            for table in self._tables:
                for level, text in (table.store.take_messages() if table.store else []):
                    self.emit(Message(text, level))
                table.close()
        seconds = time.perf_counter() - started
        self.counts = {"cached": True, "computed": sum(j.computed for j in jobs),
                       "reused": sum(j.reused for j in jobs), "copies": self.config.feature_copies,
                       "seconds": round(seconds, 3)}
        if not complete:
            return None
        saver.joined = JoinedModelFiles(saver.run_dir, parts)
        self._training_head = True
        self.emit(Message(f"Features of {self.counts['computed']} images computed and of "
                          f"{self.counts['reused']} reused from the disk cache in {seconds:.1f} s; the head "
                          f"trains on them until epoch {self.end_epoch}."))
        return parts.head, self._stream(jobs[0], train_stream, True), self._stream(jobs[1], val_stream, False)

    def end(self, saver: Any) -> None:
        """The head is trained: the joined model's files are written, and checkpoints from now on (the
        run fine-tunes end to end) hold the whole model."""
        if saver.joined:
            saver.joined.write()
            saver.joined = None
            saver.trained_since_checkpoint = True  # the last checkpoint is a head: last.keras is saved anew
        self._training_head = False

    def get_state(self) -> dict[str, Any]:
        return {"features_weights_sha256": self.weights_sha256,
                "features_head_checkpoint": self._training_head}

    def set_state(self, state: dict[str, Any]) -> None:
        self.weights_sha256 = state.get("features_weights_sha256")
        self.head_checkpoint = bool(state.get("features_head_checkpoint"))

    @staticmethod
    def restore_head(model: Any, run_dir: str, checkpoint: Checkpoint) -> None:
        """Puts a head checkpoint's weights, optimizer state and dropout state into a freshly built
        model (under the strategy's scope: the optimizer's slots are made here)."""
        parts = head_features.split_model(model)
        weights, optimizer_values = checkpoints.load_arrays(os.path.join(run_dir, checkpoint.model_file))
        parts.head.set_weights(weights)
        optimizer = parts.joined.optimizer
        optimizer.build(parts.head.trainable_variables)
        for target, value in zip(optimizer.variables, optimizer_values, strict=True):
            target.assign(value)
        checkpoints.restore_seed_states(parts.joined, checkpoint.seed_states)

    def _backbone(self, weights_path: str | None, width: int):
        """The identity of the features, unless the weights file is gone or changed since the run began
        (a resumed run's backbone holds the weights of then: its features are not the file's)."""
        try:
            backbone = head_features.backbone_identity(self.config, weights_path, width)
        except OSError:
            backbone = None
        if backbone is not None and self.weights_sha256 not in (None, backbone.weights_sha256):
            backbone = None
        if backbone is not None:
            self.weights_sha256 = backbone.weights_sha256
        return backbone

    def report(self) -> dict[str, Any]:
        return {"features": self.counts or {"cached": False}}

    def _job(self, stream, root: str, backbone, width: int, train: bool) -> head_features.FeatureJob:
        files: FileSet = stream.files
        views: list[tuple[FeatureTable, Any]] = []
        copies = self.config.feature_copies if train else 0
        augmenters = head_features.copy_augmenters(self.config.image_size, self.config.augmentation,
                                                   self.config.seed, copies)
        names = [copy_view(k, self.config.seed, head_features.describe_augmentation(self.config.augmentation))
                 for k in range(copies)] or [plain_view()]
        for name, augmenter in zip(names, augmenters or [None], strict=True):
            table = FeatureTable(files, width, self._store(root, backbone, name))
            self._tables.append(table)
            views.append((table, augmenter))
        return head_features.FeatureJob(stream, views)

    def _store(self, root: str, backbone, view: str):
        if backbone is None:
            return None
        try:
            return open_feature_store(self.config.cache_disk_mb, root, backbone, view)
        except OSError as exc:
            self.emit(Message(f"The disk cache cannot keep features ({exc}); they are computed for this "
                              "run only.", "warning"))
            return None

    def _stream(self, job: head_features.FeatureJob, image_stream, shuffle: bool) -> FeatureStream:
        tables = [table for table, _ in job.views]
        present = np.logical_and.reduce([table.filled for table in tables])
        order = image_stream.order
        return FeatureStream(job.stream.files, np.stack([table.vectors for table in tables]),
                             self.config.batch_size, shuffle=shuffle, seed=self.config.seed, present=present,
                             num_batches=order.dealt_batches)
