"""Fast training (cached features) in the window: the setting, its cost estimate, and the progress of
computing features in the run status and the log."""

from __future__ import annotations

from core.config import Augmentation, TrainingConfig
from core.events import EpochEnd, FeatureProgress, RunFinished, RunResult, RunStarted
from gui.settings_panel import SettingsPanel


def test_fast_training_is_offered_for_pretrained_models_with_its_cost(qtbot):
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    panel.set_config(TrainingConfig(model="mobilenetv2", image_size=224))
    assert panel.fast_training.isEnabled() and panel.fast_training.isChecked()
    assert not panel.feature_copies.isEnabled()  # copies are augmented views: augmentation is off
    assert panel.apply_to(TrainingConfig()).features == "auto"
    panel.set_image_count(2000)
    assert "about 1 s per 100 images at 224 px" in panel.feature_cost.text()
    assert "about 20 s for these 2,000" in panel.feature_cost.text()
    panel.augment["flip"].setChecked(True)
    assert panel.feature_copies.isEnabled()
    panel.feature_copies.setValue(3)
    config = panel.apply_to(TrainingConfig())
    assert (config.feature_copies, config.augmentation) == (3, Augmentation(flip=True))
    config.validate()
    assert "about 61 s for these 2,000" in panel.feature_cost.text()  # three views of each image
    panel.fast_training.setChecked(False)
    assert panel.apply_to(TrainingConfig()).features == "none" and not panel.feature_copies.isEnabled()
    assert panel.apply_to(TrainingConfig()).feature_copies == 0
    panel.model.setCurrentIndex(panel.model.findData("small-cnn"))
    assert not panel.fast_training.isEnabled() and panel.feature_cost.isHidden()
    assert panel.apply_to(TrainingConfig()).features == "auto"  # nothing to cache: the default


def feature_engine(config, on_event, cancel) -> RunResult:
    """Stands in for train(): features computed in two batches, then one epoch."""
    on_event(FeatureProgress(4, 8, 40.0))
    on_event(FeatureProgress(8, 8, 50.0))
    on_event(RunStarted(config.out_dir, ["a", "b"], {"a": 4, "b": 4}, {"a": 2, "b": 2}, 2, 1, 1, 0, 4,
                        "CPU only", True))
    on_event(EpochEnd(0, 1, {"loss": 1.0, "val_loss": 1.0}, 0.1, 100.0, 0.0, 0))
    result = RunResult(config.out_dir, "completed", 1, 0, 0.5, 1.0, {}, 0.1)
    on_event(RunFinished(result))
    return result


def test_the_window_shows_features_being_computed(make_window, qtbot, tiny_dataset, tmp_path):
    train_dir, val_dir = tiny_dataset
    config = TrainingConfig(train_dir=train_dir, val_dir=val_dir, model="mobilenetv2", image_size=32,
                            epochs=1, out_dir=str(tmp_path / "runs"))
    window = make_window(train_fn=feature_engine, config=config)
    page = window.training
    shown = []
    original = page.run_status.show_features
    page.run_status.show_features = lambda *args: (shown.append(args), original(*args))
    with qtbot.waitSignal(page.idle, timeout=10_000):
        page.start_training()
    assert shown == [(4, 8, 40.0), (8, 8, 50.0)]
    assert "Computing features: 8 of 8, 50 images/s" in page.log.text()


def test_fast_training_from_the_window_trains_the_real_head_on_cached_features(
    make_window, qtbot, tmp_path, tmp_path_factory, monkeypatch
):
    """The real engine, not a stand-in: a MobileNetV2 at 32 px with a made ImageNet weight file, Fast
    training ticked as it is by default, Train pressed in the window."""
    import os
    import shutil

    from conftest import age_files, make_class_folders
    from weight_files import MOBILENET_IMAGE_SIZE, backbone_weight_file

    from core import files
    from core.modeling.weights import weight_file_name, weights_cache_dir

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv("FITSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    weights = os.path.join(weights_cache_dir(), weight_file_name("mobilenetv2", MOBILENET_IMAGE_SIZE))
    os.makedirs(os.path.dirname(weights))
    shutil.copyfile(backbone_weight_file(tmp_path_factory), weights)
    size = MOBILENET_IMAGE_SIZE
    train_dir = make_class_folders(str(tmp_path / "train"), {"blue": 3, "red": 3}, size=size)
    val_dir = make_class_folders(str(tmp_path / "val"), {"blue": 1, "red": 1}, size=size)
    age_files(str(tmp_path))
    config = TrainingConfig(train_dir=train_dir, val_dir=val_dir, model="mobilenetv2", image_size=size,
                            epochs=2, batch_size=2, out_dir=str(tmp_path / "runs"))
    window = make_window(config=config)
    page = window.training
    assert page.settings.fast_training.isChecked()
    qtbot.waitUntil(page.train_button.isEnabled, timeout=60_000)
    with qtbot.waitSignal(page.idle, timeout=300_000):
        assert page.start_training()
    result = page.last_result
    assert result is not None and result.status == "completed", page.log.text()
    report = files.read_json(os.path.join(result.run_dir, "report.json"))
    assert report["features"]["cached"] and report["features"]["computed"] == 8
    assert "Computing features: 8 of 8" in page.log.text()
    assert len(page.plots.val_epochs["loss"]) == 2
    assert os.path.exists(os.path.join(result.run_dir, "model.keras"))
