"""GUI fixtures: isolated QSettings, a fast fake engine, a window factory, and a leaked-thread check."""

from __future__ import annotations

import importlib.util
import math
import os
import threading

import pytest
from PySide6.QtCore import QSettings

from core.config import TrainingConfig
from core.errors import DatasetError
from core.events import BatchEnd, EpochEnd, Message, RunFailed, RunFinished, RunResult, RunStarted
from gui.settings_store import SettingsStore
from gui.worker import running_threads, wait_for_threads

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTIFACTS = os.path.join(TESTS, "artifacts")


def _load_shared_helpers():
    # pytest imports each conftest.py as the module "conftest", so after this file loads,
    # `from conftest import make_class_folders` (in any test) resolves here: re-export the shared
    # helpers of tests/conftest.py so that import keeps working everywhere.
    path = os.path.join(TESTS, "conftest.py")
    spec = importlib.util.spec_from_file_location("fitstudio_shared_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_shared = _load_shared_helpers()
COLOURS = _shared.COLOURS
write_image = _shared.write_image
make_class_folders = _shared.make_class_folders


@pytest.fixture(autouse=True)
def isolated_qsettings(tmp_path):
    """Any QSettings a test creates without a file name lands in tmp_path, never in the user's settings."""
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
            QSettings.setPath(fmt, scope, str(tmp_path / "qsettings"))
    yield


@pytest.fixture(autouse=True)
def no_leaked_threads(qapp):
    """Fails the test when a thread it started (through gui.worker) is still running at the end."""
    yield
    from PySide6.QtTest import QTest

    for _ in range(100):  # up to 1 s for threads whose work just ended to return
        if not running_threads():
            break
        QTest.qWait(10)
    leaked = [thread.objectName() for thread in running_threads()]
    wait_for_threads(60_000)  # do not let a leak break the next test too
    assert not leaked, f"QThreads still running after the test: {leaked}"


@pytest.fixture
def store(tmp_path) -> SettingsStore:
    return SettingsStore(QSettings(str(tmp_path / "fitstudio.ini"), QSettings.Format.IniFormat))


class FakeEngine:
    """Emits the events core.training.train emits, fast, honouring the cancel flag per batch.

    fail: "start" raises DatasetError before the run (like a bad folder); "run" ends with RunFailed
    after the first epoch (like an out-of-memory error).
    """

    def __init__(self, steps: int = 5, batch_delay: float = 0.0, fail: str | None = None,
                 batch_size: int = 4):
        self.steps, self.batch_delay, self.fail, self.batch_size = steps, batch_delay, fail, batch_size
        self.batches_run = 0
        self.started = threading.Event()
        self.configs: list[TrainingConfig] = []
        self.threads: list[str] = []

    def __call__(self, config: TrainingConfig, on_event, cancel: threading.Event) -> RunResult:
        self.configs.append(config)
        self.threads.append(threading.current_thread().name)
        if self.fail == "start":
            raise DatasetError(f"The folder {config.train_dir} has no class subfolders.")
        run_dir = os.path.join(config.out_dir, "fake-run")
        os.makedirs(run_dir, exist_ok=True)
        on_event(Message(f"Run folder: {os.path.abspath(run_dir)}"))
        on_event(Message("Skipped broken.jpg: not an image", "warning"))
        on_event(RunStarted(run_dir, ["a", "b", "c"], {"a": 8, "b": 8, "c": 8}, {"a": 4, "b": 4, "c": 4},
                            self.steps, 3, config.epochs, 0, self.batch_size, "CPU only", None))
        self.started.set()
        history: list[dict] = []
        best: dict | None = None
        for epoch in range(config.epochs):
            for step in range(self.steps):
                if cancel.is_set():
                    return self._end(on_event, run_dir, "cancelled", history, best, "Stopped by the user.")
                if self.batch_delay:
                    cancel.wait(self.batch_delay)
                self.batches_run += 1
                progress = epoch + (step + 1) / self.steps
                loss = 1.2 * math.exp(-progress / 2) + 0.05 * math.sin(step)
                on_event(BatchEnd(epoch, step, self.steps, loss, min(1.0, 0.3 + 0.15 * progress), 500.0))
            logs = {"loss": 1.0 / (epoch + 1), "accuracy": min(1.0, 0.4 + 0.1 * epoch),
                    "val_loss": 1.1 / (epoch + 1) + 0.05 * (epoch == 2),
                    "val_accuracy": min(1.0, 0.35 + 0.1 * epoch)}
            history.append({"epoch": epoch, **logs})
            if best is None or logs["val_loss"] < best["val_loss"]:
                best = {"epoch": epoch, **logs}
            on_event(EpochEnd(epoch, config.epochs, logs, 0.1, 500.0, 0.05, best["epoch"]))
            if self.fail == "run":
                return self._end(on_event, run_dir, "failed", history, best,
                                 "Out of memory: reduce batch size or image size, then train again.")
        return self._end(on_event, run_dir, "completed", history, best, "")

    @staticmethod
    def _end(on_event, run_dir, status, history, best, message) -> RunResult:
        best = best or {}
        result = RunResult(run_dir, status, len(history), best.get("epoch"), best.get("val_accuracy"),
                           best.get("val_loss"), {}, 1.5, message, history)
        if status == "failed":
            on_event(RunFailed(message, "Traceback (most recent call last): ResourceExhaustedError", result))
        else:
            on_event(RunFinished(result))
        return result


@pytest.fixture
def fake_engine():
    return FakeEngine


@pytest.fixture
def make_window(qtbot, qapp, store, tmp_path):
    """make_window(train_fn=..., config=...) -> a shown MainWindow whose folder scans have finished.

    `config` is saved to the settings first (runs go to tmp_path unless it says otherwise). At
    teardown a running training is stopped and the window closed.
    """
    from gui.app import style_application
    from gui.main_window import MainWindow

    style_application(qapp)  # screenshots look like the real app
    windows = []

    def make(train_fn=None, config: TrainingConfig | None = None, device_fn=lambda: "CPU only (test)"):
        if config is not None:
            store.save_config(config)
        elif not store.settings.contains("training/out_dir"):
            store.save_config(TrainingConfig(out_dir=str(tmp_path / "runs")))
        kwargs = {"train_fn": train_fn} if train_fn is not None else {}
        window = MainWindow(store=store, device_fn=device_fn, **kwargs)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        qtbot.waitUntil(lambda: not window.training.data.is_scanning(), timeout=10_000)
        windows.append(window)
        return window

    yield make
    for window in windows:
        if window.training.is_running:
            window.confirm_close_during_training = lambda: True
        window.close()
        qtbot.waitUntil(lambda w=window: not w.training.is_running, timeout=60_000)
        window.close()


@pytest.fixture
def screenshot():
    """screenshot(widget, name) writes tests/artifacts/<name> (git-ignored) for a person to look at."""

    def save(widget, name: str) -> str:
        os.makedirs(ARTIFACTS, exist_ok=True)
        path = os.path.join(ARTIFACTS, name)
        assert widget.grab().save(path), f"could not write {path}"
        return path

    return save
