"""The Export tab with a real tiny model: every format written, with labels.txt, listed with its size;
ONNX says so where this program cannot write it."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel
from trained_model import tiny_run

from core.runs.run_folder import read_labels


@pytest.fixture
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory)


def test_export_writes_all_five_formats(make_window, qtbot, run, tmp_path, screenshot):
    window = make_window()
    page = window.export
    window.tabs.setCurrentWidget(page)
    assert not page.export_button.isEnabled()  # no model yet
    with qtbot.waitSignal(window.models.loaded, timeout=30_000):
        page.model_bar.open(run.run_dir)
    assert page.folder.path() == os.path.join(os.path.normpath(run.run_dir), "export")  # the default
    out = tmp_path / "exported"
    page.folder.set_path(str(out))
    assert page.selected_formats() == ["keras", "savedmodel", "tflite", "tflite-quant", "onnx"]
    with qtbot.waitSignal(page.job_done, timeout=150_000) as blocker:
        qtbot.mouseClick(page.export_button, Qt.MouseButton.LeftButton)
        assert not page.export_button.isEnabled() and not page.model_bar.combo.isEnabled()
    assert blocker.args == [True], page.banner.text()
    assert set(os.listdir(out)) == {
        "model.keras", "saved_model", "model.tflite", "model_quant.tflite", "model.onnx", "labels.txt"
    }
    assert read_labels(str(out / "labels.txt")) == ["blue", "green", "red"]
    formats = [item.fmt for item in page.written]
    assert formats == ["keras", "savedmodel", "tflite", "tflite-quant", "onnx", "labels"]
    assert all(item.size > 0 and not item.error for item in page.written)
    assert page.table.rowCount() == 6
    assert page.table.item(2, 1).text() == str(out / "model.tflite")
    quantised, full = page.written[3].size, page.written[2].size
    assert quantised < full  # dynamic-range quantisation shrinks the weights
    assert page.export_button.isEnabled() and page.open_button.isEnabled()
    screenshot(window, "export_tab.png")
    opened = []
    page.open_folder = opened.append
    qtbot.mouseClick(page.open_button, Qt.MouseButton.LeftButton)
    assert opened == [str(out)]


def test_without_tf2onnx_the_onnx_row_says_why_and_stays_off(make_window, monkeypatch):
    import core.modeling.export as export

    monkeypatch.setattr(export, "onnx_available", lambda: "tf2onnx is not part of this program.")
    page = make_window().export
    check = page.checks["onnx"]
    assert not check.isChecked() and not check.isEnabled()
    assert "onnx" not in page.selected_formats()
    labels = [label.text() for label in page.findChildren(QLabel)]
    assert "Unavailable in this program: tf2onnx is not part of this program." in labels


def test_export_into_an_unwritable_place_shows_the_error(make_window, qtbot, run, tmp_path):
    window = make_window()
    page = window.export
    with qtbot.waitSignal(window.models.loaded, timeout=30_000):
        page.model_bar.open(run.run_dir)
    blocker_file = tmp_path / "a-file"
    blocker_file.write_text("I am a file, not a folder")
    page.folder.set_path(str(blocker_file / "inside"))
    for fmt, check in page.checks.items():
        check.setChecked(fmt == "keras")
    with qtbot.waitSignal(page.job_done, timeout=30_000) as blocker:
        page.export()
    assert blocker.args == [False]
    assert page.banner.text().startswith("keras: ")
    assert page.written[0].error and page.table.item(0, 1).text() == page.written[0].error
    assert page.export_button.isEnabled()  # ready for another try
