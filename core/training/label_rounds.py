"""One round of labeling: retrain the model on the training folder as it is now, then rank the
unlabeled folder again with the new model (core.modeling.label_ranking).

The retraining is a normal run (core.training.driver.train) with the settings of the run being
labeled for, its training folder set to the one the labels go to. `retrain_config` is the one place
that chooses how fast a round retrains. The window calls `label_round` on a worker thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.config import PRETRAINED_MODELS, TrainingConfig
from core.errors import ConfigError
from core.events import RunResult
from core.modeling.label_ranking import DEFAULT_STRATEGY, Ranking, rank_folder
from core.runs.run_info import read_run_config


@dataclass
class RoundResult:
    """Plain data for the window: the new ranking and, when the round retrained, how that went."""

    ranking: Ranking
    run_dir: str  # the model that ranked: the new run when it retrained, else the one given
    retrained: RunResult | None = None
    model: str = ""  # the model's name (small-cnn, mobilenetv2, ...)
    cached_features: bool = False  # the round trained a head on the backbone's cached features
    seconds: float = 0.0  # the retraining's wall time


def retrain_config(run_dir: str, train_dir: str) -> TrainingConfig:
    """The settings of `run_dir` with `train_dir` as its training folder; a pretrained backbone
    trains its head on cached features when the engine offers it (TrainingConfig.features)."""
    settings = read_run_config(run_dir)
    if not settings:
        raise ConfigError(f"{run_dir} has no readable settings (config.json): choose a run folder.")
    try:
        # A round trains in this process: starting Ray workers each round would cost more than it saves.
        config = TrainingConfig.from_dict(settings).replace(train_dir=train_dir, workers=1, cluster="")
        config.validate()
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"The settings of {run_dir} cannot be used to retrain: {exc}") from None
    return _fastest(config)


def _fastest(config: TrainingConfig) -> TrainingConfig:
    """With a pretrained backbone, the head alone on cached backbone features (seconds, not minutes),
    where the engine offers it (TrainingConfig.features) and the run's other settings allow it."""
    if config.model not in PRETRAINED_MODELS or not hasattr(config, "features"):
        return config
    try:
        return config.replace(features="cached").validate()
    except ConfigError:  # e.g. fine-tuning, which needs the whole model: retrain as the run did
        return config


def uses_cached_features(config: TrainingConfig) -> bool:
    return getattr(config, "features", "") == "cached"


def label_round(
    run_dir: str,
    train_dir: str,
    unlabeled_dir: str,
    strategy: str = DEFAULT_STRATEGY,
    *,
    retrain: bool = True,
    train_fn: Callable | None = None,
    cancel: threading.Event | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    known_prints: dict | None = None,
) -> RoundResult:
    """Retrains (when `retrain`) and ranks `unlabeled_dir` with the resulting model. When the
    retraining fails or is stopped, the ranking uses the model of `run_dir` and `retrained` says why.
    `known_prints` carries the perceptual hashes from round to round (see rank_folder)."""
    cancel = cancel or threading.Event()
    ranking_model, retrained, model, cached, seconds = run_dir, None, "", False, 0.0
    if retrain:
        from core.training.driver import train

        config = retrain_config(run_dir, train_dir)
        model, cached = config.model, uses_cached_features(config)
        started = time.perf_counter()
        retrained = (train_fn or train)(config, None, cancel)
        seconds = time.perf_counter() - started
        if retrained.status == "completed":
            ranking_model = retrained.run_dir
    ranking = rank_folder(ranking_model, unlabeled_dir, strategy, on_progress=on_progress, cancel=cancel,
                          known_prints=known_prints)
    return RoundResult(ranking, ranking_model, retrained, model, cached, seconds)
