"""Model builders. Every model takes raw RGB pixels 0..255: rescaling (or the backbone's own
preprocessing) and augmentation are layers inside it, so a saved model needs no extra code."""

from __future__ import annotations

import os
import shutil
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from core.config import MODEL_NAMES, Augmentation
from core.tf_runtime import load_keras

keras = load_keras()
layers = keras.layers

# Where keras.applications gets the headless ("no top") ImageNet weights, and the file names it
# caches them under in ~/.keras/models.
_WEIGHT_FILES = {
    "mobilenetv2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5",
    "efficientnetb0": "efficientnetb0_notop.h5",
}
_WEIGHT_URLS = {
    "mobilenetv2": "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/",
    "efficientnetb0": "https://storage.googleapis.com/keras-applications/",
}
_DOWNLOAD_TIMEOUT_SECONDS = 20
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# Set to 1 to never try the network (tests, air-gapped machines).
OFFLINE_ENV = "FITSTUDIO_OFFLINE"
_MOBILENET_SIZES = (96, 128, 160, 192, 224)


@dataclass(frozen=True)
class BuiltModel:
    model: keras.Model
    pretrained: bool | None  # None: trained from scratch by design
    note: str  # what the log should say about the weights


def build_model(
    name: str,
    num_classes: int,
    image_size: int,
    augmentation: Augmentation | None = None,
    seed: int = 0,
    weights_dir: str | None = None,
) -> BuiltModel:
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = _augment(inputs, augmentation or Augmentation(), seed)
    if name == "small-cnn":
        features, pretrained, note = _small_cnn(x), None, "small-cnn: trained from scratch"
    elif name in _WEIGHT_FILES:
        features, pretrained, note = _frozen_backbone(name, x, image_size, weights_dir)
    else:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    x = layers.Dropout(0.2, seed=seed + 10, name="head_dropout")(features)  # apart from augmentation
    # float32 even under mixed precision: a float16 softmax and loss lose small probabilities.
    outputs = layers.Dense(num_classes, activation="softmax", name="classes", dtype="float32")(x)
    return BuiltModel(keras.Model(inputs, outputs, name=name.replace("-", "_")), pretrained, note)


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


def _frozen_backbone(name: str, x, image_size: int, weights_dir: str | None):
    weights, problem = obtain_weights(name, image_size, weights_dir)
    if name == "mobilenetv2":
        x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(x)
        base = keras.applications.MobileNetV2(
            input_shape=(image_size, image_size, 3), include_top=False, weights=weights
        )
    else:  # EfficientNet normalises 0..255 input itself
        base = keras.applications.EfficientNetB0(
            input_shape=(image_size, image_size, 3), include_top=False, weights=weights
        )
    base.trainable = False
    features = layers.GlobalAveragePooling2D(name="pool_global")(base(x, training=False))
    if weights:
        return features, True, f"{name}: ImageNet weights from {weights}, base frozen"
    return (
        features,
        False,
        (
            f"{name}: pretrained ImageNet weights could not be had ({problem}), so the base starts "
            "from random weights and learns far less. Copy the weight file into "
            f"{weights_cache_dir(weights_dir)} to use transfer learning offline."
        ),
    )


def weights_cache_dir(weights_dir: str | None = None) -> str:
    if weights_dir:
        return weights_dir
    keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.join(keras_home, "models")


def obtain_weights(name: str, image_size: int, weights_dir: str | None = None):
    """(path to the ImageNet weight file, None), or (None, why it could not be had).

    Uses the Keras cache when the file is there; otherwise downloads it once, with a timeout, so
    an offline machine falls back to random weights in seconds instead of hanging.
    """
    size = min(_MOBILENET_SIZES, key=lambda s: abs(s - image_size))
    file_name = _WEIGHT_FILES[name].format(size=size)
    path = os.path.join(weights_cache_dir(weights_dir), file_name)
    if os.path.isfile(path):
        return path, None
    if os.environ.get(OFFLINE_ENV) == "1":
        return None, f"not in the Keras cache and {OFFLINE_ENV}=1 forbids downloading"
    try:
        _download(_WEIGHT_URLS[name] + file_name, path)
    except Exception as exc:  # network, truncated body, a captive portal's page: all mean "no weights"
        return None, f"not in the Keras cache and the download failed: {exc}"
    return path, None


def _download(url: str, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path + ".part"
    try:
        with (
            urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_SECONDS) as response,
            open(partial, "wb") as out,
        ):
            shutil.copyfileobj(response, out)
        with open(partial, "rb") as check:
            if check.read(8) != _HDF5_SIGNATURE:
                raise OSError("the server did not send an HDF5 weight file")
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
