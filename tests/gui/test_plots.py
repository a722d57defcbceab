"""Live plots: fractional epochs, smoothing, best-epoch marker, read-out, and throttled redraws."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.events import BatchEnd
from gui.plots import MAX_REDRAWS_PER_SECOND, EmaSmoother, EpochAxis, LivePlots, SeriesBuffer, steady_range


def batches(epoch: int, steps: int, loss=lambda step: 0.5, accuracy=lambda step: 0.5) -> list[BatchEnd]:
    """One epoch's BatchEnd events, as the worker hands them to the plots."""
    return [BatchEnd(epoch, step, steps, loss(step), accuracy(step), 100.0) for step in range(steps)]


def test_series_buffer_grows_by_doubling():
    buffer = SeriesBuffer(capacity=4)
    for i in range(10):
        buffer.append(i, 2 * i)
    assert len(buffer) == 10 and buffer.x.dtype == np.float64
    assert list(buffer.y) == [2 * i for i in range(10)]


def test_ema_matches_tensorboard_and_skips_nan():
    smoother = EmaSmoother(0.5)
    assert smoother.add(1.0) == 1.0  # debiased: the first value is itself
    assert smoother.add(3.0) == (0.25 * 1 + 0.5 * 3) / 0.75
    before = smoother.add(float("nan"))
    assert math.isfinite(before)
    assert list(EmaSmoother(0.0).smooth(np.array([1.0, 2.0, 3.0]))) == [1.0, 2.0, 3.0]


def test_batch_and_epoch_points_and_best_marker(qtbot):
    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.reset(epochs=2)
    for epoch in range(2):
        plots.add_batches(batches(epoch, 4, loss=lambda step: 1 / (step + 1), accuracy=lambda step: step / 4))
        logs = {"loss": 0.5, "accuracy": 0.6, "val_loss": 0.7 - epoch / 10, "val_accuracy": 0.5}
        plots.add_epoch(epoch, logs, best_epoch=epoch)
    plots.redraw()
    loss = plots.plots["loss"]
    x, _ = loss.batch_raw.getData()
    assert list(x) == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    assert list(loss.val_epoch.getData()[0]) == [1.0, 2.0]
    best_x, best_y = loss.best.getData()
    assert list(best_x) == [2.0] and math.isclose(best_y[0], 0.6)
    text = plots.show_values_at(1.0)
    assert "epoch 1.00" in text and "val@1 0.7" in text


def test_smoothing_slider_changes_the_smoothed_curve_only(qtbot):
    plots = LivePlots()
    qtbot.addWidget(plots)
    values = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    plots.add_batches(batches(0, len(values), loss=values.__getitem__, accuracy=values.__getitem__))
    plots.smoothing.setValue(0)
    plots.redraw()
    assert not len(plots.plots["loss"].batch_smooth.getData()[0] or [])
    plots.smoothing.setValue(90)
    plots.redraw()
    smoothed = plots.plots["loss"].batch_smooth.getData()[1]
    assert len(smoothed) == len(values) and np.ptp(smoothed[2:]) < 0.5
    assert list(plots.plots["loss"].batch_raw.getData()[1]) == values


