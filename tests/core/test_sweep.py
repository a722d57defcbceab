"""Sweeps on a real local Ray cluster (loopback only) with tiny digits at 16 px.

One cluster serves the module. One in-process ASHA sweep (3 trials, 2 epochs, one at a time, a
learning rate of 1e-6 that ASHA must stop) is run once, and the sweep folder, the stopped trial, the
runs listing and the listening sockets are checked on it. A second sweep runs as `main.py sweep` in a
subprocess that is SIGKILLed after its first trial, is continued by `sweep --resume` in another
subprocess that gets Ctrl-C (SIGINT) after one more trial, and is finished by resume_sweep here.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
from digits_runs import write_digits
from listening import descendants, is_loopback
from listening import listeners as listening_on

from core import files
from core.config import TrainingConfig
from core.runs import sweep_folder
from core.runs.index import list_runs
from core.runs.run_info import read_run_info
from core.training.sweep.runner import SweepRequest, TrialUpdate, resume_sweep, run_sweep
from core.training.sweep.space import parse_dimension, sample_trials

pytestmark = pytest.mark.timeout(900)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOOD, BAD = 0.01, 1e-6
WAIT_SECONDS = 400
LONG_EPOCHS = 30


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digits(str(tmp_path_factory.mktemp("sweep-digits")))


def base_config(digits, out_dir, epochs=2) -> TrainingConfig:
    train_dir, val_dir = digits
    return TrainingConfig(train_dir=train_dir, val_dir=val_dir, epochs=epochs, batch_size=16, image_size=16,
                          out_dir=str(out_dir), seed=3, cache_disk_mb=0)


def seed_for(order, trials):
    """A seed whose draws from [GOOD, BAD] start with `order` (the space is seeded by the base seed)."""
    space = {"learning_rate": parse_dimension("learning_rate", f"{GOOD},{BAD}")}
    for seed in range(1000):
        rates = [t["learning_rate"] for t in sample_trials(space, trials, seed)]
        if rates[: len(order)] == list(order):
            return seed
    raise AssertionError("no seed")


@pytest.fixture(scope="module")
def asha_sweep(ray_cluster, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweeps")
    base = base_config(digits, out).replace(seed=seed_for((GOOD, GOOD, BAD), 3))
    request = SweepRequest(base, {"learning_rate": parse_dimension("learning_rate", f"{GOOD},{BAD}")},
                           trials=3, metric="val_loss", scheduler="asha", concurrent=1)
    events, listeners = [], []

    def on_event(event):
        events.append(event)
        if isinstance(event, TrialUpdate) and event.epoch == 1 and not listeners:
            # while a trial process trains: every listener of this process and those it started
            pids = [os.getpid(), *descendants(os.getpid())]
            listeners.extend(address for _, _, address, _ in listening_on(pids))

    finished = run_sweep(request, on_event)
    return finished, events, listeners


def test_the_sweep_folder_holds_sweep_json_and_one_run_folder_per_trial(asha_sweep):
    finished, events, _ = asha_sweep
    assert finished.status == "completed"
    record = files.read_json(os.path.join(finished.sweep_dir, "sweep.json"))
    assert record["id"] == os.path.basename(finished.sweep_dir)
    assert record["space"] == {"learning_rate": {"type": "choice", "values": [GOOD, BAD]}}
    assert [t["settings"]["learning_rate"] for t in record["trials"]] == [GOOD, GOOD, BAD]
    for trial in record["trials"]:
        run_dir = os.path.join(finished.sweep_dir, trial["run_dir"])
        for name in ("config.json", "history.csv", "report.json", "model.keras"):
            assert os.path.exists(os.path.join(run_dir, name)), (trial["run_dir"], name)
        config = files.read_json(os.path.join(run_dir, "config.json"))
        assert config["learning_rate"] == trial["settings"]["learning_rate"]
    assert [t["status"] for t in record["trials"][:2]] == ["completed", "completed"]
    assert record["best"]["index"] in (0, 1) and record["best"]["settings"] == {"learning_rate": GOOD}
    assert record["status"] == "completed"
    assert any(isinstance(e, TrialUpdate) and e.epoch == 2 for e in events)  # live, per epoch


def test_asha_stops_the_bad_trial_and_its_report_says_so(asha_sweep):
    finished, _, _ = asha_sweep
    bad = finished.trials[2]
    assert bad["status"] == "stopped" and bad["stopped_at"] == 1 and bad["epochs_completed"] == 1
    run_dir = os.path.join(finished.sweep_dir, bad["run_dir"])
    report = files.read_json(os.path.join(run_dir, "report.json"))
    assert report["status"] == "stopped"
    assert report["stopped_by"] == {"sweep": os.path.basename(finished.sweep_dir), "epoch": 1}
    info = read_run_info(run_dir)
    assert info.status == "stopped" and "stopped early by the sweep" in info.describe()


def test_runs_lists_the_trials_with_the_stopped_one_not_failed(asha_sweep):
    finished, _, _ = asha_sweep
    statuses = {info.name: info.status for info in list_runs([os.path.dirname(finished.sweep_dir)])}
    assert statuses == {"trial-00": "completed", "trial-01": "completed", "trial-02": "stopped"}


def test_every_listening_socket_of_the_sweep_is_on_loopback(asha_sweep):
    _, _, listeners = asha_sweep
    assert listeners, "no listening socket found in the sweep's processes"
    outside = [address for address in listeners if not is_loopback(address)]
    assert not outside, f"listening beyond loopback: {outside}"


def test_a_killed_sweep_resumes_and_ctrl_c_keeps_what_finished(ray_cluster, digits, tmp_path):
    out = tmp_path / "sweeps"
    base = base_config(digits, out)
    # Many short epochs, so that Ctrl-C lands in the middle of a trial; no scheduler: none is stopped.
    command = [sys.executable, "main.py", "sweep", "--train", base.train_dir, "--val", base.val_dir,
               "--trials", "3", "--epochs", str(LONG_EPOCHS), "--batch-size", "16", "--image-size", "16",
               "--lr", "1e-3:1e-2", "--scheduler", "none", "--concurrent", "1", "--cache-disk-mb", "0",
               "--out", str(out)]
    first = start(command)
    sweep_dir = wait_for(lambda: finished_trials(out) >= 1, first, out)
    kill_tree(first)  # SIGKILL, the sweep's process and its cluster
    record = sweep_folder.read_sweep(sweep_dir).record
    assert record["status"] == "running" and record["trials"][0]["status"] == "completed"

    second = start([sys.executable, "main.py", "sweep", "--resume", sweep_dir])
    wait_for(lambda: trial_epochs(out, 1) >= 1, second, out)
    second.send_signal(signal.SIGINT)  # Ctrl-C: every trial ends, what finished is kept
    try:
        assert second.wait(timeout=WAIT_SECONDS) == 130, second.stdout.read()
    finally:
        kill_tree(second)
    trials = sweep_folder.read_sweep(sweep_dir).trials
    assert sweep_folder.read_sweep(sweep_dir).record["status"] == "cancelled"
    assert [t["status"] for t in trials[:2]] == ["completed", "cancelled"]
    assert trials[2]["status"] in ("pending", "cancelled")  # ended by Tune before or as it started
    cut_short = read_run_info(os.path.join(sweep_dir, "trial-01"))
    assert cut_short.status == "cancelled" and 1 <= cut_short.done < LONG_EPOCHS

    finished = resume_sweep(sweep_dir)  # trial 1 continues from its checkpoint, trial 2 starts
    assert finished.status == "completed"
    assert [t["status"] for t in finished.trials] == ["completed"] * 3
    for trial in finished.trials:
        info = read_run_info(os.path.join(sweep_dir, trial["run_dir"]))
        assert info.status == "completed" and len(info.history) == LONG_EPOCHS


def start(command):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def finished_trials(out) -> int:
    sweeps = sweep_folder.find_sweep_dirs([str(out)])
    if not sweeps:
        return 0
    trials = sweep_folder.read_sweep(sweeps[0]).trials
    return sum(trial.get("status") in sweep_folder.FINISHED for trial in trials)


def trial_epochs(out, index) -> int:
    sweeps = sweep_folder.find_sweep_dirs([str(out)])
    trials = sweep_folder.read_sweep(sweeps[0]).trials if sweeps else []
    return int(trials[index].get("epochs_completed") or 0) if len(trials) > index else 0


def wait_for(condition, process, out) -> str:
    """Waits until `condition()` (at most WAIT_SECONDS); returns the sweep folder under `out`."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            kill_tree(process)
            pytest.fail(f"the sweep ended or hung first: {process.stdout.read()}")
        time.sleep(0.5)
    return sweep_folder.find_sweep_dirs([str(out)])[0]


def kill_tree(process) -> None:
    """SIGKILL the process and everything it started (its Ray cluster too)."""
    pids = [process.pid, *descendants(process.pid)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=60)
