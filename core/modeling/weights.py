"""ImageNet weights for the transfer-learning backbones: found in the Keras cache, downloaded from
Keras's servers or a mirror, or imported from a file the user already has.

Keras names each headless ("no top") weight file by architecture, width and input size and keeps it
in $KERAS_HOME/models; FitStudio uses the same names and folder, so a file Keras fetched before is
found, and a mirror is just a folder of those files served over HTTP. What Keras's own download
lacks is added here: progress events, cancellation, a timeout on every wait, and a check that the
file really loads into the architecture. A downloaded or imported file is written under a temporary
name beside its final one and renamed only once it passed, so the cache never holds half a file.

A file is also checked against the hash it should have (`expected_hash`): $FITSTUDIO_WEIGHTS_SHA256
for a private mirror serving its own backbone, else the hash Keras's applications pass to `get_file`
(keras/src/applications/*.py). Keras publishes one for EfficientNetB0's file, an MD5, and none for
MobileNetV2's (mobilenet_v2.py calls get_file without `file_hash`), so a MobileNetV2 file from
Keras's server is checked by loading alone, as Keras itself checks it; its SHA-256 is recorded.
A downloaded file with the wrong hash is refused and not kept. A cached file is hashed again on
every use (0.07-0.13 s, against over a second to build the backbone: bench/weights_hash.py), so a
file swapped by hand is caught and no stored hash has to be trusted; one that fails is fetched
again, as Keras does.
A file the user imported is checked by loading; a record beside it (its SHA-256) keeps a later run
from replacing it with Keras's file.

TensorFlow is imported only where a backbone is built, so the window can name files without it.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from core import files
from core.config import PRETRAINED_MODELS
from core.errors import FitStudioError
from core.events import DownloadProgress, Event

OFFLINE_ENV = "FITSTUDIO_OFFLINE"  # "1": never try the network (tests, air-gapped machines)
WEIGHTS_URL_ENV = "FITSTUDIO_WEIGHTS_URL"  # a mirror's base URL, replacing Keras's
WEIGHTS_SHA256_ENV = "FITSTUDIO_WEIGHTS_SHA256"  # the SHA-256 of the file a private mirror serves
# What Keras's applications pass to get_file as `file_hash` for the files FitStudio fetches (an MD5
# when 32 hex digits, as Keras reads it); MobileNetV2's files have none (see the module docstring).
KERAS_PUBLISHED_HASHES = {"efficientnetb0_notop.h5": "50bc09e76180e00e4465e1a485ddc09d"}
IMPORT_RECORD_SUFFIX = ".imported.json"  # beside a cached file the user imported: its SHA-256
STALL_TIMEOUT_SECONDS = 20.0  # the longest a download may wait for the server's next bytes
KERAS_BASE_URLS = {
    "mobilenetv2": "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/",
    "efficientnetb0": "https://storage.googleapis.com/keras-applications/",
}
ARCHITECTURE_NAMES = {"mobilenetv2": "MobileNetV2", "efficientnetb0": "EfficientNetB0"}
_MOBILENET_SIZES = (96, 128, 160, 192, 224)  # input sizes Keras has MobileNetV2 weights for
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_CHUNK_BYTES = 64 * 1024
_POLL_SECONDS = 0.1  # how often a waiting download looks at the cancel flag
_PROGRESS_INTERVAL_SECONDS = 0.1


class WeightsError(FitStudioError):
    """A weight file that cannot be had or used; the message says why."""


class DownloadCancelled(WeightsError):
    """The user stopped the download."""


@dataclass(frozen=True)
class Weights:
    """A backbone's ImageNet weights: where they came from, or why there are none."""

    model: str
    file_name: str  # Keras's name for the file
    path: str | None  # the file in the cache; None when there are no weights
    origin: str  # "cache", "download", or "" when there are none
    url: str  # where they were, or would be, downloaded from
    problem: str = ""
    sha256: str = ""  # of the file used; "" when there is none
    verified: str = ""  # how the file was checked to be the one wanted
    copy: str = ""  # the copy of `path` the backbone loads, when not `path` (a Ray worker's own)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def weight_file_name(model: str, image_size: int) -> str:
    """The file name Keras looks up for `model`'s headless ImageNet weights at `image_size` px."""
    _check_backbone(model)
    if model == "mobilenetv2":
        # Keras has MobileNetV2 weights for five input sizes and uses the 224 px ones for any other.
        size = image_size if image_size in _MOBILENET_SIZES else 224
        return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5"
    return "efficientnetb0_notop.h5"


