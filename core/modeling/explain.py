"""Class-activation heatmaps: where in an image the model found its evidence for a class.

The heatmap is computed on the model's last convolutional feature map (the last 4-D output before
the global pooling: `relu3` of small-cnn, the backbone's output for mobilenetv2 and efficientnetb0,
the last such layer of any other .keras model) from the gradient of the class's logit, in inference
mode: augmentation layers are identity and BatchNorm uses its moving statistics.

Three ways to weigh the feature map are offered (`METHODS`); `DEFAULT_METHOD` is Grad-CAM
(Selvaraju et al. 2017), chosen by measurement: on the coloured-square images of bench/explain.py
its strongest point lies on the square more often than Grad-CAM++'s or LayerCAM's (numbers in
bench/RESULTS.md). LayerCAM keeps the gradient per position, which after small-cnn's max pooling
is non-zero at one position per channel, so its maps are speckled.

The model sees the image through `core.data.images.decode_image`, like training and prediction,
and the heatmap is placed back through the same box (`model_input_box`): it has the image's own
size (EXIF orientation applied) and lines up with it whatever the resize mode; for `crop`, what lies
outside the crop was never seen and is zero.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from core import files
from core.data.dataset import FileSet, SkippedFile
from core.data.images import UnreadableImage, model_input_box, read_rgb
from core.errors import FitStudioError
from core.modeling.model_io import LoadedModel, as_loaded
from core.modeling.prediction import Prediction, PredictionCancelled, PredictionResult, collect_images
from core.runs import run_folder
from core.tf_runtime import load_keras, load_tensorflow

METHODS = ("gradcam", "gradcam++", "layercam")
DEFAULT_METHOD = "gradcam"
DEFAULT_BATCH_SIZE = 16
HEATMAP_SUFFIX, OVERLAY_SUFFIX = "_heatmap.png", "_overlay.jpg"
_OVERLAY_JPEG_QUALITY = 90

# A "jet" colour scale, blue (cold) to red (hot): the one people read heatmaps in.
_COLOUR_STOPS = np.array([0.0, 0.125, 0.375, 0.625, 0.875, 1.0])
_COLOURS = np.array(
    [[0, 0, 128], [0, 0, 255], [0, 255, 255], [255, 255, 0], [255, 0, 0], [128, 0, 0]], dtype=np.float32
)


class ExplainError(FitStudioError):
    """No heatmap can be made: a model without a convolutional layer, an unknown class or method."""


@dataclass
class Explanation:
    """One image, what the model answered, and a heatmap per explained class."""

    path: str
    image: np.ndarray  # (height, width, 3) uint8 RGB as a person sees it: own size, or reduced to max_side
    probabilities: np.ndarray  # float32, one per class
    class_names: list[str]
    classes: tuple[int, ...]  # the explained classes, in the order asked
    heatmaps: tuple[np.ndarray, ...]  # float32 (height, width) 0..1, aligned with `image`, one per class

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probabilities))

    def grayscale(self, index: int = 0) -> np.ndarray:
        """The heatmap as a uint8 image: white where the evidence is strongest."""
        return grayscale(self.heatmaps[index])

    def overlay(self, index: int = 0) -> np.ndarray:
        return overlay(self.image, self.heatmaps[index])


def explain_images(
    model: str | LoadedModel,
    paths: Sequence[str],
    classes: Sequence[Sequence[int] | None] | None = None,
    *,
    method: str = DEFAULT_METHOD,
    max_side: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    decode_threads: int | None = None,
    cancel: threading.Event | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    skipped: list[SkippedFile] | None = None,
) -> Iterator[Explanation]:
    """Yields an Explanation for each readable image file of `paths`, in order.

    `classes[i]` names the classes to explain for `paths[i]` (None: the predicted class). Heatmaps
    have the image's own size, or a smaller one (aspect kept) when `max_side` is given. Unreadable
    files are appended to `skipped`; the iteration ends early, without raising, once `cancel` is set.
    """
    from core.data.pipeline import classify_batches

    loaded = as_loaded(model)
    check_method(method)
    wanted = [_check_classes(loaded, c) for c in (classes if classes is not None else [None] * len(paths))]
    if len(wanted) != len(paths):
        raise ValueError("classes must name the classes of every path, or be None")
    activations = activation_model(loaded)
    fileset = FileSet(list(loaded.class_names), list(paths), np.zeros(len(paths), dtype=np.int32))
    on_skip = skipped.append if skipped is not None else (lambda item: None)
    # np.asarray as the "model": classify_batches then yields the decoded batch itself, with the
    # file indices that each heatmap's target classes depend on.
    for indices, images in classify_batches(
        fileset, np.asarray, loaded.image_size, batch_size=batch_size, resize_mode=loaded.resize_mode,
        decode_threads=decode_threads, cancel=cancel, on_progress=on_progress, skipped=skipped,
    ):
        probabilities, maps = activations.maps(images, [wanted[i] for i in indices], method)
        for index, row, cams in zip(indices, probabilities, maps, strict=True):
            targets = wanted[index] or (int(np.argmax(row)),)
            try:
                yield _on_the_image(loaded, paths[index], row, targets, cams, max_side)
            except UnreadableImage as exc:  # changed or vanished since it was decoded
                on_skip(SkippedFile(paths[index], str(exc)))


def _on_the_image(
    loaded: LoadedModel, path: str, probabilities, targets: tuple[int, ...], cams, max_side: int | None
) -> Explanation:
    picture = read_rgb(path, max_side)
    height, width = picture.shape[:2]
    # Normalised again on the image, so that its brightest pixel is exactly white.
    heatmaps = tuple(_normalise(align_heatmap(cam, width, height, loaded.resize_mode)) for cam in cams)
    return Explanation(path, picture, probabilities, list(loaded.class_names), targets, heatmaps)


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ExplainError(f"Unknown heatmap method '{method}'. Choose one of: {', '.join(METHODS)}.")


def _check_classes(loaded: LoadedModel, classes: Sequence[int] | None) -> tuple[int, ...] | None:
    if classes is None:
        return None
    chosen = tuple(int(c) for c in classes)
    if not chosen or any(not 0 <= c < loaded.num_classes for c in chosen):
        raise ExplainError(f"Class numbers must be 0 to {loaded.num_classes - 1}, not {list(chosen)}.")
    return chosen


def class_index(loaded: LoadedModel, name: str) -> int:
    """The output index of a class named by the user; ExplainError listing the classes otherwise."""
    if name in loaded.class_names:
        return loaded.class_names.index(name)
    raise ExplainError(f"The model has no class '{name}'; its classes are {', '.join(loaded.class_names)}.")


# --- the gradient ---------------------------------------------------------------------------------


class ActivationModel:
    """A Keras model split at its last convolutional feature map: one forward pass gives the
    probabilities and the feature map, and the gradient of each target logit with respect to it."""

    def __init__(self, model):
        keras = load_keras()

        layer = last_feature_layer(model)
        # Operation.output is the tensor of the layer's call in *this* model's graph; a nested
        # backbone's own `output` property would give its inner graph's tensor instead.
        features = keras.Operation.output.fget(layer)
        head = model.layers[-1]
        self.dense = head if isinstance(head, keras.layers.Dense) else None
        last = keras.Operation.input.fget(head) if self.dense is not None else model.outputs[0]
        self.feature_layer = layer.name
        self.split = keras.Model(model.inputs, [features, last], name="fitstudio_activations")

    def maps(
        self, images: np.ndarray, targets: Sequence[tuple[int, ...] | None], method: str = DEFAULT_METHOD
    ) -> tuple[np.ndarray, list[list[np.ndarray]]]:
        """(probabilities (n, classes), for each image one (h, w) map in 0..1 per target class;
        None targets the predicted class). Maps are at the feature map's resolution."""
        tf = load_tensorflow()

        check_method(method)
        batch = tf.constant(np.asarray(images, dtype=np.float32))
        slots = max((len(t) for t in targets if t), default=1)
        with tf.GradientTape(persistent=True) as tape:
            features, last = self.split(batch, training=False)
            logits = self._logits(last)
            probabilities = self._probabilities(logits).numpy().astype(np.float32)
            chosen = _target_matrix(targets, probabilities.argmax(axis=1), slots)
            scores = [_slot_score(tf, logits, chosen[:, s]) for s in range(slots)]
        # Images are independent in inference mode, so the gradient of a sum over the batch is,
        # per image, the gradient of that image's own logit.
        gradients = [tape.gradient(score, features).numpy() for score in scores]
        del tape
        activations = features.numpy()
        maps = [
            [
                _normalise(_weigh(method, activations[i], gradients[s][i]))
                for s in range(slots)
                if chosen[i, s] >= 0
            ]
            for i in range(len(images))
        ]
        return probabilities, maps

    def _logits(self, last):
        """float32 scores. Under mixed precision the head's input is float16 (bfloat16 on a CPU)
        while FitStudio's head computes in float32, and another model's Dense head may compute in
        float16: each factor is cast to the head's own compute dtype, as Keras does in its call."""
        tf = load_tensorflow()

        if self.dense is None:  # a model whose last layer is not Dense: its output is the score
            return tf.cast(last, "float32")
        dtype = self.dense.compute_dtype
        logits = tf.matmul(tf.cast(last, dtype), tf.cast(self.dense.kernel, dtype))
        if self.dense.use_bias:
            logits = logits + tf.cast(self.dense.bias, dtype)
        return tf.cast(logits, "float32")

    def _probabilities(self, logits):
        return self.dense.activation(logits) if self.dense is not None else logits


