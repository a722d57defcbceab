"""Saving frames from a camera or a video into a class folder, and undoing the last burst.

A frame (an (h, w, 3) uint8 RGB array) becomes `<class>-<YYYYmmdd-HHMMSS>-<n>.jpg` in its class
folder. The file is created with O_EXCL, so a name already taken (by an earlier burst, another
program, or a second FitStudio) is never overwritten: the next number is tried instead.

A burst is what one press of a class's button (or one `capture --video`) saved. `CaptureLog` keeps
the bursts of this session, newest last; undoing one deletes only the files that burst created, and
only while each is still the file it wrote (same size and modification time): a file replaced or
edited since then is left alone and reported as kept.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from core.data.dataset import QUARANTINE_DIR, find_images, list_classes
from core.errors import DatasetError, FitStudioError

JPEG_QUALITY = 92
_MAX_NAME_TRIES = 100_000


class CaptureError(FitStudioError):
    """A frame or a class folder that cannot be written: the message says why."""


@dataclass(frozen=True)
class SavedFrame:
    path: str
    size: int
    mtime_ns: int


@dataclass
class Burst:
    class_name: str
    folder: str
    frames: list[SavedFrame] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class UndoResult:
    class_name: str
    removed: int
    kept: list[str]  # files of the burst that had changed or vanished, so were not deleted


def check_class_name(name: str) -> str:
    """The name of a new class folder, stripped; CaptureError for one that cannot be a folder name."""
    name = name.strip()
    if not name or name in (".", "..") or name.startswith(".") or name == QUARANTINE_DIR:
        raise CaptureError(f"'{name}' cannot be a class name: choose a name that does not start with a dot.")
    if any(sep in name for sep in ("/", "\\", os.sep)) or "\0" in name:
        raise CaptureError(f"'{name}' cannot be a class name: it may not contain a slash.")
    return name


def add_class_folder(root: str, name: str) -> str:
    """Creates (or finds) the class folder `root/name`; returns its path."""
    folder = os.path.join(root, check_class_name(name))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise CaptureError(f"Cannot create the class folder {folder}: {exc.strerror or exc}.") from None
    return folder


def count_class_images(root: str) -> dict[str, int]:
    """Image files in each class folder of `root` (names only, nothing decoded); {} for a folder
    that is missing or has no class folders yet."""
    try:
        names = list_classes(root)
    except DatasetError:
        return {}
    return {name: len(find_images(os.path.join(root, name))) for name in names}


def encode_jpeg(rgb: np.ndarray, size: int | None = None) -> bytes:
    """The frame as JPEG bytes; with `size`, shrunk (aspect kept) so its longer side is at most size."""
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), mode="RGB")
    if size and max(image.size) > size:
        image.thumbnail((size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def save_frame(rgb: np.ndarray, folder: str, size: int | None = None, now: float | None = None) -> SavedFrame:
    """Writes the frame as a new JPEG in `folder` under a name no file has; returns what was written."""
    data = encode_jpeg(rgb, size)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now if now is not None else time.time()))
    prefix = f"{os.path.basename(os.path.normpath(folder))}-{stamp}"
    for number in range(1, _MAX_NAME_TRIES + 1):
        path = os.path.join(folder, f"{prefix}-{number}.jpg")
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
        except FileExistsError:
            continue
        except OSError as exc:
            raise CaptureError(f"Cannot save a frame into {folder}: {exc.strerror or exc}.") from None
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
        except OSError as exc:
            _remove_quietly(path)  # a half-written frame would be a corrupt training image
            raise CaptureError(f"Cannot save a frame into {folder}: {exc.strerror or exc}.") from None
        stat = os.stat(path)
        return SavedFrame(path, stat.st_size, stat.st_mtime_ns)
    raise CaptureError(f"Every name for a frame in {folder} is taken.")


class CaptureLog:
    """The bursts saved in this session, newest last, so the last one can be undone."""

    def __init__(self) -> None:
        self.bursts: list[Burst] = []

    def start(self, class_name: str, folder: str) -> Burst:
        burst = Burst(class_name, folder)
        self.bursts.append(burst)
        return burst

    def save(self, burst: Burst, rgb: np.ndarray, size: int | None = None) -> SavedFrame:
        saved = save_frame(rgb, burst.folder, size)
        burst.frames.append(saved)
        return saved

    def finish(self, burst: Burst) -> None:
        """Forgets a burst that saved nothing, so undo reaches the one before it."""
        if not burst.frames and burst in self.bursts:
            self.bursts.remove(burst)

    @property
    def last(self) -> Burst | None:
        return self.bursts[-1] if self.bursts else None

    def undo_last(self) -> UndoResult | None:
        """Deletes the files of the newest burst that are unchanged since it wrote them."""
        if not self.bursts:
            return None
        burst = self.bursts.pop()
        removed, kept = 0, []
        for frame in burst.frames:
            if _unchanged(frame) and _remove_quietly(frame.path):
                removed += 1
            else:
                kept.append(frame.path)
        return UndoResult(burst.class_name, removed, kept)


def _unchanged(frame: SavedFrame) -> bool:
    try:
        stat = os.stat(frame.path)
    except OSError:
        return False
    return stat.st_size == frame.size and stat.st_mtime_ns == frame.mtime_ns


def _remove_quietly(path: str) -> bool:
    try:
        os.remove(path)
    except OSError:
        return False
    return True
