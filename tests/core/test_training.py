"""train(): real Keras training on tiny images; the run folder; events; cancel; failures."""

import csv
import json
import math
import os
import threading

import keras
import numpy as np
import pytest
from conftest import make_class_folders

from core import files
from core.config import Augmentation, TrainingConfig
from core.errors import ConfigError, DatasetError
from core.events import BatchEnd, EpochEnd, Message, RunFailed, RunFinished, RunStarted
from core.runs import run_folder
from core.training.driver import train


@pytest.fixture
def config(tiny_dataset, tmp_path):
    train_dir, val_dir = tiny_dataset
    return TrainingConfig(
        train_dir=train_dir,
        val_dir=val_dir,
        epochs=2,
        batch_size=5,
        image_size=16,
        out_dir=str(tmp_path / "runs"),
        seed=4,
    )


def run(config, cancel=None, on_event=None):
    events = []

    def record(event):
        events.append(event)
        if on_event:
            on_event(event)

    result = train(config, record, cancel)
    return result, events


def test_a_run_folder_that_cannot_be_opened_ends_with_a_failed_report(config, monkeypatch):
    """Once report.json says "running", no failure may leave it so: the Runs tab would show the run
    as training for as long as this process lives."""
    from core.data.fingerprint import DatasetSnapshot
    from core.runs.run_info import read_run_info

    def unreadable(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(DatasetSnapshot, "take", unreadable)  # fingerprinting runs once the report exists
    result, events = run(config)
    assert result.status == "failed" and "Input/output error" in result.message
    assert isinstance(events[-1], RunFailed) and events[-1].result == result
    assert files.read_json(os.path.join(result.run_dir, "report.json"))["status"] == "failed"
    assert read_run_info(result.run_dir).status == "failed"


def test_a_run_writes_a_complete_run_folder(config):
    result, _events = run(config)
    assert result.status == "completed" and result.epochs_completed == 2
    folder = result.run_dir
    assert os.path.basename(folder).endswith("-small-cnn")
    assert sorted(os.listdir(folder)) == sorted(
        ["config.json", "labels.txt", "history.csv", "model.keras", "last.keras", "report.json",
         "checkpoint.json", "checkpoints", "dataset.json.gz", "tensorboard"]
    )
    assert TrainingConfig.from_dict(files.read_json(os.path.join(folder, "config.json"))) == config
    assert run_folder.read_labels(os.path.join(folder, "labels.txt")) == ["blue", "green", "red"]
    with open(os.path.join(folder, "history.csv"), newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [row[0] for row in rows[1:]] == ["0", "1"]
    report = files.read_json(os.path.join(folder, "report.json"))
    assert report["status"] == "completed" and report["device"] == "CPU only"
    assert report["counts"] == {
        "train": {"blue": 8, "green": 8, "red": 8},
        "val": {"blue": 4, "green": 4, "red": 4},
    }
    assert report["best"]["epoch"] in (0, 1) and report["pretrained_weights"] is None
    assert [set(e) >= {"seconds", "images_per_second", "data_wait"} for e in report["epochs"]] == [True] * 2
    assert [e["images"] for e in report["epochs"]] == [24, 24]  # counted inside the model
    assert report["distribution"] == {
        "strategy": "default", "workers": 1, "replicas": 1, "devices": [], "global_batch": 5,
        "steps_per_epoch": 5, "per_replica_batch": "5", "restarts": [],
    }
    model = keras.models.load_model(os.path.join(folder, "model.keras"), safe_mode=True)
    raw_pixels = np.full((1, 16, 16, 3), 200, dtype=np.uint8)  # the model takes 0..255 pixels
    assert model.predict(raw_pixels, verbose=0).shape == (1, 3)


def test_events_tell_the_whole_story_in_order(config):
    result, events = run(config)
    kinds = [type(e) for e in events]
    assert kinds.index(RunStarted) < kinds.index(BatchEnd) < kinds.index(EpochEnd)
    assert isinstance(events[-1], RunFinished) and events[-1].result == result
    started = next(e for e in events if isinstance(e, RunStarted))
    assert (started.steps_per_epoch, started.validation_steps) == (5, 3)  # ceil(24/5), ceil(12/5)
    batches = [e for e in events if isinstance(e, BatchEnd)]
    assert [(b.epoch, b.step) for b in batches] == [(e, s) for e in range(2) for s in range(5)]
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in epochs] == [0, 1]
    assert set(epochs[0].logs) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert 0 <= epochs[0].data_wait <= 1 and epochs[0].images_per_second > 0
    assert any("Run folder" in e.text for e in events if isinstance(e, Message))


def test_cancel_stops_within_one_batch_and_keeps_the_model(config):
    cancel = threading.Event()

    def stop_after_second_batch(event):
        if isinstance(event, BatchEnd) and event.step == 1:
            cancel.set()

    result, events = run(config.replace(epochs=50), cancel, stop_after_second_batch)
    assert result.status == "cancelled"
    assert len([e for e in events if isinstance(e, BatchEnd)]) == 2
    assert result.epochs_completed == 0  # the interrupted epoch is not recorded as finished
    for name in ("model.keras", "last.keras", "report.json"):
        assert os.path.exists(os.path.join(result.run_dir, name))
    assert files.read_json(os.path.join(result.run_dir, "report.json"))["status"] == "cancelled"


def test_a_failure_during_training_is_reported_and_the_model_kept(config, monkeypatch):
    import tensorflow as tf

    def out_of_memory(self, *args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")

    monkeypatch.setattr(keras.Model, "fit", out_of_memory)
    result, events = run(config)
    assert result.status == "failed" and "reduce batch size or image size" in result.message
    assert isinstance(events[-1], RunFailed) and "ResourceExhausted" in events[-1].details
    report = files.read_json(os.path.join(result.run_dir, "report.json"))
    assert report["status"] == "failed" and "reduce batch size" in report["message"]
    assert os.path.exists(os.path.join(result.run_dir, "last.keras"))


def test_unreadable_files_are_reported_in_events_and_report(config):
    with open(os.path.join(config.train_dir, "red", "zero.jpg"), "wb"):
        pass
    result, events = run(config.replace(epochs=1))
    assert result.status == "completed"
    assert any("zero.jpg" in e.text for e in events if isinstance(e, Message) and e.level == "warning")
    skipped = files.read_json(os.path.join(result.run_dir, "report.json"))["skipped"]
    assert [os.path.basename(s["path"]) for s in skipped] == ["zero.jpg"]


def test_split_without_validation_folder_and_augmentation(config):
    result, events = run(
        config.replace(val_dir=None, val_split=0.25, epochs=1, augmentation=Augmentation.all_on())
    )
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.val_counts == {"blue": 2, "green": 2, "red": 2}
    assert result.status == "completed"


def test_bad_settings_and_folders_fail_before_any_run_folder(config, tmp_path):
    with pytest.raises(ConfigError, match="epochs"):
        train(config.replace(epochs=0))
    with pytest.raises(DatasetError, match="does not exist"):
        train(config.replace(train_dir=str(tmp_path / "nowhere")))
    blocked = tmp_path / "file"
    blocked.write_text("x")
    with pytest.raises(ConfigError, match="file"):
        train(config.replace(out_dir=str(blocked / "runs")))
    assert not os.path.exists(config.out_dir)


def test_config_round_trips_through_json(config):
    tuned = config.replace(augmentation=Augmentation(flip=True, zoom=True), resize_mode="crop")
    assert TrainingConfig.from_json(tuned.to_json()) == tuned
    assert json.loads(tuned.to_json())["augmentation"] == {
        "flip": True,
        "rotation": False,
        "zoom": True,
        "contrast": False,
    }
    with pytest.raises(ConfigError, match="colour"):
        TrainingConfig.from_dict({"colour": "red"})


def test_the_bundled_demo_reaches_90_percent_in_five_epochs(tmp_path):
    result = train(TrainingConfig(out_dir=str(tmp_path)))  # the defaults: the demo, small-cnn, 5 epochs
    assert result.status == "completed" and result.epochs_completed == 5
    assert result.best_val_accuracy >= 0.9


def test_a_stop_before_training_starts_trains_nothing(config):
    cancel = threading.Event()
    cancel.set()  # e.g. Stop pressed while TensorFlow was still loading
    result, events = run(config, cancel)
    assert result.status == "cancelled" and result.epochs_completed == 0
    assert not [e for e in events if isinstance(e, BatchEnd)]
    assert not os.path.exists(os.path.join(result.run_dir, "model.keras"))


def test_a_split_that_leaves_no_validation_image_is_refused(tmp_path):
    train_dir = make_class_folders(str(tmp_path / "single"), {"cat": 1, "dog": 1})
    with pytest.raises(DatasetError, match="at least two per class"):
        train(TrainingConfig(train_dir=train_dir, val_dir=None, out_dir=str(tmp_path / "runs")))
    assert not os.path.exists(tmp_path / "runs")


def test_nan_validation_loss_never_blocks_a_later_best():
    from core.training.callbacks import improves as _better

    assert _better(0.5, float("nan")) and _better(0.5, None) and _better(0.4, 0.5)
    assert not _better(float("nan"), 0.5) and not _better(0.6, 0.5)


def test_the_best_model_is_written_before_the_checkpoint_commits(config, monkeypatch):
    from core import files
    from core.runs import checkpoints as checkpoint_module

    real_write_json = files.write_json

    def killed_before_commit(path, data):
        if path.endswith(checkpoint_module.CHECKPOINT_FILE):
            raise OSError(5, "killed here")
        real_write_json(path, data)

    monkeypatch.setattr(files, "write_json", killed_before_commit)
    result, _ = run(config.replace(epochs=1))
    assert result.status == "failed"  # the checkpoint write failed ...
    assert os.path.exists(os.path.join(result.run_dir, "model.keras"))  # ... the best model was already safe


def test_mixed_precision_and_xla_train_correctly_on_the_cpu(config):
    result, _ = run(config.replace(precision="mixed", jit=True))
    assert result.status == "completed" and math.isfinite(result.final_logs["loss"])
    model = keras.models.load_model(os.path.join(result.run_dir, "last.keras"), safe_mode=True)
    assert model.get_layer("conv0").dtype_policy.name == "mixed_bfloat16"  # CPU: bfloat16, not float16
    assert model.get_layer("classes").compute_dtype == "float32"  # the last layer stays float32
    probabilities = model.predict(np.full((2, 16, 16, 3), 120, dtype=np.uint8), verbose=0)
    assert probabilities.dtype == np.float32 and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    saved = files.read_json(os.path.join(result.run_dir, "config.json"))
    assert (saved["precision"], saved["jit"]) == ("mixed", True)
    assert keras.config.dtype_policy().name == "float32"  # the run left this thread's policy as it was
