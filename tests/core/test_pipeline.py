"""The batch stream: every image exactly once per epoch, a new seeded order each epoch, bad files
dropped and reported, and the count checked where it matters, inside a real `fit`."""

import os
import threading

import keras
import numpy as np
import pytest
from conftest import make_class_folders

from core.data.dataset import scan
from core.data.pipeline import BatchOrder, DecodedCache, ImageStream


@pytest.fixture
def files(tmp_path):
    return scan(make_class_folders(str(tmp_path), {"blue": 7, "green": 6, "red": 4}))[0]


def make_cache(kind, files, folder):
    if kind == "off":
        return None
    budget = 2**40 if kind == "memory" else 0  # a zero budget sends the cache to disk
    return DecodedCache(len(files), 16, budget, folder=str(folder))


def epoch_batches(stream, epoch):
    stream.set_epoch(epoch)
    return [stream[i] for i in range(len(stream))]


@pytest.mark.parametrize("cache", ["off", "memory", "disk"])
def test_every_image_once_per_epoch_in_a_new_seeded_order(files, cache, tmp_path):
    stream = ImageStream(files, 16, 5, shuffle=True, seed=3, cache=make_cache(cache, files, tmp_path))
    orders = []
    try:
        assert len(stream) == 4  # ceil(17 / 5), the last batch partial
        for epoch in range(3):
            batches = epoch_batches(stream, epoch)
            assert [len(x) for x, _ in batches] == [5, 5, 5, 2]
            labels = np.concatenate([y for _, y in batches])
            assert np.bincount(labels).tolist() == [7, 6, 4]
            order = np.concatenate([stream.order.indices(epoch, i) for i in range(len(stream))])
            assert sorted(order.tolist()) == list(range(17))
            orders.append(order.tolist())
    finally:
        stream.close()
    assert orders[0] != orders[1] != orders[2]
    same_seed = BatchOrder(17, 5, shuffle=True, seed=3)
    assert same_seed.permutation(1).tolist() == orders[1]  # seeded by (seed, epoch) alone


@pytest.mark.parametrize("cache", ["off", "memory", "disk"])
def test_images_match_their_labels_in_every_epoch(files, cache, tmp_path):
    stream = ImageStream(files, 16, 4, shuffle=True, seed=0, cache=make_cache(cache, files, tmp_path))
    try:
        for epoch in range(2):
            for images, labels in epoch_batches(stream, epoch):
                dominant = images.reshape(len(images), -1, 3).mean(axis=1).argmax(axis=1)
                # class order blue, green, red; colour channel order red, green, blue
                assert dominant.tolist() == [{0: 2, 1: 1, 2: 0}[label] for label in labels]
    finally:
        stream.close()


def test_the_cache_fills_in_the_first_epoch_then_serves_without_decoding(files, tmp_path, monkeypatch):
    cache = make_cache("disk", files, tmp_path)
    stream = ImageStream(files, 16, 5, shuffle=True, cache=cache)
    try:
        epoch_batches(stream, 0)
        assert cache.filled.all() and cache.on_disk
        assert not os.path.exists(cache.path)  # unlinked at once: a killed run leaves no file behind
        monkeypatch.setattr("core.data.pipeline.decode_image", lambda *a: pytest.fail("decoded again"))
        assert sum(len(y) for _, y in epoch_batches(stream, 1)) == 17
    finally:
        stream.close()
    assert not [name for name in os.listdir(tmp_path) if name.startswith("fitstudio-cache-")]
    assert cache.path is None  # the disk file is deleted on close


def test_cancel_stops_decoding_ahead(files):
    cancel = threading.Event()
    cancel.set()
    stream = ImageStream(files, 16, 2, shuffle=False, cancel=cancel, prefetch_batches=8)
    try:
        stream.set_epoch(0)
        stream[0]
        assert list(stream._pending) == [0]  # the batch asked for, nothing queued behind it
    finally:
        stream.close()


def test_validation_order_is_fixed(files):
    stream = ImageStream(files, 16, 8, shuffle=False)
    try:
        first = np.concatenate([y for _, y in epoch_batches(stream, 0)])
        second = np.concatenate([y for _, y in epoch_batches(stream, 1)])
    finally:
        stream.close()
    assert first.tolist() == second.tolist() == files.labels.tolist()


def test_a_file_that_breaks_after_the_scan_is_dropped_and_reported_once(files):
    skipped = []
    stream = ImageStream(files, 16, 17, shuffle=False, on_skip=lambda p, r: skipped.append(p))
    with open(files.paths[2], "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n garbage")
    try:
        for epoch in range(2):
            ((images, labels),) = epoch_batches(stream, epoch)
            assert len(images) == len(labels) == 16
    finally:
        stream.close()
    assert skipped == [files.paths[2]]


class SampleCounter(keras.metrics.Metric):
    """Counts the samples of each class the model was trained or validated on."""

    def __init__(self, classes, **kwargs):
        super().__init__(name="seen", **kwargs)
        self.per_class = self.add_variable((classes,), initializer="zeros", name="per_class")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        self.per_class.assign_add(keras.ops.sum(keras.ops.one_hot(labels, self.per_class.shape[0]), axis=0))

    def result(self):
        return keras.ops.add(self.per_class, 0.0)  # a copy: evaluate() resets the variable later


class EpochSetter(keras.callbacks.Callback):
    def __init__(self, stream):
        super().__init__()
        self.stream = stream
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        self.stream.set_epoch(epoch)

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append((np.asarray(logs["seen"]).tolist(), np.asarray(logs["val_seen"]).tolist()))


def test_fit_trains_on_every_image_exactly_once_per_epoch(files, tmp_path):
    val_files = scan(make_class_folders(str(tmp_path / "val"), {"blue": 3, "green": 2, "red": 2}))[0]
    train_stream = ImageStream(files, 16, 4, shuffle=True, seed=1, cancel=threading.Event())
    val_stream = ImageStream(val_files, 16, 4, shuffle=False)
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, "softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=[SampleCounter(3)])
    setter = EpochSetter(train_stream)
    try:
        model.fit(
            train_stream,
            validation_data=val_stream,
            epochs=3,
            steps_per_epoch=len(train_stream),
            validation_steps=len(val_stream),
            callbacks=[setter],
            verbose=0,
        )
    finally:
        train_stream.close()
        val_stream.close()
    assert setter.seen == [([7, 6, 4], [3, 2, 2])] * 3
