"""The Runs tab: every training kept under the output folders, compared side by side.

A sortable, filterable table of the runs (gui.runs_table; listed by core.runs.index on a worker
thread) with the settings that differ between them as extra columns. Selecting runs overlays their
curves and shows what differs (gui.run_overlay); each selected run keeps one colour, shown as a swatch
in the table, in the plots and in the differences' column headers. Actions on a run: open it in Train
(resume or extend), train again like it, evaluate, export, open its folder, and move it to the system
trash, undoable until the window closes (gui.trash; nothing is ever deleted).

The list is read again when the page is shown, when the window says a run started or ended, and, while
a run trains, every few seconds: a running run's curves then grow live.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.runs import run_folder
from core.runs.index import RunsIndex, differing_settings
from core.runs.run_info import RunInfo, read_run_info
from gui.run_overlay import RunCurves, RunDifferences, RunOverlay
from gui.runs_table import RunsTable
from gui.sweep_group import SweepGroup
from gui.trash import TrashError, move_to_trash, restore_batch
from gui.worker import run_in_thread

POLL_MS = 3000  # while a run trains: how often its curves and the list are read again
PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777",
           "#4b5563", "#65a30d")
FOLDERS_KEY = "runs/folders"
NOT_SETTING_COLUMNS = {"train_dir", "val_dir", "model", "epochs"}  # columns of their own already


def read_histories(run_dirs: list[str]) -> dict[str, list[dict[str, float]]]:
    """Each run's epochs (from its checkpoint), for the overlay; on a worker thread."""
    return {run_dir: list(read_run_info(run_dir).history) for run_dir in run_dirs}


