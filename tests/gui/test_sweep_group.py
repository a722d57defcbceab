"""The sweep in the window: the Runs tab's group (a row per trial, live; the scatter; Train with the
best settings) on a sweep folder of real tiny runs, and the Sweep dialog with a fast fake engine.

The sweep folder is made without Ray: sweep.json from create_sweep and the trials trained here into
their run folders, recorded by the same bookkeeping (runner.Sweep) that a Ray sweep uses.
"""

import os
import threading

import pytest
from digits_runs import write_digits
from PySide6.QtCore import QSettings

from core.config import TrainingConfig
from core.events import EpochEnd
from core.runs import sweep_folder
from core.training.driver import train
from core.training.sweep.runner import (
    Sweep,
    SweepFinished,
    SweepRequest,
    SweepStarted,
    TrialUpdate,
    create_sweep,
)
from core.training.sweep.space import parse_dimension
from core.training.sweep.trial import mark_stopped
from gui.runs_page import RunsPage
from gui.sweep_dialog import SweepDialog, default_ranges

RATES = (0.01, 0.003, 1e-6)


@pytest.fixture(scope="module")
def half_done_sweep(tmp_path_factory):
    """A sweep whose trial 0 completed, trial 2 was stopped after epoch 1, and trial 1 still runs
    (its run folder is trained but the sweep has not heard yet): returns (sweep_dir, finish_trial_1)."""
    root = str(tmp_path_factory.mktemp("sweep-window"))
    train_dir, val_dir = write_digits(root)
    base = TrainingConfig(train_dir=train_dir, val_dir=val_dir, epochs=2, batch_size=16, image_size=16,
                          out_dir=os.path.join(root, "runs"), seed=3, cache_disk_mb=0)
    space = {"learning_rate": parse_dimension("learning_rate", ",".join(map(str, RATES)))}
    seed = next(s for s in range(1000) if _rates(space, s) == list(RATES))
    sweep_dir = create_sweep(SweepRequest(base.replace(seed=seed), space, trials=3))
    sweep = Sweep(sweep_dir, sweep_folder.read_sweep(sweep_dir).record, lambda event: None)
    for index in range(3):
        sweep.started(index)
        config = TrainingConfig.from_dict(sweep.trials[index]["config"])
        cancel = threading.Event()
        stop_after_one = (lambda e, cancel=cancel: cancel.set() if isinstance(e, EpochEnd) else None) \
            if index == 2 else None
        os.makedirs(sweep.run_dir(index), exist_ok=True)
        train(config, stop_after_one, cancel, run_dir=sweep.run_dir(index))
    sweep.ended(0)
    sweep.stopped[2] = 1  # as ASHA does, and the trial's process marks its report (core.training.sweep.trial)
    mark_stopped(sweep.run_dir(2), sweep.id, 1)
    sweep.ended(2)

    def finish_trial_1():
        sweep.ended(1)
        sweep.finish(cancelled=False)

    return sweep_dir, finish_trial_1


def _rates(space, seed):
    from core.training.sweep.space import sample_trials

    return [t["learning_rate"] for t in sample_trials(space, 3, seed)]


def cells(group, column):
    return [group.table.item(row, column).text() for row in range(group.table.rowCount())]


def test_the_runs_tab_shows_the_sweep_as_a_group_live_with_its_scatter_and_best(qtbot, tmp_path,
                                                                               half_done_sweep):
    sweep_dir, finish_trial_1 = half_done_sweep
    settings = QSettings(str(tmp_path / "runs-page.ini"), QSettings.Format.IniFormat)
    page = RunsPage(lambda: os.path.dirname(sweep_dir), settings)
    qtbot.addWidget(page)
    with qtbot.waitSignal(page.runs_listed, timeout=20_000):
        page.show()
    statuses = {page.proxy.index(row, 1).data(): page.proxy.index(row, 3).data()
                for row in range(page.proxy.rowCount())}
    assert statuses["trial-02"] == "stopped by sweep" and statuses["trial-00"] == "completed"
    group = page.sweeps
    page.views.setCurrentWidget(group)
    assert group.info.sweep_dir == sweep_dir
    assert cells(group, 0) == ["trial-00", "trial-01", "trial-02"]
    assert cells(group, 1) == ["completed", "running", "stopped by the sweep after epoch 1"]
    assert cells(group, 5) == [str(rate) for rate in RATES]  # the searched setting's column
    assert len(group.scatter_points()) == 2 and group.timer.isActive()  # trial 1 has no result yet

    finish_trial_1()  # the sweep's process writes sweep.json; the group reads it again by itself
    qtbot.waitUntil(lambda: cells(group, 1)[1] == "completed", timeout=20_000)
    assert len(group.scatter_points()) == 3 and not group.timer.isActive()
    assert {status for _x, _y, status in group.scatter_points()} == {"completed", "stopped"}
    best = sweep_folder.read_sweep(sweep_dir).best
    with qtbot.waitSignal(page.train_like_requested, timeout=5_000) as asked:
        group.best_button.click()
    assert asked.args == [os.path.join(sweep_dir, best["run_dir"])]
    assert best["run_dir"] in ("trial-00", "trial-01")


def test_the_dialog_fills_ranges_from_the_settings_and_refuses_bad_ones(qtbot):
    config = TrainingConfig(learning_rate=1e-3, batch_size=32, model="small-cnn")
    assert default_ranges(config) == {"learning_rate": "0.0001:0.01", "batch_size": "16,32,64",
                                      "model": "small-cnn", "augment": "on,off"}
    dialog = SweepDialog(config)
    qtbot.addWidget(dialog)
    request = dialog.request()
    assert request.space["learning_rate"].low == 1e-4 and request.trials == 8
    dialog.fields["learning_rate"].setText("0.1:0.001")
    assert dialog.start() is False and "low < high" in dialog.problem.text()
    assert not dialog.is_running


def test_the_dialog_runs_the_sweep_on_a_thread_and_stop_reaches_it(qtbot):
    seen = {}

    def fake_sweep(request, on_event, cancel):
        on_event(SweepStarted("/tmp/sweep-x", [], 2, 1, "Ray cluster on this computer"))
        on_event(TrialUpdate(0, "running", "/tmp/sweep-x/trial-00", 1, {"val_accuracy": 0.5}))
        seen["stopped"] = cancel.wait(20)
        return SweepFinished("/tmp/sweep-x", "cancelled", None, [])

    dialog = SweepDialog(TrainingConfig(), sweep_fn=fake_sweep)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.sweep_started, timeout=10_000) as started:
        assert dialog.start()
    assert started.args == ["/tmp/sweep-x"]
    qtbot.waitUntil(lambda: "trial 00: running, 1 epochs, val_acc 0.500" in dialog.log.toPlainText(),
                    timeout=10_000)
    with qtbot.waitSignal(dialog.sweep_ended, timeout=20_000):
        dialog.reject()  # closing while it runs stops it first
    qtbot.waitUntil(lambda: not dialog.is_running, timeout=10_000)
    assert seen["stopped"] is True and "Sweep cancelled." in dialog.log.toPlainText()


def test_sweep_on_the_train_tab_opens_the_dialog_with_the_current_settings(qtbot, make_window, tmp_path):
    window = make_window(config=TrainingConfig(epochs=7, learning_rate=0.02, out_dir=str(tmp_path / "runs")))
    training = window.training
    assert training.sweep_button.text() == "Sweep…"
    dialog = training.open_sweep_dialog()
    assert dialog.epochs.value() == 7 and dialog.fields["learning_rate"].text() == "0.002:0.2"
    assert dialog.parent() is training
    dialog.close()
