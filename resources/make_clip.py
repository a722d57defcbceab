"""Remakes the one-second clip the standalone build's self-test decodes (resources/clip/).

    python resources/make_clip.py [--out resources/clip/one-second.mp4]

Ten frames at 10 frames per second, 64 x 48 pixels: a coloured square crossing a grey background,
MPEG-4 Part 2 in an .mp4 with its index at the front. A few kilobytes, and decoded by both readers
FitStudio ships: PyAV (`capture --video`, `predict --video`) and QtMultimedia's FFmpeg plugin (the
Camera tab's "Open video…"). The output is deterministic.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

FRAMES, FPS, WIDTH, HEIGHT, SIDE = 10, 10, 64, 48, 16
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "clip", "one-second.mp4")


def frame(index: int) -> np.ndarray:
    pixels = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    left = index * (WIDTH - SIDE) // (FRAMES - 1)
    top = (HEIGHT - SIDE) // 2
    pixels[top : top + SIDE, left : left + SIDE] = (220, 40, 40) if index < FRAMES // 2 else (50, 70, 220)
    return pixels


def make_clip(out: str = DEFAULT_OUT) -> str:
    import av

    os.makedirs(os.path.dirname(out), exist_ok=True)
    with av.open(out, "w", options={"movflags": "+faststart"}) as container:
        container.metadata.clear()  # no encoder version or date: the same bytes every time
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for index in range(FRAMES):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame(index), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    print(make_clip(parser.parse_args().out))
