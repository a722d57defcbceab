"""gui.worker: results reach the GUI thread, errors always arrive, running threads are tracked."""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import QObject, Signal, Slot

from core.errors import ConfigError
from core.events import BatchEnd, EpochEnd, Message, RunFinished, RunResult
from gui.worker import (
    BATCH_INTERVAL_SECONDS,
    BatchCoalescer,
    ResumeWorker,
    TrainingWorker,
    run_in_thread,
    running_threads,
    start_worker,
    wait_for_threads,
)


class OnGuiThread(QObject):
    """Re-emits a worker's signal on the GUI thread, for qtbot.waitSignal.

    PySide6 calls a plain Python callable, such as the one waitSignal connects, on the thread that
    emits: a worker that finishes between waitSignal's check and its event loop would leave that
    loop running with its timeout timer stopped, and the test hanging.
    """

    arrived = Signal()

    def __init__(self, signal):
        super().__init__()
        signal.connect(self._relay)

    @Slot()
    def _relay(self) -> None:
        self.arrived.emit()


def test_run_in_thread_calls_back_on_the_gui_thread(qtbot):
    seen = []
    main = threading.current_thread()
    run_in_thread(threading.current_thread, on_result=lambda t: seen.append((t, threading.current_thread())))
    qtbot.waitUntil(lambda: bool(seen), timeout=5_000)
    worker_thread, callback_thread = seen[0]
    assert worker_thread is not main and callback_thread is main


def test_errors_arrive_with_a_traceback(qtbot):
    errors = []

    def boom():
        raise ValueError("bad folder")

    run_in_thread(boom, on_error=lambda message, details: errors.append((message, details)))
    qtbot.waitUntil(lambda: bool(errors), timeout=5_000)
    assert errors[0][0] == "bad folder" and "ValueError" in errors[0][1]


def test_a_result_for_a_deleted_widget_is_dropped_and_a_living_one_still_gets_its_own(qtbot):
    import shiboken6
    from PySide6.QtWidgets import QLabel

    release, done = threading.Event(), []
    closed, open_ = QLabel(), QLabel()
    run_in_thread(lambda: release.wait(5) and "late", on_result=closed.setText, on_done=closed.clear)
    run_in_thread(lambda: release.wait(5) and "on time", on_result=open_.setText,
                  on_done=lambda: done.append(True))
    shiboken6.delete(closed)  # the page closed while its work ran
    release.set()
    qtbot.waitUntil(lambda: bool(done), timeout=5_000)  # no "Signal source has been deleted"
    assert open_.text() == "on time"


def test_running_threads_lists_a_thread_until_it_ends(qtbot):
    release = threading.Event()
    run_in_thread(release.wait, name="blocked")
    qtbot.waitUntil(lambda: [t.objectName() for t in running_threads()] == ["blocked"], timeout=5_000)
    release.set()
    assert wait_for_threads(5_000)
    assert not running_threads()


def test_training_worker_reemits_engine_events_and_cancels(qtbot):
    def engine(config, on_event, cancel):
        on_event(Message("hello", "warning"))
        on_event(BatchEnd(0, 0, 10, 0.5, 0.5, 100.0))
        cancel.wait(5)
        on_event(Message("stopped" if cancel.is_set() else "timeout"))

    worker = TrainingWorker(config=None, train_fn=engine)
    messages, batches = [], []
    worker.message.connect(lambda text, level: messages.append((text, level)))
    worker.batches_end.connect(lambda group: batches.extend(group))
    done = OnGuiThread(worker.finished)
    with qtbot.waitSignal(done.arrived, timeout=5_000):
        start_worker(worker, "training test")
        qtbot.waitUntil(lambda: bool(batches), timeout=5_000)
        worker.cancel()
    qtbot.waitUntil(lambda: len(messages) == 2, timeout=5_000)
    assert messages == [("hello", "warning"), ("stopped", "info")]
    assert batches[0].loss == 0.5
    assert wait_for_threads(5_000)


def test_resume_worker_calls_resume_with_the_run_folder_and_reports_refusals(qtbot):
    calls = []

    def resume(run_dir, on_event, cancel, epochs):
        calls.append((run_dir, epochs, threading.current_thread() is not threading.main_thread()))
        on_event(Message("Resuming after epoch 2 of 5"))
        if epochs == 2:
            raise ConfigError("This run has already trained 2 epochs of 2. Ask for more epochs...")

    worker = ResumeWorker("runs/a", resume, epochs=None)
    messages = []
    worker.message.connect(lambda text, level: messages.append(text))
    done = OnGuiThread(worker.finished)
    with qtbot.waitSignal(done.arrived, timeout=5_000):
        start_worker(worker, "resume test")
    assert wait_for_threads(5_000)
    assert calls == [("runs/a", None, True)] and messages == ["Resuming after epoch 2 of 5"]

    refused = ResumeWorker("runs/a", resume, epochs=2)
    errors = []
    refused.start_failed.connect(lambda message, details: errors.append((message, details)))
    done = OnGuiThread(refused.finished)
    with qtbot.waitSignal(done.arrived, timeout=5_000):
        start_worker(refused, "resume test")
    assert wait_for_threads(5_000)
    assert errors == [("This run has already trained 2 epochs of 2. Ask for more epochs...", "")]


