"""What data a run trained on: a fingerprint for report.json and a manifest to name changed files.

Both come from the file sets the run already scanned (one `os.stat` per file, no second walk).

    fingerprint   per split: a SHA-256 of the sorted relative paths with their sizes and modification
                  times, the file count and the class counts; plus one `hash` over both splits.
                  Two runs on the same data show the same fingerprint.
    manifest      per dataset folder (the training folder, and the validation folder when there is
                  one): every image's relative path, size and modification time. A later run (a
                  resume, or a run "like" this one) compares its own manifest with it and names the
                  files that were added, removed or changed (`compare`).

Relative paths use "/" on every system, so a fingerprint means the same on Windows and Linux.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from core import files
from core.data.dataset import FileSet

MANIFEST_FORMAT = 1
NAMES_SHOWN = 5  # changed files named per kind in a warning; the rest are counted

Entry = tuple[str, int, int]  # relative path, size in bytes, modification time in nanoseconds


@dataclass(frozen=True)
class DataChanges:
    """How one dataset folder differs from an earlier manifest of it."""

    folder: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.modified)

    def describe(self) -> str:
        parts = [
            f"{len(names)} {kind} ({_some(names)})"
            for kind, names in (("added", self.added), ("removed", self.removed), ("changed", self.modified))
            if names
        ]
        return f"in {self.folder}: " + "; ".join(parts)


@dataclass(frozen=True)
class DatasetSnapshot:
    fingerprint: dict[str, Any]
    manifest: dict[str, Any]

    @classmethod
    def take(cls, train: FileSet, val: FileSet, train_dir: str, val_dir: str | None) -> DatasetSnapshot:
        """`val` comes from `val_dir`, or, when that is None, from a split of `train_dir`."""
        val_root = val_dir or train_dir
        train_entries = _entries(train.paths, train_dir)
        val_entries = _entries(val.paths, val_root)
        fingerprint = {
            "train": _split_fingerprint(train_entries, train.counts()),
            "val": _split_fingerprint(val_entries, val.counts()),
        }
        fingerprint["hash"] = _sha256(f"{fingerprint['train']['hash']}\n{fingerprint['val']['hash']}\n")
        folders = {"train": (train_dir, train_entries)}
        if val_dir:
            folders["val"] = (val_dir, val_entries)
        else:
            folders["train"] = (train_dir, sorted(train_entries + val_entries))
        manifest = {
            "format": MANIFEST_FORMAT,
            "folders": {
                role: {"path": os.path.abspath(folder), "files": [list(entry) for entry in entries]}
                for role, (folder, entries) in folders.items()
            },
        }
        return cls(fingerprint, manifest)


def compare(earlier: dict[str, Any], now: dict[str, Any]) -> list[DataChanges]:
    """The changes in every dataset folder both manifests describe (same role, same path); a folder
    that is not the same one is not compared: it is other data, not changed data."""
    found = []
    for role, folder in now.get("folders", {}).items():
        before = earlier.get("folders", {}).get(role)
        if not before or os.path.normcase(before["path"]) != os.path.normcase(folder["path"]):
            continue
        old = {entry[0]: tuple(entry[1:]) for entry in before["files"]}
        new = {entry[0]: tuple(entry[1:]) for entry in folder["files"]}
        changes = DataChanges(
            folder=folder["path"],
            added=sorted(set(new) - set(old)),
            removed=sorted(set(old) - set(new)),
            modified=sorted(path for path in set(old) & set(new) if old[path] != new[path]),
        )
        if changes:
            found.append(changes)
    return found


def write_manifest(path: str, manifest: dict[str, Any]) -> None:
    """Gzipped compact JSON (tens of bytes per image), written atomically (core.files)."""
    data = gzip.compress(json.dumps(manifest, separators=(",", ":")).encode("utf-8"), mtime=0)

    def write(target: str) -> None:
        with open(target, "wb") as handle:
            handle.write(data)

    files.write_atomic(path, write)


def read_manifest(path: str) -> dict[str, Any] | None:
    """The manifest at `path`; None when there is none or it is unreadable or of another shape."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError, EOFError):
        return None
    valid = (
        isinstance(manifest, dict)
        and manifest.get("format") == MANIFEST_FORMAT
        and isinstance(manifest.get("folders"), dict)
        and all(_valid_folder(folder) for folder in manifest["folders"].values())
    )
    return manifest if valid else None


def _valid_folder(folder: Any) -> bool:
    return (
        isinstance(folder, dict)
        and isinstance(folder.get("path"), str)
        and isinstance(folder.get("files"), list)
        and all(isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
                for entry in folder["files"])
    )


def _entries(paths: list[str], root: str) -> list[Entry]:
    entries = []
    for path in paths:
        try:
            stat = os.stat(path)
            size, mtime = stat.st_size, stat.st_mtime_ns
        except OSError:  # gone since the scan: it counts as changed, and decoding will report it
            size, mtime = -1, 0
        entries.append((os.path.relpath(path, root).replace(os.sep, "/"), size, mtime))
    return sorted(entries)


def _split_fingerprint(entries: list[Entry], class_counts: dict[str, int]) -> dict[str, Any]:
    lines = "".join(f"{path}\t{size}\t{mtime}\n" for path, size, mtime in entries)
    return {"hash": _sha256(lines), "files": len(entries), "class_counts": class_counts}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    more = len(names) - NAMES_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown
