"""The Label tab: keys and buttons label, accept, skip and undo as logged moves; the model retrains
after K labels on a worker thread and the ranking refreshes; one path with the real tiny model."""

import os
import shutil
import threading

import numpy as np
import pytest
from conftest import COLOURS
from made_datasets import colour_picture
from PySide6.QtCore import Qt
from trained_model import tiny_run

from core.data import fixes
from core.data.dataset import find_images
from core.events import RunResult
from core.modeling.label_ranking import Ranking, rank_probabilities
from core.training.label_rounds import RoundResult
from gui.label_page import LabelPage
from gui.label_session import RealRounds

CLASSES = ["blue", "green", "red"]


class StubRounds:
    """Ranks by made probabilities (image i: the least sure first) and "retrains" at once, counting
    the rounds: it stands in for training a model, which would take minutes in the window tests."""

    def __init__(self):
        self.calls: list[bool] = []
        self.started = threading.Event()

    def __call__(self, run_dir, train_dir, unlabeled_dir, strategy, retrain, cancel, progress):
        self.calls.append(retrain)
        paths = find_images(unlabeled_dir)
        progress(len(paths), len(paths))
        rng = np.random.default_rng(len(self.calls))
        probabilities = rng.dirichlet(np.ones(3), len(paths))
        ranking = Ranking(unlabeled_dir, strategy, CLASSES, rank_probabilities(paths, probabilities, CLASSES,
                                                                               strategy), [])
        if not retrain:
            return RoundResult(ranking, run_dir)
        accuracy = 0.5 + 0.1 * len(self.calls)
        retrained = RunResult(f"{run_dir}+{len(self.calls)}", "completed", 1, 0, accuracy, 0.3, {}, 0.01)
        return RoundResult(ranking, retrained.run_dir, retrained, "small-cnn", False, 0.01)


@pytest.fixture
def folders(tmp_path):
    train, unlabeled = tmp_path / "train", tmp_path / "unlabeled"
    for name in CLASSES:
        (train / name).mkdir(parents=True)
    for i in range(30):
        colour_picture(str(unlabeled / f"img_{i:02d}.png"), COLOURS[CLASSES[i % 3]], seed=i)
    return str(train), str(unlabeled)


def open_page(qtbot, folders, round_fn, model="a-run", every=20):
    page = LabelPage(round_fn=round_fn)
    qtbot.addWidget(page, before_close_func=lambda p: (p.shutdown(),
                                                       qtbot.waitUntil(lambda: not p.busy, timeout=60_000)))
    page.show()
    qtbot.waitExposed(page)
    train, unlabeled = folders
    page.model_field.set_path(model, emit=False)
    page.unlabeled_field.set_path(unlabeled, emit=False)
    page.train_field.set_path(train, emit=False)
    page.retrain_every.setValue(every)
    with qtbot.waitSignal(page.session.round_finished, timeout=60_000):
        page.start()
    qtbot.waitUntil(lambda: not page.busy, timeout=10_000)
    page.gallery.setFocus()
    return page


def test_keys_label_accept_skip_and_undo_as_logged_moves(qtbot, folders):
    train, unlabeled = folders
    page = open_page(qtbot, folders, StubRounds())
    assert page.gallery.count() == 24 and len(page.session.queue) == 30
    assert [b.text() for b in page.class_buttons] == ["1 blue", "2 green", "3 red"]
    first, second = (item.data for item in page.gallery.items()[:2])
    assert first.rank == 1 and page.current() == first

    qtbot.keyClick(page.gallery, Qt.Key.Key_3)  # the first image is red
    assert os.path.isfile(os.path.join(train, "red", os.path.basename(first.path)))
    assert not os.path.exists(first.path) and page.current() == second

    qtbot.keyClick(page.gallery, Qt.Key.Key_Return)  # accept the suggestion for the second
    assert os.path.isfile(os.path.join(train, second.suggested, os.path.basename(second.path)))

    third = page.current()
    qtbot.keyClick(page.gallery, Qt.Key.Key_S)  # skip: asked again after all the others
    assert page.session.queue[-1] == third and os.path.exists(third.path) and page.current() != third

    qtbot.keyClick(page.gallery, Qt.Key.Key_Backspace)  # undo the accept
    assert os.path.exists(second.path) and page.current() == second
    assert [m.undone for m in fixes.read_moves(train)] == [False, True]
    assert "Labeled 1" in page.status.text() and "29 remaining" in page.status.text()

    qtbot.mouseClick(page.class_buttons[0], Qt.MouseButton.LeftButton)  # the buttons do the same
    assert os.path.isfile(os.path.join(train, "blue", os.path.basename(second.path)))
    assert len(os.listdir(unlabeled)) == 28


