"""What one camera frame costs the Camera tab's GUI thread, and so how many frames a second it can show.

    python bench/camera_frames.py [--frames 200] [--width 640 --height 480]

Frames are pushed into the tab's QVideoSink as a camera delivers them (offscreen, the tab at
1400x900), with no model open, in three cases: shown only; shown while a class is held (a JPEG saved
at the default 5 per second of frame time, here every 6th frame of a 30 frames/s stream); shown with
a "Why?" heatmap laid over it. Prints milliseconds per frame (median of 3 runs) and the frame rate
that leaves. Prediction itself runs on the model thread and is not counted here: frames it cannot
keep up with are dropped (gui.live_prediction), which tests/gui/test_camera_page.py checks.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    from PySide6.QtGui import QImage
    from PySide6.QtMultimedia import QVideoFrame
    from PySide6.QtWidgets import QApplication

    from gui.camera_page import CameraPage
    from gui.live_prediction import HeatmapLayer, LiveAnswer
    from gui.model_worker import ModelService

    app = QApplication([])
    page = CameraPage(ModelService())
    page.resize(1400, 900)
    page.show()
    app.processEvents()
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (args.height, args.width, 3)).astype(np.uint8)
    image = QImage(pixels.data, args.width, args.height, args.width * 3, QImage.Format.Format_RGB888).copy()
    clock = [0.0]
    page.capture.clock = lambda: clock[0]

    def push_all() -> float:
        started = time.perf_counter()
        for _ in range(args.frames):
            page.source.sink.setVideoFrame(QVideoFrame(image))
            app.processEvents()  # the source hands a frame on at the event loop's next turn
            clock[0] += 1 / 30
        return (time.perf_counter() - started) / args.frames * 1000

    def median(run) -> float:
        return statistics.median(run() for _ in range(3))

    with tempfile.TemporaryDirectory() as scratch:
        os.makedirs(os.path.join(scratch, "held"))
        page.set_training_folder(scratch)
        shown = median(push_all)

        def holding() -> float:
            page.start_burst("held")
            try:
                return push_all()
            finally:
                page.stop_burst()

        held = median(holding)
    heatmap = rng.random((args.height, args.width)).astype(np.float32)
    page.answer = LiveAnswer(("a",), np.ones(1, np.float32), heatmap, HeatmapLayer.of(heatmap))
    page.why_button.setChecked(True)
    why = median(push_all)
    print(f"{args.width}x{args.height} frames, {args.frames} per run, median of 3 runs:")
    for label, ms in (("shown", shown), ("shown + saving 5/s", held), ("shown + heatmap", why)):
        print(f"  {label:<20} {ms:5.1f} ms/frame  ({1000 / ms:5.0f} frames/s)")
    page.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
