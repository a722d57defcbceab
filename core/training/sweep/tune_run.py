"""Ray Tune's side of a sweep (imports Ray: loaded only once the cluster is up, core.training.sweep.runner).

Tune runs on a helper thread; its callback puts what happens on a queue, and the thread that runs
the sweep takes it off, updates sweep.json and passes events on, until Tune returns. A set `cancel`
makes the stopper end the experiment: Tune stops every trial.
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
import traceback
from typing import TYPE_CHECKING, Any

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # no experiment tables on our output
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from core.training.sweep.space import ASHA_REDUCTION_FACTOR, METRICS
from core.training.sweep.trial import run_trial

if TYPE_CHECKING:
    from core.training.sweep.runner import Sweep

POLL_SECONDS = 0.2
# Tune pickles its callbacks, stopper and scheduler with the experiment's state; a queue or an event
# cannot be pickled, so they hold this key of the running sweep's queue and cancel event instead.
_live: dict[str, tuple[queue.Queue, threading.Event]] = {}  # the event: the stop file is written


class TuneRun:
    def __init__(self, sweep: Sweep, indices: list[int], threads: int, concurrent: int,
                 cancel: threading.Event):
        self.sweep, self.indices, self.threads, self.concurrent = sweep, indices, threads, concurrent
        self.cancel = cancel
        self.happenings: queue.Queue = queue.Queue()
        self.key = f"{sweep.id}-{id(self)}"
        self.stop_written = threading.Event()  # Tune stops the trials only after the stop file exists

    def run(self) -> None:
        storage = tempfile.mkdtemp(prefix="fitstudio-sweep-")
        failure: list[str] = []
        _live[self.key] = (self.happenings, self.stop_written)
        tuner = self._tuner(storage)

        def fit() -> None:
            try:
                tuner.fit()
            except Exception:  # Tune itself failed: the trials' folders still say what they did
                failure.append(traceback.format_exc())

        thread = threading.Thread(target=fit, name="fitstudio-sweep-tune", daemon=True)
        thread.start()
        stop_sent = False
        try:
            while thread.is_alive():
                thread.join(POLL_SECONDS)
                self._take()
                if self.cancel.is_set() and not stop_sent:
                    self.sweep.request_stop()
                    self.stop_written.set()
                    stop_sent = True
            self._take()
        finally:
            _live.pop(self.key, None)
            shutil.rmtree(storage, ignore_errors=True)
        if failure:
            from core.events import Message

            self.sweep.emit(Message(f"Ray Tune stopped: {failure[0].strip().splitlines()[-1]}", "warning"))

    def _tuner(self, storage: str) -> tune.Tuner:
        trainable = tune.with_resources(tune.with_parameters(run_trial, plan=self.sweep.plan(self.threads)),
                                        {"cpu": self.threads})
        return tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search(self.indices)},
            # Reused trial processes import TensorFlow once, not once per trial.
            tune_config=tune.TuneConfig(scheduler=self._scheduler(), max_concurrent_trials=self.concurrent,
                                        reuse_actors=True),
            run_config=tune.RunConfig(name=self.sweep.id, storage_path=storage, verbose=0,
                                      callbacks=[_Relay(self.key)], stop=_CancelStopper(self.key),
                                      log_to_file=False),
        )

    def _scheduler(self) -> TrialScheduler:
        record = self.sweep.record
        if record["scheduler"] != "asha":
            return FIFOScheduler()
        return _RecordingASHA(self.key, time_attr="epoch", metric=record["metric"],
                              mode=METRICS[record["metric"]], max_t=int(record["epochs"]), grace_period=1,
                              reduction_factor=ASHA_REDUCTION_FACTOR,
                              stop_last_trials=False)  # a trial at its last epoch ends by itself

    def _take(self) -> None:
        while True:
            try:
                kind, index, payload = self.happenings.get_nowait()
            except queue.Empty:
                return
            if kind == "start":
                self.sweep.started(index)
            elif kind == "result":
                self.sweep.epoch_done(index, payload)
            elif kind == "stop":
                self.sweep.stopped[index] = payload
            elif kind == "end":
                self.sweep.ended(index, payload)


class _Relay(tune.Callback):
    """On Tune's thread: only puts plain tuples on the queue."""

    def __init__(self, key: str):
        self.key = key

    def _put(self, kind: str, trial, payload: Any) -> None:
        happenings, _cancel = _live[self.key]
        happenings.put((kind, trial.config["trial"], payload))

    def on_trial_start(self, iteration, trials, trial, **info):
        self._put("start", trial, None)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        metrics = {key: float(value) for key, value in result.items()
                   if key in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")}
        self._put("result", trial, metrics)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._put("end", trial, "")

    def on_trial_error(self, iteration, trials, trial, **info):
        error = str(getattr(trial, "error_file", "") or "the trial's process failed")
        self._put("end", trial, error)


class _RecordingASHA(ASHAScheduler):
    """ASHA that says which trials it stopped and after which epoch (before Tune stops them)."""

    def __init__(self, key: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.key = key

    def on_trial_result(self, tune_controller, trial, result):
        decision = super().on_trial_result(tune_controller, trial, result)
        if decision == TrialScheduler.STOP and int(result.get("epoch", 0)) < self._max_t:
            _live[self.key][0].put(("stop", trial.config["trial"], int(result["epoch"])))
        return decision


class _CancelStopper(tune.Stopper):
    def __init__(self, key: str):
        self.key = key

    def __call__(self, trial_id, result) -> bool:
        return False

    def stop_all(self) -> bool:
        return _live[self.key][1].is_set()
