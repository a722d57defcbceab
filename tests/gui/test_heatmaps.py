"""The "Why?" switches with a real tiny model: heatmaps on the Predict cards and in the viewer, the
chosen and the true class side by side under Evaluate, always computed on the model thread."""

from __future__ import annotations

import os
import threading

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from trained_model import tiny_run

from gui.gallery import HEATMAP_ROLE


@pytest.fixture
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory)


@pytest.fixture
def explain_threads(monkeypatch):
    """Records the thread each heatmap batch ran on."""
    import core.modeling.explain as explain

    threads: list[str] = []
    original = explain.explain_images

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        yield from original(*args, **kwargs)

    monkeypatch.setattr(explain, "explain_images", recording)
    return threads


def card_heatmaps(gallery) -> list:
    return [gallery.gallery_model.index(row).data(HEATMAP_ROLE) for row in range(gallery.count())]


def double_click(qtbot, gallery, row: int) -> None:
    rect = gallery.visualRect(gallery.gallery_model.index(row))
    qtbot.mouseClick(gallery.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(gallery.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_predict_why_puts_the_heatmap_on_each_card_and_the_opened_image(
    make_window, qtbot, run, explain_threads, screenshot
):
    window = make_window()
    page = window.predict
    window.tabs.setCurrentWidget(page)
    assert not page.why_button.isEnabled()  # nothing to explain yet
    with qtbot.waitSignal(window.models.loaded, timeout=30_000):
        page.model_bar.open(run.run_dir)
    paths = [os.path.join(run.val_dir, name, f"{name}_000.png") for name in ("blue", "green", "red")]
    with qtbot.waitSignal(page.job_done, timeout=30_000):
        page.add_paths(paths)
    assert card_heatmaps(page.gallery) == [None] * 3  # thumbnails

    with qtbot.waitSignal(page.heatmaps.settled, timeout=60_000):
        qtbot.mouseClick(page.why_button, Qt.MouseButton.LeftButton)
    shown = card_heatmaps(page.gallery)
    assert all(isinstance(pixmaps, list) and len(pixmaps) == 1 for pixmaps in shown)
    assert all(isinstance(p[0], QPixmap) and (p[0].width(), p[0].height()) == (16, 16) for p in shown)
    for item in page.gallery.items():
        assert item.explain == (int(item.data.probabilities.argmax()),)
    assert explain_threads and all(name != threading.main_thread().name for name in explain_threads)
    screenshot(window, "predict_why.png")

    opened: list[str] = []
    page.open_image = opened.append
    with qtbot.waitSignal(page.viewer.shown_heatmaps, timeout=60_000) as blocker:
        double_click(qtbot, page.gallery, 1)
    assert blocker.args == [paths[1]] and page.viewer.isVisible() and opened == []
    assert page.viewer.images.count() == 1  # one heatmap: the top class
    page.viewer.close()

    qtbot.mouseClick(page.why_button, Qt.MouseButton.LeftButton)  # off: thumbnails, the desktop viewer
    assert card_heatmaps(page.gallery) == [None] * 3
    double_click(qtbot, page.gallery, 0)
    assert opened == [paths[0]]


def test_evaluate_why_shows_the_chosen_and_the_true_class_side_by_side(
    make_window, qtbot, run, explain_threads, screenshot
):
    window = make_window()
    page = window.evaluation
    window.tabs.setCurrentWidget(page)
    with qtbot.waitSignal(window.models.loaded, timeout=30_000):
        page.model_bar.open(run.run_dir)
    page.folder.set_path(run.mislabelled_dir)  # 3 images in another class's folder: 3 mistakes
    with qtbot.waitSignal(page.job_done, timeout=30_000):
        qtbot.mouseClick(page.evaluate_button, Qt.MouseButton.LeftButton)
    mistakes = page.mistakes.items()
    assert len(mistakes) == 3
    narrow = page.mistakes.visualRect(page.mistakes.gallery_model.index(0)).width()

    with qtbot.waitSignal(page.explanations.settled, timeout=60_000):
        qtbot.mouseClick(page.why_button, Qt.MouseButton.LeftButton)
    for item, pixmaps in zip(mistakes, card_heatmaps(page.mistakes), strict=True):
        image = item.data
        assert item.explain == (image.predicted_label, image.true_label)
        assert len(pixmaps) == 2 and not any(pixmap.isNull() for pixmap in pixmaps)
    assert page.mistakes.visualRect(page.mistakes.gallery_model.index(0)).width() > 1.8 * narrow
    assert explain_threads and all(name != threading.main_thread().name for name in explain_threads)
    screenshot(window, "evaluate_why.png")

    # a cell of the confusion matrix: its list shows heatmaps too; a correct image has one
    label = mistakes[0].data.true_label
    with qtbot.waitSignal(page.explanations.settled, timeout=60_000):
        page.show_cell(label, label)
    cells = card_heatmaps(page.cell_gallery)
    assert cells and all(isinstance(pixmaps, list) and len(pixmaps) == 1 for pixmaps in cells)

    page.image_tabs.setCurrentWidget(page.mistakes)
    with qtbot.waitSignal(page.viewer.shown_heatmaps, timeout=60_000):
        double_click(qtbot, page.mistakes, 0)
    assert page.viewer.images.count() == 2  # chosen and true class
    page.viewer.close()


def test_a_model_that_cannot_be_explained_says_so(make_window, qtbot, run, monkeypatch):
    import core.modeling.explain as explain

    def refuse(*args, **kwargs):
        raise explain.ExplainError("The model has no convolutional feature map.")
        yield  # a generator, like the real one

    monkeypatch.setattr(explain, "explain_images", refuse)
    window = make_window()
    page = window.predict
    window.tabs.setCurrentWidget(page)
    with qtbot.waitSignal(window.models.loaded, timeout=30_000):
        page.model_bar.open(run.run_dir)
    with qtbot.waitSignal(page.job_done, timeout=30_000):
        page.add_paths([os.path.join(run.val_dir, "red", "red_000.png")])
    with qtbot.waitSignal(page.heatmaps.problem, timeout=30_000):
        qtbot.mouseClick(page.why_button, Qt.MouseButton.LeftButton)
    assert "No heatmaps: The model has no convolutional feature map." in page.banner.text()
    assert card_heatmaps(page.gallery) == ["failed"]