def batch(epoch: int, step: int, steps: int = 1000) -> BatchEnd:
    return BatchEnd(epoch, step, steps, 1.0 / (step + 1), 0.5, 100.0)


def test_coalescer_sends_a_burst_in_few_groups_with_every_batch_in_order():
    groups = []
    coalescer = BatchCoalescer(groups.append)
    started = time.monotonic()
    for step in range(5000):
        coalescer.add(batch(0, step, 5000))
    elapsed = time.monotonic() - started
    coalescer.close()
    assert [b.step for group in groups for b in group] == list(range(5000))
    # The first batch goes at once, then one group per interval, and the rest at close().
    assert len(groups) <= elapsed / BATCH_INTERVAL_SECONDS + 3, (len(groups), elapsed)
    assert groups[0] == (batch(0, 0, 5000),)


def test_coalescer_timer_delivers_a_waiting_batch_without_a_further_event():
    delivered = threading.Event()
    groups = []

    def deliver(group):
        groups.append(group)
        if len(groups) == 2:
            delivered.set()

    coalescer = BatchCoalescer(deliver)
    coalescer.add(batch(0, 0))  # goes at once
    coalescer.add(batch(0, 1))  # within the interval: waits for the timer
    try:
        assert delivered.wait(5), "the waiting batch was never delivered"
        assert groups == [(batch(0, 0),), (batch(0, 1),)]
    finally:
        coalescer.close()


def test_coalescer_flush_sends_pending_batches_at_once():
    groups = []
    coalescer = BatchCoalescer(groups.append, interval=60.0)
    for step in range(3):
        coalescer.add(batch(0, step))
    assert groups == [(batch(0, 0),)]
    coalescer.flush()
    assert groups == [(batch(0, 0),), (batch(0, 1), batch(0, 2))]
    coalescer.close()
    assert len(groups) == 2  # nothing left to send


class Recorder(QObject):
    """Lives on the GUI thread: records what the worker's signals deliver there, in arrival order."""

    def __init__(self):
        super().__init__()
        self.log: list[tuple] = []
        self.groups = 0

    @Slot(object)
    def batches(self, group):
        self.groups += 1
        self.log.extend(("batch", b.epoch, b.step) for b in group)

    @Slot(object)
    def epoch(self, event):
        self.log.append(("epoch", event.epoch))

    @Slot(str, str)
    def message(self, text, level):
        self.log.append(("message", text))

    @Slot(object)
    def finished(self, result):
        self.log.append(("finished", result.status))


def test_worker_coalesces_thousands_of_batches_and_flushes_before_other_events(qtbot):
    steps, epochs = 2000, 2

    def engine(config, on_event, cancel):
        for epoch in range(epochs):
            for step in range(steps):
                on_event(batch(epoch, step, steps))
            on_event(EpochEnd(epoch, epochs, {"loss": 0.5}, 1.0, 100.0, 0.0))
            on_event(Message(f"saved epoch {epoch + 1}"))
        on_event(RunFinished(RunResult("run", "completed", epochs, 1, 0.5, 0.5, {}, 1.0)))

    worker = TrainingWorker(config=None, train_fn=engine)
    recorder = Recorder()
    worker.batches_end.connect(recorder.batches)
    worker.epoch_end.connect(recorder.epoch)
    worker.message.connect(recorder.message)
    worker.run_finished.connect(recorder.finished)
    started = time.monotonic()
    done = OnGuiThread(worker.finished)
    with qtbot.waitSignal(done.arrived, timeout=30_000):
        start_worker(worker, "coalescing test")
    elapsed = time.monotonic() - started
    assert wait_for_threads(5_000)
    qtbot.waitUntil(lambda: recorder.log and recorder.log[-1][0] == "finished", timeout=5_000)
    expected = []
    for epoch in range(epochs):
        expected += [("batch", epoch, step) for step in range(steps)]
        expected += [("epoch", epoch), ("message", f"saved epoch {epoch + 1}")]
    assert recorder.log == [*expected, ("finished", "completed")]
    # At most one group per interval, plus the flushes before the epoch ends.
    assert recorder.groups <= elapsed / BATCH_INTERVAL_SECONDS + 2 * epochs + 2, (recorder.groups, elapsed)
    assert recorder.groups < steps * epochs / 20


def test_the_run_is_out_of_the_collectors_sight_while_it_trains(qtbot, fake_engine, tmp_path, tiny_dataset):
    import gc

    from core.config import TrainingConfig

    train, val = tiny_dataset
    config = TrainingConfig(train_dir=train, val_dir=val, epochs=1, out_dir=str(tmp_path / "runs"))
    engine, frozen = fake_engine(steps=3), []

    def train_and_watch(config, on_event, cancel):
        def watch(event):
            on_event(event)
            if isinstance(event, BatchEnd):
                frozen.append(gc.get_freeze_count())
        return engine(config, watch, cancel)

    gc.unfreeze()
    worker = TrainingWorker(config, train_and_watch)
    done = OnGuiThread(worker.finished)
    with qtbot.waitSignal(done.arrived, timeout=30_000):
        start_worker(worker, "training test")
    assert wait_for_threads(30_000)
    assert len(frozen) == 3 and min(frozen) > 0  # frozen from RunStarted on
    assert gc.get_freeze_count() == 0  # and collectable again once the run is over
