"""What a run ran on, for report.json's `environment`: library versions, OS, CPU and GPU names.

Imports TensorFlow (for the GPU names): call it from the training thread, where it is loaded already.
PySide6's version is read from the installed package's metadata, so no Qt module is ever imported.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform
import subprocess
import sys
from typing import Any

# Distribution names under which each library may be installed, first found wins.
_DISTRIBUTIONS = {
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tf-nightly"),
    "keras": ("keras",),
    "numpy": ("numpy",),
    "pillow": ("pillow",),
    "PySide6": ("PySide6", "PySide6-Essentials"),
}


def describe_environment() -> dict[str, Any]:
    from core.training.device import gpu_names

    return {
        "python": platform.python_version(),
        **{name: package_version(*candidates) for name, candidates in _DISTRIBUTIONS.items()},
        "os": platform.platform(),
        "cpu": cpu_name(),
        "gpus": gpu_names(),
    }


def package_version(*distributions: str) -> str | None:
    """The installed version of the first of `distributions` found; None when none is installed."""
    for name in distributions:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(name)
    return None


def cpu_name() -> str:
    """The processor's marketing name where the system says it (e.g. "AMD EPYC 9654 96-Core
    Processor"), else what `platform` knows (the architecture at least)."""
    name = ""
    with contextlib.suppress(OSError, ValueError, subprocess.SubprocessError):
        if sys.platform.startswith("linux"):
            name = _linux_cpu_name()
        elif sys.platform == "darwin":
            name = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                  text=True, timeout=5).stdout
        elif sys.platform == "win32":
            name = _windows_cpu_name()
    return name.strip() or platform.processor() or platform.machine()


def _linux_cpu_name() -> str:
    with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model"):
                return value
    return ""


def _windows_cpu_name() -> str:
    import winreg

    key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"HARDWARE\DESCRIPTION\System\CentralProcessor\0")
    with key:
        return str(winreg.QueryValueEx(key, "ProcessorNameString")[0])
