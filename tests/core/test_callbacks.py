"""The run's callbacks one at a time: each saves its state into a checkpoint and takes it back, so a
resumed run carries on where it stopped; a cut-short epoch leaves nothing behind."""

import dataclasses
import os
import threading
import time

import keras
import pytest

from core import files
from core.config import TrainingConfig
from core.data.pipeline import BatchOrder
from core.events import BatchEnd, EpochEnd, Message
from core.runs import checkpoints
from core.training import callbacks

LOGS = {"loss": 1.0, "accuracy": 0.5, "val_loss": 0.9, "val_accuracy": 0.6}


def through_a_checkpoint(tmp_path, stateful, epoch=0):
    """Writes every callback's state into checkpoint.json the way the saver does, and reads it back."""
    states = {}
    for callback in stateful:
        states.update(callback.get_state())
    state = checkpoints.Checkpoint.from_states(epoch, {"epochs": 5}, states)
    state.model_file = "model.keras"
    (tmp_path / "model.keras").write_bytes(b"model")
    files.write_json(os.path.join(tmp_path, checkpoints.CHECKPOINT_FILE), dataclasses.asdict(state))
    return checkpoints.read(str(tmp_path)).states()


def tiny_model(learning_rate=0.1):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    return model


def test_history_timer_and_record_states_survive_a_checkpoint(tmp_path):
    history = callbacks.HistoryRecorder(record_learning_rate=False)
    timer = callbacks.EpochTimer(started=time.time() - 10)
    record = callbacks.RunRecord()
    record.pretrained, record.weights_note = False, "random weights"
    history.on_epoch_end(0, dict(LOGS))
    history.on_epoch_end(1, {**LOGS, "val_loss": 1.2})
    timer.epoch_stats.append({"epoch": 0, "seconds": 1.0})
    states = through_a_checkpoint(tmp_path, [history, timer, record], epoch=1)

    history2, timer2 = callbacks.HistoryRecorder(False), callbacks.EpochTimer()
    record2 = callbacks.RunRecord()
    for callback in (history2, timer2, record2):
        callback.set_state(states)
    record2.note_resume(2)
    assert history2.history == history.history and history2.best_epoch == 0 and history2.epochs_done == 2
    assert timer2.epoch_stats == [{"epoch": 0, "seconds": 1.0}] and 10 <= timer2.elapsed() < 60
    assert (record2.pretrained, record2.weights_note) == (False, "random weights")
    assert [r["from_epoch"] for r in record2.report()["resumes"]] == [2]


def test_the_plateau_policy_restored_waits_as_the_uninterrupted_one_would(tmp_path):
    config = TrainingConfig(reduce_lr_patience=2, early_stopping_patience=4)
    events = []
    history = callbacks.HistoryRecorder(record_learning_rate=True)
    policy = callbacks.PlateauPolicy(config, history, events.append)
    model = tiny_model()
    for callback in (history, policy):
        callback.set_model(model)
    for epoch, val_loss in enumerate([0.5, 0.6, 0.7]):  # no better than epoch 0 for two epochs
        history.on_epoch_end(epoch, {**LOGS, "val_loss": val_loss})
        policy.on_epoch_end(epoch, {**LOGS, "val_loss": val_loss})
    assert policy.lr_change == pytest.approx((0.1, 0.05)) and policy.last_lr_change_epoch == 2
    assert history.history[-1]["learning_rate"] == pytest.approx(0.1)  # the rate epoch 2 trained with
    states = through_a_checkpoint(tmp_path, [history, policy, callbacks.EpochTimer()], epoch=2)

    resumed_history = callbacks.HistoryRecorder(record_learning_rate=True)
    resumed = callbacks.PlateauPolicy(config, resumed_history, events.append)
    for callback in (resumed_history, resumed):
        callback.set_state(states)
        callback.set_model(tiny_model(0.05))
    resumed_history.on_epoch_end(3, {**LOGS, "val_loss": 0.8})
    resumed.on_epoch_end(3, {**LOGS, "val_loss": 0.8})
    assert resumed.lr_change is None  # reduced at epoch 2: patience 2 has not passed again
    resumed_history.on_epoch_end(4, {**LOGS, "val_loss": 0.8})
    resumed.on_epoch_end(4, {**LOGS, "val_loss": 0.8})
    assert resumed.lr_change == pytest.approx((0.05, 0.025))
    assert resumed.model.stop_training and resumed.stopped_early.startswith("Stopped early after epoch 5")
    assert resumed.report() == {"stopped_early": resumed.stopped_early}


def test_a_new_callbacks_state_rides_in_the_checkpoint_extra(tmp_path):
    class FineTuneSwitch(callbacks.RunCallback):
        def __init__(self):
            super().__init__()
            self.unfrozen_at = None

        def get_state(self):
            return {"unfrozen_at": self.unfrozen_at}

        def set_state(self, state):
            self.unfrozen_at = state.get("unfrozen_at")

    switch = FineTuneSwitch()
    switch.unfrozen_at = 3
    history = callbacks.HistoryRecorder(False)
    timer = callbacks.EpochTimer()
    states = through_a_checkpoint(tmp_path, [history, timer, switch])
    assert files.read_json(os.path.join(tmp_path, checkpoints.CHECKPOINT_FILE))["extra"] == {"unfrozen_at": 3}
    restored = FineTuneSwitch()
    restored.set_state(states)
    assert restored.unfrozen_at == 3


class FakeStream:
    def __init__(self, images=10, batch_size=5):
        self.files = list(range(images))
        self.order = BatchOrder(images, batch_size, shuffle=False, seed=0)
        self.epochs, self.waits = [], 0.0

    def __len__(self):
        return len(self.files) // self.order.batch_size

    def set_epoch(self, epoch):
        self.epochs.append(epoch)

    def take_wait_seconds(self):
        return self.waits


def test_a_cut_short_epoch_under_stop_records_nothing():
    events, cancel = [], threading.Event()
    stream = FakeStream()
    progress = callbacks.StreamProgress(stream, FakeStream(), events.append, cancel, [])
    timer = callbacks.EpochTimer()
    timer.watch(stream)
    history = callbacks.HistoryRecorder(False)
    policy = callbacks.PlateauPolicy(TrainingConfig(), history, events.append)
    epoch_events = callbacks.EpochEvents(5, timer, history, policy, events.append, cancel)
    run = [progress, timer, history, policy, epoch_events]
    model = tiny_model()
    for callback in run:
        callback.set_model(model)

    def epoch(number, batches, val_batches):
        logs = dict(LOGS)
        for callback in run:
            callback.on_epoch_begin(number)
        for step in range(batches):
            for callback in run:
                callback.on_train_batch_end(step, {"loss": 1.0, "accuracy": 0.5})
        for callback in run:
            callback.on_test_begin()
        for step in range(val_batches):
            for callback in run:
                callback.on_test_batch_end(step)
        for callback in run:
            callback.on_epoch_end(number, logs)

    epoch(0, 2, 2)
    cancel.set()
    epoch(1, 1, 0)  # Stop during the first batch: Keras still calls on_epoch_end
    assert stream.epochs == [0, 1] and model.stop_training
    assert [row["epoch"] for row in history.history] == [0] and len(timer.epoch_stats) == 1
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [0]
    assert [e.step for e in events if isinstance(e, BatchEnd)] == [0, 1, 0]
    assert not [e for e in events if isinstance(e, Message)]
