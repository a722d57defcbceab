"""Multinomial logistic regression on standardised features, fitted by L-BFGS in numpy.

It minimises what scikit-learn's `make_pipeline(StandardScaler(), LogisticRegression(C=C))` does
with its default lbfgs solver: the mean cross-entropy of a softmax over the classes plus
||W||^2 / (2 C n), intercepts unpenalised, from zero weights, stopping when no gradient entry
exceeds `tolerance` or the objective stops falling. For two classes scikit-learn fits a single
logistic vector w; the softmax's optimum has W = (w/2, -w/2), whose penalty is half of ||w||^2, so
the softmax takes twice the penalty there to land on the same probabilities. tests/core/
test_numeric_doctor.py compares the probabilities with scikit-learn's.

The optimiser is textbook L-BFGS (Nocedal and Wright, Numerical Optimization, algorithms 7.4 and
7.5: ten corrections, two-loop recursion) with a backtracking (Armijo) line search; the objective is
strictly convex, so every step's curvature pair is kept.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

HISTORY = 10  # L-BFGS corrections kept, scipy's default
ARMIJO = 1e-4  # sufficient decrease, as a fraction of the slope along the step
MAX_HALVINGS = 50  # line search steps before giving up, scikit-learn's maxls
RELATIVE_FALL = 64 * np.finfo(float).eps  # stop when the objective falls less than this, relatively


@dataclass(frozen=True)
class LogisticModel:
    classes: np.ndarray  # the labels seen in training, sorted: column j of `probabilities` is classes[j]
    mean: np.ndarray  # (d,) of the training features
    scale: np.ndarray  # (d,) their standard deviations, 1 where a feature is constant
    weights: np.ndarray  # (d, classes)
    intercepts: np.ndarray  # (classes,)
    iterations: int

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(n, classes) softmax probabilities for `features` (n, d)."""
        standardised = (np.asarray(features, np.float64) - self.mean) / self.scale
        return _softmax(standardised @ self.weights + self.intercepts)


def fit_logistic_regression(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    C: float = 1.0,
    tolerance: float = 1e-4,
    max_iterations: int = 500,
) -> LogisticModel:
    """The fitted model for `features` (n, d) and integer `labels` (n,)."""
    features = np.asarray(features, np.float64)
    classes, targets = np.unique(labels, return_inverse=True)
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale[scale < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)] = 1.0  # constant features
    standardised = (features - mean) / scale
    n, d = standardised.shape
    k = len(classes)
    if k < 2:  # one class: it is certain, nothing to learn
        return LogisticModel(classes, mean, scale, np.zeros((d, k)), np.zeros(k), 0)
    penalty = (2.0 if k == 2 else 1.0) / (C * n)
    one_hot = np.zeros((n, k))
    one_hot[np.arange(n), targets] = 1.0
    objective = _Objective(standardised, one_hot, penalty)
    solution, iterations = _minimise_lbfgs(objective, np.zeros((d + 1) * k), tolerance, max_iterations)
    parameters = solution.reshape(d + 1, k)
    return LogisticModel(classes, mean, scale, parameters[:d], parameters[d], iterations)


class _Objective:
    """Mean cross-entropy + penalty / 2 * ||W||^2 and its gradient, over parameters [W; b] flattened."""

    def __init__(self, features: np.ndarray, one_hot: np.ndarray, penalty: float):
        self.features, self.one_hot, self.penalty = features, one_hot, penalty

    def __call__(self, flat: np.ndarray) -> tuple[float, np.ndarray]:
        n, d = self.features.shape
        parameters = flat.reshape(d + 1, -1)
        weights, intercepts = parameters[:d], parameters[d]
        logits = self.features @ weights + intercepts
        top = logits.max(axis=1, keepdims=True)
        log_normaliser = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        loss = float(np.mean(log_normaliser - (logits * self.one_hot).sum(axis=1)))
        value = loss + 0.5 * self.penalty * float(np.sum(weights * weights))
        residual = (np.exp(logits - log_normaliser[:, None]) - self.one_hot) / n
        gradient = np.empty_like(parameters)
        gradient[:d] = self.features.T @ residual + self.penalty * weights
        gradient[d] = residual.sum(axis=0)
        return value, gradient.ravel()


def _minimise_lbfgs(
    objective, start: np.ndarray, tolerance: float, max_iterations: int
) -> tuple[np.ndarray, int]:
    point = start
    value, gradient = objective(point)
    steps: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=HISTORY)
    for iteration in range(max_iterations):
        if np.max(np.abs(gradient)) <= tolerance:
            return point, iteration
        direction = _two_loop(gradient, steps)
        slope = float(gradient @ direction)
        if slope >= 0:  # not a descent direction (rounding): start the memory afresh
            steps.clear()
            direction, slope = -gradient, -float(gradient @ gradient)
        # the first step has no curvature to scale it: at most a unit move, as scipy's first step
        length = 1.0 if steps else min(1.0, 1.0 / max(float(np.linalg.norm(gradient)), 1e-12))
        for _ in range(MAX_HALVINGS):
            candidate = point + length * direction
            new_value, new_gradient = objective(candidate)
            if new_value <= value + ARMIJO * length * slope:
                break
            length *= 0.5
        else:
            return point, iteration  # no decrease left to find at this precision
        step, change = candidate - point, new_gradient - gradient
        curvature = float(step @ change)
        if curvature > 1e-12 * float(change @ change):
            steps.append((step, change, 1.0 / curvature))
        fell = (value - new_value) / max(abs(value), abs(new_value), 1.0)
        point, value, gradient = candidate, new_value, new_gradient
        if fell <= RELATIVE_FALL:
            return point, iteration + 1
    return point, max_iterations


def _two_loop(gradient: np.ndarray, steps: deque) -> np.ndarray:
    """-H g, H the inverse Hessian that the stored (step, change) pairs imply."""
    direction = -gradient.copy()
    alphas = []
    for step, change, rho in reversed(steps):
        alpha = rho * float(step @ direction)
        direction -= alpha * change
        alphas.append(alpha)
    if steps:
        step, change, _ = steps[-1]
        direction *= float(step @ change) / float(change @ change)
    for (step, change, rho), alpha in zip(steps, reversed(alphas), strict=True):
        beta = rho * float(change @ direction)
        direction += (alpha - beta) * step
    return direction


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
