"""Training through the window: a fast fake engine for the flows, and one real run on a tiny dataset."""

from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import Qt

from core.config import TrainingConfig
from gui.worker import running_threads


def tiny_config(tmp_path, tiny_dataset, **changes) -> TrainingConfig:
    train, val = tiny_dataset
    config = TrainingConfig(train_dir=train, val_dir=val, epochs=3, batch_size=4, image_size=16,
                            out_dir=str(tmp_path / "runs"))
    return config.replace(**changes)


def test_fake_run_fills_the_plots_and_locks_the_settings(make_window, qtbot, tmp_path, tiny_dataset,
                                                         fake_engine):
    engine = fake_engine(steps=6)
    window = make_window(train_fn=engine, config=tiny_config(tmp_path, tiny_dataset, epochs=4))
    page = window.training
    locked = []
    page.worker_started = page.running_changed.connect(
        lambda running: locked.append((running, page.settings.isEnabled(), page.data.isEnabled(),
                                       page.train_button.isEnabled(), page.stop_button.isEnabled()))
    )
    with qtbot.waitSignal(page.idle, timeout=10_000):
        qtbot.mouseClick(page.train_button, Qt.MouseButton.LeftButton)
    assert locked[0] == (True, False, False, False, True)
    assert locked[-1] == (False, True, True, True, False)
    assert engine.threads and engine.threads[0] != "MainThread"  # the engine ran on the worker thread
    assert engine.configs[0].out_dir == str(tmp_path / "runs")
    page.plots.redraw()
    assert page.plots.point_counts() == {"batch": 24, "train_epoch": 4, "val_epoch": 4}
    x = page.plots.plots["loss"].batch_raw.getData()[0]
    assert x[0] == 1 / 6 and x[-1] == 4.0  # fractional epochs
    assert page.plots.best_epoch == 3
    assert page.summary.isVisible() and "Training finished" in page.summary.title.text()
    assert "Run folder" in page.log.text() and "Skipped broken.jpg" in page.log.text()
    assert "Epoch 4 of 4" in page.run_status.epoch_label.text()
    assert "elapsed" in page.run_status.time_label.text()
    opened = []
    page.open_folder = opened.append
    qtbot.mouseClick(page.summary.open_button, Qt.MouseButton.LeftButton)
    assert opened == [os.path.join(str(tmp_path / "runs"), "fake-run")]


def test_a_burst_of_thousands_of_batches_reaches_the_plots_whole_and_in_order(make_window, qtbot, tmp_path,
                                                                              tiny_dataset, fake_engine):
    engine = fake_engine(steps=3000)
    window = make_window(train_fn=engine, config=tiny_config(tmp_path, tiny_dataset, epochs=2))
    page = window.training
    with qtbot.waitSignal(page.idle, timeout=30_000):
        page.start_training()
    page.plots.redraw()
    assert page.plots.point_counts() == {"batch": 6000, "train_epoch": 2, "val_epoch": 2}
    x = page.plots.batch["loss"].x  # every point: the curve itself draws a downsampled copy
    assert np.allclose(x, (np.arange(6000) + 1) / 3000) and (np.diff(x) > 0).all()
    assert page.run_status.progress.value() == 3000 and "Epoch 2 of 2" in page.run_status.epoch_label.text()


def test_stop_ends_a_fake_run_and_keeps_it(make_window, qtbot, tmp_path, tiny_dataset, fake_engine):
    engine = fake_engine(steps=1000, batch_delay=0.01)
    window = make_window(train_fn=engine, config=tiny_config(tmp_path, tiny_dataset, epochs=50))
    page = window.training
    page.start_training()
    qtbot.waitUntil(lambda: page.plots.point_counts()["batch"] > 3, timeout=10_000)
    with qtbot.waitSignal(page.idle, timeout=1_000):
        qtbot.mouseClick(page.stop_button, Qt.MouseButton.LeftButton)
        assert not page.stop_button.isEnabled()
    assert page.last_result.status == "cancelled"
    assert "Training stopped" in page.summary.title.text()
    assert page.train_button.isEnabled()
    assert engine.batches_run < 1000


def test_engine_failure_shows_the_error_and_reenables_train(make_window, qtbot, tmp_path, tiny_dataset,
                                                           fake_engine):
    config = tiny_config(tmp_path, tiny_dataset)
    window = make_window(train_fn=fake_engine(steps=3, fail="run"), config=config)
    page = window.training
    errors = []
    page.show_error = lambda title, message, details="", **_: errors.append((title, message, details))
    with qtbot.waitSignal(page.idle, timeout=10_000):
        page.start_training()
    assert errors and "Out of memory" in errors[0][1] and "ResourceExhaustedError" in errors[0][2]
    assert any(level == "error" and "Out of memory" in text for level, text in page.log.lines)
    assert "Training failed" in page.summary.title.text()
    assert page.train_button.isEnabled() and page.settings.isEnabled()
    # the window is usable for the next run
    page.train_fn = fake_engine(steps=2)
    with qtbot.waitSignal(page.idle, timeout=10_000):
        page.start_training()
    assert page.last_result.status == "completed"


