"""How well perceptual hashes tell near duplicates from distinct images: false alarms and recall.

    python bench/near_duplicates.py              # digits at 24 px and photo tiles; all methods
    python bench/near_duplicates.py --max-bits 12

Distinct images ("negatives"): scikit-learn's 1,797 handwritten digits (8x8, upscaled to 24 px as
in the issue, white on black); 120 non-overlapping 64x64 tiles of scikit-learn's two sample photos
(textured, colourful, real camera noise); the 390 pictures of the bundled demo dataset (about 150 px
JPEGs of three kinds of fruit, alike within a class). Every pair of distinct images within each set
is a negative pair: 1,613,706 for the digits, 7,140 for the tiles, 75,855 for the demo.

Near duplicates ("positives"): copies of every original made as a user's folders get them:
re-encoded as JPEG (quality 90 and 50), resized (80 % and 125 %), recoloured (brighter, less
contrast, a warm tint, gamma 0.8) and all of resize + JPEG + brightness at once. Each
(original, copy) is a positive pair.

Every image is written to a file and read back through `core.data.images.read_rgb` at the side the
doctor hashes at, so the numbers include format and decoding effects. For each method and Hamming
threshold T it prints: negative pairs within T (false alarms) and the fraction of positive pairs
within T (recall), per kind of copy. Methods: imagehash's ahash, dhash, phash and whash (64 bits
each); phash and dhash both within T; and what the doctor uses (core.data.duplicates): phash within
T and the correlation of the 16x16 grey copies at least NEAR_CORRELATION.
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from PIL import Image, ImageEnhance  # noqa: E402

from core.data.duplicates import HASH_SIDE, NEAR_CORRELATION, fingerprint  # noqa: E402
from core.data.images import read_rgb  # noqa: E402


def digits_images(side: int) -> list[Image.Image]:
    from sklearn.datasets import load_digits

    images = []
    for pixels in load_digits().images:
        grey = Image.fromarray(np.uint8(pixels * (255 / 16)), mode="L").resize((side, side), Image.BILINEAR)
        images.append(grey.convert("RGB"))
    return images


def photo_tiles(side: int) -> list[Image.Image]:
    from sklearn.datasets import load_sample_images

    tiles = []
    for photo in load_sample_images().images:
        height, width = photo.shape[:2]
        corners = itertools.product(range(0, height - side + 1, side), range(0, width - side + 1, side))
        for top, left in corners:
            tiles.append(Image.fromarray(photo[top : top + side, left : left + side]))
    return tiles


def demo_pictures() -> list[Image.Image]:
    from core.data.dataset import find_images
    from core.paths import resource_path

    return [Image.fromarray(read_rgb(path)) for path in find_images(resource_path("demo"))]


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _resize(image: Image.Image, factor: float) -> Image.Image:
    return image.resize((round(image.width * factor), round(image.height * factor)), Image.BICUBIC)


def _tint(image: Image.Image) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float64) * np.array([1.0, 0.9, 0.75]) + np.array([12, 6, 0])
    return Image.fromarray(np.uint8(np.clip(pixels, 0, 255)))


def _gamma(image: Image.Image, gamma: float) -> Image.Image:
    pixels = (np.asarray(image, dtype=np.float64) / 255) ** gamma * 255
    return Image.fromarray(np.uint8(np.clip(pixels + 0.5, 0, 255)))


COPIES = {
    "jpeg q90": lambda im: _jpeg(im, 90),
    "jpeg q50": lambda im: _jpeg(im, 50),
    "resize 80%": lambda im: _resize(im, 0.8),
    "resize 125%": lambda im: _resize(im, 1.25),
    "brightness +15%": lambda im: ImageEnhance.Brightness(im).enhance(1.15),
    "contrast -15%": lambda im: ImageEnhance.Contrast(im).enhance(0.85),
    "warm tint": _tint,
    "gamma 0.8": lambda im: _gamma(im, 0.8),
    "resize 90% + jpeg q75 + brighter": lambda im: _jpeg(
        ImageEnhance.Brightness(_resize(im, 0.9)).enhance(1.1), 75
    ),
}


def hashes_of(paths: list[str]) -> dict[str, np.ndarray]:
    """64-bit hashes of every method for every file, as uint64 arrays, and under "structure" the
    doctor's 16x16 grey copies."""
    import imagehash

    methods = {
        "ahash": imagehash.average_hash,
        "dhash": imagehash.dhash,
        "phash": imagehash.phash,
        "whash": imagehash.whash,
    }
    out = {name: np.zeros(len(paths), dtype=np.uint64) for name in methods}
    structures = []
    for index, path in enumerate(paths):
        image = Image.fromarray(read_rgb(path, HASH_SIDE))
        for name, method in methods.items():
            bits = method(image).hash.flatten()
            out[name][index] = np.uint64(int("".join("1" if b else "0" for b in bits), 2))
        structures.append(fingerprint(path)[0].structure)
    out["structure"] = np.array(structures)
    return out


