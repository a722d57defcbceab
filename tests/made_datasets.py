"""Small made datasets whose problems are known: the dataset doctor's tests (core and GUI) use them."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import numpy as np
from conftest import COLOURS
from PIL import Image

CLASSES = ("blue", "green", "red")


def colour_picture(path: str, colour, seed: int, size: int = 24) -> str:
    """A square of the class's colour with a pattern of its own: no two seeds look alike, so the
    only duplicates in a made dataset are the ones a test puts there."""
    rng = np.random.default_rng(seed)
    pattern = Image.fromarray(rng.integers(0, 256, (4, 4), dtype=np.uint8))
    pattern = pattern.resize((size, size), Image.Resampling.BICUBIC)
    pixels = np.asarray(colour, float) + 0.35 * (np.asarray(pattern, float)[..., None] - 128)
    pixels += rng.normal(0, 6, (size, size, 3))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
    return path


def make_colour_dataset(root: str, counts: dict[str, int], first_seed: int = 0) -> str:
    """root/<class>/<class>_<i>.png, each picture unlike every other."""
    for index, (name, count) in enumerate(counts.items()):
        for i in range(count):
            path = os.path.join(root, name, f"{name}_{i:03d}.png")
            colour_picture(path, COLOURS[name], first_seed + 1000 * index + i)
    return root


def flip(root: str, name: str, to_class: str) -> str:
    """Moves root/<class>/<name> into another class folder: a known wrong label."""
    target = os.path.join(root, to_class, "flipped_" + name)
    os.rename(os.path.join(root, name.split("_")[0], name), target)
    return target


@dataclass(frozen=True)
class Messy:
    train: str
    val: str
    flips: tuple[str, ...]  # images in the wrong class folder: flipped_blue_011.png in green/, ...


def make_messy_dataset(folder: str) -> Messy:
    """train/ and val/ of colour pictures with 2 exact copies (one as BMP), 1 re-encoded copy,
    2 leaks (one exact, one re-encoded), 2 flipped labels, 1 unreadable file, and classes of
    14/14/6 training images (imbalanced)."""
    train = make_colour_dataset(os.path.join(folder, "train"), {"blue": 14, "green": 14, "red": 6})
    val = make_colour_dataset(os.path.join(folder, "val"), dict.fromkeys(CLASSES, 4), first_seed=500)
    shutil.copy(os.path.join(train, "blue", "blue_003.png"), os.path.join(train, "blue", "copy.png"))
    Image.open(os.path.join(train, "green", "green_004.png")).save(os.path.join(train, "green", "same.bmp"))
    Image.open(os.path.join(train, "green", "green_007.png")).save(
        os.path.join(train, "green", "green_007_small.jpg"), quality=92
    )
    shutil.copy(os.path.join(train, "red", "red_002.png"), os.path.join(val, "red", "leak.png"))
    reencoded = os.path.join(val, "blue", "leak.jpg")
    Image.open(os.path.join(train, "blue", "blue_009.png")).save(reencoded, quality=90)
    flips = (flip(train, "blue_011.png", "green"), flip(train, "green_012.png", "blue"))
    with open(os.path.join(train, "red", "broken.jpg"), "wb") as handle:
        handle.write(b"\xff\xd8\xff\xe0 not really a JPEG")
    return Messy(train, val, flips)
