"""Decoded images kept on disk between runs: a second run on a folder reads pixels instead of decoding.

Layout of the cache folder (core.paths.decoded_cache_dir()):

    lock                     held for a moment while a store is opened, or stores are evicted or cleared
    <store>/meta.json        what the store holds: one dataset folder at one image size and resize mode
                             (and, for a store of other items than decoded images, their Layout)
    <store>/used             its modification time is when the store was last used (LRU eviction)
    <store>/leases/<name>    one file per process using the store, locked while it does
    <store>/<segment>.pix    decoded images, one fixed-size slot each, written by one process
    <store>/<segment>.idx    one line per image: its file, stamp, slot and the CRC of its pixels

Why this shape:
- Each process writes only its own segment, so two FitStudio processes never write the same file and
  decode side by side without waiting on each other; the shared lock is only taken to open, evict or
  clear a store.
- An index line is written after its pixels and carries a CRC of its own text and one of the pixels,
  so a crash mid-write (a torn last line, a slot never indexed, pages lost at a power cut) is detected
  and the image is decoded again, never served.
- Images are read with pread into the caller's buffer, not memory-mapped, so reading the cache adds
  nothing to the process's resident memory.
- An entry is served only while the file's size, modification time and change time are the ones seen
  before it was decoded. The change time catches a file replaced by a copy that kept the old
  modification time. Files modified in the last few seconds are not kept: a second change within the
  file system's time resolution would not change their stamp.

The same stores hold other fixed-size items computed from an image, keyed the same way: a `Layout`
(the item's shape and dtype, and what else identifies them) turns a store of decoded pixels into one
of, say, a backbone's feature vectors (core.data.feature_cache). They share the folder, the locks and
the budget with the decoded images, and are evicted with them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from filelock import FileLock, Timeout

from core import files
from core.config import DEFAULT_CACHE_DISK_MB
from core.paths import decoded_cache_dir

FORMAT_VERSION = 1  # bump when decode_image's output changes: stores of older versions are never read
RECENT_CHANGE_NS = 3 * 10**9  # FAT stores modification times in 2 s steps
INDEX_FLUSH_EVERY = 32  # index lines buffered before one write; a crash loses at most these
ROOM_STEP_BYTES = 64 * 1024**2  # disk space taken from the budget at a time: the shared lock is rarely taken
LOCK_TIMEOUT_S = 20.0
_META, _USED, _LEASES, _LOCK = "meta.json", "used", "leases", "lock"
_DELETING = ".deleting-"
_STORE_NAME = re.compile(r"[0-9a-f]{24}")
_LEFTOVER_NAME = re.compile(r"[0-9a-f]{24}\.deleting-[0-9a-f]{8}")
_BINARY = getattr(os, "O_BINARY", 0)  # Windows would translate line ends without it

Stamp = tuple[int, int, int]  # size, modification time and change time of a file, in ns


def file_stamp(path: str) -> Stamp | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns, status.st_ctime_ns


@dataclass(frozen=True)
class Layout:
    """What one slot of a store holds when it is not a decoded image: an array of `shape` and `dtype`,
    computed as `variant` (plain JSON: which backbone, weights, preprocessing...) says."""

    shape: tuple[int, ...]
    dtype: str
    variant: dict

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize

    def to_dict(self) -> dict:
        return {"shape": list(self.shape), "dtype": self.dtype, "variant": self.variant}

    @classmethod
    def from_dict(cls, data: dict) -> Layout:
        return cls(tuple(int(n) for n in data["shape"]), str(data["dtype"]), dict(data["variant"]))


def store_name(root: str, image_size: int, resize_mode: str, layout: Layout | None = None) -> str:
    parts = [FORMAT_VERSION, os.path.realpath(root), image_size, resize_mode]
    if layout is not None:  # decoded images keep the names they had before layouts existed
        parts.append(layout.to_dict())
    key = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def _slot_bytes(image_size: int, layout: Layout | None) -> int:
    return image_size * image_size * 3 if layout is None else layout.nbytes


@dataclass
class _Entry:
    stamp: Stamp
    segment: int
    slot: int
    crc: int


@dataclass
class _Index:
    """What the index files of a store say: the newest entry of each file, and what was dropped."""

    segments: list[str]
    entries: dict[str, _Entry]
    live: list[int]  # entries per segment still referenced
    damaged: int = 0  # lines that failed their check
    cut_short: int = 0  # entries whose pixels lie beyond the end of their .pix file


@dataclass(frozen=True)
class StoreInfo:
    root: str
    image_size: int
    resize_mode: str
    entries: int
    size_bytes: int
    last_used: float
    in_use: bool
    layout: Layout | None = None  # None: decoded images


@dataclass(frozen=True)
class Cleared:
    removed: int
    freed_bytes: int
    in_use: list[str]  # roots of stores left alone because a FitStudio process is using them


_open_stores: dict[str, ImageStore] = {}
_open_stores_lock = threading.Lock()
_lock_file_lock = threading.Lock()  # threads of this process queue here, not by polling the file lock


class DiskCache:
    """The cache folder. Opens one store per (dataset folder, image size, resize mode) and keeps the
    folder within `budget_bytes` by deleting the least recently used stores no process is using."""

    def __init__(self, folder: str | None = None, budget_bytes: int = DEFAULT_CACHE_DISK_MB * 1024**2):
        self.folder = os.path.abspath(folder or decoded_cache_dir())
        self.budget_bytes = budget_bytes

    def open(self, root: str, image_size: int, resize_mode: str, layout: Layout | None = None) -> ImageStore:
        """The store of `root` (its decoded images, or items of `layout`), shared with every other user
        in this process; close() it after use. Raises OSError when the cache folder cannot be used."""
        folder = os.path.join(self.folder, store_name(root, image_size, resize_mode, layout))
        with _open_stores_lock:
            store = _open_stores.get(folder)
            if store is not None:
                store.users += 1
                store.cache = self
                return store
            with self._locked():
                messages = _prepare_store(folder, root, image_size, resize_mode, layout)
                alone = not _in_use(folder)
                lease = _take_lease(folder)
                try:
                    index = _read_index(folder, _slot_bytes(image_size, layout))
                    if alone:
                        _remove_dead_segments(folder, index)
                    _touch(os.path.join(folder, _USED))
                except BaseException:
                    _drop_lease(lease)
                    raise
            store = ImageStore(self, folder, root, image_size, resize_mode, index, lease, layout)
            store.messages.extend(messages)
            _open_stores[folder] = store
            return store

    def stores(self) -> list[StoreInfo]:
        """Every store in the folder, most recently used first."""
        found = []
        for folder in self._store_folders():
            meta = _read_meta(folder)
            if meta is None:
                continue
            layout = Layout.from_dict(meta["layout"]) if "layout" in meta else None
            index = _read_index(folder, _slot_bytes(meta["image_size"], layout))
            found.append(StoreInfo(meta["root"], meta["image_size"], meta["resize_mode"],
                                   len(index.entries), _folder_size(folder), _last_used(folder),
                                   _in_use(folder), layout))
        return sorted(found, key=lambda info: -info.last_used)

    def size_bytes(self) -> int:
        return sum(_folder_size(folder) for folder in self._store_folders())

    def clear(self) -> Cleared:
        """Deletes every store no FitStudio process is using."""
        removed, freed, busy = 0, 0, []
        if not os.path.isdir(self.folder):
            return Cleared(0, 0, [])
        with self._locked():
            for folder in self._store_folders(remove_leftovers=True):
                if _in_use(folder):
                    busy.append((_read_meta(folder) or {}).get("root", folder))
                    continue
                freed += _folder_size(folder)
                _remove_store(folder)
                removed += 1
        return Cleared(removed, freed, busy)

    def make_room(self, store: ImageStore, wanted: int) -> int:
        """The bytes `store` may still write within the budget; deletes the least recently used idle
        stores of other datasets to find `wanted` of them."""
        with self._locked():
            sizes = {folder: _folder_size(folder) for folder in self._store_folders(remove_leftovers=True)}
            free = self.budget_bytes - sum(sizes.values())
            idle = sorted((f for f in sizes if f != store.folder), key=_last_used)
            for folder in idle:
                if free >= wanted:
                    break
                if _in_use(folder):
                    continue
                root = (_read_meta(folder) or {}).get("root", folder)
                _remove_store(folder)
                free += sizes[folder]
                store.note(f"Removed the cached images of {root} from the disk cache (least recently "
                           f"used) to stay within its {self.budget_bytes / 1024**2:.0f} MB.")
        return max(free, 0)

    def _store_folders(self, remove_leftovers: bool = False) -> list[str]:
        try:
            names = os.listdir(self.folder)
        except OSError:
            return []
        # Only names this module makes: FITSTUDIO_CACHE_DIR may point at a folder holding other things.
        if remove_leftovers:  # stores whose deletion a crash interrupted
            for name in names:
                if _LEFTOVER_NAME.fullmatch(name):
                    shutil.rmtree(os.path.join(self.folder, name), ignore_errors=True)
        return [os.path.join(self.folder, n) for n in names
                if _STORE_NAME.fullmatch(n) and os.path.isdir(os.path.join(self.folder, n))]

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        os.makedirs(self.folder, exist_ok=True)
        with _lock_file_lock, FileLock(os.path.join(self.folder, _LOCK), timeout=LOCK_TIMEOUT_S,
                                       thread_local=False):
            yield


class ImageStore:
    """The decoded images of one dataset folder at one image size and resize mode (or, with a
    `layout`, other fixed-size items computed from them, one per image file).

    Thread-safe: the decode threads of a run (and a warm-up) read and write it at once. Problems
    (damaged files, a full budget or disk) never raise: the image is decoded instead, and a message
    is queued for `take_messages`.
    """

    def __init__(self, cache: DiskCache, folder: str, root: str, image_size: int, resize_mode: str,
                 index: _Index, lease: FileLock, layout: Layout | None = None):
        self.cache = cache
        self.folder = folder
        self.root = os.path.abspath(root)
        self.image_size = image_size
        self.resize_mode = resize_mode
        self.layout = layout
        self.dtype = np.dtype(np.uint8 if layout is None else layout.dtype)
        self.slot_bytes = _slot_bytes(image_size, layout)
        self.users = 1
        self.messages: list[tuple[str, str]] = []  # (level, text)
        self._segments = index.segments
        self._entries = index.entries
        self._lease = lease
        self._lock = threading.Lock()
        self._room_lock = threading.Lock()
        self._read_fds: dict[int, int] = {}
        self._writer: _SegmentWriter | None = None
        self._allowance = 0
        self._stopped_writing = False
        self._failed_checks = 0
        self._report_index_problems(index)

    def __len__(self) -> int:
        return len(self._entries)

    def stamp(self, path: str) -> Stamp | None:
        return file_stamp(path)

    def has(self, path: str, stamp: Stamp | None) -> bool:
        entry = self._entries.get(self._key(path))
        return stamp is not None and entry is not None and entry.stamp == stamp

    def load_into(self, path: str, stamp: Stamp | None, out: np.ndarray) -> bool:
        """Reads the kept image of `path` into `out` when the file still has `stamp`; False otherwise."""
        key = self._key(path)
        entry = self._entries.get(key)
        if stamp is None or entry is None or entry.stamp != stamp:
            return False
        try:
            complete = _read_at(self._fd(entry.segment), out, entry.slot * self.slot_bytes) == self.slot_bytes
        except OSError:
            complete = False
        if complete and zlib.crc32(out) == entry.crc:
            return True
        with self._lock:
            if self._entries.get(key) is entry:
                del self._entries[key]
            self._failed_checks += 1
            if self._failed_checks == 1:  # one message, not one per image of a damaged file
                self.messages.append(("warning", f"Cached images of {self.root} failed their check "
                                                 f"(first: {path}); they are decoded again."))
        return False

    def save(self, path: str, stamp: Stamp | None, image: np.ndarray) -> bool:
        """Keeps `image`, decoded from `path` after `stamp` was taken; False when it is not kept."""
        if stamp is None or time.time_ns() - stamp[1] < RECENT_CHANGE_NS:
            return False
        if not self._reserve():
            return False
        pixels = np.ascontiguousarray(image, dtype=self.dtype)
        try:
            writer = self._open_writer()
            with self._lock:
                slot = writer.slots
                writer.slots += 1
            _write_at(writer.pix, pixels, slot * self.slot_bytes)
        except OSError as exc:
            self._stop_writing(f"Decoded images can no longer be kept on disk ({exc}).")
            return False
        entry = _Entry(stamp, writer.segment, slot, zlib.crc32(pixels))
        key = self._key(path)
        line = _index_line([key, *stamp, slot, entry.crc])
        with self._lock:
            self._entries[key] = entry
            writer.pending.append(line)
            full = len(writer.pending) >= INDEX_FLUSH_EVERY
        if full:
            self.flush()
        return True

    def flush(self) -> None:
        """Writes the buffered index lines, so other processes (and the next run) see them."""
        with self._lock:
            writer = self._writer
            if writer is None or not writer.pending:
                return
            lines, writer.pending = writer.pending, []
            try:
                os.write(writer.idx, b"".join(lines))
            except OSError as exc:
                self._stopped_writing = True
                self.messages.append(("warning", f"The disk cache index could not be written ({exc}); "
                                                 "images decoded now are decoded again next time."))

    @property
    def writable(self) -> bool:
        """False once the budget or the disk is full: decoding more for this store would be wasted."""
        return not self._stopped_writing

    def take_messages(self) -> list[tuple[str, str]]:
        with self._lock:
            taken, self.messages = self.messages, []
        return taken

    def warn(self, text: str) -> None:
        with self._lock:
            self.messages.append(("warning", text))

    def note(self, text: str) -> None:
        with self._lock:
            self.messages.append(("info", text))

    def close(self) -> None:
        """Ends one user's use; the last one writes the index and lets other processes evict it."""
        with _open_stores_lock:
            self.users -= 1
            if self.users > 0:
                return
            _open_stores.pop(self.folder, None)
        self.flush()
        for fd in self._read_fds.values():
            os.close(fd)
        self._read_fds.clear()
        if self._writer is not None:
            self._writer.close()
        with contextlib.suppress(OSError):
            _touch(os.path.join(self.folder, _USED))
        _drop_lease(self._lease)

    # --- internals ------------------------------------------------------------------------------

    def _key(self, path: str) -> str:
        absolute = os.path.abspath(path)
        try:
            return os.path.relpath(absolute, self.root)
        except ValueError:  # another drive (Windows)
            return absolute

    def _fd(self, segment: int) -> int:
        # Under the lock, and by the writer's own number: a reader must never take this process's new
        # (still empty) segment for the older one whose entry it is reading.
        with self._lock:
            writer = self._writer
            if writer is not None and segment == writer.segment:
                return writer.pix
            fd = self._read_fds.get(segment)
            if fd is None:
                path = os.path.join(self.folder, self._segments[segment] + ".pix")
                fd = self._read_fds[segment] = os.open(path, os.O_RDONLY | _BINARY)
        return fd

    def _reserve(self) -> bool:
        with self._lock:
            if self._stopped_writing:
                return False
            if self._allowance >= self.slot_bytes:
                self._allowance -= self.slot_bytes
                return True
        with self._room_lock:  # one thread asks for room at a time
            with self._lock:
                if self._allowance >= self.slot_bytes:
                    self._allowance -= self.slot_bytes
                    return True
            try:
                room = self.cache.make_room(self, self.slot_bytes)
            except OSError as exc:
                self._stop_writing(f"The disk cache is busy or unusable ({exc}).")
                return False
            with self._lock:
                # A step at a time: processes writing at once overshoot the budget by a step at most.
                self._allowance = min(room, ROOM_STEP_BYTES)
                if self._allowance >= self.slot_bytes:
                    self._allowance -= self.slot_bytes
                    return True
        budget_mb = self.cache.budget_bytes / 1024**2
        self._stop_writing(f"The disk cache is full ({budget_mb:.0f} MB): the other images of {self.root} "
                           "are not kept and will be decoded again next time. A larger disk cache "
                           "(--cache-disk-mb, or Disk cache in the settings) keeps them.", level="info")
        return False

    def _stop_writing(self, text: str, level: str = "warning") -> None:
        with self._lock:
            if not self._stopped_writing:
                self._stopped_writing = True
                self.messages.append((level, text))

    def _open_writer(self) -> _SegmentWriter:
        with self._lock:
            if self._writer is None:
                name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"
                writer = _SegmentWriter(self.folder, name, segment=len(self._segments))
                self._segments.append(name)
                self._writer = writer  # published last, with its segment listed
            return self._writer

    def _report_index_problems(self, index: _Index) -> None:
        if index.damaged:
            self.messages.append(("warning", f"{index.damaged} damaged entries of the disk cache of "
                                             f"{self.root} were discarded; those images are decoded again."))
        if index.cut_short:
            self.messages.append(("warning", f"{index.cut_short} cached images of {self.root} were cut "
                                             "short (a cache file was truncated); they are decoded again."))


