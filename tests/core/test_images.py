"""Decoding: every mode to 8-bit RGB, EXIF orientation, resize modes, and every kind of bad file."""

import io
import os

import numpy as np
import pytest
from PIL import Image

from core.data.images import UnreadableImage, decode_image, is_image_file, probe_image, read_rgb


def save(tmp_path, name, image, **options):
    path = str(tmp_path / name)
    image.save(path, **options)
    return path


@pytest.mark.parametrize(
    ("mode", "colour"),
    [("L", 128), ("1", 1), ("RGB", (10, 200, 30)), ("CMYK", (0, 255, 255, 0)), ("I;16", 40000)],
)
def test_every_mode_becomes_uint8_rgb(tmp_path, mode, colour):
    suffix = ".jpg" if mode == "CMYK" else ".png"
    path = save(tmp_path, f"image{suffix}", Image.new(mode, (20, 10), colour))
    pixels = decode_image(path, 8)
    assert pixels.shape == (8, 8, 3)
    assert pixels.dtype == np.uint8


def test_sixteen_bit_values_are_scaled_not_clipped(tmp_path):
    path = save(tmp_path, "scan.png", Image.new("I;16", (4, 4), 32768))
    assert 120 < decode_image(path, 4).mean() < 136  # half of 65535 is mid-grey, not white


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparent_pixels_are_composited_on_white(tmp_path, mode):
    colour = (0, 0, 0, 0) if mode == "RGBA" else (0, 0)
    path = save(tmp_path, "clear.png", Image.new(mode, (6, 6), colour))
    assert (decode_image(path, 6) == 255).all()


def test_palette_with_transparency_is_composited_on_white(tmp_path):
    image = Image.new("P", (6, 6), 0)
    image.putpalette([0, 0, 0] * 256)
    path = save(tmp_path, "clear.gif", image, transparency=0)
    assert (decode_image(path, 6) == 255).all()


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was rotated: display turned 90 degrees clockwise
    path = save(tmp_path, "rotated.jpg", image, exif=exif, quality=95)
    pixels = decode_image(path, 20, "crop")
    top, bottom = pixels[:5].mean(axis=(0, 1)), pixels[-5:].mean(axis=(0, 1))
    assert top[2] > 200 and top[0] < 60  # blue moved to the top
    assert bottom[0] > 200 and bottom[2] < 60


def test_crop_keeps_the_aspect_ratio_and_stretch_does_not(tmp_path):
    image = Image.new("RGB", (30, 10), (0, 0, 0))
    image.paste((255, 255, 255), (10, 0, 20, 10))  # white middle third
    path = save(tmp_path, "wide.png", image)
    assert decode_image(path, 10, "crop").min() > 200  # only the middle square is kept
    assert decode_image(path, 10, "stretch")[:, 0].max() < 50  # the black left edge survives


def test_large_jpeg_is_decoded_at_reduced_scale_to_the_right_size(tmp_path):
    rng = np.random.default_rng(0)
    big = Image.fromarray(rng.integers(0, 255, (1200, 1600, 3), dtype=np.uint8))
    path = save(tmp_path, "photo.jpg", big, quality=90)
    assert decode_image(path, 224).shape == (224, 224, 3)


def test_extensions_are_case_insensitive_and_hidden_files_ignored():
    assert is_image_file("A.JPG") and is_image_file("b.Tiff") and is_image_file("c.webp")
    assert not is_image_file(".hidden.jpg") and not is_image_file("notes.txt")


def bad_files(tmp_path):
    good = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(good, "JPEG")
    png = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(png, "PNG")
    files = {
        "empty.jpg": b"",
        "text.jpg": b"this is a text file, not a picture\n" * 4,
        "truncated.jpg": good.getvalue()[: len(good.getvalue()) // 2],
        "truncated.png": png.getvalue()[: len(png.getvalue()) - 30],
    }
    paths = {}
    for name, data in files.items():
        paths[name] = str(tmp_path / name)
        with open(paths[name], "wb") as handle:
            handle.write(data)
    paths["bomb.png"] = save(tmp_path, "bomb.png", Image.new("1", (20000, 20000)))
    return paths


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty.jpg", "empty file"),
        ("text.jpg", "not an image"),
        ("truncated.jpg", "truncated"),
        ("truncated.png", "truncated"),
        ("bomb.png", "decompression bomb"),
    ],
)
def test_bad_files_are_rejected_with_a_reason(tmp_path, name, reason):
    path = bad_files(tmp_path)[name]
    with pytest.raises(UnreadableImage, match=reason):
        probe_image(path)
    with pytest.raises(UnreadableImage):
        decode_image(path, 16)


def test_jpeg_with_data_after_its_end_is_still_readable(tmp_path):
    path = save(tmp_path, "motion.jpg", Image.new("RGB", (32, 32), (9, 9, 9)))
    with open(path, "ab") as handle:
        handle.write(os.urandom(10_000))  # e.g. a motion photo's video after the JPEG
    assert probe_image(path).width == 32


def test_reduced_scale_jpeg_decoding_looks_the_same_at_model_size(tmp_path):
    """draft() decodes a 1600x1200 JPEG at 1/4 scale; after the resize to 224 px the result must be
    indistinguishable from a full decode resized the same way."""
    rng = np.random.default_rng(1)
    coarse = Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    photo = coarse.resize((1600, 1200), Image.Resampling.BICUBIC)
    path = save(tmp_path, "photo.jpg", photo, quality=92)
    fast = decode_image(path, 224).astype(np.int16)
    full = Image.open(path).convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
    difference = np.abs(fast - np.asarray(full, dtype=np.int16))
    assert difference.mean() < 1.5 and np.percentile(difference, 99) < 8


def test_thumbnails_keep_the_aspect_and_the_model_s_colours(tmp_path):
    wide = save(tmp_path, "wide.png", Image.new("RGBA", (300, 100), (0, 0, 0, 0)))
    scan = save(tmp_path, "scan.png", Image.new("I;16", (50, 200), 32768))
    clear = read_rgb(wide, 120)
    assert clear.shape == (40, 120, 3) and clear.dtype == np.uint8
    assert (clear == 255).all()  # transparent is white, as the model gets it (Pillow's convert: black)
    grey = read_rgb(scan, 120)
    assert grey.shape == (120, 30, 3)
    assert 120 < grey.mean() < 136 and np.ptp(grey) <= 1  # mid-grey, as the model gets it (not white)
    assert np.array_equal(grey[0, 0], decode_image(scan, 8)[0, 0])


def test_thumbnails_are_upright_and_never_enlarged(tmp_path):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed turned 90 degrees clockwise: blue on top
    path = save(tmp_path, "rotated.jpg", image, exif=exif, quality=95)
    pixels = read_rgb(path, 120)
    assert pixels.shape == (40, 20, 3)
    assert pixels[:5].mean(axis=(0, 1))[2] > 200 and pixels[-5:].mean(axis=(0, 1))[0] > 200


def test_a_broken_file_has_no_thumbnail(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(UnreadableImage):
        read_rgb(str(path), 120)
