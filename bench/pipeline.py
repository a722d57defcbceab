"""How fast FitStudio's input pipeline feeds Keras, against Keras's own loader and a textbook generator.

    python bench/pipeline.py                 # 2,000 photo-sized JPEGs, 224 px, batch 32
    python bench/pipeline.py --skip-memory   # without the peak-memory runs (about 4 min less)
    python bench/pipeline.py --skip-streams  # without section 1
    python bench/pipeline.py --skip-fits     # without section 2 (the longest: 30-40 min on 2 slow cores)

Makes (or reuses) a synthetic dataset of photo-sized JPEGs under bench/data/, then measures in
one run, on the same files, at the same input size and batch size:
  1. images/s of iterating each stream alone, epoch 1 and epoch 2, and epoch 1 of FitStudio's
     second run on the same data (the disk cache a first run filled): the input side alone, which a
     slow model cannot hide;
  2. images/s of `fit` (small CNN) fed by each stream, and by numpy arrays already in memory; and
     FitStudio with the disk cache of decoded images (core.data.disk_cache): a first run that fills
     it, a second run on the same data, and a first run after --warm-up-seconds of warm-up (as the
     window does while the user picks settings), each with a fresh cache folder under bench/data/;
  3. peak resident memory of one FitStudio training epoch over 2,000 and 10,000 images, cache off;
     and over 2,000 images with the cache on: no disk cache, a first run that fills it, a second run.
Shared machines swing between fast and slow phases (seen here: the same epoch at 100 or at 200
images/s), so every figure is the best of --repeats fresh attempts (epoch 1) or of all later epochs
of those attempts (epoch 2+); the textbook generator, ten times slower, gets one attempt of two
epochs. Compare rows of the same run, not runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

CLASSES = ("alpha", "bravo", "charlie", "delta", "echo")
DATA = os.path.join(ROOT, "bench", "data")
KERAS = "Keras image_dataset_from_directory"
FIRST_RUN = "FitStudio, first run (fills disk cache)"
SECOND_RUN = "FitStudio, second run (disk cache)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="fresh attempts per measurement")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per fit attempt")
    parser.add_argument("--warm-up-seconds", type=float, default=5.0, metavar="S")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-streams", action="store_true")
    parser.add_argument("--skip-fits", action="store_true")
    parser.add_argument("--memory-probe", help=argparse.SUPPRESS)  # internal: one training epoch
    parser.add_argument("--probe-disk-mb", type=int, help=argparse.SUPPRESS)  # internal: cache on
    args = parser.parse_args()
    if args.memory_probe:
        return memory_probe(args.memory_probe, args.size, args.batch, args.probe_disk_mb)
    root = make_photos(os.path.join(DATA, f"photos-{args.images}"), args.images)
    print(
        f"dataset: {root}, {args.images} JPEGs 1024x768..2000x1500, input {args.size} px, "
        f"batch {args.batch}, {os.cpu_count()} CPU cores\n"
    )
    if not args.skip_streams:
        streams = measure_streams(root, args.size, args.batch, args.repeats)
        print_table("1. stream alone (images/s)", ["epoch 1", "epoch 2"], streams, "FitStudio")
        second = streams[SECOND_RUN][0] / streams[KERAS][0]
        print(f"   second run, stream epoch 1: {second:.2f}x image_dataset_from_directory's epoch 1\n")
    if not args.skip_fits:
        fits = measure_fits(root, args.size, args.batch, args.repeats, args.epochs, args.warm_up_seconds)
        print_table("2. fit, small CNN (images/s)", ["epoch 1", "epoch 2+"], fits, "FitStudio")
        ratio_line(fits, "numpy arrays in memory (limit)", column=1)
        second = fits[SECOND_RUN][0] / fits[KERAS][0]
        print(f"   second run, epoch 1: {second:.2f}x image_dataset_from_directory's epoch 1 "
              "(target: 1.5x)\n")
    if not args.skip_memory:
        measure_memory(root, args.size, args.batch)


# --- the dataset ----------------------------------------------------------------------------------


def make_photos(root: str, count: int) -> str:
    marker = os.path.join(root, ".complete")
    if os.path.exists(marker):
        return root
    jobs = [(os.path.join(root, CLASSES[i % 5], f"img_{i:05d}.jpg"), i) for i in range(count)]
    for name in CLASSES:
        os.makedirs(os.path.join(root, name), exist_ok=True)
    started = time.perf_counter()
    with Pool(os.cpu_count() or 2) as pool:
        pool.map(write_photo, jobs, chunksize=8)
    with open(marker, "w"):
        pass
    print(f"made {count} photos in {time.perf_counter() - started:.0f} s")
    return root


def write_photo(job: tuple[str, int]) -> None:
    """A photo-like JPEG: smooth colour fields, mid-frequency texture, sensor noise, and a class-coloured
    object, so it compresses (and decodes) like a camera picture, about 2 bits per pixel."""
    path, seed = job
    rng = np.random.default_rng(seed)
    width, height = int(rng.integers(1024, 2001)), int(rng.integers(768, 1501))
    coarse = Image.fromarray(rng.integers(0, 256, (height // 64 + 2, width // 64 + 2, 3), dtype=np.uint8))
    texture = Image.fromarray(rng.integers(0, 256, (height // 6 + 2, width // 6 + 2), dtype=np.uint8))
    pixels = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    pixels += (
        np.asarray(texture.resize((width, height), Image.Resampling.BILINEAR), dtype=np.int16)[..., None]
        - 128
    ) // 5
    pixels += rng.integers(-6, 7, (height, width, 1), dtype=np.int16)
    label = seed % 5
    top, left = int(rng.integers(0, height // 2)), int(rng.integers(0, width // 2))
    pixels[top : top + height // 3, left : left + width // 3] = (
        np.array([[[60, 120, 180]]]) + 40 * label
    ) % 256
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)


# --- 1. streams alone -----------------------------------------------------------------------------


def measure_streams(root, size, batch, repeats):
    import keras
    import tensorflow as tf

    from core.data.dataset import scan
    from core.data.pipeline import DecodedCache, ImageStream

    files = scan(root)[0]
    attempts = []
    for _ in range(repeats):  # a fresh cache each time: epoch 1 must decode every file again
        cache = DecodedCache(len(files), size, memory_budget=2**40)
        stream = ImageStream(files, size, batch, shuffle=True, seed=1, cache=cache)
        attempts.append([rate(len(files), lambda e=e, s=stream: drain_stream(s, e)) for e in (0, 1)])
        stream.close()
    second_runs = []
    for _ in range(repeats):  # a run fills the disk cache; the next run's epoch 1 reads it
        with tempfile.TemporaryDirectory(dir=DATA, prefix="disk-cache-") as folder:
            first = disk_cached_stream(files, folder, size, batch)
            drain_stream(first, 0)
            first.close()
            second = disk_cached_stream(files, folder, size, batch)
            epoch_1 = rate(len(files), lambda s=second: drain_stream(s, 0))
            second.close()
            second_runs.append([epoch_1, epoch_1])
    keras_ds = keras.utils.image_dataset_from_directory(
        root, image_size=(size, size), batch_size=batch, shuffle=True, seed=1, verbose=False
    ).prefetch(tf.data.AUTOTUNE)
    keras_rates = [rate(len(files), lambda: drain(keras_ds)) for _ in range(2 * repeats)]
    textbook = [rate(len(files), lambda e=e: drain(textbook_epoch(files, size, batch, e))) for e in (0, 1)]
    return {
        "FitStudio": best_by_epoch(attempts),
        SECOND_RUN: best_by_epoch(second_runs),  # epoch 1 only: its "epoch 2" repeats it
        KERAS: [max(keras_rates), max(keras_rates)],
        "textbook Pillow generator": textbook,
    }


def best_by_epoch(attempts: list[list[float]]) -> list[float]:
    """[best first epoch, best of every later epoch] over several attempts."""
    return [max(a[0] for a in attempts), max(r for a in attempts for r in a[1:])]


def drain(batches) -> None:
    for _ in batches:
        pass


def drain_stream(stream, epoch: int) -> None:
    stream.set_epoch(epoch)
    for i in range(len(stream)):
        stream[i]


def textbook_epoch(files, size, batch, epoch):
    """What the tutorials write: open, convert, resize, one image at a time, in the training thread."""
    order = np.random.default_rng([1, epoch]).permutation(len(files))
    for start in range(0, len(order), batch):
        chosen = order[start : start + batch]
        images = [np.asarray(Image.open(files.paths[i]).convert("RGB").resize((size, size))) for i in chosen]
        yield np.stack(images), files.labels[chosen]


def rate(count: int, work) -> float:
    started = time.perf_counter()
    work()
    return count / (time.perf_counter() - started)


# --- 2. fit ---------------------------------------------------------------------------------------


def measure_fits(root, size, batch, repeats, epochs, warm_up_seconds):
    import keras
    import tensorflow as tf

    from core.data.dataset import scan
    from core.data.pipeline import DecodedCache, ImageStream

    files = scan(root)[0]
    steps = math.ceil(len(files) / batch)
    warmed = f"FitStudio after {warm_up_seconds:g} s warm-up"
    attempts = {
        name: []
        for name in ("FitStudio", KERAS, "numpy arrays in memory (limit)", FIRST_RUN, SECOND_RUN, warmed)
    }
    prepared = []
    for _ in range(repeats):
        cache = DecodedCache(len(files), size, memory_budget=2**40)
        stream = ImageStream(files, size, batch, shuffle=True, seed=1, cache=cache)
        attempts["FitStudio"].append(fit_rates(stream, size, steps, epochs, len(files), stream))
        in_memory = cache.images.copy()
        stream.close()
        keras_ds = keras.utils.image_dataset_from_directory(
            root, image_size=(size, size), batch_size=batch, shuffle=True, seed=1, verbose=False
        ).prefetch(tf.data.AUTOTUNE)
        attempts[KERAS].append(
            fit_rates(keras_ds, size, None, epochs, len(files))
        )
        arrays = (in_memory, files.labels, batch)
        attempts["numpy arrays in memory (limit)"].append(fit_rates(arrays, size, None, epochs, len(files)))
        del in_memory, arrays
        with tempfile.TemporaryDirectory(dir=DATA, prefix="disk-cache-") as folder:
            attempts[FIRST_RUN].append(disk_cached_fit(files, folder, size, batch, steps, epochs))
            attempts[SECOND_RUN].append(disk_cached_fit(files, folder, size, batch, steps, 2))
        with tempfile.TemporaryDirectory(dir=DATA, prefix="disk-cache-") as folder:
            prepared.append(warm_up_for(root, folder, size, warm_up_seconds))
            attempts[warmed].append(disk_cached_fit(files, folder, size, batch, steps, 2))

    def forever():
        for epoch in range(1_000_000):
            yield from textbook_epoch(files, size, batch, epoch)

    results = {name: best_by_epoch(rates) for name, rates in attempts.items()}
    results[f"{warmed} ({min(prepared):.0%}-{max(prepared):.0%} prepared)"] = results.pop(warmed)
    results["textbook Pillow generator"] = fit_rates(forever(), size, steps, 2, len(files))
    return results


def disk_cached_stream(files, folder, size, batch):
    """A run's stream as `train` makes it: the in-run cache in memory, reading through the disk cache
    in `folder`. Closing it closes the store: the next one opens it afresh, as a new process would."""
    from core.data.disk_cache import DiskCache
    from core.data.pipeline import DecodedCache, ImageStream

    store = DiskCache(folder, budget_bytes=2**40).open(os.path.dirname(os.path.dirname(files.paths[0])),
                                                       size, "stretch")
    cache = DecodedCache(len(files), size, memory_budget=2**40, disk=store)
    return ImageStream(files, size, batch, shuffle=True, seed=1, cache=cache)


def disk_cached_fit(files, folder, size, batch, steps, epochs) -> list[float]:
    stream = disk_cached_stream(files, folder, size, batch)
    try:
        return fit_rates(stream, size, steps, epochs, len(files), stream)
    finally:
        stream.close()


def warm_up_for(root, folder, size, seconds) -> float:
    """Runs the window's warm-up (one low-priority thread) for `seconds`; the share of images prepared."""
    import threading

    from core.data.disk_cache import DiskCache
    from core.data.warmup import warm_up

    cancel, outcome = threading.Event(), []
    cache = DiskCache(folder, budget_bytes=2**40)
    worker = threading.Thread(target=lambda: outcome.append(warm_up([root], size, "stretch", cache=cache,
                                                                    cancel=cancel)))
    worker.start()
    time.sleep(seconds)
    cancel.set()
    worker.join()
    return outcome[0].done / outcome[0].total


