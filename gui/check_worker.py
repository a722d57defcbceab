"""The dataset doctor on a worker thread for the Data health view: CheckWorker runs one check,
emits its progress, and always ends with `finished`; only plain data leaves its thread. The check's
heavy library (TensorFlow) loads on that thread, on first use.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal, Slot

from core.errors import FitStudioError
from core.events import CheckProgress


def default_check_fn(train_dir: str, val_dir: str | None, model: str | None, **kwargs):
    from core.modeling.doctor import check_dataset  # its heavy libraries load on first use

    return check_dataset(train_dir, val_dir, model, **kwargs)


class CheckWorker(QObject):
    """Runs one check on its thread; only plain data leaves it."""

    progress = Signal(object)  # CheckProgress
    result = Signal(object)  # HealthReport
    failed = Signal(str, str)  # message, details
    cancelled = Signal()
    finished = Signal()

    def __init__(self, check_fn: Callable, train_dir: str, val_dir: str | None, model: str | None,
                 check_labels: bool):
        super().__init__()
        self._call = (check_fn, train_dir, val_dir, model, check_labels)
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @Slot()
    def run(self) -> None:
        check_fn, train_dir, val_dir, model, check_labels = self._call
        try:
            report = check_fn(train_dir, val_dir, model, check_labels=check_labels,
                              on_event=self._on_event, cancel=self._cancel)
        except FitStudioError as exc:
            if self._cancel.is_set():
                self.cancelled.emit()
            else:
                self.failed.emit(str(exc), "")
        except Exception as exc:  # the window must survive whatever the check meets
            self.failed.emit(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        else:
            self.result.emit(report)
        finally:
            self.finished.emit()

    def _on_event(self, event) -> None:
        if isinstance(event, CheckProgress):
            self.progress.emit(event)
