"""Metrics: proper scoring rules, accuracy and calibration (pure numpy).

Every function is pure: arrays in, numbers (or small arrays) out.  Inputs are
checked and a bad one raises :class:`ValueError` naming the argument.

Regression scores take a Gaussian predictive ``N(mean, var)`` per point.  For
an ensemble (a uniform mixture of Gaussians) :func:`evaluate` uses the
*moment-matched* Gaussian, ``N(prediction.mean, prediction.total)``, exactly as
Lakshminarayanan et al. (2017) do for their reported NLL; the calibration
curve, interval coverage and CRPS are computed from the same Gaussian.

Classification scores take class probabilities ``probs [N, C]`` (rows sum to
one) and integer labels ``y [N]`` in ``0..C-1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = [
    "LOG_2PI",
    "ReliabilityBins",
    "gaussian_nll",
    "categorical_nll",
    "rmse",
    "mae",
    "accuracy",
    "brier",
    "reliability_bins",
    "ece",
    "interval_coverage",
    "calibration_curve",
    "miscalibration_area",
    "gaussian_crps",
    "sharpness",
    "evaluate",
    "REGRESSION_METRICS",
    "CLASSIFICATION_METRICS",
]

LOG_2PI = float(np.log(2 * np.pi))

#: Keys :func:`evaluate` returns for each task, in display order.
REGRESSION_METRICS = ("nll", "rmse", "mae", "crps", "coverage_50", "coverage_90", "coverage_95",
                      "miscalibration_area")
CLASSIFICATION_METRICS = ("nll", "accuracy", "brier", "ece")

_PROB_TOL = 1e-4


# ---------------------------------------------------------------- input guards
def _vector(a: Any, name: str, *, n: int | None = None) -> np.ndarray:
    """A finite float64 vector ``[N]`` (``[N, 1]`` is accepted and flattened)."""
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be numeric, got {type(a).__name__}") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name}: must be a 1-D array [N], got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: is empty")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name}: has {arr.shape[0]} rows but y has {n}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def _variance(var: Any, n: int, name: str = "var") -> np.ndarray:
    v = _vector(var, name, n=n)
    if np.any(v <= 0):
        raise ValueError(f"{name}: every variance must be > 0 (min is {v.min():.3g})")
    return v


def _regression_inputs(y: Any, mean: Any, var: Any | None = None):
    yy = _vector(y, "y")
    mm = _vector(mean, "mean", n=len(yy))
    if var is None:
        return yy, mm
    return yy, mm, _variance(var, len(yy))


def _classification_inputs(y: Any, probs: Any) -> tuple[np.ndarray, np.ndarray]:
    try:
        p = np.asarray(probs, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"probs: must be numeric, got {type(probs).__name__}") from None
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"probs: must be a 2-D array [N, C], got shape {p.shape}")
    if p.shape[0] == 0:
        raise ValueError("probs: is empty")
    if not np.all(np.isfinite(p)):
        raise ValueError("probs: contains NaN or infinite values")
    if np.any(p < -_PROB_TOL) or np.any(p > 1 + _PROB_TOL):
        raise ValueError("probs: every probability must lie in [0, 1]")
    if np.any(np.abs(p.sum(axis=1) - 1.0) > _PROB_TOL):
        raise ValueError("probs: every row must sum to 1 (pass probabilities, not logits)")
    yy = np.asarray(y)
    if yy.ndim != 1:
        raise ValueError(f"y: must be a 1-D array of class indices [N], got shape {yy.shape}")
    if yy.shape[0] != p.shape[0]:
        raise ValueError(f"y: has {yy.shape[0]} rows but probs has {p.shape[0]}")
    if yy.dtype.kind == "f":
        if not np.all(np.isfinite(yy)) or np.any(yy != np.round(yy)):
            raise ValueError("y: class indices must be whole numbers")
    elif yy.dtype.kind not in "iu":
        raise ValueError(f"y: class indices must be integers, got dtype {yy.dtype}")
    yi = yy.astype(np.int64)
    if np.any(yi < 0) or np.any(yi >= p.shape[1]):
        raise ValueError(f"y: class indices must be in 0..{p.shape[1] - 1}")
    return yi, np.clip(p, 0.0, 1.0)


def _check_level(level: float, name: str = "level") -> float:
    if not isinstance(level, (int, float)) or isinstance(level, bool) or not 0.0 < level < 1.0:
        raise ValueError(f"{name}: must be a number strictly between 0 and 1, got {level!r}")
    return float(level)


_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _norm_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF, accurate in both tails (``0.5 * erfc(-z / sqrt 2)``)."""
    return 0.5 * _erfc(-np.asarray(z, dtype=np.float64) / math.sqrt(2.0))


