"""Batches of cached feature vectors for `fit`, in the order an ImageStream would give the images.

A `FeatureStream` answers Keras's batch i of the current epoch with the features of the same files
that an ImageStream of the same files, batch size, seed and shuffling would decode for it (both use
`BatchOrder`), so training a head on features sees the data exactly as training end to end would.
With several views (augmented copies), each epoch takes one view of each image, chosen by a
permutation seeded by (seed, epoch) alone: a resumed run sees the same views as an uninterrupted one.
"""

from __future__ import annotations

import numpy as np

from core.data.dataset import FileSet
from core.data.pipeline import BatchOrder
from core.tf_runtime import load_keras

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
        indices = self.order.indices(self._epoch, batch)
        indices = indices[self.present[indices]]
        if not len(indices):
            raise ValueError(f"every image of batch {batch} is unreadable")
        return self.views[self._choice[indices], indices], self.files.labels[indices]

    def take_wait_seconds(self) -> float:
        return 0.0  # the features are in memory: training never waits for them

    def close(self) -> None:
        pass

    def _views_of(self, epoch: int) -> np.ndarray:
        count = self.views.shape[0]
        if count == 1:
            return np.zeros(len(self.files), dtype=np.int64)
        return np.random.default_rng([self.seed, epoch, 1]).integers(count, size=len(self.files))
