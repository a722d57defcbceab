"""What the Evaluate, Predict and Export tabs share: the model bar above them, one job at a time on the
open model (through gui.model_worker.ModelService), its progress bar, the message banner, and buttons
kept in step with the model and the job.

A page builds its own widgets and layout, then calls `start_job(kind, fn, on_result, on_error)`; the
base clears the job and the progress bar before the page's callbacks run, and re-checks the buttons
whenever the model opens, fails to open, or becomes busy or idle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QProgressBar, QWidget

from gui.model_bar import MessageBanner, ModelBar
from gui.model_worker import JobContext, JobHandle, ModelInfo, ModelService


class ModelJobPage(QWidget):
    status_message = Signal(str)
    job_done = Signal(bool)  # True when the job gave a result, False when it failed or was stopped

    def __init__(self, service: ModelService, settings=None, progress_format: str = "%v of %m images",
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.service = service
        self.job: JobHandle | None = None
        self.model_bar = ModelBar(service, settings)
        self.progress = QProgressBar()
        self.progress.setFixedWidth(200)
        self.progress.setFormat(progress_format)
        self.progress.hide()
        self.banner = MessageBanner()
        service.loaded.connect(self._on_model_loaded)
        service.loading.connect(lambda _source: self._update_buttons())
        service.load_failed.connect(self._on_model_failed)
        service.busy_changed.connect(lambda _busy: self._update_buttons())

    # --- what a page fills in ----------------------------------------------------------------

    def _update_buttons(self) -> None:
        """Enables what can be done now; called whenever the model or the job changes."""

    def _on_model_loaded(self, _info: ModelInfo) -> None:
        self._update_buttons()

    def _on_model_failed(self, _source: str, _message: str) -> None:
        self._update_buttons()

    # --- the job -----------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self.job is not None

    @property
    def model_ready(self) -> bool:
        """A model is open and nothing else is queued on it."""
        return self.service.info is not None and not self.service.busy

    def start_job(self, kind: str, fn: Callable[[JobContext], Any], on_result: Callable[[Any], None],
                  on_error: Callable[[str, str, bool], None],
                  on_message: Callable[[str], None] | None = None) -> None:
        """Queues fn on the model thread; on_result(value) or on_error(message, details, cancelled)
        then runs on the GUI thread, after the page has left its running state."""

        def finished(value: Any) -> None:
            self._finish()
            on_result(value)

        def failed(message: str, details: str, cancelled: bool) -> None:
            self._finish()
            on_error(message, details, cancelled)

        self.progress.setRange(0, 0)  # busy until the first progress report says how many
        self.progress.show()
        self.job = self.service.submit(kind, fn, on_result=finished, on_error=failed,
                                       on_progress=self._on_progress, on_message=on_message)
        self._update_buttons()

    def stop(self) -> bool:
        """Asks the running job to stop; False when there was nothing to stop."""
        if self.job is None or self.job.cancel_requested:
            return False
        self.job.cancel()
        self._update_buttons()
        return True

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _finish(self) -> None:
        self.job = None
        self.progress.hide()
        self._update_buttons()

    def shutdown(self) -> None:
        self.stop()
