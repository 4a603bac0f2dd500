"""Loss/validation charts (issue 18 part 6): units on the axes, spikes never flatten a chart, best epochs."""

from __future__ import annotations

import numpy as np

from ensemble_core import viz
from ensemble_core.run import EpochEnd


def _events(losses: list[list[float]], vals: list[float] | None = None) -> list[EpochEnd]:
    n = len(losses)
    return [EpochEnd(epoch=i + 1, n_epochs=n, train_loss=row, train_acc=None,
                     val={"nll": vals[i], "rmse": 1.0} if vals else {}, lrs=[0.1], elapsed=0.0)
            for i, row in enumerate(losses)]


def test_robust_range_leaves_ordinary_curves_alone() -> None:
    falling = np.linspace(2.0, -1.2, 60)  # a high first epoch is not a spike
    assert viz.robust_range(falling) is None
    assert viz.robust_range([1.0, 2.0]) is None  # too few points to judge


def test_a_restart_spike_does_not_flatten_the_loss_chart() -> None:
    rng = np.random.default_rng(0)
    rows = [[float(v) for v in -1.0 + 0.3 * rng.standard_normal(3)] for _ in range(40)]
    rows[20][1] = 240.0
    fig = viz.loss_figure(_events(rows), 40)
    lo, hi = fig.layout.yaxis.range
    others = [v for r in rows for v in r if v != 240.0]
    assert lo <= min(others) and hi >= max(others)  # every ordinary point is on the chart...
    assert hi < 10  # ...and the spike does not set the scale
    notes = [a.text for a in fig.layout.annotations]
    assert any("1 spike off the scale (up to 240)" in t for t in notes)
    assert viz.loss_figure(_events(rows[:20]), 40).layout.yaxis.range is None  # no spike: autorange


def test_the_first_epochs_descent_stays_on_the_scale_and_is_not_called_a_spike() -> None:
    """An MSE run: losses from ~5 fall to ~0.001 and stay there (a tiny spread), one restart spike at epoch 300.

    The flat rule would clip the first epochs (they lie far beyond 5x the converged spread) and call
    them spikes; per curve, each member's descent before it first reached the ordinary band is kept.
    """
    epochs = np.arange(1, 401)
    rows = [[float(5.0 * np.exp(-e / 3.0) + 0.001 + 1e-4 * k) for k in range(5)] for e in epochs]
    rows[299][2] = 40.0  # a restart spike, after the curve had converged
    fig = viz.loss_figure(_events(rows), 400)
    lo, hi = fig.layout.yaxis.range
    assert hi >= max(r[0] for r in rows) and hi < 6  # the descent from the first epoch is on the chart
    notes = [a.text for a in fig.layout.annotations]
    assert notes == ["1 spike off the scale (up to 40)"], notes
    assert viz.robust_range([v for r in rows for v in r])[2] > 1  # the flat rule: the descent counted too
    rows[299][2] = 3.0  # a spike no higher than the descent is drawn: nothing is off the scale
    assert viz.series_range([[r[k] for r in rows] for k in range(5)]) is None
    assert viz.loss_figure(_events(rows), 400).layout.yaxis.range is None


def test_axis_titles_name_units() -> None:
    rows = [[1.0 / (i + 1)] for i in range(5)]
    assert viz.loss_figure(_events(rows), 5, task="regression").layout.yaxis.title.text == \
        "Training loss<br><sup>standardised — can be negative</sup>"
    assert "NLL can be negative" in viz.loss_figure(_events(rows), 5).layout.yaxis.title.text
    assert "cross-entropy, nats" in viz.loss_figure(_events(rows), 5, task="classification").layout.yaxis.title.text
    fig = viz.val_figure(_events(rows, [0.5] * 5), 5, "regression")
    assert fig.layout.yaxis.title.text == "Validation NLL (nats)"


def test_val_spike_is_clipped_in_its_panel() -> None:
    vals = [1.0 - 0.01 * i for i in range(30)]
    vals[10] = 500.0
    fig = viz.val_figure(_events([[0.0]] * 30, vals), 30, "regression")
    assert fig.layout.yaxis.range[1] < 5


def test_best_epoch_marks_and_the_rise_note() -> None:
    vals = [0.9, 0.5, 0.3, 0.6, 1.1, 1.8]
    live = viz.val_figure(_events([[0.0]] * 6, vals), 6, "regression")
    assert len(live.data) == 2  # the live chart keeps one trace per series
    fig = viz.val_figure(_events([[0.0]] * 6, vals), 6, "regression", mark_best=True, member_best=[3, 2, 4])
    star = next(t for t in fig.data if t.name.startswith("Best"))
    assert (list(star.x), list(star.y)) == ([3], [0.3])
    tri = next(t for t in fig.data if t.name == "Members' kept weights")
    assert list(tri.x) == [3, 2, 4]
    assert any("rose 1.5 nats past its best" in a.text for a in fig.layout.annotations)
    calm = viz.val_figure(_events([[0.0]] * 4, [0.9, 0.5, 0.4, 0.39]), 4, "regression", mark_best=True)
    assert not any("rose" in (a.text or "") for a in calm.layout.annotations)


def test_bands_do_not_draw_a_hundred_stochastic_passes() -> None:
    import sys

    sys.path.insert(0, "tests")
    from conftest import make_cubic

    from ensemble_core.predict import combine_regression

    data = make_cubic(n_train=20, n_val=4, n_test=4)
    x = np.linspace(-5, 5, 30)
    many = combine_regression(np.random.default_rng(0).normal(size=(100, 30)), np.ones((100, 30)))
    fig = viz.bands_figure(data, x, many)
    assert not [t for t in fig.data if (t.name or "").startswith("Member ")]
    assert any("100 stochastic passes (not drawn)" in (t.name or "") for t in fig.data)
    five = combine_regression(np.zeros((5, 30)), np.ones((5, 30)))
    assert len([t for t in viz.bands_figure(data, x, five).data if (t.name or "").startswith("Member ")]) == 5 + 1
