"""The data panel: training and validation folders, their classes and counts, and what blocks training.

A chosen folder is inspected on a worker thread (core.data.dataset.inspect probes every file); the panel
only shows reports. `problem()` is the reason Train is disabled, or None when the data is usable. A
scan is cancelled when another folder replaces it or the window closes.
"""

from __future__ import annotations

import functools
import os
import threading

from PySide6.QtCore import QRect, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QStyledItemDelegate,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.config import LIMITS
from core.data.dataset import DatasetReport, class_mismatch, inspect
from gui.text import escape
from gui.worker import run_in_thread

TRAIN, VAL = "train", "val"
VAL_FOLDER_NAMES = ("val", "validation", "valid")
COUNT_ROLE = Qt.ItemDataRole.UserRole + 1


def local_folder_from_urls(urls: list[QUrl]) -> str | None:
    """The first local folder among dropped URLs, or None."""
    for url in urls:
        path = url.toLocalFile()
        if path and os.path.isdir(path):
            return path
    return None


def split_counts(count: int, fraction: float) -> tuple[int, int]:
    """(train, validation) of one class as core.data.dataset.stratified_split will split it."""
    n_val = min(max(round(count * fraction), 1), count - 1) if count >= 2 else 0
    return count - n_val, n_val


class FolderField(QWidget):
    """An editable combo box of recent folders, a Browse button, and folder drag and drop."""

    chosen = Signal(str)

    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = title
        self.combo = QComboBox()
        self.combo.setEditable(True)
        self.combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(16)
        self.combo.lineEdit().setPlaceholderText("Folder with one subfolder per class")
        self.combo.lineEdit().editingFinished.connect(self._edited)
        self.combo.activated.connect(lambda index: self._emit(self.combo.itemText(index)))
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo, 1)
        layout.addWidget(self.browse)
        self.setAcceptDrops(True)
        self._last = ""

    def path(self) -> str:
        return self.combo.currentText().strip()

    def set_path(self, path: str, emit: bool = True) -> None:
        self.combo.setEditText(path)
        self.combo.setToolTip(path)
        if emit:
            self._emit(path)
        else:
            self._last = path

    def set_recent(self, folders: list[str]) -> None:
        text = self.combo.currentText()
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItems(folders)
        self.combo.setEditText(text)
        self.combo.blockSignals(False)

    def choose_folder(self) -> str:
        """The folder dialog; a method so tests can replace it."""
        start = self.path() if os.path.isdir(self.path()) else os.path.expanduser("~")
        return QFileDialog.getExistingDirectory(self, self.title, start)

    def _browse(self) -> None:
        folder = self.choose_folder()
        if folder:
            self.set_path(folder)

    def _edited(self) -> None:
        if self.path() != self._last:
            self._emit(self.path())

    def _emit(self, path: str) -> None:
        path = path.strip()
        self._last = path
        self.combo.setToolTip(path)
        self.chosen.emit(path)

    def dragEnterEvent(self, event) -> None:
        if local_folder_from_urls(event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        folder = local_folder_from_urls(event.mimeData().urls())
        if folder:
            self.set_path(folder)
            event.acceptProposedAction()


class CountBarDelegate(QStyledItemDelegate):
    """Draws a count cell as a bar proportional to the largest count, with the number on it."""

    def paint(self, painter: QPainter, option, index) -> None:
        fraction = index.data(COUNT_ROLE)
        if isinstance(fraction, float) and fraction > 0:
            rect = option.rect.adjusted(3, 4, -3, -4)
            bar = QRect(rect.left(), rect.top(), max(2, int(rect.width() * fraction)), rect.height())
            painter.save()
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(index.data(Qt.ItemDataRole.UserRole) or "#9ec5fe"))
            painter.drawRoundedRect(bar, 3, 3)
            painter.restore()
        super().paint(painter, option, index)


class SkippedDialog(QDialog):
    """Lists the files a scan could not read, with the reason for each."""

    def __init__(self, reports: list[DatasetReport], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Skipped files")
        self.resize(760, 360)
        rows = [(s.path, s.reason) for report in reports for s in report.skipped]
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(["File", "Reason"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        for row, (path, reason) in enumerate(rows):
            item = QTableWidgetItem(path)
            item.setToolTip(path)
            self.table.setItem(row, 0, item)
            self.table.setItem(row, 1, QTableWidgetItem(reason))
        self.table.setColumnWidth(0, 420)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{len(rows)} file(s) will not be used for training:"))
        layout.addWidget(self.table)
        layout.addWidget(buttons)


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
        self.table = QTableWidget(0, 3)
        self.table.setObjectName("classTable")
        self.table.setHorizontalHeaderLabels(["Class", "Training", "Validation"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.table.setMinimumHeight(90)
        self.table.setMaximumHeight(160)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Fixed)
            self.table.setColumnWidth(column, 96)
            self.table.setItemDelegateForColumn(column, CountBarDelegate(self.table))
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
        train, val = self.reports[TRAIN], self.reports[VAL]
        use_folder = self.use_val_folder.isChecked()
        val_header = "Validation" if use_folder else "Val (split)"
        self.table.setHorizontalHeaderLabels(["Class", "Training", val_header])
        rows = self._count_rows(train, val if use_folder else None, None if use_folder else self.val_split())
        largest = max([max(t or 0, v or 0) for _, t, v in rows] or [1]) or 1
        self.table.setRowCount(len(rows))
        for row, (name, n_train, n_val) in enumerate(rows):
            self.table.setItem(row, 0, QTableWidgetItem(name))
            self.table.setItem(row, 1, _count_item(n_train, largest, "#9ec5fe"))
            self.table.setItem(row, 2, _count_item(n_val, largest, "#a3d9b1"))

    @staticmethod
    def _count_rows(train, val, split):
        if train is None or not train.class_names:
            return []
        names = list(train.class_names)
        if val is not None:
            names += [n for n in val.class_names if n not in names]
        rows = []
        for name in names:
            n_train = train.counts.get(name)
            if split is not None and n_train is not None:
                rows.append((name, *split_counts(n_train, split)))
            else:
                rows.append((name, n_train, val.counts.get(name) if val else None))
        return rows

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


def _count_item(count: int | None, largest: int, colour: str) -> QTableWidgetItem:
    item = QTableWidgetItem("-" if count is None else str(count))
    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
    if count is not None:
        item.setData(COUNT_ROLE, count / largest)
        item.setData(Qt.ItemDataRole.UserRole, colour)
    return item

