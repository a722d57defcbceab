"""`main.py doctor` as a user runs it: the JSON keys, the text report, exit codes."""

import json
import os
import subprocess
import sys

from made_datasets import make_messy_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fitstudio(*args):
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=240)


def test_doctor_json_lists_duplicates_leaks_counts_and_weights(tmp_path):
    messy = make_messy_dataset(str(tmp_path))
    done = fitstudio("doctor", "--train", messy.train, "--val", messy.val, "--no-labels", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["class_counts"]["train"] == {"blue": 15, "green": 16, "red": 6}
    assert set(report["class_weights"]) == {"blue", "green", "red"}
    assert [(d["kind"], d["split"], len(d["paths"])) for d in report["duplicates"]] == [
        ("exact", "train", 2), ("exact", "train", 2), ("near", "train", 2)]
    assert sorted(leak["kind"] for leak in report["leaks"]) == ["exact", "near"]
    assert report["label_issues"] == [] and report["label_check"] is None
    assert [os.path.basename(s["path"]) for s in report["skipped"]] == ["broken.jpg"]


def test_doctor_text_report_lists_each_check(tmp_path):
    messy = make_messy_dataset(str(tmp_path))
    done = fitstudio("doctor", "--train", messy.train, "--val", messy.val, "--no-labels")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Duplicates within a split: 3" in out and "copy.png" in out
    assert "Leaks (the same picture in training and validation): 2" in out
    assert "Unreadable files: 1" in out and "broken.jpg" in out
    assert "train: largest/smallest class 2.67" in out
    assert "Likely label errors: not checked" in out and "Traceback" not in done.stderr


def test_doctor_on_a_missing_folder_exits_2_with_the_reason(tmp_path):
    done = fitstudio("doctor", "--train", str(tmp_path / "nothing"))
    assert done.returncode == 2 and "does not exist" in done.stderr and "Traceback" not in done.stderr
    bad_model = fitstudio("doctor", "--train", make_messy_dataset(str(tmp_path)).train,
                          "--model", str(tmp_path / "no-run"))
    assert bad_model.returncode == 2 and "does not exist" in bad_model.stderr
