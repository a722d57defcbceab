"""Training a frozen MobileNetV2's head on cached backbone features (core.modeling.features,
core.data.feature_cache, core.training.feature_stage): the joined model, reuse and invalidation of
the cache, augmented copies, cancelling, resuming, fine-tuning after, and equivalence with training
end to end. A real MobileNetV2 at 32 px, with an ImageNet-format weight file made by the tests."""

import io
import os
import shutil
import threading

import numpy as np
import pytest
from conftest import age_files, make_class_folders, write_image
from weight_files import MOBILENET_IMAGE_SIZE, backbone_weight_file

from core import files
from core.cli.train_command import add_training_arguments, config_from_args
from core.config import Augmentation, TrainingConfig
from core.data.dataset import FileSet
from core.data.disk_cache import DiskCache
from core.data.feature_stream import FeatureStream
from core.errors import ConfigError
from core.events import EpochEnd, FeatureProgress, FineTuneStarted, RunStarted
from core.modeling import features
from core.modeling.models import build_model
from core.modeling.weights import weight_file_name, weights_cache_dir
from core.runs import run_folder
from core.training.driver import resume, train

SIZE = MOBILENET_IMAGE_SIZE
# Each run builds a real MobileNetV2 and saves it whole: tens of seconds on a busy 2-core machine.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def weights(tmp_path, tmp_path_factory, monkeypatch):
    """The ImageNet weight file in an empty Keras cache, where a run finds it."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    path = os.path.join(weights_cache_dir(), weight_file_name("mobilenetv2", SIZE))
    os.makedirs(os.path.dirname(path))
    shutil.copyfile(backbone_weight_file(tmp_path_factory), path)
    return path


@pytest.fixture
def data(tmp_path):
    train_dir = make_class_folders(str(tmp_path / "train"), {"blue": 3, "red": 3}, size=SIZE)
    val_dir = make_class_folders(str(tmp_path / "val"), {"blue": 1, "red": 1}, size=SIZE)
    age_files(str(tmp_path))  # the disk cache keeps only files that have not just changed
    return train_dir, val_dir


def config_for(data, tmp_path, **changes) -> TrainingConfig:
    values = {"train_dir": data[0], "val_dir": data[1], "model": "mobilenetv2", "image_size": SIZE,
              "epochs": 1, "batch_size": 2, "out_dir": str(tmp_path / "runs"), **changes}
    return TrainingConfig(**values)


def report_of(result) -> dict:
    return files.read_json(os.path.join(result.run_dir, "report.json"))


def test_the_joined_model_predicts_as_the_head_does_on_the_features(weights, data):
    built = build_model("mobilenetv2", 2, SIZE, seed=3)
    parts = features.split_model(built.model)
    images = np.random.default_rng(0).integers(0, 256, (5, SIZE, SIZE, 3)).astype(np.float32)
    vectors = parts.extractor.predict_on_batch(images)
    assert vectors.shape == (5, parts.width) and np.abs(vectors).max() > 0
    # The head shares the joined model's layers: training it trains the joined model's head.
    parts.head.get_layer("classes").set_weights([np.full((parts.width, 2), 0.01 * k) for k in (1,)]
                                                + [np.array([0.3, -0.3])])
    from_head = parts.head.predict_on_batch(vectors)
    from_pixels = built.model.predict_on_batch(images)
    assert np.abs(from_head - from_pixels).max() <= 1e-4


def test_a_second_run_reuses_the_features_and_a_changed_image_computes_its_own_again(weights, data, tmp_path):
    first = train(config_for(data, tmp_path))
    assert first.status == "completed", first.message
    assert report_of(first)["features"] | {"seconds": 0} == {
        "cached": True, "computed": 8, "reused": 0, "copies": 0, "seconds": 0}
    second = report_of(train(config_for(data, tmp_path, learning_rate=1e-2)))["features"]
    assert (second["computed"], second["reused"]) == (0, 8)

    changed_file = write_image(os.path.join(data[0], "red", "red_000.png"), (250, 10, 10), size=SIZE, seed=99)
    moment = os.stat(changed_file).st_mtime - 600  # old enough to be kept (its other files stay untouched)
    os.utime(changed_file, (moment, moment))
    changed = report_of(train(config_for(data, tmp_path)))["features"]
    assert (changed["computed"], changed["reused"]) == (1, 7)


def test_another_image_size_or_weights_file_computes_the_features_again(weights, data, tmp_path):
    first = report_of(train(config_for(data, tmp_path)))["features"]
    assert (first["computed"], first["reused"]) == (8, 0)
    larger = report_of(train(config_for(data, tmp_path, image_size=48)))["features"]
    assert (larger["computed"], larger["reused"]) == (8, 0)

    change_a_kernel(weights)
    reweighted = report_of(train(config_for(data, tmp_path)))["features"]
    assert (reweighted["computed"], reweighted["reused"]) == (8, 0)
    kinds = [store.layout.variant["view"] for store in DiskCache().stores() if store.layout]
    assert kinds == ["plain"] * 6  # train and val, each at 32 px, at 48 px, and with the other weights


def change_a_kernel(path: str) -> None:
    """Another weights file: the first kernel in it gets other values."""
    import h5py

    with h5py.File(path, "r+") as handle:
        kernels = []
        handle.visititems(lambda name, item: kernels.append(item) if "kernel" in name else None)
        kernels[0][...] = np.random.default_rng(1).normal(0, 0.1, kernels[0].shape)


def test_k_augmented_copies_are_kept_and_each_epoch_takes_one_view_of_each_image(weights, data, tmp_path):
    config = config_for(data, tmp_path, epochs=2, augmentation=Augmentation(flip=True, contrast=True),
                        feature_copies=2)
    result = train(config)
    assert result.status == "completed", result.message
    assert report_of(result)["features"]["copies"] == 2
    views = sorted(store.layout.variant["view"] for store in DiskCache().stores() if store.layout)
    assert views == ["copy 0 seed 1337 flip+contrast", "copy 1 seed 1337 flip+contrast", "plain"]
    again = report_of(train(config))["features"]
    assert (again["computed"], again["reused"]) == (0, 8)


def test_a_feature_stream_gives_an_image_streams_batches_and_one_view_per_epoch():
    count = 10
    files_ = FileSet(["a", "b"], [f"{i}.png" for i in range(count)], np.arange(count, dtype=np.int32) % 2)
    views = np.stack([np.full((count, 3), view, dtype=np.float32) for view in range(3)])
    views[:, :, 1] = np.arange(count)  # the file's index, to trace batches
    present = np.ones(count, dtype=bool)
    present[4] = False  # an unreadable image
    stream = FeatureStream(files_, views, 4, shuffle=True, seed=5, present=present)
    chosen = []
    for epoch in range(4):
        stream.set_epoch(epoch)
        seen = np.concatenate([stream[b][0] for b in range(len(stream))])
        assert sorted(seen[:, 1].astype(int)) == [i for i in range(count) if i != 4]
        assert all(row[0] == stream.view_of(int(row[1])) for row in seen)
        chosen.append([stream.view_of(i) for i in range(count)])
    assert len({tuple(c) for c in chosen}) > 1 and {v for c in chosen for v in c} == {0, 1, 2}
    stream.set_epoch(2)
    assert [stream.view_of(i) for i in range(count)] == chosen[2]  # by (seed, epoch) alone


def test_what_fit_reads_from_a_feature_stream_is_its_batches_epoch_after_epoch():
    count = 11
    files_ = FileSet(["a", "b"], [f"{i}.png" for i in range(count)], np.arange(count, dtype=np.int32) % 2)
    views = np.random.default_rng(3).normal(size=(2, count, 5)).astype(np.float32)
    present = np.ones(count, dtype=bool)
    present[[2, 7]] = False
    stream = FeatureStream(files_, views, 4, shuffle=True, seed=9, present=present)
    stream.set_epoch(1)  # a run resumed after its first epoch
    batches = iter(stream.keras_input(until_epoch=4))
    for epoch in (1, 2, 3):
        stream.set_epoch(epoch)
        for batch in range(len(stream)):
            features, labels = next(batches)
            expected_features, expected_labels = stream[batch]
            np.testing.assert_array_equal(features.numpy(), expected_features)
            np.testing.assert_array_equal(labels.numpy(), expected_labels)
    assert next(batches, None) is None  # nothing after the last epoch asked for
    for mask in (present, np.ones(count, dtype=bool)):  # batches of uneven and of even sizes
        validation = FeatureStream(files_, views[:1], 4, shuffle=False, present=mask)
        for _ in range(2):  # Keras reads the validation data anew every epoch
            read = list(validation.keras_input())
            assert len(read) == len(validation)
            for (features, labels), batch in zip(read, range(len(validation)), strict=True):
                np.testing.assert_array_equal(features.numpy(), validation[batch][0])
                np.testing.assert_array_equal(labels.numpy(), validation[batch][1])


def test_stop_while_computing_features_stops_within_one_batch(weights, data, tmp_path):
    cancel = threading.Event()
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, FeatureProgress):
            cancel.set()

    result = train(config_for(data, tmp_path), on_event, cancel)
    assert result.status == "cancelled"
    progress = [e for e in events if isinstance(e, FeatureProgress)]
    assert progress == [progress[0]] and (progress[0].done, progress[0].total) == (2, 8)
    assert progress[0].describe().startswith("Computing features: 2 of 8, ")
    assert not any(isinstance(e, RunStarted) for e in events)
    assert report_of(result)["features"]["computed"] == 2
    # What was computed is kept: the next run computes only the rest.
    assert report_of(train(config_for(data, tmp_path)))["features"]["computed"] == 6


def test_a_stopped_feature_run_resumes_as_if_never_stopped(weights, data, tmp_path):
    config = config_for(data, tmp_path, epochs=3, learning_rate=1e-2)
    whole = train(config)
    cancel = threading.Event()

    def stop_after_first_epoch(event):
        if isinstance(event, EpochEnd):
            cancel.set()

    stopped = train(config, stop_after_first_epoch, cancel)
    assert stopped.status == "cancelled" and stopped.epochs_completed == 1
    resumed = resume(stopped.run_dir)
    assert resumed.status == "completed", resumed.message
    for ours, theirs in zip(resumed.history, whole.history, strict=True):
        assert ours["loss"] == pytest.approx(theirs["loss"], abs=1e-6)
        assert ours["val_loss"] == pytest.approx(theirs["val_loss"], abs=1e-6)
    assert report_of(resumed)["features"]["reused"] == 8


def test_the_saved_models_are_whole_models(weights, data, tmp_path):
    from core.tf_runtime import load_keras

    keras = load_keras()
    result = train(config_for(data, tmp_path, epochs=2))
    for name in (run_folder.BEST_MODEL_FILE, run_folder.LAST_MODEL_FILE):
        model = keras.models.load_model(os.path.join(result.run_dir, name), safe_mode=True)
        assert model.input_shape == (None, SIZE, SIZE, 3) and model.output_shape == (None, 2)
    assert not os.path.exists(os.path.join(result.run_dir, "best-head.npz"))
    from core.cli.cache_commands import print_info

    listing = io.StringIO()
    print_info(DiskCache(), listing)
    assert "mobilenetv2 features (plain) of images" in listing.getvalue()


def test_fine_tuning_continues_end_to_end_after_the_feature_stage(weights, data, tmp_path):
    events = []
    config = config_for(data, tmp_path, epochs=2, fine_tune_after=1, fine_tune_layers=5)
    result = train(config, events.append)
    assert result.status == "completed", result.message
    assert [e for e in events if isinstance(e, FineTuneStarted)] == [FineTuneStarted(1, 5, 1e-5)]
    report = report_of(result)
    assert report["features"]["cached"] and report["fine_tune"]["from_epoch"] == 1
    assert len(result.history) == 2


def test_training_on_features_computes_what_training_end_to_end_does(weights, data, tmp_path, monkeypatch):
    from core.modeling import models

    original = models.build_model

    def without_dropout(*args, **kwargs):  # dropout off for the check
        built = original(*args, **kwargs)
        built.model.get_layer("head_dropout").rate = 0.0
        return built

    monkeypatch.setattr(models, "build_model", without_dropout)
    config = config_for(data, tmp_path, epochs=3, learning_rate=1e-2, class_weights="auto")
    end_to_end = train(config.replace(features="none"))
    cached = train(config.replace(features="cached"))
    assert report_of(end_to_end)["features"] == {"cached": False}
    for ours, theirs in zip(cached.history, end_to_end.history, strict=True):
        for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
            assert ours[key] == pytest.approx(theirs[key], abs=1e-3)


def test_feature_settings_are_checked(data, tmp_path):
    with pytest.raises(ConfigError, match="pretrained backbone"):
        config_for(data, tmp_path, model="small-cnn", features="cached").validate()
    with pytest.raises(ConfigError, match="augmentation is off"):
        config_for(data, tmp_path, feature_copies=3).validate()
    with pytest.raises(ConfigError, match="Ray workers"):
        config_for(data, tmp_path, features="cached", workers=2).validate()
    with pytest.raises(ConfigError, match="features must be"):
        config_for(data, tmp_path, features="sometimes").validate()
    assert not config_for(data, tmp_path, workers=2).cached_features  # auto: end to end on workers
    assert not config_for(data, tmp_path, model="small-cnn").cached_features
    assert config_for(data, tmp_path).cached_features
    # Settings saved before cached features existed are those of runs trained end to end.
    old = config_for(data, tmp_path).to_dict()
    del old["features"], old["feature_copies"]
    assert TrainingConfig.from_dict(old).features == "none"


def test_the_command_line_sets_features_and_copies():
    import argparse

    parser = argparse.ArgumentParser()
    add_training_arguments(parser)
    args = parser.parse_args(["--model", "mobilenetv2", "--image-size", "32", "--features", "cached",
                              "--feature-copies", "3", "--augment"])
    config = config_from_args(args)
    assert (config.features, config.feature_copies) == ("cached", 3)
    assert config_from_args(parser.parse_args([])).features == "auto"


def test_a_killed_feature_run_resumes_and_leaves_whole_models(weights, data, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from core.runs import checkpoints
    from core.tf_runtime import load_keras

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = str(tmp_path / "runs")
    command = [sys.executable, "main.py", "train", "--train", data[0], "--val", data[1], "--model",
               "mobilenetv2", "--image-size", str(SIZE), "--batch-size", "2", "--epochs", "500", "--out", out]
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not (os.path.isdir(out) and os.listdir(out)
                                                   and _checkpointed(os.path.join(out, os.listdir(out)[0]))):
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    run_dir = os.path.join(out, os.listdir(out)[0])
    kept = checkpoints.read(run_dir).epoch + 1
    assert kept >= 2 and os.path.exists(os.path.join(run_dir, "best-head.npz"))
    done = subprocess.run([*command[:3], "--resume", run_dir, "--epochs", str(kept + 2)], cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    report = report_of(type("Result", (), {"run_dir": run_dir}))
    assert report["status"] == "completed" and report["epochs_completed"] == kept + 2
    assert report["features"]["reused"] == 8 and report["resumes"][0]["from_epoch"] == kept
    assert not os.path.exists(os.path.join(run_dir, "best-head.npz"))
    keras = load_keras()
    for name in (run_folder.BEST_MODEL_FILE, run_folder.LAST_MODEL_FILE):
        model = keras.models.load_model(os.path.join(run_dir, name), safe_mode=True)
        assert model.input_shape == (None, SIZE, SIZE, 3)


def _checkpointed(run_dir: str, epochs: int = 2) -> bool:
    try:
        return files.read_json(os.path.join(run_dir, "checkpoint.json"))["epoch"] + 1 >= epochs
    except (OSError, ValueError, KeyError):
        return False


def test_the_command_line_prints_the_features_progress():
    from core.cli.train_command import ProgressPrinter

    out = io.StringIO()
    printer = ProgressPrinter(out)
    printer(FeatureProgress(340, 2000, 98.4))
    printer(FeatureProgress(2000, 2000, 97.6))
    assert "Computing features: 2,000 of 2,000, 98 images/s" in out.getvalue()
