"""Ranking unlabeled images: the order of each strategy on made probabilities, near duplicates spread
out, accept-above with undo, paths outside the unlabeled folder refused, unreadable files skipped,
and one real scoring with a tiny trained model."""

import os
import shutil

import numpy as np
import pytest
from conftest import COLOURS
from made_datasets import colour_picture
from PIL import Image
from trained_model import tiny_run

from core.data import fixes
from core.data.fixes import MoveError
from core.data.labeling import label_image
from core.errors import DatasetError
from core.modeling import label_ranking
from core.modeling.label_ranking import (
    Ranking,
    accept_above,
    rank_folder,
    rank_probabilities,
    spread_duplicates,
    uncertainty_order,
)

CLASSES = ["blue", "green", "red"]
# Row 0: sure; 1: torn between two (small margin, middling entropy); 2: spread over all three
# (largest entropy, lowest top); 3: fairly sure; 4: torn, a little less than 1.
MADE = np.array([
    [0.98, 0.01, 0.01],
    [0.50, 0.48, 0.02],
    [0.36, 0.33, 0.31],
    [0.80, 0.15, 0.05],
    [0.55, 0.44, 0.01],
])


def test_margin_asks_first_where_the_top_two_are_closest():
    assert list(uncertainty_order(MADE, "margin")) == [1, 2, 4, 3, 0]  # margins .02 .03 .11 .65 .97


def test_entropy_asks_first_where_the_probabilities_are_flattest():
    assert list(uncertainty_order(MADE, "entropy")) == [2, 1, 4, 3, 0]


def test_least_confidence_asks_first_where_the_top_probability_is_lowest():
    assert list(uncertainty_order(MADE, "least-confidence")) == [2, 1, 4, 3, 0]
    torn = np.array([[0.45, 0.45, 0.10], [0.40, 0.30, 0.30]])
    assert list(uncertainty_order(torn, "least-confidence")) == [1, 0]
    assert list(uncertainty_order(torn, "margin")) == [0, 1]


def test_random_is_a_seeded_shuffle_of_every_image():
    first = uncertainty_order(MADE, "random", seed=3)
    assert sorted(first) == [0, 1, 2, 3, 4] and list(first) == list(uncertainty_order(MADE, "random", seed=3))


def test_suggestions_carry_class_probability_margin_entropy_and_rank():
    paths = [f"img{i}.png" for i in range(5)]
    ranked = rank_probabilities(paths, MADE, CLASSES, "margin")
    assert [s.path for s in ranked] == ["img1.png", "img2.png", "img4.png", "img3.png", "img0.png"]
    assert [s.rank for s in ranked] == [1, 2, 3, 4, 5]
    first = ranked[0].to_json()
    assert first["suggested"] == "blue" and first["probability"] == pytest.approx(0.50)
    assert first["margin"] == pytest.approx(0.02)
    assert first["entropy"] == pytest.approx(-sum(p * np.log(p) for p in (0.5, 0.48, 0.02)), abs=1e-6)
    assert set(first) == {"path", "suggested", "probability", "margin", "entropy", "rank"}


def test_near_duplicates_are_deferred_behind_the_distinct_images():
    # Rows 0, 1 and 2 are copies of one picture and the three most uncertain; 3, 4 are distinct.
    order = [0, 1, 2, 3, 4]
    assert spread_duplicates(order, [[0, 1, 2]]) == [0, 3, 4, 1, 2]
    # the copy that comes first in the order stands for its group, whichever row it is
    assert spread_duplicates([2, 3, 0, 4, 1], [[0, 1, 2]]) == [2, 3, 4, 0, 1]
    assert spread_duplicates(order, []) == order


def picture_with_copies(folder, copies):
    """One picture and `copies` near copies of it (brighter, re-saved as JPEG) plus three distinct ones."""
    original = colour_picture(os.path.join(folder, "a_original.png"), COLOURS["red"], seed=1, size=48)
    pixels = np.asarray(Image.open(original), dtype=np.int16)
    for i in range(copies):
        Image.fromarray(np.clip(pixels + 4 * (i + 1), 0, 255).astype(np.uint8)).save(
            os.path.join(folder, f"a_copy{i}.jpg"), quality=95)
    for i in range(3):
        colour_picture(os.path.join(folder, f"b_distinct{i}.png"), COLOURS["green"], seed=100 + i, size=48)
    return folder


def test_rank_folder_spreads_near_copies_found_by_their_perceptual_hash(tmp_path, tiny_model, monkeypatch):
    folder = picture_with_copies(str(tmp_path / "pool"), copies=3)
    spread = rank_folder(tiny_model.run_dir, folder, "random", seed=0)
    kept = rank_folder(tiny_model.run_dir, folder, "random", seed=0, spread=False)
    first_four = [os.path.basename(s.path)[0] for s in spread.suggestions[:4]]
    assert first_four.count("a") == 1, [s.path for s in spread.suggestions]
    assert sorted(s.path for s in spread.suggestions) == sorted(s.path for s in kept.suggestions)
    known = {}
    first = rank_folder(tiny_model.run_dir, folder, "random", seed=0, known_prints=known)
    assert len(known) == 7
    colour_picture(os.path.join(folder, "c_new.png"), COLOURS["blue"], seed=200, size=48)
    hashed, real = [], label_ranking.fingerprint_all

    def counting(paths, **kwargs):
        hashed.extend(paths)
        return real(paths, **kwargs)

    monkeypatch.setattr(label_ranking, "fingerprint_all", counting)
    again = rank_folder(tiny_model.run_dir, folder, "random", seed=0, known_prints=known)
    assert [os.path.basename(p) for p in hashed] == ["c_new.png"]  # a later round hashes only new images
    assert [s.path for s in first.suggestions] == [s.path for s in spread.suggestions]
    assert len(again.suggestions) == 8


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return tiny_run(tmp_path_factory)


