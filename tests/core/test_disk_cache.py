"""The disk cache of decoded images: reuse across runs, never a stale or damaged image, two processes at
once, a budget with LRU eviction, the warm-up, and the `cache` command."""

import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import age_files, make_class_folders, write_image

from core.cli.common import EXIT_OK
from core.config import TrainingConfig
from core.data import disk_cache, warmup
from core.data.dataset import scan
from core.data.disk_cache import DiskCache
from core.data.images import decode_image
from core.data.pipeline import DecodedCache, ImageStream
from core.data.warmup import warm_up
from core.events import Message
from core.training.driver import train
from main import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = 16


@pytest.fixture
def dataset(tmp_path):
    # BMP: the same picture size gives the same file size, so a changed image can keep its size.
    counts = {"blue": 5, "green": 4, "red": 3}
    return age_files(make_class_folders(str(tmp_path / "data"), counts, ext=".bmp"))


def first_epoch(files, cache=None, budget=2**40):
    """(images in file order, the stream's first_loads, the store's messages) of one epoch."""
    store = (cache or DiskCache()).open(files_root(files), SIZE, "stretch")
    stream = ImageStream(files, SIZE, 4, shuffle=True, seed=2,
                         cache=DecodedCache(len(files), SIZE, budget, disk=store))
    try:
        stream.set_epoch(0)
        for batch in range(len(stream)):
            stream[batch]
        messages = store.take_messages()
        return stream.cache.images.copy(), dict(stream.first_loads), messages
    finally:
        stream.close()


def files_root(files):
    return os.path.dirname(os.path.dirname(files.paths[0]))


def decoded(files):
    return np.stack([decode_image(path, SIZE) for path in files.paths])


def store_folder(cache_dir):
    (name,) = [n for n in os.listdir(cache_dir) if n != "lock"]
    return os.path.join(cache_dir, name)


def segment_files(cache_dir, extension):
    folder = store_folder(cache_dir)
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(extension))


def test_a_second_run_reuses_every_image_pixel_for_pixel(dataset):
    files = scan(dataset)[0]
    images, loads, messages = first_epoch(files)
    assert loads == {"reused": 0, "decoded": 12} and messages == []
    again, loads, messages = first_epoch(files)
    assert loads == {"reused": 12, "decoded": 0} and messages == []
    assert np.array_equal(again, images) and np.array_equal(again, decoded(files))


def test_other_sizes_and_resize_modes_are_kept_apart(dataset):
    files = scan(dataset)[0]
    first_epoch(files)
    cache = DiskCache()
    for size, mode in ((SIZE, "crop"), (24, "stretch")):
        store = cache.open(dataset, size, mode)
        try:
            assert len(store) == 0
        finally:
            store.close()


def test_a_file_changed_with_the_same_name_and_size_is_decoded_again(dataset):
    files = scan(dataset)[0]
    first_epoch(files)
    changed = files.paths[0]
    size_before = os.path.getsize(changed)
    write_image(changed, (250, 250, 0), SIZE, seed=99)
    moment = time.time() - 300  # another modification time, old enough to be kept
    os.utime(changed, (moment, moment))
    assert os.path.getsize(changed) == size_before
    images, loads, _ = first_epoch(files)
    assert loads == {"reused": 11, "decoded": 1}
    assert np.array_equal(images, decoded(files))
    assert images[0].mean(axis=(0, 1))[2] < 100  # yellow now, not blue


def test_a_replacement_that_keeps_the_modification_time_is_decoded_again(dataset, tmp_path):
    files = scan(dataset)[0]
    first_epoch(files)
    target = files.paths[1]
    status = os.stat(target)
    replacement = write_image(str(tmp_path / "other.bmp"), (10, 200, 10), SIZE, seed=5)
    os.replace(replacement, target)
    os.utime(target, ns=(status.st_atime_ns, status.st_mtime_ns))  # what `cp -p` does
    assert os.path.getsize(target) == status.st_size
    images, loads, _ = first_epoch(files)
    assert loads == {"reused": 11, "decoded": 1}
    assert np.array_equal(images, decoded(files))


