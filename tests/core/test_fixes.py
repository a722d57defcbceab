"""Moves, quarantine, undo and "not a problem" on a temporary dataset; failures leave files alone.
Crafted logs (a dataset someone shares) never move a file out of, into or over anything outside it."""

import errno
import json
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
    def refuse(source, target, **kwargs):
        raise PermissionError(13, "Permission denied", target)

    monkeypatch.setattr(fixes.os, "link", refuse)
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


# --- crafted logs --------------------------------------------------------------------------------


def write_log(root, *entries):
    moves = [{"id": f"m{i}", "action": "relabel", "at": "2026-12-05T00:00:00+0000", **entry}
             for i, entry in enumerate(entries)]
    files.write_json(os.path.join(root, MOVES_FILE), {"moves": moves})


@pytest.fixture
def outside(tmp_path):
    """A folder beside the dataset with a file of the user's that nothing may touch."""
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "notes.png").write_bytes(b"the user's own file")
    return folder


def test_a_crafted_log_that_leaves_the_dataset_is_refused_and_never_carried_out(root, outside):
    write_log(
        root,
        {"source": "../home/notes.png", "target": "cat/cat_000.png"},  # would put cat_000 over notes
        {"source": str(outside / "stolen.png"), "target": "cat/cat_001.png"},  # absolute
        {"source": "cat/cat_002.png", "target": "dog/../../home/x.png"},
        {"source": "cat/../fitstudio-kept.json", "target": "dog/dog_000.png"},  # a file of the root itself
        {"source": "dog/fine.png", "target": "cat/dog_001.png"},
    )
    before, home_before = snapshot(root), snapshot(str(outside))
    moves = fixes.read_moves(root)
    assert [m.refused for m in moves] == [fixes.OUTSIDE] * 4 + [""]
    for move in moves[:4]:
        with pytest.raises(MoveError, match="outside this dataset") as error:
            fixes.undo(root, move.id)
        assert "Nothing was changed" in str(error.value)
    assert fixes.last_undoable(root) == moves[4]
    assert snapshot(root) == before and snapshot(str(outside)) == home_before
    assert not os.path.exists(outside / "stolen.png") and not os.path.exists(outside / "x.png")


def test_a_class_folder_linked_out_of_the_dataset_is_outside(root, outside, tmp_path):
    os.symlink(outside, os.path.join(root, "linked"))
    write_log(root, {"source": "linked/notes.png", "target": "cat/cat_000.png"},
              {"source": "cat/cat_001.png", "target": "linked/cat_001.png"})
    assert [m.refused for m in fixes.read_moves(root)] == [fixes.OUTSIDE, fixes.OUTSIDE]
    with pytest.raises(MoveError, match="outside this dataset"):
        fixes.undo(root, "m1")
    with pytest.raises(MoveError, match="outside this dataset"):
        fixes.move_to_class(root, os.path.join(root, "cat", "cat_002.png"), "linked")
    with pytest.raises(MoveError, match="not inside"):
        fixes.quarantine(root, os.path.join(root, "linked", "notes.png"))
    os.symlink(outside, os.path.join(root, "_quarantine"))
    with pytest.raises(MoveError, match="outside this dataset"):
        fixes.quarantine(root, os.path.join(root, "cat", "cat_002.png"))
    assert sorted(os.listdir(outside)) == ["notes.png"] and len(os.listdir(os.path.join(root, "cat"))) == 3


def test_a_dataset_reached_through_a_link_still_moves_inside_itself(root, tmp_path):
    linked_root = str(tmp_path / "shortcut")
    os.symlink(root, linked_root)
    move = fixes.move_to_class(linked_root, os.path.join(linked_root, "cat", "cat_000.png"), "dog")
    assert move.target == "dog/cat_000.png" and os.path.isfile(os.path.join(root, "dog", "cat_000.png"))
    fixes.undo(linked_root, move.id)
    assert os.path.isfile(os.path.join(root, "cat", "cat_000.png"))


def test_undo_of_a_logged_move_never_replaces_an_existing_file(root):
    write_log(root, {"source": "cat/cat_000.png", "target": "dog/dog_000.png"})  # both exist
    before = snapshot(root)
    with pytest.raises(MoveError, match="already exists"):
        fixes.undo(root, "m0")
    assert snapshot(root) == before and not fixes.read_moves(root)[0].undone


