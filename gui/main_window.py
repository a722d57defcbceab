"""The main window: tabs (Train, Runs, Evaluate, Predict, Export, Camera), menus, status bar, drops.

It composes panels and owns no training logic: the Train tab runs the engine, this window only asks
before closing during a run. The Evaluate, Predict, Export and Camera tabs share one opened model
(gui.model_worker.ModelService, its own thread). Closing never blocks the GUI thread: the window asks
the run and the model thread to stop and closes once they have; folder scans are cancelled.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QMessageBox, QTabWidget, QWidget

from core import tf_runtime
from core.data.dataset import inspect
from core.paths import resource_path
from core.training.device import list_gpus
from gui.camera_page import CameraPage
from gui.evaluation_page import EvaluationPage
from gui.export_page import ExportPage
from gui.folder_field import local_folder_from_urls
from gui.label_page import LabelPage
from gui.model_worker import ModelService
from gui.predict_page import PredictPage, local_paths_from_urls
from gui.runs_page import RunsPage
from gui.settings_store import SettingsStore
from gui.training_page import TrainingPage, default_train_fn
from gui.worker import TensorFlowWatcher, run_in_thread

LOADING_TENSORFLOW = "Loading TensorFlow…"
PROBE_LATEST_MS = 1000  # the device probe starts at the first paint, or after this at the latest


def default_device_fn() -> str:
    from core.training.device import describe_compute_device  # imports TensorFlow: worker thread only

    return describe_compute_device()


class MainWindow(QMainWindow):
    def __init__(
        self,
        store: SettingsStore | None = None,
        train_fn: Callable = default_train_fn,
        inspect_fn=inspect,
        device_fn: Callable[[], str] | None = default_device_fn,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.store = store or SettingsStore()
        self.setWindowTitle("FitStudio")
        self.setWindowIcon(QIcon(resource_path("icons", "fitstudio.svg")))
        self.setAcceptDrops(True)
        self.training = TrainingPage(self.store, train_fn=train_fn, inspect_fn=inspect_fn)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.training, "Train")
        self.runs = RunsPage(lambda: self.training.current_config().out_dir, self.store.settings)
        self.tabs.addTab(self.runs, "Runs")
        self.models = ModelService(parent=self)
        self.evaluation = EvaluationPage(self.models, self.store.settings)
        self.predict = PredictPage(self.models, self.store.settings)
        self.export = ExportPage(self.models, self.store.settings)
        self.tabs.addTab(self.evaluation, "Evaluate")
        self.tabs.addTab(self.predict, "Predict")
        self.tabs.addTab(self.export, "Export")
        self.camera = CameraPage(self.models, self.store.settings)
        self.tabs.addTab(self.camera, "Camera")
        self._connect_camera()
        self.label = LabelPage(self.training.data.train_dir)
        self.tabs.addTab(self.label, "Label")
        self.setCentralWidget(self.tabs)
        self._close_when_idle = False
        self._status_text = ""
        self._busy_cursor = False  # shown while TensorFlow loads
        self._build_status_bar()
        self._build_menus()
        self._connect_status()
        self.training.device_seen.connect(self._show_device)
        self.training.idle.connect(self._close_if_asked)
        self.models.stopped.connect(self._close_if_asked)
        self.label.session.busy_changed.connect(lambda busy: busy or self._close_if_asked())
        self.training.summary.evaluate_requested.connect(self.evaluate_run)
        self._connect_runs()
        self._restore_geometry()
        self._device_fn = device_fn
        if device_fn is not None:
            # The probe loads TensorFlow, which holds the GIL for most of a second: it starts once the
            # window has painted (before anyone can interact with it), or after a second at the latest.
            self.installEventFilter(self)
            QTimer.singleShot(PROBE_LATEST_MS, self._start_probe)

    def _build_status_bar(self) -> None:
        self.device_label = QLabel("Compute device: detecting…")
        self.device_label.setObjectName("deviceLabel")
        self.device_label.setToolTip("Found once TensorFlow has loaded, in the background")
        bar = self.statusBar()
        bar.addPermanentWidget(self.training.run_status)
        bar.addPermanentWidget(self.device_label)
        self.show_status("Ready. The demo dataset is loaded: press Train to try it.")

    def _connect_status(self) -> None:
        for page in (self.training, self.runs, self.evaluation, self.predict, self.export, self.camera,
                     self.label):
            page.status_message.connect(self.show_status)
        self.tensorflow = TensorFlowWatcher(self)
        self.tensorflow.changed.connect(self._refresh_status)
        self.training.running_changed.connect(self._refresh_status)
        self.models.busy_changed.connect(self._refresh_status)

    def show_status(self, text: str) -> None:
        """The status line of every page; while their work waits for TensorFlow, it says so instead."""
        self._status_text = text
        self._refresh_status()

    def _refresh_status(self, *_state) -> None:
        # Loading starts once the window shows (the device probe), or with the work that needs it.
        # It holds the GIL for most of a second: the window says so and shows a busy cursor, so a
        # moment of no response never looks like a hang.
        loading = tf_runtime.is_loading()
        self.statusBar().showMessage(LOADING_TENSORFLOW if loading else self._status_text)
        if loading != self._busy_cursor:
            self._busy_cursor = loading
            if loading:
                QApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)
            else:
                QApplication.restoreOverrideCursor()

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_train = QAction("Open &training folder…", self, shortcut=QKeySequence.StandardKey.Open)
        open_train.triggered.connect(self.training.data.train_field._browse)
        open_val = QAction("Open &validation folder…", self)
        open_val.triggered.connect(self.training.data.val_field._browse)
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        for action in (open_train, open_val):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        run_menu = self.menuBar().addMenu("&Run")
        self.train_action = QAction("&Train", self, shortcut=QKeySequence("Ctrl+Return"))
        self.train_action.triggered.connect(self.training.start_training)
        self.stop_action = QAction("&Stop", self, shortcut=QKeySequence("Ctrl+."))
        self.stop_action.triggered.connect(self.training.stop_training)
        run_menu.addAction(self.train_action)
        run_menu.addAction(self.stop_action)
        run_menu.addSeparator()
        # The Train page keeps these two enabled or not, as it does its Resume buttons.
        run_menu.addAction(self.training.resume_action)
        run_menu.addAction(self.training.resume_run_action)

    def _connect_runs(self) -> None:
        """The Runs tab lists again when a run starts or ends, and hands its actions to the pages."""
        self.training.running_changed.connect(self.runs.watch_training)
        self.training.run_folder_opened.connect(lambda _run_dir: self.runs.refresh())
        self.runs.evaluate_requested.connect(self.evaluate_run)
        self.runs.export_requested.connect(self.export_run)
        self.runs.open_in_train_requested.connect(self._open_in_train)
        self.runs.train_like_requested.connect(self._train_like)
        self.training.sweep_started.connect(self._show_sweep)

    def _connect_camera(self) -> None:
        """The Camera tab collects into the Train tab's training folder, whose counts then follow."""
        data = self.training.data
        data.changed.connect(lambda: self.camera.set_training_folder(data.train_dir()))
        self.camera.images_changed.connect(data.rescan)
        self.camera.set_training_folder(data.train_dir())

    def _open_in_train(self, run_dir: str) -> None:
        self.tabs.setCurrentWidget(self.training)
        self.training.resume_run_folder(run_dir)

    def _show_sweep(self, sweep_dir: str) -> None:
        self.tabs.setCurrentWidget(self.runs)
        self.runs.show_sweep(sweep_dir)

    def _train_like(self, run_dir: str) -> None:
        if self.training.train_like(run_dir):
            self.tabs.setCurrentWidget(self.training)

    def export_run(self, run_dir: str) -> None:
        """The Runs tab's "Export": the Export tab, with the run's model opened."""
        self.tabs.setCurrentWidget(self.export)
        self.models.load(run_dir)

    def evaluate_run(self, run_dir: str) -> None:
        """The summary's "Evaluate this model": the Evaluate tab, the run's model, its validation folder."""
        if run_dir:
            self.tabs.setCurrentWidget(self.evaluation)
            self.evaluation.evaluate_run(run_dir)

    def _restore_geometry(self) -> None:
        geometry = self.store.window_state("geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1360, 860)
        for name, splitter in self._splitters():
            state = self.store.window_state(name)
            if state is not None:
                splitter.restoreState(state)

    def _splitters(self):
        return (("splitter", self.training.splitter), ("right_splitter", self.training.right_splitter))

    def _save_state(self) -> None:
        self.training.save_settings()
        self.store.set_window_state("geometry", self.saveGeometry())
        for name, splitter in self._splitters():
            self.store.set_window_state(name, splitter.saveState())
        self.store.sync()

    # --- compute device ---------------------------------------------------------------------------

    def eventFilter(self, watched, event) -> bool:
        if watched is self and event.type() == QEvent.Type.Paint and self._device_fn is not None:
            QTimer.singleShot(0, self._start_probe)
        return super().eventFilter(watched, event)

    def _start_probe(self) -> None:
        if self._device_fn is not None:
            device_fn, self._device_fn = self._device_fn, None
            self.removeEventFilter(self)
            self._probe_device(device_fn)

    def _probe_device(self, device_fn: Callable[[], str]) -> None:
        run_in_thread(
            device_fn,
            on_result=self._show_device,
            on_error=lambda message, _details: self._show_device(f"unknown ({message})"),
            name="FitStudio device probe",
        )
        # The GPUs with their memory for the settings' device picker: nvidia-smi, no TensorFlow.
        placement = self.training.settings.placement
        run_in_thread(list_gpus, on_result=placement.set_gpus, name="FitStudio GPU list")

    def _show_device(self, device: str) -> None:
        self.device_label.setText(f"Compute device: {device}")

    # --- drag and drop of folders anywhere on the window ------------------------------------------

    def dragEnterEvent(self, event) -> None:
        if self.tabs.currentWidget() is self.predict:
            self.predict.dragEnterEvent(event)
        elif not self.training.is_running and local_folder_from_urls(event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        if self.tabs.currentWidget() is self.predict:
            self.predict.add_paths(local_paths_from_urls(event.mimeData().urls()))
            event.acceptProposedAction()
            return
        folder = local_folder_from_urls(event.mimeData().urls())
        if folder and not self.training.is_running:
            self.training.data.drop_folder(folder)
            event.acceptProposedAction()

    # --- closing ------------------------------------------------------------------------------------

    def confirm_close_during_training(self) -> bool:
        """Asks whether to stop the run and close; a method so tests can answer it."""
        answer = QMessageBox.question(
            self,
            "Training is running",
            "Stop the training and close FitStudio? The run so far is saved in its run folder.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:
        # The run and the model thread are asked to stop and the window closes once they have (a
        # batch, or an export's current step); the event loop runs meanwhile, so nothing blocks.
        if self.training.is_running:
            event.ignore()
            if self._close_when_idle or self.confirm_close_during_training():
                self._close_when_idle = True
                self.training.stop_training()
                self.show_status("Stopping the run before closing…")
            return
        if self.label.busy:  # a labeling round stops within a batch; the window closes when it has
            event.ignore()
            self._close_when_idle = True
            self.label.shutdown()
            return
        if self.models.has_thread:
            event.ignore()
            self._close_when_idle = True
            self._stop_model_work()
            return
        self._save_state()
        # A scan may be stuck on an unreachable drive: it is told to stop, and the window does not
        # wait for it (gui.app ends the process whatever is still running).
        self.training.data.cancel_scans()
        self.camera.shutdown()
        self.tensorflow.detach()
        if self._busy_cursor:
            self._busy_cursor = False
            QApplication.restoreOverrideCursor()
        self.training.warm_up.stop()
        self.label.shutdown()
        event.accept()

    def _stop_model_work(self) -> None:
        if self.models.busy:
            self.show_status("Finishing the model's work before closing…")
        for page in (self.evaluation, self.predict, self.export, self.camera):
            page.shutdown()
        self.models.stop()

    def _close_if_asked(self) -> None:
        if self._close_when_idle:
            self._close_when_idle = False
            self.close()
