"""`FitStudio --self-test`: proves a build works end to end, with no display and no user data.

Creates the main window on the offscreen Qt platform, trains the small CNN for one epoch on the
bundled demo dataset through the same worker thread the Train button uses, and checks that the
plots received points and a complete run folder was written. Then it decodes the bundled
one-second clip (resources/clip/) twice: with PyAV, as `capture --video` and `predict --video` do, and
with QtMultimedia's FFmpeg plugin, as the Camera tab's "Open video…" does, which proves the build
carries both. Everything goes to a temporary folder (settings included) that is deleted afterwards.
Prints one line; exit code 0 or 1.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

SELF_TEST_TIMEOUT_SECONDS = 600
CLIP_FRAMES = 10  # resources/make_clip.py
CLIP_TIMEOUT_SECONDS = 30


def run_self_test() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fitstudio-self-test-") as scratch:
        try:
            summary = _train_through_the_window(scratch) + "; " + _decode_bundled_clip()
        except Exception as exc:  # any failure is the answer, with its reason
            seconds = time.perf_counter() - started
            print(f"FitStudio self-test FAILED after {seconds:.0f} s: {exc}", flush=True)
            return 1
    print(f"FitStudio self-test passed in {time.perf_counter() - started:.0f} s: {summary}", flush=True)
    return 0


def _train_through_the_window(scratch: str) -> str:
    from PySide6.QtCore import QEventLoop, QSettings, QTimer

    from core.config import TrainingConfig
    from gui.app import create_application
    from gui.main_window import MainWindow
    from gui.settings_store import SettingsStore
    from gui.worker import wait_for_threads

    create_application([sys.argv[0]])
    store = SettingsStore(QSettings(os.path.join(scratch, "settings.ini"), QSettings.Format.IniFormat))
    store.save_config(TrainingConfig(epochs=1, out_dir=os.path.join(scratch, "runs")))
    window = MainWindow(store=store, device_fn=None)
    window.show()
    page = window.training
    try:
        _wait_until(lambda: page.train_button.isEnabled(), 60, "the demo dataset was not accepted")
        if not page.start_training():
            raise RuntimeError(f"Train did not start: {page.train_hint.text()}")
        loop = QEventLoop()
        page.idle.connect(loop.quit)
        QTimer.singleShot(SELF_TEST_TIMEOUT_SECONDS * 1000, loop.quit)
        loop.exec()
        return _check(page)
    finally:
        page.stop_training()
        window.close()
        wait_for_threads()


def _check(page) -> str:
    result = page.last_result
    if result is None:
        problems = [text for level, text in page.log.lines if level == "error"]
        raise RuntimeError(problems[-1] if problems else f"no result within {SELF_TEST_TIMEOUT_SECONDS} s")
    if result.status != "completed":
        raise RuntimeError(f"the run ended {result.status}: {result.message}")
    batches, epochs = len(page.plots.batch["loss"]), len(page.plots.val_epochs["loss"])
    if batches == 0 or epochs != 1:
        raise RuntimeError(f"the plots got {batches} batch points and {epochs} epoch points")
    missing = [
        name for name in ("model.keras", "last.keras", "history.csv", "report.json", "labels.txt")
        if not os.path.exists(os.path.join(result.run_dir, name))
    ]
    if missing:
        raise RuntimeError(f"the run folder lacks {', '.join(missing)}")
    return (f"1 epoch, {batches} batch points, val_accuracy {result.final_logs.get('val_accuracy', 0):.2f}, "
            f"run folder written")


def _decode_bundled_clip() -> str:
    from core.data.video import VideoReader
    from core.paths import resource_path

    path = resource_path("clip", "one-second.mp4")
    with VideoReader(path) as reader:
        decoded = sum(1 for _ in reader.frames())
    if decoded != CLIP_FRAMES or not reader.end.complete:
        raise RuntimeError(f"PyAV decoded {decoded} of the clip's {CLIP_FRAMES} frames")
    played = _play_with_qtmultimedia(path)
    return f"clip decoded ({decoded} frames with PyAV, {played} played by QtMultimedia)"


def _play_with_qtmultimedia(path: str) -> int:
    """Plays the clip into a QVideoSink (fast: frames may be skipped) and counts the frames shown."""
    from PySide6.QtCore import QUrl
    from PySide6.QtMultimedia import QMediaPlayer, QVideoSink

    player, sink = QMediaPlayer(), QVideoSink()
    frames, errors = [], []
    sink.videoFrameChanged.connect(
        lambda frame: frames.append(frame.isValid() and not frame.toImage().isNull())
    )
    player.errorOccurred.connect(lambda _error, text: errors.append(text))
    player.setVideoSink(sink)
    player.setPlaybackRate(4.0)
    player.setSource(QUrl.fromLocalFile(path))
    player.play()
    ended = QMediaPlayer.MediaStatus.EndOfMedia
    try:
        _wait_until(lambda: errors or player.mediaStatus() == ended, CLIP_TIMEOUT_SECONDS,
                    "QtMultimedia did not finish playing the clip")
    finally:
        player.stop()
    if errors or not any(frames):
        reason = errors[0] if errors else "no frame shown"
        raise RuntimeError(f"QtMultimedia could not play the clip: {reason}")
    return sum(frames)


def _wait_until(condition, seconds: float, failure: str) -> None:
    from PySide6.QtCore import QCoreApplication

    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(failure)
        QCoreApplication.processEvents()
        time.sleep(0.02)