def fit_rates(data, size, steps, epochs, count, stream=None) -> list[float]:
    """Images/s of each training epoch of a fresh small CNN (the same seed every time)."""
    import keras

    from core.modeling.models import build_model

    keras.utils.set_random_seed(1)
    model = build_model("small-cnn", len(CLASSES), size).model
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    seconds = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if stream is not None:
                stream.set_epoch(epoch)
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.started)

    if isinstance(data, tuple):
        images, labels, batch = data
        model.fit(images, labels, batch_size=batch, epochs=epochs, callbacks=[EpochTimer()], verbose=0)
    else:
        # shuffle=False as in training: the stream shuffles images itself
        model.fit(
            data, epochs=epochs, steps_per_epoch=steps, shuffle=False, callbacks=[EpochTimer()], verbose=0
        )
    return [count / second for second in seconds]


# --- 3. memory ------------------------------------------------------------------------------------


def measure_memory(root, size, batch):
    big = os.path.join(DATA, "photos-10000-links")
    if not os.path.exists(os.path.join(big, ".complete")):
        for name in CLASSES:
            os.makedirs(os.path.join(big, name), exist_ok=True)
            sources = sorted(os.listdir(os.path.join(root, name)))
            for copy in range(5):  # the same decoding work as 10,000 distinct files
                for source in sources:
                    link = os.path.join(big, name, f"c{copy}_{source}")
                    if not os.path.exists(link):
                        os.symlink(os.path.join(root, name, source), link)
        with open(os.path.join(big, ".complete"), "w"):
            pass
    print("\n3. peak resident memory of one FitStudio training epoch, cache off")
    peaks = {}
    for label, folder in (("2,000 images", root), ("10,000 images", big)):
        peaks[label] = probe(folder, size, batch)
        print(
            f"   {label:<16} peak {peaks[label]['peak_mb']:7.0f} MB   "
            f"({peaks[label]['images_per_second']:.0f} images/s, epoch {peaks[label]['seconds']:.0f} s)"
        )
    growth = peaks["10,000 images"]["peak_mb"] / peaks["2,000 images"]["peak_mb"] - 1
    print(f"   growth from 2,000 to 10,000 images: {growth:+.1%} (target: under +20%)")
    print("\n   2,000 images, cache on")
    with tempfile.TemporaryDirectory(dir=DATA, prefix="disk-cache-") as cache_dir:
        for label, disk_mb in (("no disk cache", 0), ("first run", 2**20), ("second run", 2**20)):
            peak = probe(root, size, batch, disk_mb, cache_dir)
            print(f"   {label:<16} peak {peak['peak_mb']:7.0f} MB   "
                  f"({peak['images_per_second']:.0f} images/s, epoch {peak['seconds']:.0f} s, "
                  f"cache {peak['cache']})")


