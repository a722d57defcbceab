"""Opening a model: run folder or .keras file, labels and input size found, and every wrong file
refused with a message — above all, a Lambda layer is never run."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import make_class_folders

from core.config import TrainingConfig
from core.modeling.model_io import LoadedModel, ModelLoadError, load_model, resolve_model_path
from core.training.driver import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("model_io")
    classes = dict.fromkeys(("blue", "green", "red"), 6)
    train_dir = make_class_folders(str(base / "train"), classes)
    val_dir = make_class_folders(str(base / "val"), dict.fromkeys(classes, 2))
    config = TrainingConfig(
        train_dir=train_dir,
        val_dir=val_dir,
        epochs=1,
        batch_size=6,
        image_size=16,
        out_dir=str(base / "runs"),
    )
    result = train(config)
    assert result.status == "completed"
    return result.run_dir


def test_a_run_folder_gives_model_labels_size_and_resize_mode(run_dir):
    loaded = load_model(run_dir)
    assert isinstance(loaded, LoadedModel)
    assert loaded.class_names == ["blue", "green", "red"] and loaded.labels_known
    assert loaded.image_size == 16 and loaded.resize_mode == "stretch"
    assert loaded.run_dir == run_dir and loaded.model_path == os.path.join(run_dir, "model.keras")
    assert loaded.name == os.path.basename(run_dir)
    probabilities = loaded.predict(np.zeros((2, 16, 16, 3), dtype=np.uint8))
    assert probabilities.shape == (2, 3) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert loaded.predict(np.zeros((0, 16, 16, 3), dtype=np.uint8)).shape == (0, 3)


def test_resize_mode_comes_from_the_run_config(run_dir, tmp_path):
    copy = shutil.copytree(run_dir, tmp_path / "run")
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "resize_mode": "crop"}))
    assert load_model(str(copy)).resize_mode == "crop"


def test_a_bare_keras_file_takes_labels_beside_it_else_numbered_classes(run_dir, tmp_path):
    path = shutil.copy(os.path.join(run_dir, "model.keras"), tmp_path / "mine.keras")
    bare = load_model(str(path))
    assert bare.class_names == ["class_0", "class_1", "class_2"] and not bare.labels_known
    assert bare.run_dir is None and bare.image_size == 16  # from model.input_shape
    (tmp_path / "labels.txt").write_text("cat\ndog\nfox\n")
    assert load_model(str(path)).class_names == ["cat", "dog", "fox"]


def test_labels_that_do_not_match_the_outputs_are_refused(run_dir, tmp_path):
    copy = shutil.copytree(run_dir, tmp_path / "run")
    (copy / "labels.txt").write_text("blue\ngreen\n")
    with pytest.raises(ModelLoadError, match=r"3 outputs but .*names 2 classes"):
        load_model(str(copy))


def test_missing_paths_and_folders_without_a_model_are_explained(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(str(tmp_path / "nowhere"))
    with pytest.raises(ModelLoadError, match=r"has no model\.keras"):
        resolve_model_path(str(tmp_path))
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "saved_model.pb").write_bytes(b"\x08\x01")
    with pytest.raises(ModelLoadError, match="SavedModel"):
        load_model(str(tmp_path / "export"))


def test_a_legacy_hdf5_file_is_refused(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.save(tmp_path / "old.h5")
    with pytest.raises(ModelLoadError, match="legacy HDF5 model files are not supported; re-save"):
        load_model(str(tmp_path / "old.h5"))
    shutil.copy(tmp_path / "old.h5", tmp_path / "renamed.keras")  # the content, not the name, tells
    with pytest.raises(ModelLoadError, match="legacy HDF5"):
        load_model(str(tmp_path / "renamed.keras"))


@pytest.mark.parametrize(
    "name, content",
    [
        ("model.keras", b"this is not a model"),
        ("model.keras", b"PK\x03\x04 truncated zip"),
        ("notes.txt", b"hello"),
    ],
)
def test_corrupt_and_non_model_files_are_refused(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ModelLoadError, match=r"not a valid \.keras file|not a \.keras model file"):
        load_model(str(tmp_path / name))


def test_a_keras_zip_that_is_not_a_model_is_refused(run_dir, tmp_path):
    broken = tmp_path / "model.keras"
    shutil.make_archive(str(tmp_path / "junk"), "zip", root_dir=run_dir, base_dir="labels.txt")
    os.replace(tmp_path / "junk.zip", broken)
    with pytest.raises(ModelLoadError, match="could not be loaded as a Keras model"):
        load_model(str(broken))


def test_a_model_whose_output_is_not_one_probability_per_class_is_refused(tmp_path):
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(2, 3)])
    model.save(tmp_path / "conv.keras")
    with pytest.raises(ModelLoadError, match="one output of one probability per class"):
        load_model(str(tmp_path / "conv.keras"))


@pytest.fixture
def lambda_model(tmp_path):
    """A .keras model with a Lambda layer that writes a marker file whenever its code runs."""
    marker = str(tmp_path / "lambda-ran")

    # The path is a constant of the lambda's own code (Keras cannot restore default arguments).
    doubles_and_marks = eval(f"lambda x: (open({marker!r}, 'w').close(), x * 2)[1]")
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Lambda(doubles_and_marks)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    path = str(tmp_path / "lambda.keras")
    model.save(path)
    os.remove(marker)  # building the model ran it once
    return path, marker


def test_a_lambda_layer_is_refused_and_never_run(lambda_model):
    path, marker = lambda_model
    with pytest.raises(ModelLoadError, match="Lambda layer") as raised:
        load_model(path)
    assert "never runs code" in str(raised.value)
    assert not os.path.exists(marker)


def test_the_lambda_canary_works(lambda_model):
    """Shows the test above would notice: unsafe loading, which FitStudio never does, runs it."""
    path, marker = lambda_model
    keras.models.load_model(path, safe_mode=False)
    assert os.path.exists(marker)


def test_the_cli_reports_a_bad_model_with_exit_2_and_no_traceback(lambda_model, tmp_path):
    path, marker = lambda_model
    data = make_class_folders(str(tmp_path / "data"), {"a": 1, "b": 1})
    for command in (
        ["evaluate", "--model", str(tmp_path / "missing"), "--data", data],
        ["predict", "--model", path, data],
    ):
        done = subprocess.run(
            [sys.executable, "main.py", *command], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 2, done.stderr
        assert f"fitstudio {command[0]}:" in done.stderr and "Traceback" not in done.stderr
    assert (
        "does not exist"
        in subprocess.run(
            [
                sys.executable,
                "main.py",
                "export",
                "--model",
                "nope",
                "--format",
                "keras",
                "--out",
                str(tmp_path),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        ).stderr
    )
    assert not os.path.exists(marker)
