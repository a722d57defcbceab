"""Exact and near duplicate images, within one split and between training and validation (leaks).

Every image gets a fingerprint: a digest of its file's bytes, a 64-bit perceptual hash
(`perceptual_hash`, the same bits as `imagehash.phash`) and a 16x16 grey copy of it, all from the
image read at most HASH_SIDE pixels large. Two images are

- exact duplicates when their files are identical, or when, decoded in full, they have the same
  pixels (a PNG saved from a BMP, a file renamed or copied into another class);
- near duplicates when their perceptual hashes differ in at most NEAR_BITS bits and their grey
  copies correlate at NEAR_CORRELATION or more (re-encoded, slightly resized or recoloured copies).

Both thresholds come from `bench/near_duplicates.py` (bench/RESULTS.md). The hash alone calls many
distinct but similar pictures alike (at 4 bits, 59 pairs of 1,797 upscaled digits; at 8 bits, 1,334);
with the correlation test as well, 8 bits finds all re-encoded, resized and recoloured copies of the
digits, 99.7 % of the demo's photos and 83 % of small textured photo tiles, with 3 false pairs among
1.6 million digit pairs and none among the photos.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from core.data.images import UnreadableImage, read_rgb

HASH_SIDE = 64  # JPEGs decode at 1/8 scale or less for it; phash itself looks at 32x32 grey pixels
PHASH_SIDE = 32  # the grey copy the perceptual hash transforms
PHASH_BITS_SIDE = 8  # its lowest 8x8 frequencies make the 64 bits
NEAR_BITS = 8
NEAR_CORRELATION = 0.99
STRUCTURE_SIDE = 16
SMALL_SIDE = 32  # the side of the small copies `fingerprint_all` can keep for a quick model
_CHUNK_ROWS = 1024  # rows of the pairwise comparison per numpy step: ~40 MB at 40,000 images
_READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class Fingerprint:
    path: str
    digest: str  # of the file's bytes: names an image's content across renames and moves
    phash: int  # 64 bits
    # the 16x16 grey copy, less its mean, of length 1 (all zeros for a flat image): the dot product
    # of two is their correlation, whatever their brightness and contrast
    structure: np.ndarray = field(compare=False, repr=False, default_factory=lambda: np.zeros(0, np.float32))


@dataclass(frozen=True)
class DuplicateGroup:
    kind: str  # "exact" or "near"
    paths: list[str]
    digests: list[str]  # of each path
    split: str = ""  # "train" or "val", set by whoever knows

    @property
    def key(self) -> str:
        """Names the finding by content, so "not a problem" survives renames."""
        return "duplicate:" + ",".join(sorted(self.digests))


@dataclass(frozen=True)
class Leak:
    kind: str  # "exact" or "near"
    train: str
    val: str
    digests: tuple[str, str]

    @property
    def key(self) -> str:
        return f"leak:{self.digests[0]}:{self.digests[1]}"


def fingerprint(path: str) -> tuple[Fingerprint, np.ndarray]:
    """The fingerprint of one image and the image itself, at most HASH_SIDE pixels large.

    Raises UnreadableImage with the reason when the file cannot be read or decoded.
    """
    digest = _file_digest(path)
    small = read_rgb(path, HASH_SIDE)
    return Fingerprint(path, digest, perceptual_hash(small), _structure(small)), small


def perceptual_hash(image: np.ndarray) -> int:
    """The 64-bit perceptual hash of an RGB image (h, w, 3 uint8), bit for bit `imagehash.phash`:
    grey, resized to 32x32 with Pillow's Lanczos filter, the unnormalised DCT-II of both axes
    (scipy.fftpack.dct's default), then one bit per lowest 8x8 frequency: above their median.
    The first frequency is the most significant bit, row by row."""
    from PIL import Image

    side = (PHASH_SIDE, PHASH_SIDE)
    grey = np.asarray(Image.fromarray(image).convert("L").resize(side, Image.Resampling.LANCZOS), np.float64)
    cosines = _dct_matrix()
    frequencies = (cosines @ grey @ cosines.T)[:PHASH_BITS_SIDE, :PHASH_BITS_SIDE]
    # Cosines that cancel leave ~1e-10 in a matrix product where the FFT gives exact zeros; a flat
    # or striped image would get noise for bits without this.
    frequencies[np.abs(frequencies) < 1e-6] = 0.0
    bits = (frequencies > np.median(frequencies)).ravel().astype(np.uint8)
    return int(np.packbits(bits).view(">u8")[0])


@functools.cache
def _dct_matrix(side: int = PHASH_SIDE) -> np.ndarray:
    """C with C @ x = the unnormalised DCT-II of x: y[k] = 2 sum_n x[n] cos(pi k (2n + 1) / 2N)."""
    k, n = np.arange(side)[:, None], np.arange(side)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * side))


def fingerprint_all(
    paths: list[str],
    on_progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    keep_small: bool = False,
    threads: int | None = None,
) -> tuple[list[Fingerprint | None], list[str | None], np.ndarray | None]:
    """Fingerprints of `paths` (None where unreadable), the reason for each unreadable one, and
    with `keep_small` every image squeezed to SMALL_SIDE x SMALL_SIDE (zeros where unreadable).

    Decoding runs on a few threads (Pillow releases the GIL). Stops early when `cancel` is set;
    what is not done yet stays None.
    """
    cancel = cancel or threading.Event()
    prints: list[Fingerprint | None] = [None] * len(paths)
    reasons: list[str | None] = [None] * len(paths)
    small = np.zeros((len(paths), SMALL_SIDE, SMALL_SIDE, 3), np.uint8) if keep_small else None

    def work(index: int) -> None:
        if cancel.is_set():
            return
        try:
            prints[index], image = fingerprint(paths[index])
        except UnreadableImage as exc:
            reasons[index] = str(exc)
            return
        if small is not None:
            small[index] = _squeeze(image, SMALL_SIDE)

    workers = threads or min(8, max(2, os.cpu_count() or 2))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fitstudio-hash") as pool:
        for done, _ in enumerate(pool.map(work, range(len(paths))), start=1):
            if on_progress and (done % 64 == 0 or done == len(paths)):
                on_progress(done, len(paths))
    return prints, reasons, small


def find_duplicates(prints: list[Fingerprint], cancel: threading.Event | None = None) -> list[DuplicateGroup]:
    """Groups of two or more images of one split that are the same picture: the exact groups, then
    the near groups, in which one image of each exact group stands for it."""
    pairs = _close_pairs(_hashes(prints), None, NEAR_BITS, cancel)
    exact = UnionFind(len(prints))
    first_with_digest: dict[str, int] = {}
    for index, item in enumerate(prints):
        exact.union(first_with_digest.setdefault(item.digest, index), index)
    for a, b in pairs:
        if exact.find(a) != exact.find(b) and same_pixels(prints[a], prints[b]):
            exact.union(a, b)
    near = UnionFind(len(prints))
    for a, b in pairs:
        if alike(prints[a], prints[b]):
            near.union(exact.find(a), exact.find(b))
    return [_group("exact", prints, members) for members in exact.groups()] + [
        _group("near", prints, members) for members in near.groups()
    ]


def find_leaks(
    train: list[Fingerprint], val: list[Fingerprint], cancel: threading.Event | None = None
) -> list[Leak]:
    """Every (training image, validation image) pair that is the same picture."""
    leaks = []
    for i, j in _close_pairs(_hashes(train), _hashes(val), NEAR_BITS, cancel):
        if same_pixels(train[i], val[j]):
            kind = "exact"
        elif alike(train[i], val[j]):
            kind = "near"
        else:
            continue
        leaks.append(Leak(kind, train[i].path, val[j].path, (train[i].digest, val[j].digest)))
    return leaks


def alike(a: Fingerprint, b: Fingerprint) -> bool:
    """The second test of a near duplicate, for two images whose hashes are close."""
    return float(np.dot(a.structure, b.structure)) >= NEAR_CORRELATION


def same_pixels(a: Fingerprint, b: Fingerprint) -> bool:
    """Identical files, or the same pixels once both are decoded in full. Pictures with the same
    pixels have the same grey copies (or are both flat), so other pairs are not decoded."""
    if a.digest == b.digest:
        return True
    both_flat = not a.structure.any() and not b.structure.any()
    if not (both_flat or alike(a, b)):
        return False
    try:
        return np.array_equal(read_rgb(a.path), read_rgb(b.path))
    except UnreadableImage:
        return False


def _group(kind: str, prints: list[Fingerprint], members: list[int]) -> DuplicateGroup:
    return DuplicateGroup(kind, [prints[i].path for i in members], [prints[i].digest for i in members])


def _close_pairs(
    left: np.ndarray, right: np.ndarray | None, max_bits: int, cancel: threading.Event | None
) -> list[tuple[int, int]]:
    """(i, j) with Hamming distance <= max_bits: i < j within `left` when `right` is None."""
    pairs: list[tuple[int, int]] = []
    other = left if right is None else right
    for start in range(0, len(left), _CHUNK_ROWS):
        if cancel is not None and cancel.is_set():
            break
        rows = left[start : start + _CHUNK_ROWS]
        distances = np.bitwise_count(rows[:, None] ^ other[None, :])
        close = distances <= max_bits
        if right is None:  # each unordered pair once, never an image with itself
            close &= np.arange(len(other))[None, :] > np.arange(start, start + len(rows))[:, None]
        for i, j in zip(*np.nonzero(close), strict=True):
            pairs.append((start + int(i), int(j)))
    return pairs


def _hashes(prints: list[Fingerprint]) -> np.ndarray:
    return np.fromiter((p.phash for p in prints), dtype=np.uint64, count=len(prints))


def _structure(image: np.ndarray) -> np.ndarray:
    from PIL import Image

    side = (STRUCTURE_SIDE, STRUCTURE_SIDE)
    grey = Image.fromarray(image).convert("L").resize(side, Image.Resampling.BILINEAR)
    values = np.asarray(grey, np.float32).ravel()
    values -= values.mean()
    norm = float(np.linalg.norm(values))
    return values / norm if norm > 1e-6 else np.zeros_like(values)


def _squeeze(image: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR), np.uint8)


def _file_digest(path: str) -> str:
    digest = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as handle:
            while block := handle.read(_READ_BLOCK):
                digest.update(block)
    except OSError as exc:
        raise UnreadableImage(f"cannot be opened: {exc.strerror or exc}") from None
    return digest.hexdigest()


class UnionFind:
    def __init__(self, size: int):
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)

    def groups(self) -> list[list[int]]:
        """Sets of two or more members, each sorted, in order of their smallest member."""
        members: dict[int, list[int]] = {}
        for item in range(len(self.parent)):
            members.setdefault(self.find(item), []).append(item)
        return [group for group in members.values() if len(group) > 1]
