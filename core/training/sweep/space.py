"""The search space of a sweep: what each hyperparameter may be, parsed from the command line's text,
and the trials' settings drawn from it. Pure: no Ray, no TensorFlow, no files.

    "1e-4:1e-2"            a range, sampled log-uniformly (whole numbers for an integer setting)
    "16,32,64"             a list, one of them chosen with equal chances
    "0.001"                one value: every trial has it

The draws are seeded: the same space, number of trials and seed give the same trials.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from core.config import LIMITS, MODEL_NAMES, Augmentation, TrainingConfig
from core.errors import ConfigError

# The hyperparameters a sweep searches, by their name on the command line and in sweep.json.
SEARCHABLE = ("learning_rate", "batch_size", "model", "augment")
SWITCH_WORDS = {"on": True, "off": False, "true": True, "false": False, "yes": True, "no": False}

# How a sweep judges its trials: the metric and which way is better, and ASHA's early stops.
METRICS = {"val_accuracy": "max", "val_loss": "min"}
SCHEDULERS = ("asha", "none")
ASHA_REDUCTION_FACTOR = 2  # half the trials at each rung (epochs 1, 2, 4, 8...) go on


@dataclass(frozen=True)
class Dimension:
    """One hyperparameter's allowed values: a log-uniform range (low, high) or a list of choices."""

    name: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def is_range(self) -> bool:
        return self.low is not None

    def sample(self, rng: random.Random) -> Any:
        if not self.is_range:
            return rng.choice(self.choices)
        value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return round(value) if self.name == "batch_size" else float(f"{value:.4g}")

    def to_dict(self) -> dict[str, Any]:
        if self.is_range:
            return {"type": "log-uniform", "low": self.low, "high": self.high}
        return {"type": "choice", "values": list(self.choices)}

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> Dimension:
        if data.get("type") == "log-uniform":
            return cls(name, float(data["low"]), float(data["high"]))
        return cls(name, choices=tuple(data["values"]))


def parse_dimension(name: str, text: str) -> Dimension:
    """`text` ("a:b", "a,b,c" or "a") as the values `name` may take; raises ConfigError saying why not."""
    if name not in SEARCHABLE:
        raise ConfigError(f"A sweep cannot search {name!r}; it searches {', '.join(SEARCHABLE)}.")
    text = text.strip()
    if ":" in text:
        return _parse_range(name, text)
    parts = [part.strip() for part in text.split(",")]
    if not text or not all(parts):
        raise ConfigError(f"--{_flag(name)} {text!r}: give a range like a:b or values separated by commas.")
    values = tuple(dict.fromkeys(_value(name, part) for part in parts))  # each value once, in order
    return Dimension(name, choices=values)


def _parse_range(name: str, text: str) -> Dimension:
    if name in ("model", "augment"):
        raise ConfigError(f"--{_flag(name)} takes values separated by commas, not a range ({text!r}).")
    low_text, _, high_text = text.partition(":")
    low, high = _number(name, low_text), _number(name, high_text)
    if not 0 < low < high:
        raise ConfigError(f"--{_flag(name)} {text!r}: a range needs 0 < low < high (it is sampled on a "
                          "log scale).")
    return Dimension(name, float(low), float(high))


def _value(name: str, text: str) -> Any:
    if name == "model":
        if text not in MODEL_NAMES:
            raise ConfigError(f"--model {text!r} is not a model; choose from {', '.join(MODEL_NAMES)}.")
        return text
    if name == "augment":
        if text.lower() not in SWITCH_WORDS:
            raise ConfigError(f"--augment takes on and off (comma-separated), not {text!r}.")
        return SWITCH_WORDS[text.lower()]
    return _number(name, text)


def _number(name: str, text: str) -> float | int:
    try:
        value = int(text) if name == "batch_size" else float(text)
    except ValueError:
        kind = "a whole number" if name == "batch_size" else "a number"
        raise ConfigError(f"--{_flag(name)} needs {kind}, not {text.strip()!r}.") from None
    low, high = LIMITS[name]
    if not low <= value <= high or math.isnan(value):
        raise ConfigError(f"--{_flag(name)} {value:g} is outside {low:g} to {high:g}.")
    return value


def _flag(name: str) -> str:
    return {"learning_rate": "lr", "batch_size": "batch-size"}.get(name, name)


def sample_trials(space: dict[str, Dimension], trials: int, seed: int) -> list[dict[str, Any]]:
    """`trials` settings drawn from `space`, the same for the same seed: one dict per trial, with a
    value for every dimension (drawn in the order of SEARCHABLE, so adding one does not change others)."""
    if trials < 1:
        raise ConfigError("A sweep needs at least one trial.")
    rng = random.Random(seed)
    ordered = [space[name] for name in SEARCHABLE if name in space]
    return [{dimension.name: dimension.sample(rng) for dimension in ordered} for _ in range(trials)]


def base_first(trials: list[dict[str, Any]], space: dict[str, Dimension],
               base: TrainingConfig) -> list[dict[str, Any]]:
    """The trials with the first one on the base settings wherever they lie in the space: the sweep
    measures the settings it started from, so its best trial is never one it did not compare."""
    if not trials:
        return trials
    first = dict(trials[0])
    for name, dimension in space.items():
        value = settings_of(base)[name]
        if dimension.is_range:
            inside = dimension.low <= value <= dimension.high
        else:
            inside = value in dimension.choices
        if inside:
            first[name] = value
    return [first, *trials[1:]]


def settings_of(config: TrainingConfig) -> dict[str, Any]:
    """The searchable settings of `config`, by their names in the space."""
    return {"learning_rate": config.learning_rate, "batch_size": config.batch_size, "model": config.model,
            "augment": config.augmentation.any}


def apply(base: TrainingConfig, settings: dict[str, Any]) -> TrainingConfig:
    """`base` with a trial's hyperparameters."""
    changes: dict[str, Any] = {key: value for key, value in settings.items() if key != "augment"}
    if "augment" in settings:
        changes["augmentation"] = Augmentation.all_on() if settings["augment"] else Augmentation()
    return base.replace(**changes)


def space_to_dict(space: dict[str, Dimension]) -> dict[str, Any]:
    return {name: dimension.to_dict() for name, dimension in space.items()}


def space_from_dict(data: dict[str, Any]) -> dict[str, Dimension]:
    return {name: Dimension.from_dict(name, value) for name, value in data.items() if name in SEARCHABLE}
