"""TensorBoard event files of a run: RUN/tensorboard/train and RUN/tensorboard/validation, laid out as
`keras.callbacks.TensorBoard` lays them out, so `tensorboard --logdir runs/` shows every run.

The scalars are the epoch metrics of history.csv, tagged as Keras tags them: `epoch_loss`,
`epoch_accuracy` and `epoch_learning_rate` under train/, `epoch_loss` and `epoch_accuracy` (the val_
metrics without their prefix) under validation/, at step = the 0-based epoch.

Keras's own callback cannot be used as it is: it writes through `tf.summary.scalar`, which TensorFlow
delegates to the tensorboard package, and TensorBoard is not a dependency (the README says `pip install
tensorboard` to view). So this writer uses `tf.summary.write`, TensorFlow's own, with the metadata of
the scalars plugin, which is what `tf.summary.scalar` writes.

A resumed run continues the same folders (each session adds an event file) without duplicating or
losing an epoch: it reads which epochs the files hold already, writes the history's epochs that are
missing (a killed session may not have flushed its last ones), and skips an epoch already written
(a session killed after writing it but before its checkpoint redoes it with the same values).
"""

from __future__ import annotations

import glob
import os
from typing import Any

from core.tf_runtime import load_tensorflow
from core.training.callbacks import HistoryRecorder, RunCallback, finished, learning_rate

TENSORBOARD_DIR = "tensorboard"
SPLITS = ("train", "validation")  # the subfolders Keras writes
SCALARS_PLUGIN = "scalars"


class TensorBoardLog(RunCallback):
    """Writes each finished epoch's row of the history (placed after HistoryRecorder)."""

    def __init__(self, run_dir: str, history: HistoryRecorder):
        super().__init__()
        self.log_dir = os.path.join(run_dir, TENSORBOARD_DIR)
        self.history = history
        self._writers: dict[str, Any] = {}
        self._written: dict[str, set[int]] = {}

    def on_train_begin(self, logs=None):
        scalars = read_scalars(self.log_dir)
        self._written = {split: set(scalars.get((split, "epoch_loss"), {})) for split in SPLITS}
        for row in self.history.history:  # what a killed session wrote but did not flush
            self._write(row)

    def on_epoch_end(self, epoch, logs=None):
        if finished(logs) and self.history.history and self.history.history[-1]["epoch"] == epoch:
            self._write(self.history.history[-1])

    def on_train_end(self, logs=None):
        self.close()

    def close(self) -> None:
        """Flushes and closes the event files (also when fit raised, so Keras never called
        on_train_end)."""
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def _write(self, row: dict[str, float]) -> None:
        epoch = int(row["epoch"])
        values = {key: value for key, value in row.items() if key != "epoch"}
        if "learning_rate" not in values and self.model is not None:
            values["learning_rate"] = learning_rate(self.model)  # constant: history.csv leaves it out
        by_split = {
            "train": {f"epoch_{key}": v for key, v in values.items() if not key.startswith("val_")},
            "validation": {f"epoch_{key[4:]}": v for key, v in values.items() if key.startswith("val_")},
        }
        for split, scalars in by_split.items():
            if scalars and epoch not in self._written[split]:
                self._write_scalars(split, scalars, epoch)
                self._written[split].add(epoch)

    def _write_scalars(self, split: str, scalars: dict[str, float], step: int) -> None:
        tf = load_tensorflow()
        writer = self._writer(split)
        metadata = _scalar_metadata()
        with writer.as_default():
            for tag, value in scalars.items():
                tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step, metadata=metadata)
        writer.flush()  # a killed run keeps every epoch its checkpoint holds

    def _writer(self, split: str):
        if split not in self._writers:
            tf = load_tensorflow()
            self._writers[split] = tf.summary.create_file_writer(os.path.join(self.log_dir, split))
        return self._writers[split]


def _scalar_metadata():
    SummaryMetadata = load_tensorflow().compat.v1.SummaryMetadata
    # The scalars plugin's content is its ScalarPluginData message at version 0: empty bytes.
    return SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=SCALARS_PLUGIN, content=b""))


def read_scalars(log_dir: str) -> dict[tuple[str, str], dict[int, float]]:
    """Every scalar under `log_dir`/train and /validation: {(split, tag): {step: value}}. A step
    written twice appears once, with its last value; `scalar_steps` counts repeats. A truncated
    file (a killed run) gives what it holds up to the damage."""
    found: dict[tuple[str, str], dict[int, float]] = {}
    for split, step, tag, value in _scalar_events(log_dir):
        found.setdefault((split, tag), {})[step] = value
    return found


def scalar_steps(log_dir: str) -> dict[tuple[str, str], list[int]]:
    """The steps of every scalar in the order written, repeats included (a duplicated epoch shows)."""
    found: dict[tuple[str, str], list[int]] = {}
    for split, step, tag, _value in _scalar_events(log_dir):
        found.setdefault((split, tag), []).append(step)
    return found


def _scalar_events(log_dir: str):
    tf = load_tensorflow()
    for split in SPLITS:
        for path in sorted(glob.glob(os.path.join(log_dir, split, "events.out.tfevents.*"))):
            try:
                # What tf.compat.v1.train.summary_iterator does, without its deprecation notice.
                for record in tf.data.TFRecordDataset(path):
                    event = tf.compat.v1.Event.FromString(record.numpy())
                    for value in event.summary.value:
                        if _is_scalar(value):
                            yield split, int(event.step), value.tag, _scalar_value(value)
            except (tf.errors.DataLossError, tf.errors.NotFoundError, OSError):
                continue


def _is_scalar(value) -> bool:
    """A float scalar, as tf.summary.write stores it (TensorFlow may keep the plugin's metadata on a
    tag's first event only) or as the older simple_value."""
    if value.HasField("simple_value"):
        return True
    tensor, float32 = value.tensor, load_tensorflow().float32.as_datatype_enum
    return value.HasField("tensor") and tensor.dtype == float32 and not tensor.tensor_shape.dim


def _scalar_value(value) -> float:
    tf = load_tensorflow()
    if value.HasField("simple_value"):
        return float(value.simple_value)
    return float(tf.make_ndarray(value.tensor))