class _SegmentWriter:
    """This process's own pair of files in a store: pixels by slot, and the index lines."""

    def __init__(self, folder: str, name: str, segment: int):
        self.segment = segment  # its number in the store's list of segments
        self.pix = os.open(os.path.join(folder, name + ".pix"),
                           os.O_RDWR | os.O_CREAT | os.O_EXCL | _BINARY, 0o644)
        self.idx = os.open(os.path.join(folder, name + ".idx"),
                           os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | _BINARY, 0o644)
        self.slots = 0
        self.pending: list[bytes] = []

    def close(self) -> None:
        os.close(self.pix)
        os.close(self.idx)


# --- index lines ------------------------------------------------------------------------------------


def _index_line(record: list) -> bytes:
    payload = json.dumps(record, separators=(",", ":")).encode("ascii")
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def _parse_line(line: bytes) -> tuple[str, Stamp, int, int] | None:
    check, _, payload = line.partition(b" ")
    try:
        if int(check, 16) != zlib.crc32(payload):
            return None
        key, size, mtime, ctime, slot, crc = json.loads(payload)
    except (ValueError, TypeError):
        return None
    if not isinstance(key, str) or not all(isinstance(n, int) for n in (size, mtime, ctime, slot, crc)):
        return None
    return key, (size, mtime, ctime), slot, crc