def test_a_run_that_cannot_start_shows_why(make_window, qtbot, tmp_path, tiny_dataset, fake_engine):
    window = make_window(train_fn=fake_engine(fail="start"), config=tiny_config(tmp_path, tiny_dataset))
    page = window.training
    errors = []
    page.show_error = lambda title, message, details="", **_: errors.append((title, message))
    with qtbot.waitSignal(page.idle, timeout=10_000):
        page.start_training()
    assert errors[0][0] == "Training could not start" and "no class subfolders" in errors[0][1]
    assert page.train_button.isEnabled()


def test_the_default_error_dialog_does_not_block(make_window, qtbot):
    window = make_window()
    window.training.show_error("Training failed", "Out of memory", "details")
    box = window.training._error_box
    assert box.isVisible() and box.text() == "Out of memory"
    box.close()


def test_closing_during_training_asks_then_stops_and_waits(make_window, qtbot, tmp_path, tiny_dataset,
                                                          fake_engine):
    engine = fake_engine(steps=1000, batch_delay=0.01)
    window = make_window(train_fn=engine, config=tiny_config(tmp_path, tiny_dataset, epochs=50))
    page = window.training
    asked = []
    window.confirm_close_during_training = lambda: asked.append(True) or False
    page.start_training()
    qtbot.waitUntil(lambda: page.plots.point_counts()["batch"] > 0, timeout=10_000)
    window.close()
    assert asked and window.isVisible() and page.is_running  # "No": keeps training

    window.confirm_close_during_training = lambda: asked.append(True) or True
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5_000)
    # Only reads of the disk (the Runs tab lists the run that just ended) may still be finishing.
    assert not page.is_running
    assert {thread.objectName() for thread in running_threads()} <= {"FitStudio runs index"}
    assert page.last_result.status == "cancelled"


def test_real_training_through_the_window(make_window, qtbot, tmp_path, tiny_dataset, screenshot):
    """The real engine on 16x16 images: 2 epochs of batch 4, then a stop that ends a long run."""
    from core.training.device import describe_compute_device

    # No device probe: the device shown can only come from the engine's own report of the run.
    window = make_window(config=tiny_config(tmp_path, tiny_dataset, epochs=2), device_fn=None)
    page = window.training
    assert window.device_label.text() == "Compute device: detecting…"
    assert page.train_button.isEnabled()
    with qtbot.waitSignal(page.idle, timeout=120_000):
        qtbot.mouseClick(page.train_button, Qt.MouseButton.LeftButton)
    result = page.last_result
    assert result is not None and result.status == "completed", page.log.text()
    assert os.path.isdir(result.run_dir) and os.path.isfile(os.path.join(result.run_dir, "model.keras"))
    page.plots.redraw()
    counts = page.plots.point_counts()
    steps = 6  # 24 training images in batches of 4
    assert counts == {"batch": 2 * steps, "train_epoch": 2, "val_epoch": 2}
    device = describe_compute_device()
    assert window.device_label.text() == f"Compute device: {device}"
    assert f"Training on {device}:" in page.log.text()
    assert "Training finished" in page.summary.title.text()
    qtbot.wait(100)
    path = screenshot(window, "window_after_training.png")
    assert os.path.getsize(path) > 10_000

    # Stop during a longer real run ends it and keeps the partial run folder.
    page.settings.epochs.setValue(200)
    page.start_training()
    qtbot.waitUntil(lambda: page.plots.point_counts()["batch"] >= 3, timeout=60_000)
    with qtbot.waitSignal(page.idle, timeout=30_000):
        page.stop_training()
    # Cancelled, not completed: the 200 epochs did not run out. That the engine stops within one
    # batch is tests/core/test_training.py's check; a wall-clock bound here measured the load.
    assert page.last_result.status == "cancelled"
    assert os.path.isdir(page.last_result.run_dir)


def test_empty_plots_span_the_epochs_to_train_in_whole_epochs(make_window, qtbot):
    window = make_window()
    page = window.training
    page.settings.epochs.setValue(8)
    low, high = page.plots.plots["loss"].getViewBox().viewRange()[0]
    assert low < 0 and 8 < high < 9
    axis = page.plots.plots["loss"].getAxis("bottom")
    ticks = [value for _, values in axis.tickValues(low, high, axis.width()) for value in values]
    assert ticks and all(value == int(value) for value in ticks)
