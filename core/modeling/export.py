"""Exporting a trained model for use elsewhere, each format with `labels.txt` beside it.

    keras         model.keras          the file as trained (Keras 3)
    savedmodel    saved_model/         TensorFlow SavedModel, endpoint `serve` (TF Serving, TF.js)
    tflite        model.tflite         TensorFlow Lite, float32
    tflite-quant  model_quant.tflite   TensorFlow Lite, dynamic-range quantised weights (~4x smaller)
    onnx          model.onnx           ONNX (opset 17): ONNX Runtime, OpenVINO, TensorRT, C#, Java...

Every format takes float32 RGB pixels 0..255 of shape (batch, size, size, 3), resized as in
training: rescaling is inside the model. The SavedModel and TFLite graphs are traced in inference
mode (`training=False`): augmentation layers are identity and BatchNorm uses its moving statistics.
`model.export()` is not used: in Keras 3.15 it traces `__call__` without `training=False`, and
for a model with augmentation layers (whose `call` defaults to training=True) the exported graph
runs the random augmentation and BatchNorm with batch statistics, so its answers change on every
call and TFLite cannot convert it (StatelessRandomUniformV2, ImageProjectiveTransformV3...).
ONNX is converted by tf2onnx from that same inference-mode SavedModel; its input is named `image`
and its output `probabilities`. tf2onnx is imported only when exporting to ONNX. A model trained in
mixed precision is traced as a float32 rebuild of itself (`float32_model`).

`load_exported(path)` runs any exported format on a batch of images with its own runtime (ONNX:
onnxruntime), for tests and checks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable

import numpy as np

from core import files
from core.errors import FitStudioError
from core.modeling.model_io import LoadedModel, as_loaded
from core.runs import run_folder
from core.tf_runtime import load_keras, load_tensorflow, load_tf2onnx

FORMATS = ("keras", "savedmodel", "tflite", "tflite-quant", "onnx")
OUTPUT_NAMES = {
    "keras": "model.keras",
    "savedmodel": "saved_model",
    "tflite": "model.tflite",
    "tflite-quant": "model_quant.tflite",
    "onnx": "model.onnx",
}
SERVE_ENDPOINT = "serve"
ONNX_OPSET = 17
ONNX_INPUT, ONNX_OUTPUT = "image", "probabilities"


class ExportError(FitStudioError):
    """The model could not be exported: a bad format, an unwritable folder, a failed conversion."""


class ExportCancelled(ExportError):
    """The export was asked to stop; a format stopped half-way leaves no file behind."""


def export_model(
    model: str | LoadedModel,
    fmt: str,
    out_dir: str,
    on_message: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
) -> list[str]:
    """Writes `model` in format `fmt` into `out_dir` (created if needed), with labels.txt.

    Returns the written paths (the model file or folder first, then labels.txt). An existing
    export of the same format in `out_dir` is replaced. Setting `cancel` stops the export with
    ExportCancelled at its next step (a conversion under way finishes first).
    """
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format '{fmt}'. Choose one of: {', '.join(FORMATS)}.")
    loaded = as_loaded(model)
    say = on_message or (lambda text: None)
    _prepare_folder(out_dir)
    target = os.path.join(out_dir, OUTPUT_NAMES[fmt])
    try:
        _write_format(loaded, fmt, target, say, cancel)
    except FitStudioError:
        raise
    except Exception as exc:
        raise ExportError(f"Exporting to {fmt} failed: {_first_line(exc)}") from exc
    labels = os.path.join(out_dir, run_folder.LABELS_FILE)
    files.write_text(labels, "".join(f"{name}\n" for name in loaded.class_names))
    say(f"Wrote {target} and {labels}")
    return [target, labels]


def _write_format(
    loaded: LoadedModel, fmt: str, target: str, say: Callable[[str], None], cancel: threading.Event | None
) -> None:
    stop_if_cancelled(cancel)
    if fmt == "keras":
        _copy_keras(loaded, target)
    elif fmt == "savedmodel":

        def write(path: str) -> None:
            write_saved_model(loaded, path)
            stop_if_cancelled(cancel)  # before the new folder replaces an earlier export

        _write_folder(target, write)
    elif fmt == "onnx":
        say("Converting to ONNX (this can take a minute for the pretrained models)...")
        data = onnx_bytes(loaded, cancel=cancel)
        stop_if_cancelled(cancel)
        files.write_atomic(target, lambda path: _write_bytes(path, data))
    else:
        say("Converting to TensorFlow Lite (this takes a few seconds)...")
        data = tflite_bytes(loaded, quantize=fmt == "tflite-quant", cancel=cancel)
        stop_if_cancelled(cancel)
        files.write_atomic(target, lambda path: _write_bytes(path, data))


def stop_if_cancelled(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise ExportCancelled("The export was stopped.")


def write_saved_model(loaded: LoadedModel, path: str) -> None:
    """A SavedModel whose `serve` endpoint (and `serving_default` signature) runs the model in
    inference mode on float32 images of the model's input size."""
    keras = load_keras()

    model = float32_model(loaded.model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    size = loaded.image_size
    archive.add_endpoint(
        SERVE_ENDPOINT,
        lambda images: model(images, training=False),
        input_signature=[keras.InputSpec(shape=(None, size, size, 3), dtype="float32", name="image")],
    )
    archive.write_out(path, verbose=False)


def float32_model(model):
    """`model` itself, or, for one trained under mixed precision, the same layers and weights
    computing in float32. The exported graphs are traced from this: TFLite cannot convert a float16
    or bfloat16 graph, and from a bfloat16 one tf2onnx writes an ONNX file that ONNX Runtime refuses
    to load (both seen here). The weights are float32 either way (mixed precision lowers only the
    compute dtype), so nothing is lost, and float32 runs on every runtime."""
    keras = load_keras()

    config = keras.saving.serialize_keras_object(model)
    if not _to_float32(config):
        return model
    try:
        rebuilt = keras.saving.deserialize_keras_object(config)
        rebuilt.set_weights(model.get_weights())
    except Exception as exc:  # a layer whose config does not rebuild as saved
        raise ExportError(
            f"This model computes in mixed precision and could not be rebuilt in float32 for export "
            f"({_first_line(exc)}). The .keras export still works."
        ) from exc
    return rebuilt


_LOW_PRECISION = ("float16", "bfloat16", "mixed_float16", "mixed_bfloat16")


def _to_float32(config) -> bool:
    """Rewrites every float16/bfloat16/mixed dtype and dtype policy in a serialised Keras object as
    float32, in place; True when there was one."""
    if isinstance(config, list):
        return any([_to_float32(item) for item in config])  # a list: every item is rewritten
    if not isinstance(config, dict):
        return False
    changed = False
    for key, value in config.items():
        policy = value.get("config", {}) if key == "dtype" and isinstance(value, dict) else {}
        if key == "dtype" and isinstance(value, str) and value in _LOW_PRECISION:
            config[key], changed = "float32", True
        elif policy.get("name") in _LOW_PRECISION:
            policy["name"], changed = "float32", True
        else:
            changed = _to_float32(value) or changed
    return changed


def tflite_bytes(loaded: LoadedModel, quantize: bool = False, cancel: threading.Event | None = None) -> bytes:
    """The model as a TFLite flatbuffer (float32, or dynamic-range quantised weights)."""
    tf = load_tensorflow()

    with tempfile.TemporaryDirectory(prefix="fitstudio-export-") as folder:
        saved = os.path.join(folder, "saved_model")
        write_saved_model(loaded, saved)
        stop_if_cancelled(cancel)  # the SavedModel took seconds; the conversion takes more
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        try:
            return converter.convert()
        except Exception as exc:
            raise ExportError(
                f"TensorFlow Lite cannot convert this model: {_first_line(exc)}. "
                "The SavedModel and .keras exports still work."
            ) from exc


def onnx_available() -> str | None:
    """None when ONNX export works here, else why not (tf2onnx missing, e.g. from a standalone build)."""
    import importlib.util

    if importlib.util.find_spec("tf2onnx") is None:
        return "ONNX export needs the tf2onnx package, which this installation lacks (pip install tf2onnx)."
    return None


def onnx_bytes(loaded: LoadedModel, cancel: threading.Event | None = None) -> bytes:
    """The model as an ONNX file (opset 17), converted by tf2onnx from the inference-mode SavedModel."""
    problem = onnx_available()
    if problem:
        raise ExportError(problem)
    tf2onnx = load_tf2onnx()

    quiet = _quiet_loggers("tf2onnx", "tensorflow")
    with tempfile.TemporaryDirectory(prefix="fitstudio-export-") as folder, quiet:
        saved = os.path.join(folder, "saved_model")
        write_saved_model(loaded, saved)
        stop_if_cancelled(cancel)  # the SavedModel took seconds; the conversion takes more
        try:
            graph, inputs, outputs, renames = tf2onnx.tf_loader.from_saved_model(
                saved, None, None, tag="serve", signatures=["serving_default"], return_tensors_to_rename=True
            )
            renames.update({inputs[0]: ONNX_INPUT, outputs[0]: ONNX_OUTPUT})
            model, _ = tf2onnx.convert.from_graph_def(
                graph, name=loaded.name or "fitstudio", input_names=inputs, output_names=outputs,
                opset=ONNX_OPSET, tensors_to_rename=renames,
            )
        except Exception as exc:
            raise ExportError(
                f"tf2onnx cannot convert this model to ONNX: {_first_line(exc)}. "
                "The other formats still work."
            ) from exc
    return model.SerializeToString()


@contextlib.contextmanager
def _quiet_loggers(*names: str):
    """tf2onnx and TensorFlow log each step of a conversion (and deprecations inside tf2onnx) as
    warnings; a user needs the result or the error, which arrive either way."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def detect_format(path: str) -> str:
    """The format of an exported model path, from its name (a .tflite is run the same either way)."""
    if os.path.isdir(path):
        return "savedmodel"
    lower = path.lower()
    if lower.endswith(".keras"):
        return "keras"
    if lower.endswith(".tflite"):
        return "tflite"
    if lower.endswith(".onnx"):
        return "onnx"
    raise ExportError(f"{path} is not an exported model (.keras, .tflite, .onnx or a SavedModel folder).")


def load_exported(path: str, fmt: str | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """A function (n, size, size, 3) images 0..255 (uint8 or float) -> (n, classes) float32
    probabilities, running the exported model at `path` with its own runtime."""
    fmt = fmt or detect_format(path)
    if fmt == "keras":
        from core.modeling.model_io import load_model

        loaded = load_model(path)
        return loaded.predict
    if fmt == "savedmodel":
        tf = load_tensorflow()

        artifact = tf.saved_model.load(path)  # keep it referenced: it owns the variables

        def run_saved_model(images: np.ndarray) -> np.ndarray:
            serve = getattr(artifact, SERVE_ENDPOINT)
            return np.asarray(serve(tf.constant(np.asarray(images, dtype=np.float32))), dtype=np.float32)

        return run_saved_model
    if fmt in ("tflite", "tflite-quant"):
        return _tflite_runner(path)
    if fmt == "onnx":
        return _onnx_runner(path)
    raise ExportError(f"Unknown export format '{fmt}'. Choose one of: {', '.join(FORMATS)}.")


def _tflite_runner(path: str) -> Callable[[np.ndarray], np.ndarray]:
    interpreter = _tflite_interpreter(path)
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    lock = threading.Lock()  # an interpreter is not thread-safe
    shape: list[tuple] = [()]

    def run_tflite(images: np.ndarray) -> np.ndarray:
        batch = np.asarray(images, dtype=np.float32)
        with lock:
            if shape[0] != batch.shape:
                interpreter.resize_tensor_input(input_index, list(batch.shape))
                interpreter.allocate_tensors()
                shape[0] = batch.shape
            interpreter.set_tensor(input_index, batch)
            interpreter.invoke()
            return np.array(interpreter.get_tensor(output_index), dtype=np.float32)

    return run_tflite


def _onnx_runner(path: str) -> Callable[[np.ndarray], np.ndarray]:
    try:
        import onnxruntime
    except ImportError:
        raise ExportError("Running an ONNX model needs onnxruntime (pip install onnxruntime).") from None
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def run_onnx(images: np.ndarray) -> np.ndarray:  # a session may be run from several threads
        batch = np.asarray(images, dtype=np.float32)
        return np.asarray(session.run(None, {input_name: batch})[0], dtype=np.float32)

    return run_onnx


def _tflite_interpreter(path: str):
    try:  # LiteRT, the successor of tf.lite, when installed
        from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-not-found]
    except ImportError:
        tf = load_tensorflow()

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "tf.lite.Interpreter is deprecated"
        return Interpreter(model_path=path)


def _prepare_folder(out_dir: str) -> None:
    problem = run_folder.prepare_output_folder(out_dir, "No output folder was given.", "export into")
    if problem:
        raise ExportError(problem)


def _copy_keras(loaded: LoadedModel, target: str) -> None:
    if os.path.exists(target) and os.path.samefile(loaded.model_path, target):
        return
    files.write_atomic(target, lambda path: shutil.copyfile(loaded.model_path, path))


def _write_folder(target: str, write: Callable[[str], None]) -> None:
    """Writes a folder beside `target`, then swaps it in, so a failed export leaves the old one."""
    partial = target + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        write(partial)
        if os.path.exists(target):
            shutil.rmtree(target)
        os.replace(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
