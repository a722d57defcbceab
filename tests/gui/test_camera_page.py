"""The Camera tab without a camera: frames pushed into its QVideoSink, as a camera delivers them,
drive collecting (press and hold, number keys, rate, undo, the data panel's counts) and live
prediction (bars, "Why?", frames dropped rather than queued under a slow model)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import COLOURS, make_class_folders
from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtGui import QImage
from PySide6.QtMultimedia import QVideoFrame
from PySide6.QtWidgets import QApplication
from trained_model import tiny_run
from videos import make_video

from gui.camera_page import NO_CAMERA
from gui.camera_source import FrameSource
from gui.live_prediction import LivePredictor
from gui.model_worker import ModelService

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def push(sink, colour, width=64, height=48, deliver=True) -> None:
    """One frame into the sink, as a camera delivers it; with `deliver`, the event loop turns once so
    the source hands it on (it does that on the loop's next turn)."""
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:] = colour
    image = QImage(pixels.data, width, height, width * 3, QImage.Format.Format_RGB888).copy()
    sink.setVideoFrame(QVideoFrame(image))
    if deliver:
        QCoreApplication.processEvents()


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def camera(make_window, tmp_path):
    """The window on a training folder of blue and red, its Camera tab shown."""
    train = make_class_folders(str(tmp_path / "train"), {"blue": 3, "red": 2})
    window = make_window()
    window.training.data.train_field.set_path(train)
    page = window.camera
    window.tabs.setCurrentWidget(page)
    assert page.source is not None, page.multimedia_problem
    return window, page, train


def test_opening_the_window_does_not_load_qtmultimedia():
    code = (
        "import sys\nfrom PySide6.QtWidgets import QApplication\napp = QApplication([])\n"
        "from gui.main_window import MainWindow\nwindow = MainWindow(device_fn=None)\n"
        "assert 'PySide6.QtMultimedia' not in sys.modules, 'QtMultimedia loaded at start-up'\n"
        "window.tabs.setCurrentWidget(window.camera); window.show(); app.processEvents()\n"
        "assert 'PySide6.QtMultimedia' in sys.modules\nprint('ok')\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=os.environ.get("HOME", "/tmp"))
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-2000:]


def test_without_a_camera_the_tab_says_so_and_offers_a_video(camera):
    _window, page, _train = camera
    assert page.source.cameras() == []  # no camera on a test machine
    assert page.source_note.text() == NO_CAMERA
    assert page.video_button.isEnabled() and not page.camera_combo.isEnabled()


def test_holding_a_class_saves_frames_at_the_rate_and_undo_removes_them(camera, qtbot, screenshot):
    window, page, train = camera
    qtbot.waitUntil(lambda: page.capture.class_names == ["blue", "red"], timeout=10_000)
    clock = Clock()
    page.capture.clock = clock
    before = set(os.listdir(os.path.join(train, "red")))
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is page, timeout=5_000)  # not the model's field
    qtbot.keyPress(page, Qt.Key.Key_2)  # red is the second class
    assert page.capture.recording == "red"
    for _ in range(11):  # 1 s of a 10 frames/s camera; the default rate keeps 5 per second
        push(page.source.sink, COLOURS["red"])
        clock.now += 0.1
    assert "red  ·  8" in page._class_buttons["red"].text()
    qtbot.keyRelease(page, Qt.Key.Key_2)
    assert page.capture.recording is None
    saved = set(os.listdir(os.path.join(train, "red"))) - before
    assert len(saved) == 6 and all(name.startswith("red-") and name.endswith(".jpg") for name in saved)
    # the data panel counts again and sees them
    data = window.training.data
    qtbot.waitUntil(lambda: data.reports["train"] is not None and data.reports["train"].counts["red"] == 8,
                    timeout=10_000)
    screenshot(window, "camera_collect.png")

    page.undo_button.click()
    assert set(os.listdir(os.path.join(train, "red"))) == before
    assert "red  ·  2" in page._class_buttons["red"].text() and not page.undo_button.isEnabled()
    qtbot.waitUntil(lambda: data.reports["train"] is not None and data.reports["train"].counts["red"] == 2,
                    timeout=10_000)


