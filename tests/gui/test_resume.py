"""Never lose a training, in the window: Resume after Stop or a failure, "Resume a run folder…" for any
run (also to train a finished one longer), the out-of-memory dialog, plateau markers on the plots and
the data-wait meter in the status bar."""

from __future__ import annotations

import csv
import json
import os

from PySide6.QtCore import QObject, Qt, QThread, Slot
from PySide6.QtWidgets import QMessageBox

from core.config import TrainingConfig


def tiny_config(tmp_path, tiny_dataset, **changes) -> TrainingConfig:
    train, val = tiny_dataset
    config = TrainingConfig(train_dir=train, val_dir=val, epochs=3, batch_size=4, image_size=16,
                            out_dir=str(tmp_path / "runs"))
    return config.replace(**changes)


class _StopAfter(QObject):
    """Lives on the GUI thread, so its slot runs there: a plain function connected to a worker signal
    would run on the training thread, and clicking a button from there crashes Qt."""

    def __init__(self, qtbot, page, epoch: int):
        super().__init__(page)
        self.qtbot, self.page, self.epoch = qtbot, page, epoch

    @Slot(object)
    def on_epoch(self, event) -> None:
        assert QThread.currentThread() is self.thread()
        if event.epoch == self.epoch and self.page.stop_button.isEnabled():
            self.qtbot.mouseClick(self.page.stop_button, Qt.MouseButton.LeftButton)


def stop_after_epoch(qtbot, page, epoch: int) -> None:
    """Clicks Stop as soon as the window has been told that `epoch` (0-based) finished."""
    page.worker.epoch_end.connect(_StopAfter(qtbot, page, epoch).on_epoch)


def history_rows(run_dir: str) -> list[dict]:
    with open(os.path.join(run_dir, "history.csv"), newline="") as handle:
        return list(csv.DictReader(handle))


def report(run_dir: str) -> dict:
    with open(os.path.join(run_dir, "report.json")) as handle:
        return json.load(handle)


def test_stop_then_resume_with_the_real_engine(make_window, qtbot, tmp_path, tiny_dataset):
    """Train 3 epochs, Stop after the first, Resume: one run folder with 3 epochs, plots that show all 3;
    then "Resume a run folder…" trains the finished run one epoch longer."""
    window = make_window(config=tiny_config(tmp_path, tiny_dataset, epochs=3))
    page = window.training
    assert not page.resume_button.isEnabled() and page.resume_run_button.isEnabled()
    with qtbot.waitSignal(page.idle, timeout=120_000):
        qtbot.mouseClick(page.train_button, Qt.MouseButton.LeftButton)
        stop_after_epoch(qtbot, page, 0)
    stopped = page.last_result
    assert stopped.status == "cancelled", page.log.text()
    assert 1 <= stopped.epochs_completed < 3
    assert page.resume_button.isEnabled() and page.resume_action.isEnabled()
    assert page.summary_resume_button.isVisible() and page.summary_resume_button.text() == "Resume"

    locked = []
    page.running_changed.connect(lambda running: locked.append(
        (running, page.settings.isEnabled(), page.train_button.isEnabled(), page.resume_button.isEnabled(),
         page.resume_run_button.isEnabled(), page.stop_button.isEnabled())))
    with qtbot.waitSignal(page.idle, timeout=120_000):
        qtbot.mouseClick(page.resume_button, Qt.MouseButton.LeftButton)
    assert locked[0] == (True, False, False, False, False, True)  # the same lock as Train
    result = page.last_result
    assert result.status == "completed", page.log.text()
    assert result.run_dir == stopped.run_dir and result.epochs_completed == 3
    assert [int(row["epoch"]) for row in history_rows(result.run_dir)] == [0, 1, 2]
    assert report(result.run_dir)["status"] == "completed"
    assert len(report(result.run_dir)["resumes"]) == 1
    page.plots.redraw()
    loss = page.plots.plots["loss"]
    assert list(loss.val_epoch.getData()[0]) == [1.0, 2.0, 3.0]  # earlier epochs from the history + new
    assert list(loss.train_epoch.getData()[0]) == [1.0, 2.0, 3.0]
    batch_x = loss.batch_raw.getData()[0]
    assert batch_x[0] > stopped.epochs_completed and batch_x[-1] == 3.0  # batches only of this session
    assert page.plots.marker_texts("resume") == ["resumed"]
    assert "Resuming" in page.log.text()
    # A completed run is not "resumed" by the Resume button; the banner offers to train it longer.
    assert not page.resume_button.isEnabled()
    assert page.summary_resume_button.isVisible() and page.summary_resume_button.text() == "Train more…"

    asked = []
    page.choose_run_folder = lambda start: result.run_dir
    page.ask_resume_epochs = lambda info, default: asked.append((info.done, info.total, default)) or 4
    with qtbot.waitSignal(page.idle, timeout=120_000):
        qtbot.mouseClick(page.resume_run_button, Qt.MouseButton.LeftButton)
    assert asked == [(3, 3, 8)]  # a finished run: done + 5 is offered
    assert page.last_result.status == "completed" and page.last_result.epochs_completed == 4, page.log.text()
    assert len(history_rows(result.run_dir)) == 4
    assert report(result.run_dir)["config"]["epochs"] == 4


