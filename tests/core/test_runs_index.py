"""The runs index and the `runs` command on hand-made run folders of every kind (no TensorFlow)."""

import argparse
import dataclasses
import io
import json
import os
import subprocess
import sys

import pytest
from run_folders import FINGERPRINT, make_run

from core import files
from core.cli.runs_commands import format_table, run_runs
from core.cli.train_command import add_training_arguments, config_from_args, like_config, run_train
from core.config import Augmentation, TrainingConfig
from core.errors import ConfigError
from core.runs import checkpoints, run_folder
from core.runs.index import RunsIndex, differing_settings, find_run_dirs, list_runs, summary_row
from core.runs.run_info import read_run_info

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
def test_the_index_lists_every_kind_of_run_and_a_corrupt_one_as_unreadable(tmp_path):
    make_run(tmp_path, "a-completed", started="2026-11-29T10:00:00+0000")
    make_run(tmp_path, "b-cancelled", "cancelled", done=1, epochs=3, started="2026-11-29T11:00:00+0000")
    make_run(tmp_path, "c-failed", "failed", done=0, started="2026-11-29T12:00:00+0000")
    killed = make_run(tmp_path, "d-killed", "running", done=1, epochs=3, started="2026-11-29T13:00:00+0000")
    report = files.read_json(os.path.join(killed, run_folder.REPORT_FILE))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    report["process"]["pid"] = int(gone.stdout)
    files.write_json(os.path.join(killed, run_folder.REPORT_FILE), report)
    make_run(tmp_path, "e-live", "running", done=1, epochs=3, started="2026-11-29T14:00:00+0000")
    corrupt = tmp_path / "f-corrupt"
    corrupt.mkdir()
    (corrupt / "report.json").write_text('{"status": "compl')
    (corrupt / "config.json").write_bytes(b"\xff\x00")
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "notes.txt").write_text("a file beside the runs")

    runs = list_runs([str(tmp_path), str(tmp_path / "missing")])

    assert [(info.name, info.status) for info in runs] == [
        ("e-live", "running"), ("d-killed", "interrupted"), ("c-failed", "failed"),
        ("b-cancelled", "cancelled"), ("a-completed", "completed"), ("f-corrupt", "unreadable"),
    ]
    by_name = {info.name: info for info in runs}
    assert by_name["b-cancelled"].done == 1 and by_name["b-cancelled"].total == 3
    assert by_name["d-killed"].can_resume and not by_name["e-live"].can_resume
    assert not by_name["c-failed"].can_resume and "no checkpoint" in by_name["c-failed"].resume_problem
    assert by_name["f-corrupt"].problem and by_name["f-corrupt"].history == []
    assert by_name["a-completed"].dataset_fingerprint == FINGERPRINT


def test_the_quick_read_agrees_with_the_full_one_except_for_the_history(tmp_path):
    for run_dir in (make_run(tmp_path, "done"), make_run(tmp_path, "stopped", "cancelled", 1, 4)):
        quick, full = read_run_info(run_dir, with_history=False), read_run_info(run_dir)
        assert quick.history == [] and len(full.history) == full.done
        assert dataclasses.replace(quick, history=full.history) == full


def test_the_quick_read_checks_the_checkpoint_files_and_falls_back_on_older_reports(tmp_path):
    run_dir = make_run(tmp_path, "lost-model", "cancelled", 1, 3)
    os.remove(checkpoints.model_path(run_dir, 0))
    assert "missing" in read_run_info(run_dir, with_history=False).resume_problem
    older = make_run(tmp_path, "older", "cancelled", 1, 3)
    files.write_json(os.path.join(older, run_folder.REPORT_FILE), {"status": "cancelled", "message": ""})
    info = read_run_info(older, with_history=False)  # no epochs_completed: read from the checkpoint
    assert info.done == 1 and info.can_resume and info.best["epoch"] == 0


def test_the_index_reads_again_only_runs_whose_files_changed(tmp_path):
    make_run(tmp_path, "still", started="2026-11-29T10:00:00+0000")
    changing = make_run(tmp_path, "changing", "running", 1, 3, started="2026-11-29T11:00:00+0000")
    index = RunsIndex()
    first = {info.name: info for info in index.list([str(tmp_path)])}
    second = {info.name: info for info in index.list([str(tmp_path)])}
    assert second["still"] is first["still"]  # kept
    assert second["changing"] is not first["changing"]  # training now: always read again
    report = files.read_json(os.path.join(changing, run_folder.REPORT_FILE))
    files.write_json(os.path.join(changing, run_folder.REPORT_FILE), {**report, "status": "completed"})
    assert {info.name: info.status for info in index.list([str(tmp_path)])}["changing"] == "completed"
    os.rename(changing, str(tmp_path / ".hidden"))
    assert [info.name for info in index.list([str(tmp_path)])] == ["still"]


