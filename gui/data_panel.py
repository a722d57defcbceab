"""The data panel: training and validation folders, their classes and counts, and what blocks training.

A chosen folder is inspected on a worker thread (core.data.dataset.inspect probes every file); the panel
only shows reports. `problem()` is the reason Train is disabled, or None when the data is usable. A
scan is cancelled when another folder replaces it or the window closes.
"""

from __future__ import annotations

import functools
import os
import threading

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.config import LIMITS
from core.data.dataset import DatasetReport, class_mismatch, inspect
from gui.class_counts_table import ClassCountsTable
from gui.folder_field import FolderField, local_folder_from_urls
from gui.skipped_files_table import SkippedDialog
from gui.text import escape
from gui.worker import run_in_thread

TRAIN, VAL = "train", "val"
VAL_FOLDER_NAMES = ("val", "validation", "valid")


class DataPanel(QGroupBox):
    changed = Signal()  # a report arrived or a choice changed: re-read problem()
    folder_used = Signal(str)  # a folder was chosen: remember it as recent

    def __init__(self, parent: QWidget | None = None, inspect_fn=inspect):
        super().__init__("Data", parent)
        self._inspect = inspect_fn
        self.reports: dict[str, DatasetReport | None] = {TRAIN: None, VAL: None}
        self._scan_ids = {TRAIN: 0, VAL: 0}
        self._scan_cancels = {TRAIN: threading.Event(), VAL: threading.Event()}
        self._scanning: set[str] = set()
        self.skipped_dialog: SkippedDialog | None = None
        self._build_widgets()
        self._build_layout()
        self.setAcceptDrops(True)

    # --- construction -------------------------------------------------------------------------

    def _build_widgets(self) -> None:
        self.train_field = FolderField("Training folder")
        self.train_field.chosen.connect(lambda path: self._folder_chosen(TRAIN, path))
        self.val_field = FolderField("Validation folder")
        self.val_field.chosen.connect(lambda path: self._folder_chosen(VAL, path))
        self.use_val_folder = QRadioButton("Validation folder")
        self.use_split = QRadioButton("Split off")
        group = QButtonGroup(self)
        group.addButton(self.use_val_folder)
        group.addButton(self.use_split)
        self.use_val_folder.setChecked(True)
        self.use_val_folder.toggled.connect(self._mode_changed)
        low, high = LIMITS["val_split"]
        self.split_percent = QSpinBox()
        self.split_percent.setRange(round(low * 100), round(high * 100))
        self.split_percent.setSuffix(" %")
        self.split_percent.setValue(20)
        self.split_percent.valueChanged.connect(self._refresh)
        self.split_label = QLabel("of the training images, per class")
        self.scan_progress = QProgressBar()
        self.scan_progress.setMaximumHeight(6)
        self.scan_progress.setTextVisible(False)
        self.scan_progress.hide()
        self.table = ClassCountsTable()
        self.summary = QLabel()
        self.summary.setObjectName("dataSummary")
        self.summary.setWordWrap(True)
        self.skipped_button = QPushButton()
        self.skipped_button.setFlat(True)
        self.skipped_button.setObjectName("linkButton")
        self.skipped_button.clicked.connect(self.show_skipped)
        self.skipped_button.hide()
        self.health_button = QPushButton("Data health…")
        self.health_button.setToolTip(
            "Look for duplicates, training images repeated in validation, imbalance, likely wrong "
            "labels and outliers, and fix them"
        )
        self.health_button.clicked.connect(self.open_data_health)
        self.health_view = None
        self.status = QLabel()
        self.status.setObjectName("dataStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def _build_layout(self) -> None:
        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        grid.addWidget(QLabel("Training folder"), 0, 0)
        grid.addWidget(self.train_field, 0, 1, 1, 3)
        grid.addWidget(self.use_val_folder, 1, 0)
        grid.addWidget(self.val_field, 1, 1, 1, 3)
        split_row = QHBoxLayout()
        split_row.addWidget(self.split_percent)
        split_row.addWidget(self.split_label, 1)
        grid.addWidget(self.use_split, 2, 0)
        grid.addLayout(split_row, 2, 1, 1, 3)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.scan_progress)
        layout.addWidget(self.table, 1)
        summary_row = QHBoxLayout()
        summary_row.addWidget(self.summary, 1)
        summary_row.addWidget(self.skipped_button)
        summary_row.addWidget(self.health_button)
        layout.addLayout(summary_row)
        layout.addWidget(self.status)

    # --- choices ------------------------------------------------------------------------------

    def set_folders(
        self, train_dir: str, val_dir: str | None, val_split: float, last_val_dir: str = ""
    ) -> None:
        """Fills the fields from a TrainingConfig's values and scans them."""
        self.split_percent.setValue(round(val_split * 100))
        self.use_val_folder.setChecked(bool(val_dir))
        self.use_split.setChecked(not val_dir)
        self.val_field.set_path(val_dir or last_val_dir, emit=bool(val_dir or last_val_dir))
        self.train_field.set_path(train_dir)

    def set_recent(self, folders: list[str]) -> None:
        self.train_field.set_recent(folders)
        self.val_field.set_recent(folders)

    def drop_folder(self, path: str) -> None:
        """A folder dropped on the window: a dataset root with train/ and val/ fills both fields."""
        train = os.path.join(path, "train")
        candidates = (os.path.join(path, name) for name in VAL_FOLDER_NAMES)
        val = next((folder for folder in candidates if os.path.isdir(folder)), None)
        if os.path.isdir(train) and val:
            self.use_val_folder.setChecked(True)
            self.val_field.set_path(val)
            self.train_field.set_path(train)
        else:
            self.train_field.set_path(path)

    def train_dir(self) -> str:
        return self.train_field.path()

    def val_dir(self) -> str | None:
        return self.val_field.path() if self.use_val_folder.isChecked() else None

    def val_split(self) -> float:
        return self.split_percent.value() / 100

    def apply_to(self, config):
        return config.replace(
            train_dir=self.train_dir(), val_dir=self.val_dir() or None, val_split=self.val_split()
        )

    def _mode_changed(self) -> None:
        self.val_field.setEnabled(self.use_val_folder.isChecked())
        self.split_percent.setEnabled(self.use_split.isChecked())
        self._refresh()

    # --- scanning -----------------------------------------------------------------------------

    def is_scanning(self) -> bool:
        return bool(self._scanning)

    def cancel_scans(self) -> None:
        """Tells the scans under way to stop at their next file; their reports will be ignored."""
        for role in (TRAIN, VAL):
            self._scan_ids[role] += 1
            self._scan_cancels[role].set()
        self._scanning.clear()

    def _folder_chosen(self, role: str, path: str) -> None:
        self._scan_ids[role] += 1
        scan_id = self._scan_ids[role]
        self._scan_cancels[role].set()  # the folder this one replaces is no longer needed
        self._scan_cancels[role] = cancel = threading.Event()
        self.reports[role] = None
        if not path:
            self._scanning.discard(role)
            self._refresh()
            return
        if os.path.isdir(path):
            self.folder_used.emit(path)
        self._scanning.add(role)
        self.scan_progress.setRange(0, 0)
        self.scan_progress.show()
        self._refresh()
        run_in_thread(
            functools.partial(self._inspect, path, cancel=cancel),
            on_result=lambda report: self._scan_done(role, scan_id, report),
            on_error=lambda message, _details: self._scan_failed(role, scan_id, path, message),
            on_progress=lambda done, total: self._scan_progress(role, scan_id, done, total),
            name=f"FitStudio scan {role}",
        )

    def _scan_progress(self, role: str, scan_id: int, done: int, total: int) -> None:
        if scan_id == self._scan_ids[role]:
            self.scan_progress.setRange(0, total)
            self.scan_progress.setValue(done)

    def _scan_done(self, role: str, scan_id: int, report: DatasetReport) -> None:
        if scan_id != self._scan_ids[role]:
            return  # a newer choice replaced this folder while it was scanned
        self._scanning.discard(role)
        self.reports[role] = report
        self.scan_progress.setVisible(bool(self._scanning))
        self._refresh()

    def _scan_failed(self, role: str, scan_id: int, path: str, message: str) -> None:
        report = DatasetReport(path, [], {}, [], None, None, [], f"The folder could not be read: {message}")
        self._scan_done(role, scan_id, report)

    # --- what the panel shows ------------------------------------------------------------------

    def problem(self) -> str | None:
        """Why training cannot start with this data, or None."""
        train = self.reports[TRAIN]
        if TRAIN in self._scanning:
            return "Checking the training folder…"
        if not self.train_dir():
            return "Choose a training folder."
        if train is None:
            return "Checking the training folder…"
        if train.error:
            return train.error
        if not self.use_val_folder.isChecked():
            return None
        val = self.reports[VAL]
        if VAL in self._scanning:
            return "Checking the validation folder…"
        if not self.val_field.path():
            return "Choose a validation folder, or split off part of the training images."
        if val is None:
            return "Checking the validation folder…"
        if not val.class_names:
            return val.error
        mismatch = class_mismatch(train.class_names, val.class_names)
        if mismatch:
            return mismatch
        if val.total == 0:
            return f"The validation folder {val.root} has no readable image."
        return None

    def warnings(self) -> list[str]:
        found = []
        train, val = self.reports[TRAIN], self.reports[VAL]
        if train and train.usable:
            found.extend(train.warnings)
        if self.use_val_folder.isChecked() and val and val.class_names:
            # few images per class is normal in a validation folder: only imbalance is worth saying
            found.extend(f"Validation: {w}" for w in val.warnings if not w.startswith("Few images"))
            if val.error and not self.problem():
                found.append(f"Validation: {val.error}")
        if train and train.usable and not self.use_val_folder.isChecked():
            unsplittable = [name for name, n in train.counts.items() if n < 2]
            if unsplittable:
                found.append(f"{', '.join(unsplittable)}: too few images to split off a validation image.")
        return found

    def _refresh(self) -> None:
        self._fill_table()
        self._show_summary()
        self._show_status()
        self.changed.emit()

    def _fill_table(self) -> None:
        use_folder = self.use_val_folder.isChecked()
        self.table.show_counts(self.reports[TRAIN], self.reports[VAL] if use_folder else None,
                               None if use_folder else self.val_split())

    def _show_summary(self) -> None:
        train, val = self.reports[TRAIN], self.reports[VAL]
        if train is None or not train.class_names:
            self.summary.setText("")
        else:
            parts = [f"{len(train.class_names)} classes", f"{train.total} training images"]
            if self.use_val_folder.isChecked() and val and val.class_names:
                parts.append(f"{val.total} validation images")
            if train.min_size and train.max_size:
                (w0, h0), (w1, h1) = train.min_size, train.max_size
                parts.append(f"{w0}x{h0} px" if (w0, h0) == (w1, h1) else f"{w0}x{h0} to {w1}x{h1} px")
            self.summary.setText(" · ".join(parts))
        skipped = sum(len(r.skipped) for r in self._shown_reports())
        self.skipped_button.setText(f"{skipped} skipped file{'s' if skipped != 1 else ''}: show…")
        self.skipped_button.setVisible(skipped > 0)
        self.health_button.setEnabled(train is not None and bool(train.class_names))

    def rescan(self) -> None:
        """Scans the chosen folders again (their files changed)."""
        self._folder_chosen(TRAIN, self.train_dir())
        if self.use_val_folder.isChecked():
            self._folder_chosen(VAL, self.val_field.path())

    def open_data_health(self):
        """The Data health view of the chosen folders; fixes made there rescan this panel."""
        from gui.data_health import DataHealthView

        folders = (self.train_dir(), self.val_dir() or None)
        if self.health_view is None or (self.health_view.train_dir, self.health_view.val_dir) != folders:
            if self.health_view is not None:
                self.health_view.close()
            self.health_view = DataHealthView(*folders, parent=self)
            self.health_view.dataset_changed.connect(self.rescan)
        self.health_view.show()
        self.health_view.raise_()
        return self.health_view

    def _show_status(self) -> None:
        problem = self.problem()
        lines = []
        if problem and not problem.startswith("Checking"):
            lines.append(f"<span style='color:#b42318'>✖ {escape(problem)}</span>")
        elif problem:
            lines.append(f"<span style='color:#475467'>{escape(problem)}</span>")
        lines.extend(f"<span style='color:#b54708'>⚠ {escape(w)}</span>" for w in self.warnings())
        if not lines:
            lines.append("<span style='color:#067647'>✔ Ready to train.</span>")
        self.status.setText("<br>".join(lines))

    def _shown_reports(self) -> list[DatasetReport]:
        reports = [self.reports[TRAIN]]
        if self.use_val_folder.isChecked():
            reports.append(self.reports[VAL])
        return [r for r in reports if r is not None]

    def show_skipped(self) -> SkippedDialog:
        self.skipped_dialog = SkippedDialog(self._shown_reports(), self)
        self.skipped_dialog.show()
        return self.skipped_dialog

    def dragEnterEvent(self, event) -> None:
        if local_folder_from_urls(event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        folder = local_folder_from_urls(event.mimeData().urls())
        if folder:
            self.drop_folder(folder)
            event.acceptProposedAction()
