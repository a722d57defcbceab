"""The Predict tab with a real tiny model: dropped files and folders, top 3, unreadable files, CSV, clear."""

from __future__ import annotations

import csv
import os

import pytest
from conftest import write_image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from trained_model import tiny_run


@pytest.fixture
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory)


def drop(widget, paths: list[str]) -> None:
    """Delivers a drop of local files onto `widget`, as a file manager would."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(path) for path in paths])
    event = QDropEvent(
        QPointF(20, 20),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    widget.dropEvent(event)
    assert event.isAccepted()


def test_dropped_files_and_folder_show_top3_and_unreadable_files(
    make_window, qtbot, run, tmp_path, screenshot
):
    window = make_window()
    page = window.predict
    window.tabs.setCurrentWidget(page)
    red = write_image(str(tmp_path / "drop" / "looks_red.png"), (220, 40, 40), seed=7)
    blue = write_image(str(tmp_path / "drop" / "looks_blue.jpg"), (50, 70, 220), seed=8)
    broken = tmp_path / "drop" / "broken.png"
    broken.write_bytes(b"this is not a png")
    folder = tmp_path / "folder"
    for i, colour in enumerate([(40, 180, 60), (40, 180, 60), (220, 40, 40)]):
        write_image(str(folder / "nested" / f"img_{i}.png"), colour, seed=20 + i)

    # dropped before a model is open: kept, and classified once the model has loaded
    drop(page, [red, blue, str(broken)])
    assert "Open a model first" in page.banner.text()
    assert not page.add_files_button.isEnabled()
    with qtbot.waitSignal(page.job_done, timeout=30_000) as blocker:
        page.model_bar.open(run.run_dir)
    assert blocker.args == [True]
    items = page.gallery.items()
    assert [item.path for item in items] == [red, blue]
    for item in items:
        assert len(item.bars) == 3
        assert [bar.label for bar in item.bars] == [name for name, _ in item.data.top_k(3)]
        assert sorted(bar.label for bar in item.bars) == ["blue", "green", "red"]
        values = [bar.value for bar in item.bars]
        assert values == sorted(values, reverse=True) and sum(values) == pytest.approx(1.0, abs=1e-4)
    assert items[0].bars[0].label == "red" and items[1].bars[0].label == "blue"
    assert page.skipped_box.isVisibleTo(page) and page.skipped_table.rowCount() == 1
    assert page.skipped_table.item(0, 0).text() == str(broken)
    assert page.skipped_table.item(0, 1).text()  # the reason
    assert page.summary.text() == "2 images classified · 1 not readable"

    # a folder (searched recursively) adds to the results; a file dropped again is not repeated
    with qtbot.waitSignal(page.job_done, timeout=30_000):
        drop(page, [str(folder), red])
    paths = [item.path for item in page.gallery.items()]
    assert len(paths) == 5 and len(set(paths)) == 5
    assert sorted(paths) == sorted([red, blue, *(str(folder / "nested" / f"img_{i}.png") for i in range(3))])
    assert page.gallery.items()[-1].bars[0].label in ("red", "green")

    # double click opens the image
    opened = []
    page.open_image = opened.append
    rect = page.gallery.visualRect(page.gallery.gallery_model.index(0))
    qtbot.mouseClick(page.gallery.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(page.gallery.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened == [page.gallery.items()[0].path]

    # CSV: one row per image, top 3
    target = tmp_path / "predictions.csv"
    page.choose_csv_path = lambda suggested: str(target)
    qtbot.mouseClick(page.csv_button, Qt.MouseButton.LeftButton)
    with open(target, encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [
        "path",
        "top_class",
        "probability",
        "class_2",
        "probability_2",
        "class_3",
        "probability_3",
    ]
    assert sorted(row[0] for row in rows[1:]) == sorted(paths)

    qtbot.waitUntil(
        lambda: page.gallery.loader.idle and all(page.gallery.loader.known(path) for path in paths),
        timeout=10_000,
    )
    screenshot(window, "predict_tab.png")

    qtbot.mouseClick(page.clear_button, Qt.MouseButton.LeftButton)
    assert page.gallery.count() == 0 and not page.skipped_box.isVisibleTo(page)
    assert not page.csv_button.isEnabled() and page.summary.text() == "No images yet."


def test_browse_for_images_and_folder(make_window, qtbot, run, tmp_path):
    window = make_window()
    page = window.predict
    with qtbot.waitSignal(window.models.loaded, timeout=30_000):
        page.model_bar.open(run.run_dir)
    image = write_image(str(tmp_path / "one.png"), (40, 180, 60))
    page.choose_files = lambda: [image]
    with qtbot.waitSignal(page.job_done, timeout=30_000):
        qtbot.mouseClick(page.add_files_button, Qt.MouseButton.LeftButton)
    assert [item.path for item in page.gallery.items()] == [image]
    page.choose_folder = lambda: run.val_dir
    with qtbot.waitSignal(page.job_done, timeout=30_000):
        qtbot.mouseClick(page.add_folder_button, Qt.MouseButton.LeftButton)
    assert page.gallery.count() == 13
    # dropping onto the window while the Predict tab is shown classifies too
    window.tabs.setCurrentWidget(page)
    other = write_image(str(tmp_path / "two.png"), (220, 40, 40), seed=3)
    with qtbot.waitSignal(page.job_done, timeout=30_000):
        drop(window, [other])
    assert page.gallery.items()[-1].path == other
    assert os.path.isdir(run.val_dir)  # nothing was moved or written next to the images
