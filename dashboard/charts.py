"""The one chart-display helper every page uses, and the figures the dashboard builds itself."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from dashboard import live_plot, theme
from dashboard.state import settings
from ensemble_core.config import RunConfig
from ensemble_core.data import Dataset

log = logging.getLogger(__name__)


def figure(name: str, *args: Any, **kwargs: Any) -> go.Figure | None:
    """Build a figure with ``ensemble_core.viz.<name>``; ``None`` (logged) if that fails.

    Figures must never take a page down: a failing builder is logged and the
    page shows a short note instead.
    """
    from ensemble_core import viz

    builder: Callable[..., go.Figure] = getattr(viz, name)  # a wrong name is a bug: fail loudly
    try:
        return builder(*args, **kwargs)
    except Exception:  # noqa: BLE001 - a chart problem must not become a traceback
        log.exception("figure %s failed", name)
        return None


def image_config(fmt: str = "png", filename: str = "deep-ensemble-lab", scale: float = 2.0) -> dict[str, Any]:
    """Plotly ``config`` whose camera button downloads the chart as an image.

    Pass it to ``st.plotly_chart(fig, config=image_config("svg", "bands"))``;
    the browser renders the image, so no server-side image library is needed.

    Args:
        fmt: ``"png"`` or ``"svg"`` (``"jpeg"`` and ``"webp"`` also work).
        filename: file name without extension.
        scale: resolution multiplier (PNG).

    Returns:
        The config: no Plotly logo, no lasso/box-select buttons, the download options.

    Raises:
        ValueError: an image format Plotly cannot download.
    """
    if fmt not in ("png", "svg", "jpeg", "webp"):
        raise ValueError(f"fmt must be 'png' or 'svg', got {fmt!r}")
    return {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"],
            "toImageButtonOptions": {"format": fmt, "filename": filename, "scale": scale}}


def plotly_config(key: str) -> dict[str, Any]:
    """Plotly options for a chart: its camera button downloads it as PNG or SVG (the Share box's choice)."""
    return image_config(settings().img_fmt, f"deep-ensemble-lab-{key}")


def show(fig: go.Figure | dict | None, key: str, *, height: int | None = None, on_select: str | None = None,
         live: bool = False) -> Any:
    """Draw a Plotly figure with a stable key and a PNG/SVG download button.

    With ``on_select="rerun"`` a click selects a point and the selection event is returned.
    ``live=True`` (the live views) draws it with :func:`dashboard.live_plot.live_chart`:
    a new figure for the same key updates the chart in place, keeping the
    viewer's zoom; ``fig`` may then also be a figure's plain JSON data.
    """
    if fig is None:
        st.caption(":material/info: This chart could not be drawn for the current data.")
        return None
    if live:
        spec = fig if isinstance(fig, dict) else live_plot.to_spec(fig)
        if height:
            spec = {**spec, "layout": {**spec.get("layout", {}), "height": height}}
        live_plot.live_chart(spec, key, plotly_config(key))
        return None
    if height:
        fig.update_layout(height=height)
    theme.display_figure(fig, theme.chart_display())  # a projector's larger type, a phone's compact legend
    select = {"on_select": on_select, "selection_mode": "points"} if on_select else {}
    return st.plotly_chart(fig, key=key, config=theme.toolbar(plotly_config(key)), width="stretch", theme=None,
                           **select)


def show_in_place(fig: go.Figure | None, key: str) -> None:
    """A live view's chart ``key``, updated in place on each refresh (the viewer's zoom stays); nothing if ``None``."""
    if fig is not None:
        show(fig.update_layout(uirevision=key), key=key, live=True)


def preview_grid(dataset: Dataset) -> Any | None:
    """The inputs of the live preview: 1-D regression or 2-D classification, else ``None``."""
    if (dataset.task, dataset.n_features) not in (("regression", 1), ("classification", 2)):
        return None
    from ensemble_core import viz

    return viz.input_grid(dataset, n=200 if dataset.n_features == 1 else 50)


def lr_figure(cfg: RunConfig, n_train: int, steps_done: int | None = None) -> go.Figure | None:
    """The run's learning rate per step with its snapshot points, and a 'now' marker once steps were taken.

    Drawn from :func:`ensemble_core.schedules.schedule_points` (at most ~2,000
    exact points), so its cost does not grow with the run's number of steps.
    ``None`` (logged) when the schedule cannot be computed: a chart never takes the page down.
    """
    from ensemble_core import schedules

    try:
        plan = schedules.schedule_points(cfg, n_train)
    except Exception:  # noqa: BLE001 - a chart problem must not become a traceback
        log.exception("learning-rate schedule of %s failed", cfg)
        return None
    return figure("lr_figure", plan.lrs, steps=plan.steps, total_steps=plan.total,
                  steps_per_epoch=plan.steps_per_epoch, snapshot_steps=plan.snapshots,
                  now_step=steps_done - 1 if steps_done else None, height=260)


def lr_plan(cfg: RunConfig, n_train: int) -> dict | None:
    """The Train page's learning-rate chart before a run, as plain JSON data (``None`` if it failed).

    One spec per settings (without the seed) and row count serves every session
    of the server (read-only): a rerun after a setting change does not build a
    Plotly figure (see docs/decisions.md, "The schedule chart is shared").
    """
    return _shared_plan(_settings_key(cfg, n_train), cfg, n_train)


def _plan_spec(cfg: RunConfig, n_train: int) -> dict | None:
    """The schedule chart before a run, built (what :func:`lr_plan` shares)."""
    fig = lr_figure(cfg, n_train)
    return None if fig is None else live_plot.to_spec(fig)


@st.cache_resource(max_entries=64, show_spinner=False)
def _shared_plan(key: str, _cfg: RunConfig, _n_train: int) -> dict | None:
    """:func:`lr_plan` for the settings ``key`` (the arguments with a leading ``_`` are not hashed)."""
    return _plan_spec(_cfg, _n_train)


def _settings_key(cfg: RunConfig, *extra: Any) -> str:
    """A cache key of ``cfg`` without its seed (and of ``extra``): what sessions with these settings share."""
    return json.dumps([cfg.replace(seed=0).to_json(indent=None), *extra])
