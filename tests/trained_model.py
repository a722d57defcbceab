"""One tiny real model for the GUI tests of the Evaluate, Predict and Export tabs, trained once per session.

`tiny_run(tmp_path_factory)` trains the small CNN on 16x16 colour squares (blue, green, red) the first
time it is called and returns the same TinyRun afterwards, whichever test module asks.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from conftest import make_class_folders

CLASSES = ("blue", "green", "red")


@dataclass(frozen=True)
class TinyRun:
    run_dir: str
    train_dir: str
    val_dir: str
    mislabelled_dir: str  # val with 3 images in the wrong class folder: the model "gets them wrong"
    mislabelled: tuple[str, ...]  # those 3 paths


_cache: dict[str, TinyRun] = {}


def tiny_run(tmp_path_factory) -> TinyRun:
    if "run" not in _cache:
        from core.config import TrainingConfig
        from core.training.driver import train

        root = tmp_path_factory.mktemp("tiny-model")
        train_dir = make_class_folders(str(root / "train"), dict.fromkeys(CLASSES, 8))
        val_dir = make_class_folders(str(root / "val"), dict.fromkeys(CLASSES, 4))
        mislabelled = str(root / "mislabelled")
        shutil.copytree(val_dir, mislabelled)
        moved = []
        for source, target in (
            ("blue/blue_000.png", "red"),
            ("blue/blue_001.png", "red"),
            ("red/red_000.png", "green"),
        ):
            path = os.path.join(mislabelled, target, os.path.basename(source))
            os.rename(os.path.join(mislabelled, source), path)
            moved.append(path)
        config = TrainingConfig(
            train_dir=train_dir,
            val_dir=val_dir,
            epochs=4,
            batch_size=4,
            image_size=16,
            learning_rate=0.01,
            out_dir=str(root / "runs"),
        )
        result = train(config)  # ~4 s; classifies the colours of val without a mistake
        assert result.status == "completed", result.message
        _cache["run"] = TinyRun(result.run_dir, train_dir, val_dir, mislabelled, tuple(moved))
    return _cache["run"]
