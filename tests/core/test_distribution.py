"""Distribution without a cluster: shards, equal steps, the settings, GPU listing, Ray being optional."""

import argparse
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import make_class_folders
from listening import descendants

from core.cli.train_command import add_training_arguments, config_from_args
from core.config import TrainingConfig, parse_gpus
from core.data.dataset import scan
from core.data.pipeline import BatchOrder, steps_for_shards
from core.errors import ConfigError
from core.training import device
from core.training.distribution import ray_launcher
from core.training.distribution.strategies import describe_split

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def files(tmp_path):
    return scan(make_class_folders(str(tmp_path / "train"), {"blue": 7, "green": 6, "red": 4}))[0]


@pytest.mark.parametrize("workers", [1, 2, 3, 5])
def test_shards_are_disjoint_cover_the_set_and_keep_the_class_mix(files, workers):
    shards = [files.shard(rank, workers) for rank in range(workers)]
    paths = [path for shard in shards for path in shard.paths]
    assert sorted(paths) == sorted(files.paths) and len(set(paths)) == len(paths)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    for shard in shards:
        for name, count in shard.counts().items():
            assert abs(count - files.counts()[name] / workers) < 1 + 1e-9
        labels = dict(zip(files.paths, files.labels, strict=True))
        assert [labels[path] for path in shard.paths] == shard.labels.tolist()


def test_skipped_files_stay_with_the_first_shard_only(files):
    files.skipped = ["broken.jpg"]
    assert files.shard(0, 2).skipped == ["broken.jpg"] and files.shard(1, 2).skipped == []
    with pytest.raises(ValueError):
        files.shard(2, 2)


def test_a_fixed_number_of_batches_holds_every_file_once_and_none_empty():
    order = BatchOrder(17, batch_size=4, shuffle=True, seed=3, num_batches=5)
    for epoch in range(2):
        batches = [order.indices(epoch, batch) for batch in range(order.num_batches)]
        assert sorted(np.concatenate(batches).tolist()) == list(range(17))
        assert [len(b) for b in batches] == [4, 4, 3, 3, 3]
    with pytest.raises(ValueError):
        BatchOrder(3, batch_size=1, shuffle=False, seed=0, num_batches=4)


@pytest.mark.parametrize(
    ("total", "workers", "batch", "steps"),
    [(300, 2, 32, 10), (17, 2, 4, 5), (5, 2, 2, 2), (9, 4, 4, 2), (7, 1, 32, 1)],
)
def test_every_shard_can_run_the_common_number_of_steps(total, workers, batch, steps):
    assert steps_for_shards(total, workers, batch) == steps
    assert all(len(range(rank, total, workers)) >= steps for rank in range(workers))


def test_the_report_says_how_a_batch_splits_across_replicas():
    assert describe_split(32, 2) == "16" and describe_split(30, 4) == "7-8" and describe_split(8, 1) == "8"


def test_placement_settings_are_validated_with_messages_that_say_what_to_do():
    base = TrainingConfig()
    assert base.validate().distributed is False
    assert base.replace(workers=2, allow_open_ports=True).validate().distributed
    assert base.replace(cluster="10.0.0.5:6379").validate().distributed
    assert parse_gpus(" 0,1 ") == [0, 1] and parse_gpus("ALL") == "all" and parse_gpus("") == ""
    for bad, match in [
        ({"precision": "half"}, "precision"),
        ({"gpus": "first"}, "GPU numbers"),
        ({"gpus": "1,1"}, "different"),
        ({"cluster": "10.0.0.5"}, "needs a port"),
        ({"workers": 2, "gpus": "all", "allow_open_ports": True}, "not both"),
        ({"workers": 4, "batch_size": 2, "allow_open_ports": True}, "at least 4"),
        ({"workers": 0}, "workers"),
    ]:
        with pytest.raises(ConfigError, match=match):
            base.replace(**bad).validate()


