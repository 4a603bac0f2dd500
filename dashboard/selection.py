"""Click to add data: an invisible point grid makes a Plotly chart clickable anywhere.

Plotly reports clicks only on points, so :func:`add_click_grid` covers the plot
with transparent points; :func:`point_from_selection` reads the clicked point
back from the selection event of ``st.plotly_chart(..., on_select="rerun")``.
Pure Plotly and numpy: the figure goes in, the page draws it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["click_grid", "add_click_grid", "point_from_selection"]


def click_grid(x_range: tuple[float, float], y_range: tuple[float, float], n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """A dense grid of invisible points covering the plot, so a click anywhere selects one.

    Plotly only reports clicks *on points*; :func:`add_click_grid` adds these
    as a transparent trace, so a click on empty space selects the nearest
    grid point.

    Args:
        x_range, y_range: the plot's axis ranges.
        n: grid points per axis.

    Returns:
        ``(xs, ys)`` flat arrays of ``n * n`` coordinates.
    """
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    gx, gy = np.meshgrid(np.linspace(*x_range, n), np.linspace(*y_range, n))
    return gx.ravel(), gy.ravel()


def add_click_grid(fig: Any, n: int = 60, *, x_range: tuple[float, float] | None = None,
                   y_range: tuple[float, float] | None = None) -> int:
    """Make a 1-D plot clickable anywhere: add the invisible click grid, return its trace index.

    Uses the figure's axis ranges unless given.  Sets ``hovermode="closest"``
    (so a click picks one grid point) and keeps unselected points fully
    visible (a click *selects* in Plotly, which would fade the other traces).
    Then show it with ``st.plotly_chart(fig, on_select="rerun",
    selection_mode="points", key=...)`` and read the click with
    :func:`point_from_selection` ``(event, curve=<the returned index>)``.

    Raises:
        ValueError: no ranges given and the figure has none.
    """
    xr = x_range or (tuple(fig.layout.xaxis.range) if fig.layout.xaxis.range else None)
    yr = y_range or (tuple(fig.layout.yaxis.range) if fig.layout.yaxis.range else None)
    if xr is None or yr is None:
        raise ValueError("the figure has no fixed axis ranges; pass x_range and y_range")
    xs, ys = click_grid(xr, yr, n)
    fig.update_traces(unselected=dict(marker=dict(opacity=1.0)), selector=dict(type="scatter"))
    fig.add_scatter(x=xs, y=ys, mode="markers", marker=dict(size=8, opacity=0), hoverinfo="none",
                    name="click to add a point", showlegend=False)
    fig.update_layout(hovermode="closest", clickmode="event+select")
    return len(fig.data) - 1


def point_from_selection(selection: Mapping[str, Any] | Any, curve: int | None = None) -> tuple[float, float] | None:
    """The clicked ``(x, y)`` from a Streamlit Plotly selection event.

    Args:
        selection: what ``st.plotly_chart(..., on_select="rerun")`` returned
            (``event``), or its ``event["selection"]``.
        curve: only accept points of this trace index (the click grid's);
            ``None`` accepts any trace.

    Returns:
        The last selected point, or ``None`` when nothing usable was clicked.
    """
    if selection is None:
        return None
    sel = selection.get("selection", selection) if isinstance(selection, Mapping) else getattr(selection, "selection", None)
    if sel is None:
        return None
    points = sel.get("points", []) if isinstance(sel, Mapping) else getattr(sel, "points", [])
    for p in reversed(list(points or [])):
        if curve is not None and p.get("curve_number") != curve:
            continue
        x, y = p.get("x"), p.get("y")
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and np.isfinite(x) and np.isfinite(y):
            return float(x), float(y)
    return None
