"""The Predict tab: drop images or folders (or browse), see each image with its top 3 classes.

Prediction runs on the model thread (core.modeling.prediction.predict). Results accumulate until Clear; the
same file added twice keeps its latest answer. Files that cannot be read are listed with the reason.
"Why?" shows, instead of each thumbnail, the heatmap of the top class over the image (computed on the
model thread, gui.heatmaps), and opens images in a viewer with their heatmap.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from gui.gallery import BLUE, GREY, Bar, Gallery, GalleryItem
from gui.heatmaps import WHY_TOOLTIP, HeatmapLoader, HeatmapViewer
from gui.model_page import ModelJobPage
from gui.model_worker import ModelInfo, ModelService
from gui.skipped_files_table import SkippedFilesTable
from gui.text import escape

TOP_K = 3
IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.gif *.webp *.tif *.tiff);;All files (*)"


def local_paths_from_urls(urls) -> list[str]:
    return [url.toLocalFile() for url in urls if url.isLocalFile() and url.toLocalFile()]


class PredictPage(ModelJobPage):
    def __init__(self, service: ModelService, settings=None, parent: QWidget | None = None):
        super().__init__(service, settings, parent=parent)
        self.class_names: list[str] = []
        self.predictions: list = []  # core.modeling.prediction.Prediction, in the order added
        self.skipped: list = []  # core.data.dataset.SkippedFile
        self._waiting: list[str] = []  # dropped before a model was open
        self.setAcceptDrops(True)
        self.add_files_button = QPushButton("Add images…")
        self.add_files_button.clicked.connect(self._browse_files)
        self.add_folder_button = QPushButton("Add folder…")
        self.add_folder_button.setToolTip("Every image in the folder and its subfolders")
        self.add_folder_button.clicked.connect(self._browse_folder)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("stopButton")
        self.stop_button.clicked.connect(self.stop)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)
        self.csv_button = QPushButton("Save as CSV…")
        self.csv_button.setToolTip(f"One row per image: the top {TOP_K} classes and their probabilities")
        self.csv_button.clicked.connect(lambda: self.save_csv())
        self.summary = QLabel()
        self.summary.setObjectName("sectionHint")
        self.gallery = Gallery(
            bars=TOP_K,
            placeholder="Drop images or folders here, or use Add images…, to classify them "
            "with the open model.",
        )
        self.gallery.drop_target = True
        self.gallery.open_requested.connect(self._open)
        self.heatmaps = HeatmapLoader(service, parent=self)
        self.heatmaps.problem.connect(self._heatmap_problem)
        self.gallery.set_heatmap_loader(self.heatmaps)
        self.why_button = QPushButton("Why?")
        self.why_button.setCheckable(True)
        self.why_button.setToolTip(WHY_TOOLTIP)
        self.why_button.toggled.connect(self.gallery.show_heatmaps)
        self.viewer = HeatmapViewer(service, self)
        self.skipped_table = SkippedFilesTable("Why it could not be read")
        self._build_layout()
        self._update_summary()
        self._update_buttons()

    def _build_layout(self) -> None:
        bar = QHBoxLayout()
        for widget in (self.add_files_button, self.add_folder_button, self.stop_button):
            bar.addWidget(widget)
        bar.addWidget(self.progress)
        bar.addSpacing(12)
        bar.addWidget(self.summary, 1)
        bar.addWidget(self.why_button)
        bar.addWidget(self.clear_button)
        bar.addWidget(self.csv_button)
        results = QGroupBox("Predictions")
        results_layout = QVBoxLayout(results)
        hint = QLabel(
            f"Each image with its top {TOP_K} classes. Double click an image to open it; Why? shows "
            "where the model looked."
        )
        hint.setObjectName("sectionHint")
        results_layout.addWidget(hint)
        results_layout.addWidget(self.gallery, 1)
        self.skipped_box = QGroupBox("Not classified")
        skipped_layout = QVBoxLayout(self.skipped_box)
        skipped_layout.addWidget(self.skipped_table)
        self.skipped_box.hide()
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(results)
        self.splitter.addWidget(self.skipped_box)
        self.splitter.setStretchFactor(0, 5)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([560, 150])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(8)
        layout.addWidget(self.model_bar)
        layout.addLayout(bar)
        layout.addWidget(self.banner)
        layout.addWidget(self.splitter, 1)

    # --- state -------------------------------------------------------------------------------

    def _update_buttons(self) -> None:
        ready = self.model_ready
        for button in (self.add_files_button, self.add_folder_button):
            button.setEnabled(ready)
            button.setToolTip("" if ready else "Open a model first")
        self.stop_button.setVisible(self.is_running)
        self.stop_button.setEnabled(self.is_running and not self.job.cancel_requested)
        self.clear_button.setEnabled(not self.is_running and bool(self.predictions or self.skipped))
        self.why_button.setEnabled(bool(self.predictions) or self.why_button.isChecked())
        self.csv_button.setEnabled(not self.is_running and bool(self.predictions))

    def _update_summary(self) -> None:
        count, unread = len(self.predictions), len(self.skipped)
        if not count and not unread:
            self.summary.setText("No images yet.")
            return
        text = f"{count} image{'s' if count != 1 else ''} classified"
        if unread:
            text += f" · {unread} not readable"
        self.summary.setText(text)

    def _on_model_loaded(self, info: ModelInfo) -> None:
        if self.predictions and list(info.class_names) != self.class_names:
            self.clear()
            self.banner.show_message("The results were cleared: the new model has other classes.", "info")
        elif self.predictions:
            self.banner.show_message(
                "A different model is open: add the images again to classify them with it.", "info"
            )
        self._update_buttons()
        if self._waiting:
            paths, self._waiting = self._waiting, []
            self.add_paths(paths)

    # --- adding images -----------------------------------------------------------------------

    def choose_files(self) -> list[str]:
        """The file dialog; a method so tests can replace it."""
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Images to classify", os.path.expanduser("~"), IMAGE_FILTER
        )
        return paths

    def choose_folder(self) -> str:
        """The folder dialog; a method so tests can replace it."""
        return QFileDialog.getExistingDirectory(
            self, "A folder of images to classify", os.path.expanduser("~")
        )

    def _browse_files(self) -> None:
        paths = self.choose_files()
        if paths:
            self.add_paths(paths)

    def _browse_folder(self) -> None:
        folder = self.choose_folder()
        if folder:
            self.add_paths([folder])

    def dragEnterEvent(self, event) -> None:
        if local_paths_from_urls(event.mimeData().urls()) and not self.is_running:
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        if local_paths_from_urls(event.mimeData().urls()) and not self.is_running:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = local_paths_from_urls(event.mimeData().urls())
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    def add_paths(self, paths: list[str]) -> bool:
        """Classifies image files and folders (searched recursively) and adds them to the results."""
        paths = [p for p in paths if p]
        if not paths:
            return False
        if self.is_running:
            self.banner.show_message("Wait for the images being classified, then add more.", "info")
            return False
        if self.service.info is None:
            self._waiting = list(paths)
            if self.service.loading_source:
                self.banner.show_message(
                    "The model is opening; the images are classified once it has.", "info"
                )
            else:
                self.banner.show_message(
                    f"Open a model first (a run folder or a .keras file): {len(paths)} dropped "
                    f"item{'s' if len(paths) != 1 else ''} will then be classified.",
                    "info",
                )
            return False
        if self.service.busy:
            self.banner.show_message("The model is busy; try again when it has finished.", "info")
            return False
        self.banner.clear()
        self.status_message.emit(f"Classifying with {self.service.info.name}…")

        def job(context):
            from core.modeling.prediction import predict

            return predict(context.model, paths, on_progress=context.progress, cancel=context.cancel)

        self.start_job("predict", job, self._on_result, self._on_error)
        return True

    def _on_result(self, result) -> None:
        self.class_names = list(result.class_names)
        # A file classified again keeps its place with its new answer; new files go at the end.
        position = {os.path.abspath(p.path): i for i, p in enumerate(self.predictions)}
        for prediction in result.predictions:
            index = position.get(os.path.abspath(prediction.path))
            if index is None:
                position[os.path.abspath(prediction.path)] = len(self.predictions)
                self.predictions.append(prediction)
            else:
                self.predictions[index] = prediction
        known = {(s.path, s.reason) for s in self.skipped}
        self.skipped += [s for s in result.skipped if (s.path, s.reason) not in known]
        self._show()
        added = len(result.predictions)
        message = f"Classified {added} image{'s' if added != 1 else ''}"
        if result.skipped:
            message += f"; {len(result.skipped)} could not be read"
        self.status_message.emit(message + ".")
        self.job_done.emit(True)

    def _on_error(self, message: str, details: str, cancelled: bool) -> None:
        if cancelled:
            self.banner.show_message("Stopped; the images classified before are kept.", "info")
        else:
            self.banner.show_message(escape(message), "error", details)
        self.job_done.emit(False)

    def _show(self) -> None:
        self.gallery.set_items([self._item(p) for p in self.predictions])
        self.skipped_table.show_files(self.skipped)
        self.skipped_box.setTitle(f"Not classified ({len(self.skipped)})")
        self.skipped_box.setVisible(bool(self.skipped))
        self._update_summary()
        self._update_buttons()

    @staticmethod
    def _item(prediction) -> GalleryItem:
        top = prediction.top_k(TOP_K)
        bars = tuple(
            Bar(name, probability, BLUE if rank == 0 else GREY)
            for rank, (name, probability) in enumerate(top)
        )
        lines = "<br>".join(f"{escape(name)}: {probability:.1%}" for name, probability in top)
        tooltip = (
            f"<b>{escape(os.path.basename(prediction.path))}</b><br>{lines}<br>"
            f"<span style='color:#667085'>{escape(prediction.path)}</span>"
        )
        top_class = int(prediction.probabilities.argmax())
        return GalleryItem(
            prediction.path, os.path.basename(prediction.path), bars, tooltip, data=prediction,
            explain=(top_class,), explain_labels=(f"why {top[0][0]}",),
        )

    def clear(self) -> None:
        if self.is_running:
            return
        self.predictions, self.skipped = [], []
        self.banner.clear()
        self._show()

    # --- saving and opening ------------------------------------------------------------------

    def choose_csv_path(self, suggested: str) -> str:
        """The save dialog; a method so tests can replace it."""
        path, _ = QFileDialog.getSaveFileName(
            self, "Save predictions", suggested, "CSV files (*.csv);;All files (*)"
        )
        return path

    def save_csv(self) -> str | None:
        if not self.predictions:
            return None
        from core.modeling.prediction import PredictionResult  # no TensorFlow: prediction imports it lazily

        path = self.choose_csv_path(os.path.join(os.path.expanduser("~"), "predictions.csv"))
        if not path:
            return None
        if not os.path.splitext(path)[1]:
            path += ".csv"
        result = PredictionResult(self.class_names, list(self.predictions), list(self.skipped))
        try:
            result.write_csv(path, TOP_K)
        except OSError as exc:
            self.banner.show_message(f"Could not write {escape(path)}: {escape(exc.strerror or str(exc))}")
            return None
        self.banner.show_message(f"Saved {len(self.predictions)} predictions to {escape(path)}.", "info")
        self.status_message.emit(f"Saved {path}")
        return path

    def open_image(self, path: str) -> None:
        """Opens an image with the desktop's viewer; a method so tests can replace it."""
        QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.abspath(path)))

    def _open(self, path: str) -> None:
        """An image opens with its heatmap while Why? is on; a folder (or Why? off) on the desktop."""
        item = next((item for item in self.gallery.items() if item.path == path), None)
        if not self.why_button.isChecked() or item is None:
            self.open_image(path)
            return
        top_name, probability = item.data.top_k(1)[0]
        self.viewer.show_image(path, item.explain, item.explain_labels, f"{top_name} ({probability:.1%})")

    def _heatmap_problem(self, message: str) -> None:
        self.banner.show_message(f"No heatmaps: {escape(message)}")

    def shutdown(self) -> None:
        super().shutdown()
        self.gallery.shutdown()
        self.heatmaps.stop()
        self.viewer.shutdown()
