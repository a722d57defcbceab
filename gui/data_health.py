"""The Data health view: the dataset doctor's findings, with the images side by side, and the fixes.

A window opened from the data panel. "Check" runs core.modeling.doctor.check_dataset on a worker
thread (progress bar, Stop); the summary cards (one per check) pick which findings the list shows;
the selected finding's images are shown side by side in a gallery (thumbnails decoded through
core.data.images); the buttons below act on the selected image:

- Move to class: into another class folder of its dataset;
- Quarantine: into `_quarantine/` inside its dataset folder, which training ignores;
- Not a problem: the finding is remembered as kept and not shown again.

Moves go through core.data.fixes: logged in the dataset folder, never deleting, undoable from the
Moves list (gui.moves_panel). A move that fails says why in the status line. `dataset_changed` tells
the data panel to scan its folders again. What the report says (the findings, the cards' figures,
where an image lies) comes from core.modeling.findings; this module only shows it. Nothing heavy is
imported with this module: the check imports TensorFlow on its own thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, Qt, Signal, Slot
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
from core.modeling.findings import (
    CHECKS,
    Finding,
    card_figure,
    count_figure,
    findings_of,
    hint,
    label_note,
    nothing_found,
    place_of,
)
from gui.check_worker import CheckWorker, default_check_fn
from gui.gallery import GREEN, ITEM_ROLE, RED, Bar, Gallery, GalleryItem
from gui.health_card import SummaryCard
from gui.moves_panel import MovesPanel
from gui.worker import start_worker

FINDING_ROLE = Qt.ItemDataRole.UserRole + 1


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
        self.moves = MovesPanel(self.train_dir, self.val_dir)
        self.moves.said.connect(self._say)
        self.moves.dataset_changed.connect(self.dataset_changed)
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
        layout.addWidget(self.moves)
        layout.addWidget(self.status)

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
        self.step.setText(f"Checked in {report.seconds:.1f} s. {label_note(report)}")
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

    # --- what the report shows ----------------------------------------------------------------

    def show_report(self, report) -> None:
        self.report = report
        self.findings = findings_of(report)
        for check, card in self.cards.items():
            card.show_figure(card_figure(check, report, len(self.findings[check])))
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
            self.detail.setText(nothing_found(check, self.report))
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
        self.detail.setText(hint(finding))
        if len(finding.paths) == 1:
            self.gallery.setCurrentIndex(self.gallery.model().index(0, 0))
        self._show_actions()

    def _gallery_item(self, finding: Finding, path: str) -> GalleryItem:
        bars: tuple[Bar, ...] = ()
        issue = finding.source if finding.check == "label_issues" else None
        if issue is not None:
            bars = (Bar(f"folder: {issue.given}", issue.given_probability, RED),
                    Bar(f"looks like: {issue.suggested}", issue.suggested_probability, GREEN))
        place = place_of(path, self.train_dir, self.val_dir)
        title = f"{place.split}/{place.class_name}/{os.path.basename(path)}" if place.root else path
        return GalleryItem(path, title, bars, tooltip=path)

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
        self.moves.set_busy(checking)

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
        root = place_of(path, self.train_dir, self.val_dir).root
        if root is None:
            self._say(f"{path} lies outside this dataset (its folder is linked to another place), so it "
                      "is not moved. Nothing was changed.", error=True)
            return
        try:
            move = move_fn(root)
        except FitStudioError as exc:
            self._say(str(exc), error=True)
            return
        self._forget_path(path)
        self._say(f"{move.describe()}. Undo it from the Moves list.")
        self.moves.refresh()
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

    def _forget_path(self, path: str) -> None:
        """Findings about an image that moved no longer hold: drop them (Check again re-finds)."""
        self._drop(lambda f: path in f.paths)

    def _drop(self, matches: Callable[[Finding], bool]) -> None:
        row = self.finding_list.currentRow()
        for check in CHECKS:
            remaining = [f for f in self.findings[check] if not f.key or not matches(f)]
            if check != "imbalance" and len(remaining) != len(self.findings[check]):
                self.findings[check] = remaining
                self.cards[check].show_figure(count_figure(len(remaining)))
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

