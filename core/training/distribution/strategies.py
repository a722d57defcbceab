"""Which tf.distribute strategy a run trains under, and how its batches split.

- In this process: nothing (TensorFlow's own device choice) unless the user picked GPUs; one GPU
  gets OneDeviceStrategy, two or more MirroredStrategy.
- In a Ray worker: MultiWorkerMirroredStrategy over every worker's devices (Ray sets TF_CONFIG),
  with the Keras fixes of keras_compat.

The batch size the user sets is the global batch: each step trains on about that many images, dealt
across all replicas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.config import TrainingConfig, parse_gpus
from core.errors import ConfigError
from core.tf_runtime import load_tensorflow

# One MirroredStrategy per set of devices for the whole process. Each new strategy numbers its
# collective ops from the same start, and TensorFlow remembers an op by that number: a second run in
# the same process (a resume, the window's next run) whose gradients have other shapes then fails
# with "Shape mismatch in the collective instance". One strategy keeps counting instead.
_mirrored: dict[tuple[str, ...], Any] = {}


@dataclass
class Placement:
    """Where one process of a run trains, and its share of the work."""

    strategy: Any = None  # a tf.distribute.Strategy, or None for TensorFlow's default device
    name: str = "default"  # the strategy's class name, as the report shows it
    devices: list[str] = field(default_factory=list)
    workers: int = 1
    rank: int = 0  # this worker's index among `workers`; rank 0 is the chief

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync if self.strategy is not None else 1

    @property
    def is_chief(self) -> bool:
        return self.rank == 0

    @property
    def multi_worker(self) -> bool:
        return self.workers > 1

    def scope(self):
        """The strategy's scope, for building, compiling and loading the model; a no-op without one."""
        import contextlib

        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def summary(self, global_batch: int, steps_per_epoch: int, train_images: int) -> dict[str, Any]:
        """The report's "distribution" entry."""
        per_step = train_images / max(steps_per_epoch, 1)
        return {
            "strategy": self.name,
            "workers": self.workers,
            "replicas": self.replicas,
            "devices": list(self.devices),
            "global_batch": global_batch,
            "steps_per_epoch": steps_per_epoch,
            "per_replica_batch": describe_split(round(per_step), self.replicas),
        }


def describe_split(batch: int, replicas: int) -> str:
    """'16' when `batch` splits evenly across `replicas`, else the range, like '10-11'."""
    small, extra = divmod(batch, replicas)
    return str(small) if not extra else f"{small}-{small + 1}"


def gpu_devices() -> list[str]:
    """TensorFlow's names of this process's GPUs ('/physical_device:GPU:0' -> '/gpu:0')."""
    tf = load_tensorflow()

    return [f"/gpu:{index}" for index, _ in enumerate(tf.config.list_physical_devices("GPU"))]


def local_placement(config: TrainingConfig) -> tuple[Placement, str]:
    """The placement of a run in this process, and a line for the log saying what was chosen."""
    tf = load_tensorflow()

    choice = parse_gpus(config.gpus)
    if choice == "":
        return Placement(), ""
    available = gpu_devices()
    if choice == "all":
        chosen = available
        if not chosen:
            return Placement(), "No GPU found: training on the CPU."
    else:
        missing = [index for index in choice if index >= len(available)]
        if missing:
            have = f"GPUs {', '.join(map(str, range(len(available))))}" if available else "no GPU"
            raise ConfigError(
                f"GPU {', '.join(map(str, missing))} does not exist: this computer has {have}. "
                "Choose others, or 'all'."
            )
        chosen = [available[index] for index in choice]
    one = len(chosen) == 1
    strategy = tf.distribute.OneDeviceStrategy(chosen[0]) if one else _mirrored_strategy(chosen)
    placement = Placement(strategy, type(strategy).__name__, chosen)
    return placement, f"Training on {', '.join(chosen)} ({placement.name})"


def _mirrored_strategy(devices: list[str]) -> Any:
    """This process's MirroredStrategy over `devices` (see _mirrored)."""
    key = tuple(devices)
    if key not in _mirrored:
        _mirrored[key] = load_tensorflow().distribute.MirroredStrategy(devices=devices)
    return _mirrored[key]


def worker_placement(rank: int, workers: int) -> Placement:
    """MultiWorkerMirroredStrategy for a Ray worker (TF_CONFIG must already be set, as Ray does)."""
    tf = load_tensorflow()

    from core.training.distribution import keras_compat

    keras_compat.install()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    devices = list(strategy.extended.worker_devices)
    if len(devices) != 1:
        # Each worker streams one batch per step for one replica (inputs.distributed_dataset).
        raise ConfigError(
            f"Worker {rank} sees {len(devices)} devices; FitStudio runs one worker per GPU. "
            "Ask for as many workers as GPUs."
        )
    return Placement(strategy, "MultiWorkerMirroredStrategy", devices, workers, rank)
