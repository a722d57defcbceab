"""The real application in a fresh process, driven as a user would (tests/gui/app_driver.py): the real
device probe, TensorFlow loaded for the first time, the real engine and the real exit path.

TensorFlow may already be loaded in the pytest process, so only a fresh process can show what a user
sees at start-up: before core.tf_runtime, Train pressed while the device probe imported TensorFlow
failed ("DatasetV2", "deadlock detected by _ModuleLock"), and a thread still running at exit made Qt
abort the process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import make_class_folders
from trained_model import tiny_run

from core import files
from core.paths import demo_train_dir, demo_val_dir
from gui.main_window import LOADING_TENSORFLOW

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
QT_THREAD_WARNING = "QThread: Destroyed while thread is still running"
DEVICE = re.compile(r"^Compute device: (CPU only|GPU: .+)$")


def drive(tmp_path, plan: dict, timeout: int) -> tuple[subprocess.CompletedProcess, dict]:
    """Runs the app on `plan` (see app_driver.py); returns the process and what the driver recorded."""
    result_path = tmp_path / "result.json"
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps({**plan, "result": str(result_path), "timeout_s": timeout - 30}))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "HOME": str(tmp_path)}  # never the user's settings
    done = subprocess.run([sys.executable, os.path.join(HERE, "app_driver.py"), str(plan_path)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    return done, result


def assert_clean_exit(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stderr[-3000:]
    assert QT_THREAD_WARNING not in done.stderr


@pytest.mark.timeout(420)  # the first tiny_run trains in this process too
def test_train_and_evaluate_at_once_then_close_during_an_export(tmp_path, tmp_path_factory, tiny_dataset):
    """Train pressed the moment it is enabled, a model evaluated on the Evaluate tab meanwhile: both
    wait for TensorFlow, then run to the end. Then an export, and the window closed during it."""
    model = tiny_run(tmp_path_factory)
    train, val = tiny_dataset
    config = {"train_dir": train, "val_dir": val, "epochs": 2, "batch_size": 4, "image_size": 16,
              "out_dir": str(tmp_path / "runs")}
    plan = {"scenario": "train-at-once", "config": config, "model": model.run_dir,
            "export_to": str(tmp_path / "exported")}
    done, result = drive(tmp_path, plan, timeout=280)
    assert_clean_exit(done)
    assert result["status"] == "completed", result["log"]
    assert result["points"] == {"batch": 2 * 6, "train_epoch": 2, "val_epoch": 2}  # every curve filled
    assert DEVICE.match(result["device"]), result["device"]  # the probe's answer, not "unknown (...)"
    assert result["evaluated"] is True, result.get("model_error")
    assert LOADING_TENSORFLOW in result["statuses"]  # Train was pressed while TensorFlow loaded
    assert result["error"] == "", result
    exported = set(os.listdir(tmp_path / "exported"))
    assert "model.keras" in exported and not [name for name in exported if name.endswith(".partial")]


@pytest.mark.timeout(300)
def test_closing_4_s_after_train_leaves_a_cancelled_run(tmp_path):
    """The demo with 60 epochs; the window closed 4 s after Train (the user answers Yes to "Stop?")."""
    config = {"train_dir": demo_train_dir(), "val_dir": demo_val_dir(), "epochs": 60,
              "out_dir": str(tmp_path / "runs")}
    plan = {"scenario": "close-during-training", "config": config, "close_after_s": 4}
    done, result = drive(tmp_path, plan, timeout=280)
    assert_clean_exit(done)
    assert "QThread" not in done.stderr
    runs = os.listdir(tmp_path / "runs")
    assert len(runs) == 1, result
    report = files.read_json(str(tmp_path / "runs" / runs[0] / "report.json"))
    assert report["status"] == "cancelled" and report["epochs_completed"] < 60


@pytest.mark.timeout(150)
def test_closing_during_scans_that_never_end_exits_cleanly(tmp_path):
    """Two folders still scanned when the window closes: one whose listing never ends (two symbolic
    links back to their parent: the scan walks forever) and one with a file whose reading never
    returns (a FIFO, like a dead network drive). The first stops when told, the second cannot; the
    process ends with exit code 0 all the same. Before, Qt aborted it (exit 134)."""
    endless = make_class_folders(str(tmp_path / "endless"), {"a": 3, "b": 3})
    for name in ("left", "right"):
        os.symlink("..", os.path.join(endless, "a", name))
    stuck = make_class_folders(str(tmp_path / "stuck"), {"a": 3, "b": 3})
    os.mkfifo(os.path.join(stuck, "a", "never.png"))
    plan = {"scenario": "close-during-scan", "folder": endless, "val_folder": stuck}
    done, result = drive(tmp_path, plan, timeout=130)
    assert_clean_exit(done)
    assert result["error"] == ""
