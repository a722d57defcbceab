"""The runs index: every run folder under one or more roots, one RunInfo per run, for the `runs`
command and the window's Runs tab. Plain files, no TensorFlow.

A root is a folder that holds run folders (the default `runs/`, or any other output folder); a run
folder is a subfolder with any of config.json, report.json, checkpoint.json or labels.txt. A corrupt
one is listed with status "unreadable", never dropped and never an error. A sweep folder's trials
(core.runs.sweep_folder) are run folders one level further down, listed with the others.

Listing reads each run quickly (`read_run_info(with_history=False)`: report.json, no history).
`RunsIndex` keeps the rows it has read, keyed by the sizes and modification times of the run's files,
so listing again (the window refreshes when a run starts or ends) reads only runs that changed; a run
whose report says it is training is always read again, since only its process tells whether it still
runs. The curves of the runs a user selects are read with `read_run_info(run_dir)` when needed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from core.runs import checkpoints, run_folder
from core.runs.run_info import RunInfo, read_run_info
from core.runs.sweep_folder import is_sweep_dir

RUN_MARKERS = (run_folder.REPORT_FILE, run_folder.CONFIG_FILE, checkpoints.CHECKPOINT_FILE,
               run_folder.LABELS_FILE)
_WATCHED = (run_folder.REPORT_FILE, run_folder.CONFIG_FILE, checkpoints.CHECKPOINT_FILE)

FileKey = tuple[tuple[int, int] | None, ...]


class RunsIndex:
    """Lists runs, remembering each run's row until its files change."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[FileKey, RunInfo]] = {}

    def list(self, roots: Iterable[str]) -> list[RunInfo]:
        """Every run under `roots`, newest first. Roots that do not exist list nothing."""
        rows = [self._read(run_dir) for run_dir in find_run_dirs(roots)]
        listed = {info.run_dir for info in rows}
        self._rows = {path: row for path, row in self._rows.items() if path in listed}
        return sorted(rows, key=_newest_first, reverse=True)

    def _read(self, run_dir: str) -> RunInfo:
        key = _file_key(run_dir)
        cached = self._rows.get(run_dir)
        if cached is not None and cached[0] == key and cached[1].status != "running":
            return cached[1]
        info = read_run_info(run_dir, with_history=False)
        self._rows[run_dir] = (key, info)
        return info


def list_runs(roots: Iterable[str]) -> list[RunInfo]:
    """Every run under `roots`, newest first (one-off; `RunsIndex` remembers rows between lists)."""
    return RunsIndex().list(roots)


def find_run_dirs(roots: Iterable[str]) -> list[str]:
    """The run folders directly under each root, each once even when roots overlap."""
    found: dict[str, str] = {}
    for root in roots:
        try:
            entries = list(os.scandir(root))
        except OSError:  # missing, not a folder, or not readable: nothing to list there
            continue
        for entry in entries:
            if entry.name.startswith(".") or not _is_dir(entry):
                continue
            if is_sweep_dir(entry.path):
                trials = _run_dirs_in(entry.path)
                found.update({key: path for key, path in trials.items() if key not in found})
            elif any(os.path.exists(os.path.join(entry.path, name)) for name in RUN_MARKERS):
                found.setdefault(os.path.normcase(os.path.abspath(entry.path)), entry.path)
    return list(found.values())


def _run_dirs_in(sweep_dir: str) -> dict[str, str]:
    try:
        entries = [entry for entry in os.scandir(sweep_dir) if _is_dir(entry)]
    except OSError:
        return {}
    return {os.path.normcase(os.path.abspath(entry.path)): entry.path for entry in entries
            if any(os.path.exists(os.path.join(entry.path, name)) for name in RUN_MARKERS)}


def summary_row(info: RunInfo) -> dict[str, Any]:
    """The JSON row of `runs --json`: `best` holds report.json's values as they are."""
    config = info.config
    return {
        "run_dir": info.run_dir,
        "name": info.name,
        "status": info.status,
        "message": info.message,
        "problem": info.problem,
        "model": info.model if info.status != "unreadable" else "",
        "started_at": info.started_at,
        "duration_seconds": info.duration_seconds,
        "epochs_completed": info.done,
        "epochs": info.total,
        "best": {key: info.best.get(key) for key in ("epoch", "val_accuracy", "val_loss")},
        "train_dir": config.get("train_dir"),
        "val_dir": config.get("val_dir"),
        "dataset_fingerprint": info.dataset_fingerprint or None,
        "can_resume": info.can_resume,
        "config": config,
    }


def flat_settings(config: dict[str, Any]) -> dict[str, Any]:
    """A run's settings with nested groups spelled out: {"augmentation.flip": True, ...}."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{inner}": item for inner, item in value.items()})
        else:
            flat[key] = value
    return flat


def differing_settings(infos: Iterable[RunInfo]) -> list[str]:
    """The settings (flat names, in config order) whose values are not the same in all `infos`;
    unreadable runs take no part."""
    settings = [flat_settings(info.config) for info in infos if info.status != "unreadable"]
    names: dict[str, None] = {}
    for flat in settings:
        names.update(dict.fromkeys(flat))
    return [name for name in names if len({repr(flat.get(name)) for flat in settings}) > 1]


def fingerprint_label(fingerprint: dict[str, Any]) -> str:
    """A short label telling data apart at a glance: the first hex digits of the fingerprint."""
    value = fingerprint.get("hash") if isinstance(fingerprint, dict) else None
    return value[:8] if isinstance(value, str) else ""


def _newest_first(info: RunInfo) -> tuple[str, str]:
    return (info.started_at, info.name)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _file_key(run_dir: str) -> FileKey:
    key = []
    for name in _WATCHED:
        try:
            stat = os.stat(os.path.join(run_dir, name))
            key.append((stat.st_mtime_ns, stat.st_size))
        except OSError:
            key.append(None)
    return tuple(key)
