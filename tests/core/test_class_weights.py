"""Balanced class weights: from the counts to Keras's fit (a real tiny fit), config.json and report.json."""

import argparse
import os

import pytest
from conftest import make_class_folders

from core import files
from core.cli.train_command import add_training_arguments, config_from_args
from core.config import TrainingConfig
from core.errors import ConfigError
from core.events import Message
from core.runs import run_folder
from core.tf_runtime import load_keras
from core.training.driver import train


@pytest.fixture
def imbalanced(tmp_path):
    train_dir = make_class_folders(str(tmp_path / "train"), {"blue": 12, "green": 4, "red": 4})
    val_dir = make_class_folders(str(tmp_path / "val"), {"blue": 2, "green": 2, "red": 2})
    return TrainingConfig(train_dir=train_dir, val_dir=val_dir, epochs=1, batch_size=4, image_size=16,
                          out_dir=str(tmp_path / "runs"), class_weights="auto")


@pytest.fixture
def fit_calls(monkeypatch):
    """Keras's real fit, with the class_weight of every call recorded."""
    keras = load_keras()
    calls = []
    real_fit = keras.Model.fit

    def recording_fit(model, *args, **kwargs):
        calls.append(kwargs.get("class_weight"))
        return real_fit(model, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    return calls


def test_auto_class_weights_reach_fit_and_are_recorded(imbalanced, fit_calls):
    events = []
    result = train(imbalanced, events.append)
    assert result.status == "completed", result.message
    # 20 images, 3 classes: blue 20 / (3 * 12), green and red 20 / (3 * 4)
    assert fit_calls == [{0: 0.5556, 1: 1.6667, 2: 1.6667}]
    config = files.read_json(os.path.join(result.run_dir, run_folder.CONFIG_FILE))
    assert config["class_weights"] == "auto"
    report = files.read_json(os.path.join(result.run_dir, run_folder.REPORT_FILE))
    assert report["class_weights"] == {"blue": 0.5556, "green": 1.6667, "red": 1.6667}
    messages = [e.text for e in events if isinstance(e, Message)]
    assert "Class weights (balanced): blue 0.556, green 1.67, red 1.67" in messages


def test_without_class_weights_fit_gets_none(imbalanced, fit_calls):
    result = train(imbalanced.replace(class_weights="none"))
    assert fit_calls == [None]
    assert files.read_json(os.path.join(result.run_dir, run_folder.REPORT_FILE))["class_weights"] is None


def parse_training_options(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_training_arguments(parser)
    return parser.parse_args(list(argv))


def test_the_option_on_the_command_line_and_its_limits():
    auto = parse_training_options("--train", "d", "--class-weights", "auto")
    assert config_from_args(auto).class_weights == "auto"
    assert config_from_args(parse_training_options("--train", "d")).class_weights == "none"
    with pytest.raises(SystemExit):
        parse_training_options("--class-weights", "heavy")
    with pytest.raises(ConfigError, match="class_weights"):
        TrainingConfig(class_weights="heavy").validate()
