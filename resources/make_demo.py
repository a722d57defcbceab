"""Remakes the bundled demo dataset: photo-like pictures of three kinds of objects.

    python resources/make_demo.py [--out resources/demo] [--seed 7]

Each picture is a shaded object (circle, square or triangle) of random colour, size, rotation and
position, with a soft shadow, on a textured, unevenly lit background, slightly blurred and saved
as JPEG at varied sizes, so the demo exercises the same decoding and resizing as real photos.
The output is deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import colorsys
import math
import os
import shutil

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ("circle", "square", "triangle")
TRAIN_PER_CLASS = 100
VAL_PER_CLASS = 30
JPEG_QUALITY = 78


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "demo"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    make_dataset(args.out, args.seed)
    total = sum(
        os.path.getsize(os.path.join(parent, name))
        for parent, _, names in os.walk(args.out)
        for name in names
    )
    print(f"wrote {args.out}: {total / 1e6:.2f} MB")


def make_dataset(out: str, seed: int, train_per_class: int = TRAIN_PER_CLASS,
                 val_per_class: int = VAL_PER_CLASS) -> None:
    shutil.rmtree(out, ignore_errors=True)
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for name in CLASSES:
            folder = os.path.join(out, split, name)
            os.makedirs(folder)
            for i in range(count):
                picture = render(name, rng)
                picture.save(os.path.join(folder, f"{name}_{i:03d}.jpg"), quality=JPEG_QUALITY)


def render(shape: str, rng: np.random.Generator) -> Image.Image:
    width, height = int(rng.integers(144, 200)), int(rng.integers(120, 170))
    picture = background(width, height, rng)
    size = rng.uniform(0.3, 0.55) * min(width, height)
    centre = (rng.uniform(size * 0.7, width - size * 0.7), rng.uniform(size * 0.7, height - size * 0.7))
    angle = rng.uniform(0, 2 * math.pi)
    outline = polygon(shape, centre, size, angle)
    hue = rng.uniform(0, 1)
    shadow_offset = rng.uniform(2, 6, size=2)
    picture = paste_shadow(picture, [(x + shadow_offset[0], y + shadow_offset[1]) for x, y in outline])
    picture = paste_object(picture, outline, hue, rng)
    picture = picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    noise = rng.normal(0, 4, (height, width, 3))
    pixels = np.clip(np.asarray(picture, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def background(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    base = np.array(colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.05, 0.3), rng.uniform(0.45, 0.9)))
    ys, xs = np.mgrid[0:height, 0:width]
    direction = rng.uniform(0, 2 * math.pi)
    light = 0.8 + 0.35 * ((xs * math.cos(direction) + ys * math.sin(direction)) / max(width, height))
    texture = Image.fromarray(rng.integers(0, 255, (height // 8 + 1, width // 8 + 1), dtype=np.uint8))
    texture = np.asarray(texture.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float64)
    shade = light * (0.9 + 0.2 * texture / 255.0)
    pixels = np.clip(base[None, None, :] * shade[..., None] * 255, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def polygon(shape: str, centre, size: float, angle: float) -> list[tuple[float, float]]:
    corners = {"circle": 48, "square": 4, "triangle": 3}[shape]
    radius = size * (0.5 if shape == "circle" else 0.62)
    return [
        (centre[0] + radius * math.cos(angle + 2 * math.pi * k / corners),
         centre[1] + radius * math.sin(angle + 2 * math.pi * k / corners))
        for k in range(corners)
    ]


def paste_shadow(picture: Image.Image, outline) -> Image.Image:
    mask = Image.new("L", picture.size, 0)
    ImageDraw.Draw(mask).polygon(outline, fill=110)
    mask = mask.filter(ImageFilter.GaussianBlur(4))
    return Image.composite(Image.new("RGB", picture.size, (20, 20, 25)), picture, mask)


def paste_object(picture: Image.Image, outline, hue: float, rng: np.random.Generator) -> Image.Image:
    width, height = picture.size
    xs = [x for x, _ in outline]
    ys = [y for _, y in outline]
    cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    spread = max(max(xs) - min(xs), max(ys) - min(ys)) or 1.0
    grid_y, grid_x = np.mgrid[0:height, 0:width]
    # A highlight towards the upper left makes the object look lit and round-edged.
    distance = np.hypot(grid_x - (cx - spread * 0.2), grid_y - (cy - spread * 0.2)) / spread
    brightness = np.clip(1.15 - 0.7 * distance, 0.35, 1.1)
    colour = np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.5, 0.95), rng.uniform(0.6, 0.95)))
    fill = np.clip(colour[None, None, :] * brightness[..., None] * 255, 0, 255).astype(np.uint8)
    mask = Image.new("L", picture.size, 0)
    ImageDraw.Draw(mask).polygon(outline, fill=255)
    return Image.composite(Image.fromarray(fill), picture, mask.filter(ImageFilter.GaussianBlur(0.8)))


if __name__ == "__main__":
    main()
