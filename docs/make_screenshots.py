"""`make screenshots`: pictures of the real window for the README and the guide, made offscreen.

Trains the small CNN on the bundled demo dataset through the Train button's own worker thread, then
evaluates the run on the Evaluate tab, predicts a few demo images on the Predict tab, and shows the
Camera tab live on frames pushed into its video sink (a demo photo, as a camera would deliver it),
grabbing each tab at 1400x900 into docs/images/. Settings and runs go to a temporary folder, so the
pictures never depend on who runs the script. Run it again whenever the window changes;
`--only camera` remakes one picture (the run is trained all the same).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

WINDOW_SIZE = (1400, 900)
TIMEOUT_SECONDS = 600
PICTURES = ("train", "evaluate", "predict", "camera")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "images"), help="folder for the PNGs")
    parser.add_argument("--epochs", type=int, default=3, help="few, so Evaluate has mistakes")
    parser.add_argument("--only", choices=PICTURES, action="append", help="make only this picture")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fitstudio-screenshots-") as scratch:
        written = _make_all(scratch, args.out, args.epochs, set(args.only or PICTURES))
    for path in written:
        print(f"wrote {os.path.relpath(path, ROOT)}")
    return 0


def _make_all(scratch: str, out_dir: str, epochs: int, pictures: set[str]) -> list[str]:
    from PySide6.QtCore import QSettings

    from core.config import TrainingConfig
    from gui.app import create_application
    from gui.main_window import MainWindow
    from gui.settings_store import SettingsStore
    from gui.worker import wait_for_threads

    create_application([sys.argv[0]])
    store = SettingsStore(QSettings(os.path.join(scratch, "settings.ini"), QSettings.Format.IniFormat))
    store.save_config(TrainingConfig(epochs=epochs, out_dir=os.path.join(scratch, "runs")))
    window = MainWindow(store=store)
    window.resize(*WINDOW_SIZE)
    window.show()
    try:
        written = [_train(window, out_dir, grab="train" in pictures)]
        if "evaluate" in pictures:
            written.append(_evaluate(window, out_dir))
        if "predict" in pictures:
            written.append(_predict(window, out_dir))
        if "camera" in pictures:
            written.append(_camera(window, out_dir, scratch))
        return [path for path in written if path]
    finally:
        window.training.stop_training()
        window.close()
        wait_for_threads()


def _train(window, out_dir: str, grab: bool = True) -> str | None:
    page = window.training
    _wait_until(page.train_button.isEnabled, "the demo dataset was not accepted")
    if not page.start_training():
        raise RuntimeError(f"Train did not start: {page.train_hint.text()}")
    _wait_until(lambda: page.last_result is not None and not page.is_running, "the demo run did not end")
    if page.last_result.status != "completed":
        raise RuntimeError(f"the demo run ended {page.last_result.status}: {page.last_result.message}")
    _settle()
    return _grab(window, out_dir, "train.png") if grab else None


def _evaluate(window, out_dir: str) -> str:
    window.evaluate_run(window.training.last_result.run_dir)
    page = window.evaluation
    _wait_until(lambda: page.result is not None and not page.is_running, "the evaluation did not end")
    _settle()
    return _grab(window, out_dir, "evaluate.png")


def _predict(window, out_dir: str) -> str:
    from core.paths import demo_val_dir

    window.tabs.setCurrentWidget(window.predict)
    page = window.predict
    samples = []
    for class_name in sorted(os.listdir(demo_val_dir())):
        folder = os.path.join(demo_val_dir(), class_name)
        samples += [os.path.join(folder, name) for name in sorted(os.listdir(folder))[:4]]
    page.add_paths(samples)
    done = lambda: len(page.predictions) == len(samples) and not page.is_running  # noqa: E731
    _wait_until(done, "prediction did not end")
    _settle()
    return _grab(window, out_dir, "predict.png")


def _camera(window, out_dir: str, scratch: str) -> str:
    """The Camera tab on a copy of the demo training folder, the run's model open, a banana held up."""
    import numpy as np
    from PIL import Image
    from PySide6.QtGui import QImage
    from PySide6.QtMultimedia import QVideoFrame

    from core.paths import demo_train_dir, demo_val_dir

    train = shutil.copytree(demo_train_dir(), os.path.join(scratch, "my-fruit"))
    window.training.data.train_field.set_path(train)
    window.models.load(window.training.last_result.run_dir)
    window.tabs.setCurrentWidget(window.camera)
    page = window.camera
    _wait_until(lambda: window.models.info is not None and page.capture.root == train, "no model or folder")
    folder = os.path.join(demo_val_dir(), "banana")
    photo = Image.open(os.path.join(folder, sorted(os.listdir(folder))[0])).convert("RGB").resize((640, 480))
    pixels = np.ascontiguousarray(np.asarray(photo))

    def push() -> None:
        image = QImage(pixels.data, 640, 480, 640 * 3, QImage.Format.Format_RGB888).copy()
        page.source.sink.setVideoFrame(QVideoFrame(image))

    page.start_burst("banana")
    for _ in range(30):  # two seconds of a 15 frames/s camera, the banana button held for them
        push()
        _settle(1 / 15)
    page.stop_burst()
    _wait_until(lambda: page.predictor.predicted >= 3, "no live prediction")
    page.why_button.setChecked(True)
    start = page.predictor.predicted
    while page.predictor.predicted < start + 2 or page.answer is None or page.answer.heatmap is None:
        push()
        _settle(1 / 15)
    push()
    page._show_rates()
    _settle(0.2)
    return _grab(window, out_dir, "camera.png")


def _grab(window, out_dir: str, name: str) -> str:
    path = os.path.join(out_dir, name)
    if not window.grab().save(path):
        raise RuntimeError(f"could not write {path}")
    return path


def _settle(seconds: float = 1.0) -> None:
    """Lets thumbnails decode and the plots' throttled redraw run before a grab."""
    deadline = time.monotonic() + seconds
    _wait_until(lambda: time.monotonic() > deadline, "unreachable")


def _wait_until(condition, failure: str) -> None:
    from PySide6.QtCore import QCoreApplication

    deadline = time.monotonic() + TIMEOUT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(failure)
        QCoreApplication.processEvents()
        time.sleep(0.02)


if __name__ == "__main__":
    sys.exit(main())
