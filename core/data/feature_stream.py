"""Batches of cached feature vectors for `fit`, in the order an ImageStream would give the images.

A `FeatureStream` gives batch i of the current epoch as the features of the same files
that an ImageStream of the same files, batch size, seed and shuffling would decode for it (both use
`BatchOrder`), so training a head on features sees the data exactly as training end to end would.
With several views (augmented copies), each epoch takes one view of each image, chosen by a
permutation seeded by (seed, epoch) alone: a resumed run sees the same views as an uninterrupted one.

`fit` gets the same batches from `keras_input`, a tf.data pipeline: Python computes the epochs'
orders once, and each batch is gathered in the graph. A head's step takes about a millisecond, so
Keras's own way with a PyDataset (a new generator-fed iterator every epoch, for training and
validation, and a Python call per batch) would cost more than the training itself.
"""

from __future__ import annotations

import numpy as np

from core.data.dataset import FileSet
from core.data.pipeline import BatchOrder
from core.tf_runtime import load_tensorflow


class FeatureStream:
    """Batches of (float32 features, int32 labels). `views` is (views, files, width); a file missing
    from any view (an unreadable image) is left out of its batches."""

    def __init__(self, files: FileSet, views: np.ndarray, batch_size: int, *, shuffle: bool, seed: int = 0,
                 present: np.ndarray | None = None, num_batches: int | None = None):
        if views.ndim != 3 or views.shape[1] != len(files):
            raise ValueError(f"views of shape {views.shape} do not fit {len(files)} files")
        self.files = files
        self.views = views
        self.present = np.ones(len(files), dtype=bool) if present is None else present
        self.order = BatchOrder(len(files), batch_size, shuffle, seed, num_batches)
        self._edges = np.array([self.order.bounds(batch) for batch in range(self.order.num_batches)])
        self.seed = seed
        self.first_loads = {"reused": 0, "decoded": 0}  # the images were not read by this stream
        self.cache = None
        self._epoch = 0
        self._choice = self._views_of(0)

    @property
    def num_batches(self) -> int:
        return self.order.num_batches

    def __len__(self) -> int:
        return self.num_batches

    @property
    def epoch(self) -> int:
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        if epoch != self._epoch:
            self._epoch = epoch
            self._choice = self._views_of(epoch)

    def view_of(self, index: int) -> int:
        """The view that file `index` has in the current epoch."""
        return int(self._choice[index])

    def __getitem__(self, batch: int):
        """Batch `batch` of the current epoch, read in Python (what keras_input gathers in the graph)."""
        rows, bounds = self._epoch_rows(self._epoch)
        picked = rows[bounds[batch, 0]:bounds[batch, 1]]
        return self._table()[picked], self.files.labels[picked % len(self.files)]

    def keras_input(self, until_epoch: int | None = None):
        """What `fit` reads: the batches of the current epoch up to `until_epoch` (excluded; the
        current epoch alone without it), in order, as __getitem__ gives them. Python computes the
        rows once; each batch is gathered in the graph. Keras, told the steps per epoch, reads one
        iterator through all the epochs. Its validation reads one epoch anew every time: where plain
        batching gives the same batches, the dataset just batches, with no function to set up."""
        tf = load_tensorflow()
        epochs = range(self._epoch, max(until_epoch or 0, self._epoch + 1))
        orders = [self._epoch_rows(epoch) for epoch in epochs]
        labels = self.files.labels.astype(np.int32)
        rows, bounds = orders[0]
        sizes = bounds[:, 1] - bounds[:, 0]
        if len(orders) == 1 and (sizes[:-1] == self.order.batch_size).all():
            in_order = (self._table()[rows], labels[rows % len(self.files)])
            return tf.data.Dataset.from_tensor_slices(in_order).batch(int(sizes[0]))
        offsets = np.cumsum([0] + [len(rows) for rows, _ in orders[:-1]])
        rows = np.concatenate([rows for rows, _ in orders])
        shifted = [epoch_bounds + offset for (_, epoch_bounds), offset in zip(orders, offsets, strict=True)]
        bounds = np.concatenate(shifted)
        return self._gathered(tf, rows, bounds, labels).prefetch(2)

    def _gathered(self, tf, rows: np.ndarray, bounds: np.ndarray, labels: np.ndarray):
        """The batches [start, end) of `bounds` over `rows` of the table, gathered in the graph."""
        table, labels, rows = tf.constant(self._table()), tf.constant(labels), tf.constant(rows)
        count = len(self.files)

        @tf.autograph.experimental.do_not_convert  # plain graph code: autograph would only parse it
        def gather(bound):
            picked = rows[bound[0]:bound[1]]
            return tf.gather(table, picked), tf.gather(labels, picked % count)

        return tf.data.Dataset.from_tensor_slices(bounds).map(gather)

    def _table(self) -> np.ndarray:
        """Every view's features, one row per (view, file): row = view * files + file."""
        return self.views.reshape(-1, self.views.shape[2])

    def _epoch_rows(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Epoch `epoch`'s rows of the table, batch after batch, and each batch's [start, end) among
        them, for every batch at once: the files of BatchOrder's batches, less the unreadable ones."""
        order = self.order.permutation(epoch)
        kept = self.present[order]
        before = np.concatenate([[0], np.cumsum(kept)])  # readable files ahead of each position
        bounds = before[self._edges]
        empty = np.flatnonzero(bounds[:, 1] == bounds[:, 0])
        if len(empty):
            raise ValueError(f"every image of batch {empty[0]} is unreadable")
        files = order[kept]
        return self._views_of(epoch)[files] * len(self.files) + files, bounds.astype(np.int64)

    def take_wait_seconds(self) -> float:
        return 0.0  # the features are in memory: training never waits for them

    def close(self) -> None:
        pass

    def _views_of(self, epoch: int) -> np.ndarray:
        count = self.views.shape[0]
        if count == 1:
            return np.zeros(len(self.files), dtype=np.int64)
        return np.random.default_rng([self.seed, epoch, 1]).integers(count, size=len(self.files))
