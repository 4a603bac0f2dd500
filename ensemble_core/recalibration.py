"""Post-hoc recalibration: fitted on the validation split, scored on the test split.

Regression (a Gaussian ``N(mean, std**2)`` per point, e.g. the ensemble's moment-matched mixture):

* **variance scaling** — one factor ``s2`` on every predictive variance.  With
  ``criterion="nll"`` (the default) it is the closed form that maximises the
  Gaussian likelihood of the validation targets, ``s2 = mean(((y - mean) / std)**2)``;
  the criteria ``"ma_cal"``, ``"rms_cal"`` and ``"miscal"`` reproduce
  uncertainty-toolbox's ``optimize_recalibration_ratio`` / ``get_std_recalibrator``
  (a bounded 1-D search of the std ratio minimising a calibration error);
* **isotonic recalibration** — uncertainty-toolbox's ``iso_recal`` fitted on its
  proportion lists (``get_proportion_lists_vectorized``, 100 levels): an
  increasing map from observed to expected proportions.  The recalibrated
  central interval of level ``p`` is the Gaussian interval of level ``iso(p)``
  (``get_interval_recalibrator``); with ``prop_type="quantile"`` the quantile
  ``q`` is the Gaussian quantile ``iso(q)`` (``get_quantile_recalibrator``);
* **split-conformal intervals** — normalised scores ``|y - mean| / std`` on the
  validation rows; the level-``p`` interval is ``mean ± q̂ std`` with ``q̂`` the
  ``ceil((n + 1) p)``-th smallest score (the finite-sample correction), so the
  test coverage is at least ``p`` for exchangeable rows (infinite when
  ``ceil((n + 1) p) > n``).

Classification: **temperature scaling** of the ensemble's averaged probabilities
(pool, then calibrate): ``softmax(log(p) / T)`` with ``T`` minimising the
validation NLL (a 1-D bounded search over ``log T``); ``T > 1`` softens
over-confident probabilities, accuracy never changes.

:class:`Recalibration` holds what was fitted as plain numbers (``to_dict`` /
``from_dict``, JSON-safe) so it can be kept with a run and exported.  Everything
here is pure numpy/scipy; a bad input raises :class:`ValueError` naming it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from . import metrics as _m

__all__ = [
    "LEVELS",
    "Recalibration",
    "std_ratio",
    "proportion_lists",
    "IsotonicMap",
    "fit_isotonic",
    "conformal_quantile",
    "fit_temperature",
    "apply_temperature",
    "fit",
    "score",
    "interval_curve",
]

#: Nominal levels of the calibration curves and of the stored conformal half-widths (0, 0.01, ..., 1).
LEVELS = np.linspace(0.0, 1.0, 101)
#: The central interval whose half-width is "one sigma" for a Gaussian: sharpness of a non-Gaussian recalibration.
ONE_SIGMA = math.erf(1 / math.sqrt(2))  # 0.6827
_T_BOUNDS = (0.05, 20.0)
_RATIO_BOUNDS = (1e-2, 1e2)
_MAX_JSON_NUMBERS = 1_000


def _ndtri(p: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri  # what scipy.stats.norm.ppf evaluates (bit-identical comparisons)

    return ndtri(np.asarray(p, dtype=np.float64))


def _reg(y: Any, mean: Any, std: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    yy, mm = _m._regression_inputs(y, mean)
    ss = _m._vector(std, "std", n=len(yy))
    if np.any(ss <= 0):
        raise ValueError(f"std: every standard deviation must be > 0 (min is {ss.min():.3g})")
    return yy, mm, ss


# ------------------------------------------------------------ variance scaling
def _calibration_error(y: np.ndarray, mean: np.ndarray, std: np.ndarray, criterion: str) -> float:
    """uncertainty-toolbox's interval calibration errors on 100 levels (``ma_cal``, ``rms_cal``, ``miscal``)."""
    exp, obs = proportion_lists(y, mean, std)
    if criterion == "ma_cal":
        return float(np.mean(np.abs(exp - obs)))
    if criterion == "rms_cal":
        return float(np.sqrt(np.mean((exp - obs) ** 2)))
    return _miscal_area_uct(exp, obs)