def _read_index(folder: str, slot_bytes: int) -> _Index:
    """Every segment's index, oldest first; a later entry of a file replaces an earlier one."""
    try:
        names = sorted(n[: -len(".idx")] for n in os.listdir(folder) if n.endswith(".idx"))
    except OSError:
        names = []
    index = _Index(names, {}, [0] * len(names))
    for number, name in enumerate(names):
        try:
            pix_size = os.path.getsize(os.path.join(folder, name + ".pix"))
            with open(os.path.join(folder, name + ".idx"), "rb") as handle:
                lines = handle.read().split(b"\n")
        except OSError:
            continue  # a segment deleted meanwhile: its images are decoded again
        for line in lines[:-1]:  # the last piece is empty, or a line torn by a crash: ignored
            record = _parse_line(line)
            if record is None:
                index.damaged += 1
                continue
            key, stamp, slot, crc = record
            if slot < 0 or (slot + 1) * slot_bytes > pix_size:
                index.cut_short += 1
                continue
            earlier = index.entries.get(key)
            if earlier is not None:
                index.live[earlier.segment] -= 1
            index.entries[key] = _Entry(stamp, number, slot, crc)
            index.live[number] += 1
    return index


def _remove_dead_segments(folder: str, index: _Index) -> None:
    """Deletes segments no entry points at any more (every file in them changed or was decoded again
    later), and pixel files a crash left without an index. Only called when no process uses the store."""
    for name, live in zip(index.segments, index.live, strict=True):
        if live == 0:
            for extension in (".idx", ".pix"):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(folder, name + extension))
    indexed = set(index.segments)
    for name in os.listdir(folder):
        if name.endswith(".pix") and name[: -len(".pix")] not in indexed:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, name))


