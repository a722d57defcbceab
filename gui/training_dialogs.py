"""The Train tab's dialogs: the error box that can offer Resume, and the file, folder and epoch
questions. Each is a plain function of its parent widget, so the page keeps one-line methods that
tests replace."""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

from core.config import LIMITS
from core.runs.run_info import RunInfo


def error_box(parent: QWidget, title: str, message: str, details: str = "", note: str = "",
              on_resume: Callable[[], object] | None = None) -> QMessageBox:
    """A window-modal message box, opened without blocking the event loop (open(), not exec()).

    `message` is the headline (the engine's message, e.g. "Out of memory: reduce batch size or image
    size…"); `note` says what can be done; with `on_resume` a Resume button calls it.
    """
    box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.NoButton, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    if note:
        box.setInformativeText(note)
    if details:
        box.setDetailedText(details)
    if on_resume is not None:
        resume = box.addButton("Resume", QMessageBox.ButtonRole.AcceptRole)
        resume.clicked.connect(lambda: QTimer.singleShot(0, on_resume))
        box.addButton(QMessageBox.StandardButton.Close)
        box.setDefaultButton(QMessageBox.StandardButton.Close)
    else:
        box.addButton(QMessageBox.StandardButton.Ok)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.open()
    return box


def choose_weights_file(parent: QWidget, model: str, expected_name: str) -> str:
    path, _ = QFileDialog.getOpenFileName(
        parent, f"Import {model} weights (Keras's file: {expected_name})", os.path.expanduser("~"),
        "Keras weight files (*.h5 *.hdf5);;All files (*)",
    )
    return path


def choose_run_folder(parent: QWidget, start: str) -> str:
    return QFileDialog.getExistingDirectory(parent, "Resume a run folder", start)


def ask_resume_epochs(parent: QWidget, info: RunInfo, default: int) -> int | None:
    """The new total of epochs (more than `info.done`); None when cancelled."""
    text = f"{info.name}\n{info.describe()}\n\nTrain until epoch:"
    value, ok = QInputDialog.getInt(parent, "Resume run", text, default, info.done + 1,
                                    int(LIMITS["epochs"][1]))
    return value if ok else None
