"""The Data health view: the dataset doctor's findings, with the images side by side, and the fixes.

A window opened from the data panel. "Check" runs core.modeling.doctor.check_dataset on a worker
thread (progress bar, Stop); the summary cards (one per check) pick which findings the list shows;
the selected finding's images are shown side by side in a gallery (thumbnails decoded through
core.data.images); the buttons below act on the selected image:

- Move to class: into another class folder of its dataset;
- Quarantine: into `_quarantine/` inside its dataset folder, which training ignores;
- Not a problem: the finding is remembered as kept and not shown again.

Moves go through core.data.fixes: logged in the dataset folder, never deleting, undoable from the
Moves list. A move that fails says why in the status line. `dataset_changed` tells the data panel
to scan its folders again. Nothing heavy is imported with this module: the check imports
TensorFlow, cleanlab and scikit-learn on its own thread.
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.data import fixes
from core.errors import FitStudioError
from core.events import CheckProgress
from gui.gallery import GREEN, ITEM_ROLE, RED, Bar, Gallery, GalleryItem
from gui.worker import start_worker

CHECKS = ("duplicates", "leaks", "label_issues", "outliers", "imbalance", "unreadable")
CHECK_TITLES = {
    "duplicates": "Duplicates",
    "leaks": "Leaks",
    "label_issues": "Label errors",
    "outliers": "Outliers",
    "imbalance": "Imbalance",
    "unreadable": "Unreadable",
}
FINDING_ROLE = Qt.ItemDataRole.UserRole + 1
NO_FIGURE = "\u2013"  # an en dash: not checked (yet)
IMBALANCE_WORTH_SAYING = 1.5  # largest/smallest class count from which the card turns amber


def default_check_fn(train_dir: str, val_dir: str | None, model: str | None, **kwargs):
    from core.modeling.doctor import check_dataset  # its heavy libraries load on first use

    return check_dataset(train_dir, val_dir, model, **kwargs)


@dataclass(frozen=True)
class Finding:
    """One row of the findings list: what it says, the images it shows, how to keep it."""

    check: str
    text: str
    paths: tuple[str, ...]
    key: str = ""  # "" for what cannot be kept (imbalance, unreadable files)
    source: Any = None  # the engine's finding (DuplicateGroup, Leak, LabelIssue, ...)


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


class SummaryCard(QFrame):
    """A check's name, its number of findings (or a figure), and a colour for how it went; a click
    (or Space) selects it."""

    clicked = Signal()
    COLOURS = {"none": "#98a2b3", "good": "#067647", "bad": "#b42318"}

    def __init__(self, check: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.check = check
        self.setObjectName("healthCard")
        self.setMinimumSize(120, 70)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.title = QLabel(CHECK_TITLES[check])
        self.figure_label = QLabel()
        font = self.figure_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        self.figure_label.setFont(font)
        self.detail = QLabel()
        self.detail.setStyleSheet("color: #667085")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 6, 10, 6)
        layout.setSpacing(0)
        for label in (self.title, self.figure_label, self.detail):
            layout.addWidget(label)
        self._checked = False
        self.show_figure(NO_FIGURE, "", "none")

    def show_count(self, count: int) -> None:
        self.show_figure(str(count), "found" if count else "none found", "bad" if count else "good")

    def show_figure(self, figure: str, detail: str, state: str) -> None:
        self.figure, self.state = figure, state
        self.figure_label.setText(figure)
        self.detail.setText(detail)
        self._restyle()

    def isChecked(self) -> bool:  # Qt-style names, as a checkable button has
        return self._checked

    def setChecked(self, checked: bool) -> None:
        self._checked = checked
        self._restyle()

    def _restyle(self) -> None:
        background, border = ("#eff4ff", "#2563eb") if self._checked else ("#ffffff", "#d0d5dd")
        self.setStyleSheet(
            f"QFrame#healthCard {{ background: {background}; border: 1px solid {border};"
            f" border-left: 5px solid {self.COLOURS[self.state]}; border-radius: 6px; }}"
        )

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(event.position().toPoint()):
            self.clicked.emit()
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.clicked.emit()
            return
        super().keyPressEvent(event)


class DataHealthView(QDialog):
    """The doctor's report for one training (and validation) folder, and the fixes."""

    dataset_changed = Signal()  # a file was moved or put back: the class counts changed
    check_finished = Signal(object)  # HealthReport, or None when the check failed or was stopped

    def __init__(self, train_dir: str, val_dir: str | None = None, check_fn: Callable = default_check_fn,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Data health")
        self.resize(1100, 760)
        self.train_dir, self.val_dir = train_dir, val_dir
        self._check_fn = check_fn
        self.report = None
        self.findings: dict[str, list[Finding]] = {check: [] for check in CHECKS}
        self._worker: CheckWorker | None = None
        self.current_check = CHECKS[0]
        self._build_widgets()
        self._build_layout()
        self._show_actions()
        # The main window closes without closing this one: a running check must still stop, so that
        # the application's wait for its threads at exit is short.
        QCoreApplication.instance().aboutToQuit.connect(self.stop_check)

    # --- construction -------------------------------------------------------------------------

    def _build_widgets(self) -> None:
        folders = self.train_dir + (f"   ·   validation: {self.val_dir}" if self.val_dir else "")
        self.folders = QLabel(f"Training: {folders}")
        self.folders.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.check_labels = QCheckBox("Check labels")
        self.check_labels.setChecked(True)
        self.check_labels.setToolTip(
            "Look for images whose folder (label) is probably wrong, and for outliers. Trains a quick "
            "model for it unless a trained model is chosen."
        )
        self.model_field = QLineEdit()
        self.model_field.setPlaceholderText("Quick model (trained for the check)")
        self.model_field.setToolTip("A run folder or .keras file whose features the label check uses")
        self.model_browse = QPushButton("Run folder…")
        self.model_browse.clicked.connect(self._browse_model)
        self.check_button = QPushButton("Check")
        self.check_button.setDefault(True)
        self.check_button.clicked.connect(self.start_check)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop_check)
        self.step = QLabel("Press Check to look for problems in this dataset.")
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.progress.hide()
        self.cards = {check: SummaryCard(check) for check in CHECKS}
        for card in self.cards.values():
            card.clicked.connect(lambda c=card.check: self.select_check(c))
        self.finding_list = QListWidget()
        self.finding_list.setObjectName("findings")
        self.finding_list.setWordWrap(True)
        self.finding_list.currentItemChanged.connect(self._finding_selected)
        self.gallery = Gallery(bars=2, placeholder="Select a finding to see its images side by side.")
        self.gallery.item_selected.connect(lambda _item: self._show_actions())
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.target_class = QComboBox()
        self.move_button = QPushButton("Move to class")
        self.move_button.clicked.connect(self.move_selected)
        self.quarantine_button = QPushButton("Quarantine")
        self.quarantine_button.setToolTip(
            "Move the image into _quarantine/ in its dataset folder, which training ignores"
        )
        self.quarantine_button.clicked.connect(self.quarantine_selected)
        self.keep_button = QPushButton("Not a problem")
        self.keep_button.setToolTip("Keep it as it is and do not show this finding again")
        self.keep_button.clicked.connect(self.keep_selected)
        self.moves_list = QListWidget()
        self.moves_list.setObjectName("moves")
        self.moves_list.setMaximumHeight(110)
        self.moves_list.currentItemChanged.connect(lambda *_: self._show_actions())
        self.undo_button = QPushButton("Undo move")
        self.undo_button.clicked.connect(self.undo_selected_move)
        self.status = QLabel()
        self.status.setObjectName("healthStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def _build_layout(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self.check_labels)
        top.addWidget(self.model_field, 1)
        top.addWidget(self.model_browse)
        top.addWidget(self.check_button)
        top.addWidget(self.stop_button)
        cards = QGridLayout()
        for column, card in enumerate(self.cards.values()):
            cards.addWidget(card, 0, column)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.gallery, 1)
        right_layout.addWidget(self.detail)
        actions = QHBoxLayout()
        actions.addWidget(self.target_class)
        actions.addWidget(self.move_button)
        actions.addWidget(self.quarantine_button)
        actions.addStretch(1)
        actions.addWidget(self.keep_button)
        right_layout.addLayout(actions)
        splitter = QSplitter()
        splitter.addWidget(self.finding_list)
        splitter.addWidget(right)
        splitter.setSizes([420, 680])
        moves_row = QHBoxLayout()
        moves_row.addWidget(self.moves_list, 1)
        moves_row.addWidget(self.undo_button, 0, Qt.AlignmentFlag.AlignTop)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        layout = QVBoxLayout(self)
        layout.addWidget(self.folders)
        layout.addLayout(top)
        layout.addWidget(self.step)
        layout.addWidget(self.progress)
        layout.addLayout(cards)
        layout.addWidget(splitter, 1)
        layout.addWidget(line)
        layout.addWidget(QLabel("Moves (logged in each dataset folder; nothing is ever deleted)"))
        layout.addLayout(moves_row)
        layout.addWidget(self.status)
        self._show_moves()

    # --- running the check --------------------------------------------------------------------

    @property
    def is_checking(self) -> bool:
        return self._worker is not None

    def start_check(self) -> None:
        if self._worker is not None:
            return
        model = self.model_field.text().strip() or None
        self._worker = CheckWorker(self._check_fn, self.train_dir, self.val_dir, model,
                                   self.check_labels.isChecked())
        self._worker.progress.connect(self._on_progress)
        self._worker.result.connect(self._on_result)
        self._worker.failed.connect(self._on_failed)
        self._worker.cancelled.connect(self._on_cancelled)
        start_worker(self._worker, "FitStudio data health", on_thread_finished=self._on_thread_finished)
        self.step.setText("Starting the check…")
        self.progress.setRange(0, 0)
        self.progress.show()
        self._show_actions()

    def stop_check(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self.step.setText("Stopping…")

    @Slot(object)
    def _on_progress(self, event: CheckProgress) -> None:
        amount = f" ({event.done}/{event.total})" if event.total else ""
        self.step.setText(f"{event.step}…{amount}")
        self.progress.setRange(0, event.total)
        self.progress.setValue(event.done)

    @Slot(object)
    def _on_result(self, report) -> None:
        self.show_report(report)
        self.step.setText(f"Checked in {report.seconds:.1f} s." + self._label_note(report))
        self.check_finished.emit(report)

    @Slot(str, str)
    def _on_failed(self, message: str, details: str) -> None:
        self.step.setText("The check could not finish.")
        self._say(message, error=True)
        self.check_finished.emit(None)

    @Slot()
    def _on_cancelled(self) -> None:
        self.step.setText("Stopped. Press Check to start again.")
        self.check_finished.emit(None)

    @Slot()
    def _on_thread_finished(self) -> None:
        self._worker = None
        self.progress.hide()
        self._show_actions()

    @staticmethod
    def _label_note(report) -> str:
        if report.label_source == "quick model":
            return " Labels checked with a quick model trained for the check."
        if report.label_source:
            return f" Labels checked with the features of {report.label_source}."
        return " " + " ".join(report.notes) if report.notes else " Labels were not checked."

    # --- what the report shows ----------------------------------------------------------------

    def show_report(self, report) -> None:
        self.report = report
        self.findings = findings_of(report)
        for check, card in self.cards.items():
            if check == "imbalance":
                ratio = _largest_ratio(report)
                state = "none" if ratio is None else ("bad" if ratio >= IMBALANCE_WORTH_SAYING else "good")
                card.show_figure(NO_FIGURE if ratio is None else f"{ratio:.1f}x", "largest/smallest", state)
            elif check in ("label_issues", "outliers") and not report.label_source:
                card.show_figure(NO_FIGURE, "not checked", "none")
            elif check == "leaks" and not report.val_dir:
                card.show_figure(NO_FIGURE, "no validation folder", "none")
            else:
                card.show_count(len(self.findings[check]))
        self._fill_classes()
        first = next((c for c in CHECKS if self.findings[c] and c != "imbalance"), "duplicates")
        self.select_check(first)

    def select_check(self, check: str) -> None:
        for name, card in self.cards.items():
            card.setChecked(name == check)
        self.current_check = check
        self.finding_list.clear()
        for finding in self.findings.get(check, []):
            item = QListWidgetItem(finding.text)
            item.setData(FINDING_ROLE, finding)
            item.setToolTip("\n".join(finding.paths))
            self.finding_list.addItem(item)
        if self.finding_list.count():
            self.finding_list.setCurrentRow(0)
        else:
            self.gallery.clear()
            self.detail.setText(_nothing_found(check, self.report))
        self._show_actions()

    def selected_finding(self) -> Finding | None:
        item = self.finding_list.currentItem()
        return item.data(FINDING_ROLE) if item is not None else None

    def selected_path(self) -> str | None:
        """The image the buttons act on: the one picked in the gallery, or a finding's only image."""
        item = self.gallery.currentIndex().data(ITEM_ROLE)
        if item is not None:
            return item.path
        finding = self.selected_finding()
        return finding.paths[0] if finding is not None and len(finding.paths) == 1 else None

    def _finding_selected(self, *_args) -> None:
        finding = self.selected_finding()
        if finding is None:
            self.gallery.clear()
            self._show_actions()
            return
        self.gallery.set_items([self._gallery_item(finding, path) for path in finding.paths])
        self.detail.setText(_hint(finding))
        if len(finding.paths) == 1:
            self.gallery.setCurrentIndex(self.gallery.model().index(0, 0))
        self._show_actions()

    def _gallery_item(self, finding: Finding, path: str) -> GalleryItem:
        split, class_name = self._place(path)
        bars: tuple[Bar, ...] = ()
        issue = finding.source if finding.check == "label_issues" else None
        if issue is not None:
            bars = (Bar(f"folder: {issue.given}", issue.given_probability, RED),
                    Bar(f"looks like: {issue.suggested}", issue.suggested_probability, GREEN))
        title = f"{split}/{class_name}/{os.path.basename(path)}"
        return GalleryItem(path, title, bars, tooltip=path)

    def _place(self, path: str) -> tuple[str, str]:
        """(split, class) of an image from its folders."""
        root = self._root_of(path)
        split = "val" if root == self.val_dir else "train"
        relative = os.path.relpath(path, root).replace(os.sep, "/")
        return split, relative.split("/")[0]

    def _root_of(self, path: str) -> str:
        if self.report is not None:
            return self.report.root_of(path)
        return self.train_dir

    def _fill_classes(self) -> None:
        self.target_class.clear()
        if self.report is not None:
            self.target_class.addItems(self.report.class_names)

    def _show_actions(self) -> None:
        checking = self._worker is not None
        path = self.selected_path()
        finding = self.selected_finding()
        movable = path is not None and not checking and os.path.isfile(path)
        self.check_button.setEnabled(not checking)
        self.stop_button.setEnabled(checking)
        self.move_button.setEnabled(movable and self.target_class.count() > 0)
        self.target_class.setEnabled(movable)
        self.quarantine_button.setEnabled(movable)
        self.keep_button.setEnabled(finding is not None and bool(finding.key) and not checking)
        if movable and finding is not None and finding.check == "label_issues":
            self.target_class.setCurrentText(finding.source.suggested)
        self.undo_button.setEnabled(not checking and self._selected_move() is not None)

    # --- fixes ----------------------------------------------------------------------------------

    def move_selected(self) -> None:
        path, target = self.selected_path(), self.target_class.currentText()
        if path is not None and target:
            self._apply(lambda root: fixes.move_to_class(root, path, target), path)

    def quarantine_selected(self) -> None:
        path = self.selected_path()
        if path is not None:
            self._apply(lambda root: fixes.quarantine(root, path), path)

    def _apply(self, move_fn: Callable[[str], fixes.Move], path: str) -> None:
        try:
            move = move_fn(self._root_of(path))
        except (FitStudioError, ValueError) as exc:
            self._say(str(exc), error=True)
            return
        self._forget_path(path)
        self._say(f"{move.describe()}. Undo it from the Moves list.")
        self._show_moves()
        self.dataset_changed.emit()

    def keep_selected(self) -> None:
        finding = self.selected_finding()
        if finding is None or not finding.key:
            return
        try:
            fixes.keep(self.train_dir, finding.key, finding.text)
        except FitStudioError as exc:
            self._say(str(exc), error=True)
            return
        self._drop(lambda f: f.key == finding.key)
        self._say("Kept as it is; this finding will not be shown again.")

    def undo_selected_move(self) -> None:
        selected = self._selected_move()
        if selected is None:
            return
        root, move = selected
        try:
            fixes.undo(root, move.id)
        except FitStudioError as exc:
            self._say(str(exc), error=True)
            return
        self._say(f"Put back {move.source}. Check again to see it among the findings.")
        self._show_moves()
        self.dataset_changed.emit()

    def _selected_move(self) -> tuple[str, fixes.Move] | None:
        item = self.moves_list.currentItem()
        entry = item.data(FINDING_ROLE) if item is not None else None
        return entry if entry is not None and not entry[1].undone else None

    def _show_moves(self) -> None:
        self.moves_list.clear()
        roots = [r for r in (self.train_dir, self.val_dir) if r and os.path.isdir(r)]
        moves = [(root, move) for root in roots for move in fixes.read_moves(root)]
        for root, move in sorted(moves, key=lambda entry: entry[1].at, reverse=True):
            split = "val" if root == self.val_dir else "train"
            text = f"{move.at.replace('T', ' ')[:19]}  {split}: {move.describe()}"
            item = QListWidgetItem(text + ("  (undone)" if move.undone else ""))
            item.setData(FINDING_ROLE, (root, move))
            if move.undone:
                item.setForeground(Qt.GlobalColor.gray)
            self.moves_list.addItem(item)
        if self.moves_list.count():
            self.moves_list.setCurrentRow(0)
        self._show_actions()

    def _forget_path(self, path: str) -> None:
        """Findings about an image that moved no longer hold: drop them (Check again re-finds)."""
        self._drop(lambda f: path in f.paths)

    def _drop(self, matches: Callable[[Finding], bool]) -> None:
        row = self.finding_list.currentRow()
        for check in CHECKS:
            remaining = [f for f in self.findings[check] if not f.key or not matches(f)]
            if check != "imbalance" and len(remaining) != len(self.findings[check]):
                self.findings[check] = remaining
                self.cards[check].show_count(len(remaining))
        self.select_check(self.current_check)
        if self.finding_list.count():
            self.finding_list.setCurrentRow(min(row, self.finding_list.count() - 1))

    def _say(self, text: str, error: bool = False) -> None:
        colour = "#b42318" if error else "#344054"
        self.status.setStyleSheet(f"color: {colour}")
        self.status.setText(("✖ " if error else "") + text)

    def _browse_model(self) -> None:
        folder = self.choose_model_folder()
        if folder:
            self.model_field.setText(folder)

    def choose_model_folder(self) -> str:
        """The folder dialog; a method so tests can replace it."""
        return QFileDialog.getExistingDirectory(self, "Run folder for the label check", ".")

    def closeEvent(self, event) -> None:
        # A running check stops within one step; its thread ends on its own and is waited for at exit.
        self.stop_check()
        self.gallery.shutdown()
        super().closeEvent(event)


def findings_of(report) -> dict[str, list[Finding]]:
    """The report's findings as list rows, by check."""

    def where(path: str) -> str:
        root = report.root_of(path)
        split = "val" if root == report.val_dir else "train"
        return f"{split}/{os.path.relpath(path, root).replace(os.sep, '/')}"

    found: dict[str, list[Finding]] = {check: [] for check in CHECKS}
    for group in report.duplicates:
        names = ", ".join(where(p) for p in group.paths[:3]) + (" …" if len(group.paths) > 3 else "")
        text = f"{len(group.paths)} {group.kind} copies: {names}"
        found["duplicates"].append(Finding("duplicates", text, tuple(group.paths), group.key, group))
    for leak in report.leaks:
        found["leaks"].append(Finding(
            "leaks", f"{leak.kind.capitalize()}: {where(leak.train)} is also {where(leak.val)}",
            (leak.train, leak.val), leak.key, leak,
        ))
    for issue in report.label_issues:
        found["label_issues"].append(Finding(
            "label_issues",
            f"{where(issue.path)}: in '{issue.given}', looks like '{issue.suggested}' "
            f"({issue.score:.0%} likely wrong)",
            (issue.path,), issue.key, issue,
        ))
    for outlier in report.outliers:
        found["outliers"].append(Finding(
            "outliers", f"{where(outlier.path)}: unlike the other images (score {outlier.score:.1f})",
            (outlier.path,), outlier.key, outlier,
        ))
    for skipped in report.skipped:
        found["unreadable"].append(Finding("unreadable", f"{where(skipped.path)}: {skipped.reason}",
                                           (skipped.path,), "", skipped))
    for split, counts in report.class_counts.items():
        for name, count in counts.items():
            weight = report.class_weights.get(name) if split == "train" else None
            suffix = f", suggested class weight {weight:.2f}" if weight is not None else ""
            found["imbalance"].append(Finding("imbalance", f"{split}/{name}: {count} images{suffix}", ()))
    return found


def _nothing_found(check: str, report) -> str:
    if report is None:
        return ""
    if check == "imbalance":
        ratio = _largest_ratio(report)
        return (f"The largest class has {ratio:.1f}x the images of the smallest. Tick 'Balance classes' in "
                "the training settings to weight the loss by class.") if ratio else ""
    return f"No {CHECK_TITLES[check].lower()} found."


def _hint(finding: Finding) -> str:
    if finding.check == "unreadable":
        return "This file cannot be trained on. Quarantine it to get it out of the way."
    if len(finding.paths) > 1:
        return ("Pick the copy to move or quarantine; 'Not a problem' keeps them all and hides this "
                "finding from now on.")
    if finding.check == "label_issues":
        return "Move it to the suggested class if the model is right, or keep it where it is."
    return "Quarantine it if it does not belong in the dataset, or keep it."


def _largest_ratio(report) -> float | None:
    return max((ratio for ratio in report.imbalance().values() if ratio), default=None)
