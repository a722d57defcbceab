"""Generator-driven batch streams that feed `fit`, `evaluate` and `predict` from a file list.

`ImageStream` is a `keras.utils.PyDataset`: Keras asks for batch i, the stream answers with the
images of batch i of the current epoch's order. Decoding happens on a pool of threads (Pillow
releases the GIL while it decodes and resizes), a few batches ahead of what Keras asked for, so
the training loop only waits when decoding is slower than the model. The time it waits is
measured: that is the data-wait meter.

Without a cache only the file list is held and images exist only for the batches in flight, so
memory stays bounded whatever the size of the dataset. With a `DecodedCache`, each image is
decoded and resized once, in the first epoch; later epochs gather batches from the cache (in
memory within a budget, else a file on disk). Augmentation layers live in the model, so cached
images are still augmented differently every epoch. A `DecodedCache` given an `ImageStore`
(core.data.disk_cache) takes the first epoch's images from the disk cache of earlier runs, and keeps
what it decodes there for the next run.
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from core.data.dataset import FileSet
from core.data.disk_cache import ImageStore
from core.data.images import UnreadableImage, decode_image
from core.tf_runtime import load_keras

keras = load_keras()  # PyDataset is a base class below: TensorFlow loads when this module is imported

DEFAULT_PREFETCH_BATCHES = 4


def default_decode_threads() -> int:
    return max(2, os.cpu_count() or 2)


def total_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows): assume a small machine
        return 8 * 1024**3


def default_cache_budget_bytes() -> int:
    return total_memory_bytes() // 4


class DecodedCache:
    """Decoded, resized images by file index: an array in memory when it fits `memory_budget`,
    else a memory-mapped file on disk (deleted on close). Pages are only touched when written, so
    a cache costs memory as it fills, not up front. With `disk`, images missing here are first looked
    for in that store of earlier runs, and decoded ones are kept there too."""

    def __init__(self, count: int, image_size: int, memory_budget: int, folder: str | None = None,
                 disk: ImageStore | None = None):
        self.disk = disk
        shape = (count, image_size, image_size, 3)
        self.nbytes = math.prod(shape)
        self.path: str | None = None
        if self.nbytes <= memory_budget:
            self.images = np.empty(shape, dtype=np.uint8)
        else:
            handle, self.path = tempfile.mkstemp(prefix="fitstudio-cache-", suffix=".u8", dir=folder)
            os.close(handle)
            self.images = np.memmap(self.path, dtype=np.uint8, mode="w+", shape=shape)
            if os.name == "posix":
                # The mapping keeps the data; with no name left, a killed run leaves no
                # gigabytes behind in the temporary folder.
                os.remove(self.path)
        self.filled = np.zeros(count, dtype=bool)

    @property
    def on_disk(self) -> bool:
        return self.path is not None

    def batch(self, indices: np.ndarray) -> np.ndarray | None:
        """The cached images of `indices`, or None unless every one of them is cached."""
        return self.images[indices] if self.filled[indices].all() else None

    def store(self, index: int, image: np.ndarray) -> None:
        self.images[index] = image
        self.filled[index] = True

    def fill(self, index: int, path: str, out: np.ndarray, decode: Callable[[], np.ndarray]) -> bool:
        """Puts image `index` (file `path`) into `out` and keeps it: from the disk store when it holds
        the file unchanged (True), else from `decode()`, whose result the store then keeps (False)."""
        if self.disk is None:
            out[...] = decode()
            reused = False
        else:
            stamp = self.disk.stamp(path)  # before decoding: a change while decoding is then seen
            reused = self.disk.load_into(path, stamp, out)
            if not reused:
                out[...] = decode()
                self.disk.save(path, stamp, out)
        self.store(index, out)
        return reused

    def close(self) -> None:
        if self.disk is not None:
            self.disk.close()
            self.disk = None
        if self.path is not None:
            del self.images
            if os.path.exists(self.path):
                os.remove(self.path)
            self.path = None


class BatchOrder:
    """Which files make batch i of epoch e: a fresh seeded permutation per epoch, or file order.

    Batches hold `batch_size` files, the last one what is left. With `num_batches`, the files are
    instead dealt into exactly that many batches of near-equal size (none empty): distributed
    workers with shards of different sizes then still run the same number of steps.
    """

    def __init__(self, size: int, batch_size: int, shuffle: bool, seed: int, num_batches: int | None = None):
        if num_batches is not None and not 1 <= num_batches <= size:
            raise ValueError(f"cannot deal {size} files into {num_batches} non-empty batches")
        self.size = size
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self._num_batches = num_batches
        self._epoch = -1
        self._order = np.arange(size)

    @property
    def num_batches(self) -> int:
        return self._num_batches or math.ceil(self.size / self.batch_size)

    @property
    def dealt_batches(self) -> int | None:
        """The number of batches the files are dealt into, or None: batches of `batch_size`."""
        return self._num_batches

    def indices(self, epoch: int, batch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = self.permutation(epoch)
        start, end = self.bounds(batch)
        return self._order[start:end]

    def bounds(self, batch: int) -> tuple[int, int]:
        """The [start, end) positions of batch `batch` in the epoch's order."""
        if self._num_batches is None:
            return batch * self.batch_size, min((batch + 1) * self.batch_size, self.size)
        # The first `size % num_batches` batches hold one file more, as in numpy.array_split.
        small, extra = divmod(self.size, self._num_batches)
        start = batch * small + min(batch, extra)
        return start, start + small + (batch < extra)

    def permutation(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.size)
        # Seeded by (seed, epoch) alone, so epoch e has the same order however it was reached:
        # a resumed run sees the data exactly as an uninterrupted one.
        return np.random.default_rng([self.seed, epoch]).permutation(self.size)


