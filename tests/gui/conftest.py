"""GUI fixtures: isolated QSettings, a fast fake engine, a window factory, and a leaked-thread check."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import shutil
import threading

import pytest
from PySide6.QtCore import QSettings

from core import files
from core.config import TrainingConfig
from core.errors import ConfigError, DatasetError
from core.events import (
    BatchEnd,
    EpochEnd,
    Message,
    RunFailed,
    RunFinished,
    RunResult,
    RunStarted,
    WorkerProgress,
)
from core.runs import checkpoints, run_folder
from gui.collector import GuiThreadCollector
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
age_files = _shared.age_files


@pytest.fixture(autouse=True)
def isolated_qsettings(tmp_path):
    """Any QSettings a test creates without a file name lands in tmp_path, never in the user's settings."""
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
            QSettings.setPath(fmt, scope, str(tmp_path / "qsettings"))
    yield


@pytest.fixture(autouse=True)
def no_warm_up_unless_asked(request, monkeypatch):
    """The window's warm-up would decode the demo dataset on a background thread in every test; only
    tests that ask for `real_warm_up` get it."""
    if "real_warm_up" not in request.fixturenames:
        from gui.warmup import WarmUpTarget

        monkeypatch.setattr(WarmUpTarget, "of", classmethod(lambda cls, config: None))


@pytest.fixture
def real_warm_up():
    """Marks a test that lets the window prepare images in the background, as it does for users."""


