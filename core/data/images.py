"""Turning one image file into an RGB uint8 array of the model's input size, with Pillow.

Every decode goes through `decode_image` (the model's input) or `read_rgb` (a picture of a
data image for people, with the same orientation and colours the model gets); every cheap
pre-flight check through `probe_image`. All raise `UnreadableImage` with a reason a person can act
on, never a Pillow exception.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# What keras.utils.image_dataset_from_directory accepts, plus the formats cameras and scanners write.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

# A JPEG ends with the EOI marker, a PNG with its IEND chunk. Looking at the last bytes catches a
# truncated file for the price of one seek; files with data appended after the end (motion photos)
# fail this test and are then decoded fully before being judged.
_TAIL_BYTES = 4096
_END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND"}


class UnreadableImage(Exception):
    """The file cannot be used as an image; str(exc) is the reason shown to the user."""


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str


def is_image_file(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def probe_image(path: str) -> ImageInfo:
    """Reads the header (and the file's end) to reject unusable files without decoding them."""
    with _open(path) as image:
        info = ImageInfo(image.width, image.height, image.format or "?")
        if not _ends_properly(path, info.format):
            _load_or_raise(image)
    return info


def decode_image(path: str, size: int, resize_mode: str = "stretch") -> np.ndarray:
    """Decodes `path` to a (size, size, 3) uint8 RGB array.

    JPEGs much larger than the target are decoded at a reduced scale (DCT scaling via `draft`),
    which is 2-4x faster and invisible after the final resize. EXIF orientation is applied, and
    every mode (palette, alpha, CMYK, 16-bit, 1-bit) becomes 8-bit RGB with alpha over white.
    """
    return _to_model_input(_decode_rgb(path, size), size, resize_mode)


def frame_to_model_input(rgb: np.ndarray, size: int, resize_mode: str = "stretch") -> np.ndarray:
    """A camera or video frame, (h, w, 3) uint8 RGB, as the model's (size, size, 3) input: the same
    box and resampling as `decode_image`, so a frame is seen as a saved image of it would be."""
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), mode="RGB")
    return _to_model_input(image, size, resize_mode)


def _to_model_input(rgb: Image.Image, size: int, resize_mode: str) -> np.ndarray:
    box = model_input_box(rgb.width, rgb.height, resize_mode)
    if rgb.size != (size, size) or box != (0.0, 0.0, rgb.width, rgb.height):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR, box=box)
    return np.asarray(rgb, dtype=np.uint8)


def model_input_box(width: int, height: int, resize_mode: str) -> tuple[float, float, float, float]:
    """(left, top, right, bottom): the part of a width x height image that `decode_image` turns into
    the model's square input. All of it for `stretch`; the centred square for `crop`, the box
    `ImageOps.fit` takes. Heatmaps are placed back onto the image through this same box."""
    if resize_mode != "crop" or width == height:
        return (0.0, 0.0, float(width), float(height))
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return (left, top, left + side, top + side)


def read_rgb(path: str, max_side: int | None = None) -> np.ndarray:
    """Decodes `path` to an (height, width, 3) uint8 RGB array in its own aspect ratio: full size, or
    shrunk so that its longer side is at most `max_side` (JPEGs then decode at a reduced scale).

    For thumbnails, perceptual hashes and pixel-exact comparisons: the same orientation and colour
    handling as `decode_image` (alpha over white, 16-bit scaled), without the square resize.
    """
    rgb = _decode_rgb(path, max_side)
    if max_side and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _decode_rgb(path: str, size: int | None) -> Image.Image:
    """The oriented 8-bit RGB image, decoded at a reduced scale when a JPEG is much larger than `size`."""
    with _open(path) as image:
        if size and image.format == "JPEG":
            # draft keeps both sides >= the request, so a later resize still only shrinks.
            image.draft("RGB", (size, size))
        _load_or_raise(image)
        image = ImageOps.exif_transpose(image)
        return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency is composited on white like a viewer shows it."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        image = _scale_to_8bit(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _scale_to_8bit(image: Image.Image) -> Image.Image:
    # Pillow's own conversion clips 16-bit values at 255, which turns most scans white.
    values = np.asarray(image, dtype=np.float64)
    top = values.max() if values.size else 0.0
    if top > 255:
        values = values * (255.0 / (65535.0 if top <= 65535 else top))
    return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), mode="L")


def _open(path: str) -> Image.Image:
    try:
        if os.path.getsize(path) == 0:
            raise UnreadableImage("empty file (0 bytes)")
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; it raises above.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except UnreadableImage:
        raise
    except Image.DecompressionBombError as exc:
        raise UnreadableImage(f"refused as a possible decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise UnreadableImage("not an image (the content is not a format Pillow reads)") from None
    except OSError as exc:
        if exc.errno is not None:  # the file system said no: permissions, a vanished file
            raise UnreadableImage(f"cannot be opened: {exc.strerror}") from None
        raise UnreadableImage(f"truncated or corrupt image data ({exc})") from None


def _load_or_raise(image: Image.Image) -> None:
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnreadableImage(f"truncated or corrupt image data ({exc})") from None


def _ends_properly(path: str, image_format: str) -> bool:
    marker = _END_MARKERS.get(image_format)
    if marker is None:
        return False  # other formats have no cheap end check: decode them fully
    with open(path, "rb") as handle:
        handle.seek(max(0, os.path.getsize(path) - _TAIL_BYTES))
        return marker in handle.read()
