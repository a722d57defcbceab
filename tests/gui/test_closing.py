"""Closing the window never blocks the GUI thread: a scan is cancelled and not waited for, the model
thread's work (an evaluation, an export) is stopped at its next step before the window closes; and
work waiting for TensorFlow says "Loading TensorFlow…" in the status bar."""

from __future__ import annotations

import os
import threading
import types

import pytest
from conftest import make_class_folders
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from trained_model import tiny_run

from core import tf_runtime
from core.data.dataset import inspect
from gui.main_window import LOADING_TENSORFLOW
from gui.worker import running_threads


class ScanThatWaits:
    """inspect() that, for `slow_folder`, hangs like a slow network drive until told to stop, and then
    still takes until `release` is set to return (a drive slow to answer even a cancelled read)."""

    def __init__(self, slow_folder: str):
        self.slow_folder = slow_folder
        self.entered, self.cancelled, self.release = threading.Event(), threading.Event(), threading.Event()
        self.report = None

    def __call__(self, root, progress=None, cancel=None):
        if root != self.slow_folder:
            return inspect(root, progress=progress, cancel=cancel)
        self.entered.set()
        if cancel.wait(30):
            self.cancelled.set()
        self.release.wait(30)
        self.report = inspect(root, progress=progress, cancel=cancel)
        return self.report


def test_closing_during_a_scan_stops_it_without_waiting(make_window, qtbot, tmp_path):
    folder = make_class_folders(str(tmp_path / "network-drive"), {"a": 3, "b": 3})
    scan = ScanThatWaits(folder)
    window = make_window(inspect_fn=scan)
    window.training.data.train_field.set_path(folder)
    assert scan.entered.wait(5)
    window.close()
    # close() returned while the scan thread is still inside the slow drive: it did not wait for it.
    assert not window.isVisible() and running_threads()
    assert scan.cancelled.wait(30)
    scan.release.set()
    qtbot.waitUntil(lambda: not running_threads(), timeout=30_000)
    assert scan.cancelled.is_set() and scan.report.error == "The scan was stopped."


def test_closing_while_the_model_thread_works_waits_for_it_without_blocking(make_window, qtbot):
    window = make_window()
    started, release, converted = threading.Event(), threading.Event(), threading.Event()

    def conversion(context):  # like a TensorFlow Lite conversion: it cannot stop half-way
        started.set()
        release.wait(30)
        converted.set()
        if context.cancel.is_set():
            raise RuntimeError("stopped at the next step")

    window.models.submit("export", conversion)
    assert started.wait(5)
    window.close()  # ModelService.shutdown() used to block here until the conversion ended
    assert not converted.is_set(), "close() waited for the model thread"
    assert window.isVisible() and window.models.has_thread
    assert window.statusBar().currentMessage() == "Finishing the model's work before closing…"
    qtbot.wait(100)
    assert window.isVisible()  # the window stays responsive while it waits
    release.set()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5_000)
    assert not running_threads() and not window.models.has_thread


def test_closing_during_a_real_export_stops_it_at_its_next_step(make_window, qtbot, tmp_path_factory,
                                                                tmp_path):
    run = tiny_run(tmp_path_factory)
    window = make_window()
    page = window.export
    window.tabs.setCurrentWidget(page)
    with qtbot.waitSignal(window.models.loaded, timeout=60_000):
        page.model_bar.open(run.run_dir)
    out = tmp_path / "exported"
    page.folder.set_path(str(out))
    assert page.export()
    qtbot.waitUntil(lambda: "savedmodel" in page.activity.text(), timeout=60_000)
    window.close()
    assert window.isVisible()  # close() asked the export to stop and returned: the window closes when idle
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=60_000)
    assert page.banner.text() == "The export was stopped."
    written = set(os.listdir(out))
    assert {"model.keras", "labels.txt"} <= written  # finished before the close
    assert not written & {"model.tflite", "model_quant.tflite"}  # never started
    assert not [name for name in written if name.endswith(".partial")]


@pytest.fixture
def slow_tensorflow(monkeypatch):
    """The process's TensorFlow loader, whose import takes until `release` is set. It gives stand-in
    modules: this is about the window; tests/gui/test_app_process.py loads the real TensorFlow."""
    release = threading.Event()

    def import_slowly(name):
        release.wait(10)
        return types.ModuleType(name)

    monkeypatch.setattr(tf_runtime, "_loader", tf_runtime.Loader(("tensorflow", "keras"), import_slowly))
    return release


def test_work_waiting_for_tensorflow_says_so_in_the_status_bar(make_window, qtbot, slow_tensorflow,
                                                               tmp_path, tiny_dataset, fake_engine):
    from core.config import TrainingConfig

    engine = fake_engine(steps=2)

    def train_after_loading(config, on_event, cancel):  # as core.training.driver.train does
        tf_runtime.load_keras()
        return engine(config, on_event, cancel)

    train, val = tiny_dataset
    config = TrainingConfig(train_dir=train, val_dir=val, epochs=1, out_dir=str(tmp_path / "runs"))
    window = make_window(train_fn=train_after_loading, config=config)
    page = window.training
    assert page.start_training()
    loaded = []
    window.models.submit("evaluate", lambda context: tf_runtime.load_keras(), on_result=loaded.append)
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == LOADING_TENSORFLOW, timeout=5_000)
    assert tf_runtime.is_loading()
    qtbot.wait(200)
    assert window.statusBar().currentMessage() == LOADING_TENSORFLOW and not engine.started.is_set()
    busy = QApplication.overrideCursor()
    assert busy is not None and busy.shape() == Qt.CursorShape.BusyCursor  # busy, not hung
    with qtbot.waitSignal(page.idle, timeout=10_000):
        slow_tensorflow.set()
    qtbot.waitUntil(lambda: bool(loaded), timeout=5_000)
    assert QApplication.overrideCursor() is None
    assert page.last_result.status == "completed" and loaded[0].__name__ == "keras"
    assert window.statusBar().currentMessage() == "Training finished."
