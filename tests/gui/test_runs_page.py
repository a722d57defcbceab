"""The Runs tab: listing, sorting, filtering, the overlay and what differs, live curves of a run that
trains, the actions, the trash and its undo; in the window with the fake engine, and on the two real
digits runs of tests/digits_runs.py."""

import os
import shutil

import pytest
from digits_runs import digits_runs
from PySide6.QtCore import QSettings, Qt
from run_folders import add_epoch, history, make_run

from core.config import TrainingConfig
from core.runs import run_folder
from gui.runs_page import RunsPage
from gui.runs_table import BASE_COLUMNS


@pytest.fixture
def open_page(qtbot, tmp_path):
    """open_page(folder) -> a shown RunsPage listing `folder`, its first listing done."""

    def open_(folder, poll_ms=3000):
        settings = QSettings(str(tmp_path / "runs-page.ini"), QSettings.Format.IniFormat)
        page = RunsPage(lambda: str(folder), settings, poll_ms=poll_ms)
        page.resize(1200, 800)
        qtbot.addWidget(page)
        with qtbot.waitSignal(page.runs_listed, timeout=10_000):
            page.show()
        return page

    return open_


def column(page, title):
    headers = [page.proxy.headerData(c, Qt.Orientation.Horizontal) for c in range(page.proxy.columnCount())]
    return headers.index(title)


def shown(page, title):
    return [page.proxy.index(row, column(page, title)).data() for row in range(page.proxy.rowCount())]


def select(qtbot, page, run_dirs):
    with qtbot.waitSignal(page.curves_drawn, timeout=10_000):
        page.select_runs(run_dirs)


def test_the_table_lists_sorts_and_filters_runs_with_the_settings_that_differ(open_page, tmp_path):
    make_run(tmp_path, "fast", learning_rate=0.01, started="2026-11-29T10:00:00+0000")
    make_run(tmp_path, "slow", "cancelled", 1, 4, learning_rate=0.001, started="2026-11-29T11:00:00+0000")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "report.json").write_text("{")
    page = open_page(tmp_path)
    assert shown(page, "Run") == ["slow", "fast", "broken"]  # newest first
    assert shown(page, "Status") == ["stopped", "completed", "unreadable"]
    assert shown(page, "learning_rate") == ["0.001", "0.01", "-"]  # settings that differ have columns
    assert shown(page, "Epochs")[:2] == ["1/4", "2/2"] and shown(page, "Dataset")[0] == "train · cccccccc"
    page.table.sortByColumn(column(page, "Best val loss"), Qt.SortOrder.AscendingOrder)
    assert shown(page, "Run") == ["broken", "fast", "slow"]  # no value first, then 0.6 < 1.2
    page.filter_edit.setText("STOPPED")
    assert shown(page, "Run") == ["slow"] and page.count_label.text() == "1 of 3 runs"
    headers = [page.proxy.headerData(c, Qt.Orientation.Horizontal) for c in range(page.proxy.columnCount())]
    assert headers == [*BASE_COLUMNS, "learning_rate"]  # epochs differ too, but have their column


def test_selected_runs_are_overlaid_in_one_colour_each_and_compared(qtbot, open_page, tmp_path):
    fast = make_run(tmp_path, "fast", learning_rate=0.01, started="2026-11-29T10:00:00+0000")
    slow = make_run(tmp_path, "slow", "cancelled", 1, 4, learning_rate=0.001,
                    started="2026-11-29T11:00:00+0000")
    page = open_page(tmp_path)
    select(qtbot, page, [fast, slow])
    overlay = page.overlay
    assert overlay.curve_data(fast, "val_loss") == ([1.0, 2.0], [row["val_loss"] for row in history(2)])
    assert overlay.curve_data(slow, "val_accuracy")[1] == [history(1)[0]["val_accuracy"]]
    assert sorted(overlay.legend_names()) == ["fast", "slow"]
    for run_dir in (fast, slow):
        pen_colour = overlay.curves[run_dir]["val_loss"].opts["pen"].color().name()
        assert pen_colour == page.colours[run_dir] == page.colour_in_table(run_dir)
    assert page.colours[fast] != page.colours[slow]
    assert not overlay.curves[fast]["loss"].isVisible()
    overlay.training_check.setChecked(True)
    assert overlay.curves[fast]["loss"].isVisible()
    rows = page.differences.rows()  # columns in table order: slow, fast
    assert rows["setting: learning_rate"] == ["0.001", "0.01"] and rows["result: status"] == ["cancelled",
                                                                                            "completed"]
    assert "setting: batch_size" not in rows and "data: fingerprint" not in rows  # the same in both
    page.differences.only_differences.setChecked(False)
    assert page.differences.rows()["data: fingerprint"] == ["cccccccc", "cccccccc"]
    select(qtbot, page, [fast])
    assert list(overlay.curves) == [fast] and page.colour_in_table(slow) is None


