"""Which device Keras will train on. Imports TensorFlow: call it from a worker thread."""

from __future__ import annotations

import contextlib


def configure_gpus() -> None:
    """Lets TensorFlow take GPU memory as it needs it instead of all of it at start-up."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        # RuntimeError: the GPU is already initialised and the setting no longer applies.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)


def describe_compute_device() -> str:
    """'GPU: <name>[, <name>]' or 'CPU only'."""
    import tensorflow as tf

    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(details.get("device_name", gpu.name))
    return "GPU: " + ", ".join(names) if names else "CPU only"
