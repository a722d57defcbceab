"""Generator-driven batch streams that feed `fit`, `evaluate` and `predict` from a file list.

`ImageStream` is a `keras.utils.PyDataset`: Keras asks for batch i, the stream answers with the
images of batch i of the current epoch's order. Decoding happens on a pool of threads (Pillow
releases the GIL while it decodes and resizes), a few batches ahead of what Keras asked for, so
the training loop only waits when decoding is slower than the model. The time it waits is
measured: that is the data-wait meter.

Only the file list is held; images exist only for the batches in flight, so memory stays bounded
whatever the size of the dataset.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import keras
import numpy as np

from core.dataset import FileSet
from core.images import UnreadableImage, decode_image

DEFAULT_PREFETCH_BATCHES = 4


def default_decode_threads() -> int:
    return max(2, os.cpu_count() or 2)


class BatchOrder:
    """Which files make batch i of epoch e: a fresh seeded permutation per epoch, or file order."""

    def __init__(self, size: int, batch_size: int, shuffle: bool, seed: int):
        self.size = size
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self._epoch = -1
        self._order = np.arange(size)

    @property
    def num_batches(self) -> int:
        return math.ceil(self.size / self.batch_size)

    def indices(self, epoch: int, batch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = self.permutation(epoch)
        return self._order[batch * self.batch_size : (batch + 1) * self.batch_size]

    def permutation(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.size)
        # Seeded by (seed, epoch) alone, so epoch e has the same order however it was reached:
        # a resumed run sees the data exactly as an uninterrupted one.
        return np.random.default_rng([self.seed, epoch]).permutation(self.size)


@dataclass
class _PendingBatch:
    indices: np.ndarray
    images: np.ndarray  # filled in place by the decode tasks
    futures: list[Future]


class ImageStream(keras.utils.PyDataset):
    """Batches of (uint8 images, int32 labels) for one file list.

    Set the epoch with `set_epoch` before Keras starts asking for its batches (the engine's
    callback does it in `on_epoch_begin`). `on_skip(path, reason)` is called once per file that
    turns out unreadable while decoding; that file is left out of its batch and of later epochs.
    """

    def __init__(
        self,
        files: FileSet,
        image_size: int,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        resize_mode: str = "stretch",
        decode_threads: int | None = None,
        prefetch_batches: int = DEFAULT_PREFETCH_BATCHES,
        cancel: threading.Event | None = None,
        on_skip: Callable[[str, str], None] | None = None,
    ):
        # workers=1: Keras's own enqueuer stays off; this class does its own threading.
        super().__init__(workers=1, use_multiprocessing=False)
        if len(files) == 0:
            raise ValueError("an ImageStream needs at least one image")
        self.files = files
        self.image_size = image_size
        self.resize_mode = resize_mode
        self.order = BatchOrder(len(files), batch_size, shuffle, seed)
        self.prefetch_batches = prefetch_batches
        self.cancel = cancel or threading.Event()
        self.on_skip = on_skip
        self.wait_seconds = 0.0  # time callers spent blocked on decoding, since the last reset
        self.unreadable: dict[int, str] = {}
        self._epoch = 0
        self._pending: dict[int, _PendingBatch] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(
            max_workers=decode_threads or default_decode_threads(),
            thread_name_prefix="fitstudio-decode",
        )

    @property
    def num_batches(self) -> int:
        return self.order.num_batches

    def __len__(self) -> int:
        return self.num_batches

    def set_epoch(self, epoch: int) -> None:
        with self._lock:
            if epoch != self._epoch:
                self._drop_pending()
                self._epoch = epoch

    def __getitem__(self, batch: int):
        with self._lock:
            last = min(batch + self.prefetch_batches, self.num_batches - 1)
            ahead = batch if self.cancel.is_set() else last
            for upcoming in range(batch, ahead + 1):
                if upcoming not in self._pending:
                    self._pending[upcoming] = self._submit(upcoming)
            pending = self._pending[batch]
            # Keep the batch just before: Keras peeks at batches 0 and 1 before the first epoch.
            for old in [b for b in self._pending if b < batch - 1]:
                del self._pending[old]
        started = time.perf_counter()
        decoded = [future.result() for future in pending.futures]
        self.wait_seconds += time.perf_counter() - started
        keep = np.asarray(decoded, dtype=bool)
        if not keep.any():
            raise UnreadableImage(
                f"every image of batch {batch} became unreadable during training "
                "(did the files change on disk?)"
            )
        if keep.all():
            return pending.images, self.files.labels[pending.indices]
        return pending.images[keep], self.files.labels[pending.indices[keep]]

    def take_wait_seconds(self) -> float:
        waited, self.wait_seconds = self.wait_seconds, 0.0
        return waited

    def close(self) -> None:
        with self._lock:
            self._drop_pending()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _drop_pending(self) -> None:
        for pending in self._pending.values():
            for future in pending.futures:
                future.cancel()
        self._pending.clear()

    def _submit(self, batch: int) -> _PendingBatch:
        """Queues one decode task per image, so all threads share every batch's work."""
        indices = self.order.indices(self._epoch, batch)
        size = self.image_size
        images = np.empty((len(indices), size, size, 3), dtype=np.uint8)
        futures = [
            self._pool.submit(self._decode_into, images, slot, index) for slot, index in enumerate(indices)
        ]
        return _PendingBatch(indices, images, futures)

    def _decode_into(self, images: np.ndarray, slot: int, index: int) -> bool:
        if index in self.unreadable:
            return False
        try:
            images[slot] = decode_image(self.files.paths[index], self.image_size, self.resize_mode)
            return True
        except UnreadableImage as exc:
            self.unreadable[index] = str(exc)
            if self.on_skip:
                self.on_skip(self.files.paths[index], str(exc))
            return False
