"""The Train tab's log lines and status words (gui.training_messages), from plain events."""

import os

from core.config import TrainingConfig
from core.events import DownloadProgress, EpochEnd, RunResult, RunStarted
from gui import training_messages


def started(**distribution) -> RunStarted:
    return RunStarted("runs/r1", ["a", "b"], {"a": 6, "b": 4}, {"a": 2, "b": 1}, 5, 1, 3, 0, 2, "CPU",
                      None, distribution=distribution)


def result(status: str, run_dir: str = "runs/r1", message: str = "") -> RunResult:
    return RunResult(run_dir, status, 1, 0, 0.5, 0.7, {}, 1.0, message=message)


def test_the_start_and_a_resume_say_what_will_train():
    config = TrainingConfig(model="small-cnn", epochs=3, batch_size=8, image_size=32)
    assert training_messages.start_line(config) == "Starting small-cnn: 3 epochs, batch size 8, 32 px images."
    assert training_messages.resume_line("runs/r1/", 2, 5, None) == (
        "Resuming r1 after epoch 2: training up to epoch 5.")
    assert training_messages.resume_line("runs/r1", 2, 5, 16).endswith("up to epoch 5 with batches of 16.")


def test_training_on_a_device_counts_the_images_and_explains_a_distributed_step():
    assert training_messages.run_started_lines(started()) == [
        "Training on CPU: 2 classes, 10 training and 3 validation images, 5 batches per epoch."]
    lines = training_messages.run_started_lines(started(strategy="MirroredStrategy", workers=1, replicas=2,
                                                        global_batch=16, per_replica_batch=8))
    assert lines[1] == ("MirroredStrategy: 1 worker(s), 2 replicas; each step of 16 images gives 8 to each "
                        "replica.")


def test_an_epoch_line_lists_the_metrics_it_has():
    event = EpochEnd(1, 3, {"loss": 0.5, "val_accuracy": 0.75}, 2.04, 1234.0, 0.42)
    assert training_messages.epoch_line(event) == (
        "Epoch 2/3: loss 0.5000  val_accuracy 0.7500  (2.0 s, 1,234 images/s, waited for data 42%)")


def test_a_download_line_says_when_the_size_is_unknown():
    known = DownloadProgress("w.h5", "https://example.org/w.h5", 0, 2048)
    assert training_messages.download_line(known) == "Downloading w.h5 (2.0 KB) from https://example.org/w.h5…"
    assert "(size unknown)" in training_messages.download_line(known.__class__("w.h5", "u", 0, None))


def test_the_end_of_a_run_in_words():
    path = os.path.abspath("runs/r1")
    assert training_messages.finished_words(result("completed"), False) == (
        f"Finished. The run is saved in {path}", "success", "Training finished.")
    assert training_messages.finished_words(result("completed"), True)[2] == "Training stopped early."
    assert training_messages.finished_words(result("cancelled"), False) == (
        f"Stopped. The partial run is saved in {path}", "warning", "Training stopped.")
    assert training_messages.finished_words(result("cancelled", run_dir=""), False) == (
        "Stopped.", "warning", "Training stopped.")
    assert training_messages.finished_words(result("cancelled", "", "Stopped while reading"), False)[0] == (
        "Stopped while reading")
