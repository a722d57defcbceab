"""Never lose a training: checkpoints every epoch, exact resume, a killed process, write failures,
early stopping and learning-rate reduction."""

import os
import signal
import subprocess
import sys
import threading
import time

import keras
import numpy as np
import pytest
from conftest import make_class_folders

from core import files
from core.config import Augmentation, TrainingConfig
from core.errors import ConfigError, FitStudioError
from core.events import EpochEnd, Message, RunStarted
from core.runs import checkpoints, run_folder
from core.training.driver import resume, train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def config(tiny_dataset, tmp_path):
    train_dir, val_dir = tiny_dataset
    # augmentation and dropout on: their random state must survive the interruption too
    return TrainingConfig(
        train_dir=train_dir,
        val_dir=val_dir,
        epochs=4,
        batch_size=5,
        image_size=16,
        augmentation=Augmentation.all_on(),
        out_dir=str(tmp_path / "runs"),
        seed=11,
    )


def weights_of(run_dir, name="last.keras"):
    return keras.models.load_model(os.path.join(run_dir, name), safe_mode=True).get_weights()


def stop_after_epoch(last_epoch):
    cancel = threading.Event()

    def on_event(event):
        if isinstance(event, EpochEnd) and event.epoch == last_epoch:
            cancel.set()

    return cancel, on_event


def test_an_interrupted_and_resumed_run_ends_exactly_like_an_uninterrupted_one(config, tmp_path):
    straight = train(config.replace(out_dir=str(tmp_path / "straight")))
    cancel, stop = stop_after_epoch(1)
    first = train(config, stop, cancel)
    assert first.status == "cancelled" and first.epochs_completed == 2
    events = []
    resumed = resume(first.run_dir, events.append)
    assert resumed.status == "completed" and resumed.run_dir == first.run_dir
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.initial_epoch == 2 and [row["epoch"] for row in started.history] == [0, 1]
    for ours, theirs in zip(weights_of(resumed.run_dir), weights_of(straight.run_dir), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert [r["epoch"] for r in resumed.history] == [0, 1, 2, 3]
    for ours, theirs in zip(resumed.history, straight.history, strict=True):
        assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-6)
    for on_disk, in_memory in zip(run_folder.read_history(resumed.run_dir), resumed.history, strict=True):
        assert on_disk == pytest.approx(in_memory)
    report = files.read_json(os.path.join(resumed.run_dir, "report.json"))
    assert report["status"] == "completed" and len(report["epochs"]) == 4
    assert [r["from_epoch"] for r in report["resumes"]] == [2]


def test_the_checkpoint_keeps_the_optimizer_state(config):
    cancel, stop = stop_after_epoch(0)
    run = train(config, stop, cancel)
    state = checkpoints.read(run.run_dir)
    model = checkpoints.load_model(run.run_dir, state)
    assert state.epoch == 0 and int(model.optimizer.iterations.numpy()) == 5  # one epoch of 5 batches
    assert any(np.abs(v.numpy()).sum() > 0 for v in model.optimizer.variables if "momentum" in v.path)
    assert state.seed_states  # augmentation and dropout generators


def test_a_finished_run_can_be_extended_with_more_epochs(config):
    done = train(config.replace(epochs=2, augmentation=Augmentation()))
    with pytest.raises(ConfigError, match="already trained 2 epochs"):
        resume(done.run_dir)
    more = resume(done.run_dir, epochs=3)
    assert more.epochs_completed == 3
    assert files.read_json(os.path.join(done.run_dir, "config.json"))["epochs"] == 3


def test_resume_refuses_folders_without_a_checkpoint(tmp_path):
    with pytest.raises(FitStudioError, match="not a run folder"):
        resume(str(tmp_path / "nothing"))
    os.makedirs(tmp_path / "empty-run")
    with pytest.raises(FitStudioError, match="no checkpoint"):
        resume(str(tmp_path / "empty-run"))


def test_a_failed_checkpoint_write_stops_cleanly_and_keeps_the_last_good_one(config, monkeypatch):
    real_write = checkpoints.write
    calls = []

    def disk_full_on_second_epoch(run_dir, model, state, copies=(), arrays=False):
        calls.append(state.epoch)
        if state.epoch == 1:
            raise OSError(28, "No space left on device")
        return real_write(run_dir, model, state, copies, arrays)

    monkeypatch.setattr(checkpoints, "write", disk_full_on_second_epoch)
    result = train(config.replace(epochs=5))
    assert result.status == "failed" and "No space left" in result.message
    assert calls == [0, 1]  # training stopped instead of carrying on unsaved
    assert checkpoints.read(result.run_dir).epoch == 0
    monkeypatch.setattr(checkpoints, "write", real_write)
    assert resume(result.run_dir).epochs_completed == 5


