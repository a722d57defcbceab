"""TrainingConfig: every setting of a training, as one value the GUI and the CLI both build.

Kept free of TensorFlow so the window can build and validate one before TF is imported.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from core.errors import ConfigError
from core.paths import default_runs_dir, demo_train_dir, demo_val_dir

MODEL_NAMES = ("small-cnn", "mobilenetv2", "efficientnetb0")
# float32 everywhere, or float16/bfloat16 compute with float32 weights (the last layer stays float32).
PRECISIONS = ("float32", "mixed")
# How an image meets the model's square input: squeezed whole, or its centre square cut out.
RESIZE_MODES = ("stretch", "crop")
# Limits that keep a run meaningful and inside memory; the window's spin boxes use the same.
LIMITS = {
    "epochs": (1, 10_000),
    "batch_size": (1, 1024),
    "image_size": (16, 1024),
    "learning_rate": (1e-7, 1.0),
    "val_split": (0.01, 0.9),
    "seed": (0, 2**31 - 1),
    "early_stopping_patience": (0, 1000),
    "reduce_lr_patience": (0, 1000),
    "reduce_lr_factor": (0.05, 0.95),
    "workers": (1, 256),
    "max_restarts": (0, 100),
}


@dataclass(frozen=True)
class Augmentation:
    """Random changes applied to training batches only (Keras layers are identity at inference)."""

    flip: bool = False
    rotation: bool = False
    zoom: bool = False
    contrast: bool = False

    @classmethod
    def all_on(cls) -> Augmentation:
        return cls(flip=True, rotation=True, zoom=True, contrast=True)

    @property
    def any(self) -> bool:
        return self.flip or self.rotation or self.zoom or self.contrast


@dataclass(frozen=True)
class TrainingConfig:
    train_dir: str = field(default_factory=demo_train_dir)
    val_dir: str | None = field(default_factory=demo_val_dir)
    val_split: float = 0.2  # used only when val_dir is None
    epochs: int = 5
    batch_size: int = 32
    image_size: int = 128
    model: str = "small-cnn"
    learning_rate: float = 1e-3
    augmentation: Augmentation = Augmentation()
    seed: int = 1337
    out_dir: str = field(default_factory=default_runs_dir)
    resize_mode: str = "stretch"  # or "crop": centre-crop to the aspect ratio first
    decode_threads: int = 0  # 0: one per CPU core
    cache: bool = True  # keep decoded images after the first epoch (memory, else a disk file)
    cache_memory_mb: int = 0  # memory the cache may use; 0: a quarter of the machine's RAM
    early_stopping_patience: int = 0  # stop after this many epochs without a better val_loss; 0: off
    reduce_lr_patience: int = 0  # multiply the learning rate by reduce_lr_factor after this many; 0: off
    reduce_lr_factor: float = 0.5
    # Where it trains. gpus: "" lets TensorFlow choose (the first GPU, else the CPU); "all" or "0,1"
    # trains on those GPUs of this computer at once (MirroredStrategy).
    gpus: str = ""
    # workers > 1: that many processes, orchestrated by Ray, on a local Ray cluster started for the
    # run, or on the existing cluster at `cluster` ("host:port"). A failed worker group is restarted
    # up to max_restarts times and continues from the last checkpoint.
    workers: int = 1
    cluster: str = ""
    max_restarts: int = 3
    # Speed switches: mixed precision and XLA compilation.
    precision: str = "float32"
    jit: bool = False

    def validate(self) -> TrainingConfig:
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(f"{name} must be between {low} and {high}, not {value}.")
        if self.model not in MODEL_NAMES:
            raise ConfigError(f"Unknown model '{self.model}'. Choose one of: {', '.join(MODEL_NAMES)}.")
        if self.resize_mode not in RESIZE_MODES:
            raise ConfigError(f"resize_mode must be one of {', '.join(RESIZE_MODES)}.")
        if self.decode_threads < 0 or self.cache_memory_mb < 0:
            raise ConfigError("decode_threads and cache_memory_mb must be 0 (automatic) or more.")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}.")
        parse_gpus(self.gpus)
        if self.cluster and ":" not in self.cluster:
            raise ConfigError(
                f"The cluster address {self.cluster!r} needs a port, as printed by `ray start --head` "
                "(for example 10.0.0.5:6379)."
            )
        if self.distributed and self.gpus:
            raise ConfigError(
                "Choose GPUs of this computer (gpus) or Ray workers (workers, cluster), not both: "
                "each Ray worker uses the GPU Ray gives it."
            )
        if self.distributed and self.batch_size < self.workers:
            raise ConfigError(
                f"The batch size ({self.batch_size}) is split across the {self.workers} workers: "
                f"make it at least {self.workers}."
            )
        return self

    @property
    def distributed(self) -> bool:
        """Trains in Ray worker processes rather than in this one."""
        return self.workers > 1 or bool(self.cluster)

    def replace(self, **changes: Any) -> TrainingConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"Unknown settings in the configuration: {', '.join(unknown)}.")
        values = dict(data)
        if isinstance(values.get("augmentation"), dict):
            values["augmentation"] = Augmentation(**values["augmentation"])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> TrainingConfig:
        return cls.from_dict(json.loads(text))


def parse_gpus(text: str) -> list[int] | str:
    """"" (TensorFlow's choice), "all", or GPU indices ("0,1" -> [0, 1]); raises ConfigError."""
    text = text.strip().lower()
    if text in ("", "all"):
        return text
    try:
        indices = [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(
            f"gpus must be 'all' or GPU numbers separated by commas (like 0,1), not {text!r}."
        ) from None
    if any(index < 0 for index in indices) or len(set(indices)) != len(indices):
        raise ConfigError(f"GPU numbers must be different and 0 or more, not {text!r}.")
    return indices
