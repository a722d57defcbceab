"""One trial of a sweep, inside a Ray Tune trial process: an ordinary run (`driver.train`, or `resume`
for a trial a killed sweep left unfinished) in the trial's folder, whose role adds one callback that
reports each finished epoch to Tune.

When Tune's scheduler stops the trial, Tune's `report` raises SystemExit in this thread; the callback
takes that as "stop after this epoch", so the run ends as usual (final models, report.json) and is
then marked as stopped by the sweep. The sweep's process marks it too (core.training.sweep.runner),
since Tune may end this process before the run has finished saving.
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


def run_trial(tune_config: dict[str, Any], plan: dict[str, Any]) -> None:
    """Tune's function trainable: `tune_config["trial"]` is the index of the trial in `plan`
    (plain data: the sweep's id, the threads per trial, each trial's settings and run folder)."""
    from core.training.driver import resume, train

    trial = plan["trials"][tune_config["trial"]]
    run_dir = trial["run_dir"]
    _limit_threads(plan["threads"])
    role = TrialRole()
    info = read_run_info(run_dir, with_history=True) if os.path.isdir(run_dir) else None
    if info is not None and info.can_resume and info.done >= info.total:
        _report_history(info.history)  # trained to the end before the sweep was killed: nothing to do
        return
    if info is not None and info.can_resume and info.done:
        result = resume(run_dir, role=role, cancel=threading.Event())
    else:
        os.makedirs(run_dir, exist_ok=True)
        result = train(TrainingConfig.from_dict(trial["config"]), role=role, run_dir=run_dir)
    if role.stopped_at is not None and role.stopped_at < int(trial["config"]["epochs"]):  # not at the end
        mark_stopped(run_dir, plan["sweep_id"], role.stopped_at)
    if result.status == "failed":
        raise TrialFailed(result.message)


class TrialFailed(Exception):
    """The trial's run failed (its report.json says why); Tune records the trial as errored."""


class TrialRole(LocalRole):
    """A run in this process whose last callback reports every finished epoch to Tune."""

    def __init__(self) -> None:
        super().__init__()
        self.stopped_at: int | None = None  # the epoch after which Tune's scheduler stopped the trial

    def callbacks_around(self, cancel: threading.Event, train_stream: Any) -> tuple[list, list]:
        from core.training.sweep.tune_report import TuneReport

        return [], [TuneReport(self)]


def mark_stopped(run_dir: str, sweep_id: str, epoch: int) -> None:
    """report.json says the sweep stopped this trial after `epoch` epochs (it is not a failure)."""
    path = os.path.join(run_dir, run_folder.REPORT_FILE)
    try:
        report = files.read_json(path)
    except (OSError, ValueError):
        return  # no report to amend: the run never started; the sweep's record says what happened
    if not isinstance(report, dict) or report.get("status") == "failed":
        return
    report.update(status="stopped", process=None, stopped_by={"sweep": sweep_id, "epoch": epoch},
                  message=f"Stopped early by {sweep_id} after epoch {epoch}: other trials were better.")
    files.write_json(path, report)


def _report_history(history: list[dict[str, Any]]) -> None:
    from ray import tune

    for row in history:
        tune.report(epoch_metrics(int(row["epoch"]) + 1, row))  # history counts epochs from 0


def epoch_metrics(epoch: int, logs: dict[str, Any]) -> dict[str, float]:
    """What a trial reports for a finished epoch (`epoch` counts from 1, also after a resume)."""
    metrics = {key: float(value) for key, value in logs.items() if isinstance(value, int | float)}
    metrics["epoch"] = epoch
    return metrics


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