def activation_model(loaded: LoadedModel) -> ActivationModel:
    """The ActivationModel of a loaded model, made once and kept with it."""
    cached = getattr(loaded, "_activation_model", None)
    if cached is None:
        cached = ActivationModel(loaded.model)
        loaded._activation_model = cached  # type: ignore[attr-defined]
    return cached


def last_feature_layer(model):
    """The layer whose output is the last convolutional feature map: the last 4-D output that is
    not a pooling step (pooling keeps the position of the maximum only, and halves the resolution)
    and comes after a convolution. Raises ExplainError for a model without one."""
    keras = load_keras()

    pooling = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
    convolution = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
    layers = list(model.layers)
    for position in range(len(layers) - 1, -1, -1):
        layer = layers[position]
        if _output_rank(layer) != 4 or isinstance(layer, (*pooling, keras.layers.InputLayer)):
            continue
        if any(isinstance(earlier, (*convolution, keras.Model)) for earlier in layers[: position + 1]):
            return layer
        break
    raise ExplainError(
        f"The model {model.name} has no convolutional feature map, so it cannot show where it looks. "
        "Heatmaps work for small-cnn, mobilenetv2, efficientnetb0 and other convolutional models."
    )


def _output_rank(layer) -> int:
    keras = load_keras()

    try:
        return len(keras.Operation.output.fget(layer).shape)
    except (AttributeError, ValueError, TypeError):  # never called, or several outputs
        return 0


