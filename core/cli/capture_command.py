"""`capture --video FILE --into DIR/CLASS [--every SECONDS] [--max N] [--size PX]`: a video's frames
saved as JPEGs into a class folder, the way the Camera tab saves them.

Exit codes: 0 frames saved (a video broken part way keeps the frames before the break, and a
warning says where it stopped), 2 a file that is no readable video or a folder that cannot be
written (the message goes to stderr), 130 stopped by Ctrl-C (the frames saved so far stay).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from core.cli.common import EXIT_INTERRUPTED, EXIT_OK, positive_float, positive_int, stop_on_ctrl_c
from core.cli.terminal import LiveLine
from core.errors import FitStudioError


def add_capture_command(subparsers) -> None:
    parser = subparsers.add_parser("capture", help="save a video's frames as images into a class folder")
    parser.add_argument(
        "--video", required=True, metavar="FILE", help="a video file (mp4, mov, mkv, avi, ...)"
    )
    parser.add_argument(
        "--into", required=True, metavar="DIR/CLASS",
        help="the class folder inside a training folder; created when missing",
    )
    parser.add_argument(
        "--every", type=positive_float, metavar="SECONDS",
        help="save one frame per this many seconds of video (default: every frame)",
    )
    parser.add_argument("--max", type=positive_int, metavar="N", help="save at most N frames")
    parser.add_argument(
        "--size", type=positive_int, metavar="PX",
        help="shrink frames so their longer side is at most PX pixels (default: as decoded)",
    )
    parser.set_defaults(handler=run_capture)


def run_capture(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr  # looked up when called: a redirect, a test's capture
    from core.data.capture import CaptureLog, add_class_folder
    from core.data.video import VideoReader

    root, class_name = os.path.split(os.path.normpath(args.into))
    with VideoReader(args.video) as reader:  # UnreadableVideo: main.py prints it, exit 2
        folder = add_class_folder(root or ".", class_name)
        log = CaptureLog()
        burst = log.start(class_name, folder)
        progress = LiveLine(err)  # silent when stderr is not a terminal
        with stop_on_ctrl_c(stops="after this frame") as cancel:
            for frame in reader.frames(args.every, args.max):
                log.save(burst, frame.rgb, args.size)
                progress.update(f"Saved {burst.count} frames, {frame.time_s:.1f} s into the video")
                if cancel.is_set():
                    break
        progress.clear()
        if cancel.is_set():
            err.write(f"Stopped: {burst.count} frames saved in {folder}.\n")
            return EXIT_INTERRUPTED
        end = reader.end
    if end is not None and not end.complete:
        err.write(f"Warning: {end.describe()} The frames before it are kept.\n")
    if burst.count == 0:
        raise FitStudioError(f"No frame could be read from {args.video}.")
    out.write(f"Saved {burst.count} frames from {args.video} into {folder}\n")
    return EXIT_OK
