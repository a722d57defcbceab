"""Two real runs on a digits dataset with different learning rates, trained once per session, for the
runs index, TensorBoard and Runs tab tests (issue 13's acceptance).

`digits_runs(tmp_path_factory)` trains them the first time it is called and returns the same
DigitsRuns afterwards, whichever test module asks:

    stopped  learning rate 0.001, 2 epochs: Stop in the middle of epoch 2 (cut short), one training
             image rewritten, then resumed to the end (its resume warns about that image)
    like     learning rate 0.01, 2 epochs, trained like `stopped` (its settings, the same data)

The images are scikit-learn's 8x8 handwritten digits (bundled with it, no download), classes 0 to 3,
upscaled to 16x16 PNGs: 16 training and 4 validation images per class (whole batches of 16: no retracing).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

DIGITS = (0, 1, 2, 3)
TRAIN_PER_CLASS, VAL_PER_CLASS = 16, 4
REWRITTEN = "2/2_005.png"  # the training image changed between the stop and the resume


@dataclass(frozen=True)
class DigitsRuns:
    out_dir: str
    train_dir: str
    val_dir: str
    stopped: str  # run folder
    like: str
    resume_messages: tuple[str, ...]  # warnings and notes of the stopped run's resumed session
    like_messages: tuple[str, ...]


_cache: dict[str, DigitsRuns] = {}


def write_digits(root: str) -> tuple[str, str]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    for digit in DIGITS:
        images = digits.images[digits.target == digit][: TRAIN_PER_CLASS + VAL_PER_CLASS]
        for index, pixels in enumerate(images):
            split = "train" if index < TRAIN_PER_CLASS else "val"
            grey = Image.fromarray((pixels * 255 / 16).astype(np.uint8)).resize((16, 16))
            path = os.path.join(root, split, str(digit), f"{digit}_{index:03d}.png")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            grey.convert("RGB").save(path)
    return os.path.join(root, "train"), os.path.join(root, "val")


def digits_runs(tmp_path_factory) -> DigitsRuns:
    if "runs" not in _cache:
        _cache["runs"] = _train(str(tmp_path_factory.mktemp("digits")))
    return _cache["runs"]


def _train(root: str) -> DigitsRuns:
    from core.config import TrainingConfig
    from core.events import BatchEnd, Message
    from core.training.driver import resume, train

    train_dir, val_dir = write_digits(root)
    out_dir = os.path.join(root, "runs")
    config = TrainingConfig(train_dir=train_dir, val_dir=val_dir, epochs=2, batch_size=16, image_size=16,
                            learning_rate=0.001, out_dir=out_dir, seed=3)
    cancel = threading.Event()

    def stop_in_epoch_two(event):
        if isinstance(event, BatchEnd) and event.epoch == 1 and event.step == 1:
            cancel.set()

    stopped = train(config, stop_in_epoch_two, cancel)
    assert stopped.status == "cancelled" and stopped.epochs_completed == 1, stopped.message
    image = os.path.join(train_dir, *REWRITTEN.split("/"))
    Image.open(image).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(image)
    resume_messages, like_messages = [], []

    def collect(into):
        return lambda event: into.append(event.text) if isinstance(event, Message) else None

    resumed = resume(stopped.run_dir, collect(resume_messages))
    assert resumed.status == "completed" and resumed.epochs_completed == 2, resumed.message
    like = train(config.replace(learning_rate=0.01, epochs=2), collect(like_messages), like=stopped.run_dir)
    assert like.status == "completed", like.message
    return DigitsRuns(out_dir, train_dir, val_dir, stopped.run_dir, like.run_dir, tuple(resume_messages),
                      tuple(like_messages))
