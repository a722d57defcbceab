"""Does the Label tab stay responsive with 10,000 unlabeled images?

    python bench/label_responsiveness.py                  # 10,000 images of 16 px
    python bench/label_responsiveness.py --images 2000

Makes --images tiny PNGs (the unlabeled folder) and a small training folder, trains the small CNN
on it for two epochs (the model to label for), then opens the Label tab offscreen (gui.label_page,
the real rounds of core.training.label_rounds) while a 20 ms heartbeat QTimer runs on the GUI
thread. It first idles for 10 s (the control: the stall the machine's own load causes), then
ranks the folder (scoring, hashing and ordering on the worker thread), labels 40 images with the
keys (Enter and 1-3), which starts a retraining round after the 20th, and waits for that round to
end. Reported: the time of each phase, the longest gap between two heartbeats in each (the
longest the GUI thread waited, for the GIL or for a CPU core), the CPU time the GUI thread itself
used in it (which does not depend on what else runs on the machine), and its time per key press.
TensorFlow is loaded before the heartbeat starts, as the window's device probe does at start-up (the
import holds the GIL for about 0.5-0.9 s, see the architecture guide, section 6).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

HEARTBEAT_MS = 20
COLOURS = {"blue": (50, 70, 220), "green": (40, 180, 60), "red": (220, 40, 40)}


def make_images(folder: str, count: int, size: int, first_seed: int = 0) -> None:
    names = list(COLOURS)
    for i in range(count):
        rng = np.random.default_rng(first_seed + i)
        colour = np.array(COLOURS[names[i % 3]]) * rng.uniform(0.6, 1.0) + rng.normal(0, 30, 3)
        pixels = np.clip(colour[None, None, :] + rng.normal(0, 25, (size, size, 3)), 0, 255)
        sub = os.path.join(folder, f"part{i // 1000:02d}")
        os.makedirs(sub, exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8)).save(os.path.join(sub, f"img_{i:05d}.png"))


def make_model(work: str) -> str:
    from core.config import TrainingConfig
    from core.training.driver import train

    train_dir = os.path.join(work, "train")
    for index, name in enumerate(COLOURS):
        make_images(os.path.join(train_dir, name), 12, 16, first_seed=100_000 + 1000 * index)
        for path in _files(os.path.join(train_dir, name)):  # flatten part00/ into the class folder
            os.rename(path, os.path.join(train_dir, name, os.path.basename(path)))
    config = TrainingConfig(train_dir=train_dir, val_dir=None, val_split=0.25, epochs=2, batch_size=8,
                            image_size=16, learning_rate=0.01, out_dir=os.path.join(work, "runs"))
    result = train(config)
    assert result.status == "completed", result.message
    return result.run_dir


def _files(folder: str) -> list[str]:
    return [os.path.join(parent, name) for parent, _, names in os.walk(folder) for name in names]


class Heartbeat:
    def __init__(self):
        from PySide6.QtCore import QTimer

        self.last = time.perf_counter()
        self.longest = 0.0
        self.timer = QTimer()
        self.timer.setInterval(HEARTBEAT_MS)
        self.timer.timeout.connect(self._beat)
        self.timer.start()

    def _beat(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self.last)
        self.last = now

    def phase(self) -> None:
        """Starts a new phase: the longest gap and the GUI thread's CPU time count from now."""
        self.last, self.longest = time.perf_counter(), 0.0
        self.cpu_start = time.thread_time()  # this (the GUI) thread's CPU time, whatever else runs

    def cpu(self) -> float:
        return time.thread_time() - self.cpu_start


def wait(app, condition, timeout: float = 1800.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the Label tab did not finish in time")
        app.processEvents()  # the bench's own loop stands in for app.exec(); the page never calls it
        time.sleep(0.002)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=16)
    args = parser.parse_args()
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from core.tf_runtime import load_keras
    from gui.label_page import LabelPage

    app = QApplication([])
    work = tempfile.mkdtemp(prefix="fitstudio-label-bench-")
    started = time.perf_counter()
    unlabeled = os.path.join(work, "unlabeled")
    make_images(unlabeled, args.images, args.size)
    print(f"{args.images:,} images of {args.size} px made in {time.perf_counter() - started:.0f} s",
          flush=True)
    load_keras()
    run_dir = make_model(work)
    page = LabelPage()
    page.resize(1400, 900)
    page.show()
    page.model_field.set_path(run_dir, emit=False)
    page.unlabeled_field.set_path(unlabeled, emit=False)
    page.train_field.set_path(os.path.join(work, "train"), emit=False)
    page.retrain_every.setValue(20)
    rounds = []
    page.session.round_finished.connect(rounds.append)
    beat = Heartbeat()
    rows = []

    beat.phase()  # the control: the same loop with nothing to do, on the machine as loaded as it is
    started = time.perf_counter()
    wait(app, lambda: time.perf_counter() - started > 10)
    rows.append(("idle, nothing running (the control)", time.perf_counter() - started, beat.longest,
                 beat.cpu()))

    beat.phase()
    started = time.perf_counter()
    page.start()
    wait(app, lambda: rounds and not page.busy)
    rows.append((f"rank {args.images:,} images (score, hash, order)", time.perf_counter() - started,
                 beat.longest, beat.cpu()))

    beat.phase()
    page.gallery.setFocus()
    key_times = []
    started = time.perf_counter()
    for press in range(40):
        key = Qt.Key.Key_Return if press % 2 else getattr(Qt.Key, f"Key_{1 + press % 3}")
        before = time.perf_counter()
        page.handle_key(key)
        key_times.append(time.perf_counter() - before)
        for _ in range(5):  # a person presses a key every few hundred ms at best; let the loop run
            app.processEvents()
            time.sleep(0.01)
    rows.append(("label 40 images with the keys (a round starts at 20)", time.perf_counter() - started,
                 beat.longest, beat.cpu()))
    beat.phase()
    started = time.perf_counter()
    wait(app, lambda: len(rounds) >= 2 and not page.busy)
    rows.append(("the rest of the retraining round (train, score, hash)", time.perf_counter() - started,
                 beat.longest, beat.cpu()))
    retrained = rounds[-1].retrained
    page.shutdown()
    print(f"\n{os.cpu_count()} CPU cores; heartbeat every {HEARTBEAT_MS} ms on the GUI thread\n")
    print("| phase | wall time | longest GUI stall | GUI thread CPU |")
    print("|---|---:|---:|---:|")
    for name, seconds, stall, cpu in rows:
        print(f"| {name} | {seconds:.1f} s | {stall * 1000:.0f} ms | {cpu:.2f} s |")
    print(f"\nGUI thread per key press (move + log + gallery refill): median "
          f"{np.median(key_times) * 1000:.1f} ms, max {max(key_times) * 1000:.1f} ms")
    print(f"retraining: {retrained.status}, {rounds[-1].seconds:.1f} s, validation accuracy "
          f"{retrained.best_val_accuracy}")
    print(f"(work folder {work}; delete it when done)")


if __name__ == "__main__":
    main()