def steps_for_shards(total: int, shards: int, global_batch: int) -> int:
    """Steps per epoch that every one of `shards` shards of `total` files can run (FileSet.shard):
    about one global batch per step, but never more steps than the smallest shard has files, so no
    worker is left with an empty batch."""
    return max(1, min(math.ceil(total / global_batch), total // shards))


@dataclass
class _PendingBatch:
    indices: np.ndarray
    images: np.ndarray  # filled in place by the decode tasks
    futures: list[Future]


class ImageStream(keras.utils.PyDataset):
    """Batches of (uint8 images, int32 labels) for one file list.

    Set the epoch with `set_epoch` before Keras starts asking for its batches (the engine's
    callback does it in `on_epoch_begin`). `num_batches` deals the files into exactly that many
    batches instead of batches of `batch_size` (see BatchOrder). `on_skip(path, reason)` is called
    once per file that turns out unreadable while decoding; that file is left out of its batch and
    of later epochs.
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
        cache: DecodedCache | None = None,
        num_batches: int | None = None,
    ):
        # workers=1: Keras's own enqueuer stays off; this class does its own threading.
        super().__init__(workers=1, use_multiprocessing=False)
        if len(files) == 0:
            raise ValueError("an ImageStream needs at least one image")
        self.files = files
        self.image_size = image_size
        self.resize_mode = resize_mode
        self.order = BatchOrder(len(files), batch_size, shuffle, seed, num_batches)
        self.prefetch_batches = prefetch_batches
        self.cancel = cancel or threading.Event()
        self.on_skip = on_skip
        self.cache = cache
        self.wait_seconds = 0.0  # time callers spent blocked on decoding, since the last reset
        self.unreadable: dict[int, str] = {}
        # How each image first reached this stream: from the disk cache of an earlier run, or decoded.
        self.first_loads = {"reused": 0, "decoded": 0}
        self._loaded = np.zeros(len(files), dtype=bool)
        self._count_lock = threading.Lock()
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

    @property
    def epoch(self) -> int:
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        with self._lock:
            if epoch != self._epoch:
                self._drop_pending()
                self._epoch = epoch

    def __getitem__(self, batch: int):
        images, labels, _ = self.batch_with_indices(batch)
        return images, labels

    def batch_with_indices(self, batch: int, allow_empty: bool = False):
        """(images, labels, indices) of batch `batch`: `indices` are the positions in `files` of
        the images actually returned, so results can be traced to their paths even when unreadable
        files were dropped from the batch. With `allow_empty`, a batch whose every image is
        unreadable comes back empty instead of raising `UnreadableImage`."""
        if self.cache is not None:
            with self._lock:
                indices = self.order.indices(self._epoch, batch)
            cached = self.cache.batch(indices)
            if cached is not None:
                return cached, self.files.labels[indices], indices
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
        if not keep.any() and not allow_empty:
            raise UnreadableImage(
                f"every image of batch {batch} became unreadable during training "
                "(did the files change on disk?)"
            )
        if keep.all():
            return pending.images, self.files.labels[pending.indices], pending.indices
        kept = pending.indices[keep]
        return pending.images[keep], self.files.labels[kept], kept

    def _count_load(self, index: int, reused: bool) -> None:
        with self._count_lock:
            if not self._loaded[index]:
                self._loaded[index] = True
                self.first_loads["reused" if reused else "decoded"] += 1

    def keras_input(self, until_epoch: int | None = None) -> ImageStream:
        """What `fit` reads: the stream itself (Keras asks it for batch i of the current epoch)."""
        return self

    def take_wait_seconds(self) -> float:
        waited, self.wait_seconds = self.wait_seconds, 0.0
        return waited

    def close(self) -> None:
        with self._lock:
            self._drop_pending()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self.cache is not None:
            self.cache.close()

    def _drop_pending(self) -> None:
        for pending in self._pending.values():
            for future in pending.futures:
                future.cancel()
        self._pending.clear()

    def _submit(self, batch: int) -> _PendingBatch:
        return self.load_async(self.order.indices(self._epoch, batch))

    def load_async(self, indices: np.ndarray) -> _PendingBatch:
        """Starts reading the images of `indices` (through the cache) on the decode threads: one task
        per image, so all threads share every batch's work. `collect` waits for them."""
        size = self.image_size
        images = np.empty((len(indices), size, size, 3), dtype=np.uint8)
        futures = [
            self._pool.submit(self._decode_into, images, slot, index) for slot, index in enumerate(indices)
        ]
        return _PendingBatch(np.asarray(indices), images, futures)

    def collect(self, pending: _PendingBatch) -> tuple[np.ndarray, np.ndarray]:
        """The readable images of a `load_async` and their indices (unreadable ones are skipped)."""
        keep = np.asarray([future.result() for future in pending.futures], dtype=bool)
        return pending.images[keep], pending.indices[keep]

    def _decode_into(self, images: np.ndarray, slot: int, index: int) -> bool:
        if index in self.unreadable:
            return False
        if self.cache is not None and self.cache.filled[index]:
            images[slot] = self.cache.images[index]
            return True
        path = self.files.paths[index]
        try:
            if self.cache is None:
                images[slot] = decode_image(path, self.image_size, self.resize_mode)
                reused = False
            else:
                decode = functools.partial(decode_image, path, self.image_size, self.resize_mode)
                reused = self.cache.fill(index, path, images[slot], decode)
            self._count_load(index, reused)
            return True
        except UnreadableImage as exc:
            self.unreadable[index] = str(exc)
            if self.on_skip:
                self.on_skip(self.files.paths[index], str(exc))
            return False


def classify_batches(
    files: FileSet,
    predict: Callable[[np.ndarray], np.ndarray],
    image_size: int,
    *,
    batch_size: int,
    resize_mode: str = "stretch",
    decode_threads: int | None = None,
    cancel: threading.Event | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    skipped: list | None = None,
):
    """Yields (file indices, probabilities) for every readable file, batch by batch, in file order.

    Files that turn out unreadable are appended to `skipped` as SkippedFile. Stops early, without
    raising, once `cancel` is set: the caller decides what a partial result means.
    """
    from core.data.dataset import SkippedFile

    lock = threading.Lock()

    def on_skip(path: str, reason: str) -> None:
        if skipped is not None:
            with lock:
                skipped.append(SkippedFile(path, reason))

    stream = ImageStream(files, image_size, batch_size, shuffle=False, resize_mode=resize_mode,
                         decode_threads=decode_threads, cancel=cancel, on_skip=on_skip)
    try:
        for batch in range(len(stream)):
            if stream.cancel.is_set():
                return
            images, _, indices = stream.batch_with_indices(batch, allow_empty=True)
            if len(indices):
                yield np.asarray(indices, dtype=np.int64), predict(images)
            if on_progress:
                on_progress(min((batch + 1) * batch_size, len(files)), len(files))
    finally:
        stream.close()
