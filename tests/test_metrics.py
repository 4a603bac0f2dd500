"""Metrics against closed forms, PyTorch and hand-computed cases."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble_core import metrics as M
from ensemble_core.predict import combine_classification, combine_regression

RNG = np.random.default_rng(0)


def _quantile_residuals(n: int) -> np.ndarray:
    """Standard-normal 'residuals' at the exact quantiles (i - 0.5) / n: a perfectly calibrated sample."""
    return np.array([NormalDist().inv_cdf((i - 0.5) / n) for i in range(1, n + 1)])


# ------------------------------------------------------------------ regression
def test_gaussian_nll_matches_torch_normal_log_prob():
    y, mu = RNG.normal(size=50), RNG.normal(size=50)
    var = RNG.uniform(0.1, 3.0, size=50)
    expected = -torch.distributions.Normal(torch.tensor(mu), torch.tensor(np.sqrt(var))).log_prob(
        torch.tensor(y)).mean().item()
    assert M.gaussian_nll(y, mu, var) == pytest.approx(expected, rel=1e-12)
    full = torch.nn.GaussianNLLLoss(full=True, eps=1e-12)(torch.tensor(mu), torch.tensor(y), torch.tensor(var))
    assert M.gaussian_nll(y, mu, var) == pytest.approx(full.item(), rel=1e-12)


def test_gaussian_nll_hand_case():
    # y = mean: 0.5 log(2 pi) + 0.5 log(4)
    assert M.gaussian_nll([1.0], [1.0], [4.0]) == pytest.approx(0.5 * math.log(2 * math.pi) + math.log(2))


def test_rmse_and_mae_hand_case():
    y, mu = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 0.0, 3.0, 8.0])
    assert M.rmse(y, mu) == pytest.approx(math.sqrt((0 + 4 + 0 + 16) / 4))
    assert M.mae(y, mu) == pytest.approx((0 + 2 + 0 + 4) / 4)


@pytest.mark.parametrize("y,mu,var", [(0.3, 0.0, 1.0), (-2.5, 1.0, 0.25), (10.0, 9.0, 9.0)])
def test_crps_matches_numerical_integration(y, mu, var):
    # CRPS(F, y) = integral (F(t) - 1[t >= y])^2 dt, with F from torch (an independent CDF).
    sigma = math.sqrt(var)
    t = torch.linspace(mu - 12 * sigma - abs(y - mu), mu + 12 * sigma + abs(y - mu), 400_001, dtype=torch.float64)
    F = torch.special.ndtr((t - mu) / sigma)
    integrand = (F - (t >= y).double()) ** 2
    numeric = torch.trapezoid(integrand, t).item()
    assert M.gaussian_crps([y], [mu], [var]) == pytest.approx(numeric, rel=1e-4)


def test_crps_tends_to_absolute_error_for_tiny_variance():
    assert M.gaussian_crps([3.0, -1.0], [1.0, 0.0], [1e-14, 1e-14]) == pytest.approx(1.5, rel=1e-6)


def test_crps_at_the_mean_closed_form():
    # z = 0: sigma * (2 phi(0) - 1/sqrt(pi)) = sigma * (sqrt(2/pi) - 1/sqrt(pi))
    assert M.gaussian_crps([0.0], [0.0], [4.0]) == pytest.approx(2 * (math.sqrt(2 / math.pi) - 1 / math.sqrt(math.pi)))


def test_interval_coverage_on_a_calibrated_sample():
    r = _quantile_residuals(2000)
    mu = RNG.normal(size=2000) * 5
    var = np.full(2000, 4.0)
    y = mu + 2.0 * r
    for level in (0.5, 0.9, 0.95):
        assert M.interval_coverage(y, mu, var, level) == pytest.approx(level, abs=1e-3)
    # 95 % interval is mean +- 1.96 sigma: a point at 1.95 sigma is in, at 1.97 is out.
    assert M.interval_coverage([1.95, 1.97], [0.0, 0.0], [1.0, 1.0], 0.95) == 0.5


def test_calibration_curve_perfect_and_overconfident():
    r = _quantile_residuals(4000)
    exp, obs = M.calibration_curve(r, np.zeros_like(r), np.ones_like(r))
    assert exp[0] == 0.0 and exp[-1] == 1.0 and obs[-1] == 1.0
    assert np.all(np.diff(obs) >= 0)
    assert np.max(np.abs(obs - exp)) < 2e-3
    assert M.miscalibration_area(r, np.zeros_like(r), np.ones_like(r)) < 2e-3
    # Residuals twice as wide as predicted: observed(p) = 2 Phi(z_p / 2) - 1 (below the diagonal).
    y = 2.0 * r
    exp, obs = M.calibration_curve(y, np.zeros_like(y), np.ones_like(y))
    truth = np.array([2 * NormalDist().cdf(NormalDist().inv_cdf(0.5 + p / 2) / 2) - 1 if p < 1 else 1.0
                      for p in exp])
    assert np.max(np.abs(obs - truth)) < 2e-3
    assert np.all(obs <= exp + 1e-9)
    area = M.miscalibration_area(y, np.zeros_like(y), np.ones_like(y))
    assert area == pytest.approx(np.trapezoid(np.abs(truth - exp), exp), abs=2e-3)
    assert 0.1 < area < 0.5


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.floats(0.01, 100.0), st.integers(0, 2**16))
def test_calibration_properties(n, scale, seed):
    g = np.random.default_rng(seed)
    y, mu = g.normal(size=n) * scale, g.normal(size=n)
    var = g.uniform(0.01, 10.0, size=n)
    exp, obs = M.calibration_curve(y, mu, var, n_levels=21)
    assert np.all(np.diff(obs) >= 0) and obs[-1] == 1.0
    assert 0.0 <= M.miscalibration_area(y, mu, var) <= 0.5
    c50, c90 = M.interval_coverage(y, mu, var, 0.5), M.interval_coverage(y, mu, var, 0.9)
    assert 0.0 <= c50 <= c90 <= 1.0


# -------------------------------------------------------------- classification
P = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
Y = np.array([0, 2, 2])


def test_categorical_nll_matches_torch_cross_entropy():
    expected = torch.nn.functional.nll_loss(torch.log(torch.tensor(P)), torch.tensor(Y)).item()
    assert M.categorical_nll(Y, P) == pytest.approx(expected, rel=1e-12)
    assert M.categorical_nll(Y, P) == pytest.approx(-(math.log(0.7) + math.log(0.1) + math.log(0.4)) / 3)


def test_accuracy_and_brier_hand_case():
    assert M.accuracy(Y, P) == pytest.approx(2 / 3)
    b = ((0.3**2 + 0.2**2 + 0.1**2) + (0.1**2 + 0.8**2 + 0.9**2) + (0.3**2 + 0.3**2 + 0.6**2)) / 3
    assert M.brier(Y, P) == pytest.approx(b)
    assert M.brier([1], [[0.0, 1.0]]) == 0.0 and M.brier([0], [[0.0, 1.0]]) == pytest.approx(2.0)


def test_ece_and_reliability_bins_on_a_constructed_case():
    # 10 rows at confidence 0.85 with 8 right (gap 0.05), 10 rows at 0.55 with 3 right (gap 0.25).
    hi = np.tile([0.85, 0.15], (10, 1))
    lo = np.tile([0.55, 0.45], (10, 1))
    probs = np.vstack([hi, lo])
    y = np.array([0] * 8 + [1] * 2 + [0] * 3 + [1] * 7)
    bins = M.reliability_bins(y, probs, n_bins=10)
    assert bins.count.tolist() == [0, 0, 0, 0, 0, 10, 0, 0, 10, 0]
    assert bins.confidence[8] == pytest.approx(0.85) and bins.accuracy[8] == pytest.approx(0.8)
    assert bins.confidence[5] == pytest.approx(0.55) and bins.accuracy[5] == pytest.approx(0.3)
    assert np.isnan(bins.accuracy[0]) and bins.gap[5] == pytest.approx(-0.25)
    assert M.ece(y, probs, n_bins=10) == pytest.approx(0.5 * 0.05 + 0.5 * 0.25)


def test_ece_bins_are_right_closed_and_zero_when_calibrated():
    # Confidence exactly 0.5 falls in (0.4, 0.5]; 1.0 in the last bin.
    bins = M.reliability_bins([0, 0], [[0.5, 0.5], [1.0, 0.0]], n_bins=10)
    assert bins.count[4] == 1 and bins.count[9] == 1
    probs = np.tile([0.75, 0.25], (4, 1))
    assert M.ece([0, 0, 0, 1], probs) == pytest.approx(0.0)


# ----------------------------------------------------------------- evaluate
def test_evaluate_regression_uses_the_moment_matched_gaussian():
    mm = RNG.normal(size=(4, 30))
    mv = RNG.uniform(0.2, 2.0, size=(4, 30))
    pred = combine_regression(mm, mv)
    y = RNG.normal(size=30)
    out = M.evaluate(pred, y)
    assert tuple(out) == M.REGRESSION_METRICS
    assert all(isinstance(v, float) for v in out.values())
    assert out["nll"] == pytest.approx(M.gaussian_nll(y, pred.mean, pred.total))
    assert out["crps"] == pytest.approx(M.gaussian_crps(y, pred.mean, pred.total))
    assert out["coverage_90"] == M.interval_coverage(y, pred.mean, pred.total, 0.9)


def test_evaluate_classification_and_mse_members():
    pred = combine_classification(P[None])
    out = M.evaluate(pred, Y)
    assert tuple(out) == M.CLASSIFICATION_METRICS
    assert out["brier"] == pytest.approx(M.brier(Y, P))
    # One MSE member has zero variance: the floor keeps the score finite.
    single = combine_regression(np.zeros((1, 3)), np.zeros((1, 3)))
    assert math.isfinite(M.evaluate(single, [0.0, 0.0, 0.0])["nll"])


# ------------------------------------------------------------------- guards
@pytest.mark.parametrize("call,match", [
    (lambda: M.gaussian_nll([1.0, 2.0], [1.0], [1.0, 1.0]), "mean: has 1 rows"),
    (lambda: M.gaussian_nll([1.0], [np.nan], [1.0]), "mean: contains NaN"),
    (lambda: M.gaussian_nll([1.0], [1.0], [0.0]), "var: every variance must be > 0"),
    (lambda: M.gaussian_crps([np.inf], [1.0], [1.0]), "y: contains NaN or infinite"),
    (lambda: M.rmse(np.zeros((2, 2)), np.zeros((2, 2))), "y: must be a 1-D array"),
    (lambda: M.rmse([], []), "y: is empty"),
    (lambda: M.interval_coverage([1.0], [1.0], [1.0], 1.0), "level: must be a number strictly between"),
    (lambda: M.calibration_curve([1.0], [1.0], [1.0], n_levels=1), "n_levels"),
    (lambda: M.accuracy([0], [[2.0, -1.0]]), "probs: every probability"),
    (lambda: M.brier([0], [[0.5, 0.6]]), "probs: every row must sum to 1"),
    (lambda: M.ece([3], [[0.5, 0.5]]), "y: class indices must be in 0..1"),
    (lambda: M.categorical_nll([0.5], [[0.5, 0.5]]), "y: class indices must be whole numbers"),
    (lambda: M.categorical_nll([0, 1], [[0.5, 0.5]]), "y: has 2 rows but probs has 1"),
    (lambda: M.ece([0], [[0.5, 0.5]], n_bins=0), "n_bins"),
    (lambda: M.evaluate(object(), [1.0]), "prediction: expected"),
])
def test_bad_inputs_raise_value_errors_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
