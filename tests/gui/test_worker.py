"""gui.worker: results reach the GUI thread, errors always arrive, running threads are tracked."""

from __future__ import annotations

import threading

from core.errors import ConfigError
from core.events import BatchEnd, Message
from gui.worker import (
    ResumeWorker,
    TrainingWorker,
    run_in_thread,
    running_threads,
    start_worker,
    wait_for_threads,
)


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
    worker.batch_end.connect(batches.append)
    with qtbot.waitSignal(worker.finished, timeout=5_000):
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
    with qtbot.waitSignal(worker.finished, timeout=5_000):
        start_worker(worker, "resume test")
    assert wait_for_threads(5_000)
    assert calls == [("runs/a", None, True)] and messages == ["Resuming after epoch 2 of 5"]

    refused = ResumeWorker("runs/a", resume, epochs=2)
    errors = []
    refused.start_failed.connect(lambda message, details: errors.append((message, details)))
    with qtbot.waitSignal(refused.finished, timeout=5_000):
        start_worker(refused, "resume test")
    assert wait_for_threads(5_000)
    assert errors == [("This run has already trained 2 epochs of 2. Ask for more epochs...", "")]
