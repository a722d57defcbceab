"""Where a run trains, in the window: the device picker, this computer or a Ray cluster, workers, the
speed switches, and each worker's progress in the status strip."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import Qt

from core.config import TrainingConfig
from core.errors import ConfigError
from core.training.device import GpuInfo
from gui.placement_panel import PlacementPanel
from gui.settings_panel import SettingsPanel

TWO_GPUS = [GpuInfo(0, "NVIDIA H100 80GB HBM3", 81559), GpuInfo(1, "NVIDIA A10", 23028)]


def labels(combo) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def test_without_a_gpu_the_picker_says_so_and_stays_on_the_cpu(qtbot):
    panel = PlacementPanel()
    qtbot.addWidget(panel)
    panel.set_gpus([])
    assert labels(panel.device) == ["CPU only: no GPU found"] and not panel.device.isEnabled()
    assert panel.apply_to(TrainingConfig()).gpus == ""


def test_the_picker_lists_gpus_with_their_memory_and_maps_onto_gpus(qtbot):
    panel = PlacementPanel()
    qtbot.addWidget(panel)
    panel.set_config(TrainingConfig(gpus="all"))  # saved before the GPUs were listed
    panel.set_gpus(TWO_GPUS)
    assert labels(panel.device) == ["Automatic (the first GPU)", "All 2 GPUs",
                                    "GPU 0: NVIDIA H100 80GB HBM3, 80 GB", "GPU 1: NVIDIA A10, 22 GB"]
    assert panel.device.isEnabled() and panel.apply_to(TrainingConfig()).gpus == "all"
    panel.device.setCurrentIndex(3)
    assert panel.apply_to(TrainingConfig()).gpus == "1"
    panel.workers.setValue(2)  # Ray workers take the GPU Ray gives them
    assert not panel.device.isEnabled() and panel.apply_to(TrainingConfig()).gpus == ""


def test_this_computer_or_a_cluster_workers_and_speed_switches_round_trip(qtbot):
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    on_cluster = TrainingConfig(cluster="10.0.0.5:6379", workers=4, precision="mixed", jit=True,
                                max_restarts=3)
    panel.set_config(on_cluster)
    assert panel.placement.where.currentText() == "Ray cluster at …" and panel.placement.address.isEnabled()
    assert panel.apply_to(TrainingConfig()) == on_cluster.replace(train_dir=TrainingConfig().train_dir)
    panel.placement.where.setCurrentIndex(0)  # back to this computer: the address no longer applies
    assert not panel.placement.address.isEnabled()
    local = panel.apply_to(TrainingConfig())
    assert (local.cluster, local.workers, local.precision, local.jit) == ("", 4, "mixed", True)
    panel.set_config(TrainingConfig())
    assert panel.apply_to(on_cluster) == TrainingConfig().replace(train_dir=on_cluster.train_dir)


def test_local_workers_need_the_open_ports_box_and_a_cluster_says_its_network_must_be_trusted(qtbot):
    panel = PlacementPanel()
    qtbot.addWidget(panel)
    panel.show()
    assert not panel.open_ports.isEnabled() and not panel.network_note.isVisible()  # one process: no port
    panel.workers.setValue(2)
    assert panel.open_ports.isEnabled() and "Allow open ports" in panel.network_note.text()
    with pytest.raises(ConfigError, match="--gpus"):  # the window's Train refuses it the same way
        panel.apply_to(TrainingConfig()).validate()
    panel.open_ports.setChecked(True)
    assert "unauthenticated connections on every network interface" in panel.network_note.text()
    assert panel.apply_to(TrainingConfig()).validate().allow_open_ports
    panel.where.setCurrentIndex(panel.where.findData("cluster"))
    assert not panel.open_ports.isEnabled() and "trusted network" in panel.network_note.text()
    assert not panel.apply_to(TrainingConfig()).allow_open_ports  # a cluster needs no consent here
    panel.set_config(TrainingConfig(workers=3, allow_open_ports=True))
    assert panel.open_ports.isChecked() and panel.apply_to(TrainingConfig()).allow_open_ports


def test_without_ray_the_cluster_choices_are_off_and_say_how_to_install_it(qtbot, monkeypatch):
    import gui.placement_panel as placement_panel

    monkeypatch.setattr(placement_panel, "ray_installed", lambda: False)
    panel = PlacementPanel()
    qtbot.addWidget(panel)
    panel.show()
    assert not panel.workers.isEnabled() and not panel.where.isEnabled()
    assert panel.ray_hint.isVisible() and "requirements-cluster.txt" in panel.ray_hint.text()


def test_each_workers_batch_shows_in_the_status_strip(make_window, qtbot, tmp_path, tiny_dataset,
                                                      fake_engine):
    train, val = tiny_dataset
    engine = fake_engine(steps=4)
    config = TrainingConfig(train_dir=train, val_dir=val, epochs=2, batch_size=4, image_size=16,
                            workers=2, allow_open_ports=True, out_dir=str(tmp_path / "runs"))
    window = make_window(train_fn=engine, config=config)
    page = window.training
    assert page.settings.placement.workers.value() == 2
    with qtbot.waitSignal(page.idle, timeout=10_000):
        qtbot.mouseClick(page.train_button, Qt.MouseButton.LeftButton)
    assert engine.configs[0].workers == 2
    assert page.workers_label.isVisible() and page.workers_label.text() == "workers 0: 4/4  1: 3/4"
    assert "worker 1 on node-1: epoch 2, batch 3 of 4" in page.workers_label.toolTip()
    assert "2 worker(s), 2 replicas; each step of 4 images gives 2 to each replica" in page.log.text()


@pytest.mark.timeout(420)  # a local Ray cluster starts, two workers import TensorFlow: minutes on 2 cores
def test_two_real_workers_train_end_to_end_from_the_window(make_window, qtbot, tmp_path, tiny_dataset):
    """No fake engine: Workers 2 and "Allow open ports" set in the panel, Train pressed, and the run
    starts its own Ray cluster on loopback, trains on two Ray workers, and stops the cluster."""
    from core import files
    from core.runs import run_folder

    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()  # the run starts its own
    train, val = tiny_dataset
    config = TrainingConfig(train_dir=train, val_dir=val, model="small-cnn", epochs=1, batch_size=4,
                            image_size=16, max_restarts=0, out_dir=str(tmp_path / "runs"))
    window = make_window(config=config)
    page = window.training
    placement = page.settings.placement
    placement.workers.setValue(2)
    assert placement.open_ports.isEnabled()
    placement.open_ports.setChecked(True)  # the panel's section may be folded: set as a click would
    with qtbot.waitSignal(page.idle, timeout=240_000):
        qtbot.mouseClick(page.train_button, Qt.MouseButton.LeftButton)
    result = page.controller.last_result
    assert result is not None and result.status == "completed", getattr(result, "message", None)
    report = files.read_json(f"{result.run_dir}/{run_folder.REPORT_FILE}")
    assert report["status"] == "completed" and report["epochs_completed"] == 1
    assert report["distribution"]["workers"] == 2 and report["config"]["allow_open_ports"] is True
    assert "unauthenticated connections on every network interface" in page.log.text()
    assert not sys.modules["ray"].is_initialized()  # the run stopped the cluster it started


def test_a_run_stopped_before_its_workers_started_says_so_without_a_run_folder(make_window, qtbot, tmp_path,
                                                                              tiny_dataset):
    """What the Ray launcher reports when Stop came while it obtained the weights."""
    from core.events import RunFinished, RunResult

    def stopped_before_the_workers_started(config, on_event, cancel, like=None):
        result = RunResult("", "cancelled", 0, None, None, None, {}, 0.0,
                           "Stopped while the weights downloaded, before the workers started.")
        on_event(RunFinished(result))
        return result

    train, val = tiny_dataset
    window = make_window(train_fn=stopped_before_the_workers_started,
                         config=TrainingConfig(train_dir=train, val_dir=val, out_dir=str(tmp_path / "runs")))
    page = window.training
    with qtbot.waitSignal(page.idle, timeout=10_000):
        qtbot.mouseClick(page.train_button, Qt.MouseButton.LeftButton)
    assert "before the workers started" in page.log.text() and "partial run" not in page.log.text()
