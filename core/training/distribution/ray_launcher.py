"""Runs a training on Ray workers and relays what they do, from the process that asked for it.

`train --workers N` starts a Ray cluster on this computer for the run and stops it after;
`train --cluster ADDRESS` joins a running one (README: Several machines). Ray Train's
TensorflowTrainer starts the workers, sets TF_CONFIG, restarts the worker group when a worker dies
(up to `max_restarts` times) and reports how it ended. Each worker runs `worker.worker_main`. The
chief's events and every worker's progress come back through a RunChannel actor; they are passed on
to `on_event` from the thread that called `train_on_ray`, as in a run in this process.

Security: a Ray cluster runs whatever code its clients send (CVE-2023-48022, "ShadowRay"). A local
cluster here starts without the dashboard and its jobs API, with Ray's token authentication on
(a random token for this process) and with every Ray server on 127.0.0.1; `start_local_cluster`
checks from outside that a client without the token is refused. Joining a cluster that lets clients
in without a token gives a warning. TensorFlow's own collective servers, one per worker, listen on
all interfaces without authentication (the bind address is hard-coded in TensorFlow): so workers on
this computer start only with `allow_open_ports` (TrainingConfig.validate refuses them otherwise),
and every run says before it starts what it opens, or that the machines of a cluster must share a
trusted network.

Ray is optional (requirements-cluster.txt): without it the cluster options say how to install it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from core import files
from core.config import CLUSTER_NETWORK_NOTE, OPEN_PORTS_WARNING, PRETRAINED_MODELS, TrainingConfig
from core.data.dataset import FileSet
from core.errors import ConfigError
from core.events import Event, Message, RunFailed, RunFinished, RunResult
from core.runs import checkpoints, run_folder
from core.tf_runtime import load_tensorflow

RAY_INSTALL = ".venv/bin/pip install -r requirements-cluster.txt"
POLL_SECONDS = 0.2
CALL_TIMEOUT_SECONDS = 60
PROBE_TIMEOUT_SECONDS = 10
_LOCAL_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER",
              "RAY_USAGE_STATS_ENABLED")
_process_token = secrets.token_hex(32)  # one per process: Ray's C++ side caches the token it read


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def require_ray() -> None:
    from core.paths import is_frozen

    if ray_installed():
        return
    if is_frozen():
        how = "The standalone program does not include it: run FitStudio from its source folder, then "
    else:
        how = ""
    raise ConfigError(
        "Training with several workers or on a Ray cluster needs Ray, which is not installed. "
        f"{how}install it with: {RAY_INSTALL}"
    )


@dataclass
class Cluster:
    address: str  # the GCS address ("host:port") clients connect to
    local: bool  # started here for this process
    cpus: float
    gpus: float
    token_required: bool | None  # None: could not tell
    dashboard_url: str = ""  # empty: no dashboard and no jobs API
    temp_dir: str = ""
    saved_env: dict[str, str | None] = dataclasses.field(default_factory=dict)

    def describe(self) -> str:
        where = "on this computer" if self.local else f"at {self.address}"
        return f"Ray cluster {where}: {self.cpus:g} CPUs, {self.gpus:g} GPUs"

    @property
    def security_warning(self) -> str:
        if self.token_required is False:
            return (
                f"The Ray cluster at {self.address} lets anyone who can reach it run code without a "
                "token. Restart it with token authentication (RAY_AUTH_MODE=token; see the README)."
            )
        return ""


def start_local_cluster(cpus: int | None = None) -> Cluster:
    """A Ray cluster on this computer: loopback only, no dashboard, token authentication verified."""
    require_ray()
    saved = {name: os.environ.get(name) for name in _LOCAL_ENV}
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = _process_token
    # Ray's "no cluster" mode: every server on 127.0.0.1 instead of the machine's address.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    temp_dir = tempfile.mkdtemp(prefix="fitstudio-ray-")
    try:
        context = ray.init(
            num_cpus=cpus or os.cpu_count() or 1,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            _temp_dir=temp_dir,
            log_to_driver=False,
            configure_logging=False,
            runtime_env={"env_vars": _worker_env()},
        )
        address = ray.get_runtime_context().gcs_address
        cluster = Cluster(address, True, *_resources(), requires_token(address), context.dashboard_url or "",
                          temp_dir, saved)
        if cluster.token_required is not True:
            raise ConfigError(
                "The local Ray cluster started without token authentication, so any program on this "
                "computer could run code in it. Refusing to train; check RAY_AUTH_MODE."
            )
        return cluster
    except BaseException:
        _shutdown(temp_dir, saved)
        raise


def join_cluster(address: str) -> Cluster:
    """Connects to a running Ray cluster (started with `ray start --head`)."""
    require_ray()
    import ray

    token_required = requires_token(address)
    try:
        ray.init(address=address, log_to_driver=False, configure_logging=False,
                 runtime_env={"env_vars": _worker_env(), "py_modules": [_core_package()]})
    except ConnectionError as exc:
        raise ConfigError(f"Could not reach the Ray cluster at {address}: {exc}") from None
    except Exception as exc:
        if "token" in str(exc).lower():
            raise ConfigError(
                f"The Ray cluster at {address} asks for a token: copy the head machine's "
                "~/.ray/auth_token to this computer, or set RAY_AUTH_TOKEN."
            ) from None
        raise
    return Cluster(address, False, *_resources(), token_required)


def stop_cluster(cluster: Cluster) -> None:
    """Disconnects; a cluster started here is stopped with every process it started."""
    _shutdown(cluster.temp_dir if cluster.local else "", cluster.saved_env)


@contextlib.contextmanager
def cluster_for(config: TrainingConfig) -> Iterator[Cluster]:
    """The cluster a run trains on: the one this process is already connected to (tests), else the
    configured one, else a local one that is stopped when the run ends."""
    require_ray()
    # Not `import ray` here: its first import must come after a local cluster has set its token.
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        address = ray.get_runtime_context().gcs_address
        yield Cluster(address, False, *_resources(), requires_token(address))
        return
    cluster = join_cluster(config.cluster) if config.cluster else start_local_cluster()
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


def requires_token(address: str) -> bool | None:
    """Whether the cluster's GCS refuses a client that sends no token (None: no answer in time)."""
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=PROBE_TIMEOUT_SECONDS)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                return True
            return None
    return False