def test_a_run_that_trains_grows_live_in_the_overlay(qtbot, open_page, tmp_path):
    live = make_run(tmp_path, "live", "running", 1, 5)
    page = open_page(tmp_path, poll_ms=100)
    assert page.poll.isActive() and shown(page, "Status") == ["training"]
    select(qtbot, page, [live])
    assert len(page.overlay.curve_data(live, "val_loss")[0]) == 1
    add_epoch(live)
    qtbot.waitUntil(lambda: len(page.overlay.curve_data(live, "val_loss")[0]) == 2, timeout=10_000)
    qtbot.waitUntil(lambda: shown(page, "Epochs") == ["2/5"], timeout=10_000)
    assert not page.trash_action.isEnabled() and "training now" in page.trash_action.toolTip()


def test_the_actions_hand_the_selected_run_over(qtbot, open_page, tmp_path):
    done = make_run(tmp_path, "done")
    empty = make_run(tmp_path, "empty", "failed", done=0, started="2026-11-29T09:00:00+0000")
    page = open_page(tmp_path)
    opened = []
    page.open_folder = opened.append
    select(qtbot, page, [done])
    for action, signal in ((page.open_in_train_action, page.open_in_train_requested),
                           (page.train_like_action, page.train_like_requested),
                           (page.evaluate_action, page.evaluate_requested),
                           (page.export_action, page.export_requested)):
        assert action.isEnabled()
        with qtbot.waitSignal(signal, timeout=1000) as emitted:
            action.trigger()
        assert emitted.args == [done]
    page.open_folder_action.trigger()
    assert opened == [done]
    select(qtbot, page, [empty])  # no epoch finished: no checkpoint, no model
    assert not page.open_in_train_action.isEnabled()
    assert "no checkpoint" in page.open_in_train_action.toolTip()
    assert not page.evaluate_action.isEnabled() and page.train_like_action.isEnabled()
    select(qtbot, page, [done, empty])
    assert not page.evaluate_action.isEnabled() and page.trash_action.isEnabled()


def test_runs_go_to_the_trash_and_come_back_with_undo(qtbot, open_page, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".local" / "share").mkdir(parents=True)  # Qt makes the Trash folder, not its parents
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    runs = tmp_path / "home" / "runs"
    first = make_run(runs, "first", started="2026-11-29T10:00:00+0000")
    second = make_run(runs, "second", started="2026-11-29T11:00:00+0000")
    page = open_page(runs)
    select(qtbot, page, [first, second])
    with qtbot.waitSignal(page.runs_listed, timeout=10_000):
        assert page.trash_selected()
    assert not os.path.exists(first) and not os.path.exists(second) and shown(page, "Run") == []
    trash = home / ".local" / "share" / "Trash"
    assert (trash / "files" / "first" / run_folder.REPORT_FILE).exists()
    assert (trash / "info" / "first.trashinfo").exists()
    assert page.undo_action.isEnabled() and page.undo_action.text() == "Undo: restore 2 runs"
    with qtbot.waitSignal(page.runs_listed, timeout=10_000):
        assert page.undo_trash()
    assert os.path.exists(os.path.join(first, run_folder.REPORT_FILE)) and os.path.exists(second)
    assert not (trash / "info" / "first.trashinfo").exists() and not (trash / "files" / "first").exists()
    assert shown(page, "Run") == ["second", "first"] and not page.undo_action.isEnabled()


