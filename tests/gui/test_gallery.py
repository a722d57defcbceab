"""Gallery thumbnails show what the model sees: the engine's decoding, not Pillow's convert("RGB")."""

from __future__ import annotations

import threading

from PIL import Image
from PySide6.QtGui import QColor

from gui.thumbnails import ThumbnailLoader, load_thumbnails


def test_thumbnails_of_a_transparent_png_and_a_16_bit_scan_match_the_model(qtbot, tmp_path):
    clear = str(tmp_path / "clear.png")
    Image.new("RGBA", (64, 32), (0, 0, 0, 0)).save(clear)  # convert("RGB") shows this black
    scan = str(tmp_path / "scan.png")
    Image.new("I;16", (32, 64), 32768).save(scan)  # convert("RGB") shows this white
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    loader = ThumbnailLoader(size=48)
    paths = [clear, scan, str(broken)]
    for path in paths:
        assert loader.get(path) is None  # queued
    qtbot.waitUntil(lambda: loader.idle and all(loader.known(path) for path in paths), timeout=10_000)
    white = loader.get(clear).toImage()
    grey = loader.get(scan).toImage()
    assert (white.width(), white.height()) == (48, 24) and (grey.width(), grey.height()) == (24, 48)
    assert white.pixelColor(10, 10) == QColor(255, 255, 255)
    assert 120 <= grey.pixelColor(10, 10).red() <= 136
    assert loader.failed(str(broken))


def test_loading_stops_at_cancel(tmp_path):
    path = str(tmp_path / "a.png")
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)
    cancel = threading.Event()
    assert [p for p, pixels in load_thumbnails([path], 16, cancel) if pixels is not None] == [path]
    cancel.set()
    assert load_thumbnails([path, path], 16, cancel) == []