# --- store folders, leases ----------------------------------------------------------------------------


def _prepare_store(folder: str, root: str, image_size: int, resize_mode: str,
                   layout: Layout | None = None) -> list[tuple[str, str]]:
    """Makes sure `folder` is a store of exactly this dataset; a damaged one is started afresh."""
    wanted = {"version": FORMAT_VERSION, "root": os.path.realpath(root), "image_size": image_size,
              "resize_mode": resize_mode}
    if layout is not None:
        wanted["layout"] = json.loads(json.dumps(layout.to_dict()))  # as read back: lists, not tuples
    messages = []
    if os.path.isdir(folder):
        if _read_meta(folder) == wanted:
            return messages
        if _in_use(folder):
            raise OSError(f"the disk cache folder {folder} is damaged and in use by another process")
        if os.path.exists(os.path.join(folder, _META)):  # else a crash came before it was written
            messages.append(("warning", f"The disk cache folder {folder} was damaged; it is started afresh."))
        _remove_store(folder)
    os.makedirs(os.path.join(folder, _LEASES), exist_ok=True)
    files.write_json(os.path.join(folder, _META), wanted)
    return messages


def _read_meta(folder: str) -> dict | None:
    try:
        meta = files.read_json(os.path.join(folder, _META))
    except (OSError, ValueError):
        return None
    keys = {"version", "root", "image_size", "resize_mode"}
    if not isinstance(meta, dict) or set(meta) - {"layout"} != keys or meta["version"] != FORMAT_VERSION:
        return None
    if not isinstance(meta["image_size"], int) or meta["image_size"] <= 0:
        return None
    if "layout" in meta:
        try:
            if Layout.from_dict(meta["layout"]).nbytes <= 0:
                return None
        except (KeyError, TypeError, ValueError):
            return None
    return meta


