"""Which device Keras will train on, and in which precision. Everything but `list_gpus` loads
TensorFlow: call it from a worker thread."""

from __future__ import annotations

import contextlib
import os
import subprocess
from dataclasses import dataclass

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


def dtype_policy(precision: str) -> str:
    """The Keras dtype policy of a precision setting. Mixed precision computes in float16 on a GPU
    (its tensor cores) and in bfloat16 on a CPU (float16 arithmetic is emulated and slow there);
    weights stay float32 either way."""
    tf = load_tensorflow()

    if precision != "mixed":
        return "float32"
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    memory_mb: int | None

    def label(self) -> str:
        memory = f", {self.memory_mb / 1024:.0f} GB" if self.memory_mb else ""
        return f"GPU {self.index}: {self.name}{memory}"


NVIDIA_SMI_TIMEOUT_SECONDS = 10


def list_gpus() -> list[GpuInfo]:
    """This computer's NVIDIA GPUs with their memory, as TensorFlow numbers them, without importing
    TensorFlow (the window asks at start-up). Empty when there is none or no driver."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_SECONDS, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = {}
    for line in out.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) == 3 and parts[0].isdigit():
            gpus[int(parts[0])] = (parts[1], int(parts[2]) if parts[2].isdigit() else None)
    return [GpuInfo(index, *gpus[physical]) for index, physical in enumerate(_visible(sorted(gpus)))]


def _visible(physical: list[int]) -> list[int]:
    """The physical GPU numbers CUDA_VISIBLE_DEVICES lets this process see, in TensorFlow's order."""
    setting = os.environ.get("CUDA_VISIBLE_DEVICES")
    if setting is None:
        return physical
    chosen = [int(part) for part in setting.split(",") if part.strip().isdigit()]
    return [index for index in chosen if index in physical]