def probe(folder, size, batch, disk_mb=None, cache_dir=None) -> dict:
    """One training epoch in a fresh process; its peak resident memory."""
    command = [sys.executable, __file__, "--memory-probe", folder, "--size", str(size), "--batch", str(batch)]
    if disk_mb is not None:
        command += ["--probe-disk-mb", str(disk_mb)]
    env = {**os.environ, "FITSTUDIO_CACHE_DIR": cache_dir} if cache_dir else None
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_probe(folder: str, size: int, batch: int, disk_mb: int | None) -> None:
    """Trains one epoch: cache off, or (with `disk_mb`) the cache on with that disk budget."""
    from core.config import TrainingConfig
    from core.training.driver import train

    with tempfile.TemporaryDirectory() as out:
        config = TrainingConfig(
            train_dir=folder,
            val_dir=None,
            val_split=0.01,
            epochs=1,
            batch_size=batch,
            image_size=size,
            cache=disk_mb is not None,
            cache_disk_mb=disk_mb or 0,
            out_dir=out,
        )
        result = train(config)
        with open(os.path.join(result.run_dir, "report.json")) as handle:
            report = json.load(handle)
    epoch = report["epochs"][0]
    peak_kb = peak_resident_kb()
    print(
        json.dumps(
            {
                "peak_mb": peak_kb / 1024,
                "seconds": epoch["seconds"],
                "images_per_second": epoch["images_per_second"],
                "cache": report.get("cache"),
            }
        )
    )


def peak_resident_kb() -> int:
    """This process's peak resident memory. Linux's ru_maxrss survives exec, so a probe started by
    a bench that had already grown to gigabytes would report the bench's peak; VmHWM belongs to the
    new program's address space."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- output ---------------------------------------------------------------------------------------


def print_table(title, columns, rows, reference):
    print(title)
    width = max(len(name) for name in rows) + 2
    print(" " * (width + 3) + "".join(f"{c:>12}" for c in columns) + "   FitStudio is")
    for name, values in rows.items():
        ratios = (
            ""
            if name == reference
            else "  ".join(f"{rows[reference][i] / v:5.2f}x" for i, v in enumerate(values))
        )
        print(f"   {name:<{width}}" + "".join(f"{v:12.0f}" for v in values) + f"   {ratios}")
    print()


def ratio_line(rows, limit, column):
    share = rows["FitStudio"][column] / rows[limit][column]
    print(f"   FitStudio fit, epoch {column + 1}: {share:.2f}x the in-memory limit (target: 0.90x or more)\n")


if __name__ == "__main__":
    main()
