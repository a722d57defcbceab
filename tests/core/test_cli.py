"""The command line as a user runs it: exit codes, messages without tracebacks, Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import make_class_folders

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fitstudio(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=240, **kwargs
    )


def test_inspect_json_is_one_object_and_exit_code_says_usable(tmp_path):
    root = make_class_folders(str(tmp_path / "ok"), {"cat": 3, "dog": 2})
    (tmp_path / "ok" / "dog" / "broken.png").write_bytes(b"")
    done = fitstudio("inspect", root, "--json")
    assert done.returncode == 0
    report = json.loads(done.stdout)
    assert report["class_names"] == ["cat", "dog"] and report["counts"] == {"cat": 3, "dog": 2}
    assert report["skipped"][0]["path"].endswith("broken.png") and report["skipped"][0]["reason"]
    unusable = fitstudio("inspect", str(tmp_path / "missing"), "--json")
    assert unusable.returncode == 2 and json.loads(unusable.stdout)["error"]


def test_inspect_prints_a_readable_report():
    done = fitstudio("inspect", os.path.join(ROOT, "resources", "demo", "train"))
    assert done.returncode == 0
    assert "3 classes" in done.stdout and "apple" in done.stdout and "Image sizes" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--train", "/no/such/folder"], "does not exist"),
        (["--epochs", "0"], "epochs"),
        (["--model", "resnet"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_a_message_and_no_traceback(args, message):
    done = fitstudio("train", *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_train_runs_headless_and_prints_the_run_folder(tiny_dataset, tmp_path):
    train_dir, val_dir = tiny_dataset
    out = str(tmp_path / "runs")
    done = fitstudio(
        "train",
        "--train",
        train_dir,
        "--val",
        val_dir,
        "--epochs",
        "2",
        "--batch-size",
        "6",
        "--image-size",
        "16",
        "--out",
        out,
    )
    assert done.returncode == 0, done.stderr
    assert "Epoch 2/2" in done.stdout and "ETA" in done.stdout
    run_dir = done.stdout.strip().splitlines()[-1].removeprefix("Run folder: ")
    assert os.path.dirname(run_dir) == out and os.path.exists(os.path.join(run_dir, "model.keras"))


def test_ctrl_c_saves_the_run_and_exits_130(tmp_path):
    train_dir = make_class_folders(str(tmp_path / "train"), {"blue": 60, "red": 60}, size=32)
    out = str(tmp_path / "runs")
    process = subprocess.Popen(
        [
            sys.executable,
            "main.py",
            "train",
            "--train",
            train_dir,
            "--val-split",
            "0.2",
            "--epochs",
            "500",
            "--batch-size",
            "4",
            "--image-size",
            "32",
            "--out",
            out,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _has_finished_an_epoch(out):
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130
    run_dir = os.path.join(out, os.listdir(out)[0])
    with open(os.path.join(run_dir, "report.json")) as handle:
        report = json.load(handle)
    assert report["status"] == "cancelled" and report["epochs_completed"] >= 1
    assert os.path.exists(os.path.join(run_dir, "last.keras")) and "Stopped" in stdout


def _has_finished_an_epoch(out):
    if not os.path.isdir(out) or not os.listdir(out):
        return False
    return os.path.exists(os.path.join(out, os.listdir(out)[0], "history.csv"))


def test_an_unwritable_output_file_is_a_message_not_a_traceback(tmp_path_factory, tmp_path):
    from trained_model import tiny_run

    run = tiny_run(tmp_path_factory)
    image = os.path.join(run.val_dir, "red", "red_000.png")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = fitstudio("predict", "--model", run.run_dir, image, "--csv", str(blocker / "out.csv"))
    assert done.returncode == 1
    assert "a-file" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_an_output_folder_that_cannot_be_created_exits_2_naming_it():
    """Even for root, whom permission bits let write anywhere; refused before TensorFlow loads."""
    done = fitstudio("train", "--out", "/proc/fitstudio-runs", "--epochs", "1")
    assert done.returncode == 2, done.stderr
    assert "/proc/fitstudio-runs" in done.stderr and "Choose another output folder" in done.stderr
    assert "Traceback" not in done.stderr and "cuda" not in done.stderr.lower()  # TensorFlow never loaded


def test_a_run_stopped_before_its_workers_started_prints_why_and_names_no_run_folder():
    """What the Ray launcher reports when Ctrl+C came while it obtained the weights."""
    import io

    from core.cli.train_command import ProgressPrinter
    from core.events import RunFinished, RunResult

    out = io.StringIO()
    why = "Stopped while the weights downloaded, before the workers started."
    ProgressPrinter(out)(RunFinished(RunResult("", "cancelled", 0, None, None, None, {}, 0.0, why)))
    assert "before the workers started" in out.getvalue()
    assert "Run folder" not in out.getvalue() and "is saved" not in out.getvalue()