def test_a_run_that_cannot_be_restored_stays_on_the_undo_stack(qtbot, open_page, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".local" / "share").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    runs = home / "runs"
    first = make_run(runs, "first", started="2026-11-29T10:00:00+0000")
    second = make_run(runs, "second", started="2026-11-29T11:00:00+0000")
    page = open_page(runs)
    errors = []
    page.show_error = lambda title, message: errors.append(message)
    select(qtbot, page, [first, second])
    with qtbot.waitSignal(page.runs_listed, timeout=10_000):
        assert page.trash_selected()
    os.makedirs(os.path.join(first, "a new folder of that name"))
    with qtbot.waitSignal(page.runs_listed, timeout=10_000):
        assert not page.undo_trash()
    assert os.path.exists(os.path.join(second, run_folder.REPORT_FILE))  # restored
    assert len(errors) == 1 and "first exists again" in errors[0] and "Undo will try first again" in errors[0]
    assert page.undo_action.isEnabled() and page.undo_action.text() == "Undo: restore first"
    shutil.rmtree(first)  # the cause is gone: the next Undo brings it back
    with qtbot.waitSignal(page.runs_listed, timeout=10_000):
        assert page.undo_trash()
    assert os.path.exists(os.path.join(first, run_folder.REPORT_FILE)) and not page.undo_action.isEnabled()


def test_a_run_emptied_from_the_trash_is_reported_and_leaves_the_undo_stack(qtbot, open_page, tmp_path,
                                                                             monkeypatch):
    home = tmp_path / "home"
    (home / ".local" / "share").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    gone = make_run(home / "runs", "gone")
    page = open_page(home / "runs")
    errors = []
    page.show_error = lambda title, message: errors.append(message)
    select(qtbot, page, [gone])
    with qtbot.waitSignal(page.runs_listed, timeout=10_000):
        assert page.trash_selected()
    shutil.rmtree(home / ".local" / "share" / "Trash" / "files" / "gone")  # the trash was emptied
    with qtbot.waitSignal(page.runs_listed, timeout=10_000):
        assert not page.undo_trash()
    assert "no longer in the trash" in errors[0] and not page.undo_action.isEnabled()


def test_without_a_trash_nothing_is_deleted(qtbot, open_page, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "no" / "such" / "folder"))
    monkeypatch.setenv("HOME", str(tmp_path))
    kept = make_run(tmp_path / "runs", "kept")
    page = open_page(tmp_path / "runs")
    errors = []
    page.show_error = lambda title, message: errors.append(message)
    select(qtbot, page, [kept])
    assert not page.trash_selected()
    assert os.path.exists(kept) and "Nothing was deleted" in errors[0] and not page.undo_action.isEnabled()


def test_in_the_window_the_list_follows_training_and_train_again_like_it(qtbot, make_window, fake_engine,
                                                                          tmp_path, store):
    engine = fake_engine()
    store.save_config(TrainingConfig(out_dir=str(tmp_path / "runs"), epochs=2, learning_rate=0.003))
    window = make_window(train_fn=engine)
    window.tabs.setCurrentWidget(window.runs)
    with qtbot.waitSignal(window.runs.runs_listed, timeout=10_000):
        window.runs.refresh()
    assert shown(window.runs, "Run") == []
    with qtbot.waitSignal(window.training.idle, timeout=30_000):
        window.training.start_training()
    run_dir = os.path.join(str(tmp_path / "runs"), "fake-run")
    # listed when its folder appeared, and again when the run ended; polling stops with the training
    qtbot.waitUntil(lambda: shown(window.runs, "Status") == ["completed"] and not window.runs.poll.isActive(),
                    timeout=10_000)
    assert shown(window.runs, "Run") == ["fake-run"]
    window.training.settings.set_config(window.training.current_config().replace(learning_rate=0.05))
    select(qtbot, window.runs, [run_dir])
    window.runs.train_like_action.trigger()
    assert window.tabs.currentWidget() is window.training
    assert window.training.current_config().learning_rate == 0.003  # the run's, again
    qtbot.waitUntil(lambda: not window.training.data.is_scanning(), timeout=10_000)
    with qtbot.waitSignal(window.training.idle, timeout=30_000):
        assert window.training.start_training()
    assert engine.likes == [None, run_dir] and engine.configs[-1].learning_rate == 0.003


def test_the_runs_tab_overlays_two_real_digits_runs(qtbot, open_page, tmp_path_factory):
    runs = digits_runs(tmp_path_factory)
    page = open_page(runs.out_dir)
    assert sorted(shown(page, "learning_rate")) == ["0.001", "0.01"]
    select(qtbot, page, [runs.stopped, runs.like])
    for run_dir in (runs.stopped, runs.like):
        rows = run_folder.read_history(run_dir)
        for key in ("val_loss", "val_accuracy"):
            assert page.overlay.curve_data(run_dir, key) == (
                [row["epoch"] + 1.0 for row in rows], [row[key] for row in rows])
    assert page.differences.rows()["setting: learning_rate"] == [
        str(page.runs[run_dir].config["learning_rate"]) for run_dir in page.selected_run_dirs()]
