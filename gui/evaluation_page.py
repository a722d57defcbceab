"""The Evaluate tab: a model over a folder of labelled images -> accuracy, per-class table, confusion
matrix heatmap, and the images behind every number (mistakes, one cell, skipped files).

Evaluation runs on the model thread (gui.model_worker) through core.modeling.evaluation.evaluate; this page
only shows the plain EvaluationResult it returns. "Why?" shows each mistake as two heatmaps side by side:
where the model saw the class it wrongly chose, and where it saw the true class (gui.heatmaps, computed
on the model thread).
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
    QMessageBox,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.paths import demo_val_dir
from gui.confusion_heatmap import ConfusionHeatmap
from gui.evaluated_image import evaluated_image_item
from gui.folder_field import FolderField
from gui.gallery import Gallery
from gui.heatmaps import WHY_TOOLTIP, HeatmapLoader, HeatmapViewer
from gui.model_bar import stat_card
from gui.model_page import ModelJobPage
from gui.model_worker import ModelInfo, ModelService
from gui.per_class_table import PerClassTable
from gui.skipped_files_table import SkippedFilesTable
from gui.text import escape
from gui.thumbnails import ThumbnailLoader


def _class_folders(folder: str) -> set[str]:
    try:
        return {
            entry.name for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith(".")
        }
    except OSError:
        return set()


def default_evaluation_folder(info: ModelInfo) -> str | None:
    """The run's validation folder when it still exists; else the demo validation folder when the
    model's classes are the demo's; else None."""
    if info.val_dir and os.path.isdir(info.val_dir):
        return info.val_dir
    demo = demo_val_dir()
    if os.path.isdir(demo) and _class_folders(demo) == set(info.class_names):
        return demo
    return None


class EvaluationPage(ModelJobPage):
    def __init__(self, service: ModelService, settings=None, parent: QWidget | None = None):
        super().__init__(service, settings, parent=parent)
        self.result = None  # core.modeling.evaluation.EvaluationResult of the last evaluation
        self._evaluate_when_loaded = False
        self._folder_chosen_by_user = False
        self.folder = FolderField("Choose the folder of images to evaluate")
        self.folder.combo.lineEdit().setPlaceholderText(
            "Folder with one subfolder per class, as for training"
        )
        self.folder.chosen.connect(self._folder_chosen)
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setObjectName("primaryButton")
        self.evaluate_button.setMinimumHeight(32)
        self.evaluate_button.clicked.connect(self.evaluate)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setMinimumHeight(32)
        self.stop_button.clicked.connect(self.stop)
        self.banner.details_requested.connect(
            lambda message, details: self.show_error("Evaluation failed", message, details)
        )
        self.csv_button = QPushButton("Export results to CSV…")
        self.csv_button.setToolTip("One row per image: path, true and predicted class, every probability")
        self.csv_button.clicked.connect(lambda: self.export_csv())
        self.table = PerClassTable()
        self.heatmap = ConfusionHeatmap()
        self.heatmap.cell_clicked.connect(self.show_cell)
        loader = ThumbnailLoader(parent=self)
        self.mistakes = Gallery(
            bars=2,
            loader=loader,
            placeholder="The images the model got wrong appear here after an evaluation, "
            "the most confident mistakes first.",
        )
        self.cell_gallery = Gallery(
            bars=2, loader=loader, placeholder="Click a cell of the confusion matrix to see its images."
        )
        self.cell_title = QLabel("")
        self.cell_title.setObjectName("sectionHint")
        self.skipped_table = SkippedFilesTable("Why it was skipped")
        self.explanations = HeatmapLoader(service, parent=self)
        self.explanations.problem.connect(
            lambda message: self.banner.show_message(f"No heatmaps: {escape(message)}")
        )
        self.why_button = QPushButton("Why?")
        self.why_button.setCheckable(True)
        self.why_button.setToolTip(
            WHY_TOOLTIP + " For a mistake: the class it chose and the true class, side by side."
        )
        self.viewer = HeatmapViewer(service, self)
        for gallery in (self.mistakes, self.cell_gallery):
            gallery.set_heatmap_loader(self.explanations, columns=2)
            gallery.open_requested.connect(lambda path, gallery=gallery: self._open(gallery, path))
            self.why_button.toggled.connect(gallery.show_heatmaps)
        self._build_layout()
        self._show_empty()
        self._update_buttons()

    # --- construction ------------------------------------------------------------------------

    def _build_layout(self) -> None:
        folder_row = QHBoxLayout()
        folder_label = QLabel("Images")
        folder_label.setObjectName("modelBarTitle")
        folder_row.addWidget(folder_label)
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(self.evaluate_button)
        folder_row.addWidget(self.stop_button)
        folder_row.addWidget(self.progress)

        stats = QHBoxLayout()
        stats.setSpacing(8)
        self.stat_values: dict[str, QLabel] = {}
        for key, caption in (
            ("accuracy", "accuracy"),
            ("loss", "loss"),
            ("f1", "macro F1"),
            ("images", "images evaluated"),
            ("mistakes", "mistakes"),
        ):
            card, value = stat_card(caption)
            self.stat_values[key] = value
            stats.addWidget(card)
        self.skipped_button = QPushButton("No files skipped")
        self.skipped_button.setObjectName("linkButton")
        self.skipped_button.setToolTip("Files that could not be read as images")
        self.skipped_button.clicked.connect(lambda: self.image_tabs.setCurrentWidget(self.skipped_page))
        side = QVBoxLayout()
        side.addStretch(1)
        side.addWidget(self.csv_button)
        side.addWidget(self.skipped_button, 0, Qt.AlignmentFlag.AlignRight)
        stats.addStretch(1)
        stats.addLayout(side)
        self.notes = QLabel()
        self.notes.setObjectName("sectionHint")
        self.notes.setWordWrap(True)
        self.notes.hide()

        table_box = QGroupBox("Per class")
        table_layout = QVBoxLayout(table_box)
        table_layout.addWidget(self.table)
        heatmap_box = QGroupBox("Confusion matrix")
        heatmap_layout = QVBoxLayout(heatmap_box)
        hint = QLabel(
            "Rows are the true classes, columns the predictions; colour is the share of each row. "
            "Click a cell to see its images."
        )
        hint.setObjectName("sectionHint")
        hint.setWordWrap(True)
        heatmap_layout.addWidget(hint)
        heatmap_layout.addWidget(self.heatmap, 1)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(table_box)
        left_layout.addWidget(heatmap_box, 1)

        cell_page = QWidget()
        cell_layout = QVBoxLayout(cell_page)
        cell_layout.setContentsMargins(0, 6, 0, 0)
        cell_layout.addWidget(self.cell_title)
        cell_layout.addWidget(self.cell_gallery, 1)
        self.cell_page = cell_page
        self.skipped_page = self.skipped_table
        self.image_tabs = QTabWidget()
        self.image_tabs.setObjectName("imageTabs")
        self.image_tabs.setDocumentMode(True)
        self.image_tabs.addTab(self.mistakes, "Mistakes")
        self.image_tabs.addTab(cell_page, "Selected cell")
        self.image_tabs.addTab(self.skipped_table, "Skipped")
        images_box = QGroupBox("Images")
        images_layout = QVBoxLayout(images_box)
        gallery_hint = QLabel("Double click an image to open it; Why? shows where the model looked.")
        gallery_hint.setObjectName("sectionHint")
        images_layout.addWidget(self.image_tabs, 1)
        hint_row = QHBoxLayout()
        hint_row.addWidget(gallery_hint, 1)
        hint_row.addWidget(self.why_button)
        images_layout.addLayout(hint_row)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(images_box)
        self.splitter.setStretchFactor(0, 4)
        self.splitter.setStretchFactor(1, 5)
        self.splitter.setSizes([560, 760])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(8)
        layout.addWidget(self.model_bar)
        layout.addLayout(folder_row)
        layout.addWidget(self.banner)
        layout.addLayout(stats)
        layout.addWidget(self.notes)
        layout.addWidget(self.splitter, 1)

    # --- state -------------------------------------------------------------------------------

    def _update_buttons(self) -> None:
        ready = self.model_ready
        self.evaluate_button.setEnabled(ready and bool(self.folder.path()))
        self.evaluate_button.setToolTip(
            "Classify every image of the folder and compare with its class folder"
            if ready
            else "Open a model first"
            if self.service.info is None
            else "Busy with the model…"
        )
        self.stop_button.setEnabled(self.is_running and not self.job.cancel_requested)
        self.folder.setEnabled(not self.is_running)
        self.csv_button.setEnabled(self.result is not None)
        self.why_button.setEnabled(self.result is not None or self.why_button.isChecked())

    def _folder_chosen(self, path: str) -> None:
        self._folder_chosen_by_user = bool(path)
        self._update_buttons()

    def _on_model_loaded(self, info: ModelInfo) -> None:
        folder = default_evaluation_folder(info)
        if folder and (info.val_dir == folder or not self._folder_chosen_by_user or not self.folder.path()):
            self.folder.set_path(folder, emit=False)
            self.folder.combo.setToolTip(folder)
            self._folder_chosen_by_user = False
        if self.result is not None and self.result.model_path != info.model_path:
            self._show_empty()
        self.banner.clear()
        self._update_buttons()
        if self._evaluate_when_loaded:
            self._evaluate_when_loaded = False
            self.evaluate()

    def _on_model_failed(self, source: str, message: str) -> None:
        self._evaluate_when_loaded = False
        super()._on_model_failed(source, message)

    # --- running -----------------------------------------------------------------------------

    def evaluate_run(self, run_dir: str, start: bool = True) -> None:
        """Opens a run's model and, once loaded, evaluates it on its validation folder."""
        self._evaluate_when_loaded = start
        self._folder_chosen_by_user = False
        if (
            self.service.info is not None
            and os.path.normpath(self.service.info.source) == os.path.normpath(os.path.abspath(run_dir))
            and not self.service.busy
        ):
            self._on_model_loaded(self.service.info)
            return
        self.service.load(run_dir)

    def evaluate(self) -> bool:
        if self.is_running or self.service.info is None or self.service.busy:
            return False
        folder = self.folder.path()
        if not folder or not os.path.isdir(folder):
            self.banner.show_message(
                f"The folder {escape(folder or '(none)')} does not exist. "
                "Choose a folder with one subfolder per class."
            )
            return False
        self.banner.clear()
        self._show_empty()
        self.status_message.emit(f"Evaluating {self.service.info.name} on {folder}…")

        def job(context):
            from core.modeling.evaluation import evaluate

            return evaluate(context.model, folder, on_progress=context.progress, cancel=context.cancel)

        self.start_job("evaluate", job, self._on_result, self._on_error)
        return True

    def stop(self) -> bool:
        stopping = super().stop()
        if stopping:
            self.status_message.emit("Stopping the evaluation…")
        return stopping

    def _on_result(self, result) -> None:
        self.show_result(result)
        self.status_message.emit(f"Evaluated {result.total} images: accuracy {result.accuracy:.1%}.")
        self.job_done.emit(True)

    def _on_error(self, message: str, details: str, cancelled: bool) -> None:
        if cancelled:
            self.banner.show_message(
                "The evaluation was stopped; nothing is shown for a partial run.", "info"
            )
            self.status_message.emit("Evaluation stopped.")
        else:
            self.banner.show_message(escape(message), "error", details)
            self.status_message.emit("Evaluation failed.")
        self.job_done.emit(False)

    # --- showing a result --------------------------------------------------------------------

    def _show_empty(self) -> None:
        self.result = None
        for value in self.stat_values.values():
            value.setText("\u2014")
        self.table.clear_rows()
        self.heatmap.clear()
        self.mistakes.clear()
        self.cell_gallery.clear()
        self.cell_title.setText("")
        self.skipped_table.setRowCount(0)
        self.skipped_button.setText("No files skipped")
        self.skipped_button.setEnabled(False)
        self.notes.hide()
        self._set_tab_titles(None, None, 0)
        self._update_buttons()

    def show_result(self, result) -> None:
        self.result = result
        mistakes = result.misclassified()
        macro = result.macro_average
        self.stat_values["accuracy"].setText(f"{result.accuracy:.1%}")
        self.stat_values["loss"].setText(f"{result.loss:.3f}")
        self.stat_values["f1"].setText(f"{macro['f1']:.1%}")
        self.stat_values["images"].setText(f"{result.total:,}")
        self.stat_values["mistakes"].setText(f"{len(mistakes):,}")
        skipped = len(result.skipped)
        self.skipped_button.setText(
            f"{skipped} file{'s' if skipped != 1 else ''} skipped: show" if skipped else "No files skipped"
        )
        self.skipped_button.setEnabled(bool(skipped))
        if result.notes:
            self.notes.setText("  ".join(result.notes))
            self.notes.show()
        else:
            self.notes.hide()
        self.table.show_result(result)
        self.heatmap.set_matrix(result.confusion_matrix, result.class_names)
        self.mistakes.set_items([evaluated_image_item(image, result.class_names) for image in mistakes])
        self.mistakes.set_placeholder("No mistakes: every image was classified correctly.")
        self.cell_gallery.clear()
        self.cell_title.setText("")
        self.skipped_table.show_files(result.skipped)
        self._set_tab_titles(len(mistakes), None, skipped)
        self.image_tabs.setCurrentWidget(self.mistakes)
        self._update_buttons()

    def _set_tab_titles(self, mistakes: int | None, cell: int | None, skipped: int) -> None:
        self.image_tabs.setTabText(0, "Mistakes" if mistakes is None else f"Mistakes ({mistakes})")
        self.image_tabs.setTabText(1, "Selected cell" if cell is None else f"Selected cell ({cell})")
        self.image_tabs.setTabText(2, f"Skipped ({skipped})" if skipped else "Skipped")

    def show_cell(self, true_label: int, predicted_label: int) -> None:
        if self.result is None:
            return
        names = self.result.class_names
        images = self.result.images_in_cell(true_label, predicted_label)
        self.heatmap.select(true_label, predicted_label)
        self.cell_gallery.set_items([evaluated_image_item(image, names) for image in images])
        count = f"{len(images)} image{'s' if len(images) != 1 else ''}"
        if true_label == predicted_label:
            self.cell_title.setText(
                f"{names[true_label]} recognised correctly: {count}, most confident first."
            )
        else:
            self.cell_title.setText(
                f"{names[true_label]} predicted as {names[predicted_label]}: {count}, most confident first."
            )
        self.cell_gallery.set_placeholder("No image in this cell.")
        self._set_tab_titles(len(self.result.misclassified()), len(images), len(self.result.skipped))
        self.image_tabs.setCurrentWidget(self.cell_page)

    # --- exporting and opening ---------------------------------------------------------------

    def choose_csv_path(self, suggested: str) -> str:
        """The save dialog; a method so tests can replace it."""
        path, _ = QFileDialog.getSaveFileName(
            self, "Export evaluation results", suggested, "CSV files (*.csv);;All files (*)"
        )
        return path

    def export_csv(self) -> str | None:
        if self.result is None:
            return None
        base = self.service.info.export_dir if self.service.info else os.path.expanduser("~")
        suggested = os.path.join(os.path.dirname(base), "evaluation.csv")
        path = self.choose_csv_path(suggested)
        if not path:
            return None
        if not os.path.splitext(path)[1]:
            path += ".csv"
        try:
            self.result.write_csv(path)
        except OSError as exc:
            self.banner.show_message(
                f"Could not write {escape(path)}: {escape(exc.strerror or str(exc))}"
            )
            return None
        self.status_message.emit(f"Wrote {self.result.total} rows to {path}")
        self.banner.show_message(
            f"Saved the results of {self.result.total} images to {escape(path)}.", "info"
        )
        return path

    def open_image(self, path: str) -> None:
        """Opens an image (or folder) with the desktop's viewer; a method so tests can replace it."""
        QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.abspath(path)))

    def _open(self, gallery: Gallery, path: str) -> None:
        """An image opens with its heatmaps while Why? is on; a folder (or Why? off) on the desktop."""
        item = next((item for item in gallery.items() if item.path == path), None)
        if not self.why_button.isChecked() or item is None:
            self.open_image(path)
            return
        self.viewer.show_image(path, item.explain, item.explain_labels, item.title)

    def show_error(self, title: str, message: str, details: str = "") -> None:
        """A window-modal message box that does not block the event loop; tests replace it."""
        box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, self)
        if details:
            box.setDetailedText(details)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        self._error_box = box
        box.open()

    def shutdown(self) -> None:
        super().shutdown()
        self.mistakes.shutdown()
        self.explanations.stop()
        self.viewer.shutdown()
