"""Shared test set-up: offscreen Qt, no network, and tiny real image datasets made on the fly."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("FITSTUDIO_OFFLINE", "1")  # never try to download pretrained weights
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # tests never need a GPU; TF starts faster

import time

import numpy as np
import pytest
from PIL import Image

COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (50, 70, 220), "yellow": (230, 200, 30)}


def write_image(
    path: str, colour: tuple[int, int, int], size: int = 16, seed: int = 0, fmt: str | None = None
):
    """A small image that is clearly its class's colour, with a little noise so no two are equal."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour)[None, None, :] + rng.normal(0, 12, (size, size, 3)), 0, 255)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path, format=fmt)
    return path


def make_class_folders(root: str, counts: dict[str, int], size: int = 16, ext: str = ".png") -> str:
    """root/<class>/<class>_<i><ext> for each class; returns root."""
    palette = list(COLOURS.values())
    for index, (name, count) in enumerate(counts.items()):
        colour = COLOURS.get(name, palette[index % len(palette)])
        for i in range(count):
            write_image(os.path.join(root, name, f"{name}_{i:03d}{ext}"), colour, size, seed=i)
    return root


@pytest.fixture
def tiny_dataset(tmp_path):
    """train/ and val/ with three colour classes of 16x16 images: 8 + 4 per class."""
    classes = ("blue", "green", "red")
    train = make_class_folders(str(tmp_path / "train"), dict.fromkeys(classes, 8))
    val = make_class_folders(str(tmp_path / "val"), dict.fromkeys(classes, 4))
    return train, val


def age_files(root: str, seconds: float = 600.0) -> str:
    """Sets every file's modification time `seconds` back: the disk cache keeps only files that have
    not changed for a few seconds, and freshly written test images would never be kept."""
    moment = time.time() - seconds
    for parent, _, names in os.walk(root):
        for name in names:
            os.utime(os.path.join(parent, name), (moment, moment))
    return root


@pytest.fixture(autouse=True)
def isolated_disk_cache(tmp_path, monkeypatch):
    """Every test (and every process it starts) gets its own disk cache, never the user's."""
    folder = tmp_path / "decoded-cache"
    monkeypatch.setenv("FITSTUDIO_CACHE_DIR", str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster (loopback only, token authentication) shared by one test module."""
    from core.training.distribution import ray_launcher

    cluster = ray_launcher.start_local_cluster(cpus=2)
    try:
        yield cluster
    finally:
        ray_launcher.stop_cluster(cluster)
