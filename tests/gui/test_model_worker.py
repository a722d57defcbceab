"""The model thread without Keras: jobs in order on one thread, errors and cancellation, stopping;
and the confusion heatmap's geometry and colours."""

from __future__ import annotations

import threading
import time

import numpy as np
from PySide6.QtCore import QPoint, Qt

from core.errors import FitStudioError
from gui.confusion_heatmap import ConfusionHeatmap
from gui.model_worker import ModelService
from gui.worker import running_threads


class FakeLoaded:
    def __init__(self, source):
        self.model = None
        self.class_names = ["a", "b"]
        self.image_size = 32
        self.resize_mode = "crop"
        self.model_path = f"{source}/model.keras"
        self.run_dir = source
        self.labels_known = True
        self.name = "fake"


def fake_load(source: str):
    if "bad" in source:
        raise FitStudioError(f"{source} is not a model.")
    return FakeLoaded(source)


def test_jobs_run_in_order_on_one_thread_that_owns_the_model(qtbot, tmp_path):
    service = ModelService(load_fn=fake_load)
    try:
        threads, results, busy = [], [], []
        service.busy_changed.connect(busy.append)
        with qtbot.waitSignal(service.loaded, timeout=5_000) as blocker:
            service.load(str(tmp_path))
        info = blocker.args[0]
        assert info.class_names == ("a", "b") and info.image_size == 32 and info.resize_mode == "crop"
        for i in range(3):
            service.submit(
                "job",
                lambda context, i=i: (
                    threads.append(threading.current_thread().ident),
                    context.model.image_size + i,
                )[1],
                on_result=results.append,
            )
        qtbot.waitUntil(lambda: not service.busy, timeout=5_000)
        assert results == [32, 33, 34]
        assert len(set(threads)) == 1 and threads[0] != threading.main_thread().ident
        assert busy[0] is True and busy[-1] is False
    finally:
        with qtbot.waitSignal(service.stopped, timeout=5_000):
            service.stop()
    assert not running_threads() and not service.has_thread


def test_errors_and_cancellation_reach_the_gui_thread(qtbot, tmp_path):
    service = ModelService(load_fn=fake_load)
    try:
        with qtbot.waitSignal(service.load_failed, timeout=5_000) as blocker:
            service.load(str(tmp_path / "bad"))
        assert "is not a model" in blocker.args[1] and service.info is None
        errors = []
        service.submit("job", lambda context: context.model, on_error=lambda *args: errors.append(args))
        service.submit("job", lambda context: 1 / 0, on_error=lambda *args: errors.append(args))
        started = threading.Event()

        def slow(context):
            started.set()
            context.cancel.wait(10)
            raise RuntimeError("stopped inside the engine")

        handle = service.submit("slow", slow, on_error=lambda *args: errors.append(args))
        assert service.running("slow") is handle
        assert started.wait(5)
        handle.cancel()
        qtbot.waitUntil(lambda: not service.busy, timeout=5_000)
        assert errors[0] == ("No model is open. Choose a run folder or a .keras file first.", "", False)
        assert errors[1][0] == "ZeroDivisionError: division by zero" and "Traceback" in errors[1][1]
        assert errors[2] == ("Stopped.", "", True)
    finally:
        with qtbot.waitSignal(service.stopped, timeout=5_000):
            service.stop()


def test_stop_cancels_a_running_job_without_blocking_the_gui_thread(qtbot):
    service = ModelService(load_fn=fake_load)
    started, release = threading.Event(), threading.Event()
    errors = []

    def stubborn(context):  # like a TensorFlow Lite conversion: cannot stop before it is done
        started.set()
        release.wait(10)
        if context.cancel.is_set():
            raise RuntimeError("stopped at the next step")

    service.submit("convert", stubborn, on_error=lambda *args: errors.append(args))
    assert started.wait(5)
    began = time.monotonic()
    service.stop()
    assert time.monotonic() - began < 0.1 and service.has_thread  # returned at once; the job still runs
    with qtbot.waitSignal(service.stopped, timeout=5_000):
        release.set()
    assert not running_threads() and not service.has_thread
    assert errors == [("Stopped.", "", True)]


def test_stop_without_a_thread_says_stopped_at_once(qtbot):
    service = ModelService(load_fn=fake_load)
    with qtbot.waitSignal(service.stopped, timeout=1_000):
        service.stop()


def test_heatmap_cells_colours_and_clicks(qtbot):
    heatmap = ConfusionHeatmap()
    qtbot.addWidget(heatmap)
    heatmap.resize(500, 420)
    heatmap.show()
    matrix = np.array([[5, 1, 0], [0, 6, 0], [2, 0, 4]])
    heatmap.set_matrix(matrix, ["cat", "dog", "a very long class name"])
    clicked = []
    heatmap.cell_clicked.connect(lambda t, p: clicked.append((t, p)))
    for t in range(3):
        for p in range(3):
            assert heatmap.cell_at(heatmap.cell_rect(t, p).center()) == (t, p)
    assert heatmap.cell_at(QPoint(1, 1)) is None
    qtbot.mouseClick(heatmap, Qt.MouseButton.LeftButton, pos=heatmap.cell_rect(2, 0).center())
    assert clicked == [(2, 0)] and heatmap.selected == (2, 0)
    right, wrong, empty = heatmap.cell_colour(1, 1), heatmap.cell_colour(2, 0), heatmap.cell_colour(0, 2)
    assert right.blue() > right.red() and wrong.red() > wrong.blue() and empty.lightness() > 240
    assert heatmap.cell_colour(0, 0).lightness() > heatmap.cell_colour(1, 1).lightness()  # 5/6 vs 6/6
    assert "a very long class name predicted as cat: 2 images (33% of" in heatmap.describe_cell(2, 0)
    assert not heatmap.grab().isNull()