def _miscal_area_uct(exp: np.ndarray, obs: np.ndarray) -> float:
    """Area between ``obs`` and the diagonal, trapezoids split where the curves cross (uct's ``trapezoid_area``)."""
    xl, xr = exp[:-1], exp[1:]
    dl, dr = obs[:-1] - xl, obs[1:] - xr
    cross = (dl * dr < 0) & ~((dl == 0) & (dr == 0))
    trap = np.abs((xr - xl) * 0.5 * (dl + dr))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(cross, dl / (dl - dr), 0.0)
    hour = 0.5 * np.abs(dl) * t * (xr - xl) + 0.5 * np.abs(dr) * (1 - t) * (xr - xl)
    return float(np.sum(np.where(cross, hour, trap)))


def std_ratio(y: Any, mean: Any, std: Any, criterion: Literal["nll", "ma_cal", "rms_cal", "miscal"] = "nll") -> float:
    """The factor ``r`` on every predictive std (``std' = r std``, variance factor ``r**2``).

    Args:
        y, mean, std: validation targets, predictive means and stds ``[N]``.
        criterion: ``"nll"``: the closed-form maximum-likelihood factor
            ``r**2 = mean(((y - mean) / std)**2)``; ``"ma_cal"``, ``"rms_cal"``,
            ``"miscal"``: uncertainty-toolbox's ``optimize_recalibration_ratio``
            (scipy's bounded ``minimize_scalar`` on ``[0.01, 100]`` of that
            calibration error).

    Returns:
        ``r > 0``.
    """
    yy, mm, ss = _reg(y, mean, std)
    if criterion == "nll":
        r2 = float(np.mean(((yy - mm) / ss) ** 2))
        if not r2 > 0:
            raise ValueError("y: every prediction is exact, so no variance scale can be fitted")
        return math.sqrt(r2)
    if criterion not in ("ma_cal", "rms_cal", "miscal"):
        raise ValueError(f"criterion: must be 'nll', 'ma_cal', 'rms_cal' or 'miscal', got {criterion!r}")
    from scipy.optimize import minimize_scalar

    worst = math.sqrt(1 / 3) if criterion == "rms_cal" else 0.5
    res = minimize_scalar(lambda r: worst if r == 0 else _calibration_error(yy, mm, r * ss, criterion),
                          bounds=_RATIO_BOUNDS)
    return float(res.x)


