"""Preparing images in the window: the warm-up fills the disk cache on a low-priority thread, shows its
progress, restarts for new settings and stops at once when asked."""

import time

import pytest
from conftest import age_files, make_class_folders

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
    """Each decode of the warm-up takes 50 ms, so a test can act while it runs."""
    def slow(*args):
        time.sleep(0.05)
        return decode_image(*args)

    monkeypatch.setattr(engine_warmup, "decode_image", slow)


def cached(root, size=SIZE):
    store = DiskCache().open(root, size, "stretch")
    try:
        return len(store)
    finally:
        store.close()


def test_target_follows_the_cache_settings(dataset):
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
    stopped_at = time.monotonic()
    warm.stop()
    assert thread.wait(2_000)
    assert time.monotonic() - stopped_at < 1.0 and texts[-1] == ""
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
