"""Opening a trained model safely: a run folder or a `.keras` file -> model, labels, input size.

A run folder holds `model.keras`, `labels.txt` and `config.json` (image size and resize mode). A
bare `.keras` file takes its labels from a `labels.txt` beside it, else `class_0..class_N`, and
its input size from the model. Loading always goes through
`keras.models.load_model(path, safe_mode=True)`: a model that would need arbitrary Python code to
be rebuilt (a Lambda layer) is refused with a message, never run. Every way a file can be wrong
raises `ModelLoadError` with a sentence the user can act on.

Keras is loaded inside the functions (core.tf_runtime), so importing this module is cheap.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from core import files
from core.config import RESIZE_MODES
from core.errors import FitStudioError
from core.runs import run_folder
from core.tf_runtime import load_keras

MODEL_EXTENSION = ".keras"
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_LEGACY_EXTENSIONS = (".h5", ".hdf5", ".keras.h5")


class ModelLoadError(FitStudioError):
    """A model path that cannot be opened: missing, the wrong kind of file, unsafe, inconsistent."""


@dataclass
class LoadedModel:
    """A model ready to classify images: feed it uint8 RGB images of `image_size` pixels, decoded
    with `resize_mode`, and it answers one probability per class, in `class_names` order."""

    model: Any  # keras.Model
    class_names: list[str]
    image_size: int
    resize_mode: str
    model_path: str  # the .keras file
    run_dir: str | None  # the run folder when opened from one
    labels_known: bool  # False when the names are the made-up class_0..class_N

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def name(self) -> str:
        """What the window shows: the run folder's name, else the file's."""
        return os.path.basename(self.run_dir or self.model_path)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities (n, classes) as float32 for a batch of (n, size, size, 3) images 0..255."""
        if len(images) == 0:
            return np.zeros((0, self.num_classes), dtype=np.float32)
        output = self.model.predict_on_batch(np.asarray(images, dtype=np.float32))
        return np.asarray(output, dtype=np.float32)


def resolve_model_path(source: str) -> tuple[str, str | None]:
    """(the .keras file, the run folder or None) for what the user chose; raises ModelLoadError."""
    if not source:
        raise ModelLoadError("No model was given. Choose a run folder or a .keras file.")
    if not os.path.exists(source):
        raise ModelLoadError(f"The model path {source} does not exist. Check the path.")
    if os.path.isdir(source):
        path = os.path.join(source, run_folder.BEST_MODEL_FILE)
        if os.path.isfile(path):
            return path, source
        if os.path.isfile(os.path.join(source, "saved_model.pb")):
            raise ModelLoadError(
                f"{source} is a TensorFlow SavedModel export, which FitStudio cannot open again. "
                f"Choose the run folder or the {MODEL_EXTENSION} file it was exported from."
            )
        raise ModelLoadError(
            f"The folder {source} has no {run_folder.BEST_MODEL_FILE}. Choose a run folder (it holds "
            f"{run_folder.BEST_MODEL_FILE} and {run_folder.LABELS_FILE}) or a {MODEL_EXTENSION} file."
        )
    return source, None


def load_model(source: str) -> LoadedModel:
    """Opens a run folder or a `.keras` file; raises ModelLoadError saying what is wrong."""
    path, run_dir = resolve_model_path(source)
    _check_file_kind(path)
    model = _safe_load(path)
    folder = run_dir or os.path.dirname(os.path.abspath(path))
    num_outputs = _num_outputs(model, path)
    class_names, labels_known = _labels(folder, num_outputs, path)
    config = _run_config(folder)
    image_size = _image_size(model, config, path)
    resize_mode = config.get("resize_mode", "stretch")
    if resize_mode not in RESIZE_MODES:
        resize_mode = "stretch"
    return LoadedModel(model, class_names, image_size, resize_mode, path, run_dir, labels_known)


def as_loaded(source: str | LoadedModel) -> LoadedModel:
    """Accepts either what the user chose or a model opened before (the window keeps one)."""
    return source if isinstance(source, LoadedModel) else load_model(source)


