"""The dashboard's look (dashboard/theme.py) and the history guard's Python side (dashboard/st_compat/history.py)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from packaging.version import Version
from streamlit.runtime.scriptrunner_utils import script_run_context as src

import dashboard.st_compat as compat
from dashboard import live_plot, theme
from dashboard.st_compat import history
from ensemble_core import viz


def _titled():
    y = np.linspace(0, 1, 30)

    class Pred:
        mean = y + 0.1
        total = np.full(30, 0.04)
        aleatoric = np.full(30, 0.03)
        epistemic = np.full(30, 0.01)

    return viz.intervals_by_uncertainty(y, Pred)


def test_presentation_stylesheet_only_when_presenting() -> None:
    plain, presenting = theme.stylesheet(False), theme.stylesheet(True)
    assert theme.PRESENTATION_CSS not in plain and theme.PRESENTATION_CSS in presenting
    for css in (plain, presenting):
        assert css.count("<style>") == css.count("</style>") >= 2
        assert f".st-key-{history.KEY}" in css and "display: none" in css  # the history guard takes no room
        assert "@media (max-width: 480px)" in css


def test_a_metric_value_outranks_the_body_text_rule() -> None:
    """Streamlit draws a metric's value as Markdown: the body text's ``p`` rule shrank it to body size."""
    css = theme.PRESENTATION_CSS
    body = '[data-testid="stMarkdownContainer"] p'
    metric = '[data-testid="stMetricValue"] [data-testid="stMarkdownContainer"] p'
    assert body in css and metric in css  # more specific than the body rule, so it wins
    size = float(css.split(metric, 1)[1].split("font-size:", 1)[1].split("rem", 1)[0])
    assert size * 16 >= 1.5 * 36  # Streamlit's own metric value is 2.25rem = 36 px


def test_display_scales_every_font_of_a_figure_its_template_too() -> None:
    fig = _titled()
    before = json.loads(fig.to_json())["layout"]
    out = theme.display_layout(before, {"scale": 2.0})
    assert out["font"]["size"] == 2 * before["font"]["size"]
    assert out["xaxis"]["tickfont"]["size"] == 2 * before["xaxis"]["tickfont"]["size"]
    assert out["legend"]["font"]["size"] == 2 * before["legend"]["font"]["size"]
    # the title's size lives in the template only
    assert out["template"]["layout"]["title"]["font"]["size"] == 2 * before["template"]["layout"]["title"]["font"]["size"]
    assert before == json.loads(fig.to_json())["layout"]  # the input is not changed


def test_presentation_draws_a_go_figure_larger_and_taller() -> None:
    fig = _titled()
    title = fig.layout.template.layout.title.font.size
    height = fig.layout.height
    theme.display_figure(fig, theme.chart_display(presenting=True, on_phone=False))
    assert fig.layout.template.layout.title.font.size == pytest.approx(title * theme.PRESENT_SCALE, abs=0.1)
    assert fig.layout.height == round(height * theme.PRESENT_HEIGHT)
    assert theme.chart_display(presenting=False, on_phone=False) is None


def test_phone_layout_puts_the_legend_below_in_compact_rows() -> None:
    spec = live_plot.to_spec(_titled())
    out = theme.display_spec(spec, theme.chart_display(presenting=False, on_phone=True))
    legend = out["layout"]["legend"]
    assert legend["orientation"] == "h" and legend["yref"] == "container" and legend["y"] == 0
    assert out["layout"]["font"]["size"] < spec["layout"]["font"]["size"]
    assert out["data"][0]["x"] is spec["data"][0]["x"]  # data arrays are shared, not copied


def test_trace_fonts_follow_objects_only() -> None:
    trace = {"x": list(range(5)), "textfont": {"size": 10, "color": "red"},
             "marker": {"colorbar": {"tickfont": {"size": 8}}, "size": [1, 2, 3]}}
    assert theme.trace_fonts(trace, 1.5) == {"textfont": {"size": 15.0, "color": "red"},
                                             "marker": {"colorbar": {"tickfont": {"size": 12.0}}}}


def test_figures_keep_their_legend_off_the_toolbar() -> None:
    """Plotly's toolbar sits at the top right of every chart: the legend goes below the plot."""
    fig = viz.lr_figure(np.linspace(0.1, 0, 40), steps_per_epoch=4, snapshot_steps=[19, 39])
    assert fig.layout.legend.yref == "container" and fig.layout.legend.y == 0 and fig.layout.legend.yanchor == "bottom"


def test_toolbar_is_compact_and_never_uploads() -> None:
    config = theme.toolbar({"toImageButtonOptions": {"format": "svg"}, "modeBarButtonsToRemove": ["lasso2d"]})
    assert config["toImageButtonOptions"] == {"format": "svg"} and config["displaylogo"] is False
    assert "sendChartToCloud" in config["modeBarButtonsToRemove"] and config["showSendToCloud"] is False
    assert config["modeBarButtonsToRemove"].count("lasso2d") == 1
    payload = json.loads(live_plot.payload({"data": [], "layout": {}}, {}))
    assert "sendChartToCloud" in payload["config"]["modeBarButtonsToRemove"]


@pytest.mark.parametrize("agent, is_phone", [
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1", True),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36", True),
    ("Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 Chrome/126.0 Safari/537.36", False),  # a tablet
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36", False),
])
def test_phone_user_agents(agent: str, is_phone: bool) -> None:
    assert bool(theme._PHONE_UA.search(agent)) is is_phone


def test_outside_a_script_run_nothing_is_a_phone_or_a_history_navigation() -> None:
    assert theme.phone() is False
    assert history.restoring() is False
    assert history.ready() is True  # no browser (AppTest, scripts): the URL is written at once


def test_history_guard_is_one_module_of_plain_javascript() -> None:
    assert history._JS.lstrip().startswith("export default function")
    assert "pushState" in history._JS and "replaceState" in history._JS


def test_history_navigation_is_read_from_streamlits_script_run_context(monkeypatch) -> None:
    """The internal history.restoring() reads: a rename in a new Streamlit fails here, not in a classroom."""
    assert "is_history_navigation" in {f.name for f in dataclasses.fields(src.ScriptRunContext)}

    class Ctx:
        is_history_navigation = True

    monkeypatch.setattr(src, "get_script_run_ctx", lambda *a, **k: Ctx())
    assert history.restoring() is True


def test_history_outside_the_supported_range_is_plain_streamlit(monkeypatch) -> None:
    class Ctx:
        is_history_navigation = True

    monkeypatch.setattr(src, "get_script_run_ctx", lambda *a, **k: Ctx())
    monkeypatch.setattr(compat, "INSTALLED", Version("99.0.0"))
    assert history.install(["home", "data"]) is False  # nothing mounted
    assert history.ready() is True and history.restoring() is False  # the URL is written at once, Back as Streamlit does
