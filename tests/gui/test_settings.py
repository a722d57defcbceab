"""Settings: ranges from core.config.LIMITS, 1:1 mapping onto TrainingConfig, persistence with QSettings."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSettings, Qt
from PySide6.QtWidgets import QScrollArea

from core.config import LIMITS, Augmentation, TrainingConfig
from gui.settings_panel import SettingsPanel
from gui.settings_store import SettingsStore
from gui.spin_boxes import ScientificSpinBox


def test_spin_boxes_use_the_engine_limits(qtbot):
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    for name in ("epochs", "batch_size", "image_size", "seed", "early_stopping_patience",
                 "reduce_lr_patience", "reduce_lr_factor"):
        box = getattr(panel, name)
        assert (box.minimum(), box.maximum()) == LIMITS[name]
    panel.epochs.setValue(0)
    assert panel.epochs.value() == 1
    assert (panel.learning_rate.minimum(), panel.learning_rate.maximum()) == LIMITS["learning_rate"]


def test_learning_rate_box_steps_1_2_5_and_parses_scientific(qtbot):
    box = ScientificSpinBox(1e-7, 1.0)
    qtbot.addWidget(box)
    box.setValue(1e-3)
    box.stepBy(1)
    assert box.value() == 2e-3
    box.stepBy(-2)
    assert box.value() == 5e-4
    assert box.valueFromText("3e-5") == 3e-5 and box.textFromValue(3e-5) == "3e-05"
    assert box.validate("abc", 0)[0].name == "Invalid"
    assert box.validate("5", 0)[0].name == "Intermediate"  # out of range cannot be accepted


def test_panel_maps_one_to_one_onto_training_config(qtbot):
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    config = TrainingConfig(epochs=7, batch_size=8, image_size=64, model="mobilenetv2", learning_rate=3e-4,
                            augmentation=Augmentation(flip=True, zoom=True), seed=42, out_dir="/tmp/x",
                            resize_mode="crop", decode_threads=3, early_stopping_patience=4,
                            reduce_lr_patience=2, reduce_lr_factor=0.25, cache=False, cache_memory_mb=768,
                            weights_url="https://mirror.example/keras/", fine_tune_after=3,
                            fine_tune_layers=12, fine_tune_learning_rate=2e-5)
    panel.set_config(config)
    assert panel.apply_to(TrainingConfig()) == config.replace(train_dir=TrainingConfig().train_dir)
    panel.set_config(TrainingConfig())  # and back: every field is set, none keeps an old value
    assert panel.apply_to(config) == TrainingConfig().replace(train_dir=config.train_dir,
                                                              val_dir=config.val_dir)


def test_plateau_and_cache_settings_read_as_off_and_automatic(qtbot):
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    panel.set_config(TrainingConfig())
    assert panel.early_stopping_patience.text() == "Off" and panel.reduce_lr_patience.text() == "Off"
    assert panel.cache.isChecked() and panel.cache_memory_mb.text().startswith("Automatic")
    assert not panel.reduce_lr_factor.isEnabled()  # the factor means nothing while LR reduction is off
    changes = []
    panel.changed.connect(lambda: changes.append(True))
    panel.reduce_lr_patience.setValue(3)
    assert panel.reduce_lr_factor.isEnabled()
    panel.reduce_lr_factor.stepBy(-1)
    panel.early_stopping_patience.setValue(5)
    assert panel.early_stopping_patience.text() == "5 epochs"
    panel.cache.setChecked(False)
    assert not panel.cache_memory_mb.isEnabled()
    panel.cache_memory_mb.setValue(512)
    assert len(changes) == 5
    config = panel.apply_to(TrainingConfig())
    plateau = (config.reduce_lr_patience, config.reduce_lr_factor, config.early_stopping_patience)
    assert plateau == (3, 0.45, 5)
    assert (config.cache, config.cache_memory_mb) == (False, 512)
    assert config.validate() is config


def test_store_round_trip_and_bad_values(tmp_path):
    store = SettingsStore(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    assert store.load_config() == TrainingConfig()  # nothing saved: the demo defaults
    config = TrainingConfig(val_dir=None, val_split=0.3, epochs=9, augmentation=Augmentation.all_on(),
                            learning_rate=1e-5, early_stopping_patience=6, reduce_lr_patience=3,
                            reduce_lr_factor=0.2, cache=False, cache_memory_mb=2048)
    store.save_config(config)
    reloaded = SettingsStore(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)).load_config()
    assert reloaded == config
    assert isinstance(reloaded.cache, bool) and isinstance(reloaded.reduce_lr_factor, float)
    store.settings.setValue("training/reduce_lr_factor", 5.0)  # out of LIMITS: the defaults
    assert store.load_config() == TrainingConfig()
    store.save_config(config)
    store.settings.setValue("training/epochs", "many")
    store.settings.setValue("training/batch_size", 0)  # out of range: the whole config falls back
    assert store.load_config().epochs == TrainingConfig().epochs


def test_recent_folders_are_most_recent_first_and_bounded(store):
    for i in range(12):
        store.add_recent_folder(f"/data/{i}")
    store.add_recent_folder("/data/5")
    recent = store.recent_folders()
    assert recent[0] == "/data/5" and len(recent) == 10 and recent.count("/data/5") == 1


def test_settings_persist_between_launches(make_window, tmp_path):
    window = make_window()
    page = window.training
    page.settings.epochs.setValue(12)
    page.settings.model.setCurrentIndex(page.settings.model.findData("efficientnetb0"))
    page.settings.augment["flip"].setChecked(True)
    page.data.use_split.setChecked(True)
    page.data.split_percent.setValue(25)
    page.settings.early_stopping_patience.setValue(4)
    page.settings.reduce_lr_patience.setValue(2)
    page.settings.reduce_lr_factor.setValue(0.3)
    page.settings.cache.setChecked(False)
    page.settings.cache_memory_mb.setValue(1024)
    window.close()
    again = make_window()
    config = again.training.current_config()
    assert (config.epochs, config.model, config.augmentation.flip) == (12, "efficientnetb0", True)
    assert (config.early_stopping_patience, config.reduce_lr_patience, config.reduce_lr_factor) == (4, 2, 0.3)
    assert (config.cache, config.cache_memory_mb) == (False, 1024)
    assert not again.training.settings.cache_memory_mb.isEnabled()
    assert config.val_dir is None and config.val_split == 0.25
    assert again.training.data.use_split.isChecked()


def _in_view(widget, scroll: QScrollArea) -> bool:
    """`widget` is shown and lies wholly inside the scroll area's visible part."""
    viewport = scroll.viewport()
    top_left = widget.mapTo(viewport, QPoint(0, 0))
    return widget.isVisible() and viewport.rect().contains(QRect(top_left, widget.size()))