def weights_cache_dir() -> str:
    """Keras's cache of downloaded files: $KERAS_HOME/models, else ~/.keras/models."""
    keras_home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(keras_home, "models")


def cached_weights_path(model: str, image_size: int) -> str:
    return os.path.join(weights_cache_dir(), weight_file_name(model, image_size))


def weights_url(model: str, image_size: int, base_url: str = "") -> str:
    """`base_url`, else $FITSTUDIO_WEIGHTS_URL, else Keras's own server, with Keras's file name appended."""
    base = base_url.strip() or os.environ.get(WEIGHTS_URL_ENV, "").strip() or KERAS_BASE_URLS[model]
    return base.rstrip("/") + "/" + urllib.parse.quote(weight_file_name(model, image_size))


def where_to_put_weights(model: str, image_size: int, base_url: str = "") -> str:
    """Tells an offline user which file to get and where it goes."""
    return (
        f"To use transfer learning offline, get {weight_file_name(model, image_size)} (from "
        f"{weights_url(model, image_size, base_url)}) and put it in {weights_cache_dir()}, or choose "
        "“Import weights…” in the window."
    )


def obtain_weights(
    model: str,
    image_size: int,
    base_url: str = "",
    on_event: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
    timeout: float = STALL_TIMEOUT_SECONDS,
) -> Weights:
    """The cached weight file, else a fresh download of it; with `path` None and a `problem` when
    neither worked. Never raises for a network, file or hash problem, so a run falls back to random
    weights. A cached file that is not the one expected is fetched again, as Keras does."""
    url = weights_url(model, image_size, base_url)
    found = Weights(model, weight_file_name(model, image_size), None, "", url)
    path = cached_weights_path(model, image_size)
    stale = ""  # why the cached file is not used
    if os.path.isfile(path):
        try:
            sha256, verified = check_cached_weights(path, model, image_size)
            return replace(found, path=path, origin="cache", sha256=sha256, verified=verified)
        except (WeightsError, OSError) as exc:
            stale = f"{exc}; "
    if os.environ.get(OFFLINE_ENV) == "1":
        missing = "" if stale else f"{found.file_name} is not in {weights_cache_dir()} and "
        return replace(found, problem=f"{stale}{missing}{OFFLINE_ENV}=1 forbids downloading it")
    try:
        sha256, verified = download_weights(model, image_size, base_url, on_event, cancel, timeout)
    except WeightsError as exc:
        return replace(found, problem=f"{stale}{exc}")
    return replace(found, path=path, origin="download", sha256=sha256, verified=verified)


def download_weights(
    model: str,
    image_size: int,
    base_url: str = "",
    on_event: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
    timeout: float = STALL_TIMEOUT_SECONDS,
) -> tuple[str, str]:
    """Downloads the weight file into the cache, keeping it only if it has the expected hash and
    loads; returns its SHA-256 and how it was verified.

    Emits DownloadProgress events (the last one with done=True, whatever the outcome). Raises
    DownloadCancelled when `cancel` is set, WeightsError for anything else that went wrong.
    """
    url = weights_url(model, image_size, base_url)
    target = cached_weights_path(model, image_size)
    expected = expected_hash(model, image_size)  # a bad $FITSTUDIO_WEIGHTS_SHA256 fails before the network
    emit = on_event or _ignore
    progress = _ProgressReporter(emit, os.path.basename(target), url)
    checked: list[tuple[str, str]] = []

    def fetch_and_check(partial: str) -> None:
        _fetch(url, partial, progress, cancel or threading.Event(), timeout)
        checked.append(_check_hash(partial, expected, shown_as=url))
        check_weight_file(partial, model, image_size, shown_as=url)

    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        files.write_atomic(target, fetch_and_check)
    except OSError as exc:  # the cache folder is not writable, the disk is full
        raise WeightsError(f"could not write {target}: {exc}") from None
    finally:
        progress.finish()
    return checked[0]


def import_weights(source: str, model: str, image_size: int) -> str:
    """Copies a weight file the user has into the cache, under the name a run with `model` at
    `image_size` px looks up, after checking it loads into that architecture. Returns the new path.
    A record of its SHA-256 beside it marks it as the user's choice: runs use it whatever its hash."""
    if not os.path.isfile(source):
        raise WeightsError(f"{source} is not a file.")
    target = cached_weights_path(model, image_size)

    def copy_and_check(partial: str) -> None:
        shutil.copyfile(source, partial)
        check_weight_file(partial, model, image_size, shown_as=source)
        # Written before the file: a record whose hash matches no file is ignored, so a failure
        # at any step leaves no file trusted that was not checked.
        files.write_json(target + IMPORT_RECORD_SUFFIX, {"sha256": weights_sha256(partial), "source": source})

    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        files.write_atomic(target, copy_and_check)
    except OSError as exc:
        raise WeightsError(f"Could not copy {source} to {target}: {exc}") from None
    return target


