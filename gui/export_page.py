"""The Export tab: write the open model as .keras, TensorFlow SavedModel, TFLite (float32 and
quantised) and ONNX, each with labels.txt, into a folder; the conversion runs on the model thread.
Where tf2onnx is missing (a standalone build without it), the ONNX row says so and stays off."""

from __future__ import annotations

import os
from dataclasses import dataclass

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.formatting import format_size
from core.runs.run_folder import LABELS_FILE
from gui.folder_field import FolderField
from gui.model_page import ModelJobPage
from gui.model_worker import ModelInfo, ModelService
from gui.text import escape

# (format of core.modeling.export.FORMATS, name, what it is for): what the window says about each.
# core.modeling.export imports TensorFlow (and tf2onnx) only inside its functions.
EXPORT_FORMATS = (
    ("keras", "Keras (.keras)", "The model as trained: open it again in FitStudio or in Keras 3."),
    (
        "savedmodel",
        "TensorFlow SavedModel",
        "For TensorFlow Serving, the TensorFlow.js converter and other "
        'TensorFlow programs (endpoint "serve").',
    ),
    (
        "tflite",
        "TensorFlow Lite (float32)",
        "For phones and embedded devices; the same answers as the model.",
    ),
    (
        "tflite-quant",
        "TensorFlow Lite, quantised",
        "Dynamic-range quantised weights: about 4 times smaller, answers very close to the model's.",
    ),
    (
        "onnx",
        "ONNX (.onnx)",
        "For ONNX Runtime, OpenVINO, TensorRT, C# and Java programs (opset 17). Converting a "
        "pretrained model takes up to a minute.",
    ),
)


def unavailable_formats() -> dict[str, str]:
    """format -> why this program cannot write it (ONNX without tf2onnx); TensorFlow is not loaded."""
    from core.modeling.export import onnx_available

    problem = onnx_available()
    return {"onnx": problem} if problem else {}


@dataclass(frozen=True)
class ExportedFile:
    fmt: str
    path: str
    size: int
    error: str = ""


def _size(path: str) -> int:
    if os.path.isdir(path):
        return sum(
            os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names
        )
    return os.path.getsize(path) if os.path.exists(path) else 0


def export_job(formats: list[str], out_dir: str):
    """The job for the model thread: each format in turn; a failed format is reported, the rest go on.
    Cancelling stops it at the next step of the format under way (ExportCancelled: "Stopped.")."""

    def job(context) -> list[ExportedFile]:
        from core.errors import FitStudioError
        from core.modeling.export import ExportCancelled, export_model

        written: list[ExportedFile] = []
        labels: set[str] = set()
        for done, fmt in enumerate(formats):
            context.progress(done, len(formats))
            context.message(f"Exporting {fmt}…")
            try:
                paths = export_model(context.model, fmt, out_dir, on_message=context.message,
                                     cancel=context.cancel)
            except ExportCancelled:
                raise
            except FitStudioError as exc:
                written.append(ExportedFile(fmt, "", 0, str(exc)))
                continue
            for path in paths:
                if os.path.basename(path) == LABELS_FILE:
                    labels.add(path)
                else:
                    written.append(ExportedFile(fmt, path, _size(path)))
        context.progress(len(formats), len(formats))
        # labels.txt is rewritten with each format: listed once, last
        return written + [ExportedFile("labels", path, _size(path)) for path in sorted(labels)]

    return job


