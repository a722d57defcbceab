"""Batches of cached feature vectors for `fit`, in the order an ImageStream would give the images.

A `FeatureStream` answers Keras's batch i of the current epoch with the features of the same files
that an ImageStream of the same files, batch size, seed and shuffling would decode for it (both use
`BatchOrder`), so training a head on features sees the data exactly as training end to end would.
With several views (augmented copies), each epoch takes one view of each image, chosen by a
permutation seeded by (seed, epoch) alone: a resumed run sees the same views as an uninterrupted one.

`fit` gets the same batches from `keras_input`, a tf.data pipeline: Python computes each epoch's
order once, and each batch is gathered in the graph. A head's
step takes about a millisecond, so Keras's own way with a PyDataset (a new generator-fed iterator
every epoch, for training and validation, and a Python call per batch) would cost more than the
training itself.
"""

from __future__ import annotations

import numpy as np

from core.data.dataset import FileSet
from core.data.pipeline import BatchOrder
from core.tf_runtime import load_keras, load_tensorflow

keras = load_keras()


class FeatureStream(keras.utils.PyDataset):
    """Batches of (float32 features, int32 labels). `views` is (views, files, width); a file missing
    from any view (an unreadable image) is left out of its batches."""

    def __init__(self, files: FileSet, views: np.ndarray, batch_size: int, *, shuffle: bool, seed: int = 0,
                 present: np.ndarray | None = None, num_batches: int | None = None):
        super().__init__(workers=1, use_multiprocessing=False)
        if views.ndim != 3 or views.shape[1] != len(files):
            raise ValueError(f"views of shape {views.shape} do not fit {len(files)} files")
        self.files = files
        self.views = views
        self.present = np.ones(len(files), dtype=bool) if present is None else present
        self.order = BatchOrder(len(files), batch_size, shuffle, seed, num_batches)
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
        indices = self._present_indices(self._epoch, batch)
        return self.views[self._choice[indices], indices], self.files.labels[indices]

    def keras_input(self):
        """What `fit` reads: the batches of this epoch and every later one, as __getitem__ gives them.
        Where they change by epoch (shuffled, or several views), endless, so Keras (told the steps
        per epoch) makes its iterator once per `fit`; else one epoch's, which Keras reads again (its
        validation makes a new iterator every epoch, so that one is made cheap)."""
        tf = load_tensorflow()
        rows, bounds = self._epoch_rows(self._epoch)
        sizes = bounds[:, 1] - bounds[:, 0]
        labels = self.files.labels.astype(np.int32)
        if self.order.shuffle or self.views.shape[0] > 1:
            return self._every_epoch(tf, tf.constant(self._table()), tf.constant(labels))
        if (sizes[:-1] == self.order.batch_size).all():  # plain batching makes the same batches
            in_order = (self._table()[rows], labels[rows % len(self.files)])
            return tf.data.Dataset.from_tensor_slices(in_order).batch(int(sizes[0]))
        return self._gathered(tf, tf.constant(self._table()), tf.constant(labels), tf.constant(rows),
                              tf.constant(bounds)).prefetch(2)

    def _every_epoch(self, tf, table, labels):
        first_epoch = self._epoch

        def orders():
            epoch = first_epoch
            while True:
                yield self._epoch_rows(epoch)
                epoch += 1

        signature = (tf.TensorSpec((None,), tf.int64), tf.TensorSpec((None, 2), tf.int64))
        epochs = tf.data.Dataset.from_generator(orders, output_signature=signature)
        # Plain graph code: autograph's conversion (it parses the source) would cost more than the tracing.
        @tf.autograph.experimental.do_not_convert
        def epoch_batches(rows, bounds):
            return self._gathered(tf, table, labels, rows, bounds)

        return epochs.flat_map(epoch_batches).prefetch(2)

    def _gathered(self, tf, table, labels, rows, bounds):
        """The batches [start, end) of `bounds` over `rows` of `table` (and their `labels`), gathered
        in the graph. `table` and `labels` are made once, outside: a dataset's functions then
        capture them, where a constant made inside would be copied into every function's graph."""
        count = len(self.files)

        @tf.autograph.experimental.do_not_convert
        def gather(bound):
            picked = rows[bound[0]:bound[1]]
            return tf.gather(table, picked), tf.gather(labels, picked % count)

        return tf.data.Dataset.from_tensor_slices(bounds).map(gather)

    def _table(self) -> np.ndarray:
        """Every view's features, one row per (view, file): row = view * files + file."""
        return self.views.reshape(-1, self.views.shape[2])

    def _present_indices(self, epoch: int, batch: int) -> np.ndarray:
        indices = self.order.indices(epoch, batch)
        indices = indices[self.present[indices]]
        if not len(indices):
            raise ValueError(f"every image of batch {batch} is unreadable")
        return indices

    def _epoch_rows(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Epoch `epoch`'s rows of the (views x files) table, batch after batch, and each batch's
        [start, end) among them."""
        choice = self._views_of(epoch)
        batches = [self._present_indices(epoch, batch) for batch in range(self.num_batches)]
        ends = np.cumsum([len(indices) for indices in batches])
        bounds = np.stack([ends - [len(indices) for indices in batches], ends], axis=1)
        indices = np.concatenate(batches)
        return choice[indices] * self.views.shape[1] + indices, bounds.astype(np.int64)

    def take_wait_seconds(self) -> float:
        return 0.0  # the features are in memory: training never waits for them

    def close(self) -> None:
        pass

    def _views_of(self, epoch: int) -> np.ndarray:
        count = self.views.shape[0]
        if count == 1:
            return np.zeros(len(self.files), dtype=np.int64)
        return np.random.default_rng([self.seed, epoch, 1]).integers(count, size=len(self.files))