def test_resume_run_folder_shows_what_it_holds_and_asks_for_epochs(make_window, qtbot, tmp_path,
                                                                   tiny_dataset, fake_engine):
    engine = fake_engine(steps=3)
    window = make_window(train_fn=engine, config=tiny_config(tmp_path, tiny_dataset, epochs=3))
    page = window.training
    page.resume_fn = engine.resume
    with qtbot.waitSignal(page.idle, timeout=10_000):
        page.start_training()
    run_dir = page.last_result.run_dir

    # Cancelling either dialog starts nothing.
    page.choose_run_folder = lambda start: ""
    assert not page.resume_run_folder() and not page.is_running
    starts = []
    page.choose_run_folder = lambda start: starts.append(start) or run_dir
    page.ask_resume_epochs = lambda info, default: None
    assert not page.resume_run_folder() and not page.is_running
    assert starts == [run_dir]  # the dialog opens at the last run

    asked = []
    page.ask_resume_epochs = lambda info, default: asked.append((info, default)) or default
    with qtbot.waitSignal(page.idle, timeout=10_000):
        page.resume_run_action.trigger()
    info, default = asked[0]
    assert (info.done, info.total, info.status, default) == (3, 3, "completed", 8)
    assert "3 of 3 epochs trained" in info.describe() and "completed" in info.describe()
    assert engine.resumed == [(run_dir, 8)]
    assert page.last_result.status == "completed" and page.last_result.epochs_completed == 8
    page.plots.redraw()
    assert page.plots.point_counts() == {"batch": 5 * 3, "train_epoch": 8, "val_epoch": 8}
    assert page.plots.best_epoch == 7


def test_an_unfinished_run_folder_offers_its_own_total(make_window, qtbot, tmp_path, tiny_dataset,
                                                       fake_engine):
    engine = fake_engine(steps=4, batch_delay=0.005)
    window = make_window(train_fn=engine, config=tiny_config(tmp_path, tiny_dataset, epochs=6))
    page = window.training
    page.resume_fn = engine.resume
    with qtbot.waitSignal(page.idle, timeout=10_000):
        page.start_training()
        stop_after_epoch(qtbot, page, 1)
    done = page.last_result.epochs_completed
    assert page.last_result.status == "cancelled" and 2 <= done < 6
    asked = []
    page.choose_run_folder = lambda start: page.last_result.run_dir
    page.ask_resume_epochs = lambda info, default: asked.append((info.status, info.done, default)) or default
    with qtbot.waitSignal(page.idle, timeout=10_000):
        assert page.resume_run_folder()
    assert asked == [("cancelled", done, 6)]
    assert page.last_result.epochs_completed == 6


def test_a_folder_that_is_not_a_run_cannot_be_resumed(make_window, qtbot, tmp_path, fake_engine):
    window = make_window(train_fn=fake_engine())
    page = window.training
    errors = []
    page.show_error = lambda title, message, details="", **_: errors.append((title, message))
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    page.choose_run_folder = lambda start: str(empty)
    page.ask_resume_epochs = lambda info, default: 5
    assert not page.resume_run_folder()
    assert errors[0][0] == "This run cannot be resumed" and "no checkpoint" in errors[0][1]
    assert not page.is_running and page.train_button.isEnabled()


