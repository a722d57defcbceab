"""core.modeling.findings: the doctor's report as rows, card figures and places, without a window."""

import os

from core.data.dataset import SkippedFile
from core.data.duplicates import DuplicateGroup, Leak
from core.modeling.doctor import HealthReport
from core.modeling.findings import (
    NO_FIGURE,
    CardFigure,
    Finding,
    card_figure,
    findings_of,
    hint,
    label_note,
    nothing_found,
    place_of,
)
from core.modeling.label_check import LabelIssue, Outlier


def report_of(tmp_path, **kwargs) -> HealthReport:
    train, val = str(tmp_path / "train"), str(tmp_path / "val")
    for folder in (train, val):
        for name in ("cat", "dog"):
            os.makedirs(os.path.join(folder, name), exist_ok=True)
    counts = {"train": {"cat": 30, "dog": 10}, "val": {"cat": 5, "dog": 5}}
    return HealthReport(train, val, ["cat", "dog"], counts, {"cat": 0.67, "dog": 2.0}, **kwargs)


def test_each_finding_becomes_a_row_that_names_its_split_once(tmp_path):
    report = report_of(tmp_path, label_source="quick model")
    train, val = report.train_dir, report.val_dir
    report.duplicates = [DuplicateGroup("exact", [f"{train}/cat/a.png", f"{train}/cat/b.png"], ["1", "2"])]
    report.leaks = [Leak("near", f"{train}/dog/d.png", f"{val}/dog/e.png", ("3", "4"))]
    report.label_issues = [LabelIssue(f"{train}/cat/f.png", "cat", "dog", 0.9, 0.1, 0.8, digest="5")]
    report.outliers = [Outlier(f"{val}/cat/g.png", 4.2, digest="6")]
    report.skipped = [SkippedFile(f"{train}/dog/broken.jpg", "not an image")]
    found = findings_of(report)
    assert found["duplicates"] == [Finding("duplicates", "2 exact copies: train/cat/a.png, train/cat/b.png",
                                           (f"{train}/cat/a.png", f"{train}/cat/b.png"), "duplicate:1,2",
                                           report.duplicates[0])]
    assert found["leaks"][0].text == "Near: train/dog/d.png is also val/dog/e.png"
    assert found["label_issues"][0].text == "train/cat/f.png: in 'cat', looks like 'dog' (90% likely wrong)"
    assert found["outliers"][0].text == "val/cat/g.png: unlike the other images (score 4.2)"
    assert found["unreadable"][0].text == "train/dog/broken.jpg: not an image"
    assert found["unreadable"][0].key == ""  # an unreadable file cannot be kept
    assert [f.text for f in found["imbalance"]] == [
        "train/cat: 30 images, suggested class weight 0.67",
        "train/dog: 10 images, suggested class weight 2.00",
        "val/cat: 5 images",
        "val/dog: 5 images",
    ]
    assert hint(found["label_issues"][0]).startswith("Move it to the suggested class")
    assert hint(found["duplicates"][0]).startswith("Pick the copy")
    assert label_note(report) == "Labels checked with a quick model trained for the check."


def test_card_figures_say_what_was_not_checked(tmp_path):
    report = report_of(tmp_path)
    assert card_figure("duplicates", report, 2) == CardFigure("2", "found", "bad")
    assert card_figure("duplicates", report, 0) == CardFigure("0", "none found", "good")
    assert card_figure("label_issues", report, 0) == CardFigure(NO_FIGURE, "not checked", "none")
    assert card_figure("imbalance", report, 0) == CardFigure("3.0x", "largest/smallest", "bad")
    report.val_dir = None
    assert card_figure("leaks", report, 0).detail == "no validation folder"
    assert "3.0x" in nothing_found("imbalance", report) and nothing_found("leaks", None) == ""
    assert label_note(report) == "Labels were not checked."


def test_place_of_resolves_links_and_names_images_outside_both_folders(tmp_path):
    report = report_of(tmp_path)
    train, val = report.train_dir, report.val_dir
    assert str(place_of(f"{val}/dog/x.png", train, val)) == "val/dog/x.png"
    place = place_of(f"{train}/cat/x.png", train, val)
    assert (place.split, place.root, place.class_name) == ("train", train, "cat")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, os.path.join(train, "linked"))  # a class folder linked out of the dataset
    outside = place_of(f"{train}/linked/x.png", train, val)
    assert outside.root is None and outside.split == "" and str(outside) == f"{train}/linked/x.png"
    assert place_of(f"{train}/../val/cat/x.png", train, val).split == "val"
    report.skipped = [SkippedFile(f"{train}/linked/x.png", "unreadable")]
    assert findings_of(report)["unreadable"][0].text == f"{train}/linked/x.png: unreadable"
