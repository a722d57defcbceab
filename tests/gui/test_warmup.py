"""Preparing images in the window: the warm-up fills the disk cache on a low-priority thread, shows its
progress, restarts for new settings and stops at once when asked."""

import time

import pytest
from conftest import age_files, make_class_folders
from PySide6.QtCore import Qt

from core.config import TrainingConfig
from core.data import warmup as engine_warmup
from core.data.disk_cache import DiskCache
from core.data.images import decode_image
from gui.warmup import WarmUp, WarmUpTarget

SIZE = 16


@pytest.fixture
def dataset(tmp_path):
    return age_files(make_class_folders(str(tmp_path / "data"), {"blue": 6, "green": 6, "red": 6}))


@pytest.fixture
def slow_decoding(monkeypatch):
    """Each decode of the warm-up takes 50 ms, so a test can act while it runs; the list it returns
    counts the decodes begun."""
    begun = []

    def slow(*args):
        begun.append(args)
        time.sleep(0.05)
        return decode_image(*args)

    monkeypatch.setattr(engine_warmup, "decode_image", slow)
    return begun


def cached(root, size=SIZE):
    store = DiskCache().open(root, size, "stretch")
    try:
        return len(store)
    finally:
        store.close()


def test_target_follows_the_cache_settings(dataset, real_warm_up):
    config = TrainingConfig(train_dir=dataset, val_dir=None, image_size=SIZE)
    assert WarmUpTarget.of(config) == WarmUpTarget((dataset,), SIZE, "stretch", config.cache_disk_mb)
    assert WarmUpTarget.of(config.replace(val_dir="/v")).roots == (dataset, "/v")
    assert WarmUpTarget.of(config.replace(cache=False)) is None
    assert WarmUpTarget.of(config.replace(cache_disk_mb=0)) is None


def test_warm_up_shows_progress_and_fills_the_cache(qtbot, dataset):
    warm = WarmUp()
    texts = []
    warm.text_changed.connect(texts.append)
    with qtbot.waitSignal(warm.text_changed, timeout=20_000,
                          check_params_cb=lambda text: text == "Images prepared"):
        warm.request(WarmUpTarget((dataset,), SIZE, "stretch", 100))
    qtbot.waitUntil(lambda: warm.thread is None, timeout=5_000)
    assert texts[0] == "Preparing images…" and texts[-2] == "Preparing images: 100%"
    assert cached(dataset) == 18


def test_stop_ends_the_thread_within_one_image(qtbot, dataset, slow_decoding):
    warm = WarmUp()
    texts = []
    warm.text_changed.connect(texts.append)
    warm.request(WarmUpTarget((dataset,), SIZE, "stretch", 100))
    qtbot.waitUntil(lambda: warm.thread is not None, timeout=5_000)
    qtbot.waitUntil(lambda: any(t.startswith("Preparing images: ") for t in texts), timeout=10_000)
    thread = warm.thread
    warm.stop()
    begun_before_stop = len(slow_decoding)
    assert thread.wait(30_000)
    assert texts[-1] == ""
    assert len(slow_decoding) <= begun_before_stop + 1  # the image being read, then no other
    qtbot.waitUntil(lambda: warm.thread is None, timeout=5_000)
    assert 0 < cached(dataset) < 18


def test_new_settings_restart_it_for_the_new_size(qtbot, dataset, slow_decoding):
    warm = WarmUp()
    warm.request(WarmUpTarget((dataset,), SIZE, "stretch", 100))
    qtbot.waitUntil(lambda: warm.thread is not None, timeout=5_000)
    warm.request(WarmUpTarget((dataset,), 24, "stretch", 100))
    qtbot.waitUntil(lambda: warm.target is not None and warm.target.image_size == 24, timeout=10_000)
    with qtbot.waitSignal(warm.text_changed, timeout=20_000,
                          check_params_cb=lambda text: text == "Images prepared"):
        pass
    qtbot.waitUntil(lambda: warm.thread is None, timeout=5_000)
    assert cached(dataset, 24) == 18 and cached(dataset) < 18


def window_config(dataset, tmp_path, **changes):
    return TrainingConfig(train_dir=dataset, val_dir=None, image_size=SIZE, epochs=2,
                          out_dir=str(tmp_path / "runs"), **changes)


def test_the_window_prepares_images_after_the_scan_and_stops_when_train_is_pressed(
        qtbot, make_window, fake_engine, dataset, tmp_path, slow_decoding, real_warm_up):
    engine = fake_engine(batch_delay=0.02)
    window = make_window(train_fn=engine, config=window_config(dataset, tmp_path))
    page = window.training
    qtbot.waitUntil(lambda: page.warm_up_label.text().startswith("Preparing images: "), timeout=10_000)
    assert page.warm_up_label.isVisible() and page.warm_up.target.roots == (dataset,)
    thread = page.warm_up.thread
    qtbot.mouseClick(page.train_button, Qt.MouseButton.LeftButton)
    begun_before_train = len(slow_decoding)
    assert thread.wait(30_000)
    assert len(slow_decoding) <= begun_before_train + 1  # stopped within one image
    assert page.warm_up_label.isHidden()
    assert engine.started.wait(10)
    assert 0 < cached(dataset) < 18
    with qtbot.waitSignal(page.idle, timeout=20_000):
        pass
    # Idle again: it goes on preparing what is left.
    qtbot.waitUntil(lambda: page.warm_up_label.text() == "Images prepared", timeout=20_000)
    assert cached(dataset) == 18


def test_the_window_restarts_it_when_the_image_size_changes(qtbot, make_window, dataset, tmp_path,
                                                             real_warm_up):
    window = make_window(config=window_config(dataset, tmp_path))
    page = window.training
    qtbot.waitUntil(lambda: page.warm_up_label.text() == "Images prepared", timeout=20_000)
    page.settings.image_size.setValue(32)
    qtbot.waitUntil(lambda: page.warm_up.target is not None and page.warm_up.target.image_size == 32,
                    timeout=10_000)
    qtbot.waitUntil(lambda: page.warm_up_label.text() == "Images prepared", timeout=20_000)
    assert cached(dataset, 32) == 18


def test_no_warm_up_when_the_disk_cache_is_off(qtbot, make_window, dataset, tmp_path, real_warm_up):
    window = make_window(config=window_config(dataset, tmp_path, cache_disk_mb=0))
    page = window.training
    assert page.settings.cache_disk_mb.text() == "Off (nothing kept between runs)"
    qtbot.wait(1_200)  # longer than the pause before a warm-up starts
    assert page.warm_up.thread is None and page.warm_up_label.isHidden()
    page.settings.cache_disk_mb.setValue(256)
    qtbot.waitUntil(lambda: page.warm_up_label.text() == "Images prepared", timeout=20_000)
    page.settings.cache.setChecked(False)
    assert not page.settings.cache_disk_mb.isEnabled() and page.warm_up_label.isHidden()
    assert page.current_config().cache_disk_mb == 256
