"""Where FitStudio's bundled resources and the user's runs live, from source and when frozen.

This is the one place that knows about PyInstaller's bundle layout.
"""

from __future__ import annotations

import os
import sys

_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def app_root() -> str:
    """The folder holding `resources/`: the repository, or the unpacked bundle."""
    return getattr(sys, "_MEIPASS", _SOURCE_ROOT) if is_frozen() else _SOURCE_ROOT


def resource_path(*parts: str) -> str:
    return os.path.join(app_root(), "resources", *parts)


def demo_train_dir() -> str:
    return resource_path("demo", "train")


def demo_val_dir() -> str:
    return resource_path("demo", "val")
