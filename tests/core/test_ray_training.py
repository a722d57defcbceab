"""Training on a real local Ray cluster (loopback only): its security, and one 2-worker run of the demo
whose rank-1 worker is killed mid-epoch.

The machine running the tests may have two cores for everything, so one cluster serves the module
and the run happens once (the `killed_run` fixture); each test then checks one thing about it.
"""

import csv
import functools
import hashlib
import json
import os
import shutil
import signal
import socket
import sys
import threading
import zipfile

import keras
import pytest
from conftest import make_class_folders
from listening import descendants, is_loopback, listeners
from stand_in_backbone import stand_in_backbone
from weight_files import MOBILENET_IMAGE_SIZE, backbone_weight_file, first_kernel

from core import files
from core.config import TrainingConfig
from core.data.dataset import load_split
from core.errors import ConfigError
from core.events import EpochEnd, FineTuneStarted, Message, RunFinished, RunStarted, WorkerProgress
from core.modeling.weights import cached_weights_path, weights_cache_dir
from core.runs import run_folder
from core.training.distribution import ray_launcher
from core.training.driver import resume

# The run (cluster start, two workers importing TensorFlow, a restart) is set up by the first test
# that uses it, whose time limit covers it: minutes when other work shares the two cores.
pytestmark = pytest.mark.timeout(900)
DEMO_CLASSES = ("apple", "banana", "lime")
EPOCHS = 5


def test_the_local_cluster_has_no_dashboard_listens_on_loopback_and_requires_the_token(ray_cluster):
    assert ray_cluster.local and ray_cluster.dashboard_url == ""
    assert ray_cluster.address.startswith("127.0.0.1:")
    for dashboard_port in (8265, 52365):  # the dashboard with its jobs API, and the dashboard agent
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", dashboard_port), timeout=2).close()
    assert ray_launcher.requires_token(ray_cluster.address) is True  # asked from outside, without it
    assert ray_cluster.security_warning == ""


def test_every_server_of_the_local_cluster_listens_on_loopback_only(ray_cluster):
    """Read from /proc: every listening socket of the processes the cluster started (GCS, raylet,
    their helpers), before any worker runs."""
    sockets = listeners(descendants(os.getpid()))
    assert sockets, "the cluster's processes hold no listening socket: they were not found"
    assert [s for s in sockets if not is_loopback(s[2])] == []


def count_each_class_inside_the_model():
    """Runs in every worker before it trains: adds one metric per demo class to the model's compile,
    counting the samples of that class the model trained (and validated) on, summed over all
    replicas. They land in history.csv as seen_<class> and val_seen_<class>."""
    import keras

    @keras.saving.register_keras_serializable(package="fitstudio_tests")
    class ClassCount(keras.metrics.Metric):
        def __init__(self, label=0, **kwargs):
            kwargs.setdefault("name", f"seen_{DEMO_CLASSES[label]}")
            super().__init__(**kwargs)
            self.label = label
            self.count = self.add_variable((), initializer="zeros", name="count")

        def update_state(self, y_true, y_pred, sample_weight=None):
            ours = keras.ops.equal(keras.ops.reshape(y_true, (-1,)), self.label)
            self.count.assign_add(keras.ops.sum(keras.ops.cast(ours, "float32")))

        def result(self):
            return keras.ops.add(self.count, 0.0)

        def get_config(self):
            return {**super().get_config(), "label": self.label}

    from keras.src.trainers.trainer import Trainer

    original = Trainer.compile

    def compile_with_counters(self, *args, metrics=None, **kwargs):
        metrics = list(metrics or [])
        if not any(isinstance(m, ClassCount) for m in metrics):  # a loaded model brings its own
            metrics += [ClassCount(label) for label in range(len(DEMO_CLASSES))]
        return original(self, *args, metrics=metrics, **kwargs)

    # On Trainer itself: load_model compiles a model only while its class's compile is Trainer's.
    Trainer.compile = compile_with_counters