def test_early_stopping_and_learning_rate_reduction_are_recorded(config):
    plateau = config.replace(
        epochs=30,
        learning_rate=0.5,
        early_stopping_patience=3,
        reduce_lr_patience=2,
        augmentation=Augmentation(),
    )  # a learning rate this high stops improving
    events = []
    result = train(plateau, events.append)
    assert result.status == "completed" and result.epochs_completed < 30
    assert "Stopped early" in result.message
    best = result.best_epoch
    assert result.epochs_completed == best + 1 + 3
    rates = [row["learning_rate"] for row in result.history]
    assert rates[0] == pytest.approx(0.5) and min(rates) < 0.5
    assert any("learning rate" in e.text for e in events if isinstance(e, Message))
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    changes = [e.learning_rate_change for e in epochs if e.learning_rate_change]
    assert changes and changes[0] == pytest.approx((0.5, 0.25))
    assert [e.stopped_early for e in epochs] == [False] * (len(epochs) - 1) + [True]
    report = files.read_json(os.path.join(result.run_dir, "report.json"))
    assert report["stopped_early"].startswith("Stopped early")
    assert "learning_rate" in run_folder.read_history(result.run_dir)[0]


def test_a_killed_process_loses_at_most_the_epoch_in_progress(tmp_path):
    train_dir = make_class_folders(str(tmp_path / "train"), {"blue": 60, "red": 60}, size=32)
    out = str(tmp_path / "runs")
    command = [
        sys.executable,
        "main.py",
        "train",
        "--train",
        train_dir,
        "--val-split",
        "0.2",
        "--epochs",
        "5",
        "--batch-size",
        "4",
        "--image-size",
        "32",
        "--seed",
        "3",
        "--out",
        out,
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and finished_epochs(out) < 2:
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)  # during epoch 3
        process.wait(timeout=30)
    finally:
        process.kill()
    run_dir = os.path.join(out, os.listdir(out)[0])
    kept = checkpoints.read(run_dir).epoch + 1
    assert kept >= 2  # the two finished epochs survived the kill
    done = subprocess.run(
        [*command[:3], "--resume", run_dir], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr
    report = files.read_json(os.path.join(run_dir, "report.json"))
    assert report["status"] == "completed" and report["epochs_completed"] == 5
    assert [row["epoch"] for row in run_folder.read_history(run_dir)] == [0, 1, 2, 3, 4]
    assert [e["epoch"] for e in report["epochs"]] == [0, 1, 2, 3, 4]
    assert report["resumes"][0]["from_epoch"] == kept
    for name in ("model.keras", "last.keras", "labels.txt", "config.json"):
        assert os.path.exists(os.path.join(run_dir, name))
    assert checkpoints.read(run_dir).epoch == 4


def finished_epochs(out):
    if not os.path.isdir(out) or not os.listdir(out):
        return 0
    try:
        return checkpoints.read(os.path.join(out, os.listdir(out)[0])).epoch + 1
    except FitStudioError:
        return 0


def test_a_run_that_ran_out_of_memory_resumes_with_smaller_batches(config, monkeypatch):
    import tensorflow as tf

    real_fit = keras.Model.fit
    calls = []

    def out_of_memory_in_epoch_2(self, *args, **kwargs):
        calls.append(kwargs["steps_per_epoch"])
        if len(calls) == 1:  # the first session: one good epoch, then the GPU runs out
            kwargs["epochs"] = 1
            real_fit(self, *args, **kwargs)
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", out_of_memory_in_epoch_2)
    failed = train(config.replace(augmentation=Augmentation()))
    assert failed.status == "failed" and failed.out_of_memory and failed.epochs_completed == 1
    done = resume(failed.run_dir, batch_size=2)
    assert done.status == "completed" and done.epochs_completed == 4
    assert calls == [5, 12]  # 24 images in batches of 5, then of 2
    assert files.read_json(os.path.join(done.run_dir, "config.json"))["batch_size"] == 2


def test_head_checkpoint_arrays_round_trip_and_an_older_keras_head_checkpoint_still_reads(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, name="classes")(inputs))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(np.random.default_rng(0).normal(size=(8, 4)), np.arange(8) % 3, epochs=2, verbose=0)
    expected_weights = model.get_weights()
    expected_optimizer = [variable.numpy() for variable in model.optimizer.variables]
    assert any(value.any() for value in expected_optimizer[2:])  # moments, not just zeros
    arrays, whole = str(tmp_path / "epoch-0002.npz"), str(tmp_path / "epoch-0002.keras")
    checkpoints.save_arrays(model, arrays)
    model.save(whole)
    for path in (arrays, whole):
        weights, optimizer = checkpoints.load_arrays(path)
        for ours, theirs in zip(weights + optimizer, expected_weights + expected_optimizer, strict=True):
            np.testing.assert_array_equal(ours, theirs)
