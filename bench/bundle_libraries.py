"""Which of the standalone bundle's shared libraries and packages no feature of FitStudio loads.

    .venv-package/bin/python bench/bundle_libraries.py [dist/FitStudio]

Runs every feature from source, in this process, with the package environment's Python (the
same packages the bundle is built from): a training with --jit; one with --augment, mixed
precision and class weights; a fine-tuned MobileNetV2 (random weights: no download); export to every format;
evaluate; predict with --explain; the dataset doctor; the window's self-test (offscreen). Then it
reads /proc/self/maps and sys.modules and lists, largest first, the bundle's libraries that were
never mapped and its top-level packages that were never imported. Those are the candidates for
packaging/fitstudio.spec's EXCLUDES and UNUSED_LIBRARIES. Linux only (/proc). Takes 3-5 minutes.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DEMO = os.path.join(ROOT, "resources", "demo")


def run_every_feature(scratch: str) -> None:
    from main import main

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    runs = os.path.join(scratch, "runs")
    commands = [
        # float32 and XLA: the run that is exported below (TFLite cannot convert bfloat16 layers)
        ["train", "--epochs", "1", "--image-size", "32", "--out", runs, "--jit", "--no-cache"],
        ["train", "--epochs", "1", "--image-size", "32", "--out", runs + "-mixed", "--augment",
         "--precision", "mixed", "--class-weights", "auto"],
        ["train", "--epochs", "2", "--image-size", "32", "--out", runs + "-mobilenet", "--model",
         "mobilenetv2", "--fine-tune-after", "1", "--weights-url", "http://127.0.0.1:9/"],
    ]
    for command in commands:
        print(" ".join(command[:1]), "->", main(command), flush=True)
    (run,) = glob.glob(os.path.join(runs, "*"))
    for fmt in ("keras", "savedmodel", "tflite", "tflite-quant", "onnx"):
        print("export", fmt, "->", main(["export", "--model", run, "--format", fmt, "--out",
                                          os.path.join(scratch, fmt)]), flush=True)
    val = os.path.join(DEMO, "val")
    print("evaluate ->", main(["evaluate", "--model", run, "--data", val]))
    print("predict --explain ->", main(["predict", "--model", run, os.path.join(val, "apple"), "--explain",
                                        os.path.join(scratch, "explain")]))
    print("doctor ->", main(["doctor", "--train", os.path.join(DEMO, "train"), "--val", val]))
    from gui.self_test import run_self_test

    print("self-test ->", run_self_test())


def loaded_libraries() -> set[str]:
    with open("/proc/self/maps") as maps:
        return {os.path.basename(line.split()[-1]) for line in maps if ".so" in line.split()[-1]}


def unused(bundle: str, libraries: set[str], packages: set[str]) -> None:
    internal = os.path.join(bundle, "_internal")
    rows = []
    for folder, _, names in os.walk(internal):
        for name in names:
            path = os.path.join(folder, name)
            if ".so" in name and name not in libraries and not os.path.islink(path):
                rows.append((os.path.getsize(path), os.path.relpath(path, bundle)))
    rows.sort(reverse=True)
    print(f"\nLibraries in {bundle} never loaded: {sum(size for size, _ in rows) / 1e6:.1f} MB in all")
    for size, path in rows[:15]:
        print(f"  {size / 1e6:7.1f} MB  {path}")
    never = [name for name in sorted(os.listdir(internal))
             if os.path.isdir(os.path.join(internal, name)) and name not in packages
             and not name.endswith((".libs", ".dist-info"))]
    print("Top-level folders never imported:", ", ".join(never))


def main() -> int:
    bundle = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "dist", "FitStudio")
    scratch = tempfile.mkdtemp(prefix="fitstudio-bundle-libraries-")
    try:
        run_every_feature(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    packages = {name.split(".")[0] for name in sys.modules}
    unused(bundle, loaded_libraries(), packages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