@pytest.fixture(scope="module")
def killed_run(ray_cluster, tmp_path_factory):
    """`--workers 2` on the demo (64 px, 5 epochs); the rank-1 worker listed in workers.json is killed
    with SIGKILL in the middle of the second epoch."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    config = TrainingConfig(image_size=64, epochs=EPOCHS, workers=2, max_restarts=2, allow_open_ports=True,
                            out_dir=str(tmp_path_factory.mktemp("runs"))).validate()
    train_files, val_files = load_split(config.train_dir, config.val_dir, config.val_split, config.seed)
    events, seen = [], {}

    def kill_rank_1_mid_epoch_2(event):
        events.append(event)
        if isinstance(event, RunStarted):
            seen["workers_file"] = os.path.join(event.run_dir, run_folder.WORKERS_FILE)
        mid_epoch_2 = isinstance(event, WorkerProgress) and event.epoch == 1 and event.step >= 2
        if mid_epoch_2 and "killed" not in seen:
            seen["listeners"] = listeners(descendants(os.getpid()))
            seen["workers"] = files.read_json(seen["workers_file"])
            rank_1 = next(w for w in seen["workers"]["workers"] if w["rank"] == 1)
            os.kill(rank_1["pid"], signal.SIGKILL)
            seen["killed"] = rank_1["pid"]

    result = ray_launcher.train_on_ray(config, train_files, val_files, kill_rank_1_mid_epoch_2,
                                       threading.Event(), worker_setup=count_each_class_inside_the_model)
    return result, events, seen


def test_killing_a_worker_mid_epoch_still_completes_every_epoch(killed_run):
    result, events, seen = killed_run
    assert "killed" in seen and result.status == "completed", result.message
    with open(os.path.join(result.run_dir, run_folder.HISTORY_FILE), newline="") as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == list(range(EPOCHS))
    report = files.read_json(os.path.join(result.run_dir, run_folder.REPORT_FILE))
    assert report["status"] == "completed" and report["epochs_completed"] == EPOCHS
    restarts = report["distribution"]["restarts"]
    assert [(r["attempt"], r["from_epoch"]) for r in restarts] == [(1, 1)]  # epoch 1 was saved
    assert [r["from_epoch"] for r in report["resumes"]] == [1]
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [0, *range(1, EPOCHS)]
    assert isinstance(events[-1], RunFinished)


def test_two_workers_train_the_demo_to_90_percent_seeing_every_image_once_per_epoch(killed_run):
    result, _, _ = killed_run
    assert result.best_val_accuracy >= 0.9
    with open(os.path.join(result.run_dir, run_folder.HISTORY_FILE), newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:  # counted inside the model, summed over both workers
        assert [float(row[f"seen_{name}"]) for name in DEMO_CLASSES] == [100.0] * 3
        assert [float(row[f"val_seen_{name}"]) for name in DEMO_CLASSES] == [30.0] * 3
    report = files.read_json(os.path.join(result.run_dir, run_folder.REPORT_FILE))
    assert [epoch["images"] for epoch in report["epochs"]] == [300] * EPOCHS
    distribution = report["distribution"]
    assert (distribution["strategy"], distribution["workers"], distribution["replicas"]) == (
        "MultiWorkerMirroredStrategy", 2, 2)
    assert (distribution["global_batch"], distribution["steps_per_epoch"]) == (32, 10)
    assert distribution["per_replica_batch"] == "15" and [h["rank"] for h in distribution["hosts"]] == [0, 1]


def test_with_open_ports_allowed_only_tensorflows_servers_in_the_workers_listen_beyond_loopback(killed_run):
    """What --allow-open-ports consents to, measured mid-run: one server on every interface in each
    worker (TensorFlow's collective server); everything of Ray's stays on loopback."""
    _, events, seen = killed_run
    worker_pids = {worker["pid"] for worker in seen["workers"]["workers"]}
    open_ports = [s for s in seen["listeners"] if not is_loopback(s[2])]
    assert {pid for pid, *_ in open_ports} == worker_pids and len(open_ports) == len(worker_pids)
    assert all(name.startswith("ray::RayTrainWorker") for _, name, *_ in open_ports)
    warnings = [e.text for e in events if isinstance(e, Message) and e.level == "warning"]
    assert any("unauthenticated connections on every network interface" in text for text in warnings)


def test_workers_json_lists_the_workers_while_they_train(killed_run):
    _, events, seen = killed_run
    listed = seen["workers"]
    assert listed["attempt"] == 0 and [w["rank"] for w in listed["workers"]] == [0, 1]
    assert all(w["host"] == socket.gethostname() and w["pid"] > 0 for w in listed["workers"])
    assert not os.path.exists(seen["workers_file"])  # gone once the run ended
    progress = {e.rank for e in events if isinstance(e, WorkerProgress)}
    assert progress == {0, 1}
    started = [e for e in events if isinstance(e, RunStarted)]
    assert started[0].distribution["workers"] == 2 and len(started) == 2  # started again after the kill


def test_the_run_folder_holds_only_what_the_chief_wrote(killed_run):
    result, _, _ = killed_run
    assert sorted(os.listdir(result.run_dir)) == sorted(
        ["config.json", "labels.txt", "history.csv", "model.keras", "last.keras", "report.json",
         "checkpoint.json", "checkpoints", "dataset.json.gz", "tensorboard"]
    )
    path = os.path.join(result.run_dir, "model.keras")
    model = keras.models.load_model(path, safe_mode=True, compile=False)
    assert model.output_shape == (None, 3)


def use_the_stand_in_backbone():
    """Runs in every worker before it trains: a small backbone in place of MobileNetV2's."""
    from core.modeling import models

    models.build_backbone = stand_in_backbone


@pytest.fixture(scope="module")
def fine_tuned_on_workers(ray_cluster, tmp_path_factory):
    """Two workers, --class-weights auto, fine-tuning from epoch 2: stopped once the switch was
    announced (so within epoch 2), then resumed."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.cloudpickle.register_pickle_by_value(sys.modules[stand_in_backbone.__module__])
    root = tmp_path_factory.mktemp("uneven")
    train_dir = make_class_folders(str(root / "train"), {"blue": 6, "red": 2}, size=32)
    val_dir = make_class_folders(str(root / "val"), {"blue": 2, "red": 2}, size=32)
    config = TrainingConfig(
        train_dir=train_dir, val_dir=val_dir, model="mobilenetv2", image_size=32, epochs=3, batch_size=4,
        fine_tune_after=1, fine_tune_layers=4, fine_tune_learning_rate=1e-3, class_weights="auto",
        workers=2, allow_open_ports=True, max_restarts=0, out_dir=str(root / "runs"),
    ).validate()
    train_files, val_files = load_split(config.train_dir, config.val_dir, config.val_split, config.seed)
    cancel, events = threading.Event(), []

    def stop_once_fine_tuning_began(event):
        events.append(event)
        if isinstance(event, FineTuneStarted):
            cancel.set()

    first = ray_launcher.train_on_ray(config, train_files, val_files, stop_once_fine_tuning_began, cancel,
                                      worker_setup=use_the_stand_in_backbone)
    assert first.epochs_completed, f"{first.status}: {first.message}"  # else there is nothing to resume
    resumed_events = []
    done = resume(first.run_dir, resumed_events.append)
    return first, events, done, resumed_events


def test_class_weights_and_fine_tuning_work_on_workers_and_resume(fine_tuned_on_workers):
    first, events, done, resumed_events = fine_tuned_on_workers
    # The stop reaches the workers within epoch 2, or (on a quick machine) at the end of it.
    assert first.status == "cancelled" and first.epochs_completed in (1, 2), first.message
    assert [e.epoch for e in events if isinstance(e, FineTuneStarted)] == [1]
    assert (done.status, done.epochs_completed) == ("completed", 3), done.message
    switched_again = [1] if first.epochs_completed == 1 else []  # else the checkpoint holds the switch
    assert [e.epoch for e in resumed_events if isinstance(e, FineTuneStarted)] == switched_again
    report = files.read_json(os.path.join(done.run_dir, run_folder.REPORT_FILE))
    assert report["class_weights"] == {"blue": pytest.approx(4 / 6, abs=1e-4), "red": pytest.approx(2.0)}
    assert report["fine_tune"] == {"from_epoch": 1, "layers": 4, "learning_rate": 1e-3}
    assert report["distribution"]["workers"] == 2
    with zipfile.ZipFile(os.path.join(done.run_dir, run_folder.LAST_MODEL_FILE)) as archive:
        compiled = json.loads(archive.read("config.json"))["compile_config"]
    assert compiled["optimizer"]["config"]["learning_rate"] == pytest.approx(1e-3)


def test_jit_on_workers_without_a_gpu_each_is_refused_before_they_start(ray_cluster, tiny_dataset, tmp_path):
    """XLA cannot compile TensorFlow's collective ops on CPUs ("Collectives are not yet implemented
    for CPU devices when compiling with XLA"): said up front, not after the workers imported TF."""
    train_dir, val_dir = tiny_dataset
    config = TrainingConfig(train_dir=train_dir, val_dir=val_dir, image_size=16, batch_size=4, jit=True,
                            workers=2, allow_open_ports=True, out_dir=str(tmp_path / "runs")).validate()
    train_files, val_files = load_split(config.train_dir, config.val_dir, config.val_split, config.seed)
    with pytest.raises(ConfigError, match="Train without --jit"):
        ray_launcher.train_on_ray(config, train_files, val_files, lambda event: None, threading.Event())
    assert not (tmp_path / "runs").exists()


def kernel_digest(kernel) -> str:
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(kernel, dtype=np.float32).tobytes()).hexdigest()


