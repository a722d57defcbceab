"""core.paths.inside: the one check that a path lies inside a folder, links resolved."""

import os

from core.paths import inside


def test_a_path_below_the_root_is_inside_and_comes_back_resolved(tmp_path):
    root = tmp_path / "data"
    (root / "cat").mkdir(parents=True)
    assert inside(str(root), str(root / "cat" / "a.png")) == str(root / "cat" / "a.png")
    assert inside(str(root), str(root / "cat" / "not-yet.png")) == str(root / "cat" / "not-yet.png")
    assert inside(str(root), str(root)) == str(root)


def test_dot_dot_absolute_paths_and_siblings_are_outside(tmp_path):
    root = tmp_path / "data"
    (root / "cat").mkdir(parents=True)
    assert inside(str(root), str(root / "cat" / ".." / ".." / "x.png")) is None
    assert inside(str(root), "/etc/passwd") is None
    assert inside(str(root), str(tmp_path / "data-other" / "x.png")) is None  # a prefix is not a parent
    assert inside(str(root), str(root / "cat" / "bad\0name.png")) is None


def test_linked_folders_count_where_they_point(tmp_path):
    root, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, root / "cat")  # a class folder linked out of the root
    assert inside(str(root), str(root / "cat" / "a.png")) is None
    os.symlink(root, tmp_path / "shortcut")  # the root reached through a link
    assert inside(str(tmp_path / "shortcut"), str(tmp_path / "shortcut" / "dog" / "a.png")) == str(
        root / "dog" / "a.png")


def test_the_last_name_is_not_followed(tmp_path):
    root = tmp_path / "data"
    (root / "cat").mkdir(parents=True)
    os.symlink("/etc/passwd", root / "cat" / "a.png")  # moving the link moves only the link
    assert inside(str(root), str(root / "cat" / "a.png")) == str(root / "cat" / "a.png")
