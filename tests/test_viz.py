"""Tests for ensemble_core.viz: every builder on small hand-made inputs.

Figures are checked through their JSON-able dict (what Streamlit ships to the
browser): trace names and counts, the y values of the bands, colours,
``uirevision`` and the registered template.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from ensemble_core import viz
from ensemble_core.data import Dataset
from ensemble_core.predict import combine_classification, combine_regression
from ensemble_core.run import EpochEnd, MemberDiverged, SnapshotTaken

OKABE_ITO = {"#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"}


# ------------------------------------------------------------------ fixtures
def _regression_1d(gaps: list[tuple[float, float]] | None = None) -> Dataset:
    x = np.array([-3.0, -2.0, -1.0, 1.5, 2.0, 3.0])[:, None]
    f = lambda v: np.asarray(v) ** 3  # noqa: E731
    y = f(x[:, 0]) + np.array([0.5, -0.5, 0.2, -0.1, 0.3, -0.4])
    return Dataset("toy", "regression", ["x"], "y", x, y, x[:2], y[:2], x[2:4], y[2:4], np.zeros(1), np.ones(1),
                   true_fn=f, gaps=gaps or [], plot_range=(-5.0, 5.0))


def _classification_2d() -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 2))
    y = (x[:, 0] > 0).astype(np.int64)
    return Dataset("blobs", "classification", ["x1", "x2"], "label", x, y, x[:5], y[:5], x[5:10], y[5:10],
                   np.zeros(2), np.ones(2), class_names=["left", "right"])


def _regression_pred(n: int, m: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(m, n))
    varis = rng.uniform(0.5, 2.0, size=(m, n))
    return combine_regression(means, varis)


def _events(k: int, done: int, n_epochs: int = 10, diverge: int | None = None, at: int = 3) -> list:
    out: list = []
    for e in range(1, done + 1):
        loss = [1.0 / e + j for j in range(k)]
        if diverge is not None and e >= at:
            loss[diverge] = float("nan")
        out.append(EpochEnd(e, n_epochs, loss, [0.5 + 0.01 * e] * k, {"nll": 2.0 / e, "rmse": 3.0 / e}, [0.01], 0.1 * e))
        if diverge is not None and e == at:
            out.append(MemberDiverged(diverge, e, "loss is nan"))
    return out


def _spec(fig: go.Figure) -> dict:
    return fig.to_plotly_json()


def _names(fig: go.Figure) -> list[str]:
    return [t.name for t in fig.data]


def _trace(fig: go.Figure, name: str):
    hits = [t for t in fig.data if t.name == name]
    assert len(hits) == 1, f"expected one trace named {name!r}, got {_names(fig)}"
    return hits[0]


# ------------------------------------------------------------------- palette
def test_palette_is_okabe_ito_first_then_forty_distinct_colours():
    assert set(viz.PALETTE[:7]) == OKABE_ITO
    assert len(viz.PALETTE) >= 40
    assert len(set(c.upper() for c in viz.PALETTE)) == len(viz.PALETTE)
    assert all(re.fullmatch(r"#[0-9A-Fa-f]{6}", c) for c in viz.PALETTE)
    assert viz.member_color(0) == viz.PALETTE[0]
    assert viz.member_color(len(viz.PALETTE)) == viz.PALETTE[0]
    assert viz.member_color(39) == viz.PALETTE[39]


def test_band_colours_are_distinct_and_template_is_registered():
    assert len({viz.ALEATORIC_COLOR, viz.EPISTEMIC_COLOR, viz.TOTAL_COLOR, viz.ENSEMBLE_COLOR}) == 4
    assert viz.TEMPLATE in pio.templates
    assert pio.templates[viz.TEMPLATE].layout.font.size >= 16


@functools.cache
def _all_figures() -> dict[str, go.Figure]:
    ds = _regression_1d()
    grid = viz.input_grid(ds, n=40)
    pred = _regression_pred(40)
    dc = _classification_2d()
    gc = viz.input_grid(dc, n=12)
    cpred = combine_classification(np.random.default_rng(1).dirichlet([1, 1], size=(3, 144)))
    y = np.random.default_rng(2).normal(size=40)
    ycls = np.random.default_rng(3).integers(0, 2, 144)
    return {
        "loss": viz.loss_figure(_events(3, 4), 10),
        "val": viz.val_figure(_events(3, 4), 10, "regression"),
        "lr": viz.lr_figure(np.linspace(1, 0, 20), steps_per_epoch=4),
        "data1": viz.data_figure(ds),
        "data2": viz.data_figure(dc),
        "bands": viz.bands_figure(ds, grid, pred),
        "maps": viz.class_maps(dc, gc, cpred),
        "pva": viz.pred_vs_actual(y, pred),
        "intervals": viz.intervals_by_uncertainty(y, pred),
        "err": viz.error_vs_uncertainty(y, pred),
        "reject": viz.rejection_figure(y, pred),
        "entropy": viz.entropy_by_correctness(ycls, cpred),
        "reliability": viz.reliability_figure([0.55, np.nan], [0.5, np.nan], [4, 0], 0.05),
        "calibration": viz.calibration_figure([0, 0.5, 1], [0, 0.4, 1], 0.05),
        "coverage": viz.coverage_figure([0.5, 0.9], [0.45, 0.88]),
        "size": viz.size_curve_figure([1, 2, 3], [1.0, 0.8, 0.7]),
    }


FIGURES = ("loss", "val", "lr", "data1", "data2", "bands", "maps", "pva", "intervals", "err", "reject", "entropy",
           "reliability", "calibration", "coverage", "size")


def test_the_figure_list_is_complete():
    assert set(_all_figures()) == set(FIGURES)


@pytest.mark.parametrize("name", FIGURES)
def test_every_builder_applies_the_template_and_sets_uirevision(name):
    fig = _all_figures()[name]
    assert fig.layout.uirevision is not None
    # the template was applied: its font family is the figure's
    assert fig.layout.template.layout.font.family == pio.templates[viz.TEMPLATE].layout.font.family
    fig.to_json()  # serialisable (no NaN-in-list surprises for Streamlit)


def test_uirevision_can_be_chosen():
    assert viz.loss_figure([], 5, uirevision="run-7").layout.uirevision == "run-7"


# --------------------------------------------------------------- live charts
def test_loss_figure_one_trace_per_member_one_point_per_epoch_done():
    for done in (1, 4):
        fig = viz.loss_figure(_events(3, done), 10)
        assert _names(fig) == ["Member 1", "Member 2", "Member 3"]
        for j, t in enumerate(fig.data):
            assert list(t.x) == list(range(1, done + 1))
            assert t.y[-1] == pytest.approx(1.0 / done + j)
            assert t.line.color == viz.member_color(j)
    assert tuple(fig.layout.xaxis.range)[0] <= 1 and tuple(fig.layout.xaxis.range)[1] >= 10
    assert fig.layout.xaxis.autorange is False


def test_loss_figure_ignores_other_events_and_draws_empty_traces_before_epoch_one():
    ev = _events(2, 3) + [SnapshotTaken(0, 0, 3, 12)]
    assert [len(t.x) for t in viz.loss_figure(ev, 5).data] == [3, 3]
    empty = viz.loss_figure([], 5, n_members=4)
    assert _names(empty) == [f"Member {i}" for i in range(1, 5)]
    assert all(len(t.x) == 0 for t in empty.data)


def test_loss_figure_marks_diverged_member_and_keeps_its_points():
    fig = viz.loss_figure(_events(3, 5, diverge=1, at=3), 10)
    assert _names(fig) == ["Member 1", "Member 2 (diverged)", "Member 3"]
    bad = fig.data[1]
    assert bad.line.dash == "dash"
    assert len(bad.x) == 5 and bad.y[2] is None and bad.y[1] == pytest.approx(0.5 + 1)
    assert fig.data[0].line.dash == "solid"


def test_loss_figure_accuracy_metric_reads_train_acc():
    fig = viz.loss_figure(_events(2, 3), 10, metric="accuracy")
    assert list(fig.data[0].y) == pytest.approx([0.51, 0.52, 0.53])
    with pytest.raises(ValueError, match="metric"):
        viz.loss_figure([], 3, metric="nll")


def test_val_figure_plots_nll_and_second_metric():
    fig = viz.val_figure(_events(2, 4), 10, "regression")
    nll, rmse = fig.data
    assert list(nll.y) == pytest.approx([2.0, 1.0, 2 / 3, 0.5])
    assert list(rmse.y) == pytest.approx([3.0, 1.5, 1.0, 0.75])
    assert "RMSE" in rmse.name
    cls = viz.val_figure([EpochEnd(1, 3, [0.1], [0.9], {"nll": 0.3, "accuracy": 0.9}, [0.1], 1.0)], 3, "classification")
    assert list(cls.data[1].y) == [0.9] and "accuracy" in cls.data[1].name


def test_lr_figure_x_in_epochs_and_snapshots_split_by_now():
    lrs = np.linspace(1.0, 0.1, 12)
    fig = viz.lr_figure(lrs, steps_per_epoch=3, snapshot_steps=[2, 5, 11], now_step=6)
    line = _trace(fig, "Learning rate")
    assert list(line.x) == pytest.approx((np.arange(12) + 1) / 3)
    assert list(line.y) == pytest.approx(lrs)
    taken, planned = _trace(fig, "Snapshot taken"), _trace(fig, "Snapshot (planned)")
    assert list(taken.x) == pytest.approx([1.0, 2.0]) and list(planned.x) == pytest.approx([4.0])
    assert any(s.type == "line" and s.x0 == pytest.approx(7 / 3) for s in fig.layout.shapes)
    assert not viz.lr_figure(lrs, steps_per_epoch=3).layout.shapes  # no "now" before training
    with pytest.raises(ValueError):
        viz.lr_figure(lrs, steps_per_epoch=0)
    # without snapshots there is one line and no legend, so no band is kept free above the plot for one
    plain = viz.lr_figure(lrs, steps_per_epoch=3)
    assert plain.layout.showlegend is False and plain.layout.margin.t == 30
    assert fig.layout.showlegend is not False and fig.layout.margin.t != 30  # snapshots keep their legend


# --------------------------------------------------------------------- grids
def test_input_grid_1d_uses_plot_range_2d_meshgrid_and_more_features_raise():
    g = viz.input_grid(_regression_1d(), n=50)
    assert g.x.shape == (50, 1) and g.x[0, 0] == -5.0 and g.x[-1, 0] == 5.0
    assert np.asarray(g).shape == (50, 1)
    dc = _classification_2d()
    g2 = viz.input_grid(dc, n=10)
    assert g2.x.shape == (100, 2) and g2.shape == (10, 10)
    assert g2.x[:10, 1].tolist() == [g2.ys[0]] * 10 and g2.x[:10, 0].tolist() == pytest.approx(g2.xs)
    assert g2.xs[0] < dc.x_train[:, 0].min() and g2.xs[-1] > dc.x_train[:, 0].max()
    d3 = Dataset("d3", "regression", list("abc"), "y", np.eye(3), np.arange(3.0), np.eye(3), np.arange(3.0),
                 np.eye(3), np.arange(3.0), np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="slice"):
        viz.input_grid(d3)
    s = viz.slice_grid(d3, 1, n=7)
    assert s.x.shape == (7, 3) and np.all(s.x[:, 0] == 0.0) and np.all(np.diff(s.x[:, 1]) > 0)


# --------------------------------------------------------------------- bands
def test_bands_figure_traces_and_band_widths_are_two_sigma_of_each_variance():
    ds = _regression_1d()
    g = viz.input_grid(ds, n=30)
    pred = _regression_pred(30, m=4)
    fig = viz.bands_figure(ds, g, pred)
    names = _names(fig)
    for required in ("Ensemble mean", "Total ±2σ", "Aleatoric ±2σ", "Epistemic ±2σ", "True function", "Training data"):
        assert required in names
    assert [n for n in names if n.startswith("Member ") and "means" not in n] == [f"Member {i}" for i in range(1, 5)]
    assert list(_trace(fig, "Ensemble mean").y) == pytest.approx(pred.mean)
    for name, var in (("Total ±2σ", pred.total), ("Aleatoric ±2σ", pred.aleatoric), ("Epistemic ±2σ", pred.epistemic)):
        y = np.asarray(_trace(fig, name).y)
        upper, lower = y[:30], y[30:][::-1]
        assert upper - lower == pytest.approx(4 * np.sqrt(var)), name
        assert (upper + lower) / 2 == pytest.approx(pred.mean), name
    assert list(_trace(fig, "Member 3").y) == pytest.approx(pred.member_means[2])


def test_bands_figure_toggles_and_compact():
    ds = _regression_1d()
    g = viz.input_grid(ds, n=20)
    pred = _regression_pred(20)
    plain = viz.bands_figure(ds, g, pred, split=False, members=False)
    assert "Aleatoric ±2σ" not in _names(plain) and "Epistemic ±2σ" not in _names(plain)
    assert not any(n.startswith("Member") for n in _names(plain))
    assert "Total ±2σ" in _names(plain) and "Ensemble mean" in _names(plain)
    small = viz.bands_figure(ds, g, pred, compact=True)
    assert small.layout.showlegend is False and small.layout.height < viz.bands_figure(ds, g, pred).layout.height


def test_bands_figure_shades_outside_training_range_and_gaps():
    ds = _regression_1d(gaps=[(-0.5, 1.0)])
    fig = viz.bands_figure(ds, viz.input_grid(ds, n=20), _regression_pred(20))
    rects = sorted((s.x0, s.x1) for s in fig.layout.shapes if s.type == "rect")
    assert rects == [(-5.0, -3.0), (-0.5, 1.0), (3.0, 5.0)]
    assert "No training data" in _names(fig)


def test_member_colour_is_the_same_on_loss_and_bands_charts():
    ds = _regression_1d()
    bands = viz.bands_figure(ds, viz.input_grid(ds, n=10), _regression_pred(10, m=3))
    loss = viz.loss_figure(_events(3, 2), 5)
    for i in range(1, 4):
        assert _trace(bands, f"Member {i}").line.color == _trace(loss, f"Member {i}").line.color == viz.member_color(i - 1)


def test_bands_figure_member_subset_keeps_member_identity():
    ds = _regression_1d()
    full = _regression_pred(10, m=4)
    sub = combine_regression(full.member_means[[1, 3]], full.member_vars[[1, 3]], members=[1, 3])
    fig = viz.bands_figure(ds, viz.input_grid(ds, n=10), sub)
    assert _trace(fig, "Member 4").line.color == viz.member_color(3)
    assert "Member 1" not in _names(fig)


# ---------------------------------------------------------------------- maps
def test_class_maps_three_panels_with_entropy_and_mutual_information():
    dc = _classification_2d()
    g = viz.input_grid(dc, n=8)
    pred = combine_classification(np.random.default_rng(0).dirichlet([1, 1], size=(3, 64)))
    fig = viz.class_maps(dc, g, pred)
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 2
    assert np.asarray(heat[0].z) == pytest.approx(pred.total.reshape(8, 8))
    assert np.asarray(heat[1].z) == pytest.approx(pred.epistemic.reshape(8, 8))
    assert sum(t.type == "image" for t in fig.data) == 1
    # data overlaid on every panel, one legend entry per class
    scatters = [t for t in fig.data if t.type == "scatter"]
    assert len(scatters) == 3 * 2 and sum(bool(t.showlegend) for t in scatters) == 2
    small = viz.class_maps(dc, g, pred, compact=True)
    assert not [t for t in small.data if t.type == "heatmap"]


def test_confidence_image_is_white_at_chance_and_class_colour_when_sure():
    img = viz.confidence_image(np.array([[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]]), (1, 3))
    assert img[0, 0].tolist() == [255, 255, 255]
    assert img[0, 1].tolist() != img[0, 2].tolist()


# --------------------------------------------------------------- more feats
def test_pred_vs_actual_splits_inside_outside_two_sigma():
    pred = combine_regression(np.array([[0.0, 0.0, 0.0]]), np.array([[1.0, 1.0, 1.0]]))
    fig = viz.pred_vs_actual(np.array([0.5, 3.0, -1.9]), pred)
    inside = [t for t in fig.data if t.name.startswith("Inside")][0]
    outside = [t for t in fig.data if t.name.startswith("Outside")][0]
    assert list(inside.x) == [0.5, -1.9] and list(outside.x) == [3.0]
    assert list(inside.error_y.array) == pytest.approx([2.0, 2.0])


def test_intervals_by_uncertainty_orders_by_sigma_and_reports_share():
    pred = combine_regression(np.array([[0.0, 0.0, 0.0]]), np.array([[4.0, 1.0, 9.0]]))
    fig = viz.intervals_by_uncertainty(np.array([1.0, 5.0, 1.0]), pred)
    band = np.asarray(_trace(fig, "Predicted ±2σ interval").y)
    assert band[:3] == pytest.approx([2.0, 4.0, 6.0])  # sigma 1, 2, 3 in rank order
    assert "67%" in fig.layout.title.text


def test_error_vs_uncertainty_and_rejection_curve():
    pred = combine_regression(np.zeros((1, 4)), np.array([[1.0, 4.0, 9.0, 16.0]]))
    y = np.array([1.0, -2.0, 3.0, 4.0])
    err = viz.error_vs_uncertainty(y, pred)
    assert list(err.data[0].x) == pytest.approx([1, 2, 3, 4]) and list(err.data[0].y) == pytest.approx([1, 2, 3, 4])
    rej = viz.rejection_figure(y, pred)
    assert rej.data[0].y[0] == pytest.approx(1.0) and rej.data[0].y[-1] == pytest.approx(np.sqrt(np.mean(y**2)))


# -------------------------------------------------------------- calibration
def test_reliability_figure_skips_empty_bins_and_shows_ece():
    fig = viz.reliability_figure([0.3, np.nan, 0.9], [0.25, np.nan, 0.8], [5, 0, 10], 0.0812, bin_edges=[0, 0.5, 0.75, 1])
    acc = _trace(fig, "Accuracy in bin")
    assert list(acc.x) == pytest.approx([0.25, 0.875]) and list(acc.y) == pytest.approx([0.25, 0.8])
    assert "0.081" in fig.layout.title.text


def test_calibration_figure_shades_area_between_curve_and_diagonal():
    fig = viz.calibration_figure([0.0, 0.5, 1.0], [0.0, 0.3, 1.0], 0.1)
    area = fig.data[0]
    assert area.fill == "toself" and "0.100" in area.name
    assert list(area.y) == pytest.approx([0.0, 0.3, 1.0, 1.0, 0.5, 0.0])


def test_coverage_and_size_curve():
    cov = viz.coverage_figure([0.5, 0.95], [0.4, 0.9])
    assert list(cov.data[0].y) == pytest.approx([0.4, 0.9]) and list(cov.data[1].y) == pytest.approx([0.5, 0.95])
    fig = viz.size_curve_figure([1, 2, 3], [2.0, 1.5, 1.4], member_values=[2.0, 2.4, 2.2], current=2)
    assert list(_trace(fig, "Ensemble of first M").y) == [2.0, 1.5, 1.4]
    assert list(_trace(fig, "M = 2 (slider)").y) == [1.5]
    assert list(_trace(fig, "Each member alone").marker.color) == [viz.member_color(i) for i in range(3)]


def test_members_vs_ensemble_style_highlights_ensemble_row():
    df = pd.DataFrame({"NLL": [1.2, 1.0, 0.8], "Accuracy": [0.8, 0.85, 0.9]},
                      index=["Member 1", "Member 2", "Ensemble"])
    html = viz.members_vs_ensemble_style(df).to_html()
    ctx = viz.members_vs_ensemble_style(df)._compute().ctx
    assert any("font-weight" in p for p, _ in ctx[(2, 0)])
    assert not any("font-weight" in p for p, _ in ctx.get((0, 0), []))
    assert ("color", "#0060A0") in ctx[(2, 0)] and ("color", "#0060A0") not in ctx.get((0, 0), [])  # best NLL
    assert "underline" in html and "90.0%" in html  # accuracy as a percentage


def test_data_figure_views():
    ds = _regression_1d()
    f1 = viz.data_figure(ds)
    assert "True function" in _names(f1) and any(n.startswith("Train") for n in _names(f1))
    dc = _classification_2d()
    f2 = viz.data_figure(dc)
    assert {t.marker.color for t in f2.data} == {viz.class_color(0), viz.class_color(1)}
    d3 = Dataset("d3", "classification", list("abc"), "y", np.random.default_rng(0).normal(size=(20, 3)),
                 np.arange(20) % 2, np.zeros((0, 3)), np.zeros(0), np.zeros((0, 3)), np.zeros(0), np.zeros(3),
                 np.ones(3), class_names=["a", "b"])
    f3 = viz.data_figure(d3)
    assert sum(t.type == "histogram" for t in f3.data) == 3 * 2


def test_prob_slice_figure_lines_are_ensemble_probs_and_bands_span_members():
    dc = _classification_2d()
    g = viz.slice_grid(dc, 1, n=9)
    mp = np.random.default_rng(4).dirichlet([1, 1], size=(3, 9))
    pred = combine_classification(mp)
    fig = viz.prob_slice_figure(dc, g, pred, feature=1)
    assert list(_trace(fig, "P(right)").y) == pytest.approx(pred.probs[:, 1])
    band = np.asarray(_trace(fig, "right: member range").y)
    assert band[:9] == pytest.approx(mp[:, :, 1].max(0)) and band[9:][::-1] == pytest.approx(mp[:, :, 1].min(0))
    assert list(_trace(fig, "Mutual information (right axis)").y) == pytest.approx(pred.epistemic)
    assert fig.layout.xaxis.title.text == "x2"
