"""The window on the demo dataset, and the data panel: folders, class table, warnings, what blocks Train."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from conftest import make_class_folders
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from core.data.dataset import inspect
from core.paths import demo_train_dir, demo_val_dir
from gui.worker import running_threads

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class BlockingInspect:
    """core.data.dataset.inspect, except that the scan of `slow_folder` waits for `release` before it
    reports (the cancel flag it was given is recorded, not obeyed)."""

    def __init__(self, slow_folder: str):
        self.slow_folder = slow_folder
        self.entered, self.release = threading.Event(), threading.Event()
        self.cancel_seen, self.finished = threading.Event(), threading.Event()

    def __call__(self, root, progress=None, cancel=None):
        if root != self.slow_folder:
            return inspect(root, progress=progress, cancel=cancel)
        self.entered.set()
        self.release.wait(10)
        if cancel.is_set():
            self.cancel_seen.set()
        report = inspect(root, progress=progress)
        self.finished.set()
        return report


def table_rows(window) -> dict[str, tuple[str, str]]:
    table = window.training.data.table
    return {
        table.item(row, 0).text(): (table.item(row, 1).text(), table.item(row, 2).text())
        for row in range(table.rowCount())
    }


def choose(qtbot, window, field, monkeypatch, folder: str) -> None:
    monkeypatch.setattr(field, "choose_folder", lambda: folder)
    qtbot.mouseClick(field.browse, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.training.data.is_scanning(), timeout=10_000)


def test_window_opens_on_demo_dataset_with_train_enabled(make_window, qtbot):
    window = make_window()
    data = window.training.data
    assert data.train_dir() == demo_train_dir()
    assert data.val_dir() == demo_val_dir()
    assert data.table.rowCount() >= 2
    assert window.training.train_button.isEnabled()
    assert not window.training.stop_button.isEnabled()
    assert "Ready to train" in data.status.text()
    qtbot.waitUntil(lambda: "CPU only (test)" in window.device_label.text(), timeout=5_000)


def test_importing_the_window_does_not_import_tensorflow():
    code = "import sys, gui.app, gui.main_window; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_window_is_shown_before_tensorflow_is_imported(tmp_path):
    env = {**os.environ, "FITSTUDIO_STARTUP_PROBE": "1", "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}  # not the user's settings
    out = subprocess.run([sys.executable, "main.py"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith("shown "))
    assert "tensorflow=False" in line


def test_choosing_a_folder_updates_the_class_table(make_window, qtbot, monkeypatch, tmp_path):
    window = make_window()
    folder = make_class_folders(str(tmp_path / "pets"), {"cat": 12, "dog": 14})
    choose(qtbot, window, window.training.data.train_field, monkeypatch, folder)
    rows = table_rows(window)
    assert rows["cat"] == ("12", "-") and rows["dog"] == ("14", "-")
    # the demo validation folder has other classes: the table shows them without training images,
    # and the mismatch blocks training, with the reason
    assert all(rows[name][0] == "-" for name in rows if name not in ("cat", "dog"))
    assert not window.training.train_button.isEnabled()
    assert "same class subfolders" in window.training.train_hint.text()
    assert folder in window.store.recent_folders()
    assert window.training.data.train_field.combo.findText(folder) >= 0


def test_split_mode_needs_no_validation_folder_and_shows_the_split(make_window, qtbot, monkeypatch, tmp_path):
    window = make_window()
    data = window.training.data
    folder = make_class_folders(str(tmp_path / "pets"), {"cat": 10, "dog": 10})
    choose(qtbot, window, data.train_field, monkeypatch, folder)
    data.use_split.setChecked(True)
    data.split_percent.setValue(30)
    assert table_rows(window)["cat"] == ("7", "3")
    assert window.training.train_button.isEnabled()
    config = window.training.current_config()
    assert config.val_dir is None and config.val_split == 0.3


def test_unusable_folder_disables_train_with_the_reason(make_window, qtbot, monkeypatch, tmp_path):
    window = make_window()
    data = window.training.data
    one_class = make_class_folders(str(tmp_path / "one"), {"cat": 5})
    choose(qtbot, window, data.train_field, monkeypatch, one_class)
    assert not window.training.train_button.isEnabled()
    assert "only one class" in window.training.train_hint.text()
    assert "only one class" in data.status.text()

    data.train_field.set_path(str(tmp_path / "missing"))
    qtbot.waitUntil(lambda: not data.is_scanning(), timeout=10_000)
    assert "does not exist" in window.training.train_hint.text()
    assert not window.training.train_button.isEnabled()

    data.train_field.set_path("")
    assert "Choose a training folder" in window.training.train_hint.text()


def test_warnings_and_skipped_files_are_shown(make_window, qtbot, monkeypatch, tmp_path):
    window = make_window()
    data = window.training.data
    data.use_split.setChecked(True)
    folder = make_class_folders(str(tmp_path / "few"), {"cat": 4, "dog": 30})
    broken = os.path.join(folder, "cat", "broken.jpg")
    with open(broken, "wb") as f:
        f.write(b"not a jpeg")
    choose(qtbot, window, data.train_field, monkeypatch, folder)
    status = data.status.text()
    assert "Few images" in status and "imbalanced" in status
    assert window.training.train_button.isEnabled()  # warnings do not block training
    assert data.skipped_button.isVisible() and "1 skipped file" in data.skipped_button.text()
    dialog = data.show_skipped()
    assert dialog.table.rowCount() == 1
    assert dialog.table.item(0, 0).text() == broken
    assert dialog.table.item(0, 1).text()
    dialog.close()


def test_dropping_a_dataset_root_fills_both_folders(make_window, qtbot, tiny_dataset):
    window = make_window()
    train, val = tiny_dataset
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(os.path.dirname(train))])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: not window.training.data.is_scanning(), timeout=10_000)
    assert window.training.data.train_dir() == train
    assert window.training.data.val_dir() == val
    assert set(table_rows(window)) == {"blue", "green", "red"}
    assert window.training.train_button.isEnabled()


def test_a_newer_choice_wins_over_a_slower_scan(make_window, qtbot, tmp_path):
    """The first folder's scan ends only after the second one's: its late report must be ignored."""
    first = make_class_folders(str(tmp_path / "first"), {"a": 3, "b": 3})
    second = make_class_folders(str(tmp_path / "second"), {"x": 3, "y": 3})
    slow = BlockingInspect(first)
    window = make_window(inspect_fn=slow)
    data = window.training.data
    data.use_split.setChecked(True)
    data.train_field.set_path(first)
    assert slow.entered.wait(5)
    data.train_field.set_path(second)
    qtbot.waitUntil(lambda: not data.is_scanning(), timeout=10_000)
    assert set(table_rows(window)) == {"x", "y"}
    slow.release.set()
    qtbot.waitUntil(lambda: slow.finished.is_set() and not running_threads(), timeout=10_000)
    qtbot.wait(50)  # the late report's callback runs on the event loop
    assert set(table_rows(window)) == {"x", "y"} and window.training.train_button.isEnabled()
    assert slow.cancel_seen.is_set()  # the replaced scan had been told to stop
