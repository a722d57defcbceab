"""Fixing a dataset by hand, safely: move an image to another class, set it aside, or mark a finding
of the dataset doctor as "not a problem". Nothing is ever deleted.

Each dataset root (a folder of class subfolders) keeps two small files beside its class folders,
which the scanner ignores because it only looks at folders:

    fitstudio-moves.json   every move and every undo, newest last, so any move can be undone
    fitstudio-kept.json    the findings a person looked at and kept (content keys, never paths)

Images set aside go to `_quarantine/<class>/...` inside the root, a folder the scanner skips
(core.data.dataset.QUARANTINE_DIR). A move renames the file within the root (one step on one
file system); when it cannot happen (a name clash, a read-only folder, a vanished file) it raises
MoveError saying why, and both files stay as they were. The log is written after the rename; if
that fails the rename is reverted, so the log never misses a move.

A dataset can come from someone else, log included, so the log is not trusted: each of its paths is
resolved (core.paths.inside) and must name a file in a folder of the root. An entry that does not
(`../`, an absolute path, a class folder linked to somewhere else) is read back refused, "outside
this dataset", and is never carried out. No move or undo ever replaces an existing file, even one
that appears between the check and the rename (`_rename_no_replace`).
"""

from __future__ import annotations

import errno
import os
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from core import files
from core.data.dataset import QUARANTINE_DIR, list_classes
from core.errors import FitStudioError
from core.paths import inside

MOVES_FILE = "fitstudio-moves.json"
KEPT_FILE = "fitstudio-kept.json"
MOVE_ACTIONS = ("relabel", "quarantine", "label")
OUTSIDE = "outside this dataset"  # Move.refused of a log entry that points out of the root
# What a file system without hard links answers to os.link (FAT, exFAT, some network shares).
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK}
_NO_HARD_LINKS_WINDOWS = {1, 50}  # ERROR_INVALID_FUNCTION, ERROR_NOT_SUPPORTED


class MoveError(FitStudioError):
    """A move or an undo that could not be done; nothing was changed."""


@dataclass(frozen=True)
class Move:
    id: str
    action: str  # "relabel" (to another class folder), "quarantine", or "label" (in from `origin`)
    source: str  # path relative to the root (to `origin` for "label"), "/"-separated, before the move
    target: str  # relative to the root, after it
    at: str
    undone: bool = False
    refused: str = ""  # OUTSIDE when a path of this log entry leaves the root: it is never undone
    origin: str = ""  # "label": the real path of the unlabeled folder the image came from

    def describe(self) -> str:
        verb = {"quarantine": "Set aside", "label": "Labeled"}.get(self.action, "Moved")
        return f"{verb} {self.source} -> {self.target}"


def move_to_class(root: str, path: str, class_name: str) -> Move:
    """Moves the image `path` (below `root`) into the class folder `class_name`, keeping its name."""
    source = _existing_image(root, path)
    classes = list_classes(root)
    if class_name not in classes:
        raise MoveError(
            f"'{class_name}' is not a class folder of {root}. Choose one of: {', '.join(classes)}."
        )
    target = _file_inside(root, os.path.join(root, class_name, os.path.basename(source)))
    if target is None:
        raise MoveError(f"The class folder {class_name} lies {OUTSIDE} (it is linked to another "
                        "place). Nothing was changed.")
    return _move(root, "relabel", source, target)


def quarantine(root: str, path: str) -> Move:
    """Sets `path` aside in `<root>/_quarantine/`, under the same relative path."""
    source = _existing_image(root, path)
    target = _file_inside(root, os.path.join(root, QUARANTINE_DIR, _relative(root, source)))
    if target is None:
        raise MoveError(f"{os.path.join(root, QUARANTINE_DIR)} lies {OUTSIDE} (it is linked to another "
                        "place). Nothing was changed.")
    return _move(root, "quarantine", source, target)


def label_into(root: str, origin: str, source: str, target: str) -> Move:
    """Moves `source`, a file in the folder `origin` outside the dataset (an unlabeled folder), to
    `target` in a class folder of `root`, logged as a "label" move. Its undo puts the image back
    only into `origin`, and only for a caller that has that folder open (see undo)."""
    checked_source, checked_target = inside(origin, source), _file_inside(root, target)
    if checked_source is None or checked_target is None:
        raise MoveError(f"{source} -> {target} would leave its folder. Nothing was changed.")
    real_origin = os.path.realpath(origin)
    return _move(root, "label", checked_source, checked_target, origin=real_origin)