def test_a_deleted_file_is_never_served(dataset):
    files = scan(dataset)[0]
    first_epoch(files)
    os.remove(files.paths[3])
    store = DiskCache().open(dataset, SIZE, "stretch")
    try:
        out = np.zeros((SIZE, SIZE, 3), np.uint8)
        assert not store.load_into(files.paths[3], store.stamp(files.paths[3]), out)
        assert store.load_into(files.paths[4], store.stamp(files.paths[4]), out)
    finally:
        store.close()


def test_a_file_modified_seconds_ago_is_not_kept(dataset):
    files = scan(dataset)[0]
    os.utime(files.paths[0])  # just now: a second change could keep the same time stamp
    first_epoch(files)
    _, loads, _ = first_epoch(files)
    assert loads == {"reused": 11, "decoded": 1}


def test_a_truncated_pixel_file_is_reported_and_its_images_decoded_again(dataset, isolated_disk_cache):
    files = scan(dataset)[0]
    first_epoch(files)
    (pixels,) = segment_files(isolated_disk_cache, ".pix")
    with open(pixels, "r+b") as handle:
        handle.truncate(5 * SIZE * SIZE * 3)  # five whole images left
    images, loads, messages = first_epoch(files)
    assert loads == {"reused": 5, "decoded": 7}
    assert [level for level, _ in messages] == ["warning"] and "cut short" in messages[0][1]
    assert np.array_equal(images, decoded(files))
    # The store is whole again: the images decoded a moment ago were kept in a new segment.
    assert first_epoch(files)[1] == {"reused": 12, "decoded": 0}


def test_a_crash_mid_write_leaves_a_torn_line_that_is_ignored(dataset, isolated_disk_cache):
    files = scan(dataset)[0]
    first_epoch(files)
    (index,) = segment_files(isolated_disk_cache, ".idx")
    with open(index, "rb") as handle:
        lines = handle.read().splitlines(keepends=True)
    with open(index, "wb") as handle:
        handle.write(b"".join(lines[:-1]) + lines[-1][:20])  # the last line cut mid-way
    _, loads, messages = first_epoch(files)
    assert loads == {"reused": 11, "decoded": 1} and messages == []


def test_damaged_pixels_and_index_lines_are_discarded_with_a_warning(dataset, isolated_disk_cache):
    files = scan(dataset)[0]
    first_epoch(files)
    (pixels,) = segment_files(isolated_disk_cache, ".pix")
    (index,) = segment_files(isolated_disk_cache, ".idx")
    with open(pixels, "r+b") as handle:  # flip bytes inside the first slot
        handle.seek(100)
        handle.write(b"\xff\x00\xff\x00")
    with open(index, "rb") as handle:
        lines = handle.read().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"', b"'", 1)  # one changed character: the line's CRC fails
    with open(index, "wb") as handle:
        handle.write(b"".join(lines))
    images, loads, messages = first_epoch(files)
    assert loads == {"reused": 10, "decoded": 2}
    texts = " ".join(text for _, text in messages)
    assert "1 damaged entries" in texts and "failed their check" in texts
    assert np.array_equal(images, decoded(files))


def test_a_damaged_store_description_starts_the_store_afresh(dataset, isolated_disk_cache):
    files = scan(dataset)[0]
    first_epoch(files)
    with open(os.path.join(store_folder(isolated_disk_cache), "meta.json"), "w") as handle:
        handle.write("{not json")
    images, loads, messages = first_epoch(files)
    assert loads == {"reused": 0, "decoded": 12}
    assert "damaged" in messages[0][1] and np.array_equal(images, decoded(files))


def test_an_unusable_cache_folder_raises_oserror_for_the_caller_to_run_without_it(dataset, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError):
        DiskCache(str(blocker / "cache")).open(dataset, SIZE, "stretch")


