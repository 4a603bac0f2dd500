"""Recalibration: closed forms, brute-force grids, coverage guarantees, and uncertainty-toolbox on the same arrays."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ensemble_core import metrics
from ensemble_core import recalibration as R
from ensemble_core.predict import combine_classification, combine_regression

uct = pytest.importorskip("uncertainty_toolbox", reason="uncertainty-toolbox is a test-only dependency")


def _skewed(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means, stds and targets that are over-confident, heavy-tailed and shifted (the toolbox has work to do)."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=n)
    sd = np.exp(0.3 * rng.normal(size=n))
    y = mu + sd * 1.7 * rng.standard_t(4, size=n) + 0.2
    return mu, sd, y


# ------------------------------------------------------------ variance scaling
def test_nll_ratio_is_the_closed_form_and_beats_every_grid_value() -> None:
    mu, sd, y = _skewed()
    r = R.std_ratio(y, mu, sd)
    assert r == pytest.approx(math.sqrt(np.mean(((y - mu) / sd) ** 2)), rel=1e-12)
    # the maximum-likelihood scale: no factor on a fine grid gives a lower validation NLL (torch as the oracle)
    loss = torch.nn.GaussianNLLLoss(full=True)
    grid = np.linspace(0.3 * r, 3 * r, 2001)
    nlls = [loss(torch.tensor(mu), torch.tensor(y), torch.tensor((g * sd) ** 2)).item() for g in grid]
    best = metrics.gaussian_nll(y, mu, (r * sd) ** 2)
    assert best <= min(nlls) + 1e-12
    assert abs(grid[int(np.argmin(nlls))] - r) <= grid[1] - grid[0]


@pytest.mark.parametrize("criterion", ["ma_cal", "rms_cal", "miscal"])
def test_std_ratio_matches_uncertainty_toolbox(criterion: str) -> None:
    mu, sd, y = _skewed(n=120, seed=1)
    ours = R.std_ratio(y, mu, sd, criterion)
    theirs = uct.recalibration.get_std_recalibrator(mu, sd, y, criterion=criterion)(np.array([1.0]))[0]
    assert ours == pytest.approx(theirs, rel=1e-9)


def test_sharpness_is_the_toolbox_definition() -> None:
    _, sd, _ = _skewed()
    assert metrics.sharpness(sd) == pytest.approx(uct.metrics_calibration.sharpness(sd), rel=1e-12)
    with pytest.raises(ValueError, match="std"):
        metrics.sharpness(np.array([1.0, 0.0]))


# ------------------------------------------------------------------ isotonic
@pytest.mark.parametrize("prop_type", ["interval", "quantile"])
def test_proportions_and_isotonic_map_match_the_toolbox(prop_type: str) -> None:
    mu, sd, y = _skewed(seed=2)
    exp, obs = uct.get_proportion_lists_vectorized(mu, sd, y, prop_type=prop_type)
    exp2, obs2 = R.proportion_lists(y, mu, sd, prop_type=prop_type)
    np.testing.assert_array_equal(exp, exp2)
    np.testing.assert_array_equal(obs, obs2)
    iso = uct.recalibration.iso_recal(exp, obs)
    ours = R.fit_isotonic(y, mu, sd, prop_type=prop_type)
    q = np.linspace(0, 1, 1001)
    np.testing.assert_allclose(ours(q), iso.predict(q), atol=1e-12)


def test_recalibrated_quantiles_and_intervals_match_the_toolbox() -> None:
    from scipy import stats

    mu, sd, y = _skewed(seed=3)
    quant = uct.recalibration.get_quantile_recalibrator(mu, sd, y)
    inter = uct.recalibration.get_interval_recalibrator(mu, sd, y)
    qmap, imap = R.fit_isotonic(y, mu, sd, prop_type="quantile"), R.fit_isotonic(y, mu, sd)
    for q in (0.05, 0.3, 0.5, 0.9):
        np.testing.assert_allclose(mu + sd * stats.norm.ppf(qmap(q)), quant(mu, sd, q), atol=1e-12)
        bounds = inter(mu, sd, q)
        half = sd * stats.norm.ppf(0.5 + imap(q) / 2)
        np.testing.assert_allclose(mu + half, bounds.upper, atol=1e-12)
        np.testing.assert_allclose(mu - half, bounds.lower, atol=1e-12)


def test_toolbox_miscalibration_area_after_isotonic_recalibration() -> None:
    """The scored curve uses the map as the toolbox does (``recal_model``); both areas agree on 100 levels."""
    from sklearn.isotonic import IsotonicRegression

    mu, sd, y = _skewed(seed=4)
    imap = R.fit_isotonic(y, mu, sd)
    model = IsotonicRegression(out_of_bounds="clip").fit(imap.x, imap.y)
    exp, obs = R.proportion_lists(y, mu, sd, recal=imap)
    theirs = uct.metrics.miscalibration_area(mu, sd, y, recal_model=model, vectorized=True)
    assert R._miscal_area_uct(exp, obs) == pytest.approx(theirs, abs=1e-12)
    before = uct.metrics.miscalibration_area(mu, sd, y)
    assert theirs < before  # fitted and scored on the same rows: it must help


# ------------------------------------------------------------------ conformal
def test_conformal_quantile_rank_and_edges() -> None:
    s = np.arange(1.0, 10.0)  # n = 9 scores 1..9
    assert R.conformal_quantile(s, 0.9).item() == 9.0  # ceil(10 * 0.9) = 9th smallest
    assert R.conformal_quantile(s, 0.5).item() == 5.0  # ceil(5) = 5th
    assert math.isinf(R.conformal_quantile(s, 0.95).item())  # ceil(9.5) = 10 > n
    assert R.conformal_quantile(s, 0.0).item() == 0.0
    with pytest.raises(ValueError, match="level"):
        R.conformal_quantile(s, 1.5)


def test_split_conformal_coverage_is_at_least_nominal_and_below_the_upper_bound() -> None:
    """Exchangeable rows: marginal coverage in [level, level + 1/(n+1)] (averaged over many splits)."""
    rng = np.random.default_rng(0)
    n, level, trials = 19, 0.8, 4000
    covered = 0
    for _ in range(trials):
        mu, sd = rng.normal(size=n + 1), np.exp(rng.normal(size=n + 1))
        y = mu + 2.5 * sd * rng.standard_t(3, size=n + 1)  # the std is wrong by a factor and the tails are heavy
        q = R.conformal_quantile(np.abs(y[:n] - mu[:n]) / sd[:n], level)
        covered += abs(y[n] - mu[n]) <= q * sd[n]
    cov, se = covered / trials, math.sqrt(level * (1 - level) / trials)
    assert level - 3 * se <= cov <= level + 1 / (n + 1) + 3 * se
    # without the correction (the plain empirical quantile) it under-covers on the same draws' distribution
    assert R.conformal_quantile(np.arange(1.0, 20.0), level).item() == 16.0  # ceil(20 * 0.8) = 16 > 0.8 * 19


# ----------------------------------------------------------------- temperature
def test_temperature_minimises_validation_nll_against_a_brute_force_grid() -> None:
    rng = np.random.default_rng(5)
    n, c = 400, 4
    logits = 4 * rng.normal(size=(n, c))  # confident
    p_true = torch.softmax(torch.tensor(logits / 3.0), dim=1).numpy()  # the truth is much softer
    y = np.array([rng.choice(c, p=row) for row in p_true])
    probs = torch.softmax(torch.tensor(logits), dim=1).numpy()
    t = R.fit_temperature(y, probs)
    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 4001))
    # torch's cross-entropy of logits/T is the oracle: log(softmax(z)) / T then softmax == softmax(z / T)
    z = torch.tensor(logits)[None] / torch.tensor(grid)[:, None, None]  # [G, N, C], one batched oracle call
    nll = torch.nn.functional.cross_entropy(z.permute(0, 2, 1), torch.tensor(y)[None].expand(len(grid), -1),
                                            reduction="none").mean(1).numpy()
    assert abs(math.log(t) - math.log(grid[int(np.argmin(nll))])) <= np.log(grid[1] / grid[0])
    ours = metrics.categorical_nll(y, R.apply_temperature(probs, t))
    assert ours <= min(nll) + 1e-9
    assert 2.0 < t < 4.5
    np.testing.assert_array_equal(R.apply_temperature(probs, t).argmax(1), probs.argmax(1))  # accuracy unchanged


def test_apply_temperature_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match="temperature"):
        R.apply_temperature(np.full((2, 2), 0.5), 0.0)


# -------------------------------------------------------- fit / score / json
def test_fit_and_score_regression_end_to_end_and_json_round_trip() -> None:
    rng = np.random.default_rng(6)
    n = 600
    base = rng.normal(size=n)
    mm = base + 0.05 * rng.normal(size=(3, n))
    mv = np.full((3, n), 0.05)
    y = mm.mean(0) + rng.normal(size=n)  # the members claim sd ~0.23; the truth is 1: over-confident
    val, test = slice(0, 300), slice(300, None)
    pv = combine_regression(mm[:, val], mv[:, val], [0, 1, 2])
    pt = combine_regression(mm[:, test], mv[:, test], [0, 1, 2])
    recal = R.fit(pv, y[val])
    s = R.score(recal, pt, y[test])
    yt, mean, var = y[test], pt.mean, pt.total
    # "before" agrees with the metrics module on the same Gaussian
    assert s["before"]["miscalibration_area"] == pytest.approx(metrics.miscalibration_area(yt, mean, var), abs=1e-12)
    assert s["before"]["nll"] == pytest.approx(metrics.gaussian_nll(yt, mean, var), rel=1e-12)
    assert s["before"]["sharpness"] == pytest.approx(metrics.sharpness(np.sqrt(var)), rel=1e-12)
    assert s["before"]["coverage_95"] == pytest.approx(metrics.interval_coverage(yt, mean, var, 0.95), abs=1e-12)
    assert s["variance"]["sharpness"] == pytest.approx(recal.std_ratio * s["before"]["sharpness"], rel=1e-12)
    for name in ("variance", "isotonic", "conformal"):
        assert s[name]["miscalibration_area"] < s["before"]["miscalibration_area"] / 2
    assert s["variance"]["nll"] < s["before"]["nll"]
    back = R.Recalibration.from_dict(json.loads(json.dumps(recal.to_dict(), allow_nan=False)))
    assert back == recal


def test_fit_and_score_classification() -> None:
    rng = np.random.default_rng(7)
    logits = 5 * rng.normal(size=(2, 500, 3))
    member = torch.softmax(torch.tensor(logits), dim=-1).numpy()
    y = rng.integers(0, 3, size=500)  # labels unrelated to the confident members: T must grow
    pv, pt = combine_classification(member[:, :250]), combine_classification(member[:, 250:])
    recal = R.fit(pv, y[:250])
    s = R.score(recal, pt, y[250:])
    assert recal.temperature > 3
    assert s["temperature"]["nll"] < s["before"]["nll"]
    assert s["temperature"]["accuracy"] == s["before"]["accuracy"]
    assert s["before"]["ece"] == pytest.approx(metrics.ece(y[250:], pt.probs))
    assert R.Recalibration.from_dict(json.loads(json.dumps(recal.to_dict()))) == recal


@pytest.mark.parametrize("bad", [None, {"format": "x"}, {"format": "deep-ensemble-lab/recalibration-1",
                                                            "task": "classification", "n_val": 3,
                                                            "temperature": -1}])
def test_from_dict_refuses_what_it_did_not_write(bad: object) -> None:
    with pytest.raises(ValueError, match="recalibration"):
        R.Recalibration.from_dict(bad)