def undo(root: str, move_id: str, origin: str | None = None) -> Move:
    """Puts the image of move `move_id` back where it was; returns the undone move. A log entry that
    points outside the root is refused (MoveError) and nothing is touched. A "label" move goes back
    into the unlabeled folder it came from, which the caller names as `origin` (the folder the user
    has open): the log alone can never aim an undo outside the dataset."""
    entries = _read_log(root)
    move = next((m for m in read_moves(root) if m.id == move_id), None)
    if move is None:
        raise MoveError(f"No move {move_id} in the log of {root}.")
    if move.undone:
        raise MoveError(f"{move.describe()} was already undone.")
    source_root = root
    if move.action == "label":
        if origin is None or os.path.realpath(origin) != move.origin:
            raise MoveError(f"{move.describe()} came from the unlabeled folder {move.origin}: undo it in "
                            "the Label tab with that folder open. Nothing was changed.")
        source_root = origin
    current = _file_inside(root, _logged(root, move.target))
    original = _source_inside(source_root, move.source, labeled=move.action == "label")
    if move.refused or current is None or original is None:
        raise MoveError(f"Refused: {move.describe()} points {OUTSIDE} ({root}); the log was not written "
                        "by FitStudio or the folders changed since. Nothing was changed.")
    if not _is_file(current):
        raise MoveError(f"Cannot undo: {current} is no longer there. Nothing was changed.")
    _rename(current, original, make_folder=True)
    entries.append({"id": uuid.uuid4().hex[:12], "action": "undo", "undoes": move_id, "at": _now()})
    try:
        _write_log(root, entries)
    except OSError as exc:
        _rename_back(original, current, exc)
    return Move(**{**asdict(move), "undone": True})


def read_moves(root: str) -> list[Move]:
    """The moves in the log of `root`, oldest first, each marked undone or not, and refused when one
    of its paths lies outside the root. Entries that are not moves at all are left out."""
    entries = _read_log(root)
    undone = {e["undoes"] for e in entries if e.get("action") == "undo" and isinstance(e.get("undoes"), str)}
    moves = []
    for e in entries:
        if e.get("action") not in MOVE_ACTIONS or not _strings(e, "id", "source", "target"):
            continue
        origin = e.get("origin") if e["action"] == "label" else ""
        if not isinstance(origin, str) or (e["action"] == "label" and not os.path.isabs(origin)):
            continue
        source = _source_inside(origin or root, e["source"], labeled=bool(origin))
        target = _file_inside(root, _logged(root, e["target"]))
        refused = "" if source is not None and target is not None else OUTSIDE
        at = e["at"] if isinstance(e.get("at"), str) else ""
        moves.append(Move(e["id"], e["action"], e["source"], e["target"], at, e["id"] in undone, refused,
                          origin))
    return moves


def last_undoable(root: str) -> Move | None:
    moves = [m for m in read_moves(root) if not m.undone and not m.refused]
    return moves[-1] if moves else None


# --- "not a problem" ---------------------------------------------------------------------------


def kept_keys(root: str) -> set[str]:
    """The keys of the findings kept in `root` (empty when none, or the file is unreadable)."""
    data = _read_json(os.path.join(root, KEPT_FILE), {})
    kept = data.get("kept")
    if not isinstance(kept, list):
        return set()
    return {item["key"] for item in kept if isinstance(item, dict) and _strings(item, "key")}


def keep(root: str, key: str, description: str) -> None:
    """Remembers that the finding `key` is not a problem; raises MoveError when it cannot be saved."""
    path = os.path.join(root, KEPT_FILE)
    data = _read_json(path, {})
    earlier = data.get("kept", []) if isinstance(data.get("kept"), list) else []
    kept = [item for item in earlier if isinstance(item, dict) and item.get("key") != key]
    kept.append({"key": key, "what": description, "at": _now()})
    try:
        files.write_json(path, {"kept": kept})
    except OSError as exc:
        raise MoveError(f"Could not remember the choice in {path}: {exc.strerror or exc}.") from None


# --- moving ------------------------------------------------------------------------------------


def _move(root: str, action: str, source: str, target: str, origin: str = "") -> Move:
    entries = _read_log(root)
    _rename(source, target, make_folder=action == "quarantine")
    move = Move(uuid.uuid4().hex[:12], action, _relative(origin or root, source), _relative(root, target),
                _now(), origin=origin)
    entry = {k: v for k, v in asdict(move).items() if k not in ("undone", "refused") and (v or k != "origin")}
    try:
        _write_log(root, [*entries, entry])
    except OSError as exc:
        _rename_back(target, source, exc)
    return move


