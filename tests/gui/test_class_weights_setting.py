"""The settings panel's "Balance classes" checkbox: TrainingConfig.class_weights, saved between launches."""

from PySide6.QtCore import QSettings

from core.config import TrainingConfig
from gui.settings_panel import SettingsPanel
from gui.settings_store import SettingsStore


def test_balance_classes_maps_onto_class_weights_and_is_saved(qtbot, tmp_path):
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    panel.set_config(TrainingConfig())
    assert not panel.balance_classes.isChecked()
    changes = []
    panel.changed.connect(lambda: changes.append(True))
    panel.balance_classes.setChecked(True)
    config = panel.apply_to(TrainingConfig())
    assert config.class_weights == "auto" and changes == [True] and config.validate() is config
    panel.set_config(TrainingConfig(class_weights="none"))
    assert panel.apply_to(config).class_weights == "none"
    path = str(tmp_path / "s.ini")
    store = SettingsStore(QSettings(path, QSettings.Format.IniFormat))
    store.save_config(config)
    assert SettingsStore(QSettings(path, QSettings.Format.IniFormat)).load_config() == config
    store.settings.setValue("training/class_weights", "heavy")  # a hand-edited file: the defaults
    assert store.load_config().class_weights == "none"
