"""Small real videos for the capture and video prediction tests, encoded with PyAV.

`make_video` writes a few seconds of solid colours (the classes of the tiny models: red, green,
blue) with a little noise and a moving white bar, so consecutive frames differ: mpeg4 in an .mp4
with its index at the front ("faststart"), so that cutting the file in half leaves a video that
breaks part way rather than one that cannot be opened at all.
"""

from __future__ import annotations

import os
import struct

import numpy as np
from conftest import COLOURS

FPS = 10


def make_video(
    path: str, colours: tuple[str, ...] = ("blue", "green", "red"), seconds_each: float = 1.0,
    width: int = 64, height: int = 48, codec: str = "mpeg4",
) -> str:
    import av

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    options = {"movflags": "+faststart"} if path.endswith(".mp4") else {}
    with av.open(path, "w", options=options) as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 1_000_000  # enough to keep the noise: frames, not the index, fill the file
        rng = np.random.default_rng(0)
        index = 0
        for name in colours:
            for _ in range(round(seconds_each * FPS)):
                # a little noise, as a camera has
                noise = rng.normal(0, 10, (height, width, 3))
                pixels = np.clip(np.array(COLOURS[name]) + noise, 0, 255).astype(np.uint8)
                bar = (index * 3) % (width - 4)
                pixels[: height // 6, bar : bar + 4] = 255
                for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                    container.mux(packet)
                index += 1
        for packet in stream.encode():
            container.mux(packet)
    return path


def cut_in_half(path: str, target: str) -> str:
    with open(path, "rb") as source:
        data = source.read()
    with open(target, "wb") as out:
        out.write(data[: len(data) // 2])
    return target


def turn_mp4(path: str, degrees: int) -> str:
    """Marks an .mp4 as recorded turned, as a phone held upright marks its landscape frames: the
    track header's display matrix says to show it rotated `degrees` clockwise (90, 180 or 270)."""
    with open(path, "rb") as source:
        data = bytearray(source.read())
    at = data.index(b"tkhd") + 4  # version and flags, then times, track id, duration, ...
    matrix_at = at + 4 + (32 if data[at] == 1 else 20) + 16
    one, minus = 0x00010000, -0x00010000
    a, b, c, d = {90: (0, one, minus, 0), 180: (minus, 0, 0, minus), 270: (0, minus, one, 0)}[degrees]
    data[matrix_at : matrix_at + 36] = struct.pack(">9i", a, b, 0, c, d, 0, 0, 0, 0x40000000)
    with open(path, "wb") as out:
        out.write(data)
    return path
