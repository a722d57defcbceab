"""Pretrained weights: Keras's file names, the cache, a local mirror that succeeds or misbehaves in
every way a network can, files checked against the hash they should have, cancelling a download,
importing a file, and runs on cached and on downloaded weights."""

import hashlib
import inspect
import io
import os
import shutil
import threading

import keras
import numpy as np
import pytest
from conftest import make_class_folders
from weight_files import MOBILENET_IMAGE_SIZE, WeightsMirror, backbone_weight_file, first_kernel

import main as fitstudio
from core import files
from core.config import TrainingConfig
from core.errors import ConfigError
from core.events import DownloadProgress, Message
from core.modeling.models import backbone_of, build_model
from core.modeling.weights import (
    IMPORT_RECORD_SUFFIX,
    KERAS_PUBLISHED_HASHES,
    OFFLINE_ENV,
    WEIGHTS_SHA256_ENV,
    WEIGHTS_URL_ENV,
    DownloadCancelled,
    WeightsError,
    download_weights,
    import_weights,
    obtain_weights,
    weight_file_name,
    weights_cache_dir,
    weights_sha256,
    weights_url,
)
from core.training.driver import train

FILE_NAME = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache; downloads allowed (the tests only ever reach 127.0.0.1)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv(OFFLINE_ENV, "0")
    monkeypatch.delenv(WEIGHTS_URL_ENV, raising=False)
    monkeypatch.delenv(WEIGHTS_SHA256_ENV, raising=False)
    return weights_cache_dir()


@pytest.fixture
def mirror(tmp_path, tmp_path_factory):
    folder = tmp_path / "mirror"
    folder.mkdir()
    shutil.copyfile(backbone_weight_file(tmp_path_factory), folder / FILE_NAME)
    with WeightsMirror(str(folder)) as server:
        yield server


def cache_contents(cache_dir):
    return sorted(os.listdir(cache_dir)) if os.path.isdir(cache_dir) else []


def test_file_names_and_urls_are_the_ones_keras_uses(keras_home, monkeypatch):
    assert weight_file_name("mobilenetv2", 128) == (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_128_no_top.h5"
    )
    assert weight_file_name("mobilenetv2", 32) == FILE_NAME  # no weights for 32 px: Keras takes 224's
    assert weight_file_name("efficientnetb0", 300) == "efficientnetb0_notop.h5"
    assert weights_url("efficientnetb0", 224) == (
        "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5"
    )
    monkeypatch.setenv(WEIGHTS_URL_ENV, "http://mirror.example/keras")
    assert weights_url("efficientnetb0", 224) == "http://mirror.example/keras/efficientnetb0_notop.h5"
    # the settings field wins over the environment
    assert weights_url("efficientnetb0", 224, "https://campus/w/") == "https://campus/w/efficientnetb0_notop.h5"
    assert keras_home.endswith(os.path.join("keras-home", "models"))


def test_config_checks_the_mirror_and_the_backbone_image_size(tmp_path):
    base = TrainingConfig(model="mobilenetv2", image_size=32, out_dir=str(tmp_path))
    base.replace(weights_url="https://mirror.example/keras/").validate()
    with pytest.raises(ConfigError, match="must be a URL"):
        base.replace(weights_url="mirror.example/keras").validate()
    with pytest.raises(ConfigError, match="at least 32 px"):
        base.replace(image_size=16).validate()


