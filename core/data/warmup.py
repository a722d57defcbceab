"""Decoding a dataset into the disk cache before training starts, in the background at low priority.

The window calls `warm_up` on a worker thread once a training folder is scanned, so a person who
spends half a minute on the settings finds most of the first epoch decoded when they press Train.
Setting `cancel` stops it within one image. The run that starts next opens the same store (stores
are shared within a process) and finds every image warmed so far.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.data.dataset import find_images, list_classes
from core.data.disk_cache import DiskCache, ImageStore
from core.data.images import UnreadableImage, decode_image
from core.errors import DatasetError

PROGRESS_INTERVAL_S = 0.1
_NICEST = 19
_WINDOWS_THREAD_PRIORITY_LOWEST = -2
_DARWIN_THREAD, _DARWIN_BACKGROUND = 3, 0x1000  # PRIO_DARWIN_THREAD, PRIO_DARWIN_BG (man setpriority)


@dataclass(frozen=True)
class WarmUpResult:
    total: int  # images found under the folders
    done: int  # of them looked at: found in the cache, decoded into it, or unreadable
    decoded: int  # decoded by this warm-up
    cancelled: bool


def warm_up(
    roots: Sequence[str],
    image_size: int,
    resize_mode: str,
    *,
    cache: DiskCache | None = None,
    cancel: threading.Event | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    low_priority: bool = True,
) -> WarmUpResult:
    """Decodes every image under `roots` that the disk cache lacks at this size and resize mode.

    Runs on the calling thread; with `low_priority` that thread first yields the CPU to everything
    else (for good: call it on a thread of its own). `on_progress(done, total)` is called at most
    every PROGRESS_INTERVAL_S and once at the end.
    """
    if low_priority:
        lower_thread_priority()
    cache = cache or DiskCache()
    cancel = cancel or threading.Event()
    work = [(root, path) for root in roots for path in _images(root)]
    stores: dict[str, ImageStore] = {}
    done = decoded = 0
    reported = time.monotonic()
    try:
        for root, path in work:
            if cancel.is_set():
                break
            if root not in stores:
                stores[root] = cache.open(root, image_size, resize_mode)
            store = stores[root]
            if not store.writable:
                break  # the budget is full: more decoding would be thrown away
            decoded += _warm_one(store, path, image_size, resize_mode)
            done += 1
            if on_progress and time.monotonic() - reported >= PROGRESS_INTERVAL_S:
                reported = time.monotonic()
                on_progress(done, len(work))
    finally:
        for store in stores.values():
            store.close()
    if on_progress:
        on_progress(done, len(work))
    return WarmUpResult(len(work), done, decoded, cancel.is_set())


def _warm_one(store: ImageStore, path: str, image_size: int, resize_mode: str) -> int:
    stamp = store.stamp(path)
    if store.has(path, stamp):
        return 0
    try:
        image = decode_image(path, image_size, resize_mode)
    except UnreadableImage:
        return 0  # the scan reports it; training skips it
    store.save(path, stamp, image)
    return 1


def _images(root: str) -> list[str]:
    """The files a scan of `root` considers, in the same order; none when it is no dataset folder."""
    try:
        return [path for name in list_classes(root) for path in find_images(os.path.join(root, name))]
    except (DatasetError, OSError):
        return []


def lower_thread_priority() -> None:
    """Makes the calling thread give way to every other thread and process, where the platform allows
    it for one thread (Linux nice values are per thread); elsewhere it does nothing."""
    try:
        if sys.platform.startswith("linux"):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _NICEST)
        elif sys.platform == "darwin":
            os.setpriority(_DARWIN_THREAD, 0, _DARWIN_BACKGROUND)
        elif sys.platform == "win32":
            import ctypes

            kernel32 = ctypes.windll.kernel32
            kernel32.SetThreadPriority(kernel32.GetCurrentThread(), _WINDOWS_THREAD_PRIORITY_LOWEST)
    except (OSError, AttributeError):
        pass
