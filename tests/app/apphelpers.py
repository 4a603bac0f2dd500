"""Helpers shared by the AppTest suites (a module of its own: test files import it by name)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def open_page(at: AppTest, page: str) -> AppTest:
    """Switch to ``pages/<page>.py`` and run it; fail on any exception shown."""
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def chart_specs(at: AppTest) -> dict[str, dict]:
    """Every Plotly chart on screen as ``{element key suffix: figure JSON}``.

    Both kinds: ``st.plotly_chart`` and the live views' in-place charts
    (:func:`dashboard.live_plot.live_chart`, a component whose data carry the figure).
    """
    out = {}
    for chart in at.get("plotly_chart"):
        key = chart.proto.id.rsplit("-", 1)[-1] if chart.proto.id else str(len(out))
        out[key] = json.loads(chart.proto.spec)
    for comp in at.get("bidi_component"):
        if comp.proto.component_name == "deep_ensemble_lab.live_plot":
            out[comp.proto.id.rsplit("-", 1)[-1]] = json.loads(comp.proto.bytes or comp.proto.json)["figure"]
    return out


def sidebar_text(at: AppTest) -> str:
    """All Markdown in the sidebar, joined."""
    return " | ".join(m.value for m in at.sidebar.markdown)


def run_until(at: AppTest, cond, timeout: float = 120.0, pause: float = 0.1) -> AppTest:
    """Rerun the app (as the live poller would) until ``cond(at)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        at.run()
        assert not at.exception, [e.message for e in at.exception]
        if cond(at):
            return at
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout} s; sidebar: {sidebar_text(at)}")
        time.sleep(pause)


class RouterPagesManager(PagesManager):
    """AppTest resets Streamlit's legacy ``pages/``-directory flag before *every* run.

    A real server clears it for good on the first run (``st.navigation`` and
    ``pages/ui.py`` both do), so every later run goes straight through
    ``app.py``'s router.  This keeps AppTest in that same, steady state.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


def values(trace: dict, axis: str = "x") -> list:
    """A trace's ``x``/``y`` values as a list, decoding Plotly's base64 typed arrays (``bdata``)."""
    v = trace.get(axis)
    if v is None:
        return []
    if isinstance(v, dict) and "bdata" in v:
        arr = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return arr.reshape(v["shape"]).tolist() if "shape" in v and isinstance(v["shape"], list) else arr.tolist()
    return list(v)
