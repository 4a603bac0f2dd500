"""Plotly charts that update in place, for the live views.

``st.plotly_chart`` gives a chart a new identity whenever its figure changes
(Streamlit 1.67 hashes the figure into the element id, and its frontend keys
the chart by that id), so a refreshed figure is a new chart, drawn from
scratch (axes, tick labels, margins), and the viewer's zoom is lost.  For live
charts refreshed several times a second that is most of the viewer's browser
work (``docs/decisions.md``).

:func:`live_chart` draws the figure with a small Streamlit component (``st.components.v2``)
whose identity is its key alone: a new figure for the same key reaches the
same element, which calls ``Plotly.react`` on the plot it already has.  Plotly
then redraws only what changed, and ``layout.uirevision`` keeps the viewer's
zoom and legend choices.  The Plotly library is the one the ``plotly`` Python
package ships (so figure and library versions match); the server serves it
gzipped (see :func:`ensure_assets`) and the browser loads it once per tab.
"""

from __future__ import annotations

import atexit
import gzip
import json
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import plotly
import plotly.graph_objects as go
import streamlit as st
import streamlit.components.v1 as components_v1

from dashboard import theme

#: ``plotly.min.js`` of the ``plotly`` package: the library the live charts draw with.
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
_ASSETS = "plotly_assets"
#: Where the browser finds the gzipped library, relative to the app's root URL.
PLOTLY_PATH = f"component/{__name__}.{_ASSETS}/plotly.min.js.gz"
_SETUP_LOCK = threading.Lock()
_folder: Path | None = None
_mount: Callable[..., Any] | None = None


def ensure_assets() -> Path:
    """Gzip ``plotly.min.js`` into a private folder of this process once; that folder.

    Served as a ``.gz`` file (``application/gzip``), the library passes
    Streamlit's HTTP compression untouched and the browser unzips it: the
    server would otherwise gzip the whole library again for every viewer (a
    class opening the Train page at once) or send it unzipped.
    Safe from any thread (the server's prewarm thread does it early); the
    folder is removed at exit.
    """
    global _folder
    with _SETUP_LOCK:
        if _folder is None:
            folder = Path(tempfile.mkdtemp(prefix="deep-ensemble-lab-assets-"))
            atexit.register(shutil.rmtree, folder, True)
            (folder / "plotly.min.js.gz").write_bytes(gzip.compress(PLOTLY_JS.read_bytes(), compresslevel=6, mtime=0))
            _folder = folder
    return _folder


def _component() -> Callable[..., Any]:
    """Register the chart component and serve the library folder (as a never drawn v1 component), once.

    Called from a script run: Streamlit registers components with the runtime of the running script.
    """
    global _mount
    folder = ensure_assets()
    with _SETUP_LOCK:
        if _mount is None:
            components_v1.declare_component(_ASSETS, path=str(folder))
            _mount = st.components.v2.component("deep_ensemble_lab.live_plot", js=_JS, isolate_styles=False)
    return _mount