def weights_sha256(path: str) -> str:
    """The SHA-256 (hex) of the file at `path`: what identifies a weight file, e.g. in the feature
    cache's key. Read once per (path, size, modification time): every run on a backbone asks."""
    status = os.stat(path)
    key = (os.path.realpath(path), status.st_size, status.st_mtime_ns)
    with _sha256_lock:
        known = _sha256_of.get(key)
    if known is None:
        known = _digests(path)["sha256"]
        with _sha256_lock:
            _sha256_of[key] = known
    return known


_sha256_lock = threading.Lock()
_sha256_of: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class ExpectedHash:
    value: str  # lowercase hex
    algorithm: str  # "sha256" or "md5"
    source: str  # who says so, for messages


def expected_hash(model: str, image_size: int) -> ExpectedHash | None:
    """$FITSTUDIO_WEIGHTS_SHA256, else the hash Keras publishes for the file, else None (Keras
    publishes none). Raises WeightsError when the variable is set but is not a SHA-256."""
    given = os.environ.get(WEIGHTS_SHA256_ENV, "").strip().lower()
    if given:
        if not re.fullmatch(r"[0-9a-f]{64}", given):
            raise WeightsError(f"{WEIGHTS_SHA256_ENV}={given!r} is not a SHA-256 (64 hexadecimal digits)")
        return ExpectedHash(given, "sha256", WEIGHTS_SHA256_ENV)
    published = KERAS_PUBLISHED_HASHES.get(weight_file_name(model, image_size))
    if published is None:
        return None
    return ExpectedHash(published, "sha256" if len(published) == 64 else "md5", "Keras")


def check_cached_weights(path: str, model: str, image_size: int) -> tuple[str, str]:
    """(SHA-256, how it was verified) of the cached weight file at `path`. Raises WeightsError when
    it is neither the file the user imported nor has the expected hash."""
    digests = _digests(path)
    record = _import_record(path)
    if record.get("sha256") == digests["sha256"]:
        return digests["sha256"], f"imported by the user from {record.get('source', '?')}; it loads"
    return _check_hash(path, expected_hash(model, image_size), shown_as=path, digests=digests,
                       outcome="it is not used")


def _check_hash(path: str, expected: ExpectedHash | None, shown_as: str,
                digests: dict[str, str] | None = None, outcome: str = "it was not kept") -> tuple[str, str]:
    """(SHA-256, how it was verified); WeightsError giving both hashes and `outcome` when `path`
    does not match."""
    digests = digests or _digests(path)
    sha256 = digests["sha256"]
    if expected is None:
        return sha256, "loads; Keras publishes no hash for this file"
    actual = digests[expected.algorithm]
    name = "SHA-256" if expected.algorithm == "sha256" else "MD5"
    if actual != expected.value:
        also = "" if expected.algorithm == "sha256" else f" (SHA-256 {sha256})"
        raise WeightsError(
            f"{shown_as} is not the file expected: its {name} is {actual}{also}, but {expected.source} "
            f"gives {expected.value}; {outcome}"
        )
    return sha256, f"{name} matches the one {expected.source} gives"


def _digests(path: str) -> dict[str, str]:
    """{"sha256": ..., "md5": ...} of a file, read once."""
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            sha256.update(chunk)
            md5.update(chunk)
    return {"sha256": sha256.hexdigest(), "md5": md5.hexdigest()}


def _import_record(path: str) -> dict[str, Any]:
    try:
        record = files.read_json(path + IMPORT_RECORD_SUFFIX)
    except (OSError, ValueError):  # none, or damaged: the file is then checked like any other
        return {}
    return record if isinstance(record, dict) else {}


def check_weight_file(path: str, model: str, image_size: int, shown_as: str = "") -> None:
    """Raises WeightsError unless `path` is an HDF5 weight file that loads into `model`'s headless
    backbone. `shown_as` names the file in the message (the URL or the user's file)."""
    name = shown_as or path
    architecture = ARCHITECTURE_NAMES[model]
    with open(path, "rb") as handle:
        if handle.read(len(_HDF5_SIGNATURE)) != _HDF5_SIGNATURE:
            raise WeightsError(
                f"{name} is not a weight file (it is not HDF5: an error or login page, or another "
                f"kind of file). Keras's {architecture} weights are {weight_file_name(model, image_size)}."
            )
    try:
        build_backbone(model, image_size, weights=path)
    except Exception as exc:  # h5py and Keras raise OSError, ValueError, KeyError for bad files
        raise WeightsError(
            f"{name} does not load into {architecture} without its top ({type(exc).__name__}: {exc}). "
            f"The file needed is {weight_file_name(model, image_size)}."
        ) from None