def _shutdown(temp_dir: str, saved_env: dict[str, str | None]) -> None:
    import ray

    ray.shutdown()
    for name, value in saved_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if temp_dir:
        shutil.rmtree(temp_dir, ignore_errors=True)


def _resources() -> tuple[float, float]:
    import ray

    resources = ray.cluster_resources()
    return resources.get("CPU", 0.0), resources.get("GPU", 0.0)


def _core_package() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _worker_env() -> dict[str, str]:
    """What every worker process needs: our modules on the path, quiet TensorFlow, the offline switch."""
    env = {"PYTHONPATH": os.path.dirname(_core_package()), "TF_CPP_MIN_LOG_LEVEL": "2"}
    for name in ("FITSTUDIO_OFFLINE", "KERAS_HOME"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def absolute_paths(config: TrainingConfig) -> TrainingConfig:
    """Workers may start in another folder or on another machine: every path made absolute."""
    return config.replace(
        train_dir=os.path.abspath(config.train_dir),
        val_dir=os.path.abspath(config.val_dir) if config.val_dir else None,
        out_dir=os.path.abspath(config.out_dir),
    )


def train_on_ray(
    config: TrainingConfig,
    train_files: FileSet,
    val_files: FileSet,
    on_event: Callable[[Event], None],
    cancel: threading.Event,
    run_dir: str = "",
    worker_setup: Callable[[], None] | None = None,
) -> RunResult:
    """Trains `config` on `config.workers` Ray workers; `run_dir` continues that run (resume).

    The file lists are scanned once, here, so every worker shards the same lists. `worker_setup`
    runs first in every worker process (tests use it to count inside the model).
    """
    config = absolute_paths(config)
    with cluster_for(config) as cluster:
        # Only now: Ray's C++ side reads RAY_AUTH_MODE once, at its first import, and a local
        # cluster sets it when it starts. Imported earlier, the driver's client would send no token
        # to its own token-protected cluster. Ray Train's TensorFlow module imports TensorFlow:
        # loaded first under core.tf_runtime's lock, so no other thread imports it at the same time.
        load_tensorflow()
        from ray.train import FailureConfig, RunConfig, ScalingConfig
        from ray.train.tensorflow import TensorflowTrainer

        on_event(Message(cluster.describe()))
        on_event(Message(CLUSTER_NETWORK_NOTE if config.cluster else OPEN_PORTS_WARNING, "warning"))
        if cluster.security_warning:
            on_event(Message(cluster.security_warning, "warning"))
        use_gpu = cluster.gpus >= config.workers
        if 0 < cluster.gpus < config.workers:
            on_event(Message(f"{config.workers} workers, {cluster.gpus:g} GPUs: the workers train on CPUs.",
                             "warning"))
        if config.jit and not use_gpu:
            raise ConfigError(
                "--jit with Ray workers needs a GPU for every worker: XLA cannot compile TensorFlow's "
                f"collective ops on CPUs, and this cluster has {cluster.gpus:g} GPUs for "
                f"{config.workers} workers. Train without --jit."
            )
        resources = {"CPU": min(1.0, cluster.cpus / config.workers), **({"GPU": 1} if use_gpu else {})}
        weights = share_weights(config, run_dir, on_event, cancel)
        if cancel.is_set():  # stopped while the weights downloaded: no worker is started for nothing
            return _stopped_before_start(run_dir, on_event)
        channel = _start_channel(config.workers)
        if run_dir:
            channel.set_run_dir.remote(run_dir)
        storage = tempfile.mkdtemp(prefix="fitstudio-ray-train-")
        from core.training.distribution.worker import worker_main

        trainer = TensorflowTrainer(
            worker_main,
            train_loop_config={"config": config.to_dict(), "train_files": train_files, "val_files": val_files,
                               "channel": channel, "session": secrets.token_hex(4), "setup": worker_setup,
                               "weights": weights},
            scaling_config=ScalingConfig(num_workers=config.workers, use_gpu=use_gpu,
                                         resources_per_worker=resources),
            run_config=RunConfig(name=f"fitstudio-{os.getpid()}-{int(time.time())}", storage_path=storage,
                                 failure_config=FailureConfig(max_failures=config.max_restarts)),
        )
        try:
            final, error, details = _relay(trainer, channel, on_event, cancel)
            run_dir = _call(channel.get_run_dir) or run_dir
        finally:
            _stop_channel(channel)
            shutil.rmtree(storage, ignore_errors=True)
    if final is not None:
        return final.result
    return _failed_without_chief(run_dir, error, details, on_event)


def share_weights(config: TrainingConfig, run_dir: str, on_event: Callable[[Event], None],
                  cancel: threading.Event) -> dict | None:
    """The backbone's ImageNet weights, obtained once, here, for every worker (with the progress
    events, cancel and fallback of a run in this process): {"weights": Weights as a dict, "data": a
    Ray object holding the file's bytes, or None when there is no file}. Each worker writes the bytes
    to a file of its own (worker.prepared_weights), so no two processes fetch into the same cache
    and every backbone loads the same verified file. Without a file, every worker gives the same
    reason and starts from random weights, the same on each: MultiWorkerMirroredStrategy gives every
    variable the chief's initial value. None: the run needs no weights (no backbone, or a resume,
    which loads its checkpoint)."""
    if config.model not in PRETRAINED_MODELS or (run_dir and checkpoints.exists(run_dir)):
        return None
    import ray

    from core.modeling.weights import obtain_weights

    weights = obtain_weights(config.model, config.image_size, config.weights_url, on_event, cancel)
    data = None
    if weights.path is not None:
        try:
            with open(weights.path, "rb") as handle:
                data = ray.put(handle.read())
        except OSError as exc:  # removed or made unreadable since it was checked
            weights = dataclasses.replace(weights, path=None, origin="", sha256="", verified="",
                                          problem=f"{weights.path} could not be read ({exc})")
    return {"weights": weights.to_dict(), "data": data}


def _stopped_before_start(run_dir: str, on_event: Callable[[Event], None]) -> RunResult:
    result = RunResult(run_dir=run_dir, status="cancelled", epochs_completed=0, best_epoch=None,
                       best_val_accuracy=None, best_val_loss=None, final_logs={}, duration_seconds=0.0,
                       message="Stopped while the weights downloaded, before the workers started.")
    on_event(RunFinished(result))
    return result


def _start_channel(workers: int):
    import ray

    from core.training.distribution.channel import RunChannel

    return ray.remote(num_cpus=0, max_restarts=0)(RunChannel).remote(workers)


def _stop_channel(channel) -> None:
    import ray

    with contextlib.suppress(Exception):
        ray.kill(channel)


def _call(method, *args):
    import ray

    return ray.get(method.remote(*args), timeout=CALL_TIMEOUT_SECONDS)


def _relay(trainer, channel, on_event, cancel) -> tuple[RunFinished | RunFailed | None, str, str]:
    """Runs the trainer on a helper thread and passes the workers' events on from this one until
    it ends; a set `cancel` is forwarded once. Returns the chief's final event, and the error that
    ended the run with its details when no chief could say."""
    outcome: dict[str, str] = {}

    def fit() -> None:
        try:
            trainer.fit()
        except Exception as exc:  # the workers failed for good: the caller reports it
            outcome["error"] = _describe_ray_error(exc)
            outcome["details"] = traceback.format_exc()

    thread = threading.Thread(target=fit, name="fitstudio-ray-trainer", daemon=True)
    thread.start()
    final, stop_sent = None, False
    while True:
        ended = not thread.is_alive()
        for event in _call(channel.take):
            on_event(event)
            if isinstance(event, RunFinished | RunFailed):
                final = event
        if ended:
            break
        if cancel.is_set() and not stop_sent:
            channel.request_stop.remote()
            stop_sent = True
        thread.join(POLL_SECONDS)
    fatal = _call(channel.get_fatal)
    return final, fatal or outcome.get("error", ""), outcome.get("details", "")


def _describe_ray_error(exc: BaseException) -> str:
    """Ray's message names the failing ranks and ends with each one's error; the tracebacks are long."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    errors = [line for line in lines if not line.startswith((" ", "Traceback"))]
    return "The Ray workers failed: " + " ".join(errors[:1] + errors[-2:] if len(errors) > 3 else errors)


def _failed_without_chief(run_dir: str, error: str, details: str, on_event) -> RunResult:
    """No chief lived to end the run (it failed before training, or Ray gave up restarting): the
    launcher says so, in report.json too when the run folder has one."""
    message = error or "The Ray workers stopped without finishing the run."
    result = RunResult(run_dir=run_dir, status="failed", epochs_completed=0, best_epoch=None,
                       best_val_accuracy=None, best_val_loss=None, final_logs={}, duration_seconds=0.0,
                       message=message)
    report_path = os.path.join(run_dir, run_folder.REPORT_FILE) if run_dir else ""
    if report_path and os.path.exists(report_path):
        with contextlib.suppress(OSError, ValueError):
            report = files.read_json(report_path)
            report.update(status="failed", message=message)
            files.write_json(report_path, report)
            history = report.get("epochs", [])
            result = dataclasses.replace(result, epochs_completed=len(history))
    on_event(RunFailed(message, details, result))
    return result
