"""What checking a weight file's hash costs on every run, next to building the backbone it feeds.

    python bench/weights_hash.py

Writes files of random bytes the size of Keras's headless MobileNetV2 (224 px, 9.4 MB) and
EfficientNetB0 (16.7 MB) files, and times the check a run makes of a cached file
(`check_cached_weights`: SHA-256 and MD5 in one read, from the page cache as on a second run;
random bytes fail the EfficientNetB0 check after the same work), best of 5. Then it times
building MobileNetV2 at 224 px without weights, once.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from core.modeling.weights import WeightsError, build_backbone, check_cached_weights  # noqa: E402

SIZES = {"mobilenetv2": 9_406_464, "efficientnetb0": 16_705_208}


def best_of(runs: int, work) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def check(path: str, model: str) -> None:
    with contextlib.suppress(WeightsError):  # random bytes are not Keras's file; same work
        check_cached_weights(path, model, 224)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        for model, size in SIZES.items():
            path = os.path.join(folder, f"{model}.h5")
            with open(path, "wb") as handle:
                handle.write(os.urandom(size))
            seconds = best_of(5, lambda: check(path, model))  # noqa: B023
            print(f"| hash check, {model} ({size / 1e6:.1f} MB) | {seconds * 1000:.0f} ms |")
    build_backbone("mobilenetv2", 224)  # TensorFlow's import and first build are not the point
    seconds = best_of(1, lambda: build_backbone("mobilenetv2", 224))
    print(f"| build MobileNetV2 224 px, no weights | {seconds * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