class RunsPage(QWidget):
    status_message = Signal(str)
    open_in_train_requested = Signal(str)  # run_dir: resume or extend it on the Train tab
    train_like_requested = Signal(str)  # run_dir: its settings into the Train tab
    evaluate_requested = Signal(str)
    export_requested = Signal(str)
    runs_listed = Signal(int)  # the table is filled with this many runs
    curves_drawn = Signal()  # the overlay shows the selected runs' latest histories

    def __init__(self, default_folder: Callable[[], str], settings: QSettings | None = None,
                 parent: QWidget | None = None, poll_ms: int = POLL_MS):
        super().__init__(parent)
        self.default_folder, self.settings = default_folder, settings
        self.index = RunsIndex()
        self.runs: dict[str, RunInfo] = {}
        self.histories: dict[str, list[dict[str, float]]] = {}
        self.colours: dict[str, str] = {}  # of the selected runs
        self.trashed: list[list[tuple[str, str]]] = []  # undo stack: batches of (folder, where in the trash)
        self._listing = self._list_again = False
        self._reading_curves = self._curves_again = False
        self._live: set[str] = set()  # selected runs whose curves were read while they trained
        self._watching = False  # this window trains: a new run folder may appear at any moment
        self.poll = QTimer(self)
        self.poll.setInterval(poll_ms)
        self.poll.timeout.connect(self.refresh)
        self._build()
        self._connect()

    # --- construction -------------------------------------------------------------------------

    def _build(self) -> None:
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter runs: model, status, folder, a setting's value…")
        self.filter_edit.setClearButtonEnabled(True)
        self.folders_button = QToolButton()
        self.folders_button.setText("Folders")
        self.folders_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.folders_button.setMenu(QMenu(self.folders_button))
        self.refresh_button = QPushButton("Refresh")
        self.count_label = QLabel()
        self.count_label.setObjectName("sectionHint")
        top = QHBoxLayout()
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.count_label)
        top.addWidget(self.folders_button)
        top.addWidget(self.refresh_button)
        self.table = RunsTable()  # gui.runs_table: the rows, their sort keys, the colour swatches
        self.proxy = self.table.proxy
        self._build_actions()
        buttons = QHBoxLayout()
        for action in self.actions_in_bar:
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            buttons.addWidget(button)
        buttons.addStretch(1)
        upper = QWidget()
        upper_layout = QVBoxLayout(upper)
        upper_layout.setContentsMargins(0, 0, 0, 0)
        upper_layout.addLayout(top)
        upper_layout.addWidget(self.table, 1)
        upper_layout.addLayout(buttons)
        self.overlay, self.differences = RunOverlay(), RunDifferences()
        self.views = QTabWidget()
        self.views.addTab(self.overlay, "Curves")
        self.views.addTab(self.differences, "What differs")
        self.sweeps = SweepGroup()  # gui.sweep_group: a sweep's trials, scatter, best settings
        self.views.addTab(self.sweeps, "Sweeps")
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(upper)
        self.splitter.addWidget(self.views)
        self.splitter.setSizes([420, 380])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.splitter)

    def _build_actions(self) -> None:
        self.open_in_train_action = QAction("Open in Train", self)
        self.train_like_action = QAction("Train again like it", self)
        self.evaluate_action = QAction("Evaluate", self)
        self.export_action = QAction("Export", self)
        self.open_folder_action = QAction("Open folder", self)
        self.trash_action = QAction("Move to trash", self)
        self.trash_action.setShortcut(QKeySequence.StandardKey.Delete)
        self.undo_action = QAction("Undo", self)
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        for action in (self.trash_action, self.undo_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(action)
        self.actions_in_bar = (self.open_in_train_action, self.train_like_action, self.evaluate_action,
                               self.export_action, self.open_folder_action, self.trash_action,
                               self.undo_action)

    def _connect(self) -> None:
        self.filter_edit.textChanged.connect(self._filter)
        self.refresh_button.clicked.connect(self.refresh)
        self.folders_button.menu().aboutToShow.connect(self._fill_folders_menu)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._selection_changed())
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.doubleClicked.connect(lambda _index: self.open_in_train_action.trigger())
        for action, signal in ((self.open_in_train_action, self.open_in_train_requested),
                               (self.train_like_action, self.train_like_requested),
                               (self.evaluate_action, self.evaluate_requested),
                               (self.export_action, self.export_requested)):
            action.triggered.connect(lambda _checked=False, signal=signal: self._emit_for_current(signal))
        self.open_folder_action.triggered.connect(self._open_current_folder)
        self.sweeps.train_like_requested.connect(self.train_like_requested)
        self.trash_action.triggered.connect(self.trash_selected)
        self.undo_action.triggered.connect(self.undo_trash)
        self._update_actions()

    # --- folders ----------------------------------------------------------------------------------

    def folders(self) -> list[str]:
        """The default output folder, then the folders the user added."""
        return [self.default_folder(), *self.added_folders()]

    def added_folders(self) -> list[str]:
        if self.settings is None:
            return []
        value = self.settings.value(FOLDERS_KEY, [])
        if isinstance(value, str):  # QSettings returns a lone string for a one-item list
            value = [value] if value else []
        return [str(folder) for folder in value or []]

    def add_folder(self, folder: str) -> None:
        if folder and folder not in self.folders() and self.settings is not None:
            self.settings.setValue(FOLDERS_KEY, [*self.added_folders(), folder])
            self.refresh()

    def remove_folder(self, folder: str) -> None:
        if self.settings is not None:
            self.settings.setValue(FOLDERS_KEY, [f for f in self.added_folders() if f != folder])
            self.refresh()

    def _fill_folders_menu(self) -> None:
        menu = self.folders_button.menu()
        menu.clear()
        menu.addAction(f"Output folder: {self.default_folder()}").setEnabled(False)
        for folder in self.added_folders():
            menu.addAction(f"Stop listing {folder}", lambda f=folder: self.remove_folder(f))
        menu.addSeparator()
        menu.addAction("Add a folder of runs…", lambda: self.add_folder(self.choose_folder()))

    # --- listing ----------------------------------------------------------------------------------

    def watch_training(self, running: bool) -> None:
        """The Train tab started or stopped a run: list again now and, while it trains, every few
        seconds (its folder appears once the images are read, its curves grow each epoch)."""
        self._watching = running
        self.refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        self.poll.stop()  # no one sees the curves grow: list again when shown

    def refresh(self) -> None:
        """Reads the runs again on a worker thread (once more afterwards if asked meanwhile)."""
        if self._listing:
            self._list_again = True
            return
        self._listing = True
        run_in_thread(self.index.list, self.folders(), on_result=self.show_runs, on_error=self._not_listed,
                      on_done=self._listed, name="FitStudio runs index")

    def _not_listed(self, message: str, _details: str) -> None:
        self.status_message.emit(f"The runs could not be listed: {message}")

    def _listed(self) -> None:
        self._listing = False
        if self._list_again:
            self._list_again = False
            self.refresh()

    def show_sweep(self, sweep_dir: str) -> None:
        """A sweep just started from the window: its group, live."""
        self.views.setCurrentWidget(self.sweeps)
        self.sweeps.show_sweep(sweep_dir)
        self.refresh()

    def show_runs(self, infos: list[RunInfo]) -> None:
        self.sweeps.list_sweeps(self.folders())
        previous, self.runs = self.runs, {info.run_dir: info for info in infos}
        differing = [name for name in differing_settings(infos) if name not in NOT_SETTING_COLUMNS]
        if self.table.shows(self.runs.keys(), differing):
            # The same rows (a poll while a run trains): only the runs that changed are redrawn.
            for info in infos:
                if previous.get(info.run_dir) != info:
                    self.table.update_row(info)
        else:
            self.table.fill(infos, differing)
            self._count()
        running = any(info.status == "running" for info in infos)
        if (running or self._watching) and self.isVisible():
            self.poll.start()
        else:
            self.poll.stop()
        self._selection_changed()
        self.runs_listed.emit(len(infos))

    def _filter(self, text: str) -> None:
        self.table.filter(text)
        self._count()

    def _count(self) -> None:
        self.count_label.setText(self.table.count_text())

    # --- selection ----------------------------------------------------------------------------------

    def selected_run_dirs(self) -> list[str]:
        """The selected runs, in table order."""
        return self.table.selected_run_dirs()

    def select_runs(self, run_dirs: list[str]) -> None:
        """Selects exactly these runs (those listed)."""
        self.table.select(run_dirs)
        self._selection_changed()

    def _selection_changed(self) -> None:
        selected = self.selected_run_dirs()
        self.colours = {run_dir: self.colours[run_dir] for run_dir in selected if run_dir in self.colours}
        for run_dir in selected:
            if run_dir not in self.colours:
                free = [colour for colour in PALETTE if colour not in self.colours.values()]
                self.colours[run_dir] = free[0] if free else PALETTE[len(self.colours) % len(PALETTE)]
        self.table.paint_swatches(self.colours)
        self._update_actions()
        self.differences.show_runs([(self.runs[run_dir], self.colours[run_dir]) for run_dir in selected])
        self._read_curves()

    def colour_in_table(self, run_dir: str) -> str | None:
        """The swatch colour the table shows beside a run (for tests)."""
        return self.table.swatch_colour(run_dir)

    # --- curves ---------------------------------------------------------------------------------------

    def _read_curves(self) -> None:
        """Reads the histories the overlay lacks, and those of runs that train (or did at the last
        read), on a worker thread; then draws."""
        if self._reading_curves:
            self._curves_again = True
            return
        selected = self.selected_run_dirs()
        live = {run_dir for run_dir in selected if self.runs[run_dir].status == "running"}
        wanted = [run_dir for run_dir in selected
                  if run_dir not in self.histories or run_dir in live or run_dir in self._live]
        self._live = live
        if not wanted:
            self._draw_curves()
            return
        self._reading_curves = True
        run_in_thread(read_histories, wanted, on_result=self._got_histories, on_done=self._curves_read,
                      name="FitStudio run curves")

    def _got_histories(self, histories: dict[str, list[dict[str, float]]]) -> None:
        self.histories.update(histories)
        self._draw_curves()

    def _curves_read(self) -> None:
        self._reading_curves = False
        if self._curves_again:
            self._curves_again = False
            self._read_curves()

    def _draw_curves(self) -> None:
        selected = [run_dir for run_dir in self.selected_run_dirs() if run_dir in self.histories]
        self.overlay.show_runs([
            RunCurves(run_dir, self.runs[run_dir].name, self.colours[run_dir], self.histories[run_dir])
            for run_dir in selected
        ])
        self.curves_drawn.emit()

    # --- actions ----------------------------------------------------------------------------------

    def current_run(self) -> RunInfo | None:
        """The one selected run; None when none or several are selected."""
        selected = self.selected_run_dirs()
        return self.runs.get(selected[0]) if len(selected) == 1 else None

    def _update_actions(self) -> None:
        info = self.current_run()
        model_file = os.path.join(info.run_dir, run_folder.BEST_MODEL_FILE) if info is not None else ""
        has_model = bool(model_file) and os.path.exists(model_file)
        usable = info is not None and info.status != "unreadable"
        self._enable(self.open_in_train_action, info is not None and info.can_resume,
                     "Resume this run, or train it for more epochs, on the Train tab",
                     info.resume_problem if info is not None else "Select one run")
        self._enable(self.train_like_action, usable, "Load this run's settings into the Train tab",
                     "Select one readable run")
        for action, tip in ((self.evaluate_action, "Evaluate this run's model on the Evaluate tab"),
                            (self.export_action, "Export this run's model on the Export tab")):
            self._enable(action, has_model, tip, "Select one run that has a model (model.keras)")
        self._enable(self.open_folder_action, info is not None, "Open the run folder", "Select one run")
        selected = [self.runs[run_dir] for run_dir in self.selected_run_dirs()]
        training = [info.name for info in selected if info.status == "running"]
        self._enable(self.trash_action, bool(selected) and not training,
                     "Move the selected runs to the system trash (Undo brings them back)",
                     f"{training[0]} is training now" if training else "Select runs")
        last = self.trashed[-1] if self.trashed else []
        self.undo_action.setEnabled(bool(last))
        self.undo_action.setText(f"Undo: restore {_names(last)}" if last else "Undo")

    @staticmethod
    def _enable(action: QAction, enabled: bool, tip: str, why_not: str) -> None:
        action.setEnabled(enabled)
        action.setToolTip(tip if enabled else why_not)

    def _emit_for_current(self, signal) -> None:
        info = self.current_run()
        if info is not None:
            signal.emit(info.run_dir)

    def _open_current_folder(self) -> None:
        info = self.current_run()
        if info is not None:
            self.open_folder(info.run_dir)

    def _context_menu(self, position) -> None:
        menu = QMenu(self)
        for action in self.actions_in_bar:
            menu.addAction(action)
        menu.popup(self.table.viewport().mapToGlobal(position))

    def trash_selected(self) -> bool:
        """Moves the selected runs to the system trash; Undo restores them until the window closes."""
        chosen = [self.runs[run_dir] for run_dir in self.selected_run_dirs()]
        if not chosen or any(info.status == "running" for info in chosen):
            return False
        batch = []
        for info in chosen:
            try:
                batch.append((info.run_dir, move_to_trash(info.run_dir)))
            except TrashError as exc:
                self.show_error("Not moved to the trash", str(exc))
                break
        if batch:
            self.trashed.append(batch)
            self.status_message.emit(f"Moved {_names(batch)} to the trash. Undo brings it back.")
        self._forget([run_dir for run_dir, _ in batch])
        self.refresh()
        return bool(batch)

    def undo_trash(self) -> bool:
        """Restores the runs of the last move to the trash."""
        if not self.trashed:
            return False
        batch = self.trashed.pop()
        restored, remaining, failures = restore_batch(batch)
        if remaining:  # still in the trash: the next Undo tries them again
            self.trashed.append(remaining)
        if failures:
            still = f"Undo will try {_names(remaining)} again." if remaining else ""
            self.show_error("Not restored", "\n".join([*failures, still]).strip())
        if restored:
            self.status_message.emit(f"Restored {_names([(run_dir, '') for run_dir in restored])}.")
        self._update_actions()
        self.refresh()
        return len(restored) == len(batch)

    def _forget(self, run_dirs: list[str]) -> None:
        for run_dir in run_dirs:
            self.histories.pop(run_dir, None)
            self.runs.pop(run_dir, None)
        self.table.select([run_dir for run_dir in self.selected_run_dirs() if run_dir not in run_dirs])
        self._selection_changed()

    # --- things a test replaces ---------------------------------------------------------------------

    def show_error(self, title: str, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        self._error_box = box
        box.open()

    def choose_folder(self) -> str:
        return QFileDialog.getExistingDirectory(self, "Add a folder of runs", self.default_folder())

    def open_folder(self, path: str) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.abspath(path)))


def _names(batch: list[tuple[str, str]]) -> str:
    names = [os.path.basename(os.path.normpath(run_dir)) for run_dir, _ in batch]
    return names[0] if len(names) == 1 else f"{len(names)} runs"