def test_overlapping_roots_list_a_run_once(tmp_path):
    make_run(tmp_path, "only")
    assert len(find_run_dirs([str(tmp_path), str(tmp_path) + os.sep, os.path.relpath(tmp_path)])) == 1


def test_the_settings_that_differ_between_runs(tmp_path):
    runs = [
        read_run_info(make_run(tmp_path, "a", learning_rate=0.01)),
        read_run_info(make_run(tmp_path, "b", learning_rate=0.001, augmentation=Augmentation(flip=True))),
        read_run_info(str(tmp_path / "missing")),  # unreadable: takes no part
    ]
    assert differing_settings(runs) == ["learning_rate", "augmentation.flip"]
    table = format_table(runs)
    assert "learning_rate" in table and "augmentation.flip" in table and "0.01" in table


def test_runs_json_matches_each_report(tmp_path):
    make_run(tmp_path, "one", started="2026-11-29T10:00:00+0000")
    make_run(tmp_path, "two", "cancelled", 1, 5, started="2026-11-29T11:00:00+0000")
    out = io.StringIO()
    assert run_runs(argparse.Namespace(out=[str(tmp_path)], json=True), out) == 0
    rows = json.loads(out.getvalue())
    assert [row["name"] for row in rows] == ["two", "one"]
    for row in rows:
        report = files.read_json(os.path.join(row["run_dir"], run_folder.REPORT_FILE))
        assert row["best"] == report["best"] and row["status"] == report["status"]
        assert row["epochs_completed"] == report["epochs_completed"]
        assert row["epochs"] == report["config"]["epochs"]
        assert row["dataset_fingerprint"] == report["dataset_fingerprint"]
        assert row["train_dir"] == "data/train" and row["started_at"] == report["started_at"]
        assert row["duration_seconds"] == report["duration_seconds"] and row["model"] == "small-cnn"
    assert summary_row(read_run_info(str(tmp_path / "gone")))["status"] == "unreadable"


def test_the_runs_command_prints_a_table_or_says_there_is_nothing(tmp_path):
    make_run(tmp_path, "20261129-100000-small-cnn")
    done = subprocess.run([sys.executable, "main.py", "runs", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "20261129-100000-small-cnn" in done.stdout and "completed" in done.stdout
    empty = io.StringIO()
    assert run_runs(argparse.Namespace(out=[str(tmp_path / "none")], json=False), empty) == 0
    assert "No runs in" in empty.getvalue()


def parse_train(*argv):
    parser = argparse.ArgumentParser()
    add_training_arguments(parser)
    return parser.parse_args(argv)


def test_like_takes_the_runs_settings_and_every_flag_given_overrides_them(tmp_path):
    run_dir = make_run(tmp_path, "earlier", epochs=7, learning_rate=0.01, batch_size=16, seed=5,
                       augmentation=Augmentation.all_on(), val_dir=None, val_split=0.3)
    like = like_config(run_dir)
    same = config_from_args(parse_train(), like)
    assert same == like and same.val_dir is None and same.val_split == 0.3
    # --lr given with the default's value still overrides: given, not "different from the default"
    changed = config_from_args(parse_train("--lr", "0.001", "--epochs", "2", "--no-augment"), like)
    assert (changed.learning_rate, changed.epochs, changed.augmentation) == (0.001, 2, Augmentation())
    assert (changed.batch_size, changed.seed, changed.val_split) == (16, 5, 0.3)
    new_data = config_from_args(parse_train("--train", "other", "--val", "other-val"), like)
    assert (new_data.train_dir, new_data.val_dir) == ("other", "other-val")


def test_without_like_the_flags_left_out_take_the_defaults():
    config = config_from_args(parse_train("--train", "mine"))
    assert config == TrainingConfig(train_dir="mine", val_dir=None)
    assert config_from_args(parse_train()) == TrainingConfig()
    assert config_from_args(parse_train("--val-split", "0.3")).val_dir is None


def test_like_refuses_what_is_not_a_run_and_resume_with_like(tmp_path):
    with pytest.raises(ConfigError, match="no readable settings"):
        like_config(str(tmp_path))
    bad = tmp_path / "bad"
    bad.mkdir()
    files.write_json(str(bad / run_folder.CONFIG_FILE), {"epochs": 3, "colour": "blue"})
    with pytest.raises(ConfigError, match=r"cannot be used.*colour"):
        like_config(str(bad))
    args = parse_train("--resume", str(bad), "--like", str(bad))
    with pytest.raises(ConfigError, match="not both"):
        run_train(args, io.StringIO())