# One plot per element.  The app's root URL is where Streamlit's own script
# lives (this also holds under a server.baseUrlPath).  Plotly loads once per
# tab: fetched gzipped, unzipped here, run as a classic script (window.Plotly).
# Every call after that is a Plotly.react on the same plot, so only what
# changed is redrawn and layout.uirevision keeps the viewer's zoom.
_JS = """
const root = () => {
  const own = document.querySelector('script[src*="static/js/index"]');
  return own ? own.src.split('static/js/')[0] : new URL('./', document.baseURI).href;
};
const load = async (path) => {
  const res = await fetch(root() + path);
  if (!res.ok) throw new Error('could not load the chart library: HTTP ' + res.status);
  const code = await new Response(res.body.pipeThrough(new DecompressionStream('gzip'))).text();
  const url = URL.createObjectURL(new Blob([code], { type: 'text/javascript' }));
  await new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = url;
    s.onload = resolve;
    s.onerror = () => reject(new Error('could not run the chart library'));
    document.head.appendChild(s);
  });
  URL.revokeObjectURL(url);
  return window.Plotly;
};
const plotly = (path) => {
  if (!window.__delPlotly) {
    window.__delPlotly = load(path).catch((err) => { window.__delPlotly = null; throw err; });
  }
  return window.__delPlotly;
};
const isFont = (key) => key === 'font' || key.endsWith('font');
// every explicit font size times k (objects and lists of objects only, never data arrays)
const scaleFonts = (node, k) => {
  if (Array.isArray(node)) {
    if (node.length && node[0] && typeof node[0] === 'object' && !Array.isArray(node[0])) {
      node.forEach((item) => scaleFonts(item, k));
    }
    return;
  }
  for (const key of Object.keys(node)) {
    const value = node[key];
    if (!value || typeof value !== 'object') continue;
    if (isFont(key) && !Array.isArray(value)) {
      if (typeof value.size === 'number') value.size = Math.round(value.size * k * 10) / 10;
    } else {
      scaleFonts(value, k);
    }
  }
};
const merge = (base, patch) => {
  for (const [key, value] of Object.entries(patch)) {
    const both = value && typeof value === 'object' && !Array.isArray(value) && base[key] && typeof base[key] === 'object';
    if (both) merge(base[key], value); else base[key] = value;
  }
  return base;
};
// how this viewer sees charts (dashboard/theme.py: chart_display): a projector's or a phone's type, a phone's legend
const display = (figure, how, height) => {
  if (!how) return;
  const layout = figure.layout || (figure.layout = {});
  const inherited = ((layout.template || {}).layout || {}).font || {};
  layout.font = layout.font || {};
  layout.font.size = layout.font.size || inherited.size || 12;
  scaleFonts(layout, how.scale || 1);
  scaleFonts(figure.data || [], how.scale || 1);
  if (how.height) layout.height = Math.round((layout.height || height) * how.height);
  merge(layout, how.layout || {});
};
export default function (component) {
  const { parentElement } = component;
  // the server sends the payload as UTF-8 JSON bytes (see payload()), parsed here once
  const data = component.data instanceof Uint8Array ? JSON.parse(new TextDecoder().decode(component.data))
                                                     : component.data;
  let div = parentElement.querySelector(':scope > div.del-live-plot');
  if (!div) {
    div = document.createElement('div');
    div.className = 'del-live-plot';
    div.style.width = '100%';
    parentElement.appendChild(div);
  }
  display(data.figure, data.display, data.height || 400);
  if (data.display && data.display.height) data.height = data.figure.layout.height;
  div.style.height = (data.height || 400) + 'px';
  plotly(data.src).then((Plotly) => {
    // a figure with frames (a run's replay) animates between them in the browser: nothing goes to the server
    Plotly.react(div, { data: data.figure.data, layout: data.figure.layout, frames: data.figure.frames || [],
                        config: data.config });
    if (!div.__delResize) {
      div.__delResize = new ResizeObserver(() => { if (div.isConnected) Plotly.Plots.resize(div); });
      div.__delResize.observe(div);
    }
  });
  // Streamlit calls this when the element goes, and also at once for a call whose data were already
  // replaced by newer data (calls can overlap): the next call draws afresh and watches the size again
  return () => {
    if (div.__delResize) div.__delResize.disconnect();
    div.__delResize = null;
    if (window.Plotly) window.Plotly.purge(div);
  };
}
"""

def to_spec(fig: go.Figure | dict[str, Any]) -> dict[str, Any]:
    """A figure as plain JSON data (``{"data": [...], "layout": {...}}``; NumPy arrays become lists).

    A spec may also carry ``"frames"`` (plain data, see :mod:`dashboard.replay`): the chart element
    hands them to Plotly, whose sliders and buttons then animate in the browser.
    """
    return json.loads(plotly.io.to_json(fig, validate=False))


def payload(spec: dict[str, Any], config: dict[str, Any] | None = None) -> bytes:
    """What the chart element carries: the figure ``spec``, its Plotly ``config`` and height, as JSON bytes.

    Bytes pass through Streamlit as they are.  (A dict is JSON-encoded twice per
    draw, once for the element and once, sorted, for its identity; a live view
    that redraws unchanged charts between refreshes can keep these bytes and
    send them again: :func:`live_chart_bytes`.)
    """
    layout = spec.get("layout") or {}
    height = int(layout.get("height") or 400)
    return json.dumps({"figure": spec, "config": dict(theme.toolbar(config), responsive=False), "height": height,
                       "src": PLOTLY_PATH}, separators=(",", ":")).encode()


def live_chart_bytes(data: bytes, key: str) -> None:
    """Draw a chart from its :func:`payload` as the chart ``key`` (see :func:`live_chart`).

    In presentation mode or on a phone the payload also says how this viewer
    sees charts (:func:`dashboard.theme.chart_display`), applied by the
    browser: payloads are shared between polls and sessions as they were built.
    """
    how = theme.chart_display()
    if how:
        data = data[:-1] + b',"display":' + json.dumps(how, separators=(",", ":")).encode() + b"}"
    (_mount or _component())(key=key, data=data)


def live_chart(spec: dict[str, Any], key: str, config: dict[str, Any] | None = None) -> None:
    """Draw the figure ``spec`` (plain JSON data, see :func:`to_spec`) as the chart ``key``.

    A later call with the same ``key`` (in the same place on the page) updates
    that chart in place rather than drawing a new one.  The chart fills the
    container's width; its height is the figure's ``layout.height`` (400 px
    when unset).
    """
    live_chart_bytes(payload(spec, config), key)
