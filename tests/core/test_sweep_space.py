"""The search space of a sweep: ranges sampled log-uniformly, lists chosen, seeded; bad text refused."""

import math
import os

import pytest

from core.config import Augmentation, TrainingConfig
from core.errors import ConfigError
from core.training.sweep.space import apply, parse_dimension, sample_trials, space_from_dict, space_to_dict


def test_a_range_is_sampled_log_uniformly_inside_its_bounds():
    space = {"learning_rate": parse_dimension("learning_rate", "1e-4:1e-2")}
    rates = [trial["learning_rate"] for trial in sample_trials(space, 2000, seed=1)]
    assert all(1e-4 <= rate <= 1e-2 for rate in rates)
    below_1e3 = sum(rate < 1e-3 for rate in rates) / len(rates)  # the log-scale midpoint
    assert 0.45 < below_1e3 < 0.55  # uniform on a linear scale would put ~9% below 1e-3
    assert 0.4 < sum(math.log10(rate) < -3.5 for rate in rates) / len(rates) * 2 < 0.6


def test_a_list_is_a_seeded_choice_and_every_value_occurs():
    space = {"batch_size": parse_dimension("batch_size", "16,32,64"),
             "model": parse_dimension("model", "small-cnn,mobilenetv2"),
             "augment": parse_dimension("augment", "on,off")}
    trials = sample_trials(space, 60, seed=7)
    assert trials == sample_trials(space, 60, seed=7)
    assert trials != sample_trials(space, 60, seed=8)
    assert {t["batch_size"] for t in trials} == {16, 32, 64}
    assert {t["model"] for t in trials} == {"small-cnn", "mobilenetv2"}
    assert {t["augment"] for t in trials} == {True, False}


def test_an_integer_range_gives_whole_numbers_and_one_value_is_fixed():
    space = {"batch_size": parse_dimension("batch_size", "8:64"),
             "learning_rate": parse_dimension("learning_rate", "0.003")}
    for trial in sample_trials(space, 50, seed=2):
        assert isinstance(trial["batch_size"], int) and 8 <= trial["batch_size"] <= 64
        assert trial["learning_rate"] == 0.003


def test_a_trial_applies_its_values_to_the_base_settings():
    base = TrainingConfig(epochs=3, seed=5)
    config = apply(base, {"learning_rate": 0.01, "batch_size": 16, "augment": True})
    assert (config.learning_rate, config.batch_size, config.epochs) == (0.01, 16, 3)
    assert config.augmentation == Augmentation.all_on()


def test_the_space_survives_sweep_json():
    space = {"learning_rate": parse_dimension("learning_rate", "1e-5:1e-1"),
             "augment": parse_dimension("augment", "on,off")}
    assert space_from_dict(space_to_dict(space)) == space


@pytest.mark.parametrize("name, text", [
    ("learning_rate", "1e-2:1e-4"), ("learning_rate", "0:1e-2"), ("learning_rate", "fast"),
    ("learning_rate", "5"), ("batch_size", "16,,32"), ("batch_size", "16.5"), ("model", "resnet"),
    ("model", "a:b"), ("augment", "maybe"), ("seed", "1,2"), ("learning_rate", ""),
])
def test_bad_text_is_refused_with_a_message(name, text):
    with pytest.raises(ConfigError):
        parse_dimension(name, text)


def test_zero_trials_is_refused():
    with pytest.raises(ConfigError):
        sample_trials({}, 0, seed=1)


def sweep_args(*argv):
    from main import build_parser

    return build_parser().parse_args(["sweep", *argv])


def test_the_sweep_command_passes_train_options_through_and_searches_the_rest(tmp_path):
    from core.cli.sweep_command import sweep_request

    args = sweep_args("--train", str(tmp_path), "--val", str(tmp_path), "--trials", "3", "--epochs", "2",
                      "--lr", "1e-4:1e-2", "--batch-size", "16,32", "--augment", "on,off",
                      "--image-size", "24", "--seed", "4", "--early-stopping", "2",
                      "--cluster", "10.0.0.5:6379", "--metric", "val_loss")
    request = sweep_request(args)
    assert set(request.space) == {"learning_rate", "batch_size", "augment"}
    base = request.base
    assert (base.image_size, base.seed, base.epochs, base.early_stopping_patience) == (24, 4, 2, 2)
    assert (base.workers, base.cluster, request.cluster) == (1, "", "10.0.0.5:6379")  # trials: one process
    assert (request.trials, request.metric, request.scheduler) == (3, "val_loss", "asha")


def test_sweep_like_a_run_takes_its_settings_as_the_base(tmp_path):
    from core import files
    from core.cli.sweep_command import sweep_request

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    liked = TrainingConfig(train_dir=str(tmp_path), val_dir=str(tmp_path), learning_rate=0.05, image_size=40)
    files.write_json(str(run_dir / "config.json"), liked.to_dict())
    request = sweep_request(sweep_args("--like", str(run_dir), "--batch-size", "8,16", "--trials", "2"))
    assert (request.base.learning_rate, request.base.image_size) == (0.05, 40)
    assert set(request.space) == {"batch_size"}


@pytest.mark.parametrize("argv, says", [
    (["--lr", "1e-2:1e-4"], "low < high"),
    (["--model", "resnet,small-cnn"], "not a model"),
    (["--resume", "NOT_A_SWEEP"], "not a sweep folder"),
    (["--lr", "0.01"], "no class subfolders"),  # the (empty) training folder, checked before Ray starts
])
def test_bad_sweep_requests_exit_2_with_a_message_before_any_cluster_starts(argv, says, capsys, tmp_path):
    from main import main

    assert main(["sweep", "--train", str(tmp_path), "--out", str(tmp_path / "out"), *argv]) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")  # no sweep folder left


def test_the_first_trial_measures_the_base_settings_where_they_lie_in_the_space():
    from core.training.sweep.space import base_first

    space = {"learning_rate": parse_dimension("learning_rate", "1e-4:1e-2"),
             "batch_size": parse_dimension("batch_size", "16,64"),
             "augment": parse_dimension("augment", "on,off")}
    base = TrainingConfig(learning_rate=1e-3, batch_size=32)  # 32 is not among the batch sizes
    drawn = sample_trials(space, 4, seed=9)
    trials = base_first(drawn, space, base)
    assert trials[0]["learning_rate"] == 1e-3 and trials[0]["augment"] is False
    assert trials[0]["batch_size"] == drawn[0]["batch_size"]  # outside the space: drawn
    assert trials[1:] == drawn[1:]