def _check_file_kind(path: str) -> None:
    lower = path.lower()
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise ModelLoadError(f"The model file {path} cannot be read: {exc.strerror or exc}.") from None
    if head == _HDF5_SIGNATURE or lower.endswith(_LEGACY_EXTENSIONS):
        raise ModelLoadError(
            f"{path} is a legacy HDF5 model file; legacy HDF5 model files are not supported; "
            f"re-save it as {MODEL_EXTENSION} (in Keras: model.save('model{MODEL_EXTENSION}'))."
        )
    if not lower.endswith(MODEL_EXTENSION):
        raise ModelLoadError(
            f"{path} is not a {MODEL_EXTENSION} model file. Choose a run folder or a "
            f"{MODEL_EXTENSION} file saved by Keras 3."
        )
    if not zipfile.is_zipfile(path):
        raise ModelLoadError(
            f"{path} is not a valid {MODEL_EXTENSION} file (it is corrupt, truncated or another kind "
            "of file). Choose the model.keras of a finished run."
        )


def _safe_load(path: str):
    keras = load_keras()

    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # ValueError, TypeError (wrapped), zip and JSON errors...
        text = str(exc)
        if "safe_mode" in text:  # Keras: "...override this error by passing `safe_mode=False`"
            raise ModelLoadError(
                f"{path} contains Python code (a Lambda layer or a custom function) that would "
                "have to be run to load it. FitStudio never runs code from a model file. Rebuild "
                "the model without Lambda layers, or use a model trained by FitStudio."
            ) from None
        if "Could not locate" in text:
            raise ModelLoadError(
                f"{path} uses custom layers or functions that are not part of Keras, so FitStudio "
                f"cannot rebuild it ({_first_line(text)})."
            ) from None
        raise ModelLoadError(_unreadable(path, exc)) from None


def _unreadable(path: str, exc: BaseException) -> str:
    reason = _first_line(str(exc)) or type(exc).__name__
    return (
        f"{path} could not be loaded as a Keras model (corrupt, or made by an incompatible "
        f"program or custom layers): {reason}"
    )


def _num_outputs(model, path: str) -> int:
    shape = getattr(model, "output_shape", None)
    if isinstance(shape, list) or not shape or len(shape) != 2 or not shape[-1]:
        raise ModelLoadError(
            f"{path} is not an image classifier FitStudio can use: it must have one output of "
            f"one probability per class, not {shape}."
        )
    return int(shape[-1])


def _labels(folder: str, num_outputs: int, path: str) -> tuple[list[str], bool]:
    labels_path = os.path.join(folder, run_folder.LABELS_FILE)
    if not os.path.isfile(labels_path):
        return [f"class_{i}" for i in range(num_outputs)], False
    try:
        names = run_folder.read_labels(labels_path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{labels_path} cannot be read: {exc}.") from None
    if len(names) != num_outputs:
        raise ModelLoadError(
            f"The model {path} has {num_outputs} outputs but {labels_path} names {len(names)} "
            "classes. They must belong to the same run."
        )
    if len(set(names)) != len(names):
        raise ModelLoadError(f"{labels_path} names a class twice; each line must be a different class.")
    return names, True


def _run_config(folder: str) -> dict[str, Any]:
    try:
        config = files.read_json(os.path.join(folder, run_folder.CONFIG_FILE))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def _image_size(model, config: dict[str, Any], path: str) -> int:
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, list) or not shape or len(shape) != 4 or shape[-1] != 3:
        raise ModelLoadError(
            f"{path} does not take RGB images: its input shape is {shape}, not (batch, height, width, 3)."
        )
    height, width = shape[1], shape[2]
    if height and width:
        if height != width:
            raise ModelLoadError(f"{path} takes {width}x{height} images; FitStudio feeds square images only.")
        return int(height)
    configured = config.get("image_size")
    if isinstance(configured, int) and configured > 0:
        return configured
    raise ModelLoadError(
        f"{path} accepts any image size and no config.json says which one it was trained on. "
        "Open it from its run folder."
    )


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[:limit] + "..."
