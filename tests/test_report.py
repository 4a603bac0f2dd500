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