def build_backbone(model: str, image_size: int, weights: str | None = None):
    """`model`'s headless Keras backbone for square RGB input, with the weights of file `weights`."""
    from core.tf_runtime import load_keras

    keras = load_keras()
    _check_backbone(model)
    applications = {"mobilenetv2": keras.applications.MobileNetV2,
                    "efficientnetb0": keras.applications.EfficientNetB0}
    return applications[model](input_shape=(image_size, image_size, 3), include_top=False, weights=weights)


def _check_backbone(model: str) -> None:
    if model not in PRETRAINED_MODELS:
        raise ValueError(f"{model!r} has no pretrained backbone; one of {', '.join(PRETRAINED_MODELS)} has")


def _ignore(event: Event) -> None:
    pass


class _ProgressReporter:
    """Turns bytes received into DownloadProgress events, at most every _PROGRESS_INTERVAL_SECONDS."""

    def __init__(self, emit: Callable[[Event], None], file_name: str, url: str):
        self.emit, self.file_name, self.url = emit, file_name, url
        self.received, self.total = 0, None
        self._last = 0.0

    def start(self, total: int | None) -> None:
        self.total = total
        self._send(done=False)

    def add(self, count: int) -> None:
        self.received += count
        if time.monotonic() - self._last >= _PROGRESS_INTERVAL_SECONDS:
            self._send(done=False)

    def finish(self) -> None:
        self._send(done=True)

    def _send(self, done: bool) -> None:
        self._last = time.monotonic()
        self.emit(DownloadProgress(self.file_name, self.url, self.received, self.total, done))


def _fetch(url: str, path: str, progress: _ProgressReporter, cancel: threading.Event, timeout: float) -> None:
    """Writes the body of `url` to `path`. The network is read on a helper thread, so this thread
    can give up within _POLL_SECONDS of a cancel, or once the server sent nothing for `timeout` s."""
    chunks: queue.Queue = queue.Queue()
    stop = threading.Event()
    reader = threading.Thread(
        target=_read_url, args=(url, timeout, chunks, stop), name="FitStudio weights download", daemon=True
    )
    reader.start()
    last_data = time.monotonic()
    try:
        with open(path, "wb") as out:
            while True:
                try:
                    kind, payload = chunks.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    if cancel.is_set():
                        raise DownloadCancelled("the download was cancelled") from None
                    if time.monotonic() - last_data > timeout:
                        raise WeightsError(f"{url} sent nothing for {timeout:g} s") from None
                    continue
                last_data = time.monotonic()
                if kind == "error":
                    raise WeightsError(_describe_network_error(url, payload, timeout))
                if kind == "start":
                    progress.start(payload)
                elif kind == "data":
                    _check_first_bytes(url, out.tell(), payload)
                    out.write(payload)
                    progress.add(len(payload))
                else:  # "end"
                    break
                if cancel.is_set():
                    raise DownloadCancelled("the download was cancelled")
    finally:
        stop.set()  # the reader ends after its current read, at the latest after `timeout`
    if progress.total is not None and progress.received != progress.total:
        raise WeightsError(
            f"the download from {url} broke off after {progress.received:,} of {progress.total:,} bytes"
        )


def _check_first_bytes(url: str, offset: int, data: bytes) -> None:
    # Fails fast on a captive portal's or proxy's HTML page instead of downloading all of it.
    if offset == 0 and not data.startswith(_HDF5_SIGNATURE[: len(data)]):
        raise WeightsError(f"{url} did not send a weight file (an error or login page?)")


def _read_url(url: str, timeout: float, chunks: queue.Queue, stop: threading.Event) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            chunks.put(("start", response.length))  # None when the server does not say
            while not stop.is_set():
                data = response.read(_CHUNK_BYTES)
                if not data:
                    break
                chunks.put(("data", data))
        chunks.put(("end", None))
    except Exception as exc:  # every failure is reported to the waiting thread
        chunks.put(("error", exc))


def _describe_network_error(url: str, exc: BaseException, timeout: float) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"{url} answered {exc.code} {exc.reason}"
    if isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError):
        return f"{url} sent nothing for {timeout:g} s"
    if isinstance(exc, urllib.error.URLError):
        return f"could not reach {urllib.parse.urlsplit(url).netloc or url}: {exc.reason}"
    return f"downloading {url} failed: {type(exc).__name__}: {exc}"
