"""The Data health view on made datasets: cards, side-by-side thumbnails, moves, undo, keep, failures."""

import os
import pathlib
import shutil
import threading

import pytest
from made_datasets import make_messy_dataset

from core import files
from core.data import fixes
from core.errors import FitStudioError
from core.events import CheckProgress
from gui.data_health import DataHealthView


@pytest.fixture
def messy(tmp_path):
    return make_messy_dataset(str(tmp_path))


@pytest.fixture
def open_view(qtbot):
    def open_(train, val, check_labels=False, **kwargs):
        view = DataHealthView(train, val, **kwargs)
        qtbot.addWidget(view)
        view.check_labels.setChecked(check_labels)
        view.show()
        qtbot.waitExposed(view)
        return view

    return open_


def run_check(qtbot, view, timeout=60_000):
    with qtbot.waitSignal(view.check_finished, timeout=timeout) as finished:
        view.start_check()
    qtbot.waitUntil(lambda: not view.is_checking, timeout=10_000)
    return finished.args[0]


def wait_for_thumbnails(qtbot, view):
    qtbot.waitUntil(lambda: all(view.gallery.loader.known(item.path) for item in view.gallery.items()),
                    timeout=10_000)


def select_image(view, name: str) -> str:
    for row, item in enumerate(view.gallery.items()):
        if os.path.basename(item.path) == name:
            view.gallery.setCurrentIndex(view.gallery.model().index(row, 0))
            return item.path
    raise AssertionError(f"{name} is not in the gallery: {[i.path for i in view.gallery.items()]}")


def test_cards_count_each_check_and_a_group_shows_side_by_side(qtbot, open_view, messy, screenshot):
    view = open_view(messy.train, messy.val)
    report = run_check(qtbot, view)
    assert report is not None
    figures = {check: card.figure for check, card in view.cards.items()}
    assert figures == {"duplicates": "3", "leaks": "2", "label_issues": "\u2013", "outliers": "\u2013",
                       "imbalance": "2.7x", "unreadable": "1"}
    assert view.cards["duplicates"].isChecked() and view.finding_list.count() == 3
    assert view.gallery.count() == 2  # the first group's two images, side by side
    assert {os.path.basename(i.path) for i in view.gallery.items()} == {"blue_003.png", "copy.png"}
    wait_for_thumbnails(qtbot, view)
    assert not any(view.gallery.loader.failed(i.path) for i in view.gallery.items())
    view.select_check("leaks")
    assert view.finding_list.count() == 2 and view.gallery.count() == 2
    view.select_check("unreadable")
    assert "broken.jpg" in view.finding_list.item(0).text()
    view.select_check("duplicates")
    wait_for_thumbnails(qtbot, view)
    screenshot(view, "data_health.png")


def test_moving_an_image_to_another_class_and_undoing_it(qtbot, open_view, messy):
    view = open_view(messy.train, messy.val)
    run_check(qtbot, view)
    path = select_image(view, "copy.png")
    assert view.move_button.isEnabled()
    view.target_class.setCurrentText("red")
    with qtbot.waitSignal(view.dataset_changed, timeout=5_000):
        view.move_button.click()
    moved = os.path.join(messy.train, "red", "copy.png")
    assert os.path.isfile(moved) and not os.path.exists(path)
    assert view.cards["duplicates"].figure == "2" and view.finding_list.count() == 2
    assert view.moves.list.count() == 1 and "blue/copy.png -> red/copy.png" in view.moves.list.item(0).text()
    assert "Moved" in view.status.text()
    with qtbot.waitSignal(view.dataset_changed, timeout=5_000):
        view.moves.undo_button.click()
    assert os.path.isfile(path) and not os.path.exists(moved)
    assert "(undone)" in view.moves.list.item(0).text() and not view.moves.undo_button.isEnabled()
    assert fixes.read_moves(messy.train)[0].undone


def test_quarantine_and_not_a_problem(qtbot, open_view, messy):
    view = open_view(messy.train, messy.val)
    run_check(qtbot, view)
    view.select_check("leaks")
    leak = view.selected_finding()
    select_image(view, os.path.basename(leak.paths[1]))  # the validation copy
    view.quarantine_button.click()
    assert os.path.isfile(os.path.join(messy.val, "_quarantine", *os.path.relpath(leak.paths[1], messy.val)
                                       .split(os.sep)))
    assert view.cards["leaks"].figure == "1"
    view.keep_button.click()  # the other leak: meant to be there
    assert view.cards["leaks"].figure == "0"
    report = run_check(qtbot, view)
    assert report.kept == 1 and report.leaks == [] and view.cards["leaks"].figure == "0"


def test_a_failed_move_says_why_and_leaves_both_files(qtbot, open_view, messy):
    view = open_view(messy.train, messy.val)
    run_check(qtbot, view)
    source = select_image(view, "copy.png")
    clash = os.path.join(messy.train, "green", "copy.png")
    with open(source, "rb") as original, open(clash, "wb") as other:
        other.write(original.read()[:-1] + b"!")  # another file of the same name in green/
    before = {path: pathlib.Path(path).read_bytes() for path in (source, clash)}
    view.target_class.setCurrentText("green")
    view.move_button.click()
    assert "already exists" in view.status.text() and "Nothing was changed" in view.status.text()
    assert {path: pathlib.Path(path).read_bytes() for path in (source, clash)} == before
    assert view.moves.list.count() == 0 and view.cards["duplicates"].figure == "3"


