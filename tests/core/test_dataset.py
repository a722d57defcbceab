"""Scanning folders: class order, recursion, hidden files, bad files, mismatches, the split."""

import os
import threading

import numpy as np
import pytest
from conftest import make_class_folders, write_image

from core.data import dataset
from core.data.dataset import ScanCancelled, inspect, load_split, scan, stratified_split
from core.errors import DatasetError


def test_classes_are_sorted_subfolders_and_images_are_found_recursively(tmp_path):
    root = make_class_folders(str(tmp_path), {"zebra": 2, "Apple": 2, "mango": 1})
    write_image(str(tmp_path / "mango" / "deep" / "deeper" / "x.JPG"), (1, 2, 3), fmt="JPEG")
    write_image(str(tmp_path / "mango" / ".thumbs" / "hidden.png"), (1, 2, 3))
    write_image(str(tmp_path / "mango" / ".hidden.png"), (1, 2, 3))
    (tmp_path / "mango" / "notes.txt").write_text("not an image")
    os.makedirs(tmp_path / ".git")
    files, _ = scan(root)
    assert files.class_names == ["Apple", "mango", "zebra"]  # Python's sort, as Keras uses
    assert files.counts() == {"Apple": 2, "mango": 2, "zebra": 2}


def test_unreadable_files_are_skipped_with_path_and_reason(tmp_path):
    root = make_class_folders(str(tmp_path), {"a": 3, "b": 3})
    (tmp_path / "a" / "empty.png").write_bytes(b"")
    (tmp_path / "b" / "fake.jpg").write_text("hello")
    report = inspect(root)
    assert report.usable
    assert report.counts == {"a": 3, "b": 3}
    reasons = {os.path.basename(s.path): s.reason for s in report.skipped}
    assert reasons.keys() == {"empty.png", "fake.jpg"}
    assert "empty" in reasons["empty.png"] and "not an image" in reasons["fake.jpg"]


def test_a_class_with_no_readable_image_is_an_error_naming_it(tmp_path):
    root = make_class_folders(str(tmp_path), {"a": 3, "b": 3})
    os.makedirs(tmp_path / "c")
    (tmp_path / "c" / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    report = inspect(root)
    assert not report.usable and "'c'" in report.error
    with pytest.raises(DatasetError, match="'c'"):
        load_split(root, None, 0.2, 0)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("missing", "does not exist"),
        ("file", "is a file"),
        ("flat", "no class subfolders"),
        ("one-class", "only one class"),
    ],
)
def test_unusable_folders_say_what_to_fix(tmp_path, layout, message):
    root = str(tmp_path / "data")
    if layout == "file":
        (tmp_path / "data").write_text("x")
    elif layout == "flat":
        write_image(os.path.join(root, "cat.png"), (1, 1, 1))
    elif layout == "one-class":
        make_class_folders(root, {"cat": 3})
    report = inspect(root)
    assert not report.usable and message in report.error


def test_validation_classes_must_match_and_the_error_names_them(tmp_path):
    train = make_class_folders(str(tmp_path / "train"), {"cat": 2, "dog": 2, "owl": 2})
    val = make_class_folders(str(tmp_path / "val"), {"cat": 2, "dog": 2, "fox": 2})
    with pytest.raises(DatasetError) as error:
        load_split(train, val, 0.2, 0)
    assert "owl" in str(error.value) and "fox" in str(error.value)


def test_split_is_stratified_seeded_and_disjoint(tmp_path):
    root = make_class_folders(str(tmp_path), {"a": 20, "b": 10, "c": 3})
    files, _ = scan(root)
    train, val = stratified_split(files, 0.2, seed=5)
    assert val.counts() == {"a": 4, "b": 2, "c": 1}  # every class is represented
    assert train.counts() == {"a": 16, "b": 8, "c": 2}
    assert not set(train.paths) & set(val.paths)
    again, _ = stratified_split(files, 0.2, seed=5)
    other, _ = stratified_split(files, 0.2, seed=6)
    assert again.paths == train.paths and other.paths != train.paths
    assert train.labels.dtype == np.int32


def test_report_has_sizes_and_imbalance_warnings(tmp_path):
    root = make_class_folders(str(tmp_path), {"big": 30, "small": 4})
    write_image(str(tmp_path / "small" / "large.png"), (5, 5, 5), size=40)
    report = inspect(root)
    assert report.min_size == (16, 16) and report.max_size == (40, 40)
    text = " ".join(report.warnings)
    assert "imbalanced" in text and "Few images" in text
    data = report.to_json()
    assert data["counts"] == {"big": 30, "small": 5} and data["class_names"] == ["big", "small"]


def test_a_cancelled_scan_stops_at_the_next_file(tmp_path, monkeypatch):
    root = make_class_folders(str(tmp_path), {"a": 60, "b": 60})
    cancel = threading.Event()
    probed = []

    def probe_then_cancel(path):
        probed.append(path)
        if len(probed) == 5:
            cancel.set()
        return real_probe(path)

    real_probe = dataset.probe_image
    monkeypatch.setattr(dataset, "probe_image", probe_then_cancel)
    report = inspect(root, cancel=cancel)
    assert report.error == "The scan was stopped." and not report.usable
    assert len(probed) <= 5 + 8  # at most one more file on each of the (up to 8) probing threads
    with pytest.raises(ScanCancelled):
        scan(root, cancel=cancel)
    assert len(probed) <= 5 + 8 + 8  # the listing of the folders stops too


def test_a_link_back_up_the_tree_is_followed_once_not_forever(tmp_path):
    root = make_class_folders(str(tmp_path / "data"), {"cat": 2, "dog": 1})
    os.symlink(os.path.join(root, "cat"), os.path.join(root, "cat", "again"))  # cat/again/again/...
    elsewhere = make_class_folders(str(tmp_path / "elsewhere"), {"more": 1})
    os.symlink(os.path.join(elsewhere, "more"), os.path.join(root, "dog", "more"))  # met once: kept
    files, _ = scan(root)
    assert files.counts() == {"cat": 2, "dog": 2}
