"""Model builders. Every model takes raw RGB pixels 0..255: rescaling (or the backbone's own
preprocessing) and augmentation are layers inside it, so a saved model needs no extra code."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from core.config import MODEL_NAMES, PRETRAINED_MODELS, Augmentation
from core.events import Event
from core.modeling.weights import Weights, build_backbone, obtain_weights, where_to_put_weights
from core.tf_runtime import load_keras

keras = load_keras()
layers = keras.layers


@dataclass(frozen=True)
class BuiltModel:
    model: keras.Model
    pretrained: bool | None  # None: trained from scratch by design
    note: str  # what the log should say about the weights
    weights: Weights | None = None  # for a backbone: where its weights came from, or why there are none


def build_model(
    name: str,
    num_classes: int,
    image_size: int,
    augmentation: Augmentation | None = None,
    seed: int = 0,
    weights_url: str = "",
    on_event: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
    prepared_weights: Weights | None = None,
) -> BuiltModel:
    """The model, its backbone (if any) frozen with ImageNet weights from the cache or downloaded
    from `weights_url` (see core.modeling.weights), or random ones when there are none.
    `prepared_weights`, when given, are used instead of fetching any: a Ray worker gets the ones the
    launcher obtained, so every worker starts from the same file."""
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = _augment(inputs, augmentation or Augmentation(), seed)
    weights = None
    if name == "small-cnn":
        features, note = _small_cnn(x), "small-cnn: trained from scratch"
    elif name in PRETRAINED_MODELS:
        weights = prepared_weights or obtain_weights(name, image_size, weights_url, on_event, cancel)
        features, weights, note = _frozen_backbone(name, x, image_size, weights, weights_url)
    else:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    x = layers.Dropout(0.2, seed=seed + 10, name="head_dropout")(features)  # apart from augmentation
    # float32 even under mixed precision: a float16 softmax and loss lose small probabilities.
    outputs = layers.Dense(num_classes, activation="softmax", name="classes", dtype="float32")(x)
    pretrained = None if weights is None else weights.path is not None
    return BuiltModel(keras.Model(inputs, outputs, name=name.replace("-", "_")), pretrained, note, weights)


def compile_model(model: keras.Model, learning_rate: float, jit: bool = False, optimizer=None) -> None:
    """How every FitStudio model trains: Adam, sparse categorical cross-entropy, accuracy; `jit`
    compiles the steps with XLA. `optimizer`: an Adam another model shares (see
    core.modeling.features), else a new one at `learning_rate`."""
    model.compile(
        optimizer=optimizer or keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit,
    )


def build_training_state(model: keras.Model) -> None:
    """Creates the compiled metrics' and the optimizer's variables now, from the model's input spec.
    Without a distribution strategy Keras creates them inside the first trace of the train step, and
    TensorFlow, seeing variables made in a trace, traces the step a second time: 0.08 s for a head on
    cached features, about 40% of that first trace. Under a distribution strategy Keras does this
    itself, in the strategy's scope (Trainer._maybe_symbolic_build, which this mirrors)."""
    if getattr(model, "_distribute_strategy", None) is not None:
        return
    pixels = np.zeros((1, *model.input_shape[1:]), dtype=model.inputs[0].dtype)
    model._symbolic_build(data_batch=(pixels, np.zeros((1,), dtype=np.int32)))


def backbone_of(model: keras.Model) -> keras.Model:
    """The pretrained backbone inside a model that build_model made: its one nested model."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(f"{model.name} has no pretrained backbone to fine-tune")
    return nested[0]


def unfreeze_top_layers(model: keras.Model, count: int) -> int:
    """Makes the top `count` layers of the backbone trainable and returns how many that is (at most
    all). BatchNormalization layers stay frozen: Keras's fine-tuning recipe keeps their statistics
    and scale as pretrained (the backbone also runs them in inference mode, see _frozen_backbone).
    The model must be compiled again for this to take effect."""
    base = backbone_of(model)
    count = min(count, len(base.layers))
    first_unfrozen = len(base.layers) - count
    base.trainable = True
    for index, layer in enumerate(base.layers):
        layer.trainable = index >= first_unfrozen and not isinstance(layer, layers.BatchNormalization)
    return count


def augmentation_model(image_size: int, augmentation: Augmentation, seed: int) -> keras.Model:
    """The augmentation layers of build_model alone, as a model (pixels in, pixels out)."""
    inputs = keras.Input((image_size, image_size, 3), name="image")
    return keras.Model(inputs, _augment(inputs, augmentation, seed), name="augmentation")


def _augment(x, augmentation: Augmentation, seed: int):
    steps: list[Callable] = []
    if augmentation.flip:
        steps.append(layers.RandomFlip("horizontal", seed=seed, name="aug_flip"))
    if augmentation.rotation:
        steps.append(layers.RandomRotation(0.08, fill_mode="reflect", seed=seed + 1, name="aug_rotation"))
    if augmentation.zoom:
        steps.append(layers.RandomZoom(0.15, fill_mode="reflect", seed=seed + 2, name="aug_zoom"))
    if augmentation.contrast:
        steps.append(layers.RandomContrast(0.2, value_range=(0, 255), seed=seed + 3, name="aug_contrast"))
    for step in steps:
        x = step(x)
    return x


def _small_cnn(x):
    # Downsampling after every block keeps it near 20 MFLOPs per 128 px image, fast on a laptop
    # CPU; global max pooling answers "is the pattern anywhere", which small data learns quickly.
    # BatchNorm momentum 0.9 lets the inference statistics settle within the few hundred steps of
    # a small dataset (Keras's default 0.99 needs thousands, and validation lags far behind).
    x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    for i, (width, stride) in enumerate(((32, 2), (32, 1), (64, 1), (128, 1))):
        x = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        x = layers.MaxPooling2D(padding="same", name=f"pool{i}")(x)  # any input size >= 1 px
    return layers.GlobalMaxPooling2D(name="pool_global")(x)


def _frozen_backbone(name: str, x, image_size: int, weights: Weights, weights_url: str):
    if name == "mobilenetv2":
        x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(x)
    # (EfficientNet normalises 0..255 input itself.)
    try:
        base = build_backbone(name, image_size, weights.copy or weights.path)
    except Exception as exc:  # a cached file damaged since it was checked: h5py/Keras errors
        weights = replace(weights, path=None, origin="", sha256="", verified="", copy="",
                          problem=f"{weights.path} does not load ({type(exc).__name__}: {exc}); delete it")
        base = build_backbone(name, image_size, None)
    base.trainable = False
    # training=False keeps BatchNormalization in inference mode, also once layers are unfrozen.
    features = layers.GlobalAveragePooling2D(name="pool_global")(base(x, training=False))
    if weights.origin == "cache":
        note = (f"{name}: ImageNet weights from the Keras cache ({weights.path}; {weights.verified}), "
                "base frozen")
    elif weights.origin == "download":
        note = (f"{name}: ImageNet weights downloaded from {weights.url} to {weights.path} "
                f"({weights.verified}), base frozen")
    else:
        note = (
            f"{name}: no pretrained ImageNet weights ({weights.problem}), so the base starts from random "
            f"weights and learns far less. {where_to_put_weights(name, image_size, weights_url)}"
        )
    return features, weights, note
