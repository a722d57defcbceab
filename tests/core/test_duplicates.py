"""Exact and near duplicates and leaks on small made datasets with known copies."""

import os
import shutil
import threading

import numpy as np
import pytest
from conftest import make_class_folders
from PIL import Image, ImageEnhance

from core.data.dataset import balanced_class_weights, imbalance_ratio, list_classes, scan
from core.data.duplicates import (
    NEAR_BITS,
    find_duplicates,
    find_leaks,
    fingerprint,
    fingerprint_all,
)


def textured(path, seed: int, size: int = 48) -> str:
    """A picture with structure at every scale, unlike any other seed's."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
    coarse = coarse.resize((size, size), Image.BICUBIC)
    pixels = np.asarray(coarse, dtype=np.int16) + rng.integers(-10, 11, (size, size, 3))
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(str(path))
    return str(path)


def prints_of(paths):
    prints, reasons, _ = fingerprint_all(paths)
    assert reasons == [None] * len(paths)
    return prints


def test_exact_copies_are_found_whatever_the_name_or_format(tmp_path):
    originals = [textured(tmp_path / "a" / f"{i}.png", seed=i) for i in range(6)]
    shutil.copy(originals[0], tmp_path / "a" / "renamed.png")
    Image.open(originals[1]).save(tmp_path / "a" / "as_bmp.bmp")  # same pixels, another format
    paths = [*originals, str(tmp_path / "a" / "renamed.png"), str(tmp_path / "a" / "as_bmp.bmp")]
    groups = find_duplicates(prints_of(paths))
    assert [(g.kind, sorted(map(os.path.basename, g.paths))) for g in groups] == [
        ("exact", ["0.png", "renamed.png"]),
        ("exact", ["1.png", "as_bmp.bmp"]),
    ]


@pytest.mark.parametrize("change", ["jpeg", "resize", "brighter"])
def test_re_encoded_resized_or_recoloured_copies_are_near_duplicates(tmp_path, change):
    originals = [textured(tmp_path / f"{i}.png", seed=10 + i, size=96) for i in range(5)]
    image = Image.open(originals[2])
    copy = str(tmp_path / ("copy.jpg" if change == "jpeg" else "copy.png"))
    if change == "jpeg":
        image.save(copy, quality=60)
    elif change == "resize":
        image.resize((80, 80), Image.BICUBIC).save(copy)
    else:
        ImageEnhance.Brightness(image).enhance(1.1).save(copy)
    groups = find_duplicates(prints_of([*originals, copy]))
    found = [(g.kind, sorted(map(os.path.basename, g.paths))) for g in groups]
    assert found == [("near", ["2.png", os.path.basename(copy)])]


def test_distinct_images_are_not_duplicates(tmp_path):
    paths = [textured(tmp_path / f"{i}.png", seed=100 + i) for i in range(40)]
    assert find_duplicates(prints_of(paths)) == []


def test_images_with_close_hashes_but_other_structure_are_not_near_duplicates(tmp_path):
    flat = []
    for name, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200)), ("grey", (128, 128, 128))):
        path = str(tmp_path / f"{name}.png")
        Image.new("RGB", (32, 32), colour).save(path)
        flat.append(path)
    prints = prints_of(flat)
    assert len({p.phash for p in prints}) == 1  # a flat picture has no frequencies to hash
    assert find_duplicates(prints) == []
    Image.new("RGB", (32, 32), (200, 30, 30)).save(tmp_path / "red.bmp")  # but the same flat red is
    groups = find_duplicates(prints_of([*flat, str(tmp_path / "red.bmp")]))
    found = [(g.kind, sorted(map(os.path.basename, g.paths))) for g in groups]
    assert found == [("exact", ["red.bmp", "red.png"])]


def test_leaks_pair_each_training_image_with_its_copy_in_validation(tmp_path):
    train = [textured(tmp_path / "train" / "c" / f"{i}.png", seed=i, size=96) for i in range(8)]
    val = [textured(tmp_path / "val" / "c" / f"{i}.png", seed=50 + i, size=96) for i in range(4)]
    shutil.copy(train[3], tmp_path / "val" / "c" / "same.png")
    Image.open(train[5]).save(tmp_path / "val" / "c" / "reencoded.jpg", quality=85)
    val += [str(tmp_path / "val" / "c" / "same.png"), str(tmp_path / "val" / "c" / "reencoded.jpg")]
    leaks = find_leaks(prints_of(train), prints_of(val))
    found = sorted((leak.kind, os.path.basename(leak.train), os.path.basename(leak.val)) for leak in leaks)
    assert found == [
        ("exact", "3.png", "same.png"),
        ("near", "5.png", "reencoded.jpg"),
    ]


def test_unreadable_files_get_a_reason_and_no_fingerprint(tmp_path):
    good = textured(tmp_path / "good.png", seed=1)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    prints, reasons, small = fingerprint_all([good, str(tmp_path / "empty.png"), str(tmp_path / "text.jpg")],
                                             keep_small=True)
    assert prints[0] is not None and prints[1] is None and prints[2] is None
    assert reasons[0] is None and "empty" in reasons[1] and "not an image" in reasons[2]
    assert small.shape == (3, 32, 32, 3) and small[0].any() and not small[1].any()


def test_fingerprint_keys_the_content_not_the_name(tmp_path):
    path = textured(tmp_path / "a.png", seed=3)
    shutil.copy(path, tmp_path / "b.png")
    first, _ = fingerprint(path)
    second, _ = fingerprint(str(tmp_path / "b.png"))
    assert first.digest == second.digest and first.phash == second.phash and 0 < NEAR_BITS < 16


def test_a_cancelled_fingerprinting_stops_without_reading_on(tmp_path):
    paths = [textured(tmp_path / f"{i}.png", seed=i) for i in range(20)]
    cancel = threading.Event()
    cancel.set()
    prints, _, _ = fingerprint_all(paths, cancel=cancel)
    assert prints == [None] * 20


def test_balanced_class_weights_and_imbalance_ratio():
    counts = {"cat": 30, "dog": 10, "owl": 20, "empty": 0}
    weights = balanced_class_weights(counts)
    assert weights == {"cat": 0.6667, "dog": 2.0, "owl": 1.0}
    # every present class then weighs the same in the loss: n_c * w_c is constant
    assert len({round(counts[name] * w, 2) for name, w in weights.items()}) == 1
    assert imbalance_ratio(counts) == 3.0 and imbalance_ratio({"a": 4}) is None


def test_the_scanner_ignores_the_quarantine_folder(tmp_path):
    root = make_class_folders(str(tmp_path), {"cat": 2, "dog": 2})
    make_class_folders(str(tmp_path / "_quarantine"), {"cat": 1})
    assert list_classes(root) == ["cat", "dog"]
    files, _ = scan(root)
    assert len(files) == 4
