"""AppTest for pages/uncertainty.py: the empty state, and each case on a tiny real run.

The page script is run directly with session state prepared as the Train
page leaves it (``run`` + ``run_dataset``); figures are read back from each
chart element's ``proto.spec`` JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from ensemble_core.config import RunConfig  # noqa: E402
from ensemble_core.data import Dataset  # noqa: E402

training = pytest.importorskip("ensemble_core.training")

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "uncertainty.py")


def _train(cfg: RunConfig, ds: Dataset):
    try:
        return training.train(cfg, ds)
    except NotImplementedError:
        pytest.skip("ensemble_core.training.train is not implemented yet")


def _cubic(n_train: int = 24, n_val: int = 8, n_test: int = 16, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    n = n_train + n_val + n_test
    x = rng.uniform(-4, 4, size=(n, 1))
    y = x[:, 0] ** 3 + rng.normal(0, 3, size=n)
    a, b = n_train, n_train + n_val
    return Dataset("cubic", "regression", ["x"], "y", x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:],
                   x[:a].mean(0), x[:a].std(0), float(y[:a].mean()), float(y[:a].std()),
                   true_fn=lambda v: v**3, plot_range=(-6.0, 6.0))


def _blobs(d: int, n: int = 60, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int64)
    x = rng.normal(size=(n, d)) + 2.0 * y[:, None]
    a, b = 36, 48
    return Dataset("blobs", "classification", [f"x{i + 1}" for i in range(d)], "class", x[:a], y[:a], x[a:b],
                   y[a:b], x[b:], y[b:], x[:a].mean(0), x[:a].std(0), class_names=["A", "B"])


def _regression_md(d: int = 3, n: int = 60, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = x @ np.arange(1.0, d + 1) + rng.normal(0, 0.5, n)
    a, b = 36, 48
    return Dataset("linear", "regression", [f"f{i + 1}" for i in range(d)], "target", x[:a], y[:a], x[a:b], y[a:b],
                   x[b:], y[b:], x[:a].mean(0), x[:a].std(0), float(y[:a].mean()), float(y[:a].std()))


def _cfg(members: int, task: str) -> RunConfig:
    name = "cubic" if task == "regression" else "moons"
    return RunConfig().replace(**{"data.name": name, "strategy.members": members, "optim.epochs": 4,
                                  "optim.batch_size": 16, "model.width": 16})


@pytest.fixture(scope="module")
def cubic_run():
    ds = _cubic()
    return _train(_cfg(3, "regression"), ds), ds


def _page(run=None, ds=None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    if run is not None:
        at.session_state["run"] = run
        at.session_state["run_dataset"] = ds
    return at.run()


def _figs(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def _names(fig: dict) -> list[str]:
    return [t.get("name") for t in fig["data"]]


def _fig_with(at: AppTest, trace_name: str) -> dict:
    hits = [f for f in _figs(at) if trace_name in _names(f)]
    assert hits, f"no chart has a trace {trace_name!r}"
    return hits[0]


def test_empty_state_says_go_to_train():
    at = _page()
    assert not at.exception
    assert any("No run yet" in el.value and "Train" in el.value for el in at.info)
    assert not at.get("plotly_chart")


def test_bands_chart_has_mean_aleatoric_epistemic_and_every_member(cubic_run):
    at = _page(*cubic_run)
    assert not at.exception, at.exception
    bands = _fig_with(at, "Ensemble mean")
    names = _names(bands)
    for required in ("Total ±2σ", "Aleatoric ±2σ", "Epistemic ±2σ", "Training data", "True function"):
        assert required in names
    assert [n for n in names if n and n.startswith("Member ") and "means" not in n] == ["Member 1", "Member 2",
                                                                                        "Member 3"]
    # every chart has a stable key and keeps zoom across reruns
    keys = [el.proto.id for el in at.get("plotly_chart")]
    assert all("unc_" in k for k in keys)
    assert all(f["layout"].get("uirevision") is not None for f in _figs(at))


def test_toggles_hide_the_split_and_the_members(cubic_run):
    at = _page(*cubic_run)
    at.toggle(key="unc_split").set_value(False)
    at.toggle(key="unc_members").set_value(False).run()
    assert not at.exception
    names = _names(_fig_with(at, "Ensemble mean"))
    assert "Total ±2σ" in names and "Aleatoric ±2σ" not in names and "Epistemic ±2σ" not in names
    assert not [n for n in names if n and n.startswith("Member")]


def test_size_slider_changes_the_member_count(cubic_run):
    at = _page(*cubic_run)
    assert at.slider(key="unc_m").value == 3
    at.slider(key="unc_m").set_value(2).run()
    assert not at.exception
    names = _names(_fig_with(at, "Ensemble mean"))
    assert [n for n in names if n and n.startswith("Member ") and "means" not in n] == ["Member 1", "Member 2"]
    size = _fig_with(at, "Ensemble of first M")
    assert _names(size).count("M = 2 (slider)") == 1
    assert [t["x"] for t in size["data"] if t["name"] == "Ensemble of first M"][0] == [1, 2, 3]


def test_calibration_table_and_size_curve_for_regression(cubic_run):
    at = _page(*cubic_run)
    cal = _fig_with(at, "Perfect calibration")
    assert any(n.startswith("Miscalibration area") for n in _names(cal))
    assert _fig_with(at, "Observed coverage")
    df = next(t.value for t in at.table if "Ensemble" in list(t.value.index))  # the members table
    assert list(df.index) == ["Member 1", "Member 2", "Member 3", "Ensemble"]
    assert {"NLL", "RMSE", "CRPS"} <= set(df.columns)


def test_stale_slider_value_is_clamped_for_a_smaller_run(cubic_run):
    run, ds = cubic_run
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["run"], at.session_state["run_dataset"], at.session_state["unc_m"] = run, ds, 9
    at.run()
    assert not at.exception and at.slider(key="unc_m").value == 3


def test_two_feature_classification_shows_maps_and_reliability():
    ds = _blobs(2)
    run = _train(_cfg(2, "classification"), ds)
    at = _page(run, ds)
    assert not at.exception, at.exception
    maps = [f for f in _figs(at) if any(t.get("type") == "heatmap" for t in f["data"])]
    assert len(maps) == 1 and sum(t.get("type") == "heatmap" for t in maps[0]["data"]) == 2
    rel = _fig_with(at, "Accuracy in bin")
    assert "ECE" in rel["layout"]["title"]["text"]
    members = next(t.value for t in at.table if "Ensemble" in list(t.value.index))
    assert {"NLL", "Accuracy", "Brier", "ECE"} <= set(members.columns)


def test_more_features_regression_shows_intervals_and_slice_selector():
    ds = _regression_md()
    run = _train(_cfg(2, "regression"), ds)
    at = _page(run, ds)
    assert not at.exception, at.exception
    for name in ("Perfect prediction", "Predicted ±2σ interval", "Expected if calibrated (0.8σ)"):
        assert _fig_with(at, name)
    at.selectbox(key="unc_slice_feature").set_value(2).run()
    assert not at.exception
    sl = [el for el in at.get("plotly_chart") if "unc_slice" in el.proto.id][0]
    assert json.loads(sl.proto.spec)["layout"]["xaxis"]["title"]["text"] == "f3"


def test_more_features_classification_shows_mistakes_views_and_probability_slice():
    ds = _blobs(3)
    run = _train(_cfg(2, "classification"), ds)
    at = _page(run, ds)
    assert not at.exception, at.exception
    assert _fig_with(at, "Keep the most certain first")
    assert any(n.startswith("Correct") for f in _figs(at) for n in _names(f) if n)
    at.selectbox(key="unc_slice_feature").set_value(1).run()
    sl = _fig_with(at, "Mutual information (right axis)")
    assert "P(A)" in _names(sl) and "P(B)" in _names(sl)
    assert sl["layout"]["xaxis"]["title"]["text"] == "x2"