def test_a_run_uses_the_weights_in_the_keras_cache(keras_home, tmp_path, tmp_path_factory, monkeypatch):
    monkeypatch.setenv(OFFLINE_ENV, "1")  # the cache alone must do
    saved = backbone_weight_file(tmp_path_factory)
    os.makedirs(keras_home)
    cached = os.path.join(keras_home, FILE_NAME)
    shutil.copyfile(saved, cached)
    train_dir = make_class_folders(str(tmp_path / "train"), {"blue": 2, "red": 2}, size=MOBILENET_IMAGE_SIZE)
    config = TrainingConfig(
        train_dir=train_dir, val_dir=train_dir, model="mobilenetv2", image_size=MOBILENET_IMAGE_SIZE,
        epochs=1, batch_size=4, out_dir=str(tmp_path / "runs"),
    )
    events = []
    result = train(config, events.append)
    assert result.status == "completed", result.message
    report = files.read_json(os.path.join(result.run_dir, "report.json"))
    assert report["pretrained_weights"] is True
    assert report["weights"]["origin"] == "cache" and report["weights"]["path"] == cached
    assert cached in report["weights_note"]
    assert any(isinstance(e, Message) and cached in e.text for e in events)
    model = keras.models.load_model(os.path.join(result.run_dir, "model.keras"), safe_mode=True)
    np.testing.assert_array_equal(backbone_of(model).get_layer("Conv1").kernel.numpy(), first_kernel(saved))


def test_cli_train_downloads_from_the_mirror_in_the_environment(keras_home, mirror, tmp_path, monkeypatch,
                                                                tmp_path_factory):
    monkeypatch.setenv(WEIGHTS_URL_ENV, mirror.url("good"))
    train_dir = make_class_folders(str(tmp_path / "train"), {"blue": 3, "red": 3}, size=MOBILENET_IMAGE_SIZE)
    out = str(tmp_path / "runs")
    args = fitstudio.build_parser().parse_args([
        "train", "--train", train_dir, "--val", train_dir, "--model", "mobilenetv2",
        "--image-size", str(MOBILENET_IMAGE_SIZE), "--epochs", "1", "--batch-size", "6", "--out", out,
    ])
    terminal = io.StringIO()
    code = args.handler(args, terminal)
    printed = terminal.getvalue()
    assert code == 0, printed
    url = mirror.url("good") + FILE_NAME
    assert f"Downloading {url}" in printed and f"Downloaded {FILE_NAME}" in printed
    run_dir = os.path.join(out, os.listdir(out)[0])
    report = files.read_json(os.path.join(run_dir, "report.json"))
    assert report["pretrained_weights"] is True
    assert report["weights"]["origin"] == "download" and report["weights"]["url"] == url
    model = keras.models.load_model(os.path.join(run_dir, "model.keras"), safe_mode=True)
    kernel = first_kernel(backbone_weight_file(tmp_path_factory))
    np.testing.assert_array_equal(backbone_of(model).get_layer("Conv1").kernel.numpy(), kernel)


def test_a_mirror_download_reports_progress_and_lands_in_the_cache(keras_home, mirror):
    events = []
    weights = obtain_weights("mobilenetv2", MOBILENET_IMAGE_SIZE, mirror.url("good"), events.append)
    assert weights.origin == "download" and weights.problem == ""
    assert weights.path == os.path.join(keras_home, FILE_NAME)
    assert weights.url == mirror.url("good") + FILE_NAME
    size = os.path.getsize(os.path.join(mirror.folder, FILE_NAME))
    progress = [e for e in events if isinstance(e, DownloadProgress)]
    assert progress[0].received_bytes == 0 and progress[0].total_bytes == size and not progress[0].done
    assert progress[-1].done and progress[-1].received_bytes == size
    assert all(e.file_name == FILE_NAME for e in progress)
    assert cache_contents(keras_home) == [FILE_NAME]  # no partial file beside it
    again = obtain_weights("mobilenetv2", MOBILENET_IMAGE_SIZE, mirror.url("good"))
    assert again.origin == "cache" and len(mirror.requests) == 1