def _norm_pdf(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * np.asarray(z) ** 2) / math.sqrt(2 * math.pi)


def _central_z(level: float) -> float:
    """Half-width in standard deviations of the central ``level`` interval of N(0, 1)."""
    if level <= 0.0:
        return 0.0
    if level >= 1.0:
        return math.inf
    return NormalDist().inv_cdf(0.5 + level / 2.0)


# ------------------------------------------------------------- regression
def gaussian_nll(y: np.ndarray, mean: np.ndarray, var: np.ndarray) -> float:
    """Mean negative log-likelihood of ``y`` under ``N(mean, var)``.

    Includes the ``0.5 * log(2 pi)`` constant, so it equals
    ``-Normal(mean, sqrt(var)).log_prob(y).mean()``.

    Args:
        y: observed targets ``[N]``.
        mean: predictive means ``[N]``.
        var: predictive variances ``[N]``, all > 0.

    Returns:
        The mean NLL in nats (lower is better).
    """
    y, mean, var = _regression_inputs(y, mean, var)
    return float(np.mean(0.5 * LOG_2PI + 0.5 * np.log(var) + 0.5 * (y - mean) ** 2 / var))


def rmse(y: np.ndarray, mean: np.ndarray) -> float:
    """Root mean squared error.

    Args:
        y: observed targets ``[N]``.
        mean: point predictions ``[N]``.

    Returns:
        ``sqrt(mean((y - mean)^2))`` in the target's units.
    """
    y, mean = _regression_inputs(y, mean)
    return float(np.sqrt(np.mean((y - mean) ** 2)))


def mae(y: np.ndarray, mean: np.ndarray) -> float:
    """Mean absolute error.

    Args:
        y: observed targets ``[N]``.
        mean: point predictions ``[N]``.

    Returns:
        ``mean(|y - mean|)`` in the target's units.
    """
    y, mean = _regression_inputs(y, mean)
    return float(np.mean(np.abs(y - mean)))


def gaussian_crps(y: np.ndarray, mean: np.ndarray, var: np.ndarray) -> float:
    """Mean continuous ranked probability score of ``N(mean, var)`` (closed form).

    ``CRPS = sigma * (z * (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi))`` with
    ``z = (y - mean) / sigma`` (Gneiting & Raftery 2007).  It is in the
    target's units and reduces to ``|y - mean|`` as ``var -> 0``.

    Args:
        y: observed targets ``[N]``.
        mean: predictive means ``[N]``.
        var: predictive variances ``[N]``, all > 0.

    Returns:
        The mean CRPS (lower is better).
    """
    y, mean, var = _regression_inputs(y, mean, var)
    sigma = np.sqrt(var)
    z = (y - mean) / sigma
    crps = sigma * (z * (2.0 * _norm_cdf(z) - 1.0) + 2.0 * _norm_pdf(z) - 1.0 / math.sqrt(math.pi))
    return float(np.mean(crps))


def interval_coverage(y: np.ndarray, mean: np.ndarray, var: np.ndarray, level: float = 0.95) -> float:
    """Fraction of ``y`` inside the central ``level`` interval of ``N(mean, var)``.

    The interval is ``mean +- z * sqrt(var)`` with ``z = Phi^-1((1 + level) / 2)``
    (1.96 for 95 %); a calibrated model covers about ``level`` of the points.

    Args:
        y: observed targets ``[N]``.
        mean: predictive means ``[N]``.
        var: predictive variances ``[N]``, all > 0.
        level: nominal coverage, strictly between 0 and 1.

    Returns:
        The observed coverage in ``[0, 1]``.
    """
    level = _check_level(level)
    y, mean, var = _regression_inputs(y, mean, var)
    return float(np.mean(np.abs(y - mean) <= _central_z(level) * np.sqrt(var)))