def test_common_settings_fit_at_1400x900_and_the_rest_fold_under_advanced(make_window, qtbot, screenshot):
    window = make_window()
    window.resize(1400, 900)
    qtbot.wait(50)
    page = window.training
    panel = page.settings
    scroll = page.findChild(QScrollArea)
    screenshot(window, "settings_1400x900.png")
    assert not panel.advanced_visible()
    for widget in (panel.model, panel.epochs, panel.batch_size, panel.image_size, panel.learning_rate,
                   panel.augment["contrast"], panel.early_stopping_patience, panel.advanced_toggle):
        assert _in_view(widget, scroll), widget
    folded = (panel.resize_mode, panel.reduce_lr_patience, panel.seed, panel.decode_threads, panel.cache,
              panel.cache_memory_mb, panel.out_dir, panel.placement.device, panel.placement.workers)
    assert not any(widget.isVisible() for widget in folded)
    assert scroll.verticalScrollBar().maximum() == 0  # nothing below to scroll to

    qtbot.mouseClick(panel.advanced_toggle, Qt.MouseButton.LeftButton)
    assert all(widget.isVisible() for widget in folded)
    assert page.store.advanced_settings_open()


def test_advanced_remembers_open_and_counts_changed_settings_while_folded(make_window, store):
    store.set_advanced_settings_open(True)
    window = make_window()
    panel = window.training.settings
    assert panel.advanced_visible() and panel.seed.isVisible()
    assert panel.advanced_toggle.text() == "Advanced"
    panel.seed.setValue(7)
    panel.cache.setChecked(False)
    panel.reduce_lr_patience.setValue(3)
    panel.reduce_lr_factor.setValue(0.3)
    panel.advanced_toggle.click()
    assert not panel.seed.isVisible() and not store.advanced_settings_open()
    # make_window's runs go to a temporary folder: the output folder differs from the default too.
    assert panel.advanced_toggle.text() == "Advanced (4 changed)"
    assert "Reduce LR, Seed, Image cache, Output folder" in panel.advanced_toggle.toolTip()
    window.close()
    assert not make_window().training.settings.advanced_visible()

