"""The dashboard's look: every stylesheet it injects, and how its charts adapt to a phone or a projector.

Three ways to look at the same page:

* **normal** (a laptop): :data:`BASE_CSS`;
* **phone** (a viewport 480 px wide or less): :data:`PHONE_CSS` (a media query,
  so it follows the browser's width), and charts drawn for a phone's browser
  (:func:`phone`, from its user agent) get smaller type and their legend in
  compact rows below the plot (:func:`chart_display`);
* **presentation** (the Share box's toggle or a link with ``present=1``):
  :data:`PRESENTATION_CSS` enlarges everything a room must read (headings,
  text, headline metrics, captions, widget values, tables) and charts get
  :data:`PRESENT_SCALE` times larger type.

Checked in Chromium on Streamlit 1.67's DOM (``data-testid`` names); live
views add ``dashboard.live.LIVE_CSS`` next to these.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import streamlit as st

from dashboard.st_compat.history import KEY as HISTORY_KEY

#: The page's chrome, on every page: room above the title, and the history guard's element hidden.
BASE_CSS = f"""<style>
.block-container {{ padding-top: 2.2rem; }}
h1 {{ padding-top: 0.5rem; }}
.st-key-{HISTORY_KEY} {{ display: none; }}
</style>"""

#: A phone (<= 480 px): less padding around the page, headings that fit, a row of headline metrics two
#: abreast (Streamlit stacks every column on a phone: four numbers took a whole screen), and formulas
#: that scroll sideways instead of running off the screen.
PHONE_CSS = """<style>
@media (max-width: 480px) {
  [data-testid="stMainBlockContainer"] { padding-left: 0.75rem; padding-right: 0.75rem; }
  h1 { font-size: 2rem !important; }
  h2 { font-size: 1.6rem !important; }
  h3 { font-size: 1.3rem !important; }
  [data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] [data-testid="stMetric"]) {
    flex-flow: row wrap; row-gap: 0.5rem; }
  [data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] [data-testid="stMetric"]) > [data-testid="stColumn"] {
    min-width: calc(50% - 0.5rem) !important; flex: 1 1 calc(50% - 0.5rem) !important; }
  .katex-display { overflow-x: auto; overflow-y: hidden; padding-bottom: 0.25rem; }
}
</style>"""

#: Presentation mode: larger type for a projector, full-width content.  The configuration is tucked away
#: with ``st.set_page_config(initial_sidebar_state="collapsed")`` (the sidebar keeps the navigation).
#: Streamlit renders metric values, captions and widget labels as Markdown (``stMarkdownContainer p``),
#: so those get rules at least as specific as the body text's, or the body size would win.  HTML tables
#: (``st.table``) grow; ``st.dataframe`` draws on a canvas with the theme's font size, which no stylesheet
#: reaches (CSS ``zoom`` made its rows taller, not its text larger, in Chromium 1.67's grid).
PRESENTATION_CSS = """<style>
[data-testid="stAppViewContainer"] { font-size: 21px; }
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li { font-size: 1.3rem; }
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p { font-size: 1.15rem; }
h1 { font-size: 3rem !important; line-height: 1.3 !important; }
h2 { font-size: 2.3rem !important; }
h3 { font-size: 1.8rem !important; }
[data-testid="stMetricValue"], [data-testid="stMetricValue"] [data-testid="stMarkdownContainer"] p {
  font-size: 3.6rem; line-height: 1.15; }
