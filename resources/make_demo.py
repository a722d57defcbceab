"""Remakes the bundled demo dataset: photo-like pictures of three kinds of fruit.

    python resources/make_demo.py [--out resources/demo] [--seed 7]

Each picture is a shaded fruit (apple, banana or lime) of varied colour, size, rotation and
position, with a soft shadow, on a textured, unevenly lit background, slightly blurred and saved
as JPEG at varied sizes, so the demo exercises the same decoding and resizing as real photos.
Like real photo datasets, colour is a strong cue and shape a second one, so a small CNN learns it
from scratch in a few epochs on a laptop CPU. The output is deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import colorsys
import math
import os
import shutil

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ("apple", "banana", "lime")
# Hue ranges (0..1) and saturation of each fruit's skin.
SKINS = {
    "apple": ((-0.04, 0.03), (0.6, 0.9)),
    "banana": ((0.11, 0.16), (0.6, 0.9)),
    "lime": ((0.2, 0.3), (0.5, 0.85)),
}
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


def make_dataset(
    out: str, seed: int, train_per_class: int = TRAIN_PER_CLASS, val_per_class: int = VAL_PER_CLASS
) -> None:
    shutil.rmtree(out, ignore_errors=True)
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for name in CLASSES:
            folder = os.path.join(out, split, name)
            os.makedirs(folder)
            for i in range(count):
                picture = render(name, rng)
                picture.save(os.path.join(folder, f"{name}_{i:03d}.jpg"), quality=JPEG_QUALITY)


def render(fruit: str, rng: np.random.Generator) -> Image.Image:
    width, height = int(rng.integers(144, 200)), int(rng.integers(120, 170))
    picture = background(width, height, rng)
    size = rng.uniform(0.35, 0.6) * min(width, height)
    margin = size * 0.6
    centre = (rng.uniform(margin, width - margin), rng.uniform(margin, height - margin))
    outline = fruit_outline(fruit, centre, size, rng.uniform(0, 2 * math.pi), rng)
    shadow = rng.uniform(2, 6, size=2)
    picture = paste_shadow(picture, [(x + shadow[0], y + shadow[1]) for x, y in outline])
    (hue_low, hue_high), (sat_low, sat_high) = SKINS[fruit]
    colour = colorsys.hsv_to_rgb(
        rng.uniform(hue_low, hue_high) % 1.0, rng.uniform(sat_low, sat_high), rng.uniform(0.6, 0.95)
    )
    picture = paste_object(picture, outline, np.array(colour))
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


def fruit_outline(fruit: str, centre, size: float, angle: float, rng) -> list[tuple[float, float]]:
    if fruit == "banana":
        points = banana(size)
    else:  # apples are wider than tall, limes a little oval
        stretch = (1.1, 0.95) if fruit == "apple" else (1.2, 0.9)
        radius = size * (0.5 if fruit == "apple" else 0.4) * rng.uniform(0.9, 1.1)
        points = [
            (radius * stretch[0] * math.cos(t), radius * stretch[1] * math.sin(t))
            for t in np.linspace(0, 2 * math.pi, 48, endpoint=False)
        ]
    cos, sin = math.cos(angle), math.sin(angle)
    return [(centre[0] + x * cos - y * sin, centre[1] + x * sin + y * cos) for x, y in points]


def banana(size: float) -> list[tuple[float, float]]:
    """A crescent: the outer arc, then the inner arc back, thickest in the middle."""
    radius, sweep = size * 1.0, np.linspace(-0.8, 0.8, 24)
    thickness = size * 0.32 * np.cos(sweep * 1.6) + size * 0.05
    outer = [(radius * math.sin(t), radius * (1 - math.cos(t)) - radius * 0.3) for t in sweep]
    inner = [
        ((radius - w) * math.sin(t), (radius - w) * (1 - math.cos(t)) - radius * 0.3 + w)
        for t, w in zip(sweep[::-1], thickness[::-1], strict=True)
    ]
    return outer + inner


def paste_shadow(picture: Image.Image, outline) -> Image.Image:
    mask = Image.new("L", picture.size, 0)
    ImageDraw.Draw(mask).polygon(outline, fill=110)
    mask = mask.filter(ImageFilter.GaussianBlur(4))
    return Image.composite(Image.new("RGB", picture.size, (20, 20, 25)), picture, mask)


def paste_object(picture: Image.Image, outline, colour: np.ndarray) -> Image.Image:
    width, height = picture.size
    xs = [x for x, _ in outline]
    ys = [y for _, y in outline]
    cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    spread = max(max(xs) - min(xs), max(ys) - min(ys)) or 1.0
    grid_y, grid_x = np.mgrid[0:height, 0:width]
    # A highlight towards the upper left makes the object look lit and round-edged.
    distance = np.hypot(grid_x - (cx - spread * 0.2), grid_y - (cy - spread * 0.2)) / spread
    brightness = np.clip(1.15 - 0.7 * distance, 0.35, 1.1)
    fill = np.clip(colour[None, None, :] * brightness[..., None] * 255, 0, 255).astype(np.uint8)
    mask = Image.new("L", picture.size, 0)
    ImageDraw.Draw(mask).polygon(outline, fill=255)
    return Image.composite(Image.fromarray(fill), picture, mask.filter(ImageFilter.GaussianBlur(0.8)))


if __name__ == "__main__":
    main()