@pytest.mark.parametrize(
    ("mode", "problem"),
    [
        ("truncated", "broke off after"),
        ("html", "did not send a weight file"),
        ("stall", "sent nothing for 0.5 s"),
        ("missing", "answered 404 Not Found"),
    ],
)
def test_a_bad_download_falls_back_with_a_clear_message(keras_home, mirror, mode, problem):
    events = []
    url = mirror.url(mode)
    weights = obtain_weights("mobilenetv2", MOBILENET_IMAGE_SIZE, url, events.append, timeout=0.5)
    assert mirror.stalls_ended == 0  # a stalled download gave up by itself, the server still holding it
    assert weights.path is None and weights.origin == ""
    assert problem in weights.problem and mirror.url(mode) in weights.problem
    assert cache_contents(keras_home) == []  # nothing half-written stays in the cache
    progress = [e for e in events if isinstance(e, DownloadProgress)]
    assert progress and progress[-1].done  # the window hides its progress bar


def test_a_file_that_is_hdf5_but_not_the_architecture_is_refused(keras_home, tmp_path):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")])
    path = str(tmp_path / "other.h5")
    other.save(path)  # a whole (legacy HDF5) model of another architecture
    folder = tmp_path / "mirror"
    folder.mkdir()
    shutil.copyfile(path, folder / FILE_NAME)
    refused = pytest.raises(WeightsError, match="does not load into MobileNetV2")
    with WeightsMirror(str(folder)) as server, refused:
        download_weights("mobilenetv2", MOBILENET_IMAGE_SIZE, server.url("good"))
    assert cache_contents(keras_home) == []


def test_cancel_stops_a_stalled_download_at_once(keras_home, mirror):
    cancel = threading.Event()

    def cancel_when_started(event):
        if isinstance(event, DownloadProgress) and not event.done:
            threading.Timer(0.2, cancel.set).start()

    with pytest.raises(DownloadCancelled):
        download_weights("mobilenetv2", MOBILENET_IMAGE_SIZE, mirror.url("stall"), cancel_when_started,
                         cancel, timeout=60)
    # Cancelled while the server still held the response back: neither the 60 s stall timeout nor
    # the end of the server's stall ended it.
    assert mirror.stalls_ended == 0
    assert cache_contents(keras_home) == []


def test_offline_the_message_says_which_file_to_get_and_where(keras_home, monkeypatch):
    monkeypatch.setenv(OFFLINE_ENV, "1")
    built = build_model("mobilenetv2", 2, MOBILENET_IMAGE_SIZE)
    assert built.pretrained is False
    assert FILE_NAME in built.note and keras_home in built.note and "Import weights" in built.note


def test_import_copies_a_file_that_loads_and_refuses_one_that_does_not(keras_home, tmp_path,
                                                                       tmp_path_factory, capsys):
    page = tmp_path / "weights.h5"
    page.write_text("<html>not found</html>")
    with pytest.raises(WeightsError, match="not a weight file"):
        import_weights(str(page), "mobilenetv2", MOBILENET_IMAGE_SIZE)
    with pytest.raises(WeightsError, match="is not a file"):
        import_weights(str(tmp_path / "nothing.h5"), "mobilenetv2", MOBILENET_IMAGE_SIZE)
    assert fitstudio.main(["import-weights", str(page), "--model", "mobilenetv2"]) == 2
    assert "not a weight file" in capsys.readouterr().err
    assert cache_contents(keras_home) == []
    mine = tmp_path / "downloaded by hand.h5"
    shutil.copyfile(backbone_weight_file(tmp_path_factory), mine)
    target = import_weights(str(mine), "mobilenetv2", MOBILENET_IMAGE_SIZE)
    assert target == os.path.join(keras_home, FILE_NAME)
    assert cache_contents(keras_home) == [FILE_NAME, FILE_NAME + IMPORT_RECORD_SUFFIX]
    assert obtain_weights("mobilenetv2", MOBILENET_IMAGE_SIZE).origin == "cache"


def test_a_damaged_cached_file_falls_back_to_random_weights(keras_home):
    os.makedirs(keras_home)
    with open(os.path.join(keras_home, FILE_NAME), "wb") as handle:
        handle.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # the signature, then nothing
    built = build_model("mobilenetv2", 2, MOBILENET_IMAGE_SIZE)
    assert built.pretrained is False and "does not load" in built.note and FILE_NAME in built.note