TWO_PROCESSES = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {root!r})
    from core.data.dataset import scan
    from core.data.disk_cache import DiskCache
    from core.data.images import decode_image
    files = scan({dataset!r})[0]
    while not os.path.exists({go!r}):
        time.sleep(0.01)
    store = DiskCache().open({dataset!r}, {size}, "stretch")
    for path in reversed(files.paths) if sys.argv[1] == "b" else files.paths:
        stamp = store.stamp(path)
        store.save(path, stamp, decode_image(path, {size}))
        store.flush()  # each line goes out at once, so the two index files interleave in time
    assert not store.take_messages()
    store.close()
""")


def test_two_processes_filling_one_store_at_once(dataset, tmp_path):
    go = str(tmp_path / "go")
    script = TWO_PROCESSES.format(root=ROOT, dataset=dataset, go=go, size=SIZE)
    workers = [subprocess.Popen([sys.executable, "-c", script, name], stderr=subprocess.PIPE, text=True)
               for name in ("a", "b")]
    time.sleep(0.5)
    open(go, "w").close()
    for worker in workers:
        _, errors = worker.communicate(timeout=60)
        assert worker.returncode == 0, errors
    indexes = segment_files(str(tmp_path / "decoded-cache"), ".idx")
    assert len(indexes) == 2  # one segment per process, each complete
    assert [len(Path(path).read_bytes().splitlines()) for path in indexes] == [12, 12]
    files = scan(dataset)[0]
    images, loads, messages = first_epoch(files)
    assert loads == {"reused": 12, "decoded": 0} and messages == []
    assert np.array_equal(images, decoded(files))


HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from core.data.disk_cache import DiskCache
    store = DiskCache().open({dataset!r}, {size}, "stretch")
    open({opened!r}, "w").close()
    time.sleep(120)
""")


def test_another_process_using_a_store_keeps_it_until_that_process_dies(dataset, tmp_path):
    first_epoch(scan(dataset)[0])
    opened = str(tmp_path / "opened")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=ROOT, dataset=dataset, size=SIZE,
                                                                   opened=opened)])
    try:
        for _ in range(600):
            if os.path.exists(opened) or holder.poll() is not None:
                break
            time.sleep(0.05)
        assert DiskCache().clear().in_use == [os.path.realpath(dataset)]
    finally:
        holder.kill()  # a crash: its lease is left behind, unlocked
        holder.wait(30)
    assert DiskCache().clear().removed == 1


def test_budget_removes_the_least_recently_used_dataset_first(tmp_path):
    roots = {name: age_files(make_class_folders(str(tmp_path / name), {"a": 5, "b": 5}))
             for name in ("first", "second", "third")}
    per_dataset = 10 * SIZE * SIZE * 3 + 2000  # pixels, index lines and meta.json
    cache = DiskCache(budget_bytes=int(2.5 * per_dataset))
    first_epoch(scan(roots["first"])[0], cache)
    time.sleep(0.05)
    first_epoch(scan(roots["second"])[0], cache)
    time.sleep(0.05)
    assert first_epoch(scan(roots["first"])[0], cache)[1]["reused"] == 10  # used again: now the newest
    time.sleep(0.05)
    _, loads, messages = first_epoch(scan(roots["third"])[0], cache)
    assert loads == {"reused": 0, "decoded": 10}
    assert any("Removed the cached images of" in text and "second" in text for _, text in messages)
    assert sorted(os.path.basename(info.root) for info in cache.stores()) == ["first", "third"]
    assert cache.size_bytes() <= cache.budget_bytes


def test_a_dataset_larger_than_the_budget_keeps_what_fits_and_says_so(dataset):
    cache = DiskCache(budget_bytes=5 * SIZE * SIZE * 3 + 600)
    _, _, messages = first_epoch(scan(dataset)[0], cache)
    assert any(level == "info" and "disk cache is full" in text for level, text in messages)
    _, loads, _ = first_epoch(scan(dataset)[0], cache)
    assert 0 < loads["reused"] < 12 and loads["reused"] + loads["decoded"] == 12


