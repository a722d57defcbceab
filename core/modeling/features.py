"""Training a pretrained model's head on cached backbone features, and the joined model it saves.

A model of build_model with a frozen backbone is, in inference mode, pixels -> [augmentation, identity
at inference] -> preprocessing -> backbone -> global pooling ("pool_global") -> head (Dropout
"head_dropout", Dense "classes"). `split_model` cuts it at the pooling:

- the extractor (pixels -> pooled features) runs once per image and view (`compute_features`);
- the head (features -> probabilities) is a model made of the very same Dropout and Dense layers,
  so fitting it trains the joined model's head too: the joined model is the built model itself,
  and it is what the run saves. Its predictions equal the head's on the cached features.

The head is compiled with the joined model's optimizer object: the checkpoint of the joined model
then carries the head's optimizer state, and a resumed run splits the loaded model the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from core.config import Augmentation, TrainingConfig
from core.data.feature_cache import Backbone, FeatureTable
from core.events import Event, FeatureProgress
from core.modeling.models import augmentation_model, compile_model
from core.modeling.weights import weights_sha256
from core.tf_runtime import load_keras

keras = load_keras()

POOL_LAYER, DROPOUT_LAYER, CLASSES_LAYER = "pool_global", "head_dropout", "classes"
# How pixels 0..255 reach each backbone (models._frozen_backbone): part of the features' identity.
PREPROCESSING = {
    "mobilenetv2": "Rescaling(1/127.5, offset=-1); GlobalAveragePooling2D",
    "efficientnetb0": "EfficientNet's own normalisation; GlobalAveragePooling2D",
}


@dataclass
class ModelParts:
    joined: keras.Model  # pixels -> probabilities: the model the run saves
    extractor: keras.Model  # pixels -> pooled features (augmentation is identity in inference)
    head: keras.Model  # features -> probabilities, sharing the joined model's head layers

    @property
    def width(self) -> int:
        return int(self.extractor.output.shape[-1])


def split_model(model: keras.Model) -> ModelParts:
    """The extractor and the head of a model made by build_model (with a pretrained backbone)."""
    pooled = model.get_layer(POOL_LAYER).output
    extractor = keras.Model(model.inputs, pooled, name=f"{model.name}_features")
    features = keras.Input((int(pooled.shape[-1]),), name="features")
    outputs = model.get_layer(CLASSES_LAYER)(model.get_layer(DROPOUT_LAYER)(features))
    return ModelParts(model, extractor, keras.Model(features, outputs, name=f"{model.name}_head"))


def compile_head(parts: ModelParts, jit: bool = False) -> None:
    """Compiles the head to train with the joined model's optimizer (which a checkpoint saves)."""
    compile_model(parts.head, 0.0, jit=jit, optimizer=parts.joined.optimizer)


def backbone_identity(config: TrainingConfig, weights_path: str | None, width: int) -> Backbone | None:
    """What the features of `config`'s backbone depend on; None without a weights file (random
    weights are not worth keeping, and nothing names them)."""
    if weights_path is None:
        return None
    return Backbone(config.model, weights_sha256(weights_path), config.image_size, config.resize_mode,
                    PREPROCESSING[config.model], width)


def describe_augmentation(augmentation: Augmentation) -> str:
    return "+".join(name for name in ("flip", "rotation", "zoom", "contrast") if getattr(augmentation, name))


@dataclass
class FeatureJob:
    """The images of one split (read through `stream`, an ImageStream) and the views wanted of them:
    (table, augmenter); augmenter None is the plain view."""

    stream: object
    views: list[tuple[FeatureTable, keras.Model | None]]
    computed: int = 0
    reused: int = 0
    _todo: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def plan(self) -> int:
        wanted = np.zeros(len(self.views[0][0].filled), dtype=bool)
        for table, _ in self.views:
            wanted |= ~table.filled
        self._todo = np.flatnonzero(wanted)
        self.reused = len(wanted) - len(self._todo)
        return len(self._todo)


def copy_augmenters(image_size: int, augmentation: Augmentation, seed: int, copies: int) -> list[keras.Model]:
    """One augmentation model per copy, each seeded apart from the others and from the model's own."""
    return [augmentation_model(image_size, augmentation, seed + 7919 * (copy + 1)) for copy in range(copies)]


def compute_features(extractor: keras.Model, jobs: list[FeatureJob], batch_size: int,
                     emit: Callable[[Event], None], cancel: threading.Event) -> bool:
    """Fills every job's tables with the features they lack, batch by batch: the next batch decodes
    while the backbone runs on this one. Emits FeatureProgress after each batch. Returns False when
    `cancel` was set (within one batch); what was computed until then is kept."""
    total = sum(job.plan() for job in jobs)
    done, started = 0, time.perf_counter()
    for job in jobs:
        batches = [job._todo[i : i + batch_size] for i in range(0, len(job._todo), batch_size)]
        pending = job.stream.load_async(batches[0]) if batches else None
        for number in range(len(batches)):
            if cancel.is_set():
                return False
            images, kept = job.stream.collect(pending)
            if number + 1 < len(batches):
                pending = job.stream.load_async(batches[number + 1])
            for table, augmenter in job.views:
                needed = ~table.filled[kept]
                if needed.any():
                    _extract_into(extractor, augmenter, images[needed], kept[needed], table)
            job.computed += len(kept)
            done += len(batches[number])
            emit(FeatureProgress(done, total, done / max(time.perf_counter() - started, 1e-9)))
    return not cancel.is_set()


def _extract_into(extractor, augmenter, images: np.ndarray, indices: np.ndarray, table: FeatureTable) -> None:
    pixels = images.astype(np.float32)
    if augmenter is not None:
        pixels = keras.ops.convert_to_numpy(augmenter(pixels, training=True))
    if extractor.distribute_strategy.num_replicas_in_sync > 1:
        # Split over the replicas (every GPU of --gpus); predict_on_batch would pad an uneven batch.
        vectors = extractor.predict(pixels, batch_size=len(pixels), verbose=0)
    else:
        vectors = extractor.predict_on_batch(pixels)
    vectors = np.asarray(vectors, dtype=np.float32)
    for index, vector in zip(indices, vectors, strict=True):
        table.put(int(index), vector)