def record_the_first_backbone_kernel(folder: str):
    """Runs in every worker before it trains: each model built there leaves the SHA-256 of its
    backbone's first kernel (Conv1) in `folder`, in a file named after the worker's process."""
    import keras

    from core.modeling import models

    build_model = models.build_model

    def build_and_record(*args, **kwargs):
        built = build_model(*args, **kwargs)
        kernel = models.backbone_of(built.model).get_layer("Conv1").kernel
        digest = kernel_digest(keras.ops.convert_to_numpy(kernel))
        with open(os.path.join(folder, f"worker-{os.getpid()}.txt"), "w") as handle:
            handle.write(digest)
        return built

    models.build_model = build_and_record


def test_the_launcher_obtains_the_weights_once_and_every_worker_starts_from_that_file(
        ray_cluster, tiny_dataset, tmp_path, tmp_path_factory, monkeypatch):
    """The made MobileNetV2 file is in the launcher's Keras cache only: the workers, whose cache is
    elsewhere and who may not download, get it from the launcher, and both backbones hold its kernel."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))  # read here; the workers never see it
    made = backbone_weight_file(tmp_path_factory)
    os.makedirs(weights_cache_dir())
    cached = cached_weights_path("mobilenetv2", MOBILENET_IMAGE_SIZE)
    shutil.copyfile(made, cached)
    kernels = tmp_path / "kernels"
    kernels.mkdir()
    train_dir, val_dir = tiny_dataset
    config = TrainingConfig(train_dir=train_dir, val_dir=val_dir, model="mobilenetv2",
                            image_size=MOBILENET_IMAGE_SIZE, epochs=1, batch_size=4, workers=2,
                            allow_open_ports=True, max_restarts=0, out_dir=str(tmp_path / "runs")).validate()
    train_files, val_files = load_split(config.train_dir, config.val_dir, config.val_split, config.seed)
    result = ray_launcher.train_on_ray(config, train_files, val_files, lambda event: None, threading.Event(),
                                       worker_setup=functools.partial(record_the_first_backbone_kernel,
                                                                      str(kernels)))
    assert result.status == "completed", result.message
    digests = [path.read_text() for path in kernels.iterdir()]
    assert len(digests) == 2 and set(digests) == {kernel_digest(first_kernel(made))}
    report = files.read_json(os.path.join(result.run_dir, run_folder.REPORT_FILE))
    assert report["pretrained_weights"] is True
    assert (report["weights"]["origin"], report["weights"]["path"]) == ("cache", cached)
    assert os.listdir(weights_cache_dir()) == [os.path.basename(cached)]


def test_stopped_while_the_launcher_obtained_the_weights_no_worker_starts(ray_cluster, tiny_dataset, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras-home"))
    train_dir, val_dir = tiny_dataset
    config = TrainingConfig(train_dir=train_dir, val_dir=val_dir, model="mobilenetv2",
                            image_size=MOBILENET_IMAGE_SIZE, epochs=1, batch_size=4, workers=2,
                            allow_open_ports=True, out_dir=str(tmp_path / "runs")).validate()
    train_files, val_files = load_split(config.train_dir, config.val_dir, config.val_split, config.seed)
    cancel, events = threading.Event(), []
    cancel.set()  # as if Stop was pressed during the download
    result = ray_launcher.train_on_ray(config, train_files, val_files, events.append, cancel)
    assert (result.status, result.epochs_completed, result.run_dir) == ("cancelled", 0, "")
    assert isinstance(events[-1], RunFinished) and events[-1].result == result
    assert not any(isinstance(e, WorkerProgress | RunStarted) for e in events)
    assert not (tmp_path / "runs").exists()
