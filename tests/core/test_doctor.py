"""The dataset doctor end to end on small made datasets with known duplicates, leaks and flipped labels."""

import io
import os
import threading

import numpy as np
import pytest
from conftest import make_class_folders
from made_datasets import make_messy_dataset

from core.cli.doctor_command import write_text_report
from core.data import fixes
from core.errors import DatasetError
from core.events import CheckProgress
from core.modeling.doctor import CheckCancelled, check_dataset
from core.modeling.label_check import find_outliers, rank_label_issues


@pytest.fixture
def messy(tmp_path):
    made = make_messy_dataset(str(tmp_path))
    return made.train, made.val, list(made.flips)


def test_doctor_finds_injected_duplicates_leaks_imbalance_and_flipped_labels(messy):
    train, val, flips = messy
    events = []
    report = check_dataset(train, val, on_event=events.append)
    names = lambda paths: sorted(os.path.basename(p) for p in paths)  # noqa: E731
    assert [(g.kind, g.split, names(g.paths)) for g in report.duplicates] == [
        ("exact", "train", ["blue_003.png", "copy.png"]),
        ("exact", "train", ["green_004.png", "same.bmp"]),
        ("near", "train", ["green_007.png", "green_007_small.jpg"]),
    ]
    leaks = sorted((leak.kind, names([leak.train]), names([leak.val])) for leak in report.leaks)
    assert leaks == [
        ("exact", ["red_002.png"], ["leak.png"]),
        ("near", ["blue_009.png"], ["leak.jpg"]),
    ]
    assert report.class_counts["train"] == {"blue": 15, "green": 16, "red": 6}  # with the copies
    assert report.class_weights["red"] > 1 > report.class_weights["green"]
    assert report.imbalance()["train"] == 2.667
    assert [os.path.basename(s.path) for s in report.skipped] == ["broken.jpg"]
    issues = {issue.path: issue for issue in report.label_issues}
    assert set(flips) <= issues.keys()
    assert issues[flips[0]].suggested == "blue" and issues[flips[1]].suggested == "green"
    assert len(issues) <= len(flips) + 2  # false alarms stay rare
    assert report.label_source == "quick model"
    text = io.StringIO()
    write_text_report(report, text)
    assert "flipped_blue_011.png: in 'green', looks like 'blue'" in text.getvalue()
    steps = [e.step for e in events if isinstance(e, CheckProgress)]
    assert steps[0] == "Reading the training folder" and "Training a quick model to check the labels" in steps
    data = report.to_json()
    assert set(data) >= {"class_counts", "class_weights", "duplicates", "leaks", "label_issues", "skipped"}
    assert data["label_issues"][0].keys() == {"path", "given", "suggested", "score"}
    assert data["leaks"][0].keys() == {"kind", "train", "val"}


def test_findings_kept_as_not_a_problem_are_left_out_next_time(messy):
    train, val, _ = messy
    first = check_dataset(train, val, check_labels=False)
    fixes.keep(train, first.duplicates[0].key, "meant to be there")
    fixes.keep(train, first.leaks[0].key, "fine")
    second = check_dataset(train, val, check_labels=False)
    assert second.kept == 2
    assert [g.key for g in second.duplicates] == [g.key for g in first.duplicates[1:]]
    assert len(second.leaks) == len(first.leaks) - 1
    assert second.label_issues == [] and second.label_source == ""


def test_the_label_check_uses_a_trained_models_features(tmp_path_factory):
    from trained_model import tiny_run

    tiny = tiny_run(tmp_path_factory)
    report = check_dataset(tiny.train_dir, tiny.mislabelled_dir, tiny.run_dir)
    assert report.label_source.endswith("model.keras")
    found = {issue.path for issue in report.label_issues}
    assert set(tiny.mislabelled) <= found and len(found) <= len(tiny.mislabelled) + 2


def test_a_class_with_a_single_image_skips_the_label_check_with_a_note(tmp_path):
    root = make_class_folders(str(tmp_path), {"blue": 5, "red": 1})
    report = check_dataset(root)
    assert report.label_source == "" and "at least 2" in report.notes[0]
    assert report.class_counts == {"train": {"blue": 5, "red": 1}}


@pytest.mark.parametrize("step", ["Reading the training folder", "Reading every image"])
def test_stopping_raises_check_cancelled(messy, step):
    train, val, _ = messy
    cancel = threading.Event()

    def stop_when_reading(event):
        if isinstance(event, CheckProgress) and event.step == step:
            cancel.set()

    with pytest.raises(CheckCancelled):
        check_dataset(train, val, on_event=stop_when_reading, cancel=cancel)


def test_unusable_folders_raise_a_message(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        check_dataset(str(tmp_path / "missing"))
    train = make_class_folders(str(tmp_path / "train"), {"a": 3, "b": 3})
    val = make_class_folders(str(tmp_path / "val"), {"a": 3, "c": 3})
    with pytest.raises(DatasetError, match="only in the validation folder: c"):
        check_dataset(train, val)


def test_label_issues_are_ranked_most_suspect_first_with_the_suggested_class():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], 40)
    confident = rng.uniform(0.8, 0.95, len(labels))
    probabilities = np.zeros((len(labels), 3), np.float32)
    probabilities[np.arange(len(labels)), labels] = confident
    probabilities[np.arange(len(labels)), (labels + 1) % 3] = 1 - confident
    wrong = {5: (1, 0.95), 47: (2, 0.97), 100: (0, 0.93)}  # image: (the class it looks like, how much)
    for index, (looks_like, p) in wrong.items():
        probabilities[index] = (1 - p) / 2
        probabilities[index, looks_like] = p
    paths = [f"img{i}.png" for i in range(len(labels))]
    issues = rank_label_issues(paths, labels, probabilities, ["cat", "dog", "owl"])
    assert [(i.path, i.given, i.suggested) for i in issues] == [
        ("img47.png", "dog", "owl"),
        ("img5.png", "cat", "dog"),
        ("img100.png", "owl", "cat"),
    ]
    assert issues[0].score == pytest.approx(0.985) and issues[0].suggested_probability == pytest.approx(0.97)


def test_outliers_are_the_images_far_from_all_others():
    rng = np.random.default_rng(0)
    features = 1 + 0.1 * rng.normal(size=(60, 16))  # one family of images
    features[7] = rng.normal(size=16)  # unlike any of them
    paths = [f"{i}.png" for i in range(len(features))]
    outliers = find_outliers(paths, features)
    assert [o.path for o in outliers] == ["7.png"] and outliers[0].score > 6
    assert find_outliers(paths[:5], features[:5]) == []  # too few images to tell