def test_resume_that_the_engine_refuses_reports_why(make_window, qtbot, tmp_path, tiny_dataset,
                                                    fake_engine):
    engine = fake_engine(steps=2)
    window = make_window(train_fn=engine, config=tiny_config(tmp_path, tiny_dataset, epochs=2))
    page = window.training
    page.resume_fn = engine.resume
    with qtbot.waitSignal(page.idle, timeout=10_000):
        page.start_training()
    errors = []
    page.show_error = lambda title, message, details="", **_: errors.append((title, message))
    assert not page.start_resume(page.last_result.run_dir)  # completed: nothing more to train
    assert errors[0][0] == "Nothing to resume" and "already trained 2 epochs of 2" in errors[0][1]
    # The engine's own refusal (here the fake's, worded like core.training.driver.resume) also arrives.
    page.resume_fn = lambda run_dir, on_event, cancel, epochs=None: engine.resume(run_dir, on_event,
                                                                                   cancel, 2)
    with qtbot.waitSignal(page.idle, timeout=10_000):
        assert page.start_resume(page.last_result.run_dir, 3)
    assert errors[-1][0] == "Training could not start" and "Ask for more epochs" in errors[-1][1]


def test_out_of_memory_failure_says_what_to_do_and_offers_resume(make_window, qtbot, tmp_path, tiny_dataset,
                                                                 fake_engine):
    engine = fake_engine(steps=3, fail="run")
    window = make_window(train_fn=engine, config=tiny_config(tmp_path, tiny_dataset, epochs=4))
    page = window.training
    errors = []
    page.show_error = lambda title, message, details="", **kwargs: errors.append((title, message, kwargs))
    with qtbot.waitSignal(page.idle, timeout=10_000):
        page.start_training()
    title, message, options = errors[0]
    assert title == "Training failed" and "reduce batch size or image size" in message
    assert options["offer_resume"] and "Resume continues" in options["note"]
    assert "batches of 2 images, half as many" in options["note"]  # tiny_config's batch size is 4
    assert page.resume_button.isEnabled() and page.resume_action.isEnabled()
    assert page.summary_resume_button.isVisible() and page.summary_resume_button.text() == "Resume"
    assert "reduce batch size or image size" in page.summary.details.text()

    # The real dialog: the engine's message as its headline, and a Resume button that resumes.
    del page.show_error
    healthy = fake_engine(steps=3)
    page.resume_fn = healthy.resume
    page._on_run_failed(message, "details", page.last_result)
    box = page._error_box
    assert box.isVisible() and "reduce batch size or image size" in box.text()
    assert "Epochs 1 to 1 are saved" in box.informativeText() and "half as many" in box.informativeText()
    resume = next(b for b in box.buttons() if b.text() == "Resume")
    with qtbot.waitSignal(page.idle, timeout=10_000):
        qtbot.mouseClick(resume, Qt.MouseButton.LeftButton)
    assert healthy.resumed == [(page.last_result.run_dir, None, 2)]  # smaller batches after running out
    assert page.last_result.status == "completed" and page.last_result.epochs_completed == 4
    assert healthy.configs[-1].batch_size == 2


def test_a_failure_before_the_first_epoch_offers_no_resume(make_window, qtbot, tmp_path, fake_engine):
    window = make_window(train_fn=fake_engine())
    page = window.training
    from core.events import RunResult

    result = RunResult(str(tmp_path / "runs" / "x"), "failed", 0, None, None, None, {}, 0.5,
                       "Out of memory: reduce batch size or image size, then train again.")
    page._on_run_failed(result.message, "trace", result)
    box = page._error_box
    assert [b.text() for b in box.buttons() if b.text() == "Resume"] == []
    assert box.standardButtons() & QMessageBox.StandardButton.Ok
    assert "nothing to resume" in box.informativeText()
    box.close()
    assert not page.resume_button.isEnabled() and not page.summary_resume_button.isVisible()


def test_lr_reductions_and_early_stop_are_marked_on_the_plots(make_window, qtbot, tmp_path, tiny_dataset,
                                                              fake_engine):
    engine = fake_engine(steps=4, lr_drop_after=(1, 3), early_stop_after=4)
    window = make_window(train_fn=engine, config=tiny_config(tmp_path, tiny_dataset, epochs=10,
                                                             reduce_lr_patience=2, early_stopping_patience=3))
    page = window.training
    with qtbot.waitSignal(page.idle, timeout=10_000):
        page.start_training()
    assert engine.configs[0].reduce_lr_patience == 2 and engine.configs[0].early_stopping_patience == 3
    plots = page.plots
    assert plots.lr_changes == [(2.0, 1e-3, 5e-4), (4.0, 5e-4, 2.5e-4)]
    assert plots.marker_texts("lr") == ["lr → 0.0005", "lr → 0.00025"]
    assert plots.early_stop_x == 5.0 and plots.marker_texts("early_stop") == ["early stop"]
    accuracy_markers = plots.plots["accuracy"].markers
    assert sorted(line.value() for line in accuracy_markers) == [2.0, 4.0, 5.0]
    assert page.last_result.status == "completed" and page.last_result.epochs_completed == 5
    assert "Stopped early after epoch 5" in page.log.text()
    assert list(plots.learning_rates.y) == [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4]
    assert "lr@3 0.0005" in plots.show_values_at(3.0)