def test_stop_during_the_download_ends_the_run_before_training(keras_home, mirror, tmp_path):
    train_dir = make_class_folders(str(tmp_path / "train"), {"blue": 2, "red": 2}, size=MOBILENET_IMAGE_SIZE)
    config = TrainingConfig(
        train_dir=train_dir, val_dir=train_dir, model="mobilenetv2", image_size=MOBILENET_IMAGE_SIZE,
        epochs=1, weights_url=mirror.url("stall"), out_dir=str(tmp_path / "runs"),
    )
    cancel = threading.Event()

    def stop_when_the_download_starts(event):
        if isinstance(event, DownloadProgress) and not event.done:
            cancel.set()

    result = train(config, stop_when_the_download_starts, cancel)
    assert result.status == "cancelled" and result.epochs_completed == 0
    assert not os.path.exists(os.path.join(result.run_dir, "last.keras"))
    assert cache_contents(keras_home) == []


def test_a_cache_folder_that_cannot_be_made_falls_back_with_a_clear_message(tmp_path, monkeypatch, mirror):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("KERAS_HOME", str(blocker / "keras"))  # its folder would have to be inside a file
    monkeypatch.setenv(OFFLINE_ENV, "0")
    weights = obtain_weights("mobilenetv2", MOBILENET_IMAGE_SIZE, mirror.url("good"))
    assert weights.path is None and weights.problem.startswith("could not write")


# --- the hash a file should have ---------------------------------------------------------------------


def file_hash(path, algorithm="sha256"):
    with open(path, "rb") as handle:
        return hashlib.new(algorithm, handle.read()).hexdigest()


def test_the_published_hashes_are_the_ones_keras_passes_to_get_file():
    from keras.src.applications import efficientnet, mobilenet_v2

    keras_gives = {"efficientnetb0_notop.h5": efficientnet.WEIGHTS_HASHES["b0"][1]}  # include_top=False
    assert keras_gives == KERAS_PUBLISHED_HASHES
    # Keras fetches MobileNetV2's files without a hash; should it start to, this fails as a reminder.
    assert "file_hash" not in inspect.getsource(mobilenet_v2)


def test_a_mirror_file_with_the_sha256_named_in_the_environment_is_kept(keras_home, mirror, monkeypatch):
    served = os.path.join(mirror.folder, FILE_NAME)
    monkeypatch.setenv(WEIGHTS_SHA256_ENV, file_hash(served).upper())  # as sha256sum prints it, or not
    weights = obtain_weights("mobilenetv2", MOBILENET_IMAGE_SIZE, mirror.url("good"))
    assert weights.origin == "download" and weights.problem == ""
    assert weights.sha256 == file_hash(served) == weights_sha256(weights.path)
    assert WEIGHTS_SHA256_ENV in weights.verified
    again = obtain_weights("mobilenetv2", MOBILENET_IMAGE_SIZE, mirror.url("good"))
    assert again.origin == "cache" and again.sha256 == weights.sha256 and len(mirror.requests) == 1


def test_a_download_with_another_sha256_is_refused_with_both_and_the_run_starts_from_random(
        keras_home, mirror, monkeypatch):
    served = os.path.join(mirror.folder, FILE_NAME)
    wrong = "0123456789abcdef" * 4
    monkeypatch.setenv(WEIGHTS_SHA256_ENV, wrong)
    built = build_model("mobilenetv2", 2, MOBILENET_IMAGE_SIZE, weights_url=mirror.url("good"))
    assert built.pretrained is False and built.weights.path is None
    problem = built.weights.problem
    assert wrong in problem and file_hash(served) in problem and "was not kept" in problem
    assert problem in built.note and "random weights" in built.note
    assert cache_contents(keras_home) == []  # the refused file is gone, no partial file either


