"""read_run_info: every kind of run folder the window, the CLI and the runs index meet, hand-made as
the engine writes them (no TensorFlow); one real run proves the engine writes what it reads."""

import dataclasses
import io
import os
import socket
import subprocess
import sys
import threading
import types

import pytest

from core import files
from core.cli.train_command import resume_batch_size
from core.config import TrainingConfig
from core.errors import FitStudioError
from core.events import EpochEnd
from core.runs import checkpoints, run_folder
from core.runs.run_info import read_run_config, read_run_info

HISTORY = [
    {"epoch": 0, "loss": 1.0, "accuracy": 0.5, "val_loss": 0.9, "val_accuracy": 0.6},
    {"epoch": 1, "loss": 0.8, "accuracy": 0.7, "val_loss": 0.7, "val_accuracy": 0.8},
]


def make_run(root, name="run", epochs=3, batch_size=16, report=None, checkpoint_epochs=2):
    """A run folder as the engine leaves it after `checkpoint_epochs` epochs, with `report` as
    report.json (None: no report)."""
    run_dir = os.path.join(str(root), name)
    os.makedirs(run_dir)
    config = TrainingConfig(train_dir="data", epochs=epochs, batch_size=batch_size).to_dict()
    files.write_json(os.path.join(run_dir, run_folder.CONFIG_FILE), config)
    if checkpoint_epochs:
        model_file = checkpoints.model_path(run_dir, checkpoint_epochs - 1)
        os.makedirs(os.path.dirname(model_file))
        with open(model_file, "wb") as handle:
            handle.write(b"model")
        state = checkpoints.Checkpoint(
            epoch=checkpoint_epochs - 1, model_file=os.path.relpath(model_file, run_dir), config=config,
            history=HISTORY[:checkpoint_epochs], epoch_stats=[], best=HISTORY[1], seed_states={},
            elapsed_seconds=4.0,
        )
        files.write_json(os.path.join(run_dir, checkpoints.CHECKPOINT_FILE), dataclasses.asdict(state))
    if report is not None:
        files.write_json(os.path.join(run_dir, run_folder.REPORT_FILE), report)
    return run_dir


def report(status, message="", **more):
    return {"status": status, "message": message, "started_at": "2026-11-29T10:00:00+0000",
            "duration_seconds": 12.5, "best": {"epoch": 1, "val_loss": 0.7, "val_accuracy": 0.8}, **more}


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_completed_run(tmp_path):
    info = read_run_info(make_run(tmp_path, epochs=2, report=report("completed")))
    assert (info.status, info.done, info.total, info.model) == ("completed", 2, 2, "small-cnn")
    assert info.can_resume and not info.unfinished and not info.out_of_memory
    assert info.best == {"epoch": 1, "val_loss": 0.7, "val_accuracy": 0.8}
    assert [row["epoch"] for row in info.history] == [0, 1] and info.config["batch_size"] == 16
    assert info.duration_seconds == 12.5 and info.started_at.startswith("2026-11-29")
    assert info.describe() == "small-cnn, completed. 2 of 2 epochs trained." and info.name == "run"


def test_a_cancelled_run_is_unfinished_and_resumable(tmp_path):
    info = read_run_info(make_run(tmp_path, report=report("cancelled", "Stopped by the user.")))
    assert info.status == "cancelled" and info.unfinished and info.can_resume
    assert "stopped by the user. 2 of 3 epochs trained" in info.describe()


def test_an_out_of_memory_failure_offers_half_the_batch(tmp_path):
    message = "Out of memory: reduce batch size or image size, then train again."
    info = read_run_info(make_run(tmp_path, report=report("failed", message, out_of_memory=True)))
    assert info.status == "failed" and info.out_of_memory and info.smaller_batch_size == 8
    assert info.describe().startswith("small-cnn, failed: Out of memory")
    older = read_run_info(make_run(tmp_path, "older", report=report("failed", message)))  # no flag yet
    assert older.smaller_batch_size == 8
    tiny = read_run_info(make_run(tmp_path, "tiny", batch_size=1, report=report("failed", message,
                                                                                 out_of_memory=True)))
    assert tiny.out_of_memory and tiny.smaller_batch_size is None  # nothing below one image
    other = read_run_info(make_run(tmp_path, "other", report=report("failed", "ValueError: bad")))
    assert not other.out_of_memory and other.smaller_batch_size is None


def test_a_killed_run_reads_as_interrupted_and_a_live_one_as_running(tmp_path):
    host = socket.gethostname()
    killed = make_run(tmp_path, "killed", report=report("running", process={"pid": dead_pid(), "host": host}))
    assert read_run_info(killed).status == "interrupted" and read_run_info(killed).can_resume
    older = make_run(tmp_path, "older", report=report("running"))  # written before reports had a process
    assert read_run_info(older).status == "interrupted"
    no_report = make_run(tmp_path, "no-report")  # killed before its first report
    assert read_run_info(no_report).status == "interrupted" and read_run_info(no_report).can_resume
    ours = {"pid": os.getpid(), "host": host}
    live = read_run_info(make_run(tmp_path, "live", report=report("running", process=ours)))
    assert live.status == "running" and not live.can_resume and "training now" in live.resume_problem
    elsewhere = {"pid": 1, "host": "elsewhere"}
    remote = read_run_info(make_run(tmp_path, "remote", report=report("running", process=elsewhere)))
    assert remote.status == "running"  # another machine's process cannot be checked: trust the report


