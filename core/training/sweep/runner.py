"""A sweep: trials drawn from a search space, run as ordinary runs by Ray Tune on the same local
cluster as `train --workers` (core.training.distribution.ray_launcher: loopback only, token
authentication, no dashboard) or on `--cluster ADDRESS`, with ASHA stopping bad trials early.

    run_sweep(request, on_event, cancel)        a new sweep folder (core.runs.sweep_folder)
    resume_sweep(sweep_dir, on_event, cancel)   the trials a killed or stopped sweep left unfinished

Our own bookkeeping, not Tune's experiment state, says what a sweep holds: the trials' settings are
drawn here (seeded) and written to sweep.json before any trial starts; Tune gets only their indices
(a grid search over them). Tune's events come back on its thread and are passed on, with sweep.json
updated, from the thread that called run_sweep. A set `cancel` stops Tune (every trial ends); what
finished is kept, and the trials cut short are marked cancelled. Each trial is single-process
(workers 1): no TensorFlow collective server is started.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core import files
from core.config import TrainingConfig
from core.errors import ConfigError
from core.runs import run_folder, sweep_folder
from core.runs.run_info import read_run_info
from core.training.sweep.space import (
    METRICS,
    SCHEDULERS,
    Dimension,
    apply,
    base_first,
    sample_trials,
    space_to_dict,
)


@dataclass(frozen=True)
class SweepRequest:
    base: TrainingConfig  # every setting a trial does not search; its epochs and out_dir are the sweep's
    space: dict[str, Dimension]
    trials: int
    metric: str = "val_accuracy"
    scheduler: str = "asha"
    concurrent: int = 0  # 0: the cluster's cores divided by each trial's threads
    cluster: str = ""  # a Ray cluster's address; "": a local one for the sweep

    def validate(self) -> SweepRequest:
        if self.metric not in METRICS:
            raise ConfigError(f"The sweep's metric must be {' or '.join(METRICS)}, not {self.metric!r}.")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"The scheduler must be {' or '.join(SCHEDULERS)}, not {self.scheduler!r}.")
        if self.trials < 1 or self.concurrent < 0:
            raise ConfigError("A sweep needs at least one trial, and --concurrent cannot be negative.")
        self.base.validate()
        for settings in draw_trials(self.space, self.trials, self.base):
            trial_config(self.base, settings).validate()  # e.g. a batch size larger than allowed
        return self


@dataclass(frozen=True)
class SweepStarted:
    sweep_dir: str
    trials: list[dict[str, Any]]  # sweep.json's trials
    concurrent: int
    threads_per_trial: int
    cluster: str  # Cluster.describe()


@dataclass(frozen=True)
class TrialUpdate:
    """A trial started, finished an epoch, or ended (status as in sweep.json)."""

    index: int
    status: str
    run_dir: str
    epoch: int = 0  # epochs finished
    metrics: dict[str, float] = field(default_factory=dict)  # the last epoch's
    message: str = ""


@dataclass(frozen=True)
class SweepFinished:
    sweep_dir: str
    status: str  # completed, cancelled or failed (every trial failed)
    best: dict[str, Any] | None
    trials: list[dict[str, Any]]


SweepEvent = SweepStarted | TrialUpdate | SweepFinished


def draw_trials(space: dict[str, Dimension], trials: int, base: TrainingConfig) -> list[dict[str, Any]]:
    """The trials' settings: drawn with the base's seed, the first on the base settings."""
    return base_first(sample_trials(space, trials, base.seed), space, base)


def trial_config(base: TrainingConfig, settings: dict[str, Any]) -> TrainingConfig:
    """A trial's settings: the base with the drawn values, in one process (the sweep spreads trials,
    not a trial over workers)."""
    return apply(base, settings).replace(workers=1, cluster="")


def create_sweep(request: SweepRequest) -> str:
    """The sweep folder with sweep.json listing every trial, pending; returns its path."""
    request.validate()
    base = request.base.replace(out_dir=os.path.abspath(request.base.out_dir))
    base = base.replace(train_dir=os.path.abspath(base.train_dir),
                        val_dir=os.path.abspath(base.val_dir) if base.val_dir else None)
    _check_data(base)
    sweep_dir = sweep_folder.create_sweep_dir(base.out_dir)
    sweep_id = os.path.basename(sweep_dir)
    trials = []
    for index, settings in enumerate(draw_trials(request.space, request.trials, base)):
        trials.append({
            "index": index, "run_dir": os.path.basename(sweep_folder.trial_dir(sweep_dir, index)),
            "settings": settings, "config": trial_config(base, settings).to_dict(), "status": "pending",
            "epochs_completed": 0, "result": None, "stopped_at": None, "message": "",
        })
    record = {
        "id": sweep_id, "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "status": "pending",
        "metric": request.metric, "mode": METRICS[request.metric], "scheduler": request.scheduler,
        "epochs": base.epochs, "seed": base.seed, "space": space_to_dict(request.space),
        "base_config": base.to_dict(), "trials": trials, "best": None,
    }
    sweep_folder.write_sweep(sweep_dir, record)
    return sweep_dir


def _check_data(base: TrainingConfig) -> None:
    """The folders every trial reads and writes, checked once before any trial starts (raises
    DatasetError or ConfigError saying what is wrong)."""
    from core.data.dataset import load_split

    unwritable = run_folder.check_writable(base.out_dir)
    if unwritable:
        raise ConfigError(unwritable)
    load_split(base.train_dir, base.val_dir, base.val_split, base.seed)


def run_sweep(request: SweepRequest, on_event: Callable[[Any], None] | None = None,
              cancel: threading.Event | None = None) -> SweepFinished:
    sweep_dir = create_sweep(request)
    return resume_sweep(sweep_dir, on_event, cancel, cluster=request.cluster, concurrent=request.concurrent)


def resume_sweep(sweep_dir: str, on_event: Callable[[Any], None] | None = None,
                 cancel: threading.Event | None = None, cluster: str = "",
                 concurrent: int = 0) -> SweepFinished:
    """Runs the trials of `sweep_dir` that have not finished (all of a new sweep); a trial with a
    checkpoint continues from it. The trials that finished before are kept as they are."""
    info = sweep_folder.read_sweep(sweep_dir)
    if info.problem:
        raise ConfigError(info.problem)
    sweep = Sweep(sweep_dir, info.record, on_event or _ignore)
    with contextlib.suppress(FileNotFoundError):
        os.remove(sweep_folder.stop_file(sweep_dir))  # left by the stop this resume follows
    sweep.settle_dead_trials()
    pending = [trial["index"] for trial in info.unfinished]
    if pending:
        _tune(sweep, pending, cancel or threading.Event(), cluster, concurrent)
    return sweep.finish(cancelled=bool(cancel and cancel.is_set()))


class Sweep:
    """sweep.json as the sweep goes, written after every change, and the events that tell about it."""

    def __init__(self, sweep_dir: str, record: dict[str, Any], emit: Callable[[Any], None]):
        self.sweep_dir, self.record, self.emit = sweep_dir, record, emit
        self.id = str(record.get("id") or os.path.basename(os.path.normpath(sweep_dir)))
        self.trials = record["trials"]
        self.stopped: dict[int, int] = {}  # trial index -> epoch the scheduler stopped it after
        self.errors: dict[int, str] = {}
        self.touched: set[int] = set()  # trials Tune started in this session

    @property
    def metric(self) -> str:
        return self.record["metric"]

    def run_dir(self, index: int) -> str:
        return os.path.join(self.sweep_dir, self.trials[index]["run_dir"])

    def plan(self, threads: int) -> dict[str, Any]:
        """What every trial process needs, as plain data."""
        trials = [{"config": trial["config"], "run_dir": self.run_dir(trial["index"])}
                  for trial in self.trials]
        return {"sweep_id": self.id, "threads": threads, "trials": trials,
                "stop_file": sweep_folder.stop_file(self.sweep_dir)}

    def request_stop(self) -> None:
        """Every trial process stops within a batch (it watches the stop file)."""
        with open(sweep_folder.stop_file(self.sweep_dir), "w") as marker:
            marker.write("The sweep was stopped; its trials stop too.\n")

    def settle_dead_trials(self) -> None:
        """Trials a killed sweep left "running" are unfinished, unless their run says otherwise."""
        for trial in self.trials:
            if trial["status"] == "running":
                trial["status"] = "pending"
        self._save("running")

    def started(self, index: int) -> None:
        self.touched.add(index)
        self._set(index, status="running", message="")

    def epoch_done(self, index: int, metrics: dict[str, float]) -> None:
        epoch = int(metrics.get("epoch", 0))
        self.trials[index]["epochs_completed"] = epoch
        self.emit(TrialUpdate(index, "running", self.run_dir(index), epoch, dict(metrics)))
        self._save("running")

    def ended(self, index: int, error: str = "") -> None:
        """Tune is done with the trial; its run folder says how far it got."""
        if error:
            self.errors[index] = error
        self._settle(index, cancelled=False)

    def finish(self, cancelled: bool) -> SweepFinished:
        """Once Tune has ended every trial process: each trial's status, in sweep.json and its report."""
        for index in sorted(self.touched):
            self._settle(index, cancelled, amend=True)
        results = [trial for trial in self.trials if trial["status"] in ("completed", "stopped")]
        status = "cancelled" if cancelled else "completed" if results else "failed"
        self._save(status)
        finished = SweepFinished(self.sweep_dir, status, self.record["best"], [dict(t) for t in self.trials])
        self.emit(finished)
        return finished

    def _settle(self, index: int, cancelled: bool, amend: bool = False) -> None:
        """The trial's status, from what Tune said and what its run folder holds. With `amend`, its
        report.json is made to say the same; only then, since until Tune is done the trial's own
        process may still be writing it."""
        run_dir = self.run_dir(index)
        info = read_run_info(run_dir) if os.path.isdir(run_dir) else None
        total = int(self.trials[index]["config"]["epochs"])
        done = info.done if info is not None and info.status != "unreadable" else 0
        history = info.history if info is not None else []
        message = info.message if info is not None else ""
        if index in self.stopped and done < total:
            from core.training.sweep.trial import mark_stopped

            if amend:  # the trial process marks it too, if it lives to
                mark_stopped(run_dir, self.id, self.stopped[index])
            status, message = "stopped", f"Stopped early by the scheduler after epoch {self.stopped[index]}."
        elif index in self.errors or (info is not None and info.status == "failed"):
            status, message = "failed", message or self.errors.get(index, "")
        elif done >= total or (info is not None and info.status == "completed"):
            status = "completed"
            if amend:  # its process may have ended before its last word
                _amend_report(run_dir, "completed", message)
        elif cancelled or info is not None:
            status, message = "cancelled", "Stopped with the sweep."
            if amend:
                _amend_report(run_dir, status, message)
        else:
            status = "pending"
        self._set(index, status=status, epochs_completed=done, message=message,
                  stopped_at=self.stopped.get(index), result=_result(history, self.metric))

    def _set(self, index: int, **changes: Any) -> None:
        trial = self.trials[index]
        trial.update(changes)
        self.emit(TrialUpdate(index, trial["status"], self.run_dir(index), trial["epochs_completed"],
                              dict(trial.get("result") or {}), trial.get("message", "")))
        self._save("running")

    def _save(self, status: str) -> None:
        self.record["status"] = status
        self.record["best"] = _best(self.trials, self.metric)
        sweep_folder.write_sweep(self.sweep_dir, self.record)


