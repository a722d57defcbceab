"""What each Ray worker process runs: join the run, check the data, train its shard.

Every worker runs the same engine (`core.training.driver.train_in_worker`) under
MultiWorkerMirroredStrategy. Rank 0, the chief, writes the run folder and sends the engine's events;
the others write nothing there and send only their progress. An error on any worker ends the run
for good (a restart would fail the same way): the worker records it in the channel and raises, Ray
tears the group down, and the restarted workers see the error and return at once. Only a worker
that dies (killed, out of memory, machine lost) is worth a restart: the others' collective ops then
fail as "unavailable", they raise without recording it, and Ray restarts the group, which resumes
from the last checkpoint.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from core.config import TrainingConfig
from core.events import Event, WorkerProgress

ROSTER_TIMEOUT_SECONDS = 600  # workers import TensorFlow after joining; joining itself is quick
CALL_TIMEOUT_SECONDS = 60
PROGRESS_INTERVAL_SECONDS = 0.25


class WorkerLink:
    """This worker's side of the RunChannel, and its place in the group."""

    def __init__(self, channel: Any, rank: int, workers: int, session: str = ""):
        self.channel, self.rank, self.workers = channel, rank, workers
        self.session = session  # the launcher's: restarts are counted per session
        self.host = socket.gethostname()
        self.attempt = 0
        self.members: list[dict[str, Any]] = []
        self._last_progress = 0.0

    @property
    def is_chief(self) -> bool:
        return self.rank == 0

    def call(self, method: str, *args: Any) -> Any:
        import ray

        return ray.get(getattr(self.channel, method).remote(*args), timeout=CALL_TIMEOUT_SECONDS)

    def join(self, problem: str) -> None:
        """Registers this process and waits until every rank of this attempt has."""
        self.attempt = self.call("join", self.rank, self.host, os.getpid(), problem)
        deadline = time.monotonic() + ROSTER_TIMEOUT_SECONDS
        while (members := self.call("members", self.attempt)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"not all {self.workers} workers joined within {ROSTER_TIMEOUT_SECONDS} s")
            time.sleep(0.1)
        self.members = members

    def emit(self, event: Event) -> None:
        """The chief's engine events go to the launcher; the other workers' stay here."""
        if self.is_chief:
            self.channel.put.remote(event)

    def progress(self, epoch: int, step: int, steps: int, images_per_second: float) -> None:
        now = time.monotonic()
        if step + 1 < steps and now - self._last_progress < PROGRESS_INTERVAL_SECONDS:
            return
        self._last_progress = now
        event = WorkerProgress(self.rank, self.workers, self.host, epoch, step, steps, images_per_second)
        self.channel.put.remote(event)

    def stop_agreed(self) -> bool:
        """Whether the user asked to stop, as the chief sees it: every worker gets the same answer
        at the same step, so all leave the collective ops together."""
        from ray.train.collective import broadcast_from_rank_zero

        return bool(broadcast_from_rank_zero(self.call("stop_requested") if self.is_chief else None))

    def agree(self, value: Any) -> Any:
        """The chief's `value` on every worker (a barrier as well)."""
        from ray.train.collective import broadcast_from_rank_zero

        return broadcast_from_rank_zero(value if self.is_chief else None)

    def flush(self) -> None:
        self.call("flush")


def worker_main(payload: dict[str, Any]) -> None:
    """Ray Train's `train_loop_per_worker`."""
    # Ray's TensorflowConfig sets this for tf.keras; FitStudio uses Keras 3 itself.
    os.environ.pop("TF_USE_LEGACY_KERAS", None)
    from ray import train

    context = train.get_context()
    rank, workers = context.get_world_rank(), context.get_world_size()
    link = WorkerLink(payload["channel"], rank, workers, payload["session"])
    try:
        _train(payload, link)
    except Exception as exc:
        from core.training.driver import lost_a_worker

        if not lost_a_worker(exc):
            link.call("set_fatal", f"Worker {link.rank} on {link.host}: {type(exc).__name__}: {exc}")
        raise


def _train(payload: dict[str, Any], link: WorkerLink) -> None:
    config = TrainingConfig.from_dict(payload["config"])
    link.join(data_problem(config, link))
    problems = [member["problem"] for member in link.members if member["problem"]]
    if problems or link.call("get_fatal"):
        if problems and link.is_chief:
            link.call("set_fatal", problems[0])
        return  # nothing to train: every worker returns, and the launcher reports why
    if payload.get("setup"):
        payload["setup"]()
    from core.training.driver import train_in_worker

    result = train_in_worker(config, payload["train_files"], payload["val_files"], link)
    link.flush()
    if result.status == "failed":
        # The others may wait in a collective op for this worker: only Ray ending the group frees them.
        link.call("set_fatal", result.message)
        raise RuntimeError(f"worker {link.rank} failed: {result.message}")


def data_problem(config: TrainingConfig, link: WorkerLink) -> str:
    """Why this worker cannot train (a folder it cannot see), or ''."""
    from core.runs import run_folder

    where = f"Worker {link.rank} on {link.host}"
    for folder in filter(None, (config.train_dir, config.val_dir)):
        if not os.path.isdir(folder) or not os.access(folder, os.R_OK | os.X_OK):
            return (
                f"{where} cannot read {folder}. The data folder must be at the same path on every "
                "machine of the cluster (a shared folder, or a copy at that path)."
            )
    if link.is_chief:
        unwritable = run_folder.check_writable(config.out_dir)
        if unwritable:
            return f"{where}: {unwritable}"
    return ""