[data-testid="stMetricLabel"] [data-testid="stMarkdownContainer"] p { font-size: 1.35rem; }
[data-testid="stMetricDelta"], [data-testid="stMetricDelta"] [data-testid="stMarkdownContainer"] p { font-size: 1.2rem; }
[data-testid="stSliderThumbValue"], [data-testid="stSliderTickBarMin"], [data-testid="stSliderTickBarMax"],
[data-testid="stSliderThumbValue"] p { font-size: 1.2rem; }
[data-testid="stWidgetLabel"] [data-testid="stMarkdownContainer"] p { font-size: 1.25rem; }
[data-testid="stTable"] td, [data-testid="stTable"] th { font-size: 1.2rem; }
[data-testid="stMain"] input, [data-testid="stMain"] textarea,
[data-testid="stMain"] [data-baseweb="select"] [data-baseweb="tag"] span,
[data-testid="stMain"] [data-baseweb="select"] > div > div { font-size: 1.2rem; }
[data-testid="stMainBlockContainer"] { padding-top: 3.5rem; max-width: 96vw; }
</style>"""

#: How much larger a chart's type is in presentation mode, and how much taller the chart (so its axis
#: titles, now larger, still fit along its side).
PRESENT_SCALE = 1.45
PRESENT_HEIGHT = 1.25
#: Plotly's height for a figure without one.
PLOTLY_HEIGHT = 450
#: How much smaller a chart's type is on a phone (the figures are made for a laptop's width).
PHONE_SCALE = 0.8
#: Plotly's default font size (what a figure without one uses).
PLOTLY_FONT = 12

#: Buttons the chart toolbar leaves out: it keeps download, zoom, pan and reset.  Plotly's selection and
#: zoom-step buttons, which nobody here needs, made it wide enough to cover a phone's chart title; the
#: ``plotly`` package's own library (the live charts) adds "Share chart...", which uploads the figure to
#: Plotly Cloud: not from a classroom.
TOOLBAR_REMOVE = ("select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d", "sendChartToCloud")

#: A phone's chart: its legend in compact rows below the plot (the chart's bottom edge, whatever the
#: axis titles take), tight outer margins (axes push their own), the title below the toolbar.
PHONE_LAYOUT: dict[str, Any] = {
    "legend": {"orientation": "h", "x": 0, "xanchor": "left", "yref": "container", "y": 0, "yanchor": "bottom",
               "tracegroupgap": 0, "itemwidth": 30, "entrywidthmode": "pixels", "entrywidth": 0},
    "margin": {"l": 8, "r": 30},  # on the right, room for the schedule chart's "now" label at the last epoch
    "title": {"yref": "container", "y": 1, "yanchor": "top", "pad": {"t": 30}},
}

_PHONE_UA = re.compile(r"Mobi|iPhone|iPod|Android.*Mobile|Windows Phone", re.IGNORECASE)


def stylesheet(presenting: bool) -> str:
    """Every stylesheet of the dashboard's chrome for this session (one ``st.html`` call)."""
    return BASE_CSS + PHONE_CSS + (PRESENTATION_CSS if presenting else "")


def apply(presenting: bool) -> None:
    """Inject :func:`stylesheet` (Streamlit places style-only HTML without taking room on the page)."""
    st.html(stylesheet(presenting))


def toolbar(config: dict[str, Any] | None) -> dict[str, Any]:
    """A chart's Plotly ``config`` with the compact toolbar (:data:`TOOLBAR_REMOVE`, no Plotly logo): a new dict."""
    config = dict(config or {})
    removed = list(dict.fromkeys([*config.get("modeBarButtonsToRemove", ()), *TOOLBAR_REMOVE]))
    return {**config, "displaylogo": False, "showSendToCloud": False, "modeBarButtonsToRemove": removed}


def phone() -> bool:
    """Whether this session's browser says it is a phone (its ``User-Agent``; tablets and desktops are not).

    Read once per session (``st.context.headers`` copies every header on each call).
    """
    known = st.session_state.get("ui_phone")
    if known is not None:
        return known
    try:
        agent = st.context.headers.get("User-Agent") or ""
    except Exception:  # noqa: BLE001 - no request (a test's AppTest): not a phone
        return False
    st.session_state["ui_phone"] = found = bool(_PHONE_UA.search(agent))
    return found


def _presenting() -> bool:
    from dashboard.links import presenting  # links imports the chrome that imports the charts: at call time

    return presenting()


