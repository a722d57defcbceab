"""The plots' data, without widgets: growing float64 series, TensorBoard's smoothing, the loss axis's
steady range and the value nearest to an x."""

from __future__ import annotations

import math

import numpy as np


class SeriesBuffer:
    """x/y float64 arrays that grow by doubling; `x`/`y` are views of the filled part."""

    def __init__(self, capacity: int = 1024):
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self.size = 0

    def append(self, x: float, y: float) -> None:
        self._reserve(self.size + 1)
        self._x[self.size] = x
        self._y[self.size] = y
        self.size += 1

    def extend(self, x: np.ndarray, y: np.ndarray) -> None:
        end = self.size + len(x)
        self._reserve(end)
        self._x[self.size:end] = x
        self._y[self.size:end] = y
        self.size = end

    def _reserve(self, needed: int) -> None:
        capacity = max(len(self._x), 1)
        while capacity < needed:
            capacity *= 2
        if capacity != len(self._x):
            self._x = np.concatenate([self._x, np.empty(capacity - len(self._x))])
            self._y = np.concatenate([self._y, np.empty(capacity - len(self._y))])

    def clear(self) -> None:
        self.size = 0

    def assign(self, x: np.ndarray, y: np.ndarray) -> None:
        self.size = 0
        self.extend(x, y)

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.size]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.size]

    def __len__(self) -> int:
        return self.size


class EmaSmoother:
    """TensorBoard's smoothing: a debiased exponential moving average that skips NaN and inf."""

    def __init__(self, weight: float = 0.0):
        self.weight = weight
        self.reset()

    def reset(self) -> None:
        self._last = 0.0
        self._debias = 0.0

    def add(self, value: float) -> float:
        if not math.isfinite(value):
            return self._last / self._debias if self._debias else value
        self._last = self._last * self.weight + (1 - self.weight) * value
        self._debias = self._debias * self.weight + (1 - self.weight)
        return self._last / self._debias

    def smooth(self, values: np.ndarray) -> np.ndarray:
        self.reset()
        return np.fromiter((self.add(float(v)) for v in values), dtype=np.float64, count=len(values))


def steady_range(low: float, high: float, current: tuple[float, float] | None) -> tuple[float, float]:
    """A y range holding [low, high] that changes only when the data leaves it or fills less than
    half of it; a new range has 10% headroom on each side."""
    if current is not None:
        bottom, top = current
        if bottom <= low and high <= top and (high - low) >= (top - bottom) / 2:
            return current
    margin = 0.1 * (high - low) or 0.1 * abs(high) or 0.1
    return low - margin, high + margin


def value_at(series: SeriesBuffer, x: float) -> float | None:
    if not len(series):
        return None
    index = int(np.searchsorted(series.x, x))
    index = min(max(index, 0), len(series) - 1)
    if index > 0 and abs(series.x[index - 1] - x) < abs(series.x[index] - x):
        index -= 1
    return float(series.y[index])
