"""What each Ray worker process runs: join the run, check the data, train its shard.

Every worker runs the same engine (`core.training.run.Run`, through `train_in_worker`) under
MultiWorkerMirroredStrategy, in the role of `WorkerRole`. Rank 0, the chief, writes the run folder
and sends the engine's events; the others write nothing there and send only their progress. An error
on any worker ends the run for good (a restart would fail the same way): the worker records it in
the channel and raises, Ray tears the group down, and the restarted workers see the error and return
at once. Only a worker that dies (killed, out of memory, machine lost) is worth a restart: the
others' collective ops then fail as "unavailable", they raise without recording it, and Ray restarts
the group, which resumes from the last checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from core import files
from core.config import TrainingConfig
from core.data.dataset import FileSet
from core.errors import DatasetError
from core.events import Event, Message, RunResult, WorkerProgress
from core.runs import checkpoints, run_folder
from core.training.failures import lost_a_worker
from core.training.roles import Role

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
    with prepared_weights(payload.get("weights")) as weights:
        result = train_in_worker(config, payload["train_files"], payload["val_files"], link, weights)
    link.flush()
    if result.status == "failed":
        # The others may wait in a collective op for this worker: only Ray ending the group frees them.
        link.call("set_fatal", result.message)
        raise RuntimeError(f"worker {link.rank} failed: {result.message}")


class WorkerRole(Role):
    """One Ray worker of a distributed run: MultiWorkerMirroredStrategy over the group, the
    agreements of core.training.distribution.sync first and last, only the chief (rank 0) writes, and
    a lost worker is left to Ray, who restarts the group from the last checkpoint."""

    def __init__(self, link: WorkerLink, restarts: list[dict[str, Any]] | None = None, weights: Any = None):
        super().__init__()
        self.link = link
        self.weights = weights  # the launcher's, the same for every worker (prepared_weights)
        self.writes = link.is_chief
        self.members = link.members
        self.restarts = list(restarts or [])  # Ray's restarts of the workers, this session

    def place(self, config: TrainingConfig, emit: Callable[[Event], None]) -> Any:
        from core.training.distribution.strategies import worker_placement

        return worker_placement(self.link.rank, self.link.workers)

    def callbacks_around(self, cancel: threading.Event, train_stream: Any) -> tuple[list, list]:
        from core.training.distribution.sync import EpochAgreement, StopAgreement

        return [StopAgreement(self.link, cancel, train_stream)], [EpochAgreement(self.link)]

    def passes_on(self, exc: BaseException) -> bool:
        return lost_a_worker(exc)


def train_in_worker(config: TrainingConfig, train_files: FileSet, val_files: FileSet,
                    link: WorkerLink, weights: Any = None) -> RunResult:
    """This worker's part of the run; `weights` are the backbone's, as the launcher obtained them.

    The chief makes the run folder, or continues the one an earlier attempt or a resume left; every
    worker then learns it from the chief and resumes from its checkpoint, if it has one. While the
    workers train, workers.json in the run folder lists them.
    """
    from core.training.callbacks import now_iso
    from core.training.run import Run

    run_dir = link.agree(_chief_run_dir(config, link) if link.is_chief else None)
    if not os.path.isdir(run_dir):
        raise DatasetError(
            f"Worker {link.rank} on {link.host} cannot see the run folder {run_dir}. The output folder "
            "must be at the same path on every machine of the cluster (a shared folder)."
        )
    resume_from = checkpoints.read(run_dir) if checkpoints.exists(run_dir) else None
    role = WorkerRole(link, weights=weights)
    cancel = threading.Event()  # set by the stop agreement, on every worker at the same step
    run = Run(config, train_files, val_files, role, link.emit, cancel, run_dir, resume_from)
    workers_file = os.path.join(run_dir, run_folder.WORKERS_FILE)
    if link.is_chief:
        files.write_json(workers_file, {"attempt": link.attempt, "workers": link.members})
        if link.attempt:
            restart = {"session": link.session, "attempt": link.attempt, "at": now_iso(),
                       "from_epoch": resume_from.epoch + 1 if resume_from else 0}
            role.restarts = link.call("add_restart", restart)
            run.emit(Message(f"A worker was lost: the workers were restarted (restart {link.attempt}) and "
                             f"continue from epoch {restart['from_epoch'] + 1}.", "warning"))
    try:
        return run.execute()
    finally:
        if link.is_chief:
            with contextlib.suppress(OSError):
                os.remove(workers_file)


@contextlib.contextmanager
def prepared_weights(shared: dict[str, Any] | None) -> Iterator[Any]:
    """The Weights the launcher obtained (ray_launcher.share_weights), their file written from Ray's
    object store to a temporary file of this process, removed when the run ends. None when the run
    needs none."""
    if shared is None:
        yield None
        return
    import ray

    from core.modeling.weights import Weights

    weights = Weights(**shared["weights"])
    if shared["data"] is None:
        yield weights  # no file: the reason the launcher had, and random weights
        return
    data = ray.get(shared["data"], timeout=CALL_TIMEOUT_SECONDS)
    if hashlib.sha256(data).hexdigest() != weights.sha256:
        raise RuntimeError(f"the weights the launcher sent are not {weights.file_name} it checked")
    descriptor, path = tempfile.mkstemp(prefix="fitstudio-weights-", suffix=".h5")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        yield dataclasses.replace(weights, copy=path)
    finally:
        os.remove(path)


def _chief_run_dir(config: TrainingConfig, link: WorkerLink) -> str:
    """The run folder the launcher named (a resume) or an earlier attempt made, else a new one."""
    run_dir = link.call("get_run_dir")
    if not run_dir:
        run_dir = run_folder.create_run_dir(config.out_dir, config.model)
        link.call("set_run_dir", run_dir)
    return run_dir


def data_problem(config: TrainingConfig, link: WorkerLink) -> str:
    """Why this worker cannot train (a folder it cannot see), or ''."""
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