def _result(history: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    """The trial's best epoch by the sweep's metric, with its metrics (None before the first epoch)."""
    rows = [row for row in history if isinstance(row.get(metric), int | float)]
    if not rows:
        return None
    pick = max if METRICS[metric] == "max" else min
    best = pick(rows, key=lambda row: row[metric])
    return {"epoch": int(best["epoch"]) + 1, **{key: best.get(key) for key in ("val_accuracy", "val_loss")}}


def _best(trials: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    scored = [t for t in trials if t.get("result") and isinstance(t["result"].get(metric), int | float)]
    if not scored:
        return None
    pick = max if METRICS[metric] == "max" else min
    best = pick(scored, key=lambda trial: trial["result"][metric])
    return {"index": best["index"], "run_dir": best["run_dir"], "settings": best["settings"],
            metric: best["result"][metric], "result": best["result"]}


def _amend_report(run_dir: str, status: str, message: str) -> None:
    """A trial whose report still says "running" after Tune ended its process: how it ended."""
    path = os.path.join(run_dir, run_folder.REPORT_FILE)
    try:
        report = files.read_json(path)
        if isinstance(report, dict) and report.get("status") == "running":
            report.update(status=status, process=None, message=message)
            files.write_json(path, report)
    except (OSError, ValueError):
        pass  # sweep.json says how the trial ended; a report that cannot be amended stays as it is


def default_threads(cpus: float, trials: int) -> int:
    """Each trial's threads: the cores shared by as many trials as can run at once."""
    cores = max(1, int(cpus))
    return max(1, cores // max(1, min(trials, cores)))


def _tune(sweep: Sweep, indices: list[int], cancel: threading.Event, cluster_address: str,
          concurrent: int) -> None:
    from core.training.distribution.ray_launcher import cluster_for

    with cluster_for(TrainingConfig(cluster=cluster_address)) as cluster:
        threads = default_threads(cluster.cpus, len(indices))
        concurrent = concurrent or max(1, int(cluster.cpus) // threads)
        sweep.emit(SweepStarted(sweep.sweep_dir, [dict(t) for t in sweep.trials], concurrent, threads,
                                cluster.describe()))
        if cluster.security_warning:
            from core.events import Message

            sweep.emit(Message(cluster.security_warning, "warning"))
        # Only now: Ray reads its token settings at its first import (see ray_launcher.train_on_ray).
        from core.training.sweep.tune_run import TuneRun

        TuneRun(sweep, indices, threads, concurrent, cancel).run()


def _ignore(event: Any) -> None:
    pass