@pytest.fixture(autouse=True)
def collect_on_the_gui_thread(qapp):
    """As in the app (gui.collector): no garbage collection on a worker thread, where destroying a
    Qt wrapper deadlocks PySide6 6.12; automatic collection is back for the tests without a window."""
    collector = GuiThreadCollector()
    collector.start()
    yield
    collector.stop()


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
    """Emits the events core.training.driver.train emits, fast, honouring the cancel flag per batch.

    fail: "start" raises DatasetError before the run (like a bad folder); "run" ends with RunFailed
    after the first epoch with the engine's out-of-memory message.
    lr_drop_after: 0-based epochs whose end reduces the learning rate by half (logs then carry
    `learning_rate`, and a Message announces it, as the engine does with reduce_lr_patience).
    early_stop_after: the 0-based epoch after which the run stops early.
    Like the engine, it writes checkpoint.json (the real format, with a stand-in model file) and
    report.json after every epoch, and `resume` continues a run folder from its checkpoint.
    """

    def __init__(self, steps: int = 5, batch_delay: float = 0.0, fail: str | None = None,
                 batch_size: int = 4, lr_drop_after: tuple[int, ...] = (),
                 early_stop_after: int | None = None, data_wait: float = 0.05, learning_rate: float = 1e-3):
        self.steps, self.batch_delay, self.fail, self.batch_size = steps, batch_delay, fail, batch_size
        self.lr_drop_after, self.early_stop_after = tuple(lr_drop_after), early_stop_after
        self.data_wait, self.learning_rate = data_wait, learning_rate
        self.batches_run = 0
        self.started = threading.Event()
        self.configs: list[TrainingConfig] = []
        self.threads: list[str] = []
        self.resumed: list[tuple[str, int | None]] = []  # (run_dir, epochs) of each resume call
        self.likes: list[str | None] = []  # the `like` run folder of each training (train --like)

    def __call__(self, config: TrainingConfig, on_event, cancel: threading.Event,
                 like: str | None = None) -> RunResult:
        self.configs.append(config)
        self.likes.append(like)
        self.threads.append(threading.current_thread().name)
        if self.fail == "start":
            raise DatasetError(f"The folder {config.train_dir} has no class subfolders.")
        run_dir = os.path.join(config.out_dir, "fake-run")
        shutil.rmtree(run_dir, ignore_errors=True)
        os.makedirs(run_dir, exist_ok=True)
        return self._run(config, run_dir, [], on_event, cancel)

    def resume(self, run_dir: str, on_event, cancel: threading.Event, epochs: int | None = None,
               batch_size: int | None = None) -> RunResult:
        """core.training.driver.resume: continues from checkpoint.json, raising as the engine does."""
        self.resumed.append((run_dir, epochs) if batch_size is None else (run_dir, epochs, batch_size))
        self.threads.append(threading.current_thread().name)
        checkpoint = checkpoints.read(run_dir)
        config = TrainingConfig.from_dict(checkpoint.config)
        config = config.replace(epochs=epochs) if epochs is not None else config
        config = config.replace(batch_size=batch_size) if batch_size is not None else config
        done = checkpoint.epoch + 1
        if config.epochs <= done:
            raise ConfigError(f"This run has already trained {done} epochs of {config.epochs}. "
                              f"Ask for more epochs to continue it (for example {done + 5}).")
        self.configs.append(config)
        on_event(Message(f"Resuming after epoch {done} of {config.epochs}"))
        return self._run(config, run_dir, list(checkpoint.history), on_event, cancel)

    def _run(self, config, run_dir, history, on_event, cancel) -> RunResult:
        on_event(Message(f"Run folder: {os.path.abspath(run_dir)}"))
        on_event(Message("Skipped broken.jpg: not an image", "warning"))
        initial = len(history)
        workers = config.workers
        spread = {"strategy": "MultiWorkerMirroredStrategy", "workers": workers, "replicas": workers,
                  "global_batch": self.batch_size, "per_replica_batch": str(self.batch_size // workers)}
        on_event(RunStarted(run_dir, ["a", "b", "c"], {"a": 8, "b": 8, "c": 8}, {"a": 4, "b": 4, "c": 4},
                            self.steps, 3, config.epochs, initial, self.batch_size, "CPU only", None,
                            history=[dict(row) for row in history],
                            distribution=spread if workers > 1 else {}))
        self.started.set()
        best: dict | None = None
        for row in history:
            if best is None or row["val_loss"] < best["val_loss"]:
                best = row
        rate = history[-1].get("learning_rate", self.learning_rate) if history else self.learning_rate
        if history and history[-1]["epoch"] in self.lr_drop_after:
            rate /= 2
        for epoch in range(initial, config.epochs):
            for step in range(self.steps):
                if cancel.is_set():
                    return self._end(on_event, run_dir, config, "cancelled", history, best,
                                     "Stopped by the user.")
                if self.batch_delay:
                    cancel.wait(self.batch_delay)
                self.batches_run += 1
                progress = epoch + (step + 1) / self.steps
                loss = 1.2 * math.exp(-progress / 2) + 0.05 * math.sin(step)
                on_event(BatchEnd(epoch, step, self.steps, loss, min(1.0, 0.3 + 0.15 * progress), 500.0))
                for rank in range(workers if workers > 1 else 0):  # like Ray workers, the last one behind
                    behind = int(rank == workers - 1 and step > 0)
                    host = f"node-{rank}"
                    on_event(WorkerProgress(rank, workers, host, epoch, step - behind, self.steps, 250.0))
            logs = {"loss": 1.0 / (epoch + 1), "accuracy": min(1.0, 0.4 + 0.1 * epoch),
                    "val_loss": 1.1 / (epoch + 1) + 0.05 * (epoch == 2),
                    "val_accuracy": min(1.0, 0.35 + 0.1 * epoch)}
            if self.lr_drop_after:
                logs["learning_rate"] = rate
            history.append({"epoch": epoch, **logs})
            if best is None or logs["val_loss"] < best["val_loss"]:
                best = {"epoch": epoch, **logs}
            change = None
            if epoch in self.lr_drop_after:
                on_event(Message(f"val_loss has not improved for 2 epochs: learning rate {rate:.3g} -> "
                                 f"{rate / 2:.3g}"))
                change, rate = (rate, rate / 2), rate / 2
            stopped_early = ""
            if epoch == self.early_stop_after:
                stopped_early = (f"Stopped early after epoch {epoch + 1}: val_loss has not improved for 2 "
                                 f"epochs (best: epoch {best['epoch'] + 1}).")
                on_event(Message(stopped_early))
            self._write_checkpoint(run_dir, config, history, best)
            on_event(EpochEnd(epoch, config.epochs, logs, 0.1, 500.0, self.data_wait, best["epoch"],
                              learning_rate_change=change, stopped_early=bool(stopped_early)))
            if self.fail == "run":
                return self._end(on_event, run_dir, config, "failed", history, best,
                                 "Out of memory: reduce batch size or image size, then train again.")
            if stopped_early:
                return self._end(on_event, run_dir, config, "completed", history, best, stopped_early)
        return self._end(on_event, run_dir, config, "completed", history, best, "")

    @staticmethod
    def _write_checkpoint(run_dir, config, history, best) -> None:
        epoch = history[-1]["epoch"]
        model_file = checkpoints.model_path(run_dir, epoch)
        os.makedirs(os.path.dirname(model_file), exist_ok=True)
        with open(model_file, "wb") as handle:
            handle.write(b"stand-in model")
        state = checkpoints.Checkpoint(
            epoch=epoch, model_file=os.path.relpath(model_file, run_dir), config=config.to_dict(),
            history=[dict(row) for row in history], epoch_stats=[], best=dict(best), seed_states={},
            elapsed_seconds=0.1 * len(history),
        )
        files.write_json(os.path.join(run_dir, checkpoints.CHECKPOINT_FILE), dataclasses.asdict(state))
        files.write_json(os.path.join(run_dir, run_folder.REPORT_FILE), {"status": "running", "message": ""})

    @staticmethod
    def _end(on_event, run_dir, config, status, history, best, message) -> RunResult:
        best = best or {}
        result = RunResult(run_dir, status, len(history), best.get("epoch"), best.get("val_accuracy"),
                           best.get("val_loss"), {}, 1.5, message, list(history),
                           out_of_memory=message.startswith("Out of memory"))
        report_path = os.path.join(run_dir, run_folder.REPORT_FILE)
        files.write_json(report_path, {"status": status, "message": message})
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

    `config` is saved to the settings first (runs go to tmp_path unless it says otherwise);
    `inspect_fn` replaces core.data.dataset.inspect for the folder scans. At teardown a running
    training is stopped and the window closed, once the run and the model thread have stopped.
    """
    from gui.app import style_application
    from gui.main_window import MainWindow

    style_application(qapp)  # screenshots look like the real app

    def make(train_fn=None, config: TrainingConfig | None = None, device_fn=lambda: "CPU only (test)",
             inspect_fn=None):
        if config is not None:
            store.save_config(config)
        elif not store.settings.contains("training/out_dir"):
            store.save_config(TrainingConfig(out_dir=str(tmp_path / "runs")))
        kwargs = {"train_fn": train_fn} if train_fn is not None else {}
        if inspect_fn is not None:
            kwargs["inspect_fn"] = inspect_fn
        window = MainWindow(store=store, device_fn=device_fn, **kwargs)
        # pytest-qt closes and deletes its widgets before fixtures tear down: the window must have
        # finished closing (a close waits for running jobs) before it is deleted.
        qtbot.addWidget(window, before_close_func=close_and_wait)
        window.show()
        qtbot.waitExposed(window)
        qtbot.waitUntil(lambda: not window.training.data.is_scanning(), timeout=10_000)
        return window

    def close_and_wait(window) -> None:
        window.confirm_close_during_training = lambda: True
        window.close()
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=60_000)

    return make


@pytest.fixture
def screenshot():
    """screenshot(widget, name) writes tests/artifacts/<name> (git-ignored) for a person to look at."""

    def save(widget, name: str) -> str:
        os.makedirs(ARTIFACTS, exist_ok=True)
        path = os.path.join(ARTIFACTS, name)
        assert widget.grab().save(path), f"could not write {path}"
        return path

    return save
