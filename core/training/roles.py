"""The role a training plays: a run in this process, or one worker of a distributed run.

`core.training.run.Run` is the same for every role; the role it is handed supplies what differs:

    place(config, emit)                where this process trains (a strategies.Placement)
    callbacks_around(cancel, stream)   callbacks that go first and last around the run's own
    writes                             whether this process writes the run folder
    members, restarts                  the worker group and its restarts, for report.json
    passes_on(exc)                     an error that is not this run's failure: raised, not reported
    weights                            a backbone's weights obtained for it (core.modeling.weights),
                                       or None: the run obtains them itself

`LocalRole` is a run in this process. A Ray worker's role (the chief is rank 0) is
`core.training.distribution.worker.WorkerRole`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from core.config import TrainingConfig
from core.events import Event, Message


class Role:
    """What every role has unless it says otherwise: it writes, adds no callbacks, passes nothing on."""

    writes = True

    def __init__(self) -> None:
        self.members: list[dict[str, Any]] | None = None
        self.restarts: list[dict[str, Any]] = []
        self.weights: Any = None  # a core.modeling.weights.Weights when someone obtained them

    def place(self, config: TrainingConfig, emit: Callable[[Event], None]) -> Any:
        raise NotImplementedError

    def callbacks_around(self, cancel: threading.Event, train_stream: Any) -> tuple[list, list]:
        return [], []

    def passes_on(self, exc: BaseException) -> bool:
        return False


class LocalRole(Role):
    """A run in this process: TensorFlow's device, or the GPUs the user chose (one strategy)."""

    def place(self, config: TrainingConfig, emit: Callable[[Event], None]) -> Any:
        from core.training.distribution.strategies import local_placement

        placement, note = local_placement(config)
        if note:
            emit(Message(note))
        return placement