def test_the_button_held_with_the_mouse_and_a_new_class(camera, qtbot):
    _window, page, train = camera
    qtbot.waitUntil(lambda: "blue" in page.capture.class_names, timeout=10_000)
    page.new_class.setText("yellow")
    page.add_class_button.click()
    assert os.path.isdir(os.path.join(train, "yellow")) and "yellow" in page._class_buttons
    page.rate_box.setValue(30.0)
    clock = Clock()
    page.capture.clock = clock
    button = page._class_buttons["yellow"]
    button.pressed.emit()
    for _ in range(3):
        push(page.source.sink, COLOURS["yellow"])
        clock.now += 1
    button.released.emit()
    assert len(os.listdir(os.path.join(train, "yellow"))) == 3
    page.new_class.setText("../outside")
    page.add_class_button.click()
    assert "cannot be a class name" in page.banner.text()
    assert not os.path.exists(os.path.join(os.path.dirname(train), "outside"))


def test_the_demo_dataset_is_not_collected_into(make_window):
    window = make_window()  # the default training folder is the bundled demo
    page = window.camera
    assert page.read_only and "demo" in page.folder_label.text()
    assert all(not button.isEnabled() for button in page._class_buttons.values())


def test_live_prediction_shows_smoothed_bars_and_why(camera, qtbot, tmp_path_factory, screenshot):
    window, page, _train = camera
    run = tiny_run(tmp_path_factory)
    with qtbot.waitSignal(window.models.loaded, timeout=60_000):
        window.models.load(run.run_dir)

    def shows(name):
        push(page.source.sink, COLOURS[name])
        return bool(page.top_classes()) and page.top_classes()[0][0] == name

    qtbot.waitUntil(lambda: shows("red"), timeout=60_000)
    assert len(page.top_classes()) == 3 and page.top_classes()[0][1] > 0.5
    qtbot.waitUntil(lambda: shows("blue"), timeout=30_000)  # the smoothing follows a change
    page.why_button.setChecked(True)
    qtbot.waitUntil(lambda: shows("blue") and page.answer.heatmap is not None, timeout=60_000)
    assert page.answer.heatmap.shape == (48, 64) and page.answer.layer is not None
    assert not page.view.pixmap().isNull()
    page._show_rates()
    assert "frames/s shown" in page.rates.text() and "predicted/s" in page.rates.text()
    screenshot(window, "camera_predict.png")


class GatedModel:
    """A model whose every prediction waits until the test opens the gate: a model as slow as the
    test wants, with no timing in it. Its answer is the frame's mean red, green and blue."""

    def __init__(self, gate: threading.Event):
        self.gate = gate
        self.model = None
        self.class_names = ["red", "green", "blue"]
        self.image_size = 8
        self.resize_mode = "stretch"
        self.model_path = "gated/model.keras"
        self.run_dir = None
        self.labels_known = True
        self.name = "gated"

    @property
    def num_classes(self) -> int:
        return 3

    def predict(self, images: np.ndarray) -> np.ndarray:
        self.gate.wait(30)
        means = images.astype(np.float32).mean(axis=(1, 2))
        return means / means.sum(axis=1, keepdims=True)


def test_a_slow_model_gets_the_newest_frame_and_the_rest_are_dropped(qtbot):
    gate = threading.Event()
    service = ModelService(load_fn=lambda source: GatedModel(gate))
    source = FrameSource()
    predictor = LivePredictor(service)
    answers = []
    predictor.answered.connect(lambda answer, frame: answers.append((answer, frame)))
    source.frame.connect(predictor.offer)
    try:
        with qtbot.waitSignal(service.loaded, timeout=10_000):
            service.load("gated")
        busy = []
        service.busy_changed.connect(busy.append)
        colours = [(8 * i, 100, 240 - 5 * i) for i in range(30)]
        for colour in colours:
            push(source.sink, colour)
        assert predictor.offered == 30 and predictor.busy
        assert predictor.dropped == 28  # the first is on the model thread, the 30th waits, the rest are gone
        gate.set()
        qtbot.waitUntil(lambda: predictor.predicted == 2 and not predictor.busy, timeout=30_000)
        assert [tuple(frame[0, 0]) for _, frame in answers] == [colours[0], colours[-1]]
        assert busy == []  # live frames never make the model bars flicker as busy
        smoothed = answers[-1][0].probabilities
        expected = np.mean([np.array(c, np.float32) / sum(c) for c in (colours[0], colours[-1])], axis=0)
        np.testing.assert_allclose(smoothed, expected, atol=1e-3)
    finally:
        gate.set()
        with qtbot.waitSignal(service.stopped, timeout=10_000):
            service.stop()


