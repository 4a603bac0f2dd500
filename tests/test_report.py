"""Tests for ensemble_core.report: one offline HTML file with the figures, metrics and a summary."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import plotly.graph_objects as go
import pytest

from ensemble_core.config import DataSpec, ModelSpec, OptimSpec, RunConfig, StrategySpec
from ensemble_core.data import load_dataset
from ensemble_core.report import html_report, regions, side_by_side, summary_facts
from ensemble_core.training import train

URL = re.compile(r"^\s*(https?:)?//", re.I)


class _Tags(HTMLParser):
    """Collects every tag with its attributes (plotly.js's code is script *text*, not attributes)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tiny(name: str, members: int = 3) -> tuple[object, object]:
    cfg = RunConfig(data=DataSpec(name=name, n=40), model=ModelSpec(hidden_layers=1, width=16),
                    strategy=StrategySpec(members=members), optim=OptimSpec(epochs=3, batch_size=40))
    data = load_dataset(cfg.data)
    return train(cfg, data), data


@pytest.fixture(scope="module")
def cubic() -> tuple[object, object]:
    return _tiny("cubic")


@pytest.fixture(scope="module")
def moons() -> tuple[object, object]:
    return _tiny("moons")


@pytest.mark.parametrize("which", ["cubic", "moons"])
def test_report_is_one_offline_file_with_figures_and_metrics(which: str, request: pytest.FixtureRequest) -> None:
    run, data = request.getfixturevalue(which)
    text = html_report(run, data)
    parser = _Tags()
    parser.feed(text)
    tags = parser.tags
    # Single file: no external scripts, stylesheets, fonts, images or frames.
    # (plotly.js, inlined, contains URL strings in its *code*; only tags/attributes can fetch.)
    for tag, attrs in tags:
        for key in ("src", "href", "srcset", "data", "poster", "action"):
            value = attrs.get(key)
            assert value is None or not URL.match(value), (tag, key, value)
        assert tag not in ("link", "iframe", "object", "embed", "base", "img"), tag
    assert "@import" not in text and "url(http" not in text
    scripts = [a for t, a in tags if t == "script"]
    assert scripts and all("src" not in a for a in scripts)
    # plotly.js is inlined exactly once, and each figure is drawn
    assert text.count("Plotly.newPlot") >= 4
    assert text.count("window.PlotlyConfig") == 1
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    # metrics table: every member plus the ensemble, and the config
    assert text.count("<tr class=\"ens\">") == 1
    assert all(f"member {m}" in text for m in run.healthy)
    assert "strategy.members" in text and "What the uncertainty shows" in text
    if which == "cubic":
        assert "Prediction with aleatoric and epistemic bands" in text and "coverage" in text
    else:
        assert "entropy and mutual information" in text and "ece" in text


def test_summary_is_generated_from_the_numbers(cubic: tuple[object, object]) -> None:
    run, data = cubic
    facts = summary_facts(run, data)
    text = " ".join(facts)
    assert "3 members" in text
    assert re.search(r"Epistemic uncertainty .* (\d+\.\d)× (larger|\*smaller\*)|about the same", text)
    assert re.search(r"95% intervals contain \*\*\d+%\*\*", text)


def test_regions_split_near_and_far() -> None:
    class D:
        x_train = np.array([[-1.0], [0.0], [3.0]])
        gaps = [(0.5, 2.5)]

    near, far = regions(D(), np.array([[-2.0], [-0.5], [1.0], [2.9], [4.0]]))
    assert near.tolist() == [False, True, False, True, False]
    assert (far == ~near).all()


def test_side_by_side_keeps_every_panel_on_shared_axes() -> None:
    figs = [go.Figure([go.Scatter(x=[0, 1], y=[i, i + 1], name="Ensemble mean"),
                       go.Scatter(x=[0, 1], y=[0, 0], name=f"only {i}")]) for i in range(4)]
    for f in figs:
        f.add_vrect(x0=0.2, x1=0.4)
    out = side_by_side(figs, ["a", "b", "c", "d"], y_range=(-1, 5))
    assert len(out.data) == 8
    assert {t.xaxis for t in out.data} == {"x", "x2", "x3", "x4"}
    assert [a.text for a in out.layout.annotations] == ["a", "b", "c", "d"]
    assert sum(bool(t.showlegend) for t in out.data if t.name == "Ensemble mean") == 1
    assert len(out.layout.shapes) == 4 and out.layout.yaxis4.matches == "y"
    assert list(out.layout.yaxis.range) == [-1, 5]
    with pytest.raises(ValueError, match="one title per figure"):
        side_by_side(figs, ["a"])


def test_mean_size_curve_ends_at_the_full_ensemble(cubic: tuple[object, object]) -> None:
    from ensemble_core.metrics import evaluate
    from ensemble_core.predict import member_metrics, predict
    from ensemble_core.report import mean_size_curve

    run, data = cubic
    curve = mean_size_curve(run, data.x_test, data.y_test)
    assert len(curve) == len(run.healthy) == 3
    full = evaluate(predict(run, data.x_test), data.y_test)["nll"]
    assert curve[-1] == pytest.approx(full, rel=1e-9)  # every order ends with all members
    singles = [r["nll"] for r in member_metrics(run, data.x_test, data.y_test)[:-1]]
    assert min(singles) - 1e-9 <= curve[0] <= max(singles) + 1e-9  # M = 1 averages single members
    assert mean_size_curve(run, data.x_test, data.y_test) == curve  # fixed seed: reproducible


# ------------------------------------------------------------ wording from the run's numbers
def test_far_from_data_wording_follows_the_measured_coverage(cubic: tuple[object, object]) -> None:
    """The verdict quotes the share of the true curve inside ±2σ away from the data, and words it by that share."""
    from ensemble_core.predict import predict
    from ensemble_core.viz import input_grid

    run, data = cubic
    facts = summary_facts(run, data)
    grid = np.asarray(input_grid(data, 200))
    _, far = regions(data, grid)
    p = predict(run, grid[far])
    share = float(np.mean(np.abs(p.mean - grid[far, 0] ** 3) <= 2 * np.sqrt(p.total)))
    sentence = next(f for f in facts if f.startswith("Far from the training data"))
    assert f"**{share * 100:.0f}%**" in sentence and f"({int(far.sum())})" in sentence
    phrase = ("wide enough to flag" if share >= 0.9 else "only partly" if share >= 0.5 else "overconfident")
    assert phrase in sentence
    assert "knows where it has not seen data" not in " ".join(facts)


def test_far_verdict_words_each_range_of_the_number() -> None:
    from ensemble_core.report import _far_verdict, _ratio_text

    assert "wide enough to flag where it has not seen data" in _far_verdict(0.95, "t", "w", 10)
    assert "only partly" in _far_verdict(0.6, "t", "w", 10)
    assert "overconfident" in _far_verdict(0.2, "t", "w", 10) and "**20%**" in _far_verdict(0.2, "t", "w", 10)
    grows = _ratio_text(3.0, 1.0, "Epistemic uncertainty")
    assert "3.0× larger" in grows and "knows" not in grows and "flag" not in grows  # a ratio is no verdict


def test_far_verdict_on_many_features_uses_the_far_test_points() -> None:
    """No true function (a CSV): the verdict counts the observed test targets far from the training inputs."""
    from ensemble_core.data import dataset_from_arrays
    from ensemble_core.predict import predict

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    y = x.sum(1) + 0.1 * rng.normal(size=120)
    xt = np.vstack([rng.normal(size=(10, 3)), rng.normal(size=(20, 3)) + 6.0])  # 20 far away
    data = dataset_from_arrays(x, y, "regression", x_val=x[:20], y_val=y[:20], x_test=xt, y_test=xt.sum(1))
    cfg = RunConfig(model=ModelSpec(hidden_layers=1, width=16), strategy=StrategySpec(members=3),
                    optim=OptimSpec(epochs=5, batch_size=40))
    run = train(cfg, data)
    _, far = regions(data, xt)
    assert far.sum() >= 5
    p = predict(run, xt[far])
    share = float(np.mean(np.abs(p.mean - xt[far].sum(1)) <= 2 * np.sqrt(p.total)))
    sentence = next(f for f in summary_facts(run, data) if f.startswith("Far from the training data"))
    assert f"**{share * 100:.0f}%**" in sentence and "the test points far from it" in sentence
