"""dashboard.selection: the click grid makes a chart clickable and the click is read back."""

from __future__ import annotations

import pytest

from dashboard.selection import add_click_grid, click_grid, point_from_selection


def test_add_click_grid_makes_the_plot_clickable() -> None:
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], name="data"))
    with pytest.raises(ValueError, match="ranges"):
        add_click_grid(fig)
    fig.update_layout(xaxis_range=[-6, 6], yaxis_range=[-10, 10])
    curve = add_click_grid(fig, n=4)
    assert curve == 1 and len(fig.data[1].x) == 16 and fig.data[1].marker.opacity == 0
    assert fig.data[1].hoverinfo == "none"  # "skip" would also disable click events
    assert fig.layout.hovermode == "closest" and fig.data[0].unselected.marker.opacity == 1.0


def test_click_selection_gives_the_point_of_the_click_grid() -> None:
    xs, ys = click_grid((-6, 6), (-100, 100), n=5)
    assert xs.shape == ys.shape == (25,) and xs.min() == -6 and ys.max() == 100
    event = {"selection": {"points": [{"curve_number": 0, "x": 1.0, "y": 2.0},
                                      {"curve_number": 3, "x": 0.5, "y": -7.0}]}}
    assert point_from_selection(event, curve=3) == (0.5, -7.0)
    assert point_from_selection(event, curve=0) == (1.0, 2.0)
    assert point_from_selection(event, curve=9) is None
    assert point_from_selection({"selection": {"points": []}}) is None
    assert point_from_selection(None) is None
