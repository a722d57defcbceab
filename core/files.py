"""Writing files so that a crash at any moment leaves either the old file or the new one, never half of
one: each file is written to a temporary name, flushed, then renamed over the old one."""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterable
from typing import Any


def write_atomic(path: str, write: Callable[[str], None]) -> None:
    """Calls write(temporary_path), then renames it over `path` in one step.

    The temporary name is this process's own (pid and a random part), so two processes writing the
    same file at once (Ray workers fetching one cache file) never write or delete each other's."""
    base, extension = os.path.splitext(path)
    # Keras insists that model files end in .keras: the extension stays last.
    partial = f"{base}.partial-{os.getpid()}-{secrets.token_hex(4)}{extension}"
    try:
        if os.path.lexists(partial):  # a link planted to make us write elsewhere (a guessed name)
            os.remove(partial)
        write(partial)
        _flush_to_disk(partial)  # else a power cut can leave the renamed file empty
        os.replace(partial, path)
        _flush_to_disk(os.path.dirname(path) or ".")
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def _flush_to_disk(path: str) -> None:
    if os.name != "posix" and os.path.isdir(path):
        return  # directories cannot be opened for fsync on Windows
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_text(path: str, text: str) -> None:
    def write(target: str) -> None:
        with open(target, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)

    write_atomic(path, write)


def write_json(path: str, data: dict[str, Any]) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_csv(path: str, header: list[str], rows: Iterable[list]) -> None:
    """A CSV file, written atomically; its folder is created when missing."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def copy_file(source: str, target: str) -> None:
    write_atomic(target, lambda partial: shutil.copyfile(source, partial))


def read_json(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
