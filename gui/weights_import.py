"""Importing pretrained weights the user downloaded: the file is checked on a worker thread (it must
load into the chosen architecture) before it is copied into Keras's cache, where the next runs find it."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from gui.worker import run_in_thread


def default_import_weights_fn(source, model, image_size):
    from core.modeling.weights import import_weights  # loads TensorFlow to check the file

    return import_weights(source, model, image_size)


class WeightsImport(QObject):
    """One import at a time; its signals arrive on the GUI thread."""

    busy_changed = Signal(bool)
    imported = Signal(str, str)  # model, the file in the cache
    failed = Signal(str, str)  # message, details

    def __init__(self, import_fn: Callable = default_import_weights_fn, parent: QObject | None = None):
        super().__init__(parent)
        self.import_fn = import_fn
        self.busy = False

    def start(self, source: str, model: str, image_size: int) -> bool:
        if self.busy:
            return False
        self.busy = True
        self.busy_changed.emit(True)
        run_in_thread(self.import_fn, source, model, image_size,
                      on_result=lambda target: self.imported.emit(model, target),
                      on_error=self.failed.emit, on_done=self._done, name="FitStudio weights import")
        return True

    def _done(self) -> None:
        self.busy = False
        self.busy_changed.emit(False)