class ExportPage(ModelJobPage):
    def __init__(self, service: ModelService, settings=None, parent: QWidget | None = None):
        super().__init__(service, settings, progress_format="%v of %m formats", parent=parent)
        self.written: list[ExportedFile] = []
        self._folder_chosen_by_user = False
        self.checks: dict[str, QCheckBox] = {}
        formats = QGroupBox("Formats")
        grid = QGridLayout(formats)
        grid.setColumnStretch(1, 1)
        grid.setVerticalSpacing(10)
        self.unavailable = unavailable_formats()
        for row, (fmt, title, description) in enumerate(EXPORT_FORMATS):
            check = QCheckBox(title)
            check.setChecked(fmt not in self.unavailable)
            check.toggled.connect(lambda _on: self._update_buttons())
            self.checks[fmt] = check
            if fmt in self.unavailable:
                description = f"Unavailable in this program: {self.unavailable[fmt]}"
            label = QLabel(description)
            label.setObjectName("sectionHint")
            label.setWordWrap(True)
            grid.addWidget(check, row, 0)
            grid.addWidget(label, row, 1)
        note = QLabel(
            "Every format takes RGB pixels 0 to 255 of the model's input size; the scaling is inside "
            "the model. labels.txt (one class per line, in output order) is written beside each."
        )
        note.setObjectName("sectionHint")
        note.setWordWrap(True)
        grid.addWidget(note, len(EXPORT_FORMATS), 0, 1, 2)
        self.folder = FolderField("Choose the folder to export into")
        self.folder.combo.lineEdit().setPlaceholderText("Folder to write the exported models into")
        self.folder.chosen.connect(self._folder_chosen)
        self.export_button = QPushButton("Export")
        self.export_button.setObjectName("primaryButton")
        self.export_button.setMinimumHeight(32)
        self.export_button.setMinimumWidth(140)
        self.export_button.clicked.connect(self.export)
        self.activity = QLabel()
        self.activity.setObjectName("sectionHint")
        self.table = QTableWidget(0, 3)
        self.table.setObjectName("resultTable")
        self.table.setHorizontalHeaderLabels(["Format", "Written", "Size"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.open_button = QPushButton("Open export folder")
        self.open_button.clicked.connect(lambda: self.open_folder(self.folder.path()))
        self._build_layout(formats)
        self._update_buttons()

    def _build_layout(self, formats: QGroupBox) -> None:
        destination = QGroupBox("Output folder")
        destination_layout = QHBoxLayout(destination)
        destination_layout.addWidget(self.folder, 1)
        run_row = QHBoxLayout()
        run_row.addWidget(self.export_button)
        run_row.addWidget(self.progress)
        run_row.addWidget(self.activity, 1)
        results = QGroupBox("Written files")
        results_layout = QVBoxLayout(results)
        results_layout.addWidget(self.table, 1)
        open_row = QHBoxLayout()
        open_row.addStretch(1)
        open_row.addWidget(self.open_button)
        results_layout.addLayout(open_row)
        column = QVBoxLayout()
        column.setSpacing(8)
        column.addWidget(formats)
        column.addWidget(destination)
        column.addLayout(run_row)
        column.addWidget(self.banner)
        column.addWidget(results, 1)
        body = QHBoxLayout()
        body.addLayout(column, 3)
        body.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(8)
        layout.addWidget(self.model_bar)
        layout.addLayout(body, 1)

    # --- state -------------------------------------------------------------------------------

    def selected_formats(self) -> list[str]:
        return [fmt for fmt, check in self.checks.items() if check.isChecked()]

    def _update_buttons(self) -> None:
        ready = self.model_ready
        has_formats = bool(self.selected_formats())
        self.export_button.setEnabled(ready and has_formats and bool(self.folder.path()))
        self.export_button.setToolTip(
            "" if ready else "Open a model first" if self.service.info is None else "Busy with the model…"
        )
        for fmt, check in self.checks.items():
            check.setEnabled(not self.is_running and fmt not in self.unavailable)
        self.folder.setEnabled(not self.is_running)
        self.open_button.setEnabled(any(not f.error for f in self.written))

    def _folder_chosen(self, path: str) -> None:
        self._folder_chosen_by_user = bool(path)
        self._update_buttons()

    def _on_model_loaded(self, info: ModelInfo) -> None:
        if not self._folder_chosen_by_user or not self.folder.path():
            self.folder.set_path(info.export_dir, emit=False)
            self.folder.combo.setToolTip(info.export_dir)
        self._update_buttons()

    # --- exporting ---------------------------------------------------------------------------

    def export(self) -> bool:
        formats, out_dir = self.selected_formats(), self.folder.path()
        if self.is_running or self.service.info is None or self.service.busy or not formats or not out_dir:
            return False
        self.banner.clear()
        self.written = []
        self.table.setRowCount(0)
        self.activity.setText("Starting…")
        self.status_message.emit(f"Exporting {self.service.info.name} to {out_dir}…")
        self.start_job("export", export_job(formats, out_dir), self._on_result, self._on_error,
                       on_message=self.activity.setText)
        self._on_progress(0, len(formats))
        return True

    def _finish(self) -> None:
        self.activity.setText("")
        super()._finish()

    def _on_result(self, written: list[ExportedFile]) -> None:
        self.written = list(written)
        self._update_buttons()
        self.table.setRowCount(len(written))
        titles = {fmt: title for fmt, title, _ in EXPORT_FORMATS}
        titles["labels"] = "Class names"
        for row, item in enumerate(written):
            cells = [
                titles.get(item.fmt, item.fmt),
                item.error or item.path,
                "" if item.error else format_size(item.size),
            ]
            for column, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                if item.error:
                    cell.setForeground(Qt.GlobalColor.darkRed)
                if column == 1:
                    cell.setToolTip(text)
                if column == 2:
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, cell)
        failed = [item for item in written if item.error]
        if failed:
            self.banner.show_message("<br>".join(escape(f"{item.fmt}: {item.error}") for item in failed))
            self.status_message.emit(f"Export finished with {len(failed)} failed format(s).")
        else:
            self.status_message.emit(f"Exported to {self.folder.path()}.")
        self.job_done.emit(not failed)

    def _on_error(self, message: str, details: str, cancelled: bool) -> None:
        self.banner.show_message(
            "The export was stopped." if cancelled else escape(message),
            "info" if cancelled else "error",
            details,
        )
        self.job_done.emit(False)

    def open_folder(self, path: str) -> None:
        """Opens a folder in the file manager; a method so tests can replace it."""
        QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.abspath(path)))