def test_rank_folder_scores_real_images_and_lists_unreadable_ones(tmp_path, tiny_model):
    pool = tmp_path / "pool"
    shutil.copytree(tiny_model.val_dir, pool / "batch1")
    (pool / "broken.png").write_bytes(b"not an image")
    ranking = rank_folder(tiny_model.run_dir, str(pool), "margin")
    assert len(ranking.suggestions) == 12 and [s.rank for s in ranking.suggestions] == list(range(1, 13))
    assert [os.path.basename(s.path) for s in ranking.skipped] == ["broken.png"]
    for suggestion in ranking.suggestions:  # the tiny model knows its colours
        assert suggestion.suggested == os.path.basename(os.path.dirname(suggestion.path))
    margins = [s.margin for s in ranking.suggestions]
    assert margins == sorted(margins)


def test_rank_folder_refuses_a_missing_or_empty_folder(tmp_path, tiny_model):
    with pytest.raises(DatasetError, match="does not exist"):
        rank_folder(tiny_model.run_dir, str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no image"):
        rank_folder(tiny_model.run_dir, str(tmp_path / "empty"))


def made_ranking(unlabeled, probabilities, names):
    paths = [colour_picture(os.path.join(unlabeled, name), COLOURS["blue"], seed=i)
             for i, name in enumerate(names)]
    return Ranking(unlabeled, "margin", CLASSES, rank_probabilities(paths, probabilities, CLASSES), [])


def test_accept_above_moves_the_sure_images_into_their_class_and_undoes(tmp_path):
    train = tmp_path / "train"
    (train / "blue").mkdir(parents=True)
    (train / "blue" / "sure.png").write_bytes(b"an image already there with the same name")
    unlabeled = str(tmp_path / "unlabeled")
    ranking = made_ranking(unlabeled, np.array([[0.97, 0.02, 0.01], [0.05, 0.92, 0.03], [0.5, 0.4, 0.1]]),
                           ["sure.png", "green_one.png", "unsure.png"])
    accepted = accept_above(ranking, 0.9, str(train))
    assert accepted.refused == []
    assert sorted(m.target for m in accepted.moves) == ["blue/sure-2.png", "green/green_one.png"]
    assert (train / "blue" / "sure.png").read_bytes().startswith(b"an image already")  # not overwritten
    assert sorted(os.listdir(unlabeled)) == ["unsure.png"]
    assert {m.id for m in fixes.read_moves(str(train))} == {m.id for m in accepted.moves}
    with pytest.raises(MoveError, match="undo it in the Label tab"):  # the log alone cannot aim it out
        fixes.undo(str(train), accepted.moves[0].id)
    for move in accepted.moves:
        fixes.undo(str(train), move.id, origin=unlabeled)
    assert sorted(os.listdir(unlabeled)) == ["green_one.png", "sure.png", "unsure.png"]
    assert os.listdir(train / "green") == []


def test_a_crafted_path_outside_the_unlabeled_folder_is_refused_and_untouched(tmp_path):
    train, unlabeled = tmp_path / "train", tmp_path / "unlabeled"
    (train / "blue").mkdir(parents=True)
    unlabeled.mkdir()
    outside = colour_picture(str(tmp_path / "precious.png"), COLOURS["blue"], seed=1)
    crafted = os.path.join(str(unlabeled), "..", "precious.png")
    os.symlink(outside, unlabeled / "link.png")
    ranking = Ranking(str(unlabeled), "margin", CLASSES, rank_probabilities(
        [crafted, str(unlabeled / "link.png")], np.array([[0.99, 0.0, 0.01]] * 2), CLASSES), [])
    accepted = accept_above(ranking, 0.5, str(train))
    assert accepted.moves == [] and len(accepted.refused) == 2
    assert all("not inside the unlabeled folder" in item.reason for item in accepted.refused)
    assert os.path.isfile(outside) and os.listdir(train / "blue") == []
    with pytest.raises(MoveError, match="cannot be a class folder"):
        colour_picture(str(unlabeled / "x.png"), COLOURS["red"], seed=2)
        label_image(str(train), str(unlabeled), str(unlabeled / "x.png"), "../escape")


def test_overlapping_training_and_unlabeled_folders_are_refused(tmp_path):
    train = tmp_path / "train"
    picture = colour_picture(str(train / "unlabeled" / "x.png"), COLOURS["red"], seed=2)
    with pytest.raises(MoveError, match="overlap"):
        label_image(str(train), str(train / "unlabeled"), picture, "red")
    assert os.path.isfile(picture)
