"""The Train tab's controller without a window: the run's lifecycle, the resume policy and the times.

No widget is created here; the controller runs the fake engine on its worker thread and the tests
listen to its signals, as the page does."""

from __future__ import annotations

import os

import pytest

from core.config import TrainingConfig
from core.events import BatchEnd
from gui.training_controller import (
    ResumeRefused,
    TrainingController,
    failure_note,
    remaining_seconds,
)


@pytest.fixture
def config(tmp_path, tiny_dataset):
    train, val = tiny_dataset
    return TrainingConfig(train_dir=train, val_dir=val, epochs=3, batch_size=4, image_size=16,
                          out_dir=str(tmp_path / "runs"))


def run_to_the_end(qtbot, controller, start) -> None:
    with qtbot.waitSignal(controller.idle, timeout=30_000):
        assert start()


def test_a_run_from_start_to_idle(qtbot, config, fake_engine):
    engine = fake_engine(steps=4)
    controller = TrainingController(engine)
    running, groups, finished = [], [], []
    controller.running_changed.connect(running.append)
    controller.batches_end.connect(groups.append)
    controller.run_finished.connect(finished.append)
    assert controller.times() is None  # nothing ran yet
    run_to_the_end(qtbot, controller, lambda: controller.start(config))
    assert running == [True, False] and not controller.is_running and controller.worker is None
    assert sum(len(group) for group in groups) == 3 * 4  # every batch, in groups
    newest = controller.last_batch
    assert newest is groups[-1][-1] and (newest.epoch, newest.step) == (2, 3)
    assert finished and controller.last_result is finished[0] and finished[0].status == "completed"
    elapsed, remaining = controller.times()
    assert elapsed > 0 and remaining is None  # no estimate once the run is over
    offer = controller.resume_offer()
    assert offer.resumable and not offer.unfinished  # a completed run can only train for more epochs


def test_a_second_start_while_running_is_refused_and_stop_is_asked_once(qtbot, config, fake_engine):
    engine = fake_engine(steps=5, batch_delay=0.02)
    controller = TrainingController(engine)
    with qtbot.waitSignal(controller.run_started, timeout=30_000):
        assert controller.start(config.replace(epochs=50))
    assert not controller.start(config) and controller.is_running
    assert not controller.resume_offer().resumable  # nothing to resume while a run goes on
    assert controller.stop() and controller.stopping
    assert not controller.stop()  # asked already
    with qtbot.waitSignal(controller.idle, timeout=30_000):
        pass
    assert controller.last_result.status == "cancelled" and len(engine.configs) == 1
    assert not controller.stop()  # nothing runs


def test_out_of_memory_halves_the_batch_for_the_resume_it_offers(qtbot, config, fake_engine):
    controller = TrainingController(fake_engine(steps=3, fail="run"))
    failures = []
    controller.run_failed.connect(lambda message, details, result: failures.append((message, result)))
    run_to_the_end(qtbot, controller, lambda: controller.start(config))
    (message, result), = failures
    assert "reduce batch size" in message and controller.last_result is result
    assert controller.resume_batch_size == 2  # half of 4
    note, offered = failure_note(result, controller.resume_batch_size)
    assert offered and "Epochs 1 to 1 are saved" in note and "batches of 2 images" in note
    offer = controller.resume_offer()
    assert offer.resumable and offer.unfinished and offer.epochs_completed == 1
    assert offer.run_name == os.path.basename(result.run_dir)

    healthy = fake_engine(steps=3)
    controller.resume_fn = healthy.resume
    info, total = controller.plan_resume(result.run_dir)
    assert (info.done, total) == (1, 3)
    run_to_the_end(qtbot, controller, lambda: controller.start_resume(
        result.run_dir, None, total, info.done, controller.resume_batch_size))
    assert healthy.resumed == [(result.run_dir, None, 2)]
    assert controller.last_result.status == "completed" and controller.resume_batch_size is None


def test_resume_policy_refuses_what_it_cannot_continue(qtbot, config, fake_engine, tmp_path):
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    controller = TrainingController(fake_engine(steps=2))
    with pytest.raises(ResumeRefused) as refused:
        controller.plan_resume(str(empty))
    assert refused.value.title == "This run cannot be resumed"
    run_to_the_end(qtbot, controller, lambda: controller.start(config))
    run_dir = controller.last_result.run_dir
    info, suggested = controller.resumable_folder(run_dir)
    assert info.done == 3 and suggested == 8  # a completed run: five more epochs are suggested
    with pytest.raises(ResumeRefused, match="already trained 3 epochs of 3"):
        controller.plan_resume(run_dir)
    assert controller.plan_resume(run_dir, 5)[1] == 5
    note, offered = failure_note(None, None)
    assert not offered and "nothing to resume" in note


def test_train_like_passes_the_run_once(qtbot, config, fake_engine):
    engine = fake_engine(steps=2)
    controller = TrainingController(engine)
    controller.like_run = "/runs/earlier"
    run_to_the_end(qtbot, controller, lambda: controller.start(config))
    run_to_the_end(qtbot, controller, lambda: controller.start(config))
    assert engine.likes == ["/runs/earlier", None]


def test_remaining_time_counts_only_the_epochs_this_session_trains():
    def batch(epoch, step, steps=10):
        return BatchEnd(epoch, step, steps, 0.5, 0.5, 100.0)

    assert remaining_seconds(None, 4, 0, 10.0) is None  # no batch yet
    assert remaining_seconds(batch(1, 4), 4, 0, 30.0) == pytest.approx(50.0)  # 1.5 of 4 epochs in 30 s
    assert remaining_seconds(batch(2, 9), 4, 2, 20.0) == pytest.approx(20.0)  # resumed: 1 of 2 in 20 s
    assert remaining_seconds(batch(3, 9), 4, 0, 40.0) == 0.0  # done
    assert remaining_seconds(batch(0, 0), 2, 2, 1.0) is None  # nothing to train in this session
