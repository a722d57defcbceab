"""Moving a folder to the system trash and bringing it back: the Runs tab never deletes a run.

`QFile.moveToTrash` does the platform's work (the freedesktop.org trash on Linux, the Recycle Bin,
the macOS Trash) and says where the folder went, so it can be moved back while the window is open.
On Linux the trash also holds a `.trashinfo` note per item; restoring removes it, or the trash would
list an item that is no longer there. `restore_batch` brings back one Undo's worth of folders and says
which could not come back, so the caller can keep those undoable.
"""

from __future__ import annotations

import contextlib
import os
import shutil

from PySide6.QtCore import QFile


class TrashError(Exception):
    """str(exc) says what happened and that nothing was deleted."""


def move_to_trash(path: str) -> str:
    """Moves `path` to the trash; returns where it is now. Raises TrashError when the system has no
    trash for it (the folder is then left where it was)."""
    item = QFile(path)
    if not item.moveToTrash():
        raise TrashError(
            f"{path} could not be moved to the trash (this system or drive has none, or the folder is "
            "in use). Nothing was deleted."
        )
    return item.fileName()  # Qt renames the QFile to the item's path in the trash


def restore_from_trash(trashed: str, original: str) -> None:
    """Moves `trashed` back to `original`. Raises TrashError when that cannot be done (the item was
    emptied from the trash, or a folder of that name exists again)."""
    if not os.path.exists(trashed):
        raise TrashError(f"{os.path.basename(original)} is no longer in the trash: it cannot be restored.")
    if os.path.exists(original):
        raise TrashError(f"{original} exists again: move it away first, then undo.")
    try:
        shutil.move(trashed, original)
    except OSError as exc:
        raise TrashError(f"{os.path.basename(original)} could not be restored: {exc}") from None
    _forget_trash_note(trashed)


def restore_batch(batch: list[tuple[str, str]]) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """Restores each (original, trashed) pair of `batch`. Returns (the originals restored, the pairs
    still to restore, one message per failure). A pair whose item is no longer in the trash cannot
    come back by any undo and is not among those still to restore; the others (a folder of that name
    exists again, a read-only folder) are, so that Undo can try them again once the cause is gone."""
    restored, remaining, messages = [], [], []
    for original, trashed in batch:
        try:
            restore_from_trash(trashed, original)
        except TrashError as exc:
            messages.append(str(exc))
            if os.path.exists(trashed):
                remaining.append((original, trashed))
        else:
            restored.append(original)
    return restored, remaining, messages


def _forget_trash_note(trashed: str) -> None:
    files_dir = os.path.dirname(trashed)
    if os.path.basename(files_dir) != "files":
        return  # not a freedesktop.org trash: nothing is kept beside the item
    note = os.path.join(os.path.dirname(files_dir), "info", os.path.basename(trashed) + ".trashinfo")
    with contextlib.suppress(OSError):
        os.remove(note)
