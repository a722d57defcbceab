"""Fine-tuning: which of MobileNetV2's layers are unfrozen; after the frozen epochs only those learn
(BatchNormalization stays as pretrained), shown on a real MobileNetV2 with made weights; the run
records where it began; a resume on either side of the switch is exact.

The resume test, which runs the same configuration four times, uses a small stand-in backbone of
the same kinds of layers: each MobileNetV2 run compiles two train functions (frozen, fine-tuned)."""

import os
import shutil
import threading

import keras
import numpy as np
import pytest
from conftest import make_class_folders
from stand_in_backbone import stand_in_backbone
from weight_files import MOBILENET_IMAGE_SIZE, backbone_weight_file, saved_layer_weights

from core import files
from core.cli.train_command import add_training_arguments, config_from_args
from core.config import TrainingConfig
from core.errors import ConfigError
from core.events import EpochEnd, FineTuneStarted, Message, RunStarted
from core.modeling import models
from core.modeling.models import backbone_of, build_model, unfreeze_top_layers
from core.modeling.weights import OFFLINE_ENV, cached_weights_path, weights_cache_dir
from core.training.driver import resume, train


@pytest.fixture
def data(tmp_path):
    train_dir = make_class_folders(str(tmp_path / "train"), {"blue": 2, "red": 2}, size=MOBILENET_IMAGE_SIZE)
    val_dir = make_class_folders(str(tmp_path / "val"), {"blue": 1, "red": 1}, size=MOBILENET_IMAGE_SIZE)
    return train_dir, val_dir


def test_mobilenets_top_layers_are_unfrozen_but_not_its_batch_normalization():
    built = build_model("mobilenetv2", 2, MOBILENET_IMAGE_SIZE)  # offline: random weights, same layers
    base = backbone_of(built.model)
    assert built.model.trainable_weights == built.model.get_layer("classes").trainable_weights
    assert unfreeze_top_layers(built.model, 10) == 10
    top = {layer.name for layer in base.layers[-10:]}
    assert "block_16_depthwise_BN" in top and "block_16_expand" not in top
    learning = {layer.name for layer in base.layers if layer.trainable_weights}
    assert learning == {"block_16_depthwise", "block_16_project", "Conv_1"}  # the top 10 but BN
    batch_norms = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert not any(layer.trainable for layer in batch_norms)
    assert unfreeze_top_layers(built.model, 1000) == len(base.layers)  # more than there are: all



@pytest.fixture
def stand_in(monkeypatch):
    monkeypatch.setattr(models, "build_backbone", stand_in_backbone)


@pytest.fixture
def made_weights_in_cache(tmp_path, tmp_path_factory, monkeypatch):
    """The tests' made MobileNetV2 weight file in an empty Keras cache, with the network forbidden."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv(OFFLINE_ENV, "1")
    made = backbone_weight_file(tmp_path_factory)
    os.makedirs(weights_cache_dir())
    shutil.copyfile(made, cached_weights_path("mobilenetv2", MOBILENET_IMAGE_SIZE))
    return made


def test_after_the_switch_only_the_unfrozen_layers_learn(data, tmp_path, made_weights_in_cache):
    """A real MobileNetV2 on made weights: the frozen epoch changes none of the backbone; after the
    switch only the unfrozen convolutions learn, and every BatchNormalization layer, also those in
    the unfrozen top, keeps its scale, offset and moving statistics (it runs in inference mode)."""
    config = TrainingConfig(
        train_dir=data[0], val_dir=data[1], model="mobilenetv2", image_size=MOBILENET_IMAGE_SIZE, epochs=2,
        batch_size=2, learning_rate=1e-2, fine_tune_after=1, fine_tune_layers=10,
        fine_tune_learning_rate=1e-2, out_dir=str(tmp_path / "runs"),
    )
    events = []
    result = train(config, events.append)
    assert result.status == "completed", result.message
    assert [e for e in events if isinstance(e, FineTuneStarted)] == [FineTuneStarted(1, 10, 1e-2)]
    assert any(isinstance(e, Message) and e.text.startswith("Fine-tuning from epoch 2") for e in events)
    report = files.read_json(os.path.join(result.run_dir, "report.json"))
    assert report["pretrained_weights"] is True and report["weights"]["origin"] == "cache"
    assert report["fine_tune"] == {"from_epoch": 1, "layers": 10, "learning_rate": 1e-2}
    assert [row["learning_rate"] for row in result.history] == pytest.approx([1e-2, 1e-2])
    made = saved_layer_weights(made_weights_in_cache)
    trained = backbone_of(keras.models.load_model(os.path.join(result.run_dir, "last.keras"), safe_mode=True))
    assert trained.name.startswith("mobilenetv2") and len(trained.layers) == 154  # the real one
    batch_norms = {layer.name for layer in trained.layers
                   if isinstance(layer, keras.layers.BatchNormalization)}
    assert len(batch_norms) == 52 and {"block_16_depthwise_BN", "Conv_1_bn"} <= batch_norms
    changed = {layer.name for layer in trained.layers if layer.weights
               and any(not np.array_equal(old, new)
                       for old, new in zip(made[layer.name], layer.get_weights(), strict=True))}
    # The top 10 layers are block_16_depthwise and _project, Conv_1, their BatchNorms and ReLUs.
    assert changed == {"block_16_depthwise", "block_16_project", "Conv_1"}


def stop_after(epoch):
    cancel = threading.Event()

    def on_event(event):
        if isinstance(event, EpochEnd) and event.epoch == epoch:
            cancel.set()

    return cancel, on_event


def test_a_resume_on_either_side_of_the_switch_is_exact(data, tmp_path, stand_in):
    config = TrainingConfig(
        train_dir=data[0], val_dir=data[1], model="mobilenetv2", image_size=MOBILENET_IMAGE_SIZE, epochs=3,
        batch_size=2, fine_tune_after=1, fine_tune_layers=6, fine_tune_learning_rate=3e-3,
        reduce_lr_patience=1, out_dir=str(tmp_path / "runs"), seed=5,
    )  # the head's dropout draws random numbers: their state must survive the interruptions too
    straight = train(config.replace(out_dir=str(tmp_path / "straight")))
    cancel, stop = stop_after(0)  # the last frozen epoch
    first = train(config, stop, cancel)
    cancel, stop = stop_after(1)  # the first fine-tuned epoch
    events = []
    second = resume(first.run_dir, lambda event: (events.append(event), stop(event)), cancel)
    assert (first.epochs_completed, second.epochs_completed) == (1, 2)
    assert [e.epoch for e in events if isinstance(e, FineTuneStarted)] == [1]  # switched in the resume
    events.clear()
    done = resume(first.run_dir, events.append)
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.fine_tune == FineTuneStarted(1, 6, 3e-3) and not any(
        isinstance(e, FineTuneStarted) for e in events)  # switched before: not again
    for ours, theirs in zip(weights_of(done.run_dir), weights_of(straight.run_dir), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    for ours, theirs in zip(done.history, straight.history, strict=True):
        assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-6)
    report = files.read_json(os.path.join(done.run_dir, "report.json"))
    assert report["fine_tune"] == {"from_epoch": 1, "layers": 6, "learning_rate": 3e-3}
    assert [r["from_epoch"] for r in report["resumes"]] == [1, 2]


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