def test_a_store_in_use_is_neither_evicted_nor_cleared(dataset, tmp_path):
    other = age_files(make_class_folders(str(tmp_path / "other"), {"a": 4, "b": 4}))
    cache = DiskCache(budget_bytes=12 * SIZE * SIZE * 3 + 1500)
    busy = cache.open(dataset, SIZE, "stretch")
    try:
        for path in scan(dataset)[0].paths:
            busy.save(path, busy.stamp(path), decode_image(path, SIZE))
        first_epoch(scan(other)[0], cache)  # needs room the busy store holds
        assert len(busy) == 12
        cleared = cache.clear()
        assert cleared.in_use == [os.path.realpath(dataset)]
    finally:
        busy.close()
    assert cache.clear().removed == 1 and cache.stores() == []


def test_cache_info_and_clear_commands(dataset, isolated_disk_cache, capsys):
    first_epoch(scan(dataset)[0])
    assert main(["cache", "--info"]) == EXIT_OK
    info = capsys.readouterr().out
    assert isolated_disk_cache in info and "12 images in 1 datasets" in info
    assert f"{os.path.realpath(dataset)}  16 px stretch: 12 images" in info
    assert main(["cache", "--clear"]) == EXIT_OK
    assert "1 datasets" in capsys.readouterr().out
    assert main(["cache", "--info"]) == EXIT_OK
    assert "0 images in 0 datasets" in capsys.readouterr().out


def test_clear_deletes_only_what_the_cache_made(dataset, isolated_disk_cache):
    first_epoch(scan(dataset)[0])
    unrelated = os.path.join(isolated_disk_cache, "holiday-photos")
    os.makedirs(unrelated)
    interrupted = os.path.join(isolated_disk_cache, "ab" * 12 + ".deleting-0123abcd")  # a crash mid-delete
    os.makedirs(interrupted)
    assert DiskCache().clear().removed == 1
    assert os.path.isdir(unrelated) and not os.path.exists(interrupted)
    assert sorted(os.listdir(isolated_disk_cache)) == ["holiday-photos", "lock"]


def test_cache_command_needs_an_action(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["cache"])
    assert stop.value.code == 2 and "--info" in capsys.readouterr().err


def test_warm_up_fills_the_cache_and_a_run_then_reuses_it(dataset):
    progress = []
    result = warm_up([dataset], SIZE, "stretch", on_progress=lambda d, t: progress.append((d, t)),
                     low_priority=False)
    assert (result.total, result.done, result.decoded, result.cancelled) == (12, 12, 12, False)
    assert progress[-1] == (12, 12)
    assert warm_up([dataset], SIZE, "stretch", low_priority=False).decoded == 0
    assert first_epoch(scan(dataset)[0])[1] == {"reused": 12, "decoded": 0}


def test_warm_up_stops_within_one_image_when_cancelled(dataset, monkeypatch):
    cancel = threading.Event()
    decodes = []

    def counting_decode(*args):
        decodes.append(args[0])
        if len(decodes) == 3:
            cancel.set()
        return decode_image(*args)

    monkeypatch.setattr(warmup, "decode_image", counting_decode)
    result = warm_up([dataset], SIZE, "stretch", cancel=cancel, low_priority=False)
    assert result.cancelled and result.decoded == 3 and len(decodes) == 3
    assert first_epoch(scan(dataset)[0])[1] == {"reused": 3, "decoded": 9}


def test_warm_up_runs_at_the_lowest_priority_on_its_own_thread(dataset):
    seen = {}

    def work():
        warm_up([dataset], SIZE, "stretch", on_progress=lambda d, t: seen.setdefault(
            "nice", os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)
    assert seen["nice"] == (19 if sys.platform.startswith("linux") else os.getpriority(os.PRIO_PROCESS, 0))
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) != 19  # this thread is untouched