def test_100k_batch_points_redraw_on_the_timer_and_paint_downsampled(qtbot):
    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.resize(1000, 500)
    plots.show()
    plots.reset(epochs=100)
    start_count = plots.redraw_count
    steps, groups = 1000, 0
    for epoch in range(100):
        events = batches(epoch, steps, loss=lambda step, e=epoch: 1.0 / (1 + e + step / steps))
        for first in range(0, steps, 50):  # in groups, as the worker sends them
            plots.add_batches(events[first:first + 50])
            groups += 1
        assert plots.redraw_count == start_count + epoch  # adding data never redraws by itself
        qtbot.waitUntil(lambda e=epoch: plots.redraw_count == start_count + e + 1, timeout=30_000)
    redraws = plots.redraw_count - start_count
    assert plots.point_counts()["batch"] == 100_000
    assert redraws == 100 and groups == 2_000  # one redraw per timer tick with new data, not per group
    qtbot.wait(3 * 1000 // MAX_REDRAWS_PER_SECOND)
    assert plots.redraw_count - start_count == 100  # nothing new: the timer does not redraw
    plots.plots["loss"].grab()  # paint it, with downsampling and clipping to the view
    shown_x, _ = plots.plots["loss"].batch_raw.getData()
    assert 0 < len(shown_x) < 100_000 / 10  # painted from far fewer points than it holds


def test_history_of_a_resumed_run_markers_and_continuation(qtbot):
    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.reset(epochs=6)
    keys = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")
    history = [dict(zip(keys, row, strict=True)) for row in ((0, 1.0, 0.4, 1.1, 0.3, 1e-3),
                                                             (1, 0.8, 0.5, 0.9, 0.4, 1e-3),
                                                             (2, 0.7, 0.6, 0.95, 0.45, 5e-4))]
    plots.load_history(history)
    plots.mark_resume(3)
    plots.redraw()
    loss = plots.plots["loss"]
    assert list(loss.val_epoch.getData()[0]) == [1.0, 2.0, 3.0]
    assert loss.batch_raw.getData()[0] is None or not len(loss.batch_raw.getData()[0])  # no batches recorded
    assert plots.best_epoch == 1 and list(loss.best.getData()[0]) == [2.0]
    # Epoch 2 trained at the lower rate: the reduction happened at the end of epoch 1 (x = 2).
    assert plots.lr_changes == [(2.0, 1e-3, 5e-4)] and plots.marker_texts("lr") == ["lr → 0.0005"]
    assert plots.marker_texts("resume") == ["resumed"] and plots.resumed_at == 3.0
    # The live message for the same reduction does not add a second marker.
    plots.mark_lr_change(1, 1e-3, 5e-4)
    assert len(plots.plots["accuracy"].markers) == 2
    # The batches continue after the resume.
    plots.add_batches(batches(3, 4, loss=lambda step: 0.6, accuracy=lambda step: 0.7))
    plots.add_epoch(3, {"loss": 0.6, "accuracy": 0.7, "val_loss": 0.85, "val_accuracy": 0.5,
                        "learning_rate": 5e-4}, best_epoch=3)
    plots.mark_early_stop(3)
    plots.mark_early_stop(3)
    plots.redraw()
    assert list(loss.batch_raw.getData()[0]) == [3.25, 3.5, 3.75, 4.0]
    assert list(loss.val_epoch.getData()[0]) == [1.0, 2.0, 3.0, 4.0]
    assert plots.early_stop_x == 4.0 and plots.marker_texts("early_stop") == ["early stop"]
    assert "lr@4 0.0005" in plots.show_values_at(4.0)
    plots.reset(epochs=3)
    assert plots.marker_texts() == [] and not plots.plots["accuracy"].markers
    assert plots.lr_changes == [] and plots.early_stop_x is None and plots.resumed_at is None


def test_groups_of_batches_keep_every_point_in_order_and_smooth_across_groups(qtbot):
    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.set_smoothing(0.5)
    events = batches(0, 10, loss=lambda step: float(step % 2), accuracy=lambda step: step / 10)
    for group in (events[:1], events[1:7], events[7:]):
        plots.add_batches(group)
    plots.redraw()
    x, loss = plots.plots["loss"].batch_raw.getData()
    assert list(x) == [(step + 1) / 10 for step in range(10)]
    assert list(loss) == [float(step % 2) for step in range(10)]
    expected = EmaSmoother(0.5).smooth(loss)
    assert np.allclose(plots.plots["loss"].batch_smooth.getData()[1], expected)


def test_the_epoch_axis_shows_whole_epochs_before_and_during_a_run(qtbot):
    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.resize(1000, 400)
    plots.show()
    axis = plots.plots["loss"].getAxis("bottom")
    assert isinstance(axis, EpochAxis)
    for low, high in ((0.0, 1.0), (-0.2, 5.2), (0.0, 3.0), (0.0, 37.0)):
        ticks = [value for level in axis.tickValues(low, high, 400) for value in level[1]]
        assert ticks and all(value == int(value) for value in ticks), (low, high, ticks)
    assert axis.tickValues(2.3, 2.9, 400)[0][1], "zoomed inside one epoch, fractional ticks remain"
    plots.show_epochs(5)
    low, high = plots.plots["accuracy"].getViewBox().viewRange()[0]
    assert low < 0 < 5 < high < 5.5  # the accuracy plot shares the loss plot's x axis


def test_the_loss_axis_follows_the_data_in_steps(qtbot):
    assert steady_range(0.5, 1.5, None) == pytest.approx((0.4, 1.6))  # 10% headroom
    assert steady_range(0.45, 1.5, (0.4, 1.6)) == (0.4, 1.6)  # inside: unchanged
    assert steady_range(0.3, 1.5, (0.4, 1.6)) == pytest.approx((0.18, 1.62))  # left it: a new range
    assert steady_range(0.9, 1.0, (0.4, 1.6)) == pytest.approx((0.89, 1.01))  # fills too little of it
    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.reset(epochs=2)
    plots.add_batches(batches(0, 10, loss=lambda step: 2.0 - 0.1 * step))
    plots.add_batches([BatchEnd(0, 10, 20, math.nan, 0.5, 1.0)])  # a NaN loss does not break the axis
    plots.redraw()
    low, high = plots.plots["loss"].getViewBox().viewRange()[1]
    assert low <= 1.1 and high >= 2.0