def calibration_curve(
    y: np.ndarray, mean: np.ndarray, var: np.ndarray, n_levels: int = 101
) -> tuple[np.ndarray, np.ndarray]:
    """Expected vs observed coverage of central intervals (regression calibration curve).

    For ``n_levels`` evenly spaced nominal levels ``p`` in ``[0, 1]`` the
    observed value is the fraction of points with
    ``|y - mean| <= Phi^-1((1 + p) / 2) * sqrt(var)``.  A calibrated model lies
    on the diagonal; a curve below it is over-confident (intervals too narrow).

    Args:
        y: observed targets ``[N]``.
        mean: predictive means ``[N]``.
        var: predictive variances ``[N]``, all > 0.
        n_levels: number of levels, at least 2 (0 and 1 are included).

    Returns:
        ``(expected, observed)``, two arrays of length ``n_levels``.
    """
    if not isinstance(n_levels, int) or isinstance(n_levels, bool) or n_levels < 2:
        raise ValueError(f"n_levels: must be an integer >= 2, got {n_levels!r}")
    y, mean, var = _regression_inputs(y, mean, var)
    zabs = np.sort(np.abs(y - mean) / np.sqrt(var))
    expected = np.linspace(0.0, 1.0, n_levels)
    z = np.array([_central_z(p) for p in expected])
    observed = np.searchsorted(zabs, z, side="right") / len(zabs)
    return expected, observed


def miscalibration_area(y: np.ndarray, mean: np.ndarray, var: np.ndarray, n_levels: int = 101) -> float:
    """Area between the calibration curve and the diagonal.

    ``integral_0^1 |observed(p) - p| dp`` by the trapezoid rule over
    :func:`calibration_curve`'s levels: 0 is perfect, 0.5 is the worst.

    Args:
        y: observed targets ``[N]``.
        mean: predictive means ``[N]``.
        var: predictive variances ``[N]``, all > 0.
        n_levels: number of levels of the curve.

    Returns:
        The area in ``[0, 0.5]``.
    """
    expected, observed = calibration_curve(y, mean, var, n_levels)
    return float(np.trapezoid(np.abs(observed - expected), expected))


def sharpness(std: np.ndarray) -> float:
    """Sharpness: one number for how confident the predictions are (uncertainty-toolbox's definition).

    ``sqrt(mean(std**2))``, the root mean predictive variance, in the target's
    units.  Smaller is sharper; it says nothing about honesty on its own, so read
    it next to a calibration score (sharp *and* calibrated is the goal).

    Args:
        std: predictive standard deviations ``[N]``, all > 0.

    Returns:
        The sharpness, > 0.
    """
    s = _vector(std, "std")
    if np.any(s <= 0):
        raise ValueError(f"std: every standard deviation must be > 0 (min is {s.min():.3g})")
    return float(np.sqrt(np.mean(s**2)))


# --------------------------------------------------------- classification
def categorical_nll(y: np.ndarray, probs: np.ndarray, eps: float = 1e-12) -> float:
    """Mean negative log-probability of the true classes.

    Args:
        y: class indices ``[N]``.
        probs: class probabilities ``[N, C]`` (rows sum to 1).
        eps: probabilities are clipped to ``[eps, 1]`` so a confident mistake
            costs ``-log(eps)`` instead of infinity.

    Returns:
        The mean NLL in nats (lower is better).
    """
    y, p = _classification_inputs(y, probs)
    picked = p[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.clip(picked, eps, 1.0))))


def accuracy(y: np.ndarray, probs: np.ndarray) -> float:
    """Fraction of rows whose arg-max class equals ``y``.

    Args:
        y: class indices ``[N]``.
        probs: class probabilities ``[N, C]``.

    Returns:
        Accuracy in ``[0, 1]``.
    """
    y, p = _classification_inputs(y, probs)
    return float(np.mean(p.argmax(axis=1) == y))


def brier(y: np.ndarray, probs: np.ndarray) -> float:
    """Multi-class Brier score ``mean_n sum_c (p_nc - 1[y_n = c])^2``.

    Summed over classes (Brier 1950; the form Lakshminarayanan et al. report),
    so it lies in ``[0, 2]``.

    Args:
        y: class indices ``[N]``.
        probs: class probabilities ``[N, C]``.

    Returns:
        The mean Brier score (lower is better).
    """
    y, p = _classification_inputs(y, probs)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(y)), y] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