def test_stream_counts_first_loads_once_even_without_a_cache(dataset):
    files = scan(dataset)[0]
    stream = ImageStream(files, SIZE, 5, shuffle=True)
    try:
        for epoch in range(2):
            stream.set_epoch(epoch)
            for batch in range(len(stream)):
                stream[batch]
        assert stream.first_loads == {"reused": 0, "decoded": 12}
    finally:
        stream.close()


def test_closing_the_last_user_lets_other_processes_evict_the_store(dataset):
    cache = DiskCache()
    one, two = cache.open(dataset, SIZE, "stretch"), cache.open(dataset, SIZE, "stretch")
    assert one is two  # shared within a process: a warm-up and the run that follows it
    one.close()
    assert disk_cache._in_use(one.folder)
    two.close()
    assert not disk_cache._in_use(one.folder)


# --- real runs ----------------------------------------------------------------------------------------


def cli_run(train_dir, val_dir, out, *extra):
    assert main(["train", "--train", train_dir, "--val", val_dir, "--epochs", "1", "--batch-size", "8",
                 "--image-size", str(SIZE), "--out", out, *extra]) == EXIT_OK
    (newest,) = sorted(os.listdir(out))[-1:]
    return files_json(os.path.join(out, newest, "report.json"))


def files_json(path):
    from core.files import read_json

    report = read_json(path)
    shutil.rmtree(os.path.dirname(path))  # the next run's folder is then the only one
    return report


def test_a_second_cli_run_reuses_every_first_epoch_image(tiny_dataset, tmp_path):
    train_dir, val_dir = (age_files(folder) for folder in tiny_dataset)
    out = str(tmp_path / "runs")
    assert cli_run(train_dir, val_dir, out)["cache"] == {"reused": 0, "decoded": 36}
    assert cli_run(train_dir, val_dir, out)["cache"] == {"reused": 36, "decoded": 0}


def test_no_cache_decodes_everything_and_keeps_nothing(tiny_dataset, tmp_path, isolated_disk_cache):
    train_dir, val_dir = (age_files(folder) for folder in tiny_dataset)
    report = cli_run(train_dir, val_dir, str(tmp_path / "runs"), "--no-cache")
    assert report["cache"] == {"reused": 0, "decoded": 36} and report["config"]["cache"] is False
    assert not os.path.exists(isolated_disk_cache)


def test_a_zero_disk_budget_keeps_nothing_between_runs(tiny_dataset, tmp_path, isolated_disk_cache):
    train_dir, val_dir = (age_files(folder) for folder in tiny_dataset)
    report = cli_run(train_dir, val_dir, str(tmp_path / "runs"), "--cache-disk-mb", "0")
    assert report["cache"] == {"reused": 0, "decoded": 36} and report["config"]["cache_disk_mb"] == 0
    assert not os.path.exists(isolated_disk_cache)


def test_a_run_takes_over_what_the_warm_up_prepared(tiny_dataset, tmp_path, monkeypatch):
    train_dir, val_dir = (age_files(folder) for folder in tiny_dataset)
    cancel = threading.Event()
    decodes = []

    def counting_decode(*args):
        decodes.append(args[0])
        if len(decodes) == 10:
            cancel.set()
        return decode_image(*args)

    monkeypatch.setattr(warmup, "decode_image", counting_decode)
    result = warm_up([train_dir, val_dir], SIZE, "stretch", cancel=cancel, low_priority=False)
    assert result.cancelled and result.decoded == 10
    report = cli_run(train_dir, val_dir, str(tmp_path / "runs"))
    assert report["cache"] == {"reused": 10, "decoded": 26}


