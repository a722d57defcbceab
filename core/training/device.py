"""Which device Keras will train on. Loads TensorFlow: call it from a worker thread."""

from __future__ import annotations

import contextlib

from core.tf_runtime import load_tensorflow


def configure_gpus() -> None:
    """Lets TensorFlow take GPU memory as it needs it instead of all of it at start-up."""
    tf = load_tensorflow()

    for gpu in tf.config.list_physical_devices("GPU"):
        # RuntimeError: the GPU is already initialised and the setting no longer applies.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)


def describe_compute_device() -> str:
    """'GPU: <name>[, <name>]' or 'CPU only'."""
    names = gpu_names()
    return "GPU: " + ", ".join(names) if names else "CPU only"


def gpu_names() -> list[str]:
    """The names of the GPUs TensorFlow sees (e.g. "NVIDIA H200"), in its order."""
    tf = load_tensorflow()

    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(details.get("device_name", gpu.name))
    return names