# ------------------------------------------------------------------ isotonic
def proportion_lists(y: Any, mean: Any, std: Any, *, num_bins: int = 100, prop_type: str = "interval",
                     recal: IsotonicMap | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Expected and observed proportions, as uncertainty-toolbox's ``get_proportion_lists_vectorized``.

    ``exp = linspace(0, 1, num_bins)``; with a recalibration map the Gaussian is
    asked for level ``recal(exp)``.  ``"interval"``: the share of points with
    ``Phi^-1(0.5 - p/2) <= (mean - y) / std <= Phi^-1(0.5 + p/2)``;
    ``"quantile"``: the share with ``(mean - y) / std <= Phi^-1(p)`` (the
    toolbox's sign, kept so the fitted maps agree).

    Returns:
        ``(exp, obs)``, each ``[num_bins]``.
    """
    yy, mm, ss = _reg(y, mean, std)
    if prop_type not in ("interval", "quantile"):
        raise ValueError(f"prop_type: must be 'interval' or 'quantile', got {prop_type!r}")
    exp = np.linspace(0.0, 1.0, num_bins)
    p = exp if recal is None else recal(exp)
    z = ((mm - yy) / ss)[:, None]
    if prop_type == "interval":
        inside = (z >= _ndtri(0.5 - p / 2.0)) & (z <= _ndtri(0.5 + p / 2.0))
    else:
        inside = z <= _ndtri(p)
    return exp, inside.sum(axis=0) / len(yy)


@dataclass(frozen=True)
class IsotonicMap:
    """An increasing piecewise-linear map of proportions, clipped at its ends (sklearn's fitted thresholds).

    Attributes:
        x: observed-proportion knots, increasing.
        y: expected-proportion values at the knots, non-decreasing.
        prop_type: ``"interval"`` (central intervals) or ``"quantile"``.
    """

    x: tuple[float, ...]
    y: tuple[float, ...]
    prop_type: str = "interval"

    def __post_init__(self) -> None:
        x, y = np.asarray(self.x, dtype=np.float64), np.asarray(self.y, dtype=np.float64)
        if x.ndim != 1 or len(x) < 1 or x.shape != y.shape or len(x) > _MAX_JSON_NUMBERS:
            raise ValueError("isotonic map: x and y must be equally long, with 1 to 1,000 knots")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))) or np.any(np.diff(x) < 0) or np.any(np.diff(y) < 0):
            raise ValueError("isotonic map: knots must be finite and increasing")
        if np.any((x < 0) | (x > 1) | (y < 0) | (y > 1)):
            raise ValueError("isotonic map: knots must lie in [0, 1]")
        if self.prop_type not in ("interval", "quantile"):
            raise ValueError(f"isotonic map: prop_type must be 'interval' or 'quantile', got {self.prop_type!r}")

    def __call__(self, p: Any) -> np.ndarray:
        """The map at proportions ``p`` (clipped to the knots' range, as ``out_of_bounds="clip"``)."""
        return np.interp(np.asarray(p, dtype=np.float64), self.x, self.y)


def fit_isotonic(y: Any, mean: Any, std: Any, *, prop_type: str = "interval") -> IsotonicMap:
    """uncertainty-toolbox's isotonic recalibration (``iso_recal`` on ``get_proportion_lists_vectorized``).

    On the 100-level grid the toolbox's trimming of levels outside ``[0, 1]`` keeps
    every level, so this is ``IsotonicRegression(increasing=True,
    out_of_bounds="clip").fit(obs, exp)``, kept as its thresholds.

    Args:
        y, mean, std: validation targets, means and stds ``[N]``.
        prop_type: ``"interval"`` (``get_interval_recalibrator``) or
            ``"quantile"`` (``get_quantile_recalibrator``).
    """
    from sklearn.isotonic import IsotonicRegression

    exp, obs = proportion_lists(y, mean, std, prop_type=prop_type)
    iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(obs, exp)
    return IsotonicMap(tuple(map(float, iso.X_thresholds_)), tuple(map(float, iso.y_thresholds_)), prop_type)


# ------------------------------------------------------------------ conformal
def conformal_quantile(scores: Any, level: float | np.ndarray) -> np.ndarray:
    """Split-conformal quantile of nonconformity ``scores`` at coverage ``level``.

    The ``ceil((n + 1) level)``-th smallest score (``inf`` when that rank exceeds
    ``n``; 0 at level 0).  For exchangeable rows, ``score_new <= q̂`` holds with
    probability at least ``level`` (and below ``level + 1/(n + 1)`` without ties).

    Args:
        scores: validation scores ``[n]`` (here ``|y - mean| / std``).
        level: nominal coverage(s) in ``[0, 1]``.

    Returns:
        ``q̂`` with the shape of ``level``.
    """
    s = np.sort(_m._vector(scores, "scores"))
    lv = np.asarray(level, dtype=np.float64)
    if np.any(~np.isfinite(lv)) or np.any((lv < 0) | (lv > 1)):
        raise ValueError("level: must lie in [0, 1]")
    n = len(s)
    k = np.ceil((n + 1) * lv - 1e-9).astype(np.int64)  # rank, 1-based; the epsilon absorbs 0.9 * 101 = 90.9000...1
    out = np.where(k > n, np.inf, s[np.clip(k - 1, 0, n - 1)])
    return np.where(k <= 0, 0.0, out)


# ----------------------------------------------------------------- temperature
def apply_temperature(probs: Any, temperature: float) -> np.ndarray:
    """``softmax(log(probs) / T)`` row by row (probabilities floored at 1e-12 before the log)."""
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature: must be a finite number > 0, got {temperature!r}")
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs: must be [N, C], got shape {p.shape}")
    z = np.log(np.clip(p, 1e-12, None)) / float(temperature)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(y: Any, probs: Any) -> float:
    """The temperature ``T`` in ``[0.05, 20]`` minimising the NLL of ``apply_temperature(probs, T)`` on ``y``.

    A bounded 1-D search over ``log T`` (the NLL is smooth in it); accuracy is
    unchanged by any ``T``.
    """
    from scipy.optimize import minimize_scalar

    yy, p = _m._classification_inputs(y, probs)
    lo, hi = math.log(_T_BOUNDS[0]), math.log(_T_BOUNDS[1])
    res = minimize_scalar(lambda lt: _m.categorical_nll(yy, apply_temperature(p, math.exp(lt))),
                          bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    return float(math.exp(res.x))


# ------------------------------------------------------------- the container
@dataclass(frozen=True)
class Recalibration:
    """What was fitted on a run's validation split (plain numbers; JSON-safe through :meth:`to_dict`).

    Attributes:
        task: ``"regression"`` or ``"classification"``.
        n_val: validation rows it was fitted on.
        members: the member indices of the ensemble it recalibrates.
        std_ratio: regression: the maximum-likelihood std factor (variance factor ``std_ratio**2``).
        isotonic: regression: the interval isotonic map.
        conformal: regression: ``q̂`` at each of :data:`LEVELS` (``inf`` where ``n_val`` is too small).
        temperature: classification: the fitted temperature.
    """

    task: str
    n_val: int
    members: tuple[int, ...] = ()
    std_ratio: float | None = None
    isotonic: IsotonicMap | None = None
    conformal: tuple[float, ...] = field(default=())
    temperature: float | None = None

    def __post_init__(self) -> None:
        if self.task not in ("regression", "classification"):
            raise ValueError(f"recalibration: task must be 'regression' or 'classification', got {self.task!r}")
        if not isinstance(self.n_val, int) or isinstance(self.n_val, bool) or self.n_val < 1:
            raise ValueError("recalibration: n_val must be a positive integer")
        if self.task == "regression":
            if not (isinstance(self.std_ratio, (int, float)) and math.isfinite(self.std_ratio) and self.std_ratio > 0):
                raise ValueError("recalibration: a regression recalibration needs a finite std_ratio > 0")
            if self.isotonic is None or len(self.conformal) != len(LEVELS):
                raise ValueError(f"recalibration: a regression recalibration needs an isotonic map and "
                                 f"{len(LEVELS)} conformal half-widths")
            c = np.asarray(self.conformal, dtype=np.float64)
            if np.any(np.isnan(c)) or np.any(c < 0) or np.any(c[1:] < c[:-1]):
                raise ValueError("recalibration: conformal half-widths must be >= 0 and increasing")
        elif not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)
                  and self.temperature > 0):
            raise ValueError("recalibration: a classification recalibration needs a finite temperature > 0")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (``inf`` half-widths become ``None``)."""
        d: dict[str, Any] = {"format": "deep-ensemble-lab/recalibration-1", "fitted_on": "validation",
                             "task": self.task, "n_val": self.n_val, "members": list(self.members)}
        if self.task == "regression":
            d.update(std_ratio=self.std_ratio, variance_factor=float(self.std_ratio) ** 2,
                     isotonic={"x": list(self.isotonic.x), "y": list(self.isotonic.y),
                               "prop_type": self.isotonic.prop_type},
                     conformal={"levels": [round(float(v), 2) for v in LEVELS],
                                "half_width_in_std": [None if math.isinf(v) else v for v in self.conformal]})
        else:
            d["temperature"] = self.temperature
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Recalibration:
        """Rebuild from :meth:`to_dict`'s output; anything else raises :class:`ValueError` saying what."""
        if not isinstance(d, dict) or d.get("format") != "deep-ensemble-lab/recalibration-1":
            raise ValueError("recalibration: not a recalibration exported by this lab")
        try:
            members = tuple(int(m) for m in d.get("members", ()))[:_MAX_JSON_NUMBERS]
            if d.get("task") == "regression":
                iso = d["isotonic"]
                conf = d["conformal"]["half_width_in_std"]
                if not isinstance(conf, list) or len(conf) != len(LEVELS):
                    raise ValueError("conformal half-widths")
                return cls("regression", d["n_val"], members, std_ratio=float(d["std_ratio"]),
                           isotonic=IsotonicMap(tuple(map(float, iso["x"])), tuple(map(float, iso["y"])),
                                                str(iso.get("prop_type", "interval"))),
                           conformal=tuple(math.inf if v is None else float(v) for v in conf))
            return cls(str(d.get("task")), d["n_val"], members, temperature=float(d["temperature"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"recalibration: a field is missing or wrong ({exc})") from None


def fit(prediction: Any, y_val: Any) -> Recalibration:
    """Fit every recalibration of the prediction's task on validation data.

    Args:
        prediction: a ``RegressionPrediction`` (uses ``mean`` and ``total``) or a
            ``ClassificationPrediction`` (uses ``probs``) on the validation inputs.
        y_val: the validation targets.

    Raises:
        ValueError: fewer than 2 validation rows, or bad arrays.
    """
    members = tuple(int(m) for m in getattr(prediction, "members", ()))
    if hasattr(prediction, "probs"):
        yy, p = _m._classification_inputs(y_val, prediction.probs)
        if len(yy) < 2:
            raise ValueError("y_val: recalibration needs at least 2 validation rows")
        return Recalibration("classification", len(yy), members, temperature=fit_temperature(yy, p))
    yy, mm, ss = _reg(y_val, prediction.mean, np.sqrt(np.maximum(_m._vector(prediction.total, "total"), 1e-300)))
    if len(yy) < 2:
        raise ValueError("y_val: recalibration needs at least 2 validation rows")
    scores = np.abs(yy - mm) / ss
    return Recalibration("regression", len(yy), members, std_ratio=std_ratio(yy, mm, ss),
                         isotonic=fit_isotonic(yy, mm, ss),
                         conformal=tuple(float(v) for v in conformal_quantile(scores, LEVELS)))


# ------------------------------------------------------------------ scoring
def interval_curve(y: np.ndarray, mean: np.ndarray, half_width: np.ndarray) -> np.ndarray:
    """Observed coverage of central intervals ``mean ± half_width[k]`` for each level ``k``.

    Args:
        y, mean: ``[N]``.
        half_width: ``[K, N]`` (``inf`` allowed).

    Returns:
        ``[K]`` shares of points inside.
    """
    return (np.abs(y - mean)[None, :] <= half_width).mean(axis=1)


def _area(observed: np.ndarray) -> float:
    return float(np.trapezoid(np.abs(observed - LEVELS), LEVELS))


def score(recal: Recalibration, prediction: Any, y_test: Any) -> dict[str, dict[str, Any]]:
    """Score the prediction before and after each recalibration on test data.

    Regression methods ``"before"``, ``"variance"``, ``"isotonic"``, ``"conformal"``,
    each with ``curve`` (observed coverage at :data:`LEVELS`), ``miscalibration_area``
    (trapezoid of ``|observed - expected|``, as :func:`metrics.miscalibration_area`),
    ``sharpness`` (RMS half-width of the 68.3 % interval: uncertainty-toolbox's
    sharpness ``sqrt(mean(std**2))`` for a Gaussian), ``nll`` (Gaussian methods only,
    else ``None``), ``coverage_90``, ``coverage_95``.

    Classification methods ``"before"`` and ``"temperature"``, each with ``probs``,
    ``nll``, ``ece``, ``accuracy``, ``confidence`` (mean top-class probability),
    ``brier``.
    """
    out: dict[str, dict[str, Any]] = {}
    if recal.task == "classification":
        yy, p = _m._classification_inputs(y_test, prediction.probs)
        for name, q in (("before", p), ("temperature", apply_temperature(p, float(recal.temperature)))):
            out[name] = {"probs": q, "nll": _m.categorical_nll(yy, q), "ece": _m.ece(yy, q),
                         "accuracy": _m.accuracy(yy, q), "brier": _m.brier(yy, q),
                         "confidence": float(q.max(axis=1).mean())}
        return out
    total = np.maximum(_m._vector(prediction.total, "total"), 1e-300)
    yy, mm, ss = _reg(y_test, prediction.mean, np.sqrt(total))
    z = _ndtri(0.5 + LEVELS / 2.0)[:, None]  # [K, 1]; inf at level 1
    iso = recal.isotonic
    assert iso is not None and recal.std_ratio is not None
    r = float(recal.std_ratio)
    half = {
        "before": z * ss,
        "variance": z * r * ss,
        "isotonic": _ndtri(0.5 + iso(LEVELS) / 2.0)[:, None] * ss,
        "conformal": np.asarray(recal.conformal, dtype=np.float64)[:, None] * ss,
    }
    k90, k95 = 90, 95  # indices of the 90 % and 95 % levels in LEVELS
    for name, h in half.items():
        curve = interval_curve(yy, mm, h)
        if name == "conformal":
            one = float(np.interp(ONE_SIGMA, LEVELS, np.asarray(recal.conformal, dtype=np.float64)))
        elif name == "isotonic":
            one = float(_ndtri(0.5 + iso(ONE_SIGMA) / 2.0))
        else:
            one = 1.0 if name == "before" else r
        nll = None
        if name in ("before", "variance"):
            nll = _m.gaussian_nll(yy, mm, (ss * (1.0 if name == "before" else r)) ** 2)
        out[name] = {"curve": curve, "miscalibration_area": _area(curve),
                     "sharpness": float(one * np.sqrt(np.mean(ss**2))) if math.isfinite(one) else math.inf,
                     "nll": nll, "coverage_90": float(curve[k90]), "coverage_95": float(curve[k95])}
    return out