def test_workers_on_this_computer_are_refused_unless_open_ports_are_allowed(tmp_path, capsys):
    """TensorFlow's collective servers bind every interface (hard-coded): a local `--workers N` would
    expose them, so it is refused before any process starts, pointing to --gpus."""
    import main

    local = TrainingConfig(workers=2, out_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="--gpus") as refused:
        local.validate()
    assert "--allow-open-ports" in str(refused.value) and "every network interface" in str(refused.value)
    assert local.replace(allow_open_ports=True).validate().distributed
    assert local.replace(cluster="10.0.0.5:6379").validate().distributed  # a cluster's network is the user's
    processes_before = set(descendants(os.getpid()))
    assert main.main(["train", "--workers", "2", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "--gpus" in error and "--allow-open-ports" in error
    assert list(tmp_path.iterdir()) == [] and set(descendants(os.getpid())) <= processes_before
    parser = argparse.ArgumentParser()
    add_training_arguments(parser)
    assert config_from_args(parser.parse_args(["--workers", "2", "--allow-open-ports"])).allow_open_ports
    assert not config_from_args(parser.parse_args([])).allow_open_ports


def test_a_config_json_from_before_distribution_still_loads():
    old = TrainingConfig().to_dict()
    for name in ("gpus", "workers", "cluster", "max_restarts", "precision", "jit", "allow_open_ports"):
        del old[name]
    assert TrainingConfig.from_dict(old) == TrainingConfig()


def test_gpus_are_listed_with_their_memory_in_tensorflows_numbering(monkeypatch):
    smi = "0, NVIDIA H100 80GB HBM3, 81559\n1, NVIDIA A10, 23028\n2, NVIDIA A10, [N/A]\n"

    def fake_run(command, **kwargs):
        assert command[0] == "nvidia-smi"
        return subprocess.CompletedProcess(command, 0, smi, "")

    monkeypatch.setattr(device.subprocess, "run", fake_run)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpus = device.list_gpus()
    assert [g.label() for g in gpus] == [
        "GPU 0: NVIDIA H100 80GB HBM3, 80 GB", "GPU 1: NVIDIA A10, 22 GB", "GPU 2: NVIDIA A10"
    ]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,1")
    assert [(g.index, g.name, g.memory_mb) for g in device.list_gpus()] == [(0, "NVIDIA A10", None),
                                                                             (1, "NVIDIA A10", 23028)]


def test_no_driver_means_no_gpu(monkeypatch):
    def missing(command, **kwargs):
        raise FileNotFoundError(command[0])

    monkeypatch.setattr(device.subprocess, "run", missing)
    assert device.list_gpus() == []


def test_without_ray_the_cluster_options_say_how_to_install_it(monkeypatch, capsys, tmp_path):
    import main

    real_find_spec = importlib.util.find_spec

    def no_ray(name, *args):
        return None if name == "ray" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", no_ray)
    with pytest.raises(ConfigError, match=r"requirements-cluster\.txt"):
        ray_launcher.require_ray()
    assert main.main(["train", "--workers", "2", "--allow-open-ports", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "needs Ray" in error and "pip install -r requirements-cluster.txt" in error
    assert not (tmp_path / "runs").exists() and list(tmp_path.iterdir()) == []


MIRRORED_ON_TWO_CPUS = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from core.training.distribution import strategies
strategies.gpu_devices = lambda: ["/cpu:0", "/cpu:1"]  # the two logical CPUs stand in for two GPUs
from core.config import TrainingConfig
from core.training.driver import train
result = train(TrainingConfig(out_dir=sys.argv[1], gpus="all", image_size=64, epochs=4))
print(json.dumps({"status": result.status, "accuracy": result.best_val_accuracy, "run_dir": result.run_dir}))
"""


@pytest.mark.timeout(600)  # a fresh TensorFlow and four epochs; minutes on a busy 2-core machine
def test_mirrored_strategy_on_two_logical_cpus_trains_the_demo(tmp_path):
    """TensorFlow splits a device only before it starts, so this runs in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", MIRRORED_ON_TWO_CPUS, str(tmp_path)],
        capture_output=True, text=True, timeout=540, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    outcome = json.loads(out.stdout.strip().splitlines()[-1])
    assert outcome["status"] == "completed" and outcome["accuracy"] >= 0.9
    with open(os.path.join(outcome["run_dir"], "report.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    distribution = report["distribution"]
    assert (distribution["strategy"], distribution["workers"], distribution["replicas"]) == (
        "MirroredStrategy", 1, 2)
    assert distribution["devices"] == ["/cpu:0", "/cpu:1"] and distribution["per_replica_batch"] == "15"
    assert [epoch["images"] for epoch in report["epochs"]] == [300] * 4


RAY_IMPORTED_WHEN_THE_LOCAL_CLUSTER_STARTS = """
import sys
from core.config import TrainingConfig
from core.data.dataset import load_split
from core.training.distribution import ray_launcher

class Started(Exception):
    pass

def start_local_cluster(*args, **kwargs):
    print("ray imported:", "ray" in sys.modules)
    raise Started()

ray_launcher.start_local_cluster = start_local_cluster
config = TrainingConfig(workers=2, allow_open_ports=True, out_dir=sys.argv[1]).validate()
train_files, val_files = load_split(config.train_dir, config.val_dir, config.val_split, config.seed)
try:
    ray_launcher.train_on_ray(config, train_files, val_files, print, None)
except Started:
    pass
"""


@pytest.mark.skipif(not ray_launcher.ray_installed(), reason="requirements-cluster.txt installs Ray")
def test_ray_is_imported_only_after_the_local_cluster_set_its_token(tmp_path):
    """Ray's C++ side reads RAY_AUTH_MODE at its first import: imported before the local cluster set
    it, `train --workers 2` could not talk to its own cluster (a fresh process, as the CLI is)."""
    out = subprocess.run(
        [sys.executable, "-c", RAY_IMPORTED_WHEN_THE_LOCAL_CLUSTER_STARTS, str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ray imported: False" in out.stdout


TENSORFLOW_LOADED_BEFORE_RAY_TRAIN = """
import contextlib, sys
from core import tf_runtime
from core.config import TrainingConfig
from core.data.dataset import load_split
from core.training.distribution import ray_launcher

heard = []
tf_runtime.add_listener(lambda state: heard.append([state, "tensorflow" in sys.modules]))

class Started(Exception):
    pass

@contextlib.contextmanager
def a_cluster(config):
    yield ray_launcher.Cluster("127.0.0.1:1", True, 2.0, 0.0, True)

def start_channel(workers):
    raise Started()

ray_launcher.cluster_for, ray_launcher._start_channel = a_cluster, start_channel
config = TrainingConfig(workers=2, allow_open_ports=True, out_dir=sys.argv[1]).validate()
train_files, val_files = load_split(config.train_dir, config.val_dir, config.val_split, config.seed)
try:
    ray_launcher.train_on_ray(config, train_files, val_files, lambda event: None, threading.Event())
except Started:
    pass
print(json.dumps({"heard": heard, "ray_train_tensorflow": "ray.train.tensorflow" in sys.modules}))
""".replace("import contextlib, sys", "import contextlib, json, sys, threading")


@pytest.mark.skipif(not ray_launcher.ray_installed(), reason="requirements-cluster.txt installs Ray")
def test_ray_trains_tensorflow_module_finds_tensorflow_loaded_under_the_runtimes_lock(tmp_path):
    """`ray.train.tensorflow` imports TensorFlow: the launcher loads it through core.tf_runtime first,
    so TensorFlow is never imported outside that lock (a fresh process, as the CLI is)."""
    out = subprocess.run(
        [sys.executable, "-c", TENSORFLOW_LOADED_BEFORE_RAY_TRAIN, str(tmp_path)],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    outcome = json.loads(out.stdout.strip().splitlines()[-1])
    assert outcome == {"heard": [["loading", False], ["loaded", True]], "ray_train_tensorflow": True}
