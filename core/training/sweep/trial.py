"""One trial of a sweep, inside a Ray Tune trial process: an ordinary run (`driver.train`, or `resume`
for a trial a killed sweep left unfinished) in the trial's folder, whose role adds one callback that
reports each finished epoch to Tune.

When Tune's scheduler stops the trial, Tune's `report` raises SystemExit in this thread, after the
epoch was saved (checkpoint, model.keras when best, report.json); it ends the thread at once, so Tune
can reuse the process for the next trial, and the report is marked as stopped by the sweep on the
way out. The sweep's process marks it too (core.training.sweep.runner), in case this one did not
live to. When the sweep is stopped, its stop file sets the run's cancel: it ends within a batch.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from core import files
from core.config import TrainingConfig
from core.runs import run_folder
from core.runs.run_info import read_run_info
from core.training.roles import LocalRole

STOP_POLL_SECONDS = 0.5


def run_trial(tune_config: dict[str, Any], plan: dict[str, Any]) -> None:
    """Tune's function trainable: `tune_config["trial"]` is the index of the trial in `plan`
    (plain data: the sweep's id, the threads per trial, each trial's settings and run folder)."""
    trial = plan["trials"][tune_config["trial"]]
    _limit_threads(plan["threads"])
    _forget_models()  # a reused trial process: nothing of the trial before
    cancel = threading.Event()
    watching = _watch(plan["stop_file"], cancel)
    try:
        _train_trial(trial, plan["sweep_id"], cancel, plan["stop_file"])
    finally:
        watching.set()


def _train_trial(trial: dict[str, Any], sweep_id: str, cancel: threading.Event, stop_file: str) -> None:
    from core.training.driver import resume, train

    run_dir = trial["run_dir"]
    role = TrialRole(stop_file)
    info = read_run_info(run_dir, with_history=True) if os.path.isdir(run_dir) else None
    if info is not None and info.can_resume and info.done >= info.total:
        _report_history(info.history)  # trained to the end before the sweep was killed: nothing to do
        return
    try:
        if info is not None and info.can_resume and info.done:
            result = resume(run_dir, role=role, cancel=cancel)
        else:
            os.makedirs(run_dir, exist_ok=True)
            config = TrainingConfig.from_dict(trial["config"])
            result = train(config, role=role, run_dir=run_dir, cancel=cancel)
    except SystemExit:  # Tune stopped it (core.training.sweep.tune_report); the last epoch is saved
        if role.stopped_at is not None:
            mark_stopped(run_dir, sweep_id, role.stopped_at)
        raise
    if result.status == "failed":
        raise TrialFailed(result.message)


class TrialFailed(Exception):
    """The trial's run failed (its report.json says why); Tune records the trial as errored."""


class TrialRole(LocalRole):
    """A run in this process whose last callback reports every finished epoch to Tune."""

    def __init__(self, stop_file: str) -> None:
        super().__init__()
        self.stop_file = stop_file  # there when the whole sweep was stopped (not the scheduler's choice)
        self.stopped_at: int | None = None  # the epoch after which Tune's scheduler stopped the trial

    def callbacks_around(self, cancel: threading.Event, train_stream: Any) -> tuple[list, list]:
        from core.training.sweep.tune_report import TuneReport

        return [], [TuneReport(self, cancel)]


def mark_stopped(run_dir: str, sweep_id: str, epoch: int) -> None:
    """report.json says the sweep stopped this trial after `epoch` epochs (it is not a failure)."""
    path = os.path.join(run_dir, run_folder.REPORT_FILE)
    try:
        report = files.read_json(path)
        if not isinstance(report, dict) or report.get("status") in ("failed", "stopped"):
            return
        report.update(status="stopped", process=None, stopped_by={"sweep": sweep_id, "epoch": epoch},
                      message=f"Stopped early by {sweep_id} after epoch {epoch}: other trials were better.")
        files.write_json(path, report)
    except (OSError, ValueError):
        pass  # no report, or another process writing it: sweep.json says how the trial ended


def _watch(stop_file: str, cancel: threading.Event) -> threading.Event:
    """Sets `cancel` once `stop_file` appears (the sweep was stopped); returns the event that ends
    the watching."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(STOP_POLL_SECONDS):
            if os.path.exists(stop_file):
                cancel.set()
                return

    threading.Thread(target=watch, name="fitstudio-sweep-stop-watch", daemon=True).start()
    return done


def _forget_models() -> None:
    from core.tf_runtime import load_keras

    load_keras().backend.clear_session()


def _report_history(history: list[dict[str, Any]]) -> None:
    from ray import tune

    for row in history:
        from core.training.sweep.tune_report import epoch_metrics

        tune.report(epoch_metrics(int(row["epoch"]) + 1, row))  # history counts epochs from 0


def _limit_threads(threads: int) -> None:
    """TensorFlow's thread pools sized to the trial's share of the cores (possible only before its
    first operation)."""
    from core.tf_runtime import load_tensorflow

    tf = load_tensorflow()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass
