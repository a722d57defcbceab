"""The sweep folder on disk: `sweep.json` beside one ordinary run folder per trial. Plain files, no
TensorFlow; reading never raises.

    runs/sweep-20261205-003000/
        sweep.json      id, the search space, the metric, the base settings, every trial's settings,
                        status and result, and the best trial
        trial-00/       an ordinary run folder (config.json, history.csv, report.json, model.keras)
        trial-01/ ...

A trial's status in sweep.json is one of: pending (not started), running, completed, stopped (by the
sweep's scheduler, after `stopped_at` epochs), cancelled (the sweep was stopped), failed. The trial's
own report.json says the same; a stopped trial's has "stopped_by": {"sweep": id, "epoch": k}.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from core import files

SWEEP_FILE = "sweep.json"
# Written by the sweep's process when it is stopped (Ctrl-C, Stop): every trial process that sees it
# stops within a batch and keeps what it trained, as a run does on Stop. Removed when a sweep resumes.
STOP_FILE = "stop-requested"
FINISHED = ("completed", "stopped", "failed")  # a resumed sweep runs the other trials again
TRIAL_STATUSES = ("pending", "running", "completed", "stopped", "cancelled", "failed")


def trial_dir(sweep_dir: str, index: int) -> str:
    return os.path.join(sweep_dir, f"trial-{index:02d}")


def create_sweep_dir(out_dir: str, now: float | None = None) -> str:
    """A new, empty sweep folder under `out_dir`, named by the time (a suffix when taken)."""
    os.makedirs(out_dir, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    for suffix in ("", *(f"-{n}" for n in range(2, 1000))):
        path = os.path.join(out_dir, f"sweep-{stamp}{suffix}")
        try:
            os.makedirs(path)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"Too many sweeps named sweep-{stamp} in {out_dir}.")


def stop_file(sweep_dir: str) -> str:
    return os.path.join(sweep_dir, STOP_FILE)


def is_sweep_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, SWEEP_FILE))


def write_sweep(sweep_dir: str, record: dict[str, Any]) -> None:
    files.write_json(os.path.join(sweep_dir, SWEEP_FILE), record)


@dataclass(frozen=True)
class SweepInfo:
    sweep_dir: str
    record: dict[str, Any] = field(default_factory=dict)  # sweep.json as written
    problem: str = ""  # why sweep.json cannot be read; empty otherwise

    @property
    def name(self) -> str:
        return os.path.basename(os.path.normpath(self.sweep_dir))

    @property
    def trials(self) -> list[dict[str, Any]]:
        trials = self.record.get("trials")
        return [trial for trial in trials if isinstance(trial, dict)] if isinstance(trials, list) else []

    @property
    def metric(self) -> str:
        return str(self.record.get("metric") or "val_accuracy")

    @property
    def best(self) -> dict[str, Any] | None:
        best = self.record.get("best")
        return best if isinstance(best, dict) else None

    def trial_path(self, trial: dict[str, Any]) -> str:
        return os.path.join(self.sweep_dir, str(trial.get("run_dir") or ""))

    @property
    def unfinished(self) -> list[dict[str, Any]]:
        return [trial for trial in self.trials if trial.get("status") not in FINISHED]


def read_sweep(sweep_dir: str) -> SweepInfo:
    """What sweep.json says; a missing or corrupt one comes back with `problem` set."""
    path = os.path.join(sweep_dir, SWEEP_FILE)
    try:
        record = files.read_json(path)
    except FileNotFoundError:
        return SweepInfo(sweep_dir, problem=f"{sweep_dir} has no {SWEEP_FILE}: it is not a sweep folder.")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return SweepInfo(sweep_dir, problem=f"{path} cannot be read ({exc}).")
    if not isinstance(record, dict) or not isinstance(record.get("trials"), list):
        return SweepInfo(sweep_dir, problem=f"{path} does not describe a sweep (no list of trials).")
    return SweepInfo(sweep_dir, record)


def find_sweep_dirs(roots: list[str] | tuple[str, ...]) -> list[str]:
    """The sweep folders directly under each root, newest name first."""
    found: dict[str, str] = {}
    for root in roots:
        try:
            entries = [entry for entry in os.scandir(root) if entry.is_dir() and is_sweep_dir(entry.path)]
        except OSError:
            continue
        for entry in entries:
            found.setdefault(os.path.normcase(os.path.abspath(entry.path)), entry.path)
    return sorted(found.values(), key=os.path.basename, reverse=True)