def test_stop_cancels_the_check(qtbot, open_view, messy):
    started = threading.Event()

    def slow_check(train_dir, val_dir, model, *, check_labels, on_event, cancel):
        on_event(CheckProgress("Reading every image", 1, 10))
        started.set()
        cancel.wait(30)
        raise FitStudioError("The check was stopped.")

    view = open_view(messy.train, messy.val, check_fn=slow_check)
    with qtbot.waitSignal(view.check_finished, timeout=30_000) as finished:
        view.start_check()
        qtbot.waitUntil(started.is_set, timeout=10_000)
        qtbot.waitUntil(lambda: "Reading every image" in view.step.text(), timeout=5_000)
        assert view.stop_button.isEnabled() and not view.check_button.isEnabled()
        view.stop_button.click()
    assert finished.args == [None] and "Stopped" in view.step.text()
    qtbot.waitUntil(lambda: view.check_button.isEnabled(), timeout=10_000)


def test_a_check_that_fails_says_why(qtbot, open_view, tmp_path):
    view = open_view(str(tmp_path / "missing"), None)
    assert run_check(qtbot, view) is None
    assert "does not exist" in view.status.text()


def test_the_real_label_check_suggests_the_right_class(qtbot, open_view, messy, screenshot):
    view = open_view(messy.train, messy.val, check_labels=True)
    report = run_check(qtbot, view, timeout=170_000)
    assert report.label_source == "quick model"
    view.select_check("label_issues")
    texts = [view.finding_list.item(row).text() for row in range(view.finding_list.count())]
    assert any("flipped_blue_011.png: in 'green', looks like 'blue'" in text for text in texts), texts
    row = next(r for r, text in enumerate(texts) if "flipped_blue_011" in text)
    view.finding_list.setCurrentRow(row)
    item = view.gallery.items()[0]
    assert [bar.label for bar in item.bars] == ["folder: green", "looks like: blue"]
    assert view.target_class.currentText() == "blue"  # the suggestion is ready to apply
    wait_for_thumbnails(qtbot, view)
    screenshot(view, "data_health_labels.png")
    with qtbot.waitSignal(view.dataset_changed, timeout=5_000):
        view.move_button.click()
    assert os.path.isfile(os.path.join(messy.train, "blue", "flipped_blue_011.png"))


def test_the_data_panel_opens_the_view_and_its_counts_follow_the_fixes(qtbot, messy):
    from gui.data_panel import TRAIN, DataPanel

    panel = DataPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_folders(messy.train, messy.val, 0.2)
    qtbot.waitUntil(lambda: not panel.is_scanning() and panel.reports[TRAIN] is not None, timeout=10_000)
    assert panel.health_button.isEnabled()
    def red_count() -> str | None:  # rows: blue, green, red; empty while a scan runs
        item = panel.table.item(2, 1)
        return item.text() if item is not None else None

    assert red_count() == "6"
    view = panel.open_data_health()
    assert (view.train_dir, view.val_dir) == (messy.train, messy.val) and view.isVisible()
    assert panel.open_data_health() is view  # the same folders: the same window again
    view.check_labels.setChecked(False)
    run_check(qtbot, view)
    select_image(view, "copy.png")
    view.target_class.setCurrentText("red")
    view.move_button.click()
    qtbot.waitUntil(lambda: red_count() == "7", timeout=10_000)
    view.moves.undo_button.click()
    qtbot.waitUntil(lambda: red_count() == "6", timeout=10_000)
    view.close()


def write_move_log(root, source, target):
    entry = {"id": "m0", "action": "relabel", "source": source, "target": target, "at": "2026-12-05T00:00"}
    files.write_json(os.path.join(root, fixes.MOVES_FILE), {"moves": [entry]})


@pytest.fixture
def users_file(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.png").write_bytes(b"the user's own file")
    return home / "notes.png"


def test_a_crafted_move_log_is_shown_refused_and_cannot_be_undone(qtbot, open_view, messy, users_file):
    write_move_log(messy.train, "../home/notes.png", "blue/blue_000.png")  # would overwrite notes.png
    view = open_view(messy.train, messy.val)
    assert view.moves.list.count() == 1
    assert "(refused: outside this dataset)" in view.moves.list.item(0).text()
    assert not view.moves.undo_button.isEnabled()
    view.moves.undo_selected()
    assert users_file.read_bytes() == b"the user's own file"
    assert os.path.isfile(os.path.join(messy.train, "blue", "blue_000.png"))


def test_a_log_rewritten_under_the_window_is_refused_when_undone(qtbot, open_view, messy, users_file):
    write_move_log(messy.train, "green/blue_000.png", "blue/blue_000.png")  # a fine move, so far
    view = open_view(messy.train, messy.val)
    assert view.moves.undo_button.isEnabled()
    write_move_log(messy.train, "../home/notes.png", "blue/blue_000.png")
    view.moves.undo_button.click()
    assert "outside this dataset" in view.status.text() and "Nothing was changed" in view.status.text()
    assert "(refused: outside this dataset)" in view.moves.list.item(0).text()
    assert users_file.read_bytes() == b"the user's own file"
    assert os.path.isfile(os.path.join(messy.train, "blue", "blue_000.png"))


def test_an_image_in_a_class_folder_linked_elsewhere_is_not_moved(qtbot, open_view, messy, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(os.path.join(messy.train, "red", "red_000.png"), elsewhere / "copy_of_red.png")
    os.symlink(elsewhere, os.path.join(messy.train, "red", "linked"))
    view = open_view(messy.train, messy.val)
    run_check(qtbot, view)
    linked = next(f for f in view.findings["duplicates"] if any("linked" in p for p in f.paths))
    assert os.path.join(messy.train, "red", "linked", "copy_of_red.png") in linked.text  # no split: outside
    view.finding_list.setCurrentRow(view.findings["duplicates"].index(linked))
    select_image(view, "copy_of_red.png")
    view.quarantine_button.click()
    assert "outside this dataset" in view.status.text()
    assert sorted(os.listdir(elsewhere)) == ["copy_of_red.png"] and view.moves.list.count() == 0
