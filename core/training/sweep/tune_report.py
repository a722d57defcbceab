"""The Keras callback that reports a trial's finished epochs to Ray Tune (imports Keras: loaded only
inside a trial process, by core.training.sweep.trial)."""

from __future__ import annotations

import os
from typing import Any

from core.training.callbacks import RunCallback, finished


class TuneReport(RunCallback):
    """Last in the run's callbacks: the epoch is saved and in report.json when Tune hears of it.

    Our own callback rather than ray.tune.integration.keras.TuneReportCheckpointCallback: the run
    folder already holds the checkpoints, and the epoch must count from the run's start, also when a
    killed sweep's trial resumes (the scheduler's time is the epoch, not Tune's report count)."""

    def __init__(self, role: Any, cancel: Any):
        super().__init__()
        self.role, self.cancel = role, cancel

    def on_epoch_end(self, epoch, logs=None):
        from ray import tune

        if not finished(logs) or self.role.stopped_at is not None:
            return
        try:
            tune.report(epoch_metrics(epoch + 1, logs))
        except SystemExit:  # Tune stopped the trial after this epoch, which is saved
            # The scheduler's choice, unless the whole sweep stops: its stop file is written before
            # Tune is told (core.training.sweep.tune_run).
            if not self.cancel.is_set() and not os.path.exists(self.role.stop_file):
                self.role.stopped_at = epoch + 1
            raise  # Tune's way to end the trial's thread at once, so that its process can be reused


def epoch_metrics(epoch: int, logs: dict[str, Any]) -> dict[str, float]:
    """What a trial reports for a finished epoch (`epoch` counts from 1, also after a resume)."""
    metrics = {key: float(value) for key, value in logs.items() if isinstance(value, int | float)}
    metrics["epoch"] = epoch
    return metrics
