"""Thumbnails of image files for the galleries, loaded off the GUI thread.

The engine decodes them (core.data.images.read_rgb: the orientation and colours the model gets, so a
transparent PNG shows white and a 16-bit scan grey) on a worker thread (gui.worker.run_in_thread),
only when asked, newest request first, in small batches; the GUI thread turns the returned arrays into
pixmaps and keeps them in a bounded cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage, QPixmap

from core.data.images import read_rgb
from gui.worker import run_in_thread

THUMBNAIL_SIZE = 120
BATCH = 24  # thumbnails decoded per worker-thread call
CACHE_LIMIT = 3000  # pixmaps kept; the least recently shown go first


def load_thumbnails(
    paths: list[str], size: int, cancel: threading.Event
) -> list[tuple[str, np.ndarray | None]]:
    """(path, RGB uint8 array at most size x size, or None when unreadable) for each path (worker thread)."""
    out: list[tuple[str, np.ndarray | None]] = []
    for path in paths:
        if cancel.is_set():
            break
        try:
            out.append((path, read_rgb(path, size)))
        except Exception:  # UnreadableImage, or anything else a broken file raises: "cannot show"
            out.append((path, None))
    return out


def pixmap_from_array(array: np.ndarray) -> QPixmap:
    height, width = array.shape[:2]
    image = QImage(array.data, width, height, array.strides[0], QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())  # copy: the QImage must not point into the numpy buffer


class ThumbnailLoader(QObject):
    """Loads thumbnails on request, one worker thread at a time, in batches; caches the pixmaps."""

    loaded = Signal(str)  # path: its thumbnail (or its failure) is now known

    def __init__(self, size: int = THUMBNAIL_SIZE, parent: QObject | None = None):
        super().__init__(parent)
        self.size = size
        self._cache: OrderedDict[str, QPixmap | None] = OrderedDict()
        self._pending: list[str] = []
        self._queued: set[str] = set()
        self._running = False
        self._cancel = threading.Event()

    @property
    def idle(self) -> bool:
        return not self._running and not self._pending

    def get(self, path: str) -> QPixmap | None:
        """The cached thumbnail; None while loading (a load is then queued) or when unreadable."""
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        if path not in self._queued:
            self._queued.add(path)
            self._pending.append(path)
            self._start()
        return None

    def known(self, path: str) -> bool:
        return path in self._cache

    def failed(self, path: str) -> bool:
        return path in self._cache and self._cache[path] is None

    def clear_pending(self) -> None:
        """Forgets the requests not yet started (the gallery was refilled)."""
        for path in self._pending:
            self._queued.discard(path)
        self._pending.clear()

    def stop(self) -> None:
        self.clear_pending()
        self._cancel.set()

    def _start(self) -> None:
        if self._running or not self._pending or self._cancel.is_set():
            return
        batch, self._pending = self._pending[-BATCH:], self._pending[:-BATCH]  # newest first: in view
        self._running = True
        run_in_thread(
            load_thumbnails,
            batch,
            self.size,
            self._cancel,
            on_result=self._store,
            on_done=self._done,
            name="FitStudio thumbnails",
        )

    def _store(self, results: list[tuple[str, np.ndarray | None]]) -> None:
        for path, array in results:
            self._queued.discard(path)
            self._cache[path] = pixmap_from_array(array) if array is not None else None
            self.loaded.emit(path)
        while len(self._cache) > CACHE_LIMIT:
            self._cache.popitem(last=False)

    def _done(self) -> None:
        self._running = False
        self._start()
