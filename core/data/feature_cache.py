"""A backbone's pooled output per image, kept beside the decoded images so the next run reuses it.

A feature of an image depends on the image (its file, as the decoded cache keys it: path and
stamp), on the backbone that computed it (architecture, the SHA-256 of its weights file, the image
size, the resize mode and the preprocessing before the backbone) and on the view: the plain image,
or augmented copy k of it drawn with a given seed and augmentation. Every such combination but the
file is one store of core.data.disk_cache (a `Layout` of float32 vectors), so features share the
decoded cache's folder, cross-process locks and leases, disk budget, eviction and repair.

`FeatureTable` holds one split's vectors of one view in memory for a run, filled from the store and
then by whoever computes the missing ones (core.modeling.features), who keeps them in the store too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.dataset import FileSet
from core.data.disk_cache import DiskCache, ImageStore, Layout, Stamp, file_stamp

FEATURE_FORMAT_VERSION = 1  # bump when the way features are computed changes



@dataclass(frozen=True)
class Backbone:
    """What a feature vector was computed with, apart from the image and the view."""

    name: str  # "mobilenetv2", "efficientnetb0"
    weights_sha256: str
    image_size: int
    resize_mode: str
    preprocessing: str  # how pixels 0..255 reach the backbone, e.g. "x/127.5-1"
    width: int  # values per vector

    def layout(self, view: str) -> Layout:
        return Layout((self.width,), "float32", {
            "kind": "features", "version": FEATURE_FORMAT_VERSION, "backbone": self.name,
            "weights_sha256": self.weights_sha256, "preprocessing": self.preprocessing, "view": view,
        })


# Images per second of a backbone's forward pass at 224 px, measured on a 2-core laptop-class CPU
# (GUIDE.md section 6: MobileNetV2 98/s); EfficientNetB0 takes about twice as long. The cost grows with
# the pixels. Only a rough guide for the window's estimate of the features' one-time cost.
_ROUGH_IMAGES_PER_SECOND_224 = {"mobilenetv2": 98.0, "efficientnetb0": 50.0}


def rough_feature_seconds(model: str, image_size: int, images: int) -> float:
    """About how long computing `images` images' features takes on a small CPU (0: not a backbone)."""
    rate = _ROUGH_IMAGES_PER_SECOND_224.get(model)
    if rate is None:
        return 0.0
    return images / (rate * (224 / image_size) ** 2)


def plain_view() -> str:
    return "plain"


def copy_view(copy: int, seed: int, augmentation: str) -> str:
    """Augmented copy `copy` (0-based) of each image, drawn with `seed` and `augmentation`."""
    return f"copy {copy} seed {seed} {augmentation}"


class FeatureTable:
    """One split's feature vectors of one view, in memory, by file index; with a store, those the
    store holds for the files as they are now are loaded at once, and new ones are kept there."""

    def __init__(self, files: FileSet, width: int, store: ImageStore | None = None):
        self.files = files
        self.vectors = np.zeros((len(files), width), dtype=np.float32)
        self.filled = np.zeros(len(files), dtype=bool)
        self.store = store
        self.reused = 0
        self._stamps: dict[int, Stamp | None] = {}
        if store is not None:
            for index, path in enumerate(files.paths):
                stamp = store.stamp(path)
                if store.load_into(path, stamp, self.vectors[index]):
                    self.filled[index] = True
                else:
                    self._stamps[index] = stamp  # taken before decoding: a change meanwhile is seen
            self.reused = int(self.filled.sum())

    def missing(self) -> np.ndarray:
        return np.flatnonzero(~self.filled)

    def put(self, index: int, vector: np.ndarray) -> None:
        self.vectors[index] = vector
        self.filled[index] = True
        if self.store is not None:
            path = self.files.paths[index]
            stamp = self._stamps.pop(index, None) or file_stamp(path)
            self.store.save(path, stamp, self.vectors[index])

    def close(self) -> None:
        if self.store is not None:
            self.store.flush()
            self.store.close()
            self.store = None


def open_feature_store(budget_mb: int, root: str, backbone: Backbone, view: str) -> ImageStore | None:
    """The disk store of `root`'s features of `view`, or None when the disk cache is off. Raises
    OSError when the cache folder cannot be used."""
    if not budget_mb:
        return None
    cache = DiskCache(budget_bytes=budget_mb * 1024**2)
    return cache.open(root, backbone.image_size, backbone.resize_mode, backbone.layout(view))
