"""Options that combine: each works end to end on a tiny dataset (issue 20, item 4, the engine's part).

- class weights with several replicas (--gpus: two logical CPUs stand in for two GPUs);
- fine-tuning under --gpus: the new optimizer is compiled and built in the strategy's scope;
- --jit with fine-tuning: the fine-tuned model still compiles with XLA;
- resume with each, after the fine-tuning switch, in the same process (as the window resumes).

Class weights, fine-tuning and --jit under Ray workers are in test_ray_training.py (one cluster per
module). --jit under --gpus has no test here: XLA cannot run MirroredStrategy over logical CPUs
(each replica's variables live on another CPU device, TensorFlow's "tf.Variable on a different
device" known issue), with or without fine-tuning. The backbone is a small stand-in of MobileNetV2's
kinds of layers (tests/stand_in_backbone.py).
"""

import json
import os
import subprocess
import sys
import threading
import zipfile

import pytest
from conftest import make_class_folders
from stand_in_backbone import stand_in_backbone
from weight_files import MOBILENET_IMAGE_SIZE

from core.config import TrainingConfig
from core.events import EpochEnd, FineTuneStarted
from core.modeling import models
from core.training.driver import resume, train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def uneven(tmp_path):
    """Two classes, one three times the other, so balanced class weights are not all 1."""
    size = MOBILENET_IMAGE_SIZE
    train_dir = make_class_folders(str(tmp_path / "train"), {"blue": 6, "red": 2}, size=size)
    val_dir = make_class_folders(str(tmp_path / "val"), {"blue": 2, "red": 2}, size=size)
    return train_dir, val_dir


def fine_tuning(data, out_dir, **changes) -> TrainingConfig:
    return TrainingConfig(
        train_dir=data[0], val_dir=data[1], model="mobilenetv2", image_size=MOBILENET_IMAGE_SIZE, epochs=3,
        batch_size=4, fine_tune_after=1, fine_tune_layers=4, fine_tune_learning_rate=1e-3,
        class_weights="auto", out_dir=out_dir, **changes,
    ).validate()


def stopped_after(epoch):
    """(events, on_event, cancel): cancels the run at the end of epoch `epoch`."""
    cancel, events = threading.Event(), []

    def on_event(event):
        events.append(event)
        if isinstance(event, EpochEnd) and event.epoch == epoch:
            cancel.set()

    return events, on_event, cancel


def compile_config(run_dir: str, name: str = "last.keras") -> dict:
    with zipfile.ZipFile(os.path.join(run_dir, name)) as archive:
        return json.loads(archive.read("config.json"))["compile_config"]


def test_jit_stays_on_through_the_fine_tuning_switch_and_a_resume(uneven, tmp_path, monkeypatch):
    monkeypatch.setattr(models, "build_backbone", stand_in_backbone)
    config = fine_tuning(uneven, str(tmp_path / "runs"), jit=True)
    events, on_event, cancel = stopped_after(1)  # the first fine-tuned epoch
    first = train(config, on_event, cancel)
    assert (first.status, first.epochs_completed) == ("cancelled", 2), first.message
    assert [e for e in events if isinstance(e, FineTuneStarted)] == [FineTuneStarted(1, 4, 1e-3)]
    switched = compile_config(first.run_dir)
    assert switched["jit_compile"] is True
    assert switched["optimizer"]["config"]["learning_rate"] == pytest.approx(1e-3)
    done = resume(first.run_dir)
    assert (done.status, done.epochs_completed) == ("completed", 3), done.message
    assert compile_config(done.run_dir)["jit_compile"] is True


FINE_TUNE_ON_TWO_LOGICAL_CPUS = """
import json, sys, threading
sys.path.insert(0, "tests")
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from core.training.distribution import strategies
strategies.gpu_devices = lambda: ["/cpu:0", "/cpu:1"]  # the two logical CPUs stand in for two GPUs
from core.modeling import models
from stand_in_backbone import stand_in_backbone
models.build_backbone = stand_in_backbone
from core.config import TrainingConfig
from core.events import EpochEnd, FineTuneStarted
from core.files import read_json
from core.training.driver import resume, train

config = TrainingConfig.from_json(sys.argv[1])
cancel, switched = threading.Event(), []

def stop_after_the_first_fine_tuned_epoch(event):
    if isinstance(event, FineTuneStarted):
        switched.append(event.epoch)
    if isinstance(event, EpochEnd) and event.epoch == 1:
        cancel.set()

first = train(config, stop_after_the_first_fine_tuned_epoch, cancel)
done = resume(first.run_dir)
report = read_json(first.run_dir + "/report.json")
print(json.dumps({"first": [first.status, first.epochs_completed, first.message],
                  "done": [done.status, done.epochs_completed, done.message], "switched": switched,
                  "run_dir": done.run_dir, "distribution": report["distribution"],
                  "class_weights": report["class_weights"]}))
"""


@pytest.mark.timeout(600)  # a fresh TensorFlow and two sessions; minutes on a busy 2-core machine
def test_class_weights_and_fine_tuning_train_and_resume_on_two_replicas(uneven, tmp_path):
    """--gpus all (two logical CPUs) with --class-weights auto and fine-tuning, stopped after the
    first fine-tuned epoch and resumed in the same process. TensorFlow splits a device only before
    it starts, so this runs in a fresh process."""
    config = fine_tuning(uneven, str(tmp_path / "runs"), gpus="all")
    out = subprocess.run(
        [sys.executable, "-c", FINE_TUNE_ON_TWO_LOGICAL_CPUS, config.to_json()],
        capture_output=True, text=True, timeout=540, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    outcome = json.loads(out.stdout.strip().splitlines()[-1])
    assert outcome["first"][:2] == ["cancelled", 2], outcome["first"]
    assert outcome["done"][:2] == ["completed", 3], outcome["done"]
    assert outcome["switched"] == [1]
    distribution = outcome["distribution"]
    assert (distribution["strategy"], distribution["replicas"]) == ("MirroredStrategy", 2)
    assert outcome["class_weights"] == {"blue": pytest.approx(4 / 6, abs=1e-4), "red": pytest.approx(2.0)}
    assert compile_config(outcome["run_dir"])["optimizer"]["config"]["learning_rate"] == pytest.approx(1e-3)
