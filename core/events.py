"""Plain event types the engine emits while it trains, and while it checks a dataset.

They are frozen dataclasses of plain Python data, so they can cross threads (the GUI worker
re-emits them as Qt signals) and be printed by the CLI. `epoch` is always the 0-based index that
Keras uses; people see `epoch + 1`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    """A line for the log: skipped files, fallback to random weights, the run folder."""

    text: str
    level: str = "info"  # "info" or "warning"


@dataclass(frozen=True)
class FineTuneStarted:
    """The backbone's top `layers` layers were unfrozen before 0-based `epoch`; training goes on with
    `learning_rate`."""

    epoch: int
    layers: int
    learning_rate: float


@dataclass(frozen=True)
class RunStarted:
    run_dir: str
    class_names: list[str]
    train_counts: dict[str, int]
    val_counts: dict[str, int]
    steps_per_epoch: int
    validation_steps: int
    epochs: int
    initial_epoch: int
    batch_size: int
    device: str
    pretrained: bool | None  # None for models trained from scratch
    history: list[dict[str, float]] = field(default_factory=list)  # earlier epochs of a resumed run
    fine_tune: FineTuneStarted | None = None  # fine-tuning that began before this session
    # strategy, workers, replicas, global_batch, per_replica_batch...: report.json's "distribution"
    distribution: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchEnd:
    epoch: int
    step: int  # 0-based index of the batch just finished
    steps: int  # batches per epoch
    loss: float
    accuracy: float
    images_per_second: float


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    epochs: int
    logs: dict[str, float]  # loss, accuracy, val_loss, val_accuracy (+ learning_rate if tracked)
    seconds: float
    images_per_second: float
    data_wait: float  # fraction 0..1 of the epoch the training loop waited for the next batch
    best_epoch: int | None = None
    learning_rate_change: tuple[float, float] | None = None  # (old, new) when this epoch's end reduced it
    stopped_early: bool = False  # early stopping ends the run after this epoch


@dataclass(frozen=True)
class DownloadProgress:
    """Pretrained weights are being downloaded; the last event of a download has done=True."""

    file_name: str
    url: str
    received_bytes: int
    total_bytes: int | None  # None when the server does not say
    done: bool = False


@dataclass(frozen=True)
class FeatureProgress:
    """The backbone's features of `done` of `total` images are computed (core.modeling.features); the
    images of a run whose features were kept from an earlier run are not counted."""

    done: int
    total: int
    images_per_second: float

    def describe(self) -> str:
        return f"Computing features: {self.done:,} of {self.total:,}, {self.images_per_second:.0f} images/s"


@dataclass(frozen=True)
class WorkerProgress:
    """How far one worker of a distributed run is (rank 0 is the chief, which also sends BatchEnd)."""

    rank: int
    workers: int
    host: str
    epoch: int
    step: int  # 0-based index of the batch just finished
    steps: int
    images_per_second: float  # this worker's own images


@dataclass(frozen=True)
class RunResult:
    run_dir: str
    status: str  # "completed", "cancelled" or "failed"
    epochs_completed: int
    best_epoch: int | None
    best_val_accuracy: float | None
    best_val_loss: float | None
    final_logs: dict[str, float]
    duration_seconds: float
    message: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    out_of_memory: bool = False  # the run failed for lack of memory: a smaller batch size may fit


@dataclass(frozen=True)
class RunFinished:
    """The run ended as completed or cancelled; the run folder is complete."""

    result: RunResult


@dataclass(frozen=True)
class RunFailed:
    """The run ended on an error; what it trained so far is saved in the run folder."""

    message: str
    details: str
    result: RunResult


@dataclass(frozen=True)
class CheckProgress:
    """The dataset doctor moved on: it is doing `step` (a phrase for a progress bar), `done` of
    `total` units of it (images, epochs); total 0 while the amount is not known."""

    step: str
    done: int
    total: int


Event = (
    Message | DownloadProgress | FeatureProgress | RunStarted | BatchEnd | WorkerProgress | EpochEnd
    | FineTuneStarted | RunFinished | RunFailed
)
CheckEvent = Message | CheckProgress