def test_a_sha256_in_the_environment_that_is_not_one_is_refused_before_downloading(keras_home, mirror,
                                                                                   monkeypatch):
    monkeypatch.setenv(WEIGHTS_SHA256_ENV, "d41d8cd98f00b204e9800998ecf8427e")  # an MD5
    weights = obtain_weights("mobilenetv2", MOBILENET_IMAGE_SIZE, mirror.url("good"))
    assert weights.path is None and "is not a SHA-256" in weights.problem
    assert mirror.requests == [] and cache_contents(keras_home) == []


def test_a_download_is_checked_against_the_hash_keras_publishes(keras_home, mirror, monkeypatch):
    served = os.path.join(mirror.folder, FILE_NAME)
    # MobileNetV2 has no published hash (see above), so the table gets one for this test, an MD5 as
    # Keras publishes EfficientNetB0's.
    monkeypatch.setitem(KERAS_PUBLISHED_HASHES, FILE_NAME, "f" * 32)
    refused = obtain_weights("mobilenetv2", MOBILENET_IMAGE_SIZE, mirror.url("good"))
    assert refused.path is None and cache_contents(keras_home) == []
    assert "f" * 32 in refused.problem and file_hash(served, "md5") in refused.problem
    assert file_hash(served) in refused.problem  # the SHA-256 too
    monkeypatch.setitem(KERAS_PUBLISHED_HASHES, FILE_NAME, file_hash(served, "md5"))
    kept = obtain_weights("mobilenetv2", MOBILENET_IMAGE_SIZE, mirror.url("good"))
    assert kept.origin == "download" and kept.verified == "MD5 matches the one Keras gives"
    assert kept.sha256 == file_hash(served)


def test_a_cached_file_with_the_wrong_hash_is_fetched_again(keras_home, mirror, monkeypatch):
    served = os.path.join(mirror.folder, FILE_NAME)
    monkeypatch.setitem(KERAS_PUBLISHED_HASHES, FILE_NAME, file_hash(served))
    os.makedirs(keras_home)
    cached = os.path.join(keras_home, FILE_NAME)
    with open(served, "rb") as source, open(cached, "wb") as swapped:
        swapped.write(source.read() + b"changed")  # still loads, but is not the file Keras gives
    monkeypatch.setenv(OFFLINE_ENV, "1")
    offline = obtain_weights("mobilenetv2", MOBILENET_IMAGE_SIZE, mirror.url("good"))
    assert offline.path is None
    assert file_hash(cached) in offline.problem and file_hash(served) in offline.problem
    assert mirror.requests == []
    monkeypatch.setenv(OFFLINE_ENV, "0")
    online = obtain_weights("mobilenetv2", MOBILENET_IMAGE_SIZE, mirror.url("good"))
    assert online.origin == "download" and file_hash(cached) == file_hash(served) == online.sha256


def test_an_imported_file_is_used_whatever_its_hash(keras_home, tmp_path_factory, monkeypatch, mirror):
    mine = backbone_weight_file(tmp_path_factory)
    monkeypatch.setitem(KERAS_PUBLISHED_HASHES, FILE_NAME, "0" * 64)  # not the user's file
    import_weights(mine, "mobilenetv2", MOBILENET_IMAGE_SIZE)
    weights = obtain_weights("mobilenetv2", MOBILENET_IMAGE_SIZE, mirror.url("good"))
    assert weights.origin == "cache" and weights.sha256 == file_hash(mine)
    assert weights.verified.startswith("imported by the user from " + mine)
    assert mirror.requests == []  # not replaced by a download
    with open(os.path.join(keras_home, FILE_NAME), "ab") as handle:
        handle.write(b"changed since")  # the record names the imported file's hash, not this one's
    monkeypatch.setenv(OFFLINE_ENV, "1")
    changed = obtain_weights("mobilenetv2", MOBILENET_IMAGE_SIZE, mirror.url("good"))
    assert changed.path is None and "0" * 64 in changed.problem