def test_a_run_without_a_finished_epoch_cannot_resume_and_says_why(tmp_path):
    info = read_run_info(make_run(tmp_path, checkpoint_epochs=0, report=report("failed", "Boom")))
    assert info.status == "failed" and info.done == 0 and info.total == 3
    assert not info.can_resume and "no checkpoint" in info.resume_problem


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("checkpoint.json", "unreadable"),
        ("model file", "missing"),
        ("checkpoint values", "unexpected values"),
        ("checkpoint list", "unreadable"),
    ],
)
def test_a_damaged_checkpoint_cannot_resume_but_the_folder_still_reads(tmp_path, damage, problem):
    run_dir = make_run(tmp_path, report=report("cancelled", "Stopped by the user."))
    checkpoint_file = os.path.join(run_dir, checkpoints.CHECKPOINT_FILE)
    if damage == "checkpoint.json":
        with open(checkpoint_file, "w") as handle:
            handle.write('{"epoch": 1, "hist')
    elif damage == "model file":
        os.remove(checkpoints.model_path(run_dir, 1))
    elif damage == "checkpoint values":
        state = files.read_json(checkpoint_file)
        files.write_json(checkpoint_file, {**state, "epoch": "two", "history": None})
    else:
        files.write_json(checkpoint_file, [1, 2])
    info = read_run_info(run_dir)
    assert info.status == "cancelled" and info.done == 0 and info.total == 3 and info.history == []
    assert not info.can_resume and problem in info.resume_problem


def test_corrupt_and_foreign_folders_are_unreadable_never_a_crash(tmp_path):
    missing = read_run_info(str(tmp_path / "missing"))
    assert missing.status == "unreadable" and "not a run folder" in missing.problem
    (tmp_path / "a-file").write_text("x")
    assert read_run_info(str(tmp_path / "a-file")).status == "unreadable"
    empty = tmp_path / "empty"
    empty.mkdir()
    info = read_run_info(str(empty))
    assert info.status == "unreadable" and "no checkpoint" in info.resume_problem
    assert info.describe().startswith("unreadable:")
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "report.json").write_bytes(b"\xff\xfe not json")
    (garbage / "config.json").write_text("[]")
    (garbage / "checkpoint.json").write_text("{")
    garbled = read_run_info(str(garbage))
    assert garbled.status == "unreadable" and not garbled.can_resume and "unreadable" in garbled.problem
    odd = make_run(tmp_path, "odd-values", report={"status": 7, "message": ["x"], "best": "high",
                                                   "duration_seconds": "long"})
    odd_info = read_run_info(odd)
    assert odd_info.status == "interrupted" and odd_info.message == "" and odd_info.can_resume
    assert odd_info.duration_seconds is None and odd_info.best["epoch"] == 1  # the checkpoint's best


def test_read_run_config_is_empty_for_folders_without_one(tmp_path):
    assert read_run_config(str(tmp_path)) == {}
    assert read_run_config(make_run(tmp_path))["batch_size"] == 16


def test_the_cli_resume_halves_the_batch_after_out_of_memory_unless_told_otherwise(tmp_path):
    message = "Out of memory: reduce batch size or image size, then train again."
    run_dir = make_run(tmp_path, report=report("failed", message, out_of_memory=True))
    out = io.StringIO()
    assert resume_batch_size(run_dir, None, out) == 8
    assert "Resuming run: small-cnn, failed: Out of memory" in out.getvalue()
    assert "batches of 8 (half of 16)" in out.getvalue()
    told = io.StringIO()
    assert resume_batch_size(run_dir, 4, told) == 4 and "half" not in told.getvalue()
    fine = make_run(tmp_path, "fine", report=report("cancelled", "Stopped by the user."))
    assert resume_batch_size(fine, None, io.StringIO()) is None  # the run's own size


def test_the_cli_refuses_a_run_that_cannot_resume_with_the_reason(tmp_path):
    empty = tmp_path / "empty-run"
    empty.mkdir()
    with pytest.raises(FitStudioError, match=r"empty-run cannot be resumed.*no checkpoint"):
        resume_batch_size(str(empty), None, io.StringIO())
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "main.py", "train", "--resume", str(empty)], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "cannot be resumed" in done.stderr and "Traceback" not in done.stderr


def test_a_real_run_reads_as_running_while_it_trains_then_as_it_ended(tiny_dataset, tmp_path):
    from core.training.driver import train

    train_dir, val_dir = tiny_dataset
    config = TrainingConfig(train_dir=train_dir, val_dir=val_dir, epochs=3, batch_size=8, image_size=16,
                            out_dir=str(tmp_path / "runs"), seed=2)
    cancel, seen = threading.Event(), types.SimpleNamespace(info=None)

    def on_event(event):
        if isinstance(event, EpochEnd) and event.epoch == 0:
            seen.info = read_run_info(os.path.join(config.out_dir, os.listdir(config.out_dir)[0]))
            cancel.set()

    result = train(config, on_event, cancel)
    assert seen.info.status == "running" and seen.info.done == 1 and not seen.info.can_resume
    info = read_run_info(result.run_dir)
    assert (info.status, info.done, info.total, info.model) == ("cancelled", 1, 3, "small-cnn")
    assert info.can_resume and not info.out_of_memory and info.best["epoch"] == 0
    assert info.history == result.history and info.config == config.to_dict()