def _rename(source: str, target: str, make_folder: bool) -> None:
    folder = os.path.dirname(target)
    try:
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "exists", target)
        if make_folder:
            os.makedirs(folder, exist_ok=True)
        _rename_no_replace(source, target)
    except FileExistsError:
        raise MoveError(
            f"Cannot move {os.path.basename(source)}: {target} already exists. "
            "Rename one of the two files first. Nothing was changed."
        ) from None
    except OSError as exc:
        raise MoveError(
            f"Could not move {os.path.basename(source)} to {folder}: {exc.strerror or exc}. "
            "Nothing was changed."
        ) from None


def _rename_no_replace(source: str, target: str) -> None:
    """Renames `source` to `target` without ever replacing a file at `target`, even one that appears
    after the caller looked: raises FileExistsError then.

    A hard link claims the new name in one step that fails when the name is taken, then the old name
    goes (a crash in between leaves the image under both names, never under none). Where the file
    system has no hard links, an empty file created exclusively (O_EXCL) claims the name, and the
    rename replaces only that placeholder. os.replace/os.rename alone would replace a file silently
    on POSIX; renameat2(RENAME_NOREPLACE) would do it in one step, but on Linux only."""
    try:
        os.link(source, target, **_NO_FOLLOW)
    except FileExistsError:
        raise
    except OSError as exc:
        no_links = exc.errno in _NO_HARD_LINKS or getattr(exc, "winerror", None) in _NO_HARD_LINKS_WINDOWS
        if not no_links:
            raise
        _rename_over_placeholder(source, target)
        return
    try:
        os.unlink(source)
    except OSError:
        os.unlink(target)  # the second name of the same file: the image stays where it was
        raise


_NO_FOLLOW = {"follow_symlinks": False} if os.link in os.supports_follow_symlinks else {}


def _rename_over_placeholder(source: str, target: str) -> None:
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # FileExistsError when taken
    try:
        os.replace(source, target)
    except OSError:
        os.remove(target)
        raise


def _rename_back(current: str, original: str, cause: OSError) -> None:
    """The log could not be written: undo the rename so that disk and log still agree."""
    try:
        _rename_no_replace(current, original)
    except OSError as exc:
        raise MoveError(
            f"The move log could not be written ({cause.strerror or cause}) and {current} could not be "
            f"moved back to {original} ({exc.strerror or exc}). Move it back by hand."
        ) from None
    raise MoveError(f"The move log could not be written: {cause.strerror or cause}. Nothing was changed.")


# --- the log -----------------------------------------------------------------------------------


def _read_log(root: str) -> list[dict[str, Any]]:
    moves = _read_json(os.path.join(root, MOVES_FILE), {}).get("moves", [])
    return [entry for entry in moves if isinstance(entry, dict)] if isinstance(moves, list) else []


def _write_log(root: str, entries: list[dict[str, Any]]) -> None:
    files.write_json(os.path.join(root, MOVES_FILE), {"moves": entries})


def _read_json(path: str, default: dict) -> dict:
    try:
        data = files.read_json(path)
    except (OSError, ValueError):
        return default
    return data if isinstance(data, dict) else default


# --- paths ---------------------------------------------------------------------------------------


def _existing_image(root: str, path: str) -> str:
    """`path` resolved, checked to be a file in a folder below `root`."""
    resolved = _file_inside(root, path)
    if resolved is None:
        raise MoveError(f"{path} is not inside the dataset folder {root}: it lies {OUTSIDE} (through "
                        "'..' or a folder linked elsewhere). Nothing was changed.")
    if not _is_file(resolved):
        raise MoveError(f"{path} is no longer there. Nothing was changed.")
    return resolved


def _file_inside(root: str, path: str) -> str | None:
    """`path` resolved, when it names something in a folder of `root` (not the root's own files, such
    as the logs); None otherwise."""
    resolved = inside(root, path)
    if resolved is None or os.path.dirname(resolved) == os.path.realpath(root):
        return None
    return resolved


def _source_inside(folder: str, relative: str, labeled: bool) -> str | None:
    """Where a logged move's image came from, resolved: inside a class folder of the root, or
    anywhere below the unlabeled folder of a "label" move (whose images need no class folders)."""
    path = _logged(folder, relative)
    return inside(folder, path) if labeled else _file_inside(folder, path)


def _logged(root: str, relative: str) -> str:
    """A path as the log spells it, joined to the root: an absolute one stays absolute (and is then
    refused as outside), `..` stays in (and is resolved)."""
    return os.path.join(root, relative.replace("/", os.sep))


def _strings(entry: dict[str, Any], *keys: str) -> bool:
    return all(isinstance(entry.get(key), str) for key in keys)


def _is_file(path: str) -> bool:
    return os.path.islink(path) or os.path.isfile(path)


def _relative(root: str, path: str) -> str:
    return os.path.relpath(path, os.path.realpath(root)).replace(os.sep, "/")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
