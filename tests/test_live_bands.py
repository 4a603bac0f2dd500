"""The live prediction of a run (regression bands, a class map): a spec patched per refresh equals the figure built."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from dashboard import live_plot
from dashboard.charts import figure, preview_grid
from dashboard.live_specs import bands_spec, class_map_spec
from ensemble_core.data import load_dataset
from ensemble_core.predict import ClassificationPrediction, RegressionPrediction


@pytest.fixture(scope="module")
def data():
    from dashboard import state

    ds = load_dataset(state.default_config().data)
    return ds, preview_grid(ds)


def _prediction(n: int, members: int, seed: int, scale: float = 1.0) -> RegressionPrediction:
    rng = np.random.default_rng(seed)
    mm, mv = scale * rng.normal(size=(members, n)), scale * rng.random((members, n)) + 0.01
    alea, epi = mv.mean(0), mm.var(0)
    return RegressionPrediction(mm.mean(0), alea, epi, alea + epi, mm, mv, list(range(members)))


def _built(ds, grid, p) -> dict:
    """What the live view drew before: the compact bands figure, built, as a spec."""
    return live_plot.to_spec(figure("bands_figure", ds, grid, p, compact=True).update_layout(uirevision="train_preview"))


@pytest.mark.parametrize("members", [5, 45])  # an ensemble's member lines; an MC-dropout run's passes (not drawn)
def test_a_patched_live_prediction_equals_the_built_figure(data, members):
    ds, grid = data
    n = len(np.asarray(grid))
    one, two = _prediction(n, members, 1), _prediction(n, members, 2, scale=80.0)  # wider than the data: another y range
    base = _built(ds, grid, one)
    pristine = copy.deepcopy(base)
    for p, other in ((two, one), (one, two)):
        fresh, patched = _built(ds, grid, p), bands_spec(_built(ds, grid, other), ds, grid, p)
        assert patched == fresh
    assert bands_spec(base, ds, grid, two) == _built(ds, grid, two)
    assert base == pristine  # the base is copied, never changed
    # the comparison can fail: the two predictions differ in every array the patch replaces, and the axis range
    fresh = _built(ds, grid, two)
    changed = [t["name"] for t, u in zip(base["data"], fresh["data"]) if t != u]
    assert {"Total ±2σ", "Aleatoric ±2σ", "Epistemic ±2σ", "Ensemble mean"} <= set(changed)
    assert (members <= 40) == ({f"Member {i + 1}" for i in range(members)} <= set(changed))
    assert base["layout"]["yaxis"]["range"] != fresh["layout"]["yaxis"]["range"]


def test_a_live_prediction_that_does_not_fit_its_base_is_built(data):
    ds, grid = data
    n = len(np.asarray(grid))
    base = _built(ds, grid, _prediction(n, 5, 1))
    assert bands_spec(base, ds, grid, _prediction(n, 4, 2)) is None  # a member fewer (another trace set)
    other = _prediction(n, 5, 2)
    other.members[:] = [0, 1, 2, 3, 5]
    assert bands_spec(base, ds, grid, other) is None  # other members
    bad = _prediction(n, 5, 3)
    bad.mean[7] = np.nan
    assert bands_spec(base, ds, grid, bad) is None  # a diverged member's NaN: the built figure shows it as it can


@pytest.fixture(scope="module")
def moons():
    from dashboard import state

    ds = load_dataset(state.default_config().replace(**{"data.name": "moons"}).data)
    return ds, preview_grid(ds)


def _classes(n: int, seed: int, sharp: float) -> ClassificationPrediction:
    rng = np.random.default_rng(seed)
    member = rng.dirichlet([sharp, sharp], size=(5, n))
    probs = member.mean(0)
    return ClassificationPrediction(probs, rng.random(n), rng.random(n), rng.random(n), member, list(range(5)))


def _map(ds, grid, p) -> dict:
    return live_plot.to_spec(figure("class_maps", ds, grid, p, compact=True).update_layout(uirevision="train_preview"))


def test_a_patched_class_map_equals_the_built_figure(moons):
    ds, grid = moons
    n = len(grid.x)
    one, two = _classes(n, 1, 0.3), _classes(n, 2, 3.0)
    base = _map(ds, grid, one)
    pristine = copy.deepcopy(base)
    assert class_map_spec(base, grid, two) == _map(ds, grid, two)
    assert class_map_spec(_map(ds, grid, two), grid, one) == base
    assert base == pristine
    fresh = _map(ds, grid, two)  # the comparison can fail: the map's colours and hover values differ
    assert base["data"][0]["z"] != fresh["data"][0]["z"]
    assert base["data"][0]["customdata"] != fresh["data"][0]["customdata"]
    bad = _classes(n, 3, 1.0)
    bad.probs[4, 0] = np.nan
    assert class_map_spec(base, grid, bad) is None
    assert class_map_spec(base, grid.x, two) is None  # not the preview's Grid: built