def chart_display(presenting: bool | None = None, on_phone: bool | None = None) -> dict[str, Any] | None:
    """How this session's charts differ from the figures as built: ``{"scale": k, "layout": {...}}``.

    ``scale`` multiplies every font size of the figure (presentation: larger;
    phone: smaller), ``height`` (when given) its height; ``layout`` is merged
    over the figure's layout.  ``None`` when the figures are drawn as built (a
    laptop, not presenting).
    """
    presenting = _presenting() if presenting is None else presenting
    on_phone = phone() if on_phone is None else on_phone
    if presenting:
        return {"scale": PRESENT_SCALE, "height": PRESENT_HEIGHT, "layout": {}}
    if on_phone:
        return {"scale": PHONE_SCALE, "layout": PHONE_LAYOUT}
    return None


def _is_font(key: str) -> bool:
    return key == "font" or key.endswith("font")


def scale_fonts(node: Any, k: float) -> None:
    """Multiply every explicit font size in a figure's plain JSON data (``layout`` or a trace) by ``k``, in place.

    Lists are followed only when they hold objects (annotations, shapes,
    traces), never into data arrays.
    """
    if isinstance(node, list):
        if node and isinstance(node[0], dict):
            for item in node:
                scale_fonts(item, k)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if isinstance(value, dict) and _is_font(key):
            if isinstance(value.get("size"), (int, float)) and not isinstance(value.get("size"), bool):
                value["size"] = round(value["size"] * k, 1)
        elif isinstance(value, (dict, list)):
            scale_fonts(value, k)


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def display_layout(layout: dict[str, Any], display: dict[str, Any]) -> dict[str, Any]:
    """A figure's plain JSON ``layout`` drawn as ``display`` says (:func:`chart_display`): a new dict.

    Every font size is scaled, the template's too (a figure's title size may
    come from its template only), and the size that unset fonts inherit is
    set; then ``display["layout"]`` is merged over it.
    """
    out = copy.deepcopy(layout)
    font = out.setdefault("font", {})
    template_font = ((out.get("template") or {}).get("layout") or {}).get("font") or {}
    font["size"] = font.get("size") or template_font.get("size") or PLOTLY_FONT  # what unset fonts inherit
    scale_fonts(out, float(display.get("scale", 1.0)))
    if display.get("height"):
        out["height"] = round((out.get("height") or PLOTLY_HEIGHT) * float(display["height"]))
    return _merge(out, display.get("layout") or {})


def trace_fonts(trace: dict[str, Any], k: float) -> dict[str, Any]:
    """The font changes of one trace (its plain JSON data) scaled by ``k``: a nested dict of its fonts only.

    Only objects are followed (never data arrays), so a large trace costs no more than a small one.
    """
    out: dict[str, Any] = {}
    for key, value in trace.items():
        if not isinstance(value, dict):
            continue
        if _is_font(key):
            if isinstance(value.get("size"), (int, float)) and not isinstance(value.get("size"), bool):
                out[key] = {**value, "size": round(value["size"] * k, 1)}
        else:
            sub = trace_fonts(value, k)
            if sub:
                out[key] = sub
    return out


def display_spec(spec: dict[str, Any], display: dict[str, Any] | None) -> dict[str, Any]:
    """A figure's plain JSON data (``{"data": [...], "layout": {...}}``) drawn as ``display`` says (a new dict).

    The input is not changed; trace data arrays are shared with it, not copied.
    """
    if not display:
        return spec
    k = float(display.get("scale", 1.0))
    data = [_merge(t, trace_fonts(t, k)) for t in spec.get("data") or []]
    return {**spec, "data": data, "layout": display_layout(spec.get("layout") or {}, display)}


def display_figure(fig: Any, display: dict[str, Any] | None) -> Any:
    """Draw the ``go.Figure`` ``fig`` as ``display`` says (:func:`chart_display`), in place; ``fig``."""
    if not display:
        return fig
    k = float(display.get("scale", 1.0))
    fig.update_layout(display_layout(fig.layout.to_plotly_json(), display))
    for trace in fig.data:
        patch = trace_fonts(trace.to_plotly_json(), k)
        if patch:
            trace.update(patch)
    return fig
