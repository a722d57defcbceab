"""Fine-tuning: after the frozen epochs only the backbone's top layers learn (BatchNormalization stays as
pretrained), the run records where it began, and a resume on either side of the switch is exact."""

import os
import shutil
import threading

import keras
import numpy as np
import pytest
from conftest import make_class_folders
from weight_files import MOBILENET_IMAGE_SIZE, backbone_weight_file

from core import files
from core.cli.main import add_training_arguments, config_from_args
from core.config import Augmentation, TrainingConfig
from core.errors import ConfigError
from core.events import EpochEnd, FineTuneStarted, RunStarted
from core.modeling import models
from core.modeling.models import backbone_of
from core.modeling.weights import OFFLINE_ENV, build_backbone, weight_file_name
from core.training.driver import resume, train


@pytest.fixture
def data(tmp_path):
    train_dir = make_class_folders(str(tmp_path / "train"), {"blue": 2, "red": 2}, size=MOBILENET_IMAGE_SIZE)
    val_dir = make_class_folders(str(tmp_path / "val"), {"blue": 1, "red": 1}, size=MOBILENET_IMAGE_SIZE)
    return train_dir, val_dir


def test_fine_tuning_changes_only_the_unfrozen_layers(data, tmp_path, tmp_path_factory, monkeypatch):
    # Pretrained weights from a file, so the weights every layer starts from are known.
    keras_home = tmp_path / "keras-home"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.setenv(OFFLINE_ENV, "1")
    os.makedirs(keras_home / "models")
    saved = backbone_weight_file(tmp_path_factory)
    shutil.copyfile(saved, keras_home / "models" / weight_file_name("mobilenetv2", MOBILENET_IMAGE_SIZE))
    config = TrainingConfig(
        train_dir=data[0], val_dir=data[1], model="mobilenetv2", image_size=MOBILENET_IMAGE_SIZE, epochs=2,
        batch_size=4, learning_rate=1e-2, fine_tune_after=1, fine_tune_layers=10,
        fine_tune_learning_rate=1e-2, out_dir=str(tmp_path / "runs"),
    )
    events = []
    result = train(config, events.append)
    assert result.status == "completed", result.message
    assert [e for e in events if isinstance(e, FineTuneStarted)] == [FineTuneStarted(1, 10, 1e-2)]
    report = files.read_json(os.path.join(result.run_dir, "report.json"))
    assert report["fine_tune"] == {"from_epoch": 1, "layers": 10, "learning_rate": 1e-2}
    assert report["pretrained_weights"] is True
    assert [row["learning_rate"] for row in result.history] == pytest.approx([1e-2, 1e-2])

    start = build_backbone("mobilenetv2", MOBILENET_IMAGE_SIZE, weights=saved)
    trained = backbone_of(keras.models.load_model(os.path.join(result.run_dir, "last.keras"), safe_mode=True))
    changed, unchanged = set(), set()
    for before, after in zip(start.layers, trained.layers, strict=True):
        for old, new in zip(before.get_weights(), after.get_weights(), strict=True):
            (changed if not np.array_equal(old, new) else unchanged).add(after.name)
    assert changed == {"block_16_depthwise", "block_16_project", "Conv_1"}  # the top 10 without BN
    assert {"block_16_expand", "Conv1", "block_16_project_BN", "Conv_1_bn"} <= unchanged


def stand_in_backbone(model, image_size, weights=None):
    """A backbone of MobileNetV2's kinds of layers (convolution, BatchNormalization, ReLU), small
    enough that the four sessions of the resume test take seconds."""
    inputs = keras.Input((image_size, image_size, 3))
    x = inputs
    for index in range(3):
        x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name=f"conv{index}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{index}")(x)
        x = keras.layers.ReLU(name=f"relu{index}")(x)
    return keras.Model(inputs, x, name="stand_in_backbone")


def stop_after(epoch):
    cancel = threading.Event()

    def on_event(event):
        if isinstance(event, EpochEnd) and event.epoch == epoch:
            cancel.set()

    return cancel, on_event


def test_a_resume_on_either_side_of_the_switch_is_exact(data, tmp_path, monkeypatch):
    monkeypatch.setattr(models, "build_backbone", stand_in_backbone)
    config = TrainingConfig(
        train_dir=data[0], val_dir=data[1], model="mobilenetv2", image_size=MOBILENET_IMAGE_SIZE, epochs=4,
        batch_size=2, augmentation=Augmentation.all_on(), fine_tune_after=2, fine_tune_layers=6,
        fine_tune_learning_rate=3e-3, reduce_lr_patience=1, out_dir=str(tmp_path / "runs"), seed=5,
    )
    straight = train(config.replace(out_dir=str(tmp_path / "straight")))
    cancel, stop = stop_after(1)  # the last frozen epoch
    first = train(config, stop, cancel)
    cancel, stop = stop_after(2)  # the first fine-tuned epoch
    events = []
    second = resume(first.run_dir, lambda event: (events.append(event), stop(event)), cancel)
    assert (first.epochs_completed, second.epochs_completed) == (2, 3)
    assert [e.epoch for e in events if isinstance(e, FineTuneStarted)] == [2]  # switched in the resume
    events.clear()
    done = resume(first.run_dir, events.append)
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.fine_tune == FineTuneStarted(2, 6, 3e-3) and not any(
        isinstance(e, FineTuneStarted) for e in events)  # switched before: not again
    for ours, theirs in zip(weights_of(done.run_dir), weights_of(straight.run_dir), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    for ours, theirs in zip(done.history, straight.history, strict=True):
        assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-6)
    report = files.read_json(os.path.join(done.run_dir, "report.json"))
    assert report["fine_tune"] == {"from_epoch": 2, "layers": 6, "learning_rate": 3e-3}
    assert [r["from_epoch"] for r in report["resumes"]] == [2, 3]


def weights_of(run_dir):
    return keras.models.load_model(os.path.join(run_dir, "last.keras"), safe_mode=True).get_weights()


def test_fine_tuning_settings_are_checked(tmp_path):
    base = TrainingConfig(model="mobilenetv2", image_size=32, epochs=5, out_dir=str(tmp_path))
    base.replace(fine_tune_after=4).validate()
    with pytest.raises(ConfigError, match="has 5 epochs"):
        base.replace(fine_tune_after=5).validate()
    with pytest.raises(ConfigError, match="small-cnn"):
        base.replace(model="small-cnn", fine_tune_after=2).validate()
    with pytest.raises(ConfigError, match="fine_tune_learning_rate"):
        base.replace(fine_tune_after=2, fine_tune_learning_rate=0.0).validate()


def test_the_cli_flags_map_onto_the_config():
    import argparse

    parser = argparse.ArgumentParser()
    add_training_arguments(parser)
    args = parser.parse_args(["--model", "efficientnetb0", "--epochs", "8", "--fine-tune-after", "5",
                              "--fine-tune-layers", "40", "--fine-tune-lr", "2e-5",
                              "--weights-url", "https://mirror.example/k/"])
    config = config_from_args(args)
    assert (config.fine_tune_after, config.fine_tune_layers, config.fine_tune_learning_rate) == (5, 40, 2e-5)
    assert config.weights_url == "https://mirror.example/k/"