def pair_distances(hashes: np.ndarray) -> np.ndarray:
    """Hamming distances of all pairs i < j, flattened."""
    parts = []
    for i in range(len(hashes) - 1):
        parts.append(np.bitwise_count(hashes[i] ^ hashes[i + 1 :]).astype(np.uint8))
    return np.concatenate(parts)


def measure(name: str, originals: list[Image.Image], folder: str, max_bits: int) -> None:
    paths = []
    for index, image in enumerate(originals):
        path = os.path.join(folder, f"{name}-{index:05d}.png")
        image.save(path)
        paths.append(path)
    copy_paths: dict[str, list[str]] = {}
    for kind, make in COPIES.items():
        copy_paths[kind] = []
        for index, image in enumerate(originals):
            ext = ".jpg" if "jpeg" in kind else ".png"
            path = os.path.join(folder, f"{name}-{index:05d}-{kind.replace(' ', '_').replace('%', '')}{ext}")
            copy = make(image)
            if ext == ".jpg":
                copy.save(path, quality=95)  # the copy is already JPEG-degraded; keep it as it is
            else:
                copy.save(path)
            copy_paths[kind].append(path)
    started = time.perf_counter()
    original_hashes = hashes_of(paths)
    copy_hashes = {kind: hashes_of(p) for kind, p in copy_paths.items()}
    seconds = time.perf_counter() - started
    files = len(paths) * (1 + len(COPIES))
    print(f"\n## {name}: {len(paths)} originals, {len(paths) * (len(paths) - 1) // 2} negative pairs, "
          f"{len(COPIES)} copies each ({seconds / files * 1000:.2f} ms per file for all 4 hashes)")
    structure = original_hashes.pop("structure")
    negatives = {method: pair_distances(h) for method, h in original_hashes.items()}
    positives = {
        method: {kind: np.bitwise_count(h ^ copy_hashes[kind][method]) for kind in COPIES}
        for method, h in original_hashes.items()
    }
    correlation = (structure @ structure.T)[np.triu_indices(len(paths), 1)]
    alike = {kind: np.sum(structure * copy_hashes[kind]["structure"], axis=1) for kind in COPIES}
    combos = {method: (negatives[method], positives[method]) for method in negatives}
    # both hashes within the same T: a pair must look alike by gradient (dhash) and by frequency (phash)
    combos["phash & dhash"] = (
        np.maximum(negatives["phash"], negatives["dhash"]),
        {kind: np.maximum(positives["phash"][kind], positives["dhash"][kind]) for kind in COPIES},
    )
    # a pair whose grey copies do not correlate enough never counts, whatever its hash distance
    never = np.uint8(255)
    combos[f"phash & correlation >= {NEAR_CORRELATION} (the doctor)"] = (
        np.where(correlation >= NEAR_CORRELATION, negatives["phash"], never),
        {kind: np.where(alike[kind] >= NEAR_CORRELATION, positives["phash"][kind], never) for kind in COPIES},
    )
    kinds = list(COPIES)
    short = [k.split(" + ")[0] + ("+" if " + " in k else "") for k in kinds]
    for method, (negative, positive) in combos.items():
        columns = " ".join(f"{s:>11}" for s in short)
        print(f"\n{method}\n{'T':>3} {'false alarms':>12} {'recall':>7}  {columns}")
        for bits in range(max_bits + 1):
            recall = [float(np.mean(positive[kind] <= bits)) for kind in kinds]
            overall = float(np.mean(np.concatenate([positive[k] for k in kinds]) <= bits))
            print(f"{bits:>3} {int(np.sum(negative <= bits)):>12} {overall:>7.3f}  "
                  + " ".join(f"{r:>11.3f}" for r in recall))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-bits", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fitstudio-neardup-") as folder:
        measure("digits-24px", digits_images(24), folder, args.max_bits)
        measure("photo-tiles-64px", photo_tiles(64), folder, args.max_bits)
        measure("demo-fruit", demo_pictures(), folder, args.max_bits)


if __name__ == "__main__":
    main()
