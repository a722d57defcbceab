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
# How an image meets the model's square input: squeezed whole, or its centre square cut out.
RESIZE_MODES = ("stretch", "crop")
# "auto": weight each class's loss by n_images / (n_classes * n_class), so that a small class counts
# as much as a large one (core.data.dataset.balanced_class_weights).
CLASS_WEIGHT_MODES = ("none", "auto")
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
    class_weights: str = "none"  # or "auto": balance the classes' weight in the loss

    def validate(self) -> TrainingConfig:
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(f"{name} must be between {low} and {high}, not {value}.")
        if self.model not in MODEL_NAMES:
            raise ConfigError(f"Unknown model '{self.model}'. Choose one of: {', '.join(MODEL_NAMES)}.")
        if self.resize_mode not in RESIZE_MODES:
            raise ConfigError(f"resize_mode must be one of {', '.join(RESIZE_MODES)}.")
        if self.class_weights not in CLASS_WEIGHT_MODES:
            raise ConfigError(f"class_weights must be one of {', '.join(CLASS_WEIGHT_MODES)}.")
        if self.decode_threads < 0 or self.cache_memory_mb < 0:
            raise ConfigError("decode_threads and cache_memory_mb must be 0 (automatic) or more.")
        return self

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