def test_the_heatmap_layer_blends_as_the_predict_tabs_overlay_does():
    from core.modeling.explain import overlay
    from gui.live_prediction import HeatmapLayer

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (30, 40, 3)).astype(np.uint8)
    heatmap = rng.random((30, 40)).astype(np.float32)
    layer = HeatmapLayer.of(heatmap)
    difference = np.abs(layer.over(frame).astype(int) - overlay(frame, heatmap).astype(int))
    assert difference.max() <= 1  # integer rounding
    other_size = np.zeros((20, 40, 3), np.uint8)
    assert layer.over(other_size) is other_size


def test_frames_faster_than_the_gui_are_replaced_by_the_newest(qtbot):
    source = FrameSource()
    shown = []
    source.frame.connect(shown.append)
    for value in (10, 20, 30, 40):  # a camera delivering while the GUI thread is busy elsewhere
        push(source.sink, (value, value, value), deliver=False)
    assert shown == []
    QCoreApplication.processEvents()
    assert len(shown) == 1 and tuple(shown[0][0, 0]) == (40, 40, 40) and source.skipped == 3
    push(source.sink, (50, 50, 50))
    assert len(shown) == 2 and source.skipped == 3


def test_open_video_plays_a_real_file_and_a_held_class_collects_from_it(camera, qtbot, tmp_path):
    _window, page, _train = camera
    qtbot.waitUntil(lambda: "blue" in page.capture.class_names, timeout=10_000)
    video = make_video(str(tmp_path / "blue.mp4"), colours=("blue",), seconds_each=3.0)
    page.choose_video = lambda: video
    page.start_burst("blue")
    page.video_button.click()
    qtbot.waitUntil(lambda: page.capture.counts["blue"] >= 3 + 3, timeout=30_000)  # 5/s of a playing video
    page.stop_burst()
    assert page._frame.shape == (48, 64, 3) and np.argmax(page._frame[20:].mean(axis=(0, 1))) == 2
    assert "Playing blue.mp4" in page.source_note.text()
    page.source.stop()


def test_open_video_on_a_file_that_is_no_video_says_so(camera, qtbot, tmp_path):
    _window, page, _train = camera
    fake = tmp_path / "holiday.mp4"
    fake.write_text("not a video")
    page.choose_video = lambda: str(fake)
    page.video_button.click()
    qtbot.waitUntil(lambda: "cannot be played" in page.banner.text() or "not a video" in page.banner.text(),
                    timeout=30_000)
    page.source.stop()


def test_the_camera_tabs_player_and_the_commands_reader_turn_a_phone_video_alike(qtbot, tmp_path):
    from videos import turn_mp4

    from core.data.video import VideoReader

    path = turn_mp4(make_video(str(tmp_path / "phone.mp4"), colours=("blue",), seconds_each=0.5), 90)
    with VideoReader(path) as reader:
        read = next(reader.frames()).rgb
    source = FrameSource()
    shown = []
    source.frame.connect(shown.append)
    source.open_video(path)
    try:
        qtbot.waitUntil(lambda: bool(shown), timeout=30_000)
    finally:
        source.stop()
    played = shown[0]
    assert played.shape == read.shape == (64, 48, 3)  # portrait, both
    assert np.abs(played.astype(int) - read.astype(int)).mean() < 3  # the same picture, both decoders

    def white_bar(rgb):  # where the frame's white bar is: it tells which way the picture is turned
        rows, columns = np.nonzero(rgb.min(axis=2) > 200)
        return rows.mean(), columns.mean()

    assert np.allclose(white_bar(played), white_bar(read), atol=2)
    assert white_bar(read)[1] > 40  # the bar at the top-left of the landscape frames is now top-right


def test_without_qtmultimedia_the_tab_says_why_and_the_window_works(make_window, monkeypatch):
    monkeypatch.setitem(sys.modules, "gui.camera_source", None)  # its import now fails, as without libpulse
    window = make_window()
    window.tabs.setCurrentWidget(window.camera)
    page = window.camera
    assert page.source is None and "QtMultimedia" in page.banner.text() and "libpulse0" in page.banner.text()
    assert not page.video_button.isEnabled()
    window.tabs.setCurrentWidget(window.training)
    assert window.training.train_button.isEnabled()
