"""Reading a run folder back: `read_run_info(run_dir)` -> RunInfo, the one description of a run that
the window, the CLI and the runs index use. Plain JSON reading, no TensorFlow; it never raises.

Status, from report.json and checkpoint.json:

    completed, cancelled, failed   the run ended and said so in report.json
    stopped                        a sweep's trial that the sweep's scheduler stopped early, after the
                                   epoch in `stopped_by` (report.json's "stopped_by": {"sweep", "epoch"})
    running                        report.json says "running" and the process that wrote it is alive
                                   (or runs on another machine, where that cannot be checked)
    interrupted                    it says "running" but its process is gone (killed, crashed, power
                                   lost), or the run never wrote a report
    unreadable                     not a run folder, or one whose files are corrupt (`problem` says why)

A run can be resumed when its checkpoint and the model file it names are there (`can_resume`);
`resume_problem` says why not otherwise.

`read_run_info(run_dir, with_history=False)` is the quick read for lists (the runs index): it decodes
report.json alone (its epochs_completed, best, config and checkpoint entries) and only checks that the
checkpoint files exist; decoding checkpoint.json's history is most of a full read's time. A folder
whose report lacks those entries (an older version's, or none) is read in full either way.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, field
from typing import Any

from core import files
from core.errors import FitStudioError
from core.runs import checkpoints, run_folder

STATUS_TEXT = {
    "completed": "completed",
    "cancelled": "stopped by the user",
    "stopped": "stopped early by the sweep",
    "failed": "failed",
    "running": "training now (in another window or process)",
    "interrupted": "interrupted (FitStudio closed or crashed while it trained)",
    "unreadable": "unreadable",
}
OUT_OF_MEMORY_PREFIX = "Out of memory"  # how the engine's out-of-memory message starts (older reports)


@dataclass(frozen=True)
class RunInfo:
    run_dir: str
    status: str  # one of STATUS_TEXT
    model: str = ""
    done: int = 0  # epochs finished and saved in the checkpoint: where a resume continues
    total: int = 0  # epochs the run is configured for
    message: str = ""  # how the run ended, from report.json
    out_of_memory: bool = False  # the last session failed for lack of memory
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)  # epoch, val_loss, val_accuracy (may be empty)
    started_at: str = ""
    duration_seconds: float | None = None
    dataset_fingerprint: dict[str, Any] = field(default_factory=dict)  # core.data.fingerprint
    environment: dict[str, Any] = field(default_factory=dict)  # versions, OS, CPU and GPU of the run
    resume_problem: str = ""  # why this run cannot be resumed; empty when it can
    problem: str = ""  # why the folder is unreadable; empty otherwise
    stopped_by: dict[str, Any] = field(default_factory=dict)  # {"sweep": id, "epoch": k} when stopped

    @property
    def name(self) -> str:
        return os.path.basename(os.path.normpath(self.run_dir))

    @property
    def can_resume(self) -> bool:
        return not self.resume_problem

    @property
    def unfinished(self) -> bool:
        return self.done < self.total

    @property
    def batch_size(self) -> int | None:
        value = self.config.get("batch_size")
        return value if isinstance(value, int) and value > 0 else None

    @property
    def smaller_batch_size(self) -> int | None:
        """Half the batch size when the last session ran out of memory (None otherwise, or at 1)."""
        return half_batch_size(self.batch_size) if self.out_of_memory else None

    def describe(self) -> str:
        """One line for people, e.g. "small-cnn, completed. 3 of 3 epochs trained." """
        if self.status == "unreadable":
            return f"unreadable: {self.problem}"
        status = STATUS_TEXT.get(self.status, self.status)
        if self.status == "completed" and self.message:
            status = self.message.rstrip(".")
        elif self.status == "failed" and self.message:
            status = f"failed: {self.message.rstrip('.')}"
        elif self.status == "stopped" and self.stopped_by:
            status = f"{status} {self.stopped_by.get('sweep')} after epoch {self.stopped_by.get('epoch')}"
        return f"{self.model}, {status}. {self.done} of {self.total} epochs trained."


def half_batch_size(batch_size: int | None) -> int | None:
    return batch_size // 2 if batch_size and batch_size > 1 else None


def read_run_info(run_dir: str, with_history: bool = True) -> RunInfo:
    """What `run_dir` holds. Never raises: a folder that is not a run, or a corrupt one, comes back
    with status "unreadable" and the reason in `problem`. Without `with_history`, `history` is empty
    and the read is the quick one of the module docstring."""
    if not os.path.isdir(run_dir):
        problem = f"{run_dir} is not a run folder. Choose a folder under runs/."
        return RunInfo(run_dir, "unreadable", resume_problem=problem, problem=problem)
    report = _json_object(os.path.join(run_dir, run_folder.REPORT_FILE))
    if not with_history and report is not None and _summarises_the_run(report):
        return _from_report(run_dir, report)
    checkpoint, resume_problem = _checkpoint(run_dir)
    config = checkpoint.config if checkpoint else _json_object(os.path.join(run_dir, run_folder.CONFIG_FILE))
    if not config and checkpoint is None and report is None:
        problem = resume_problem if os.path.exists(os.path.join(run_dir, checkpoints.CHECKPOINT_FILE)) else (
            f"{run_dir} has no config.json, report.json or checkpoint: it is not a run folder."
        )
        return RunInfo(run_dir, "unreadable", resume_problem=resume_problem, problem=problem)
    report = report or {}
    if not config and isinstance(report.get("config"), dict):
        config = report["config"]
    config = config or {}
    done = checkpoint.epoch + 1 if checkpoint else 0
    best = report.get("best") if isinstance(report.get("best"), dict) else {}
    if checkpoint and checkpoint.best and not best:
        best = {key: checkpoint.best.get(key) for key in ("epoch", "val_loss", "val_accuracy")}
    history = list(checkpoint.history) if checkpoint else []
    return _run_info(run_dir, report, config, done, best, history, resume_problem)


def _summarises_the_run(report: dict[str, Any]) -> bool:
    """Whether report.json alone says what a list shows (reports of this version do)."""
    return (
        _int(report.get("epochs_completed"), -1) >= 0
        and isinstance(report.get("config"), dict)
        and "checkpoint" in report
        and isinstance(report.get("best"), dict)
    )


def _from_report(run_dir: str, report: dict[str, Any]) -> RunInfo:
    model_file = report["checkpoint"]
    if not os.path.exists(os.path.join(run_dir, checkpoints.CHECKPOINT_FILE)) or not model_file:
        resume_problem = (
            f"{run_dir} has no checkpoint: the run ended before its first epoch finished, or it was "
            "made by an older version. Start a new run instead."
        )
    elif not isinstance(model_file, str) or not os.path.exists(os.path.join(run_dir, model_file)):
        resume_problem = f"The checkpoint's model file {model_file} is missing in {run_dir}."
    else:
        resume_problem = ""
    return _run_info(run_dir, report, report["config"], report["epochs_completed"], report["best"], [],
                     resume_problem)


def _run_info(run_dir: str, report: dict[str, Any], config: dict[str, Any], done: int,
              best: dict[str, Any], history: list[dict[str, float]], resume_problem: str) -> RunInfo:
    message = _text(report.get("message"))
    duration = report.get("duration_seconds")
    status = _status(report)
    if status == "running" and not resume_problem:
        resume_problem = (
            f"This run is training now ({_where(report['process'])}). Stop it there before resuming it."
        )
    return RunInfo(
        run_dir=run_dir,
        status=status,
        model=_text(config.get("model")) or "model",
        done=done,
        total=_int(config.get("epochs"), done),
        message=message,
        out_of_memory=bool(report.get("out_of_memory")) or message.startswith(OUT_OF_MEMORY_PREFIX),
        config=config,
        history=history,
        best=best,
        started_at=_text(report.get("started_at")),
        duration_seconds=float(duration) if isinstance(duration, int | float) else None,
        dataset_fingerprint=_dict(report.get("dataset_fingerprint")),
        environment=_dict(report.get("environment")),
        resume_problem=resume_problem,
        stopped_by=_dict(report.get("stopped_by")) if status == "stopped" else {},
    )


def read_run_config(run_dir: str) -> dict[str, Any]:
    """The run's config.json as a dict; {} when there is none or it is unreadable (e.g. a folder that
    holds a .keras file but is no run folder)."""
    return _json_object(os.path.join(run_dir, run_folder.CONFIG_FILE)) or {}


def _checkpoint(run_dir: str) -> tuple[checkpoints.Checkpoint | None, str]:
    try:
        checkpoint = checkpoints.read(run_dir)
    except FitStudioError as exc:
        return None, str(exc)
    except (OSError, ValueError, TypeError) as exc:  # e.g. a number where the model file's name belongs
        return None, f"The checkpoint of {run_dir} is unreadable ({exc})."
    well_formed = (
        _int(checkpoint.epoch, -1) >= 0
        and isinstance(checkpoint.config, dict)
        and isinstance(checkpoint.history, list)
        and (checkpoint.best is None or isinstance(checkpoint.best, dict))
    )
    if not well_formed:
        return None, f"The checkpoint of {run_dir} is unreadable (unexpected values in checkpoint.json)."
    return checkpoint, ""


def _status(report: dict[str, Any]) -> str:
    status = report.get("status")
    if status in ("completed", "cancelled", "failed", "stopped"):
        return status
    if status == "running" and _writer_alive(report.get("process")):
        return "running"
    return "interrupted"


def _where(process: dict[str, Any]) -> str:
    return f"process {process.get('pid')} on {process.get('host')}"


def _writer_alive(process: Any) -> bool:
    """Whether the process that wrote a "running" report still runs. A pid from another machine
    cannot be checked: such a run counts as running. A reused pid can make a dead run look alive."""
    if not isinstance(process, dict) or not isinstance(process.get("pid"), int):
        return False
    if process.get("host") != socket.gethostname():
        return True
    return _pid_alive(process["pid"])


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # os.kill would terminate the process there
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists, owned by someone else
    return True


def _windows_pid_alive(pid: int) -> bool:
    import ctypes

    kernel32 = ctypes.windll.kernel32
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        still_active = 259
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == still_active
    finally:
        kernel32.CloseHandle(handle)


def _json_object(path: str) -> dict[str, Any] | None:
    try:
        data = files.read_json(path)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
