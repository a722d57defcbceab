"""Fine-tuning in the window: its settings, and the plot marker where it began (live and on resume)."""

from __future__ import annotations

from core.config import TrainingConfig
from core.events import EpochEnd, FineTuneStarted, RunFinished, RunResult, RunStarted
from gui.plots import LivePlots
from gui.settings_panel import SettingsPanel


def test_the_fine_tune_marker_stands_in_for_the_learning_rate_drop_it_causes(qtbot):
    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.reset(epochs=4)
    logs = {"loss": 0.5, "val_loss": 0.6, "learning_rate": 1e-3}
    plots.add_epoch(0, logs)
    plots.add_epoch(1, logs)
    plots.mark_fine_tune(2, 1e-5)  # fine-tuning began with the third epoch
    plots.add_epoch(2, {**logs, "learning_rate": 1e-5})  # the drop it caused: no second marker
    plots.add_epoch(3, {**logs, "learning_rate": 5e-6})  # a later plateau reduction is marked
    assert plots.marker_texts("fine_tune") == ["fine-tuning, lr 1e-05"]
    assert plots.marker_texts("lr") == ["lr → 5e-06"]
    assert plots.plots["accuracy"].marker_texts("fine_tune") == ["fine-tuning, lr 1e-05"]
    plots.reset(epochs=4)
    plots.load_history([{"epoch": 0, **logs}, {"epoch": 1, **logs, "learning_rate": 1e-5}])
    plots.mark_fine_tune(1, 1e-5)  # known only after the history (a resumed run): replaces its lr marker
    assert plots.marker_texts() == ["fine-tuning, lr 1e-05"]


def test_fine_tune_settings_apply_to_pretrained_models_only(qtbot):
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    panel.set_config(TrainingConfig(model="mobilenetv2"))
    assert panel.fine_tune_after.text() == "Off" and panel.fine_tune_after.isEnabled()
    assert not panel.fine_tune_layers.isEnabled() and not panel.fine_tune_learning_rate.isEnabled()
    panel.fine_tune_after.setValue(3)
    assert panel.fine_tune_layers.isEnabled() and panel.fine_tune_learning_rate.isEnabled()
    assert panel.apply_to(TrainingConfig()).fine_tune_after == 3
    panel.model.setCurrentIndex(panel.model.findData("small-cnn"))
    assert not panel.fine_tune_after.isEnabled() and not panel.fine_tune_layers.isEnabled()
    assert panel.apply_to(TrainingConfig()).fine_tune_after == 0  # small-cnn has nothing to fine-tune


def fine_tuning_engine(resumed: bool):
    """Stands in for train(): a run whose fine-tuning begins at epoch 2, or a resumed one past it."""

    def run(config, on_event, cancel) -> RunResult:
        started = FineTuneStarted(epoch=2, layers=30, learning_rate=1e-5)
        history = [{"epoch": e, "loss": 1.0, "val_loss": 1.0} for e in range(3)] if resumed else []
        on_event(RunStarted(config.out_dir, ["a", "b"], {"a": 4, "b": 4}, {"a": 2, "b": 2}, 2, 1,
                            config.epochs, len(history), 4, "CPU only", True, history=history,
                            fine_tune=started if resumed else None))
        for epoch in range(len(history), config.epochs):
            if epoch == 2:
                on_event(started)
            on_event(EpochEnd(epoch, config.epochs, {"loss": 1.0, "val_loss": 1.0}, 0.1, 100.0, 0.0, 0))
        result = RunResult(config.out_dir, "completed", config.epochs, 0, 0.5, 1.0, {}, 0.1)
        on_event(RunFinished(result))
        return result

    return run


def test_the_window_marks_where_fine_tuning_began(make_window, qtbot, tiny_dataset, tmp_path):
    train_dir, val_dir = tiny_dataset
    config = TrainingConfig(train_dir=train_dir, val_dir=val_dir, model="mobilenetv2", image_size=32,
                            epochs=4, fine_tune_after=2, out_dir=str(tmp_path / "runs"))
    for resumed in (False, True):
        window = make_window(train_fn=fine_tuning_engine(resumed), config=config)
        page = window.training
        with qtbot.waitSignal(page.idle, timeout=10_000):
            page.start_training()
        assert page.plots.fine_tune_x == 2.0
        assert page.plots.marker_texts("fine_tune") == ["fine-tuning, lr 1e-05"]
