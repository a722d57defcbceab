"""Pretrained weights in the window: download progress in the status bar, Stop cancelling a download,
and "Import weights…" checking a file on a worker thread before it goes into the Keras cache."""

from __future__ import annotations

import os
import shutil

import pytest
from PySide6.QtCore import Qt
from weight_files import MOBILENET_IMAGE_SIZE, WeightsMirror, backbone_weight_file

from core.config import TrainingConfig
from core.events import Message, RunFinished, RunResult
from core.formatting import format_size
from core.modeling.weights import (
    IMPORT_RECORD_SUFFIX,
    OFFLINE_ENV,
    WEIGHTS_URL_ENV,
    obtain_weights,
    weights_cache_dir,
)

FILE_NAME = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv(OFFLINE_ENV, "0")
    monkeypatch.delenv(WEIGHTS_URL_ENV, raising=False)
    return weights_cache_dir()


@pytest.fixture
def mirror(tmp_path, tmp_path_factory):
    folder = tmp_path / "mirror"
    folder.mkdir()
    shutil.copyfile(backbone_weight_file(tmp_path_factory), folder / FILE_NAME)
    with WeightsMirror(str(folder)) as server:
        yield server


def downloading_engine(stall_timeout: float):
    """Stands in for train(): fetches the weights as a run does, with the real download code, then ends."""

    def run(config: TrainingConfig, on_event, cancel) -> RunResult:
        weights = obtain_weights(config.model, config.image_size, config.weights_url, on_event, cancel,
                                 timeout=stall_timeout)
        on_event(Message(weights.problem or f"weights in {weights.path}"))
        status = "cancelled" if cancel.is_set() else "completed"
        result = RunResult(config.out_dir, status, 0, None, None, None, {}, 0.1, weights.problem)
        on_event(RunFinished(result))
        return result

    return run


def mobilenet_config(tiny_dataset, tmp_path, weights_url: str) -> TrainingConfig:
    train_dir, val_dir = tiny_dataset
    return TrainingConfig(train_dir=train_dir, val_dir=val_dir, model="mobilenetv2",
                          image_size=MOBILENET_IMAGE_SIZE, out_dir=str(tmp_path / "runs"),
                          weights_url=weights_url)


def test_the_status_bar_shows_download_progress_with_the_size(make_window, qtbot, keras_home, mirror,
                                                             tiny_dataset, tmp_path):
    window = make_window(train_fn=downloading_engine(10),
                         config=mobilenet_config(tiny_dataset, tmp_path, mirror.url("good")))
    page = window.training
    shown = []
    show_download = page.run_status.show_download

    def record(received, total):
        show_download(received, total)
        bar = page.run_status.progress
        shown.append((received, total, bar.format(), bar.isVisible()))

    page.run_status.show_download = record
    with qtbot.waitSignal(page.idle, timeout=60_000):
        page.start_training()
    size = os.path.getsize(os.path.join(mirror.folder, FILE_NAME))
    assert shown and shown[0][:2] == (0, size) and all(visible for *_, visible in shown)
    assert shown[0][2] == f"0 bytes of {format_size(size)}"
    assert f"Downloading {FILE_NAME} ({format_size(size)})" in page.log.text()
    assert os.listdir(keras_home) == [FILE_NAME]


def test_stop_cancels_a_stalled_download(make_window, qtbot, keras_home, mirror, tiny_dataset, tmp_path):
    window = make_window(train_fn=downloading_engine(60),
                         config=mobilenet_config(tiny_dataset, tmp_path, mirror.url("stall")))
    page = window.training
    page.start_training()
    qtbot.waitUntil(lambda: page.run_status.epoch_label.text() == "Downloading weights", timeout=10_000)
    assert page.run_status.progress.isVisible()
    with qtbot.waitSignal(page.idle, timeout=5_000):  # far less than the 60 s the server would stall
        qtbot.mouseClick(page.stop_button, Qt.MouseButton.LeftButton)
    assert "the download was cancelled" in page.log.text()
    assert not os.path.isdir(keras_home) or os.listdir(keras_home) == []


def test_import_weights_checks_the_file_on_a_worker_thread(make_window, qtbot, keras_home, tiny_dataset,
                                                           tmp_path, tmp_path_factory):
    window = make_window(config=mobilenet_config(tiny_dataset, tmp_path, ""))
    page = window.training
    errors, asked = [], []
    page.show_error = lambda title, message, details="", **_: errors.append((title, message))
    page_html = tmp_path / "weights.h5"
    page_html.write_text("<html>Sign in</html>")
    choices = [str(page_html), backbone_weight_file(tmp_path_factory)]
    page.choose_weights_file = lambda model, expected: asked.append((model, expected)) or choices.pop(0)
    assert page.settings.import_weights_button.isEnabled()
    qtbot.mouseClick(page.settings.import_weights_button, Qt.MouseButton.LeftButton)
    assert not page.train_button.isEnabled()  # no run starts while the cache is being written
    qtbot.waitUntil(lambda: not page.importing_weights, timeout=30_000)
    assert errors and errors[0][0] == "These weights cannot be used" and "not a weight file" in errors[0][1]
    assert asked == [("mobilenetv2", FILE_NAME)]
    qtbot.mouseClick(page.settings.import_weights_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.importing_weights, timeout=60_000)
    assert len(errors) == 1
    assert sorted(os.listdir(keras_home)) == [FILE_NAME, FILE_NAME + IMPORT_RECORD_SUFFIX]
    assert f"as {os.path.join(keras_home, FILE_NAME)}" in page.log.text()
    assert page.train_button.isEnabled() and page.settings.import_weights_button.isEnabled()


def test_weights_settings_apply_to_pretrained_models_only(make_window, tiny_dataset, tmp_path):
    window = make_window(config=mobilenet_config(tiny_dataset, tmp_path, "https://mirror.example/k/"))
    settings = window.training.settings
    assert settings.weights_url.text() == "https://mirror.example/k/"
    assert settings.weights_url.isEnabled() and settings.import_weights_button.isEnabled()
    settings.model.setCurrentIndex(settings.model.findData("small-cnn"))
    assert not settings.weights_url.isEnabled() and not settings.import_weights_button.isEnabled()
    assert window.training.import_weights() is False