def test_a_resumed_run_continues_its_plots_and_markers(make_window, qtbot, tmp_path, tiny_dataset,
                                                       fake_engine, screenshot):
    engine = fake_engine(steps=8, batch_delay=0.003, lr_drop_after=(1, 4), early_stop_after=6)
    window = make_window(train_fn=engine, config=tiny_config(tmp_path, tiny_dataset, epochs=10,
                                                             reduce_lr_patience=2, early_stopping_patience=3))
    page = window.training
    page.resume_fn = engine.resume
    with qtbot.waitSignal(page.idle, timeout=10_000):
        page.start_training()
        stop_after_epoch(qtbot, page, 2)
    done = page.last_result.epochs_completed
    assert page.last_result.status == "cancelled" and done >= 3
    assert page.plots.marker_texts("lr") == ["lr → 0.0005"]

    seen_before_start = []
    page.plots.redrawn.connect(lambda: seen_before_start.append(page.plots.point_counts()))
    with qtbot.waitSignal(page.idle, timeout=10_000):
        page.resume_action.trigger()
        # The earlier epochs are on the plots at once, before the engine has started.
        assert page.plots.point_counts() == {"batch": 0, "train_epoch": done, "val_epoch": done}
        assert page.plots.marker_texts("resume") == ["resumed"]
    plots = page.plots
    plots.redraw()
    assert page.last_result.status == "completed" and page.last_result.epochs_completed == 7
    assert plots.point_counts() == {"batch": 8 * (7 - done), "train_epoch": 7, "val_epoch": 7}
    assert plots.resumed_at == float(done)
    # The reduction before the resume comes from the history, the one after from the live message.
    assert [x for x, _, _ in plots.lr_changes] == [2.0, 5.0]
    assert plots.early_stop_x == 7.0
    assert "Epoch 7 of 10" in page.run_status.epoch_label.text()
    window.resize(1360, 860)
    plots.set_smoothing(0.6)
    plots.redraw()
    qtbot.wait(50)
    path = screenshot(window, "window_resumed_run_markers.png")
    assert os.path.getsize(path) > 10_000


def test_status_bar_shows_the_data_wait_of_the_last_epoch(make_window, qtbot, tmp_path, tiny_dataset,
                                                          fake_engine):
    window = make_window(train_fn=fake_engine(steps=2, data_wait=0.42),
                         config=tiny_config(tmp_path, tiny_dataset, epochs=2))
    page = window.training
    label = page.data_wait_label
    assert not label.isVisible()
    with qtbot.waitSignal(page.idle, timeout=10_000):
        page.start_training()
    assert label.isVisible() and label.text() == "data wait 42%"
    assert window.statusBar().isAncestorOf(label)
    assert "waited for images" in label.toolTip() and "decoding is the bottleneck" in label.toolTip()
    assert "#b54708" in label.styleSheet()  # a high wait is shown as a warning
    assert "waited for data 42%" in page.log.text()
    page.train_fn = fake_engine(steps=2, data_wait=0.04)
    with qtbot.waitSignal(page.idle, timeout=10_000):
        page.start_training()
        assert not label.isVisible()  # a new run starts without the last run's value
    assert label.text() == "data wait 4%" and "#b54708" not in label.styleSheet()


def test_the_run_menu_offers_both_resume_actions(make_window, fake_engine):
    window = make_window(train_fn=fake_engine())
    run_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Run")
    texts = [action.text() for action in run_menu.actions() if not action.isSeparator()]
    assert texts == ["&Train", "&Stop", "&Resume last run", "Resume run &folder…"]
    assert not window.training.resume_action.isEnabled()  # nothing to resume yet


def test_the_default_resume_function_passes_the_smaller_batch_size_on(monkeypatch):
    import core.training.driver
    from gui.training_page import default_resume_fn

    calls = []
    monkeypatch.setattr(core.training.driver, "resume", lambda *args, **kwargs: calls.append((args, kwargs)))
    default_resume_fn("runs/x", print, None, epochs=None, batch_size=16)
    assert calls == [(("runs/x", print, None), {"epochs": None, "batch_size": 16})]