def test_an_unusable_disk_cache_is_a_warning_and_the_run_goes_on(tiny_dataset, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache folder cannot be made below a file")
    monkeypatch.setenv("FITSTUDIO_CACHE_DIR", str(blocker / "cache"))
    train_dir, val_dir = (age_files(folder) for folder in tiny_dataset)
    config = TrainingConfig(train_dir=train_dir, val_dir=val_dir, epochs=1, batch_size=8, image_size=SIZE,
                            out_dir=str(tmp_path / "runs"))
    events = []
    result = train(config, events.append)
    report = files_json(os.path.join(result.run_dir, "report.json"))
    assert report["status"] == "completed" and report["cache"] == {"reused": 0, "decoded": 36}
    warnings = [e.text for e in events if isinstance(e, Message) and e.level == "warning"]
    assert len(warnings) == 2 and warnings[0].startswith("The disk cache cannot be used")


class WatchedLock:
    """A threading.Lock that says when a thread had to wait for it."""

    def __init__(self):
        self._lock = threading.Lock()
        self.contended = threading.Event()

    def __enter__(self):
        if not self._lock.acquire(blocking=False):
            self.contended.set()
            self._lock.acquire()
        return self

    def __exit__(self, *exc_info):
        self._lock.release()


def test_a_reader_never_takes_a_new_empty_segment_for_the_one_it_reads(dataset, tmp_path):
    """The race: one decode thread opens this process's segment while another reads an older one.
    The reader must get the older segment's pixels, not the new empty file, and no false warning."""
    files = scan(dataset)[0]
    cache = DiskCache(str(tmp_path / "cache"))
    first_epoch(files, cache)  # segment 0 holds every image
    new = os.path.join(dataset, "blue", "new.bmp")
    write_image(new, (0, 0, 250), SIZE, seed=99)
    os.utime(new, (time.time() - 600, time.time() - 600))  # old enough to be kept
    store = cache.open(dataset, SIZE, "stretch")
    kept, out, read = files.paths[0], np.zeros((SIZE, SIZE, 3), np.uint8), []
    store._lock = lock = WatchedLock()
    reader = threading.Thread(target=lambda: read.append(store.load_into(kept, store.stamp(kept), out)))

    class SegmentsRacedByAReader(list):
        def append(self, name):
            """Runs while the writer opens its segment: the reader reads until done or blocked on it."""
            reader.start()
            give_up = time.monotonic() + 30  # a hang guard, never reached when the code is right
            while reader.is_alive() and not lock.contended.is_set() and time.monotonic() < give_up:
                time.sleep(0.005)
            super().append(name)

    store._segments = SegmentsRacedByAReader(store._segments)
    try:
        assert store.save(new, store.stamp(new), decode_image(new, SIZE))
        reader.join(timeout=30)
        assert read == [True] and np.array_equal(out, decode_image(kept, SIZE))
        assert store.take_messages() == [] and store.has(kept, store.stamp(kept))
    finally:
        store.close()


def test_a_segment_another_process_just_created_is_a_miss_not_an_error(dataset, isolated_disk_cache):
    """Another process's new segment: pixels without an index yet, or an empty index. Both are
    misses for a reader: the images are decoded, with no warning."""
    files = scan(dataset)[0]
    first_epoch(files)
    folder = store_folder(isolated_disk_cache)
    for path in segment_files(isolated_disk_cache, ".pix") + segment_files(isolated_disk_cache, ".idx"):
        os.remove(path)
    other = disk_cache._take_lease(folder)  # the other process, still running
    try:
        Path(folder, "0" * 20 + "-1-aaaaaaaa.pix").touch()  # pixels, no index yet
        Path(folder, "0" * 20 + "-1-bbbbbbbb.pix").touch()  # and an index with no line yet
        Path(folder, "0" * 20 + "-1-bbbbbbbb.idx").touch()
        images, loads, messages = first_epoch(files)
    finally:
        disk_cache._drop_lease(other)
    assert loads == {"reused": 0, "decoded": 12} and messages == []
    assert np.array_equal(images, decoded(files))