@dataclass(frozen=True)
class ReliabilityBins:
    """Reliability-diagram data: equal-width confidence bins.

    Attributes:
        lower, upper: bin edges ``[B]``; bin ``b`` holds confidences in
            ``(lower[b], upper[b]]`` (the first bin also holds 0).
        confidence: mean top-class probability of the rows in each bin
            (``nan`` for an empty bin).
        accuracy: fraction of those rows classified correctly (``nan`` if empty).
        count: rows per bin.
    """

    lower: np.ndarray
    upper: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    @property
    def gap(self) -> np.ndarray:
        """``accuracy - confidence`` per bin (negative = over-confident)."""
        return self.accuracy - self.confidence


def reliability_bins(y: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> ReliabilityBins:
    """Bin predictions by confidence (top-class probability) for a reliability diagram.

    Args:
        y: class indices ``[N]``.
        probs: class probabilities ``[N, C]``.
        n_bins: number of equal-width bins over ``[0, 1]``.

    Returns:
        A :class:`ReliabilityBins`.
    """
    if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins: must be a positive integer, got {n_bins!r}")
    y, p = _classification_inputs(y, probs)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(idx, weights=conf, minlength=n_bins) / count
        acc = np.bincount(idx, weights=correct, minlength=n_bins) / count
    return ReliabilityBins(edges[:-1], edges[1:], confidence, acc, count)


def ece(y: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error (Guo et al. 2017).

    ``sum_b (n_b / N) * |accuracy_b - confidence_b|`` over the equal-width
    confidence bins of :func:`reliability_bins`.

    Args:
        y: class indices ``[N]``.
        probs: class probabilities ``[N, C]``.
        n_bins: number of bins.

    Returns:
        ECE in ``[0, 1]`` (0 is perfectly calibrated).
    """
    bins = reliability_bins(y, probs, n_bins)
    filled = bins.count > 0
    weights = bins.count[filled] / bins.count.sum()
    return float(np.sum(weights * np.abs(bins.accuracy[filled] - bins.confidence[filled])))


# ------------------------------------------------------------------ evaluate
def evaluate(prediction: Any, y: np.ndarray, *, var_floor: float = 1e-12) -> dict[str, float]:
    """Every metric of a prediction's task, keyed as in ``*_METRICS``.

    Regression (a :class:`~ensemble_core.predict.RegressionPrediction`) is
    scored with the moment-matched Gaussian ``N(mean, total)``: ``nll, rmse,
    mae, crps, coverage_50, coverage_90, coverage_95, miscalibration_area``.
    Classification (a ``ClassificationPrediction``): ``nll, accuracy, brier,
    ece``.

    Args:
        prediction: the output of :func:`ensemble_core.predict.predict` (any
            object with ``mean``/``total`` or ``probs`` attributes).
        y: targets ``[N]`` in original units, or class indices.
        var_floor: the predictive variance is floored here, so mean-only (MSE)
            members, whose variance can be exactly 0, still get a finite score.

    Returns:
        ``{name: value}`` of plain floats.
    """
    if hasattr(prediction, "probs"):
        probs = prediction.probs
        return {
            "nll": categorical_nll(y, probs),
            "accuracy": accuracy(y, probs),
            "brier": brier(y, probs),
            "ece": ece(y, probs),
        }
    if hasattr(prediction, "mean") and hasattr(prediction, "total"):
        yy = _vector(y, "y")
        mean = _vector(prediction.mean, "prediction.mean", n=len(yy))
        total = _vector(prediction.total, "prediction.total", n=len(yy))
        if np.any(total < 0):
            raise ValueError("prediction.total: variances must be >= 0")
        var = np.maximum(total, var_floor)
        return {
            "nll": gaussian_nll(yy, mean, var),
            "rmse": rmse(yy, mean),
            "mae": mae(yy, mean),
            "crps": gaussian_crps(yy, mean, var),
            "coverage_50": interval_coverage(yy, mean, var, 0.5),
            "coverage_90": interval_coverage(yy, mean, var, 0.9),
            "coverage_95": interval_coverage(yy, mean, var, 0.95),
            "miscalibration_area": miscalibration_area(yy, mean, var),
        }
    raise ValueError(
        f"prediction: expected a RegressionPrediction or ClassificationPrediction, got {type(prediction).__name__}"
    )
