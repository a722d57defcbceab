"""Fixing a dataset by hand, safely: move an image to another class, set it aside, or mark a finding
of the dataset doctor as "not a problem". Nothing is ever deleted.

Each dataset root (a folder of class subfolders) keeps two small files beside its class folders,
which the scanner ignores because it only looks at folders:

    fitstudio-moves.json   every move and every undo, newest last, so any move can be undone
    fitstudio-kept.json    the findings a person looked at and kept

Images set aside go to `_quarantine/<class>/...` inside the root, a folder the scanner skips
(core.data.dataset.QUARANTINE_DIR). A move renames the file within the root (one step on one
file system); when it cannot happen (a name clash, a read-only folder, a vanished file) it raises
MoveError saying why, and both files stay as they were. The log is written after the rename; if
that fails the rename is reverted, so the log never misses a move.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from core import files
from core.data.dataset import QUARANTINE_DIR, list_classes
from core.errors import FitStudioError

MOVES_FILE = "fitstudio-moves.json"
KEPT_FILE = "fitstudio-kept.json"


class MoveError(FitStudioError):
    """A move or an undo that could not be done; nothing was changed."""


@dataclass(frozen=True)
class Move:
    id: str
    action: str  # "relabel" (to another class folder) or "quarantine"
    source: str  # path relative to the root, "/"-separated, before the move
    target: str  # and after it
    at: str
    undone: bool = False

    def describe(self) -> str:
        verb = "Set aside" if self.action == "quarantine" else "Moved"
        return f"{verb} {self.source} -> {self.target}"


def move_to_class(root: str, path: str, class_name: str) -> Move:
    """Moves the image `path` (below `root`) into the class folder `class_name`, keeping its name."""
    source = _inside(root, path)
    classes = list_classes(root)
    if class_name not in classes:
        raise MoveError(
            f"'{class_name}' is not a class folder of {root}. Choose one of: {', '.join(classes)}."
        )
    target = os.path.join(root, class_name, os.path.basename(source))
    return _move(root, "relabel", source, target)


def quarantine(root: str, path: str) -> Move:
    """Sets `path` aside in `<root>/_quarantine/`, under the same relative path."""
    source = _inside(root, path)
    target = os.path.join(root, QUARANTINE_DIR, os.path.relpath(source, root))
    return _move(root, "quarantine", source, target)


def undo(root: str, move_id: str) -> Move:
    """Puts the image of move `move_id` back where it was; returns the undone move."""
    entries = _read_log(root)
    move = next((m for m in read_moves(root) if m.id == move_id), None)
    if move is None:
        raise MoveError(f"No move {move_id} in the log of {root}.")
    if move.undone:
        raise MoveError(f"{move.describe()} was already undone.")
    current, original = _absolute(root, move.target), _absolute(root, move.source)
    if not os.path.isfile(current):
        raise MoveError(f"Cannot undo: {current} is no longer there. Nothing was changed.")
    _rename(current, original, make_folder=True)
    entries.append({"id": uuid.uuid4().hex[:12], "action": "undo", "undoes": move_id, "at": _now()})
    try:
        _write_log(root, entries)
    except OSError as exc:
        _rename_back(original, current, exc)
    return Move(**{**asdict(move), "undone": True})


def read_moves(root: str) -> list[Move]:
    """The moves in the log of `root`, oldest first, each marked undone or not."""
    entries = _read_log(root)
    undone = {entry.get("undoes") for entry in entries if entry.get("action") == "undo"}
    return [
        Move(e["id"], e["action"], e["source"], e["target"], e.get("at", ""), e["id"] in undone)
        for e in entries
        if e.get("action") in ("relabel", "quarantine") and {"id", "source", "target"} <= e.keys()
    ]


def last_undoable(root: str) -> Move | None:
    moves = [m for m in read_moves(root) if not m.undone]
    return moves[-1] if moves else None


# --- "not a problem" ---------------------------------------------------------------------------


def kept_keys(root: str) -> set[str]:
    """The keys of the findings kept in `root` (empty when none, or the file is unreadable)."""
    data = _read_json(os.path.join(root, KEPT_FILE), {})
    return {item["key"] for item in data.get("kept", []) if isinstance(item, dict) and "key" in item}


def keep(root: str, key: str, description: str) -> None:
    """Remembers that the finding `key` is not a problem; raises MoveError when it cannot be saved."""
    path = os.path.join(root, KEPT_FILE)
    data = _read_json(path, {})
    kept = [item for item in data.get("kept", []) if isinstance(item, dict) and item.get("key") != key]
    kept.append({"key": key, "what": description, "at": _now()})
    try:
        files.write_json(path, {"kept": kept})
    except OSError as exc:
        raise MoveError(f"Could not remember the choice in {path}: {exc.strerror or exc}.") from None


# --- moving ------------------------------------------------------------------------------------


def _move(root: str, action: str, source: str, target: str) -> Move:
    entries = _read_log(root)
    _rename(source, target, make_folder=action == "quarantine")
    move = Move(uuid.uuid4().hex[:12], action, _relative(root, source), _relative(root, target), _now())
    entry = {k: v for k, v in asdict(move).items() if k != "undone"}
    try:
        _write_log(root, [*entries, entry])
    except OSError as exc:
        _rename_back(target, source, exc)
    return move


def _rename(source: str, target: str, make_folder: bool) -> None:
    if os.path.lexists(target):
        raise MoveError(
            f"Cannot move {os.path.basename(source)}: {target} already exists. "
            "Rename one of the two files first. Nothing was changed."
        )
    folder = os.path.dirname(target)
    try:
        if make_folder:
            os.makedirs(folder, exist_ok=True)
        os.rename(source, target)
    except OSError as exc:
        raise MoveError(
            f"Could not move {os.path.basename(source)} to {folder}: {exc.strerror or exc}. "
            "Nothing was changed."
        ) from None


def _rename_back(current: str, original: str, cause: OSError) -> None:
    """The log could not be written: undo the rename so that disk and log still agree."""
    try:
        os.rename(current, original)
    except OSError as exc:
        raise MoveError(
            f"The move log could not be written ({cause.strerror or cause}) and {current} could not be "
            f"moved back to {original} ({exc.strerror or exc}). Move it back by hand."
        ) from None
    raise MoveError(f"The move log could not be written: {cause.strerror or cause}. Nothing was changed.")


# --- the log -----------------------------------------------------------------------------------


def _read_log(root: str) -> list[dict[str, Any]]:
    data = _read_json(os.path.join(root, MOVES_FILE), {})
    return [entry for entry in data.get("moves", []) if isinstance(entry, dict)]


def _write_log(root: str, entries: list[dict[str, Any]]) -> None:
    files.write_json(os.path.join(root, MOVES_FILE), {"moves": entries})


def _read_json(path: str, default: dict) -> dict:
    try:
        data = files.read_json(path)
    except (OSError, ValueError):
        return default
    return data if isinstance(data, dict) else default


def _inside(root: str, path: str) -> str:
    """`path` as an absolute path, checked to be a file below `root`."""
    absolute = os.path.abspath(path)
    if os.path.commonpath([absolute, os.path.abspath(root)]) != os.path.abspath(root):
        raise MoveError(f"{path} is not inside the dataset folder {root}.")
    if not os.path.isfile(absolute):
        raise MoveError(f"{path} is no longer there. Nothing was changed.")
    return absolute


def _relative(root: str, path: str) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")


def _absolute(root: str, relative: str) -> str:
    return os.path.join(os.path.abspath(root), *relative.split("/"))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")

