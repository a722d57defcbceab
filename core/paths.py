"""Where FitStudio's bundled resources and the user's runs live, from source and when frozen.

This is the one place that knows about PyInstaller's bundle layout.
"""

from __future__ import annotations

import os
import sys

CACHE_DIR_ENV = "FITSTUDIO_CACHE_DIR"
_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def app_root() -> str:
    """The folder holding `resources/`: the repository, or the unpacked bundle."""
    return getattr(sys, "_MEIPASS", _SOURCE_ROOT) if is_frozen() else _SOURCE_ROOT


def resource_path(*parts: str) -> str:
    return os.path.join(app_root(), "resources", *parts)


def user_data_dir() -> str:
    """Where a frozen FitStudio keeps its runs: the per-user application data folder, the same
    place Qt's QStandardPaths.AppDataLocation names (core stays free of Qt, so it is spelled out)."""
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or os.path.join(home, "AppData", "Roaming")
    elif sys.platform == "darwin":
        base = os.path.join(home, "Library", "Application Support")
    else:
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    return os.path.join(base, "FitStudio", "FitStudio")


def user_cache_dir() -> str:
    """The per-user cache folder of the platform, for data that can be rebuilt at any time:
    $XDG_CACHE_HOME (else ~/.cache) on Linux, ~/Library/Caches on macOS, %LOCALAPPDATA% on Windows."""
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        return os.path.join(base, "FitStudio", "FitStudio", "Cache")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Caches", "FitStudio")
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache"), "FitStudio")


def decoded_cache_dir() -> str:
    """Where decoded images are kept between runs; FITSTUDIO_CACHE_DIR moves it (tests, full disks)."""
    return os.environ.get(CACHE_DIR_ENV) or os.path.join(user_cache_dir(), "decoded")


def default_runs_dir() -> str:
    """`runs` beside the sources; in the user's data folder when frozen, never inside the bundle."""
    return os.path.join(user_data_dir(), "runs") if is_frozen() else "runs"


def demo_train_dir() -> str:
    return resource_path("demo", "train")


def demo_val_dir() -> str:
    return resource_path("demo", "val")


def inside(root: str, path: str) -> str | None:
    """`path` with its folders resolved (realpath), when it lies inside `root` (resolved too); None when
    it lies elsewhere: through `..`, as an absolute path elsewhere, or through a linked folder that
    points out of `root`. The one containment check of the project (moves, undo, which split a
    finding's image is in).

    The last name is left as it is, not followed: renaming an image that is a symbolic link moves the
    link, never the file it points at. A relative `path` is taken from the working folder."""
    if "\0" in path:  # no file has such a name; a crafted log might
        return None
    try:
        real_root = os.path.realpath(root)
        folder, name = os.path.split(os.path.abspath(path))
        resolved = os.path.join(os.path.realpath(folder), name) if name else folder
        if os.path.commonpath([resolved, real_root]) != real_root:
            return None
    except ValueError:  # a NUL byte in a crafted name, another drive (Windows)
        return None
    return resolved
