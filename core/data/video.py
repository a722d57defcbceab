"""Reading frames out of a video file for `capture --video` and `predict --video`, with PyAV.

PyAV (FFmpeg in a self-contained wheel) decodes every frame in order, as fast as the CPU allows and
with its exact time, needs no display, sound system or event loop, and is imported only when a video
is read. A file FFmpeg cannot open raises `UnreadableVideo`. A video that breaks part way (a
truncated download, a recording cut off) is read as far as it goes: `VideoReader.end` then says
where the frames stopped, against the length the file announces. A phone records portrait video as
landscape frames with a rotation in the file; frames are turned upright by it, as players (and
QtMultimedia in the Camera tab) show them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from core.errors import FitStudioError

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv"})


class UnreadableVideo(FitStudioError):
    """A file that is not a video FFmpeg can decode; the message says what was wrong."""


@dataclass(frozen=True)
class VideoFrame:
    index: int  # 0-based position among all decoded frames
    time_s: float  # seconds from the start of the video
    rgb: np.ndarray  # (height, width, 3) uint8


@dataclass(frozen=True)
class VideoEnd:
    """How reading ended: at the end of the video, or early (`complete` False) with the reason."""

    complete: bool
    frames_decoded: int
    last_time_s: float | None
    duration_s: float | None
    reason: str = ""

    def describe(self) -> str:
        if self.complete:
            return ""
        where = (
            f"after frame {self.frames_decoded} at {self.last_time_s:.2f} s"
            if self.last_time_s is not None else "before its first frame"
        )
        length = f" of {self.duration_s:.2f} s" if self.duration_s else ""
        return f"The video stops {where}{length}: {self.reason}."


class VideoReader:
    """One open video file. Iterate `frames(every_s, max_frames)` once; then read `end`."""

    def __init__(self, path: str):
        av = _import_av()
        self.path = path
        if not os.path.isfile(path):
            raise UnreadableVideo(f"{path} does not exist or is not a file.")
        try:
            self._container = av.open(path, mode="r")
        except av.error.FFmpegError as exc:
            raise UnreadableVideo(f"{path} is not a video FFmpeg can read ({_reason(exc)}).") from None
        except OSError as exc:
            raise UnreadableVideo(f"{path} cannot be opened: {exc.strerror or exc}.") from None
        if not self._container.streams.video:
            self._container.close()
            raise UnreadableVideo(f"{path} has no video stream.")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"  # decode with several threads where the codec allows
        self.duration_s = _duration(self._container, self._stream)
        rate = self._stream.average_rate
        self.frame_rate = float(rate) if rate else None
        self.end: VideoEnd | None = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def frames(self, every_s: float | None = None, max_frames: int | None = None) -> Iterator[VideoFrame]:
        """The frames, or with `every_s` the first frame at or after each multiple of every_s seconds,
        at most `max_frames` of them. Never raises for damaged data: reading stops and `end` says where."""
        av = _import_av()
        decoded, yielded, last_time, next_time = 0, 0, None, 0.0
        reason = ""
        try:
            for frame in self._container.decode(self._stream):
                time_s = float(frame.time) if frame.time is not None else decoded / (self.frame_rate or 1)
                decoded, last_time = decoded + 1, time_s
                if every_s and time_s + 1e-6 < next_time:
                    continue
                if every_s:
                    next_time = (int(time_s / every_s + 1e-6) + 1) * every_s
                yield VideoFrame(decoded - 1, time_s, _upright(frame))
                yielded += 1
                if max_frames is not None and yielded >= max_frames:
                    self.end = VideoEnd(True, decoded, last_time, self.duration_s)
                    return
        except av.error.FFmpegError as exc:
            reason = f"the data after it cannot be decoded ({_reason(exc)})"
        if not reason and decoded == 0:
            reason = "no frame could be decoded"
        if not reason and self._ends_early(last_time):
            reason = "the file ends before the length it announces (truncated?)"
        self.end = VideoEnd(not reason, decoded, last_time, self.duration_s, reason)

    def _ends_early(self, last_time: float | None) -> bool:
        if self.duration_s is None or last_time is None:
            return False
        frame_time = 1 / self.frame_rate if self.frame_rate else 0.1
        return last_time + frame_time < self.duration_s - 2 * frame_time


def _upright(frame) -> np.ndarray:
    """The frame as RGB, turned by the rotation its file asks for (PyAV: degrees counterclockwise,
    which np.rot90 turns by with a positive k)."""
    rgb = frame.to_ndarray(format="rgb24")
    turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).rstrip(".")


def _import_av():
    try:
        import av
    except ImportError:
        raise UnreadableVideo(
            "Reading videos needs PyAV, which is not installed: pip install -r requirements.txt."
        ) from None
    av.logging.set_level(None)  # FFmpeg's own lines would bury ours; its errors reach us as exceptions
    return av