@pytest.mark.parametrize("hard_links", [True, False])
def test_a_target_that_appears_after_the_check_is_never_replaced(root, monkeypatch, hard_links):
    """The race: another program puts a file at the target between the check and the rename."""
    target = os.path.join(root, "dog", "cat_000.png")
    real_link = os.link

    def appears_meanwhile(path):
        with open(target, "wb") as handle:
            handle.write(b"written by someone else meanwhile")
        return False

    def no_hard_links(source, link_name, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(fixes.os.path, "lexists", appears_meanwhile)
    monkeypatch.setattr(fixes.os, "link", real_link if hard_links else no_hard_links)
    with pytest.raises(MoveError, match="already exists"):
        fixes.move_to_class(root, os.path.join(root, "cat", "cat_000.png"), "dog")
    with open(target, "rb") as handle:
        assert handle.read() == b"written by someone else meanwhile"
    assert os.path.isfile(os.path.join(root, "cat", "cat_000.png")) and fixes.read_moves(root) == []


def test_without_hard_links_a_move_claims_the_name_first_and_still_works(root, monkeypatch):
    def no_hard_links(source, link_name, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(fixes.os, "link", no_hard_links)
    path = os.path.join(root, "cat", "cat_000.png")
    with open(path, "rb") as handle:
        picture = handle.read()
    move = fixes.move_to_class(root, path, "dog")
    with open(os.path.join(root, "dog", "cat_000.png"), "rb") as handle:
        assert handle.read() == picture
    fixes.undo(root, move.id)
    assert os.path.isfile(path) and not os.path.exists(os.path.join(root, "dog", "cat_000.png"))


def test_an_image_that_is_a_link_moves_as_a_link(root, outside):
    link = os.path.join(root, "cat", "linked.png")
    os.symlink(outside / "notes.png", link)
    move = fixes.quarantine(root, link)
    assert os.path.islink(os.path.join(root, "_quarantine", "cat", "linked.png"))
    assert (outside / "notes.png").read_bytes() == b"the user's own file"
    fixes.undo(root, move.id)
    assert os.path.islink(link) and sorted(os.listdir(outside)) == ["notes.png"]


def test_a_link_planted_where_the_log_is_written_is_not_followed(root, outside):
    """The temporary name has a random part (files.write_atomic): a link planted at the name an
    older version used, the only one guessable, is never written through."""
    partial = os.path.join(root, "fitstudio-moves.partial.json")
    os.symlink(outside / "notes.png", partial)
    fixes.move_to_class(root, os.path.join(root, "cat", "cat_000.png"), "dog")
    assert (outside / "notes.png").read_bytes() == b"the user's own file"
    assert len(fixes.read_moves(root)) == 1
    assert [name for name in os.listdir(root) if ".partial" in name] == ["fitstudio-moves.partial.json"]


@pytest.mark.parametrize("log", [
    {"moves": "not a list"},
    {"moves": [{"id": 1, "action": "relabel", "source": "cat/a.png", "target": "dog/a.png"},
               {"id": "x", "action": "relabel", "source": ["cat"], "target": "dog/a.png"},
               {"id": "y", "action": "undo", "undoes": ["x"]}, "a string"]},
    ["a", "list"],
])
def test_a_log_of_the_wrong_shape_reads_as_no_moves(root, log):
    with open(os.path.join(root, MOVES_FILE), "w") as handle:
        json.dump(log, handle)
    assert fixes.read_moves(root) == [] and fixes.last_undoable(root) is None


def test_kept_keys_of_the_wrong_shape_are_ignored(root):
    files.write_json(os.path.join(root, fixes.KEPT_FILE),
                     {"kept": [{"key": ["a", "list"]}, {"key": 3}, {"key": "label:abc:cat"}, "text"]})
    assert fixes.kept_keys(root) == {"label:abc:cat"}
    files.write_json(os.path.join(root, fixes.KEPT_FILE), {"kept": "nothing"})
    assert fixes.kept_keys(root) == set()
    fixes.keep(root, "outlier:1", "an odd one")
    assert fixes.kept_keys(root) == {"outlier:1"}


def test_a_label_move_goes_back_only_into_the_unlabeled_folder_the_caller_names(tmp_path):
    root, unlabeled = tmp_path / "train", tmp_path / "unlabeled"
    (root / "cat").mkdir(parents=True)
    unlabeled.mkdir()
    (unlabeled / "new.png").write_bytes(b"pixels")
    move = fixes.label_into(str(root), str(unlabeled), str(unlabeled / "new.png"),
                            str(root / "cat" / "new.png"))
    assert (move.action, move.source, move.target) == ("label", "new.png", "cat/new.png")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for origin in (None, str(elsewhere)):
        with pytest.raises(fixes.MoveError, match="undo it in the Label tab"):
            fixes.undo(str(root), move.id, origin=origin)
    assert (root / "cat" / "new.png").exists() and not (elsewhere / "new.png").exists()
    fixes.undo(str(root), move.id, origin=str(unlabeled))
    assert (unlabeled / "new.png").read_bytes() == b"pixels"


def test_a_crafted_label_entry_cannot_aim_its_undo_out_of_its_unlabeled_folder(tmp_path):
    root, unlabeled = tmp_path / "train", tmp_path / "unlabeled"
    (root / "cat").mkdir(parents=True)
    unlabeled.mkdir()
    (root / "cat" / "a.png").write_bytes(b"pixels")
    entry = {"id": "m1", "action": "label", "source": "../precious.png", "target": "cat/a.png",
             "at": "2026-12-05T00:00:00", "origin": str(unlabeled)}
    (root / fixes.MOVES_FILE).write_text(json.dumps({"moves": [entry]}))
    assert fixes.read_moves(str(root))[0].refused == fixes.OUTSIDE
    with pytest.raises(fixes.MoveError):
        fixes.undo(str(root), "m1", origin=str(unlabeled))
    assert (root / "cat" / "a.png").exists() and not (tmp_path / "precious.png").exists()
