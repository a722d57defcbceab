"""Issue 13 on real runs: two digits runs with different learning rates (tests/digits_runs.py), one of
them stopped mid-epoch and resumed. Their TensorBoard scalars, read back with TensorFlow's own
summary_iterator, equal history.csv; `runs --json` shows their best metrics as report.json has them;
report.json holds the environment and the dataset fingerprint."""

import glob
import json
import os
import subprocess
import sys

import pytest
from digits_runs import REWRITTEN, digits_runs

from core import files
from core.runs import run_folder

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return digits_runs(tmp_path_factory)


def tensorboard_scalars(run_dir):
    """{(split, tag): [(step, value), ...]} in the order written, every event file of the run."""
    import tensorflow as tf

    found = {}
    for split in ("train", "validation"):
        for path in sorted(glob.glob(os.path.join(run_dir, "tensorboard", split, "events.out.tfevents.*"))):
            for event in tf.compat.v1.train.summary_iterator(path):
                for value in event.summary.value:
                    if value.metadata.plugin_data.plugin_name in ("", "scalars") and value.HasField("tensor"):
                        found.setdefault((split, value.tag), []).append(
                            (event.step, float(tf.make_ndarray(value.tensor))))
    return found


def test_tensorboard_scalars_equal_history_csv_across_a_stop_and_a_resume(runs):
    for run_dir in (runs.stopped, runs.like):
        history = run_folder.read_history(run_dir)
        config = files.read_json(os.path.join(run_dir, run_folder.CONFIG_FILE))
        scalars = tensorboard_scalars(run_dir)
        expected = {}
        for row in history:
            for key, value in row.items():
                if key != "epoch":
                    split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
                    expected.setdefault((split, f"epoch_{name}"), []).append((row["epoch"], value))
            expected.setdefault(("train", "epoch_learning_rate"), []).append(
                (row["epoch"], config["learning_rate"]))
        assert sorted(scalars) == sorted(expected)
        for tag, points in expected.items():
            # each epoch once, in order (no duplicate from the epoch cut short), values as float32
            assert [step for step, _ in scalars[tag]] == [step for step, _ in points], (run_dir, tag)
            for (_, got), (_, want) in zip(scalars[tag], points, strict=True):
                assert got == pytest.approx(want, rel=1e-6), (run_dir, tag)
    assert len(glob.glob(os.path.join(runs.stopped, "tensorboard", "train", "events.out.tfevents.*"))) == 2


def test_runs_json_lists_both_runs_with_their_reports_best_metrics(runs):
    done = subprocess.run([sys.executable, "main.py", "runs", "--out", runs.out_dir, "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {row["run_dir"]: row for row in json.loads(done.stdout)}
    assert sorted(rows) == sorted([runs.stopped, runs.like])
    for run_dir, row in rows.items():
        report = files.read_json(os.path.join(run_dir, run_folder.REPORT_FILE))
        history = run_folder.read_history(run_dir)
        best = min(history, key=lambda epoch: epoch["val_loss"])
        assert row["best"] == report["best"]
        assert row["best"]["epoch"] == best["epoch"] and row["best"]["val_loss"] == best["val_loss"]
        assert row["best"]["val_accuracy"] == best["val_accuracy"]
        assert row["status"] == "completed" and row["epochs_completed"] == row["epochs"] == len(history)
        assert row["train_dir"] == runs.train_dir
        assert row["dataset_fingerprint"] == report["dataset_fingerprint"]
    assert rows[runs.stopped]["config"]["learning_rate"] == 0.001
    assert rows[runs.like]["config"]["learning_rate"] == 0.01


def test_reports_hold_the_environment_and_one_fingerprint_for_the_same_data(runs):
    stopped, like = (files.read_json(os.path.join(run, run_folder.REPORT_FILE)) for run in (runs.stopped,
                                                                                             runs.like))
    assert stopped["dataset_fingerprint"] == like["dataset_fingerprint"]
    fingerprint = like["dataset_fingerprint"]
    assert fingerprint["train"]["files"] == 64 and fingerprint["val"]["class_counts"] == dict.fromkeys(
        ["0", "1", "2", "3"], 4)
    environment = like["environment"]
    assert {"python", "tensorflow", "keras", "numpy", "pillow", "PySide6", "os", "cpu", "gpus"} <= set(
        environment)
    assert environment["tensorflow"].startswith("2.") and environment["gpus"] == []


def test_a_resume_names_the_file_changed_since_and_a_run_like_it_on_the_same_data_warns_nothing(runs):
    changed = [text for text in runs.resume_messages if "data changed" in text]
    assert len(changed) == 1 and f"1 changed ({REWRITTEN})" in changed[0]
    assert not [text for text in runs.like_messages if "data changed" in text]
