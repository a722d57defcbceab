"""The Evaluate tab with a real tiny model: table, heatmap, cell lists, mistakes gallery, CSV, bad models,
and "Evaluate this model" from the Train tab's summary."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
from PySide6.QtCore import Qt
from trained_model import tiny_run

from core.events import RunResult
from gui.model_bar import recent_models


@pytest.fixture
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory)


def open_model(qtbot, window, source: str):
    with qtbot.waitSignal(window.models.loaded, timeout=30_000) as blocker:
        window.evaluation.model_bar.open(source)
    return blocker.args[0]


def evaluate(qtbot, page) -> bool:
    with qtbot.waitSignal(page.job_done, timeout=30_000) as blocker:
        qtbot.mouseClick(page.evaluate_button, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def image_files(folder: str) -> list[str]:
    return sorted(os.path.join(root, name) for root, _, names in os.walk(folder) for name in names)


def test_evaluation_fills_table_heatmap_gallery_and_csv(make_window, qtbot, run, tmp_path, screenshot):
    window = make_window()
    page = window.evaluation
    window.tabs.setCurrentWidget(page)
    info = open_model(qtbot, window, run.run_dir)
    assert info.class_names == ("blue", "green", "red") and info.image_size == 16
    assert "3 classes: blue, green, red" in page.model_bar.state.text()
    assert page.folder.path() == run.val_dir  # the run's validation folder, from its config.json
    assert recent_models(window.store.settings)[0] == os.path.normpath(run.run_dir)

    page.folder.set_path(run.mislabelled_dir)  # 3 images in another class's folder
    assert evaluate(qtbot, page) is True
    result = page.result
    assert result.total == len(image_files(run.mislabelled_dir)) == 12

    # per-class table: one row per class and the macro average
    assert page.table.rowCount() == 4
    assert [page.table.item(row, 0).text() for row in range(4)] == ["blue", "green", "red", "Macro average"]
    for row, name in enumerate(result.class_names):
        assert page.table.item(row, 2).text() == f"{result.per_class[name]['recall']:.1%}"
        assert page.table.item(row, 4).text() == str(result.per_class[name]["support"])
    assert page.stat_values["accuracy"].text() == f"{result.accuracy:.1%}"
    assert page.stat_values["images"].text() == "12"

    # heatmap: the matrix, counts summing to the images, names on both axes
    assert page.heatmap.class_names == ["blue", "green", "red"]
    assert page.heatmap.matrix.sum() == result.total
    assert np.array_equal(page.heatmap.matrix, result.confusion_matrix)

    # the gallery: exactly the misclassified images, most confidently wrong first
    mistakes = result.misclassified()
    assert len(mistakes) >= 1
    assert set(run.mislabelled) <= {image.path for image in mistakes}  # the model sees their colour
    items = page.mistakes.items()
    assert [item.path for item in items] == [image.path for image in mistakes]
    confidences = [item.data.confidence for item in items]
    assert confidences == sorted(confidences, reverse=True)
    assert all(not item.data.correct for item in items)
    first = mistakes[0]
    names = result.class_names
    assert items[0].title == f"{names[first.true_label]} → {names[first.predicted_label]}"
    assert items[0].bars[0].value == pytest.approx(first.confidence)
    assert page.image_tabs.tabText(0) == f"Mistakes ({len(mistakes)})"

    # thumbnails load off the GUI thread, then double click opens the image
    qtbot.waitUntil(lambda: page.mistakes.loader.known(first.path), timeout=10_000)
    assert not page.mistakes.loader.failed(first.path)
    opened = []
    page.open_image = opened.append
    rect = page.mistakes.visualRect(page.mistakes.gallery_model.index(0))
    qtbot.mouseClick(page.mistakes.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(page.mistakes.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened == [first.path]

    # clicking a cell lists exactly its images
    true_label, predicted_label = first.true_label, first.predicted_label
    center = page.heatmap.cell_rect(true_label, predicted_label).center()
    assert page.heatmap.cell_at(center) == (true_label, predicted_label)
    qtbot.mouseClick(page.heatmap, Qt.MouseButton.LeftButton, pos=center)
    expected = sorted(
        image.path
        for image in result.images
        if image.true_label == true_label and image.predicted_label == predicted_label
    )
    assert sorted(item.path for item in page.cell_gallery.items()) == expected
    assert len(expected) == result.confusion_matrix[true_label, predicted_label]
    assert page.image_tabs.currentWidget() is page.cell_page
    assert f"predicted as {names[predicted_label]}" in page.cell_title.text()
    diagonal = page.heatmap.cell_rect(1, 1).center()
    qtbot.mouseClick(page.heatmap, Qt.MouseButton.LeftButton, pos=diagonal)
    assert page.cell_gallery.count() == result.confusion_matrix[1, 1]

    # CSV: one row per image
    target = tmp_path / "out" / "results.csv"
    page.choose_csv_path = lambda suggested: str(target)
    qtbot.mouseClick(page.csv_button, Qt.MouseButton.LeftButton)
    with open(target, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == result.total
    assert sorted(row["path"] for row in rows) == image_files(run.mislabelled_dir)

    page.image_tabs.setCurrentWidget(page.mistakes)
    qtbot.waitUntil(lambda: page.mistakes.loader.idle, timeout=10_000)
    screenshot(window, "evaluate_tab.png")


def test_skipped_files_are_counted_and_listed(make_window, qtbot, run, tmp_path):
    import shutil

    folder = tmp_path / "with-broken"
    shutil.copytree(run.val_dir, folder)
    (folder / "green" / "broken.png").write_bytes(b"not an image at all")
    window = make_window()
    page = window.evaluation
    open_model(qtbot, window, run.run_dir)
    page.folder.set_path(str(folder))
    assert evaluate(qtbot, page) is True
    assert page.result.total == 12  # each readable image once, the broken one not at all
    assert page.skipped_table.rowCount() == 1
    assert page.skipped_table.item(0, 0).text().endswith("broken.png")
    assert page.skipped_button.isEnabled() and "1 file skipped" in page.skipped_button.text()
    qtbot.mouseClick(page.skipped_button, Qt.MouseButton.LeftButton)
    assert page.image_tabs.currentWidget() is page.skipped_table


def test_folder_without_the_models_classes_shows_a_message(make_window, qtbot, run, tmp_path):
    from conftest import make_class_folders

    other = make_class_folders(str(tmp_path / "other"), {"cat": 2, "dog": 2})
    window = make_window()
    page = window.evaluation
    open_model(qtbot, window, run.run_dir)
    page.folder.set_path(other)
    assert evaluate(qtbot, page) is False
    assert "does not have the model's classes" in page.banner.text()
    assert page.result is None and page.evaluate_button.isEnabled()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("x.keras", b"this is a text file, not a model", "not a valid .keras file"),
        ("model.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 64, "legacy HDF5"),
        ("empty-folder", None, "has no model.keras"),
    ],
)
def test_a_bad_model_shows_a_message_and_nothing_breaks(
    make_window, qtbot, tmp_path, name, content, expected
):
    path = tmp_path / name
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    window = make_window()
    page = window.evaluation
    with qtbot.waitSignal(window.models.load_failed, timeout=30_000) as blocker:
        page.model_bar.folder_button.setEnabled(True)
        page.model_bar.choose_run_folder = lambda: str(path)
        page.model_bar.choose_model_file = lambda: str(path)
        button = page.model_bar.folder_button if content is None else page.model_bar.file_button
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert expected in blocker.args[1]
    for bar in (page.model_bar, window.predict.model_bar, window.export.model_bar):
        assert expected in bar.state.text() and bar.state.property("state") == "error"
    assert window.models.info is None
    assert not page.evaluate_button.isEnabled()
    assert not window.export.export_button.isEnabled()
    assert page.model_bar.combo.isEnabled()  # the user can choose another model


def test_evaluate_this_model_from_the_training_summary(make_window, qtbot, run):
    window = make_window()
    summary = window.training.summary
    summary.show_result(RunResult(run.run_dir, "completed", 4, 3, 1.0, 0.1, {}, 3.0))
    assert summary.evaluate_button.isEnabled()
    with qtbot.waitSignal(window.evaluation.job_done, timeout=30_000) as blocker:
        qtbot.mouseClick(summary.evaluate_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [True]
    page = window.evaluation
    assert window.tabs.currentWidget() is page
    assert window.models.info.run_dir == os.path.normpath(run.run_dir)
    assert page.folder.path() == run.val_dir
    assert page.result.total == 12 and page.heatmap.matrix.sum() == 12
    # a run without a model (stopped before its first epoch) cannot be evaluated
    summary.show_result(RunResult(os.path.dirname(run.run_dir), "cancelled", 0, None, None, None, {}, 1.0))
    assert not summary.evaluate_button.isEnabled()
