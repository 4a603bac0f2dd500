"""Metrics: proper scoring rules, accuracy and calibration (pure numpy).

CONTRACT + first functions (more in progress).
"""

from __future__ import annotations

import numpy as np

LOG_2PI = float(np.log(2 * np.pi))


def gaussian_nll(y: np.ndarray, mean: np.ndarray, var: np.ndarray) -> float:
    """Mean negative log-likelihood of ``y`` under ``N(mean, var)`` (with the 0.5 log 2pi constant)."""
    y, mean, var = (np.asarray(a, dtype=np.float64) for a in (y, mean, var))
    return float(np.mean(0.5 * LOG_2PI + 0.5 * np.log(var) + 0.5 * (y - mean) ** 2 / var))


def categorical_nll(y: np.ndarray, probs: np.ndarray, eps: float = 1e-12) -> float:
    """Mean negative log-probability of the true class indices ``y`` under ``probs [N, C]``."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.clip(p, eps, 1.0))))


def rmse(y: np.ndarray, mean: np.ndarray) -> float:
    """Root mean squared error."""
    return float(np.sqrt(np.mean((np.asarray(y, dtype=np.float64) - np.asarray(mean, dtype=np.float64)) ** 2)))


def accuracy(y: np.ndarray, probs: np.ndarray) -> float:
    """Fraction of rows whose arg-max class equals ``y``."""
    return float(np.mean(np.asarray(probs).argmax(axis=1) == np.asarray(y)))
