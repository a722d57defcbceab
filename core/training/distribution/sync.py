"""The run callbacks of a distributed run.

Under MultiWorkerMirroredStrategy every training step is a collective op: a worker that leaves the
loop one step earlier than the others leaves them waiting for ever. So whatever decides that a run
stops must decide it on every worker at the same step:

- `StopAgreement` (first in the list) asks the chief, every few batches and at the last batch of
  each epoch, whether the user asked to stop; all workers get the chief's answer at the same step
  and set their cancel flag together, so the callbacks after it stop together;
- `EpochAgreement` (last in the list) gives every worker the chief's `stop_training` after the
  epoch's callbacks ran: only the chief writes, so only its checkpoint can fail.

`DistributionReport` tells report.json how the run was spread and which restarts it survived (kept
in the checkpoint, so a resumed run still lists them).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from core.training.callbacks import RunCallback

STOP_CHECK_BATCHES = 10  # one broadcast through Ray: ~8 ms on two CPU workers of one machine


class StopAgreement(RunCallback):
    def __init__(self, link: Any, cancel: threading.Event, train_stream: Any):
        super().__init__()
        self.link, self.cancel, self.train_stream = link, cancel, train_stream
        self.steps = len(train_stream)
        self._epoch, self._epoch_started = 0, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._epoch_started = epoch, time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        images = self.train_stream.order.bounds(batch)[1]
        elapsed = max(time.perf_counter() - self._epoch_started, 1e-9)
        self.link.progress(self._epoch, batch, self.steps, images / elapsed)
        if ((batch + 1) % STOP_CHECK_BATCHES == 0 or batch + 1 == self.steps) and self.link.stop_agreed():
            self.cancel.set()


class EpochAgreement(RunCallback):
    def __init__(self, link: Any):
        super().__init__()
        self.link = link

    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = bool(self.link.agree(bool(self.model.stop_training)))


class DistributionReport(RunCallback):
    """State: `restarts`. Report: `distribution`."""

    def __init__(self, placement: Any, members: list[dict[str, Any]] | None = None,
                 session_restarts: list[dict[str, Any]] | None = None):
        super().__init__()
        self.placement = placement
        self.members = members or []
        self.restarts: list[dict[str, Any]] = list(session_restarts or [])
        self.summary: dict[str, Any] = {}

    def describe(self, global_batch: int, steps_per_epoch: int, train_images: int) -> dict[str, Any]:
        self.summary = self.placement.summary(global_batch, steps_per_epoch, train_images)
        if self.members:
            self.summary["hosts"] = [{"rank": m["rank"], "host": m["host"]} for m in self.members]
        return self.summary

    def get_state(self) -> dict[str, Any]:
        return {"restarts": self.restarts}

    def set_state(self, state: dict[str, Any]) -> None:
        """The checkpoint's restarts (earlier sessions, and this one's up to that epoch) and this
        session's, each once."""
        known = {(r["session"], r["attempt"]) for r in self.restarts}
        earlier = [r for r in state.get("restarts", []) if (r["session"], r["attempt"]) not in known]
        self.restarts = [*earlier, *self.restarts]

    def report(self) -> dict[str, Any]:
        return {"distribution": {**self.summary, "restarts": self.restarts}}
