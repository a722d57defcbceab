"""Moves, quarantine, undo and "not a problem" on a temporary dataset; failures leave files alone."""

import os

import pytest
from conftest import make_class_folders

from core import files
from core.data import fixes
from core.data.dataset import scan
from core.data.fixes import MOVES_FILE, MoveError


@pytest.fixture
def root(tmp_path):
    return make_class_folders(str(tmp_path / "train"), {"cat": 3, "dog": 3})


def snapshot(root):
    """Every file below root with its bytes: what a failed move must leave untouched."""
    found = {}
    for parent, _, names in os.walk(root):
        for name in names:
            if name != MOVES_FILE:
                path = os.path.join(parent, name)
                with open(path, "rb") as handle:
                    found[os.path.relpath(path, root)] = handle.read()
    return found


def test_move_to_another_class_is_logged_and_undone(root):
    path = os.path.join(root, "cat", "cat_000.png")
    move = fixes.move_to_class(root, path, "dog")
    assert not os.path.exists(path) and os.path.isfile(os.path.join(root, "dog", "cat_000.png"))
    assert (move.action, move.source, move.target) == ("relabel", "cat/cat_000.png", "dog/cat_000.png")
    assert scan(root)[0].counts() == {"cat": 2, "dog": 4}
    assert fixes.read_moves(root) == [move]
    assert fixes.last_undoable(root) == move
    undone = fixes.undo(root, move.id)
    assert undone.undone and os.path.isfile(path) and scan(root)[0].counts() == {"cat": 3, "dog": 3}
    assert [m.undone for m in fixes.read_moves(root)] == [True]
    assert fixes.last_undoable(root) is None
    with pytest.raises(MoveError, match="already undone"):
        fixes.undo(root, move.id)


def test_quarantine_sets_the_image_aside_where_the_scanner_does_not_look(root):
    path = os.path.join(root, "dog", "dog_001.png")
    move = fixes.quarantine(root, path)
    assert move.target == "_quarantine/dog/dog_001.png"
    assert os.path.isfile(os.path.join(root, "_quarantine", "dog", "dog_001.png"))
    files_now, _ = scan(root)
    assert files_now.class_names == ["cat", "dog"] and files_now.counts() == {"cat": 3, "dog": 2}
    fixes.undo(root, move.id)
    assert os.path.isfile(path)


def test_a_name_clash_says_why_and_leaves_both_files(root):
    clash = os.path.join(root, "dog", "cat_000.png")
    with open(os.path.join(root, "cat", "cat_001.png"), "rb") as source, open(clash, "wb") as target:
        target.write(source.read())  # a different picture under the same name in dog/
    before = snapshot(root)
    with pytest.raises(MoveError, match="already exists") as error:
        fixes.move_to_class(root, os.path.join(root, "cat", "cat_000.png"), "dog")
    assert "Nothing was changed" in str(error.value)
    assert snapshot(root) == before and fixes.read_moves(root) == []


def test_a_read_only_folder_says_why_and_leaves_both_files(root, monkeypatch):
    # Tests run as root, for whom chmod does not make a folder read-only: the file system's
    # refusal is simulated where the move happens.
    def refuse(source, target):
        raise PermissionError(13, "Permission denied", target)

    monkeypatch.setattr(fixes.os, "rename", refuse)
    before = snapshot(root)
    with pytest.raises(MoveError, match="Permission denied"):
        fixes.move_to_class(root, os.path.join(root, "cat", "cat_000.png"), "dog")
    assert snapshot(root) == before and fixes.read_moves(root) == []


def test_a_quarantine_folder_that_cannot_be_made_says_why(root):
    with open(os.path.join(root, "_quarantine"), "w") as handle:
        handle.write("a file where the folder would go")
    before = snapshot(root)
    with pytest.raises(MoveError, match="Nothing was changed"):
        fixes.quarantine(root, os.path.join(root, "cat", "cat_002.png"))
    assert snapshot(root) == before


def test_an_unwritable_log_reverts_the_move(root, monkeypatch):
    def full_disk(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fixes.files, "write_json", full_disk)
    before = snapshot(root)
    with pytest.raises(MoveError, match="No space left"):
        fixes.move_to_class(root, os.path.join(root, "cat", "cat_000.png"), "dog")
    assert snapshot(root) == before


def test_undo_refuses_when_the_original_place_is_taken_again(root):
    path = os.path.join(root, "cat", "cat_000.png")
    move = fixes.move_to_class(root, path, "dog")
    with open(path, "wb") as handle:
        handle.write(b"someone put a new file here")
    before = snapshot(root)
    with pytest.raises(MoveError, match="already exists"):
        fixes.undo(root, move.id)
    assert snapshot(root) == before and not fixes.read_moves(root)[0].undone


def test_moves_outside_the_dataset_or_to_unknown_classes_are_refused(root, tmp_path):
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(b"x")
    with pytest.raises(MoveError, match="not inside"):
        fixes.quarantine(root, str(outside))
    with pytest.raises(MoveError, match="not a class folder"):
        fixes.move_to_class(root, os.path.join(root, "cat", "cat_000.png"), "horse")
    with pytest.raises(MoveError, match="no longer there"):
        fixes.quarantine(root, os.path.join(root, "cat", "gone.png"))


def test_kept_findings_are_remembered_once_and_a_broken_file_is_ignored(root):
    assert fixes.kept_keys(root) == set()
    fixes.keep(root, "label:abc:cat", "cat/cat_000.png is a cat")
    fixes.keep(root, "label:abc:cat", "again")
    fixes.keep(root, "duplicate:1,2", "two photos")
    assert fixes.kept_keys(root) == {"label:abc:cat", "duplicate:1,2"}
    assert len(files.read_json(os.path.join(root, fixes.KEPT_FILE))["kept"]) == 2
    with open(os.path.join(root, fixes.KEPT_FILE), "w") as handle:
        handle.write("{broken")
    assert fixes.kept_keys(root) == set()