def _take_lease(folder: str) -> FileLock:
    os.makedirs(os.path.join(folder, _LEASES), exist_ok=True)
    path = os.path.join(folder, _LEASES, f"{os.getpid()}-{secrets.token_hex(4)}")
    lease = FileLock(path, timeout=0, thread_local=False)
    lease.acquire()
    return lease


def _drop_lease(lease: FileLock) -> None:
    lease.release()
    with contextlib.suppress(OSError):
        os.remove(lease.lock_file)


def _in_use(folder: str) -> bool:
    """Whether a process holds a lease on the store; leases of processes that died are removed."""
    leases = os.path.join(folder, _LEASES)
    try:
        names = os.listdir(leases)
    except OSError:
        return False
    for name in names:
        probe = FileLock(os.path.join(leases, name), timeout=0, thread_local=False)
        try:
            probe.acquire()
        except Timeout:
            return True
        except OSError:
            continue
        probe.release()
        with contextlib.suppress(OSError):
            os.remove(os.path.join(leases, name))
    return False


def _remove_store(folder: str) -> None:
    # Renamed first, so the store disappears at once even if the deletion is interrupted.
    doomed = f"{folder}{_DELETING}{secrets.token_hex(4)}"
    try:
        os.rename(folder, doomed)
    except OSError:
        doomed = folder
    shutil.rmtree(doomed, ignore_errors=True)


def _folder_size(folder: str) -> int:
    total = 0
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
    return total


def _last_used(folder: str) -> float:
    try:
        return os.path.getmtime(os.path.join(folder, _USED))
    except OSError:
        return 0.0


def _touch(path: str) -> None:
    with open(path, "ab"):
        pass
    os.utime(path)


# --- positioned reads and writes, also where os.pread/pwrite are missing (Windows) --------------------

_seek_lock = threading.Lock()


def _read_at(fd: int, out: np.ndarray, offset: int) -> int:
    buffer = memoryview(out).cast("B")
    if hasattr(os, "preadv"):
        return os.preadv(fd, [buffer], offset)
    with _seek_lock:
        os.lseek(fd, offset, os.SEEK_SET)
        data = os.read(fd, len(buffer))
    buffer[: len(data)] = data
    return len(data)


def _write_at(fd: int, pixels: np.ndarray, offset: int) -> None:
    buffer = memoryview(pixels).cast("B")
    while len(buffer):
        if hasattr(os, "pwrite"):
            written = os.pwrite(fd, buffer, offset)
        else:
            with _seek_lock:
                os.lseek(fd, offset, os.SEEK_SET)
                written = os.write(fd, buffer)
        buffer, offset = buffer[written:], offset + written