def test_the_model_retrains_after_k_labels_in_the_background_and_the_ranking_refreshes(qtbot, folders):
    rounds = StubRounds()
    page = open_page(qtbot, folders, rounds, every=3)
    qtbot.keyClick(page.gallery, Qt.Key.Key_1)
    qtbot.keyClick(page.gallery, Qt.Key.Key_2)
    assert rounds.calls == [False]
    with qtbot.waitSignal(page.session.round_finished, timeout=60_000) as finished:
        qtbot.keyClick(page.gallery, Qt.Key.Key_3)
    qtbot.waitUntil(lambda: not page.busy, timeout=10_000)
    assert rounds.calls == [False, True] and finished.args[0].retrained.status == "completed"
    assert page.session.run_dir == "a-run+2"  # the next ranking uses the new model
    assert len(page.session.queue) == 27 and page.gallery.count() == 24
    status = page.status.text()
    assert "Labeled 3" in status and "27 remaining" in status and "validation accuracy 70.0%" in status
    assert "small-cnn in full (no pretrained backbone)" in status and "retrains after 3 more" in status


def test_an_image_gone_meanwhile_is_reported_and_dropped_without_a_move(qtbot, folders):
    train, _ = folders
    page = open_page(qtbot, folders, StubRounds())
    gone, following = (item.data for item in page.gallery.items()[:2])
    os.remove(gone.path)  # deleted outside FitStudio after the ranking
    with qtbot.waitSignal(page.session.failed, timeout=5_000) as failed:
        qtbot.keyClick(page.gallery, Qt.Key.Key_1)
    assert "no longer there" in failed.args[0] and "no longer there" in page.status.text()
    assert page.current() == following and fixes.read_moves(train) == []
    assert not any(s.path == gone.path for s in page.session.queue)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return tiny_run(tmp_path_factory)


@pytest.mark.timeout(360)  # the first tiny_run may train in this process too, then one retraining
def test_real_model_ranks_labels_and_retrains(qtbot, tmp_path, tiny_model):
    train, unlabeled = str(tmp_path / "train"), str(tmp_path / "unlabeled")
    shutil.copytree(tiny_model.train_dir, train)
    shutil.copytree(tiny_model.val_dir, unlabeled)
    page = open_page(qtbot, (train, unlabeled), RealRounds(), model=tiny_model.run_dir, every=2)
    assert page.gallery.count() == 12 and page.session.class_names == CLASSES
    with qtbot.waitSignal(page.session.round_finished, timeout=120_000) as finished:
        qtbot.keyClick(page.gallery, Qt.Key.Key_Return)
        qtbot.keyClick(page.gallery, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not page.busy, timeout=10_000)
    result = finished.args[0]
    assert result.retrained.status == "completed", result.retrained.message
    assert page.session.run_dir == result.retrained.run_dir != tiny_model.run_dir
    assert len(page.session.queue) == 10 and "validation accuracy" in page.status.text()


def test_the_window_has_a_label_tab_that_defaults_to_the_data_panels_training_folder(make_window):
    window = make_window()
    assert "Label" in [window.tabs.tabText(i) for i in range(window.tabs.count())]
    window.label.model_field.set_path("runs/some-run", emit=False)
    window.label.start()
    assert window.label.train_field.path() == window.training.data.train_dir()
    assert "Choose an unlabeled folder first." in window.label.status.text()


def test_closing_the_window_stops_a_running_round_first(make_window, folders, qtbot):
    window = make_window()
    entered = threading.Event()

    def slow_round(run_dir, train_dir, unlabeled_dir, strategy, retrain, cancel, progress):
        entered.set()
        cancel.wait(60)  # a round stops within a batch when cancelled
        raise RuntimeError("stopped")

    window.label.session.round_fn = slow_round
    train, unlabeled = folders
    window.label.session.start("a-run", train, unlabeled)
    qtbot.waitUntil(entered.is_set, timeout=10_000)
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=30_000)
    assert not window.label.busy
