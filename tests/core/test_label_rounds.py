"""The settings a labeling round retrains with: the run's own, its training folder replaced, in this
process, and the head alone on cached features where a pretrained backbone allows it."""

import pytest
from run_folders import make_run

from core.config import TrainingConfig
from core.errors import ConfigError
from core.training.label_rounds import retrain_config, uses_cached_features


def test_a_round_retrains_with_the_runs_settings_on_the_training_folder(tmp_path):
    run = make_run(tmp_path, "run-small", model="small-cnn", image_size=32, learning_rate=0.01, workers=2)
    config = retrain_config(run, str(tmp_path / "labeled"))
    assert (config.train_dir, config.model, config.image_size, config.learning_rate) == (
        str(tmp_path / "labeled"), "small-cnn", 32, 0.01)
    assert config.workers == 1 and not config.distributed  # no Ray cluster per round
    assert not uses_cached_features(config)


def test_a_pretrained_backbone_retrains_its_head_on_cached_features_when_the_engine_offers_it(tmp_path):
    run = make_run(tmp_path, "run-mobile", model="mobilenetv2", image_size=96)
    config = retrain_config(run, str(tmp_path / "labeled"))
    assert uses_cached_features(config) == hasattr(TrainingConfig(), "features")


def test_a_folder_without_settings_is_refused_with_the_reason(tmp_path):
    with pytest.raises(ConfigError, match="no readable settings"):
        retrain_config(str(tmp_path), str(tmp_path / "labeled"))
