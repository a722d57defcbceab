"""Labeling an image: moving it from a folder of unlabeled images into a class folder of a dataset.

The move is one of core.data.fixes's moves, in the dataset root's move log (fitstudio-moves.json)
with the action "label" and the unlabeled folder it came from: `fixes.undo(root, move.id,
origin=unlabeled_dir)` puts the image back there, and Data health lists it with the other moves.
The log alone cannot aim an undo out of the dataset: only a caller with that unlabeled folder open
(the Label tab) can send an image back into it.

The path must be a file inside the unlabeled folder, resolved with its links (a crafted
"unlabeled/../../elsewhere.jpg" or a link pointing out of the folder is refused). Nothing is ever
overwritten: when the class folder holds a file of that name, the image gets a free name beside it
("cat_001-2.jpg"). A missing class folder is made.
"""

from __future__ import annotations

import os

from core.data import fixes
from core.data.dataset import QUARANTINE_DIR
from core.data.fixes import Move, MoveError

_FREE_NAME_TRIES = 1000


def label_image(root: str, unlabeled_dir: str, path: str, class_name: str) -> Move:
    """Moves `path` (a file below `unlabeled_dir`) into `root/<class_name>/`; returns the logged Move.

    Raises MoveError saying why when it cannot (nothing is changed then)."""
    source = inside_folder(unlabeled_dir, path)
    check_separate(root, unlabeled_dir)
    folder = os.path.join(os.path.abspath(root), _class_folder_name(class_name))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise MoveError(f"Could not make the class folder {folder}: {exc.strerror or exc}.") from None
    target = free_name(folder, os.path.basename(source))
    return fixes.label_into(os.path.abspath(root), unlabeled_dir, source, target)


def inside_folder(folder: str, path: str) -> str:
    """`path` as a real absolute path, checked to be a file below `folder`; raises MoveError."""
    real_folder = os.path.realpath(folder)
    real = os.path.realpath(path)
    if real == real_folder or os.path.commonpath([real, real_folder]) != real_folder:
        raise MoveError(f"{path} is not inside the unlabeled folder {folder}; it was not touched.")
    if not os.path.isfile(real):
        raise MoveError(f"{path} is no longer there. Nothing was changed.")
    return real


def check_separate(root: str, unlabeled_dir: str) -> None:
    """The training folder and the unlabeled folder must not contain each other: labeled images
    would otherwise be ranked again, or unlabeled ones be taken for a class."""
    train, unlabeled = os.path.realpath(root), os.path.realpath(unlabeled_dir)
    if os.path.commonpath([train, unlabeled]) in (train, unlabeled):
        raise MoveError(
            f"The training folder {root} and the unlabeled folder {unlabeled_dir} overlap. "
            "Keep the unlabeled images in a folder of their own, outside the training folder."
        )


def free_name(folder: str, name: str) -> str:
    """`folder/name`, or `folder/<stem>-2<ext>`, -3, ... when that exists: never an existing file."""
    stem, extension = os.path.splitext(name)
    candidate = os.path.join(folder, name)
    for number in range(2, _FREE_NAME_TRIES):
        if not os.path.lexists(candidate):
            return candidate
        candidate = os.path.join(folder, f"{stem}-{number}{extension}")
    raise MoveError(f"{folder} holds {_FREE_NAME_TRIES} files named like {name}. Nothing was changed.")


def _class_folder_name(class_name: str) -> str:
    """The class name as one folder name; a name that would leave the root is refused."""
    bad = (
        not class_name
        or class_name in (".", "..", QUARANTINE_DIR)
        or class_name.startswith(".")
        or any(sep in class_name for sep in ("/", "\\", os.sep))
    )
    if bad:
        raise MoveError(f"'{class_name}' cannot be a class folder name. Nothing was changed.")
    return class_name