def _slot_score(tf, logits, classes: np.ndarray):
    """The sum over the batch of each image's logit for its class in this slot (-1: none)."""
    picked = tf.gather(logits, np.maximum(classes, 0), batch_dims=1)
    return tf.reduce_sum(picked * (classes >= 0).astype(np.float32))


def _target_matrix(
    targets: Sequence[tuple[int, ...] | None], predicted: np.ndarray, slots: int
) -> np.ndarray:
    """(n, slots) class per image and slot, -1 where an image has fewer targets."""
    chosen = np.full((len(targets), slots), -1, dtype=np.int64)
    for i, wanted in enumerate(targets):
        row = wanted or (int(predicted[i]),)
        chosen[i, : len(row)] = row
    return chosen


def _weigh(method: str, activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """(h, w) map from (h, w, channels) activations and the gradient of the class logit."""
    activations = activations.astype(np.float64)
    gradients = gradients.astype(np.float64)
    if method == "layercam":  # Jiang et al. 2021: positive gradient per position
        return (np.maximum(gradients, 0) * activations).sum(axis=-1)
    if method == "gradcam++":  # Chattopadhay et al. 2018, with the exponential of the score
        squared = gradients**2
        denominator = 2 * squared + activations.sum(axis=(0, 1)) * gradients**3
        alpha = np.divide(squared, denominator, out=np.zeros_like(squared), where=denominator != 0)
        weights = (alpha * np.maximum(gradients, 0)).sum(axis=(0, 1))
    else:  # Grad-CAM: the channel's mean gradient
        weights = gradients.mean(axis=(0, 1))
    return activations @ weights


def _normalise(cam: np.ndarray) -> np.ndarray:
    """Negative evidence dropped, the strongest point at 1 (all zero when there is none)."""
    cam = np.maximum(cam, 0)
    top = cam.max() if cam.size else 0.0
    return (cam / top if top > 0 else cam).astype(np.float32)


# --- putting the heatmap on the image ---------------------------------------------------------------


def align_heatmap(cam: np.ndarray, width: int, height: int, resize_mode: str) -> np.ndarray:
    """A (h, w) feature-map heatmap as a (height, width) float32 map over the image it came from.

    The feature map covers the model input, which covers `model_input_box` of the image; each
    image pixel centre samples the map bilinearly there, and pixels outside the box (the parts
    `crop` cut away) are 0.
    """
    left, top, right, bottom = model_input_box(width, height, resize_mode)
    rows = _sampling_weights(height, cam.shape[0], top, bottom - top)
    columns = _sampling_weights(width, cam.shape[1], left, right - left)
    return (rows @ cam.astype(np.float32) @ columns.T).astype(np.float32)


def _sampling_weights(pixels: int, cells: int, start: float, extent: float) -> np.ndarray:
    """(pixels, cells) bilinear weights: which feature cells each pixel centre reads, and how much."""
    position = (np.arange(pixels) + 0.5 - start) / extent  # 0..1 across the box
    cell = np.clip(position * cells - 0.5, 0, cells - 1)  # cell centres sit at (i + 0.5) / cells
    low = np.floor(cell).astype(np.int64)
    high = np.minimum(low + 1, cells - 1)
    weight_high = (cell - low).astype(np.float32)
    weights = np.zeros((pixels, cells), dtype=np.float32)
    rows = np.arange(pixels)
    np.add.at(weights, (rows, low), 1 - weight_high)
    np.add.at(weights, (rows, high), weight_high)
    weights[(position < 0) | (position > 1)] = 0
    return weights


def grayscale(heatmap: np.ndarray) -> np.ndarray:
    return np.round(np.clip(heatmap, 0, 1) * 255).astype(np.uint8)


def colourise(heatmap: np.ndarray) -> np.ndarray:
    """(h, w) 0..1 -> (h, w, 3) uint8 on the blue-to-red scale."""
    values = np.clip(heatmap, 0, 1).ravel()
    channels = [np.interp(values, _COLOUR_STOPS, _COLOURS[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1).reshape(*heatmap.shape, 3).astype(np.uint8)


def overlay(image: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """The heatmap's colours over the image: faint where it is cold, strong where it is hot."""
    opacity = (0.25 + 0.45 * np.clip(heatmap, 0, 1))[..., None]
    blended = image.astype(np.float32) * (1 - opacity) + colourise(heatmap).astype(np.float32) * opacity
    return np.round(blended).astype(np.uint8)


# --- the command's job: files and folders -> heatmap and overlay files --------------------------------


@dataclass
class ExplainReport:
    predictions: PredictionResult
    written: list[tuple[str, str, str]] = field(default_factory=list)  # image, heatmap, overlay


def explain_to_folder(
    model: str | LoadedModel,
    paths: Sequence[str],
    out_dir: str,
    *,
    class_name: str | None = None,
    method: str = DEFAULT_METHOD,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cancel: threading.Event | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ExplainReport:
    """Classifies the images of `paths` (files, folders searched recursively) and writes
    out_dir/<stem>_heatmap.png and out_dir/<stem>_overlay.jpg for each, for `class_name` or the
    predicted class. Stems that clash get -2, -3...; unreadable files are listed, never fatal.
    Raises ExplainError for an unusable folder or class, PredictionCancelled when stopped."""
    loaded = as_loaded(model)
    check_method(method)
    target = (class_index(loaded, class_name),) if class_name is not None else None
    _prepare_folder(out_dir)
    readable, skipped = collect_images(paths)
    report = ExplainReport(PredictionResult(list(loaded.class_names), [], skipped, loaded.model_path))
    stems = unique_stems(readable)
    cancel = cancel or threading.Event()
    for explanation in explain_images(
        loaded, readable, [target] * len(readable), method=method, batch_size=batch_size,
        cancel=cancel, on_progress=on_progress, skipped=skipped,
    ):
        base = os.path.join(out_dir, stems[explanation.path])
        heatmap_path, overlay_path = base + HEATMAP_SUFFIX, base + OVERLAY_SUFFIX
        _save_image(heatmap_path, explanation.grayscale(), "PNG")
        _save_image(overlay_path, explanation.overlay(), "JPEG", quality=_OVERLAY_JPEG_QUALITY)
        report.written.append((explanation.path, heatmap_path, overlay_path))
        report.predictions.predictions.append(
            Prediction(explanation.path, explanation.probabilities, report.predictions.class_names)
        )
    if cancel.is_set():
        raise PredictionCancelled("The prediction was stopped.")
    return report


def unique_stems(paths: Sequence[str]) -> dict[str, str]:
    """path -> a file-name stem no other path gets (compared without case, for Windows and macOS):
    the first of each name keeps it, later ones get -2, -3... ."""
    natural = [os.path.splitext(os.path.basename(path))[0] or "image" for path in paths]
    taken = {stem.casefold() for stem in natural}
    given: dict[str, str] = {}
    used: set[str] = set()
    for path, stem in zip(paths, natural, strict=True):
        name, number = stem, 1
        while name.casefold() in used or (number > 1 and name.casefold() in taken):
            number += 1
            name = f"{stem}-{number}"
        used.add(name.casefold())
        given[path] = name
    return given


def _prepare_folder(out_dir: str) -> None:
    problem = run_folder.prepare_output_folder(out_dir, "No folder for the heatmaps was given.",
                                               "write the heatmaps into")
    if problem:
        raise ExplainError(problem)


def _save_image(path: str, pixels: np.ndarray, fmt: str, **options) -> None:
    from PIL import Image

    files.write_atomic(path, lambda partial: Image.fromarray(pixels).save(partial, format=fmt, **options))
