"""Heatmaps in the window: the "Why?" overlays of the Predict and Evaluate galleries, and a viewer.

`HeatmapLoader` asks for them the way gui.thumbnails.ThumbnailLoader asks for thumbnails: only for the
cards being painted, a small batch at a time. Each batch is a job on the model thread
(gui.model_worker.ModelService) running core.modeling.explain.explain_images; plain uint8 arrays come
back and become pixmaps here, kept in a bounded cache keyed by (path, classes). A new model empties it.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QPixmap
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from gui.model_worker import JobHandle, ModelService
from gui.text import escape
from gui.thumbnails import THUMBNAIL_SIZE, pixmap_from_array

CARD_SIDE = 2 * THUMBNAIL_SIZE  # sharp on a high-density screen
VIEWER_SIDE = 720
BATCH = 8  # a batch is one job: small, so that other work on the model waits little
CACHE_LIMIT = 600
WHY_TOOLTIP = (
    "Show where the model looked: a heatmap (Grad-CAM) over each image, red where the evidence "
    "for the class is strongest."
)

Key = tuple[str, tuple[int, ...]]


@dataclass(frozen=True)
class HeatmapImages:
    """What a heatmap job returns per image (plain data, made on the model thread)."""

    path: str
    classes: tuple[int, ...]
    overlays: tuple[np.ndarray, ...]  # uint8 RGB, one per class: the heatmap blended over the image


def heatmap_job(keys: Sequence[Key], max_side: int) -> Callable:
    """The model-thread job: the overlays for `keys`, and (path, reason) for unreadable images."""

    def job(context) -> tuple[list[HeatmapImages], list[tuple[str, str]]]:
        from core.modeling.explain import explain_images

        skipped: list = []
        found = [
            HeatmapImages(e.path, e.classes, tuple(e.overlay(i) for i in range(len(e.classes))))
            for e in explain_images(
                context.model, [path for path, _ in keys], [classes for _, classes in keys],
                max_side=max_side, cancel=context.cancel, skipped=skipped,
            )
        ]
        return found, [(item.path, item.reason) for item in skipped]

    return job


class HeatmapLoader(QObject):
    """Heatmap overlays on request, computed on the model thread in small batches, cached."""

    loaded = Signal(str)  # path: its heatmaps (or their failure) are now known
    settled = Signal()  # nothing is waiting or being computed
    problem = Signal(str)  # why heatmaps could not be made (once per failed batch)

    def __init__(self, service: ModelService, max_side: int = CARD_SIDE, parent: QObject | None = None):
        super().__init__(parent)
        self.service = service
        self.max_side = max_side
        self._cache: OrderedDict[Key, list[QPixmap] | None] = OrderedDict()
        self._pending: list[Key] = []
        self._queued: set[Key] = set()
        self._job: JobHandle | None = None
        self._generation = 0  # results of jobs started before the last clear() are dropped
        service.loaded.connect(self._on_model_loaded)

    @property
    def idle(self) -> bool:
        return self._job is None and not self._pending

    def get(self, path: str, classes: tuple[int, ...]) -> list[QPixmap] | None:
        """The overlays, one per class; None while they are computed (a request is then queued)
        or when they cannot be made (see failed())."""
        key = (path, tuple(classes))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if key not in self._queued:
            self._queued.add(key)
            self._pending.append(key)
            self._start()
        return None

    def failed(self, path: str, classes: tuple[int, ...]) -> bool:
        key = (path, tuple(classes))
        return key in self._cache and self._cache[key] is None

    def _on_model_loaded(self, _info) -> None:
        self.clear()

    def clear(self) -> None:
        """Forgets every heatmap and request (another model is open), and stops the running batch."""
        self._generation += 1
        self._cache.clear()
        self.clear_pending()
        if self._job is not None:
            self._job.cancel()
            self._job = None

    def clear_pending(self) -> None:
        """Forgets the requests not yet started (the gallery was refilled or switched off)."""
        for key in self._pending:
            self._queued.discard(key)
        self._pending.clear()

    def stop(self) -> None:
        self.clear()

    def _start(self) -> None:
        if self._job is not None or not self._pending or self.service.info is None:
            return
        batch, self._pending = self._pending[-BATCH:], self._pending[:-BATCH]  # newest first: in view
        generation = self._generation
        self._job = self.service.submit(
            "explain",
            heatmap_job(batch, self.max_side),
            on_result=lambda result: self._store(generation, batch, *result),
            on_error=lambda message, _details, cancelled: self._fail(generation, batch, message, cancelled),
        )

    def _store(self, generation: int, batch: list[Key], found: list[HeatmapImages], _unreadable) -> None:
        if generation != self._generation:
            return
        self._job = None
        for item in found:
            key = (item.path, item.classes)
            self._queued.discard(key)
            self._cache[key] = [pixmap_from_array(np.ascontiguousarray(a)) for a in item.overlays]
            self.loaded.emit(item.path)
        for key in batch:
            if key not in self._cache:  # the image could not be read
                self._queued.discard(key)
                self._cache[key] = None
                self.loaded.emit(key[0])
        self._trim_and_continue()

    def _fail(self, generation: int, batch: list[Key], message: str, cancelled: bool) -> None:
        if generation != self._generation:
            return
        self._job = None
        for key in batch:
            self._queued.discard(key)
            if not cancelled:
                self._cache[key] = None
                self.loaded.emit(key[0])
        if not cancelled:
            self.problem.emit(message)
        self._trim_and_continue()

    def _trim_and_continue(self) -> None:
        while len(self._cache) > CACHE_LIMIT:
            self._cache.popitem(last=False)
        self._start()
        if self.idle:
            self.settled.emit()


class HeatmapViewer(QDialog):
    """One image with the heatmap of each explained class side by side, larger than on a card.

    The overlays are computed by the model thread at VIEWER_SIDE pixels when the viewer opens."""

    shown_heatmaps = Signal(str)  # path, once its heatmaps are on screen

    def __init__(self, service: ModelService, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Why: where the model looked")
        self.service = service
        self.path = ""
        self.loader = HeatmapLoader(service, VIEWER_SIDE, self)
        self.loader.loaded.connect(self._loaded)
        self.loader.problem.connect(lambda message: self.status.setText(message))
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.status = QLabel()
        self.status.setObjectName("sectionHint")
        self.status.setWordWrap(True)
        self.images = QHBoxLayout()
        open_button = QPushButton("Open in image viewer")
        open_button.clicked.connect(lambda: self.open_image(self.path))
        close_button = QPushButton("Close")
        close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(open_button)
        buttons.addWidget(close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(self.images, 1)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self._classes: tuple[int, ...] = ()
        self._captions: tuple[str, ...] = ()

    def show_image(self, path: str, classes: tuple[int, ...], captions: tuple[str, ...], title: str) -> None:
        self.path, self._classes, self._captions = path, tuple(classes), tuple(captions)
        self.title.setText(f"<b>{escape(os.path.basename(path))}</b>: {escape(title)}")
        self.status.setText("Computing the heatmap…")
        self._clear_images()
        self.show()
        self.raise_()
        self._loaded(path)

    def _loaded(self, path: str) -> None:
        if path != self.path:
            return
        pixmaps = self.loader.get(self.path, self._classes)
        if pixmaps is None:
            if self.loader.failed(self.path, self._classes):  # a model problem then follows as `problem`
                self.status.setText("No heatmap: the image could not be read.")
            return
        self._clear_images()
        for pixmap, caption in zip(pixmaps, self._captions, strict=False):
            column = QVBoxLayout()
            picture = QLabel()
            picture.setPixmap(pixmap)
            picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label = QLabel(caption)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            column.addWidget(picture, 1)
            column.addWidget(label)
            self.images.addLayout(column)
        self.status.setText("Red: where the evidence for the class is strongest; blue: none.")
        self.adjustSize()
        self.shown_heatmaps.emit(path)

    def _clear_images(self) -> None:
        while self.images.count():
            column = self.images.takeAt(0).layout()
            while column is not None and column.count():
                widget = column.takeAt(0).widget()
                if widget is not None:
                    widget.deleteLater()

    def open_image(self, path: str) -> None:
        """Opens the image with the desktop's viewer; a method so tests can replace it."""
        if path:
            QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.abspath(path)))

    def shutdown(self) -> None:
        self.loader.stop()
