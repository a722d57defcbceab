"""Per-epoch checkpoints: everything needed to continue a run as if it had never stopped.

    checkpoints/epoch-0007.keras   weights and optimizer state (Adam moments, iteration count)
    checkpoints/epoch-0007.npz     the same as arrays, for a model the run rebuilds itself (the head
                                   that trains on cached features): a few kilobytes written in a
                                   millisecond, where a .keras file of it takes tens of milliseconds
    checkpoint.json                the commit point: epoch, config, the states of the model's random
                                   generators, and the saved state of every run callback (history,
                                   timings, best epoch, learning-rate bookkeeping, ...)

The model file is written first under a new name (and copied to model.keras when the epoch is the
best), then checkpoint.json is replaced in one rename, then older model files are deleted. Every
file is flushed to disk before its rename, so a process killed (or a machine losing power) at any
moment leaves checkpoint.json pointing at a complete model file. The data order needs no saving: it
is seeded by (seed, epoch).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from core import files
from core.errors import FitStudioError
from core.runs import run_folder
from core.tf_runtime import load_keras

CHECKPOINT_FILE = "checkpoint.json"
CHECKPOINT_DIR = "checkpoints"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    epoch: int  # the last finished epoch, 0-based
    model_file: str  # relative to the run folder
    config: dict[str, Any]
    history: list[dict[str, float]]
    epoch_stats: list[dict[str, float]]
    best: dict[str, float] | None
    seed_states: dict[str, list[int]]
    elapsed_seconds: float  # training time of all sessions so far
    last_lr_change_epoch: int = -1
    pretrained: bool | None = None
    weights_note: str = ""
    resumes: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # states of callbacks added after format 1
    format: int = FORMAT_VERSION

    def states(self) -> dict[str, Any]:
        """The run callbacks' saved states as one flat dict (core.training.callbacks.RunCallback)."""
        return {name: getattr(self, name) for name in _STATE_FIELDS} | self.extra

    @classmethod
    def from_states(cls, epoch: int, config: dict[str, Any], states: dict[str, Any]) -> Checkpoint:
        """A checkpoint holding `states`: keys of format 1 in their fields, any other key in `extra`."""
        known = {key: value for key, value in states.items() if key in _STATE_FIELDS}
        extra = {key: value for key, value in states.items() if key not in _STATE_FIELDS}
        return cls(epoch=epoch, model_file="", config=config, seed_states={}, **known, extra=extra)


_STATE_FIELDS = tuple(
    f.name for f in fields(Checkpoint) if f.name not in ("epoch", "model_file", "config", "seed_states",
                                                         "extra", "format")
)


def model_path(run_dir: str, epoch: int, arrays: bool = False) -> str:
    return os.path.join(run_dir, CHECKPOINT_DIR, f"epoch-{epoch + 1:04d}{'.npz' if arrays else '.keras'}")


def write(run_dir: str, model: Any, checkpoint: Checkpoint, copies: tuple[str, ...] = (),
          arrays: bool = False) -> str:
    """Saves the model (with `arrays`, its weights and optimizer state alone: `save_arrays`) and the
    state; returns the model file's path.

    `copies` (e.g. model.keras when this epoch is the best) are written from the model file before
    the commit, so a kill in between leaves them at worst ahead of checkpoint.json, never behind:
    the resumed run redoes that epoch exactly and writes the same file again.
    """
    path = model_path(run_dir, checkpoint.epoch, arrays)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if arrays:
        save_arrays(model, path)
    else:
        run_folder.save_model(model, path)
    for target in copies:
        files.copy_file(path, target)
    checkpoint.model_file = os.path.relpath(path, run_dir)
    checkpoint.seed_states = seed_states(model)
    files.write_json(os.path.join(run_dir, CHECKPOINT_FILE), asdict(checkpoint))
    for name in os.listdir(os.path.dirname(path)):
        if name != os.path.basename(path):
            os.remove(os.path.join(os.path.dirname(path), name))
    return path


def exists(run_dir: str) -> bool:
    return os.path.exists(os.path.join(run_dir, CHECKPOINT_FILE))


def read(run_dir: str) -> Checkpoint:
    """The run's last checkpoint; raises FitStudioError saying why a run cannot be resumed."""
    path = os.path.join(run_dir, CHECKPOINT_FILE)
    if not os.path.isdir(run_dir):
        raise FitStudioError(f"{run_dir} is not a run folder. Choose a folder under runs/.")
    if not os.path.exists(path):
        raise FitStudioError(
            f"{run_dir} has no checkpoint: the run ended before its first epoch finished, or it was "
            "made by an older version. Start a new run instead."
        )
    try:
        checkpoint = Checkpoint(**files.read_json(path))
    except (ValueError, TypeError) as exc:
        raise FitStudioError(f"The checkpoint of {run_dir} is unreadable ({exc}).") from None
    if not os.path.exists(os.path.join(run_dir, checkpoint.model_file)):
        raise FitStudioError(f"The checkpoint's model file {checkpoint.model_file} is missing in {run_dir}.")
    return checkpoint


def load_model(run_dir: str, checkpoint: Checkpoint) -> Any:
    """The checkpoint's model, compiled, with its optimizer and random-generator states restored."""
    keras = load_keras()

    model = keras.models.load_model(os.path.join(run_dir, checkpoint.model_file), safe_mode=True)
    restore_seed_states(model, checkpoint.seed_states)
    return model


def save_arrays(model: Any, path: str) -> None:
    """The model's weights and its optimizer's variables, in order, as one .npz file."""
    weights = model.get_weights()
    optimizer = [variable.numpy() for variable in model.optimizer.variables]
    arrays = {f"weight_{i}": value for i, value in enumerate(weights)}
    arrays |= {f"optimizer_{i}": value for i, value in enumerate(optimizer)}
    files.write_atomic(path, lambda target: np.savez(target, **arrays))


def load_arrays(path: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(weights, optimizer variables) as save_arrays wrote them, or of a .keras checkpoint (head
    checkpoints were whole .keras files until 2026-12-05: a run stopped then still resumes)."""
    if path.endswith(".keras"):
        saved = load_keras().models.load_model(path, safe_mode=True)
        return saved.get_weights(), [variable.numpy() for variable in saved.optimizer.variables]
    with np.load(path, allow_pickle=False) as saved:
        def numbered(prefix: str) -> list[np.ndarray]:
            names = sorted((name for name in saved.files if name.startswith(prefix)),
                           key=lambda name: int(name[len(prefix):]))
            return [saved[name] for name in names]

        return numbered("weight_"), numbered("optimizer_")


def seed_states(model: Any) -> dict[str, list[int]]:
    """Keras does not save the state of seeded random layers (dropout, augmentation); without it a
    resumed run would draw different random numbers than an uninterrupted one."""
    return {name: [int(v) for v in generator.state.numpy()] for name, generator in _seed_generators(model)}


def restore_seed_states(model: Any, states: dict[str, list[int]]) -> None:
    for name, generator in _seed_generators(model):
        if name in states:
            generator.state.assign(states[name])


def _seed_generators(model: Any):
    for layer in model._flatten_layers():
        for index, generator in enumerate(getattr(layer, "_seed_generators", None) or []):
            yield f"{layer.name}/{index}", generator
