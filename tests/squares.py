"""A dataset where the class is where to look: a coloured square at a random place on colour noise.

Used by the heatmap tests and by bench/explain.py: a model can only tell the classes apart by the
square, so a heatmap that explains it must be bright on the square.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

SQUARE_COLOURS = {"red": (230, 30, 30), "green": (30, 200, 40), "blue": (40, 60, 240)}


def make_square_dataset(
    root: str, per_class: int, width: int = 80, height: int = 60, side: int = 16, seed: int = 0,
    centre_only: bool = False,
) -> dict[str, tuple[int, int, int, int]]:
    """root/<colour>/<colour>_<i>.png for each colour; returns path -> the square's (left, top,
    right, bottom) in pixels. `centre_only` keeps squares inside the centred square crop."""
    rng = np.random.default_rng(seed)
    boxes = {}
    crop_left = (width - min(width, height)) // 2
    crop_top = (height - min(width, height)) // 2
    for name, colour in SQUARE_COLOURS.items():
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
            if centre_only:
                span = min(width, height) - side + 1
                left, top = crop_left + int(rng.integers(0, span)), crop_top + int(rng.integers(0, span))
            else:
                left, top = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
            pixels[top : top + side, left : left + side] = colour
            path = os.path.join(folder, f"{name}_{i:03d}.png")
            Image.fromarray(pixels).save(path)
            boxes[path] = (left, top, left + side, top + side)
    return boxes


def strongest_point_on_square(heatmap: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """Whether the heatmap's maximum lies on the square."""
    row, column = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    left, top, right, bottom = box
    return left <= column < right and top <= row < bottom
