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
PRETRAINED_MODELS = ("mobilenetv2", "efficientnetb0")  # a Keras backbone with ImageNet weights
MIN_BACKBONE_IMAGE_SIZE = 32  # keras.applications refuses smaller inputs
WEIGHTS_URL_SCHEMES = ("http://", "https://", "file://")
# float32 everywhere, or float16/bfloat16 compute with float32 weights (the last layer stays float32).
PRECISIONS = ("float32", "mixed")
# How an image meets the model's square input: squeezed whole, or its centre square cut out.
RESIZE_MODES = ("stretch", "crop")
# Disk space that decoded images kept between runs may take, by default (core.data.disk_cache).
DEFAULT_CACHE_DISK_MB = 4096
# "auto": weight each class's loss by n_images / (n_classes * n_class), so that a small class counts
# as much as a large one (core.data.dataset.balanced_class_weights).
CLASS_WEIGHT_MODES = ("none", "auto")
# How a pretrained backbone with a frozen base trains: "cached" computes each image's backbone
# features once (kept in the disk cache between runs) and trains the head on them; "none" runs every
# image through the whole model in every epoch; "auto" (the default) is "cached" wherever it can be.
FEATURE_MODES = ("auto", "cached", "none")
# TensorFlow's collective server (one per worker of a MultiWorkerMirroredStrategy run) binds every
# network interface, hard-coded in its grpc_server_lib.cc, and runs the graphs it is sent without
# authentication. Said before such a run starts, by the CLI, the window and the engine's log.
OPEN_PORTS_WARNING = (
    "Open ports: TensorFlow's servers accept unauthenticated connections on every network interface "
    "while the run lasts."
)
CLUSTER_NETWORK_NOTE = (
    "The machines must share a trusted network: TensorFlow's servers on each worker accept "
    "unauthenticated connections on every network interface while the run lasts."
)
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
    "fine_tune_after": (0, 10_000),
    "fine_tune_layers": (1, 1000),  # MobileNetV2 has 154 layers, EfficientNetB0 238
    "fine_tune_learning_rate": (1e-7, 1.0),
    "workers": (1, 256),
    "max_restarts": (0, 100),
    "feature_copies": (0, 100),
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
    cache: bool = True  # keep decoded images: for later epochs (memory, else a disk file) and later runs
    cache_memory_mb: int = 0  # memory the cache may use; 0: a quarter of the machine's RAM
    cache_disk_mb: int = DEFAULT_CACHE_DISK_MB  # the disk cache shared by all runs; 0: keep nothing
    early_stopping_patience: int = 0  # stop after this many epochs without a better val_loss; 0: off
    reduce_lr_patience: int = 0  # multiply the learning rate by reduce_lr_factor after this many; 0: off
    reduce_lr_factor: float = 0.5
    weights_url: str = ""  # a mirror of Keras's weight files; "": $FITSTUDIO_WEIGHTS_URL, else Keras's
    # Fine-tuning: after this many epochs with the backbone frozen, unfreeze its top layers and go on
    # with a lower learning rate (BatchNormalization layers stay frozen); 0: never.
    fine_tune_after: int = 0
    fine_tune_layers: int = 30
    fine_tune_learning_rate: float = 1e-5
    class_weights: str = "none"  # or "auto": balance the classes' weight in the loss
    # Where it trains. gpus: "" lets TensorFlow choose (the first GPU, else the CPU); "all" or "0,1"
    # trains on those GPUs of this computer at once (MirroredStrategy).
    gpus: str = ""
    # workers > 1: that many processes, orchestrated by Ray, on a local Ray cluster started for the
    # run, or on the existing cluster at `cluster` ("host:port"). A failed worker group is restarted
    # up to max_restarts times and continues from the last checkpoint.
    workers: int = 1
    cluster: str = ""
    max_restarts: int = 3
    # Training the head on cached backbone features (FEATURE_MODES), and how many augmented copies of
    # each training image are kept as features (each epoch takes one of them; 0: the plain image).
    features: str = "auto"
    feature_copies: int = 0
    # Workers on this computer only with this consent (OPEN_PORTS_WARNING); not needed for `cluster`.
    allow_open_ports: bool = False
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
        if self.model in PRETRAINED_MODELS and self.image_size < MIN_BACKBONE_IMAGE_SIZE:
            raise ConfigError(
                f"{self.model} needs images of at least {MIN_BACKBONE_IMAGE_SIZE} px; "
                f"image_size is {self.image_size}."
            )
        self._validate_fine_tuning()
        self._validate_features()
        url = self.weights_url.strip()
        if url and not url.lower().startswith(WEIGHTS_URL_SCHEMES):
            raise ConfigError(
                f"The weights mirror must be a URL starting with {', '.join(WEIGHTS_URL_SCHEMES)}, "
                f"not '{url}'."
            )
        if self.class_weights not in CLASS_WEIGHT_MODES:
            raise ConfigError(f"class_weights must be one of {', '.join(CLASS_WEIGHT_MODES)}.")
        if self.decode_threads < 0 or self.cache_memory_mb < 0:
            raise ConfigError("decode_threads and cache_memory_mb must be 0 (automatic) or more.")
        if self.cache_disk_mb < 0:
            raise ConfigError("cache_disk_mb must be 0 (keep nothing on disk between runs) or more.")
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
        if self.workers > 1 and not self.cluster and not self.allow_open_ports:
            raise ConfigError(
                f"{self.workers} workers on this computer would open TensorFlow's servers on every "
                "network interface, without authentication, while the run lasts. To train on several "
                "GPUs of this computer, use --gpus all (or --gpus 0,1; in the window: Device) instead. "
                "To run the workers anyway, add --allow-open-ports (in the window: Allow open ports)."
            )
        if self.distributed and self.batch_size < self.workers:
            raise ConfigError(
                f"The batch size ({self.batch_size}) is split across the {self.workers} workers: "
                f"make it at least {self.workers}."
            )
        return self

    def _validate_fine_tuning(self) -> None:
        if not self.fine_tune_after:
            return
        if self.model not in PRETRAINED_MODELS:
            raise ConfigError(
                f"Fine-tuning unfreezes a pretrained backbone, which {self.model} has not: choose "
                f"{' or '.join(PRETRAINED_MODELS)}, or turn fine-tuning off."
            )
        if self.fine_tune_after >= self.epochs:
            raise ConfigError(
                f"Fine-tuning starts after epoch {self.fine_tune_after}, but the run has {self.epochs} "
                f"epochs: train more epochs, or start fine-tuning earlier."
            )

    def _validate_features(self) -> None:
        if self.features not in FEATURE_MODES:
            raise ConfigError(f"features must be one of {', '.join(FEATURE_MODES)}, not {self.features!r}.")
        if self.features == "cached" and self.model not in PRETRAINED_MODELS:
            raise ConfigError(
                f"Cached features are a pretrained backbone's ({' or '.join(PRETRAINED_MODELS)}); "
                f"{self.model} trains end to end: choose features 'none' or 'auto'."
            )
        if self.features == "cached" and self.distributed:
            raise ConfigError(
                "Cached features are computed in this process, not on Ray workers: train with features "
                "'none' (--features none) on workers, or with one worker."
            )
        if self.feature_copies and self.features != "none" and not self.augmentation.any:
            raise ConfigError(
                f"{self.feature_copies} feature copies would be augmented copies, but augmentation is "
                "off: turn augmentation on (--augment), or keep no copies (0)."
            )

    @property
    def cached_features(self) -> bool:
        """The run trains its head on cached backbone features (core.training.feature_stage)."""
        return self.features != "none" and self.model in PRETRAINED_MODELS and not self.distributed

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
        # Settings saved before cached features existed belong to runs trained end to end.
        values.setdefault("features", "none")
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
