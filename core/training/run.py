"""One training, whatever its role: opens the run folder, builds (or loads) the model, lists the
callbacks that own every other concern, fits, and writes the final models and report.

The role (core.training.roles) says what differs between a run in this process and a Ray worker:
where it trains, which callbacks go around the run's own, and whether it writes the run folder.
TensorFlow is imported lazily, so importing this module costs nothing.
"""

from __future__ import annotations

import os
import socket
import threading
import traceback
from collections.abc import Callable
from typing import Any

from core import files
from core.config import TrainingConfig
from core.data.dataset import FileSet, SkippedFile, balanced_class_weights
from core.data.fingerprint import DatasetSnapshot, compare, read_manifest, write_manifest
from core.errors import DatasetError
from core.events import Event, Message, RunFailed, RunFinished, RunResult, RunStarted
from core.runs import checkpoints, run_folder
from core.runs.checkpoints import Checkpoint
from core.tf_runtime import load_keras
from core.training.failures import describe_failure, is_out_of_memory
from core.training.roles import Role

__all__ = ["Run"]


class Run:
    """One session of a run: opens the run folder, builds (or loads) the model, lists the callbacks
    that own every other concern, fits, and writes the final models and report. `role` says where it
    trains, what goes around its callbacks and whether it writes (core.training.roles).

    A new concern is one more RunCallback in `_callbacks` (Keras hooks) and, when it keeps state or
    adds to report.json, in `_stateful`: its state is then checkpointed and restored and its
    `report()` lands in report.json, with no other change here.
    """

    def __init__(self, config: TrainingConfig, train_files: FileSet, val_files: FileSet, role: Role,
                 emit: Callable[[Event], None], cancel: threading.Event, run_dir: str = "",
                 resume_from: Checkpoint | None = None, earlier_run: str | None = None):
        from core.training import callbacks
        from core.training.feature_stage import FeatureStage
        from core.training.tensorboard import TensorBoardLog

        self.config, self.train_files, self.val_files = config, train_files, val_files
        self.emit, self.cancel = emit, cancel
        self.run_dir, self.resume_from = run_dir, resume_from
        self.role = role
        self.writes = role.writes  # a Ray worker other than the chief writes nothing in the run folder
        self.placement: Any = None  # where it trains: chosen in execute, once TensorFlow is set up
        self.distribution: Any = None
        self.earlier_run = earlier_run  # whose data this run's data is compared with
        self.dataset: DatasetSnapshot | None = None
        self.environment: dict[str, Any] = {}
        self.skipped: list[SkippedFile] = list(train_files.skipped)  # decode threads append more
        self.device = ""
        self.out_of_memory = False
        self.model: Any = None
        self.timer = callbacks.EpochTimer()
        self.record = callbacks.RunRecord()
        # The learning rate is worth a column when it changes: on a plateau, or when fine-tuning begins.
        changing_rate = bool(config.reduce_lr_patience or config.fine_tune_after)
        self.history = callbacks.HistoryRecorder(record_learning_rate=changing_rate)
        self.policy = callbacks.PlateauPolicy(config, self.history, emit)
        self.cache_use = callbacks.DiskCacheUse(emit)
        self.fine_tune = callbacks.FineTune(config, emit)
        self.features = FeatureStage(config, emit, cancel)  # the head on cached features, if it applies
        self.saver: Any = None  # needs the run folder: made in _open_run_dir
        self.class_weights = (
            balanced_class_weights(train_files.counts()) if config.class_weights == "auto" else None
        )
        self.tensorboard: TensorBoardLog | None = None  # likewise
        self.reported = False  # this session's report.json is written: the run folder is open

    def _callbacks(self, train_stream, val_stream) -> list:
        """Keras calls these in this order (core.training.callbacks says why the order matters; the
        role may add callbacks first and last, as a Ray worker adds its agreements)."""
        from core.training import callbacks

        self.timer.watch(train_stream)
        writers = [
            self.saver,
            callbacks.ReportProgress(self.saver, lambda: self._write_report(self._result("running", ""))),
        ]
        middle = [
            callbacks.StreamProgress(train_stream, val_stream, self.emit, self.cancel, self.skipped,
                                     train_images=len(self.train_files)),
            self.timer,
            self.history,
            *([self.tensorboard] if self.writes else []),  # reads the row HistoryRecorder just added
            self.policy,
            self.cache_use,
            *(writers if self.writes else []),
            callbacks.EpochEvents(self.config.epochs, self.timer, self.history, self.policy, self.emit,
                                  self.cancel),
        ]
        first, last = self.role.callbacks_around(self.cancel, train_stream)
        return [*first, *middle, *last]

    def _stateful(self) -> list:
        """The callbacks whose state a checkpoint carries and whose report() fills report.json."""
        return [self.timer, self.history, self.policy, self.fine_tune, self.record, self.saver,
                self.cache_use, self.distribution, self.features]

    def _states(self) -> dict[str, Any]:
        states: dict[str, Any] = {}
        for callback in self._stateful():
            states.update(callback.get_state())
        return states

    def execute(self) -> RunResult:
        keras = load_keras()

        from core.training.device import configure_gpus, describe_compute_device
        from core.training.environment import describe_environment

        configure_gpus()
        self._place()
        keras.utils.set_random_seed(self.config.seed)
        self.device = describe_compute_device()
        self.environment = describe_environment()
        status, message, details = "completed", "", ""
        streams = []
        try:
            self._open_run_dir()
            self._open_streams(streams)
            self._fit(*streams)
            status, message = self._outcome()
        except Exception as exc:
            if self.role.passes_on(exc) or not self.reported:
                # Not this run's failure (a lost Ray worker: Ray restarts the group), or one before
                # this session wrote anything: the caller hears it, and the run folder is as it was.
                raise
            status, message, details = "failed", describe_failure(exc), traceback.format_exc()
            self.out_of_memory = is_out_of_memory(exc)
        finally:
            for stream in streams:
                stream.close()
            if self.tensorboard is not None:
                self.tensorboard.close()
        try:
            if self.writes and self.saver is not None:
                self.saver.save_final_models(self.model)
        except Exception as exc:
            status, message = "failed", f"{message} The final model could not be saved: {exc}".strip()
            details = details or traceback.format_exc()
        result = self._result(status, message)
        self._write_report(result)
        self.emit(RunFailed(message, details, result) if status == "failed" else RunFinished(result))
        return result

    def _place(self) -> None:
        """The strategy this process trains under, and the report's account of it."""
        from core.training.distribution.sync import DistributionReport

        self.placement = self.role.place(self.config, self.emit)
        self.fine_tune.within(self.placement.scope)
        self.distribution = DistributionReport(self.placement, self.role.members, self.role.restarts)

    def _open_run_dir(self) -> None:
        from core.training.callbacks import CheckpointSaver
        from core.training.tensorboard import TensorBoardLog

        if self.resume_from is None:
            if not self.run_dir:  # a distributed run's chief made it before the workers met
                self.run_dir = run_folder.create_run_dir(self.config.out_dir, self.config.model)
            if self.writes:
                run_folder.write_labels(self.run_dir, self.train_files.class_names)
        self.saver = CheckpointSaver(self.run_dir, self.config, self.history, self.timer, self._states,
                                     self.emit)
        self.tensorboard = TensorBoardLog(self.run_dir, self.history)
        if self.resume_from is not None:
            self._restore(self.resume_from)
        if self.writes:
            files.write_json(os.path.join(self.run_dir, run_folder.CONFIG_FILE), self.config.to_dict())
        self._write_report(self._result("running", ""))
        self.reported = True  # from here on, a failure must leave a failed report, not "running"
        self.emit(Message(f"Run folder: {os.path.abspath(self.run_dir)}"))
        if self.class_weights:
            weights = ", ".join(f"{name} {weight:.3g}" for name, weight in self.class_weights.items())
            self.emit(Message(f"Class weights (balanced): {weights}"))
        for skipped in self.skipped:
            self.emit(Message(f"Skipped {skipped.path}: {skipped.reason}", "warning"))
        self._record_dataset()
        self._write_report(self._result("running", ""))

    def _record_dataset(self) -> None:
        """Fingerprints the data, warns about files changed since the earlier run (the one resumed or
        repeated), and leaves this run's manifest for the next comparison."""
        self.dataset = DatasetSnapshot.take(self.train_files, self.val_files, self.config.train_dir,
                                            self.config.val_dir)
        if self.earlier_run:
            earlier = read_manifest(os.path.join(self.earlier_run, run_folder.DATASET_MANIFEST_FILE))
            name = os.path.basename(os.path.normpath(self.earlier_run))
            if earlier is None:
                self.emit(Message(f"{name} has no dataset manifest (it was made by an older version): "
                                  "whether its data changed since cannot be told."))
            for changes in compare(earlier or {}, self.dataset.manifest):
                self.emit(Message(f"The data changed since {name} was trained, {changes.describe()}.",
                                  "warning"))
        if not self.writes:
            return
        manifest_path = os.path.join(self.run_dir, run_folder.DATASET_MANIFEST_FILE)
        try:
            write_manifest(manifest_path, self.dataset.manifest)
        except OSError as exc:
            self.emit(Message(f"Could not write the dataset manifest: {exc}", "warning"))

    def _restore(self, checkpoint: Checkpoint) -> None:
        states = checkpoint.states()
        for callback in self._stateful():
            callback.set_state(states)
        self.saver.restore(checkpoint)
        self.record.note_resume(checkpoint.epoch + 1)
        # A killed run may have written history.csv a moment after its checkpoint: the checkpoint wins.
        if self.writes:
            run_folder.write_history(self.run_dir, self.history.history)
        self.emit(Message(f"Resuming after epoch {checkpoint.epoch + 1} of {self.config.epochs}"))

    def _open_streams(self, streams: list) -> None:
        """Appends the training and validation streams to `streams` as they are made, so the caller
        closes whatever exists (thread pools, a disk cache) if the second one fails.

        With several replicas, each split's files are dealt into the same number of batches for every
        replica; with several workers, each worker streams only its own shard of them.
        """
        from core.data.pipeline import ImageStream, default_cache_budget_bytes, steps_for_shards

        replicas, workers, rank = self.placement.replicas, self.placement.workers, self.placement.rank
        splits = []
        for split_files in (self.train_files, self.val_files):
            if len(split_files) < replicas:
                raise DatasetError(
                    f"{len(split_files)} images cannot be shared by {replicas} replicas: add images or "
                    "use fewer workers or GPUs."
                )
            batch = self.config.batch_size
            steps = steps_for_shards(len(split_files), replicas, batch) if replicas > 1 else None
            splits.append((split_files.shard(rank, workers) if workers > 1 else split_files, steps))
        shared = {
            "image_size": self.config.image_size,
            "batch_size": self.config.batch_size,
            "seed": self.config.seed,
            "resize_mode": self.config.resize_mode,
            "decode_threads": self.config.decode_threads or None,
            "cancel": self.cancel,
            "on_skip": self._skipped_while_training,
        }
        budget = self.config.cache_memory_mb * 1024**2 or default_cache_budget_bytes()
        roots = (self.config.train_dir, self.config.val_dir or self.config.train_dir)
        for (split_files, steps), root, shuffle in zip(splits, roots, (True, False), strict=True):
            cache = self._cache(split_files, root, budget) if self.config.cache else None
            budget -= 0 if cache is None or cache.on_disk else cache.nbytes
            streams.append(
                ImageStream(split_files, shuffle=shuffle, cache=cache, num_batches=steps, **shared)
            )
        self.cache_use.watch(streams)

    def _cache(self, split_files: FileSet, root: str, budget: int):
        """A stream's decoded-image cache: in memory while `budget` lasts, else in a temporary file;
        reading through the disk cache that runs share, unless that is off."""
        from core.data.pipeline import DecodedCache

        store = self._disk_store(root)
        try:
            cache = DecodedCache(len(split_files), self.config.image_size, budget, disk=store)
        except BaseException:
            if store is not None:
                store.close()  # else its lease keeps other processes from evicting it until we exit
            raise
        where = f"on disk ({cache.path})" if cache.on_disk else "in memory"
        text = f"Caching {len(split_files)} decoded images {where}: {cache.nbytes / 1e6:.0f} MB"
        if store is not None:
            ready = sum(store.has(path, store.stamp(path)) for path in split_files.paths)
            text += f"; {ready} of them are ready in the disk cache"
        self.emit(Message(text))
        return cache

    def _disk_store(self, root: str):
        """The disk cache of `root` that runs share; None when it is off or cannot be used."""
        from core.data.disk_cache import DiskCache

        if not self.config.cache_disk_mb:
            return None
        try:
            return DiskCache(budget_bytes=self.config.cache_disk_mb * 1024**2).open(
                root, self.config.image_size, self.config.resize_mode)
        except OSError as exc:
            self.emit(Message(f"The disk cache cannot be used ({exc}); images are decoded as usual.",
                              "warning"))
            return None

    def _fit(self, train_stream, val_stream) -> None:
        if self.cancel.is_set():
            return  # stopped while TensorFlow loaded or the images were read: train nothing
        model = self._model()
        if self.cancel.is_set():
            return  # stopped while the weights downloaded: the untrained model is not worth saving
        initial_epoch = self.history.epochs_done
        head_data = None
        if self.features.applies(initial_epoch):
            weights = (self.record.weights or {}).get("path")
            head_data = self.features.fit_data(model, weights, train_stream, val_stream, self.placement,
                                               self.saver)
            if head_data is None:
                return  # stopped while the features were computed: nothing new to save
        self.model = model
        self._announce(train_stream, val_stream, initial_epoch)
        start = initial_epoch
        if head_data is not None:
            head, train_features, val_features = head_data
            if not self._fit_part(head, train_features, val_features, start, self.features.end_epoch):
                return  # the final save writes the joined model's files
            self.features.end(self.saver)
            start = self.features.end_epoch
        for end in self.fine_tune.boundaries(start, self.config.epochs):
            self.fine_tune.switch(model, start)
            if not self._fit_part(model, train_stream, val_stream, start, end):
                return
            start = end

    def _announce(self, train_stream, val_stream, initial_epoch: int) -> None:
        distribution = self.distribution.describe(self.config.batch_size, len(train_stream),
                                                  len(self.train_files))
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
                pretrained=self.record.pretrained,
                history=list(self.history.history),
                fine_tune=self.fine_tune.began(),
                distribution=distribution,
            )
        )

    def _fit_part(self, model, train_stream, val_stream, start: int, end: int) -> bool:
        """Fits `model` (the model, or its head on features) from epoch `start` up to `end`; False when
        the run goes no further: stopped, stopped early, or a checkpoint failed."""
        train_stream.set_epoch(start)  # before keras_input: a FeatureStream's pipeline starts there
        train_data, val_data = train_stream.keras_input(end), val_stream.keras_input()
        class_weight = self._class_weight_by_index()
        if self.placement.multi_worker:
            from core.training.distribution.inputs import distributed_dataset

            size, strategy = self.config.image_size, self.placement.strategy
            weights = None if class_weight is None else [class_weight[i] for i in range(len(class_weight))]
            train_data = distributed_dataset(train_stream, strategy, size, class_weights=weights)
            val_data = distributed_dataset(val_stream, strategy, size)
            class_weight = None  # in the training data itself, as sample weights
        else:
            from core.modeling.models import build_training_state

            build_training_state(model)
        model.fit(
            train_data,
            validation_data=val_data,
            initial_epoch=start,
            epochs=end,
            # The stream shuffles images itself, seeded by epoch. Keras would also shuffle the
            # batch order with Python's global random state, which a resumed process cannot redo.
            shuffle=False,
            steps_per_epoch=len(train_stream),
            validation_steps=len(val_stream),
            callbacks=self._callbacks(train_stream, val_stream),
            class_weight=class_weight,
            verbose=0,
        )
        return not (self.cancel.is_set() or model.stop_training or self.history.epochs_done < end
                    or end >= self.config.epochs)

    def _class_weight_by_index(self) -> dict[int, float] | None:
        if not self.class_weights:
            return None
        return {index: self.class_weights[name] for index, name in enumerate(self.train_files.class_names)}

    def _model(self):
        """The model, built (or loaded) and compiled under the strategy's scope."""
        with self.placement.scope():
            if self.resume_from is not None and not self.features.head_checkpoint:
                return checkpoints.load_model(self.run_dir, self.resume_from)
            model = self._new_model()
            if self.resume_from is not None:  # its checkpoint holds the head trained on features
                self.features.restore_head(model, self.run_dir, self.resume_from)
                self.saver.trained_since_checkpoint = True  # last.keras: the whole model, not that head
            return model

    def _new_model(self):
        keras = load_keras()

        from core.modeling.models import build_model, compile_model
        from core.training.device import dtype_policy

        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(dtype_policy(self.config.precision))
        try:
            built = build_model(
                self.config.model,
                len(self.train_files.class_names),
                self.config.image_size,
                self.config.augmentation,
                self.config.seed,
                weights_url=self.config.weights_url,
                on_event=self.emit,
                cancel=self.cancel,
                prepared_weights=self.role.weights,
            )
        finally:  # the policy is per thread: a later run on this thread starts from the default
            keras.config.set_dtype_policy(previous)
        self.record.note_weights(built)
        self.emit(Message(built.note, "warning" if built.pretrained is False else "info"))
        compile_model(built.model, self.config.learning_rate, jit=self.config.jit)
        return built.model

    def _skipped_while_training(self, path: str, reason: str) -> None:
        # Called on a decode thread: only record here; StreamProgress reports it from the
        # training thread at the end of the batch.
        self.skipped.append(SkippedFile(path, reason))

    def _outcome(self) -> tuple[str, str]:
        if self.saver.failure:
            return "failed", self.saver.failure
        stopped_early = self.policy.stopped_early
        if self.cancel.is_set() and self.history.epochs_done < self.config.epochs and not stopped_early:
            return "cancelled", "Stopped by the user."
        return "completed", stopped_early

    def _result(self, status: str, message: str) -> RunResult:
        best = self.history.best or {}
        history = self.history.history
        return RunResult(
            run_dir=self.run_dir,
            status=status,
            epochs_completed=len(history),
            best_epoch=best.get("epoch"),
            best_val_accuracy=best.get("val_accuracy"),
            best_val_loss=best.get("val_loss"),
            final_logs={k: v for k, v in (history[-1] if history else {}).items() if k != "epoch"},
            duration_seconds=self.timer.elapsed(),
            message=message,
            history=list(history),
            out_of_memory=self.out_of_memory,
        )

    def _write_report(self, result: RunResult) -> None:
        if not self.writes:
            return
        try:
            files.write_json(os.path.join(self.run_dir, run_folder.REPORT_FILE), self._report(result))
        except OSError as exc:  # a full disk must not turn a saved run into a crash
            self.emit(Message(f"Could not write report.json: {exc}", "warning"))

    def _report(self, result: RunResult) -> dict[str, Any]:
        running = result.status == "running"
        report = {
            "status": result.status,
            "message": result.message,
            "out_of_memory": result.out_of_memory,
            # lets a reader tell a live run from one whose process was killed (core.runs.run_info)
            "process": {"pid": os.getpid(), "host": socket.gethostname()} if running else None,
            "class_names": self.train_files.class_names,
            "counts": {"train": self.train_files.counts(), "val": self.val_files.counts()},
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "device": self.device,
            "model": self.config.model,
            "class_weights": self.class_weights,
            "duration_seconds": round(result.duration_seconds, 3),
            "epochs_completed": result.epochs_completed,
            "best": {
                "epoch": result.best_epoch,
                "val_loss": result.best_val_loss,
                "val_accuracy": result.best_val_accuracy,
            },
            "final": result.final_logs,
            "config": self.config.to_dict(),
            "dataset_fingerprint": self.dataset.fingerprint if self.dataset else None,
            "environment": self.environment,
        }
        for callback in self._stateful():
            report.update(callback.report())
        return report
