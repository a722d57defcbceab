"""Dataset fingerprints and manifests: same data, same fingerprint; changed files named."""

import os

from conftest import make_class_folders, write_image

from core.data.dataset import load_split
from core.data.fingerprint import DatasetSnapshot, compare, read_manifest, write_manifest


def snapshot(train_dir, val_dir=None, seed=1):
    train, val = load_split(train_dir, val_dir, 0.25, seed)
    return DatasetSnapshot.take(train, val, train_dir, val_dir)


def test_the_same_data_gives_the_same_fingerprint_and_a_change_a_new_one(tiny_dataset):
    train_dir, val_dir = tiny_dataset
    first, again = snapshot(train_dir, val_dir), snapshot(train_dir, val_dir)
    assert first.fingerprint == again.fingerprint and compare(first.manifest, again.manifest) == []
    assert first.fingerprint["train"]["files"] == 24 and first.fingerprint["val"]["files"] == 12
    assert first.fingerprint["train"]["class_counts"] == {"blue": 8, "green": 8, "red": 8}
    os.utime(os.path.join(val_dir, "red", "red_000.png"), ns=(1, 1))
    touched = snapshot(train_dir, val_dir)
    assert touched.fingerprint["train"] == first.fingerprint["train"]
    assert touched.fingerprint["val"]["hash"] != first.fingerprint["val"]["hash"]
    assert touched.fingerprint["hash"] != first.fingerprint["hash"]


def test_compare_names_added_removed_and_changed_files(tiny_dataset):
    train_dir, val_dir = tiny_dataset
    before = snapshot(train_dir, val_dir)
    os.remove(os.path.join(train_dir, "blue", "blue_000.png"))
    write_image(os.path.join(train_dir, "green", "new.png"), (0, 200, 0))
    write_image(os.path.join(val_dir, "red", "red_001.png"), (255, 0, 0), size=20)
    (changed_train, changed_val) = compare(before.manifest, snapshot(train_dir, val_dir).manifest)
    assert changed_train.folder == os.path.abspath(train_dir)
    assert (changed_train.added, changed_train.removed, changed_train.modified) == (
        ["green/new.png"], ["blue/blue_000.png"], [])
    assert changed_val.modified == ["red/red_001.png"] and not changed_val.added
    assert changed_train.describe() == (
        f"in {os.path.abspath(train_dir)}: 1 added (green/new.png); 1 removed (blue/blue_000.png)")


def test_a_split_folder_is_compared_whole_whatever_the_split(tmp_path):
    root = make_class_folders(str(tmp_path / "all"), {"a": 8, "b": 8})
    one, other = snapshot(root, seed=1), snapshot(root, seed=2)
    assert one.fingerprint["train"]["hash"] != other.fingerprint["train"]["hash"]  # another split
    assert compare(one.manifest, other.manifest) == []  # but the same files
    assert len(one.manifest["folders"]["train"]["files"]) == 16 and "val" not in one.manifest["folders"]


def test_other_folders_are_not_compared(tmp_path):
    first = make_class_folders(str(tmp_path / "first"), {"a": 4, "b": 4})
    second = make_class_folders(str(tmp_path / "second"), {"a": 3, "b": 4})
    assert compare(snapshot(first).manifest, snapshot(second).manifest) == []


def test_many_changes_are_counted_beyond_the_first_names(tmp_path):
    root = make_class_folders(str(tmp_path / "data"), {"a": 4, "b": 4})
    before = snapshot(root)
    make_class_folders(root, {"a": 12})  # a_004 .. a_011 are new (a_000 .. a_003 rewritten)
    (changes,) = compare(before.manifest, snapshot(root).manifest)
    assert "8 added (a/a_004.png, a/a_005.png, a/a_006.png, a/a_007.png, a/a_008.png and 3 more)" in (
        changes.describe())


def test_the_manifest_round_trips_and_a_damaged_one_reads_as_none(tmp_path, tiny_dataset):
    taken = snapshot(*tiny_dataset)
    path = str(tmp_path / "dataset.json.gz")
    write_manifest(path, taken.manifest)
    assert read_manifest(path) == taken.manifest
    assert read_manifest(str(tmp_path / "missing.json.gz")) is None
    with open(path, "r+b") as handle:
        handle.truncate(30)
    assert read_manifest(path) is None
    (tmp_path / "plain.json.gz").write_text("not gzip")
    assert read_manifest(str(tmp_path / "plain.json.gz")) is None
