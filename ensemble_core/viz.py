"""Plotly figure builders for Deep Ensemble Lab: data in, ``go.Figure`` out.

No Streamlit here.  Every builder applies the registered :data:`TEMPLATE`
(large fonts for projection, a clean grid, the colour-blind-safe
:data:`PALETTE`) and sets ``layout.uirevision`` so a chart that is redrawn
with new data (live training) keeps the user's zoom.

Colour conventions, identical on every chart:

* member ``i`` is always :func:`member_color(i) <member_color>` (Okabe–Ito
  first, then Paul Tol's colour-blind-safe sets, 40 colours in all);
* the ensemble is :data:`ENSEMBLE_COLOR` (near-black, thick);
* aleatoric uncertainty is orange (:data:`ALEATORIC_COLOR`), epistemic is blue
  and hatched (:data:`EPISTEMIC_COLOR`), total is grey (:data:`TOTAL_COLOR`):
  blue/orange stays distinct for every common colour-vision deficiency and
  the hatch keeps them apart even in greyscale.

In Streamlit, show these with ``st.plotly_chart(fig, theme=None, key=...)``
so Streamlit's own chart theme does not override the template.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

__all__ = [
    "PALETTE", "ENSEMBLE_COLOR", "ALEATORIC_COLOR", "EPISTEMIC_COLOR", "TOTAL_COLOR", "TRUE_FN_COLOR",
    "NO_DATA_COLOR", "TEMPLATE", "member_color", "class_color", "Grid", "input_grid", "slice_grid",
    "loss_figure", "val_figure", "lr_figure", "data_figure", "feature_histograms", "bands_figure",
    "class_maps", "bands_y_range", "confidence_image", "pred_vs_actual", "intervals_by_uncertainty", "error_vs_uncertainty",
    "rejection_figure", "entropy_by_correctness", "prob_slice_figure", "reliability_figure", "calibration_figure",
    "coverage_figure", "size_curve_figure", "members_vs_ensemble_style",
]

# ----------------------------------------------------------------- colours
#: Okabe & Ito (2008) without black (orange and blue, the band colours, after
#: the others; yellow last: weak on white), then Paul
#: Tol's muted, bright, dark, light and vibrant schemes: 40 distinct colours.
PALETTE: tuple[str, ...] = (
    "#56B4E9", "#009E73", "#D55E00", "#CC79A7", "#E69F00", "#0072B2", "#F0E442",
    "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499",
    "#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377",
    "#222255", "#225555", "#225522", "#666633", "#663333",
    "#77AADD", "#EE8866", "#EEDD88", "#FFAABB", "#99DDFF", "#44BB99", "#AAAA00",
    "#0077BB", "#33BBEE", "#009988", "#EE7733", "#CC3311", "#EE3377",
)
ENSEMBLE_COLOR = "#1B2430"
ALEATORIC_COLOR = "#E69F00"
EPISTEMIC_COLOR = "#0072B2"
TOTAL_COLOR = "#8C96A3"
TRUE_FN_COLOR = "#4B5563"
NO_DATA_COLOR = "rgba(120, 130, 145, 0.13)"
GOOD_COLOR = "#0072B2"
BAD_COLOR = "#D55E00"
#: Class colours (maps, scatter): bold Okabe–Ito hues, one marker symbol per class too.
CLASS_COLORS: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9",
                                 "#F0E442", "#332288", "#882255", "#999933")
CLASS_SYMBOLS: tuple[str, ...] = ("circle", "diamond", "square", "triangle-up", "cross", "x",
                                  "triangle-down", "star", "hexagon", "pentagon")
SEQUENTIAL = "Cividis"  # perceptually uniform and colour-blind safe


def member_color(i: int) -> str:
    """Colour of member ``i`` (0-based), the same on every chart; cycles after 40."""
    return PALETTE[int(i) % len(PALETTE)]


def class_color(c: int) -> str:
    """Colour of class ``c`` (0-based) on maps and scatters."""
    return CLASS_COLORS[int(c) % len(CLASS_COLORS)]


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[k:k + 2], 16) for k in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha:g})"


# ---------------------------------------------------------------- template
TEMPLATE = "deep_ensemble_lab"
_FONT = '"Source Sans Pro", "Helvetica Neue", Arial, sans-serif'
_GRID = "#E3E7ED"
_AXIS = dict(showgrid=True, gridcolor=_GRID, gridwidth=1, zeroline=False, showline=True, linecolor="#9AA3AF",
             linewidth=1, ticks="outside", tickcolor="#9AA3AF", ticklen=5, tickfont=dict(size=15),
             title=dict(font=dict(size=17), standoff=10), automargin=True)
pio.templates[TEMPLATE] = go.layout.Template(
    layout=dict(
        font=dict(family=_FONT, size=16, color="#1B2430"),
        title=dict(font=dict(size=20), x=0.0, xanchor="left", xref="paper", y=0.98, yanchor="top"),
        paper_bgcolor="#FFFFFF", plot_bgcolor="#FFFFFF", colorway=list(PALETTE),
        xaxis=_AXIS, yaxis=_AXIS,
        legend=dict(font=dict(size=15), bgcolor="rgba(255,255,255,0.85)", borderwidth=0, itemsizing="constant"),
        hoverlabel=dict(font=dict(size=15, family=_FONT)), margin=dict(l=70, r=30, t=70, b=60),
        colorscale=dict(sequential=SEQUENTIAL),
    ),
    data=dict(heatmap=[go.Heatmap(colorscale=SEQUENTIAL)], contour=[go.Contour(colorscale=SEQUENTIAL)]),
)


#: A horizontal legend in rows at the bottom of the figure, below the axis title (Plotly makes room for
#: it).  Above the plot it sat where Plotly's toolbar appears, which covered it as soon as it took more
#: than one row (a phone, or many entries); any width wraps it here.
LEGEND_BELOW = dict(orientation="h", yref="container", y=0.0, yanchor="bottom", x=0.0, xanchor="left")


def _finish(fig: go.Figure, *, title: str | None, uirevision: Any, height: int | None,
            legend_below: bool = True, compact: bool = False) -> go.Figure:
    """Apply the template, title, legend placement, height and ``uirevision``.

    ``legend_below``: the legend in rows below the plot (:data:`LEGEND_BELOW`);
    otherwise Plotly's default, a column at the right.

    The key sizes and colours are also pinned on the figure itself (not only in
    the template), so they survive renderers that swap the template, such as
    Streamlit's default ``theme="streamlit"``.
    """
    # One update_layout call: Plotly validates and dispatches every call (tens of ms a call).
    compact_font = {"size": 13} if compact else {}
    layout: dict[str, Any] = dict(
        template=TEMPLATE, uirevision=uirevision, height=height, paper_bgcolor="#FFFFFF", plot_bgcolor="#FFFFFF",
        font=dict(family=_FONT, size=fig.layout.font.size or 16, color="#1B2430") | compact_font,
        legend=dict(font=dict(size=fig.layout.legend.font.size or 15)), hoverlabel=dict(font=dict(size=15)))
    for ax in list(fig.select_xaxes()) + list(fig.select_yaxes()):
        layout[ax.plotly_name] = dict(
            tickfont=dict(size=12 if compact else ax.tickfont.size or 15, color="#1B2430"),
            title=dict(font=dict(size=13 if compact else ax.title.font.size or 17, color="#1B2430")),
            gridcolor=ax.gridcolor or _GRID, linecolor=ax.linecolor or "#9AA3AF")
    if title and not compact:
        layout["title"] = dict(text=title)
    if legend_below:
        layout["legend"].update(LEGEND_BELOW)
    if compact:
        layout.update(margin=dict(l=50, r=10, t=30, b=40), showlegend=False)
    else:  # the top keeps room for the title, or only for the toolbar above the plot
        layout["margin"] = dict(t=70 if title else 40)
    fig.update_layout(layout)
    return fig


def _units(name: str, unit: str | None) -> str:
    return f"{name} ({unit})" if unit else name


def _clean(values: Iterable[Any]) -> list[float | None]:
    """Floats with non-finite values as ``None`` (a gap in a Plotly line, valid JSON)."""
    out: list[float | None] = []
    for v in values:
        f = float(v) if v is not None else float("nan")
        out.append(f if np.isfinite(f) else None)
    return out


#: :func:`robust_range`: a value is a spike when it lies more than this many times the spread of the
#: middle 90 % of the values beyond it (a restart spike of 240 over losses in [-1, 2] is; the high loss
#: of the first epochs is not).
SPIKE_FACTOR = 5.0


def _finite(values: Iterable[Any]) -> np.ndarray:
    v = np.asarray([float(x) if x is not None else np.nan for x in values], dtype=np.float64)
    return v[np.isfinite(v)]


def robust_range(values: Iterable[Any], *, pad: float = 0.08) -> tuple[float, float, int, float] | None:
    """A y-range that a few spikes cannot flatten: ``(lo, hi, n_clipped, largest)`` or ``None``.

    ``values`` is one series (epoch order) or a flat mix of values; :func:`series_range` is the
    same rule for several series.  ``None`` when no finite value lies beyond ``SPIKE_FACTOR`` x the
    5-95 % spread from that band (let Plotly autorange).  Otherwise the range spans every other
    value (plus ``pad`` of their span on each side); ``n_clipped`` values fall outside it, the
    farthest being ``largest``.
    """
    return series_range([values], pad=pad, leading=False)


def series_range(series: Iterable[Iterable[Any]], *, pad: float = 0.08,
                 leading: bool = True) -> tuple[float, float, int, float] | None:
    """:func:`robust_range` over several curves (each in epoch order), e.g. one per member.

    With ``leading`` (the default) each curve's first values, until it first enters the band of
    ordinary values, are its descent from the initial loss, not spikes: the range keeps them on
    the scale.  Only what lies outside the band *after* a curve reached it (a snapshot ensemble's
    restart, a diverging step) is left off the scale and counted.
    """
    curves = [_finite(s) for s in series]
    v = np.concatenate(curves) if curves else np.zeros(0)
    if len(v) < 4:
        return None
    q05, q95 = np.quantile(v, [0.05, 0.95])
    spread = max(q95 - q05, 1e-12 * max(1.0, abs(q95)))
    band_lo, band_hi = q05 - SPIKE_FACTOR * spread, q95 + SPIKE_FACTOR * spread
    keep_parts = []
    for c in curves:
        keep = (c >= band_lo) & (c <= band_hi)
        if leading and len(c) and keep.any():
            keep[:int(np.argmax(keep))] = True  # the descent before the curve first reached the band
        keep_parts.append(keep)
    keep = np.concatenate(keep_parts) if keep_parts else np.zeros(0, dtype=bool)
    if keep.all():
        return None
    lo, hi = float(v[keep].min()), float(v[keep].max())
    margin = pad * max(hi - lo, spread)
    lo, hi = lo - margin, hi + margin
    off = off_scale(v, lo, hi)  # what the range really leaves out (a value in its margin is still drawn)
    return None if off is None else (lo, hi, *off)


def off_scale(values: Iterable[Any], lo: float, hi: float) -> tuple[int, float] | None:
    """How many finite ``values`` lie outside ``[lo, hi]``, and the one farthest from their median; ``None`` if none."""
    v = _finite(values)
    out = v[(v < lo) | (v > hi)]
    if not len(out):
        return None
    return len(out), float(out[np.argmax(np.abs(out - np.median(v)))])


#: :func:`bands_figure` draws at most this many member means (the largest ensemble, 20 x 2 snapshots, has 40).
MAX_MEMBER_LINES = 40


def spike_note(n: int, largest: float, xref: str = "paper", yref: str = "paper") -> dict[str, Any]:
    """The annotation (a plain dict) that says ``n`` values lie off a :func:`robust_range` scale."""
    return dict(text=f"{n} spike{'s' if n > 1 else ''} off the scale (up to {largest:.3g})", showarrow=False,
                xref=xref, yref=yref, x=0.99, y=0.99, xanchor="right", yanchor="top",
                font=dict(size=13, color=TOTAL_COLOR), bgcolor="rgba(255,255,255,0.8)")


def _clip_axis(fig: go.Figure, series: Iterable[Iterable[Any]], *, row: int | None = None,
               col: int | None = None) -> None:
    """Set a robust y-range (:func:`series_range` of the curves ``series``) on ``fig``; say how many points it leaves out."""
    r = series_range(series)
    if r is None:
        return
    lo, hi, n, largest = r
    kw = {} if row is None else {"row": row, "col": col}
    fig.update_yaxes(range=[lo, hi], autorange=False, **kw)
    xref, yref = ("paper", "paper") if row is None else (f"x{'' if col == 1 else col} domain",
                                                         f"y{'' if col == 1 else col} domain")
    fig.add_annotation(**spike_note(n, largest, xref, yref))


def _kind(event: Any) -> str | None:
    return event.get("kind") if isinstance(event, dict) else getattr(event, "kind", None)


def _attr(event: Any, name: str) -> Any:
    return event.get(name) if isinstance(event, dict) else getattr(event, name)


# ------------------------------------------------------------ live training
def loss_figure(events: Sequence[Any], n_epochs: int, *, metric: str = "loss", n_members: int | None = None,
                title: str | None = None, height: int | None = 420, uirevision: Any = "loss",
                task: str | None = None) -> go.Figure:
    """Per-trajectory training loss (or accuracy) per epoch, for the live Train page.

    Exactly one trace per trajectory, named ``"Member k"`` (``"Member k
    (diverged)"``, dashed, once a :class:`~ensemble_core.run.MemberDiverged`
    names it), with one point per :class:`~ensemble_core.run.EpochEnd`
    seen.  The x-axis is fixed to ``[1, n_epochs]`` so the chart fills up live.

    Args:
        events: the run's events so far (any mix of event types).
        n_epochs: epochs planned.
        metric: ``"loss"`` (``EpochEnd.train_loss``) or ``"accuracy"`` (``train_acc``).
        n_members: draw this many (empty) traces before the first epoch ends.
        title, height, uirevision: layout options.
        task: names the loss's units on the axis: regression losses are computed on standardised
            targets (a Gaussian NLL can be negative), classification's is cross-entropy in nats.

    A few spikes (a snapshot run's restarts) do not flatten the chart: the y-axis spans the other
    values and a note says how many points are off the scale (:func:`robust_range`).

    Returns:
        The figure.
    """
    if metric not in ("loss", "accuracy"):
        raise ValueError(f"metric: must be 'loss' or 'accuracy', got {metric!r}")
    epochs = [e for e in events if _kind(e) == "epoch"]
    diverged = {int(_attr(e, "trajectory")) for e in events if _kind(e) == "diverged"}
    field = "train_loss" if metric == "loss" else "train_acc"
    rows = [(int(_attr(e, "epoch")), _attr(e, field)) for e in epochs]
    k = max([len(v) for _, v in rows if v is not None] + [n_members or 0])
    x = [ep for ep, _ in rows]
    markers = n_epochs <= 40
    fig = go.Figure()
    for j in range(k):
        ys = _clean(v[j] if v is not None and j < len(v) else None for _, v in rows)
        bad = j in diverged
        fig.add_trace(go.Scatter(
            x=x, y=ys, name=f"Member {j + 1}" + (" (diverged)" if bad else ""),
            mode="lines+markers" if markers else "lines", line=dict(color=member_color(j), width=2.5,
                                                                    dash="dash" if bad else "solid"),
            marker=dict(size=6, symbol="x" if bad else "circle"),
            hovertemplate=f"Member {j + 1}<br>epoch %{{x}}<br>{metric} %{{y:.4g}}<extra></extra>"))
    # two lines: the units under the name (a one-line title is cut off on a short chart)
    ytitle = ("Training accuracy" if metric == "accuracy" else
              "Training loss<br><sup>cross-entropy, nats</sup>" if task == "classification" else
              "Training loss<br><sup>standardised — can be negative</sup>" if task == "regression" else
              "Training loss<br><sup>standardised — NLL can be negative</sup>")
    fig.update_xaxes(title_text="Epoch", range=[0.5, max(n_epochs, 1) + 0.5], autorange=False)
    fig.update_yaxes(title_text=ytitle, tickformat=".0%" if metric == "accuracy" else None)
    if metric == "accuracy" and rows and all(v is None for _, v in rows):
        fig.add_annotation(text="No accuracy for regression", showarrow=False, xref="paper", yref="paper",
                           x=0.5, y=0.5, font=dict(size=18, color=TOTAL_COLOR))
    elif not rows:
        fig.add_annotation(text="Waiting for the first epoch…", showarrow=False, xref="paper", yref="paper",
                           x=0.5, y=0.5, font=dict(size=18, color=TOTAL_COLOR))
    elif metric == "loss":
        _clip_axis(fig, [t.y for t in fig.data])
    fig.update_layout(hovermode="closest")
    return _finish(fig, title=title, uirevision=uirevision, height=height, legend_below=k <= 10)


def val_figure(events: Sequence[Any], n_epochs: int, task: str, *, target_unit: str | None = None,
               height: int | None = 380, uirevision: Any = "val", mark_best: bool = False,
               member_best: Sequence[int] | None = None) -> go.Figure:
    """The ensemble's validation NLL and RMSE (regression) or accuracy (classification) per epoch.

    Two side-by-side panels sharing the epoch axis (fixed to ``[1, n_epochs]``); spikes do not
    flatten the NLL panel (:func:`robust_range`).  After training (``mark_best``) the NLL panel
    marks the epoch of the lowest validation NLL (a star) and says when the NLL rose clearly past
    it (:func:`ensemble_core.overfit.overfitting`); ``member_best`` (the epochs of each member's
    kept weights, a run trained with ``optim.keep_best``) adds one triangle per member on the
    epoch axis.  The live charts leave both off (one trace per series, updated in place).

    Args:
        events: the run's events so far; ``EpochEnd.val`` supplies the values.
        n_epochs: epochs planned.
        task: ``"regression"`` or ``"classification"``.
        target_unit: unit of the target, for the RMSE axis title.
        height, uirevision: layout options.
    """
    second = "rmse" if task == "regression" else "accuracy"
    label2 = _units("Validation RMSE", target_unit) if second == "rmse" else "Validation accuracy"
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08)
    rows = [(int(_attr(e, "epoch")), dict(_attr(e, "val") or {})) for e in events if _kind(e) == "epoch"]
    x = [ep for ep, _ in rows]
    for col, key, name in ((1, "nll", "Ensemble val NLL"), (2, second, f"Ensemble val {second.upper() if second == 'rmse' else 'accuracy'}")):
        fig.add_trace(go.Scatter(x=x, y=_clean(v.get(key) for _, v in rows), name=name,
                                 mode="lines+markers" if n_epochs <= 40 else "lines",
                                 line=dict(color=ENSEMBLE_COLOR, width=3), marker=dict(size=6),
                                 hovertemplate=f"epoch %{{x}}<br>{name}: %{{y:.4g}}<extra></extra>"),
                      row=1, col=col)
    fig.update_xaxes(title_text="Epoch", range=[0.5, max(n_epochs, 1) + 0.5], autorange=False)
    fig.update_yaxes(title_text="Validation NLL (nats)", row=1, col=1)
    _clip_axis(fig, [fig.data[0].y], row=1, col=1)
    if mark_best:
        _mark_best(fig, events, member_best)
    fig.update_yaxes(title_text=label2.replace("Validation", "Val"), row=1, col=2, side="right",
                     tickformat=".0%" if second == "accuracy" else None)
    if rows and all(not v for _, v in rows):
        fig.add_annotation(text="No validation split", showarrow=False, xref="paper", yref="paper",
                           x=0.5, y=0.5, font=dict(size=18, color=TOTAL_COLOR))
    return _finish(fig, title=None, uirevision=uirevision, height=height, legend_below=False).update_layout(
        showlegend=False, margin=dict(t=20))


def _mark_best(fig: go.Figure, events: Sequence[Any], member_best: Sequence[int] | None) -> None:
    """Star at the ensemble's best validation NLL; member triangles; a note when the NLL rose past it."""
    from .overfit import overfitting

    o = overfitting(events, keep_best=member_best is not None)
    if o is not None:
        fig.add_trace(go.Scatter(x=[o.best_epoch], y=[o.best], name=f"Best (epoch {o.best_epoch})", mode="markers",
                                 marker=dict(symbol="star", size=18, color=EPISTEMIC_COLOR,
                                             line=dict(color="#FFFFFF", width=1.5)),
                                 hovertemplate=f"lowest validation NLL %{{y:.4g}} at epoch {o.best_epoch}"
                                               "<extra></extra>"), row=1, col=1)
        if o.rose:
            fig.add_annotation(text=f"rose {o.last - o.best:.2g} nats past its best", showarrow=False,
                               xref="x domain", yref="y domain", x=0.02, y=0.99, xanchor="left", yanchor="top",
                               font=dict(size=13, color=ALEATORIC_COLOR), bgcolor="rgba(255,255,255,0.8)")
    if member_best:
        fig.add_trace(go.Scatter(
            x=list(member_best), y=[0.0] * len(member_best), name="Members' kept weights", mode="markers",
            yaxis="y", marker=dict(symbol="triangle-up", size=13, color=[member_color(i) for i in range(len(member_best))]),
            customdata=[i + 1 for i in range(len(member_best))],
            hovertemplate="member %{customdata}: best validation weights from epoch %{x}<extra></extra>"),
            row=1, col=1)
        fig.data[-1].update(y=[_panel_floor(fig)] * len(member_best))


def _panel_floor(fig: go.Figure) -> float:
    """The lowest finite NLL drawn (the member triangles sit on it)."""
    ys = [y for y in fig.data[0].y if y is not None]
    return float(min(ys)) if ys else 0.0


def lr_figure(lrs: np.ndarray, *, steps_per_epoch: int, snapshot_steps: Sequence[int] = (),
              now_step: int | None = None, title: str | None = None, height: int | None = 300,
              uirevision: Any = "lr", max_points: int = 4000, steps: Sequence[int] | None = None,
              total_steps: int | None = None) -> go.Figure:
    """The learning rate of every optimiser step, x in epochs, with snapshot points and a "now" line.

    Step ``t`` (0-based) is drawn at ``(t + 1) / steps_per_epoch`` epochs.
    Snapshots at ``snapshot_steps`` (0-based step indices after which a
    snapshot is taken) are hollow while planned and filled once ``now_step``
    has reached them.

    Args:
        lrs: ``[T]`` learning rate per step, or the learning rate at each of ``steps``.
        steps_per_epoch: optimiser steps per epoch (> 0).
        snapshot_steps: steps at which snapshots are taken (drawn when their
            learning rate is known: every step, or one of ``steps``).
        now_step: the last step done (``None``: training not started).
        title, height, uirevision: layout options.
        max_points: the line is thinned (evenly) to at most this many points.
        steps: the 0-based, increasing steps whose rates ``lrs`` holds (a
            schedule drawn at a few points: :func:`ensemble_core.schedules.schedule_points`);
            ``None``: every step ``0..T-1``.
        total_steps: the run's number of steps (default: ``len(lrs)``, or the last of ``steps`` + 1).
    """
    if steps_per_epoch <= 0:
        raise ValueError(f"steps_per_epoch: must be > 0, got {steps_per_epoch}")
    lrs = np.asarray(lrs, dtype=np.float64).ravel()
    t = np.arange(len(lrs)) if steps is None else np.asarray(steps, dtype=np.int64).ravel()
    if len(t) != len(lrs):
        raise ValueError(f"steps: {len(t)} steps for {len(lrs)} learning rates")
    total = int(total_steps) if total_steps is not None else (int(t[-1]) + 1 if len(t) else 0)
    keep = np.arange(len(t)) if len(t) <= max_points else np.unique(
        np.linspace(0, len(t) - 1, max_points).astype(int))
    x = (t + 1) / steps_per_epoch
    fig = go.Figure(go.Scatter(x=x[keep], y=lrs[keep], name="Learning rate", mode="lines",
                               line=dict(color=ENSEMBLE_COLOR, width=2.5),
                               hovertemplate="epoch %{x:.2f}<br>lr %{y:.3g}<extra></extra>"))
    pos = np.searchsorted(t, np.asarray(list(snapshot_steps), dtype=np.int64))
    known = [(int(s), int(i)) for s, i in zip(snapshot_steps, pos) if 0 <= s < total and i < len(t) and t[i] == s]
    snaps = np.asarray([s for s, _ in known], dtype=int)
    at = np.asarray([i for _, i in known], dtype=int)
    done = snaps <= now_step if now_step is not None else np.zeros(len(snaps), bool)
    for mask, name, fill in ((~done, "Snapshot (planned)", "white"), (done, "Snapshot taken", EPISTEMIC_COLOR)):
        fig.add_trace(go.Scatter(x=(snaps[mask] + 1) / steps_per_epoch, y=lrs[at[mask]], name=name, mode="markers",
                                 marker=dict(size=13, color=fill, symbol="star",
                                             line=dict(color=EPISTEMIC_COLOR, width=2)),
                                 hovertemplate=name + " at epoch %{x:.2f}<extra></extra>"))
    if now_step is not None and total:
        xn = (min(now_step, total - 1) + 1) / steps_per_epoch
        fig.add_vline(x=xn, line=dict(color=BAD_COLOR, width=2.5, dash="dot"),
                      annotation=dict(text="now", font=dict(color=BAD_COLOR, size=15)),
                      annotation_position="top left" if xn > 0.5 * total / steps_per_epoch else "top right")
    fig.update_xaxes(title_text="Epoch", range=[0, max(total, 1) / steps_per_epoch])
    top = float(np.nanmax(lrs)) if len(lrs) else 1.0
    fig.update_yaxes(title_text="Learning rate", exponentformat="power", range=[-0.08 * top, 1.3 * top])  # room for "now" above the line
    fig = _finish(fig, title=title, uirevision=uirevision, height=height)
    if not len(snaps) and not title:  # one line, no legend: no empty band above the plot
        fig.update_layout(showlegend=False, margin=dict(t=30))
    return fig


# ----------------------------------------------------------------- the data
@dataclass
class Grid:
    """Inputs to predict on for a plot, in raw units.

    Attributes:
        x: ``[N, d]`` points to pass to ``predict`` (``np.asarray(grid)`` also gives it).
        xs: the grid values along the first plotted feature.
        ys: along the second (2-D grids) else ``None``.
        shape: ``(len(ys), len(xs))`` for 2-D grids (reshape a ``[N]`` result to
            it for a map), ``(len(xs),)`` for 1-D.
    """

    x: np.ndarray
    xs: np.ndarray
    ys: np.ndarray | None
    shape: tuple[int, ...]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.x if dtype is None else self.x.astype(dtype)

    def __len__(self) -> int:
        return len(self.x)


def _all_x(dataset: Any) -> np.ndarray:
    parts = [np.asarray(getattr(dataset, n)) for n in ("x_train", "x_val", "x_test")]
    return np.concatenate([p.reshape(len(p), -1) for p in parts if p is not None and len(p)], axis=0)


def _range(values: np.ndarray, margin: float) -> tuple[float, float]:
    lo, hi = float(np.min(values)), float(np.max(values))
    pad = (hi - lo) * margin if hi > lo else 1.0
    return lo - pad, hi + pad


def bands_y_range(y_train: np.ndarray, mean: np.ndarray, sd: np.ndarray, k: float) -> tuple[float, float]:
    """The y-axis range of :func:`bands_figure`: the training targets, the mean and its ``±k·sd`` band with
    6 % padding, but never wider than the targets and the mean with 60 % padding (a band that explodes far
    from the data, or a true function that runs away, may leave the frame; the mean does not)."""
    y_train, mean, sd = (np.asarray(a, dtype=np.float64) for a in (y_train, mean, sd))
    lo, hi = _range(np.concatenate([y_train, mean, mean - k * sd, mean + k * sd]) if len(sd) else y_train, 0.06)
    near = _range(np.concatenate([y_train, mean]), 0.6)
    return max(lo, near[0]), min(hi, near[1])


def input_grid(dataset: Any, n: int | None = None, *, margin: float = 0.25) -> Grid:
    """The grid to predict on for a 1-D or 2-D dataset's plots.

    1-D: ``n`` (default 300) points over ``dataset.plot_range`` or the data
    range widened by ``margin`` on each side.  2-D: an ``n x n`` (default 120)
    meshgrid over the widened data range, flattened row by row (``y`` outer).

    Raises:
        ValueError: for more than two features (use :func:`slice_grid`).
    """
    d = dataset.n_features
    xall = _all_x(dataset)
    if d == 1:
        n = n or 300
        lo, hi = dataset.plot_range if dataset.plot_range else _range(xall[:, 0], margin)
        xs = np.linspace(lo, hi, n)
        return Grid(xs[:, None], xs, None, (n,))
    if d == 2:
        n = n or 120
        xs = np.linspace(*_range(xall[:, 0], margin / 2), n)
        ys = np.linspace(*_range(xall[:, 1], margin / 2), n)
        xx, yy = np.meshgrid(xs, ys)
        return Grid(np.column_stack([xx.ravel(), yy.ravel()]), xs, ys, (n, n))
    raise ValueError(f"input_grid: needs 1 or 2 features, the data has {d}; use slice_grid for a 1-D slice")


def slice_grid(dataset: Any, feature: int, n: int = 200, *, margin: float = 0.15) -> Grid:
    """A 1-D slice through input space: ``feature`` varies over its (widened) range, the others at their training median."""
    xtr = np.asarray(dataset.x_train, dtype=np.float64)
    if not 0 <= feature < xtr.shape[1]:
        raise ValueError(f"feature: must be in [0, {xtr.shape[1] - 1}], got {feature}")
    xs = np.linspace(*_range(_all_x(dataset)[:, feature], margin), n)
    x = np.tile(np.median(xtr, axis=0), (n, 1))
    x[:, feature] = xs
    return Grid(x, xs, None, (n,))


def _class_name(dataset: Any, c: int) -> str:
    names = getattr(dataset, "class_names", None)
    return str(names[c]) if names and c < len(names) else f"Class {c}"


def data_figure(dataset: Any, *, height: int | None = 480, uirevision: Any = "data") -> go.Figure:
    """The training/validation/test data: the clearest view for its dimension.

    1 feature: scatter (target against feature; the true function and the
    gaps when known).  2 features: scatter coloured by class (with one symbol
    per class) or by target value.  More: :func:`feature_histograms`.
    """
    d = dataset.n_features
    if d > 2:
        return feature_histograms(dataset, height=height, uirevision=uirevision)
    cls = dataset.task == "classification"
    splits = [("Train", dataset.x_train, dataset.y_train, 1.0), ("Validation", dataset.x_val, dataset.y_val, 0.55),
              ("Test", dataset.x_test, dataset.y_test, 0.55)]
    symbols = {"Train": "circle", "Validation": "diamond-open", "Test": "square-open"}
    fig = go.Figure()
    if d == 1:
        xs = input_grid(dataset).xs
        _shade_no_data(fig, dataset, xs[0], xs[-1], feature=0)
        if dataset.true_fn is not None:
            fig.add_trace(go.Scatter(x=xs, y=np.asarray(dataset.true_fn(xs)), name="True function",
                                     mode="lines", line=dict(color=TRUE_FN_COLOR, width=2.5, dash="dash")))
        for name, x, y, op in splits:
            if x is None or not len(x):
                continue
            fig.add_trace(go.Scatter(x=np.asarray(x)[:, 0], y=np.asarray(y), name=f"{name} ({len(x)})",
                                     mode="markers", opacity=op,
                                     marker=dict(size=10, color=ENSEMBLE_COLOR if name == "Train" else EPISTEMIC_COLOR,
                                                 symbol=symbols[name], line=dict(color="white", width=1))))
        fig.update_xaxes(title_text=dataset.feature_names[0], range=[xs[0], xs[-1]])
        fig.update_yaxes(title_text=dataset.target_name)
        return _finish(fig, title=None, uirevision=uirevision, height=height)
    for name, x, y, op in splits:
        if x is None or not len(x):
            continue
        x, y = np.asarray(x), np.asarray(y)
        if cls:
            for c in np.unique(y).astype(int):
                m = y == c
                fig.add_trace(go.Scatter(
                    x=x[m, 0], y=x[m, 1], mode="markers", opacity=op, legendgroup=f"class{c}",
                    name=f"{_class_name(dataset, c)}" + ("" if name == "Train" else f" ({name.lower()})"),
                    showlegend=name == "Train",
                    marker=dict(size=9, color=class_color(c), symbol=CLASS_SYMBOLS[c % len(CLASS_SYMBOLS)],
                                line=dict(color="white", width=1))))
        else:
            fig.add_trace(go.Scatter(x=x[:, 0], y=x[:, 1], mode="markers", opacity=op, name=name,
                                     marker=dict(size=9, color=y, colorscale=SEQUENTIAL, showscale=name == "Train",
                                                 colorbar=dict(title=dict(text=dataset.target_name)),
                                                 symbol=symbols[name].replace("-open", ""))))
    fig.update_xaxes(title_text=dataset.feature_names[0])
    fig.update_yaxes(title_text=dataset.feature_names[1])
    return _finish(fig, title=None, uirevision=uirevision, height=height)


def feature_histograms(dataset: Any, *, max_features: int = 12, cols: int = 4, height: int | None = None,
                       uirevision: Any = "hist") -> go.Figure:
    """Histograms of the first ``max_features`` training features (stacked by class for classification)."""
    x = np.asarray(dataset.x_train, dtype=np.float64)
    y = np.asarray(dataset.y_train)
    k = min(x.shape[1], max_features)
    rows = int(np.ceil(k / cols))
    fig = make_subplots(rows=rows, cols=min(cols, k), subplot_titles=[str(n) for n in dataset.feature_names[:k]],
                        horizontal_spacing=0.06, vertical_spacing=0.16 if rows > 1 else 0.05)
    classes = np.unique(y).astype(int) if dataset.task == "classification" else [None]
    for j in range(k):
        r, c = j // cols + 1, j % cols + 1
        for cl in classes:
            vals = x[:, j] if cl is None else x[y == cl, j]
            fig.add_trace(go.Histogram(x=vals, nbinsx=20, legendgroup=str(cl), showlegend=j == 0 and cl is not None,
                                       name=_class_name(dataset, cl) if cl is not None else "Train",
                                       marker=dict(color=ENSEMBLE_COLOR if cl is None else class_color(cl),
                                                   line=dict(color="white", width=0.5)), opacity=0.85),
                          row=r, col=c)
    fig.update_layout(barmode="stack", bargap=0.05)
    fig.update_annotations(font_size=15)
    fig.update_yaxes(title_text="", tickfont=dict(size=12))
    fig.update_xaxes(tickfont=dict(size=12))
    if x.shape[1] > k:
        fig.add_annotation(text=f"first {k} of {x.shape[1]} features", xref="paper", yref="paper", x=1, y=-0.12,
                           showarrow=False, font=dict(size=13, color=TOTAL_COLOR), xanchor="right")
    return _finish(fig, title=None, uirevision=uirevision, height=height or 250 * rows + 90).update_layout(
        margin=dict(t=60))  # the subplots' titles


def _no_data_intervals(dataset: Any, lo: float, hi: float, feature: int = 0) -> list[tuple[float, float]]:
    xtr = np.asarray(dataset.x_train, dtype=np.float64)[:, feature]
    a, b = float(xtr.min()), float(xtr.max())
    out = [(lo, a)] if lo < a else []
    if feature == 0 and dataset.n_features == 1:
        out += [(max(g0, lo), min(g1, hi)) for g0, g1 in (dataset.gaps or []) if g1 > lo and g0 < hi]
    if hi > b:
        out.append((b, hi))
    return out


def _shade_no_data(fig: go.Figure, dataset: Any, lo: float, hi: float, feature: int = 0) -> None:
    spans = _no_data_intervals(dataset, lo, hi, feature)
    for a, b in spans:
        fig.add_vrect(x0=a, x1=b, fillcolor=NO_DATA_COLOR, line_width=0, layer="below")
    if spans:  # one legend entry for all the shaded spans
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="No training data",
                                 marker=dict(size=15, symbol="square", color=NO_DATA_COLOR.replace("0.13", "0.35"))))


# ------------------------------------------------------ 1-D regression bands
def _band(x: np.ndarray, mean: np.ndarray, half: np.ndarray, name: str, color: str, alpha: float,
          hatch: bool = False) -> go.Scatter:
    """A closed polygon ``mean ± half``: ``y[:n]`` is the upper edge, ``y[n:]`` the lower edge reversed."""
    return go.Scatter(
        x=np.concatenate([x, x[::-1]]), y=np.concatenate([mean + half, (mean - half)[::-1]]), name=name,
        fill="toself", fillcolor=_rgba(color, alpha), line=dict(color=_rgba(color, 0.9), width=1),
        fillpattern=dict(shape="/", fgcolor=_rgba(color, 0.55), bgcolor=_rgba(color, alpha), size=10, solidity=0.25)
        if hatch else None, hoverinfo="skip", legendgroup=name)


def bands_figure(dataset: Any, x_grid: Any, prediction: Any, *, split: bool = True, members: bool = True,
                 compact: bool = False, feature: int = 0, title: str | None = None, target_unit: str | None = None,
                 height: int | None = None, uirevision: Any = "bands", sigmas: float = 2.0) -> go.Figure:
    """1-D regression: data, true function, ensemble mean and its ±2σ uncertainty bands.

    Bands are ``mean ± 2 sqrt(variance)``: "Total ±2σ" (grey) and, when
    ``split``, "Aleatoric ±2σ" (orange, data noise) and "Epistemic ±2σ" (blue,
    hatched, disagreement between members) drawn over it.  With ``members``,
    each member's mean is a thin line in its colour ("Member k", hidden from
    the legend, which has one "Member means" entry toggling them all).  Input
    regions without training data are shaded.

    Args:
        dataset: the :class:`~ensemble_core.data.Dataset` (training points, ``true_fn``, ``gaps``).
        x_grid: a :class:`Grid` or ``[N, d]`` array of the inputs predicted on.
        prediction: a :class:`~ensemble_core.predict.RegressionPrediction` on ``x_grid``.
        split: draw the aleatoric and epistemic bands.
        members: draw each member's mean.
        compact: small live preview (no legend/title, small fonts).
        feature: the input column on the x-axis (a slice for multi-feature data;
            the true function and gaps are drawn only for 1-D data).
        title, target_unit, height, uirevision: layout options.
        sigmas: band half-width in standard deviations (2 by default; the paper's Figure 1 uses 3),
            named in the legend ("Total ±3σ").
    """
    k = float(sigmas)
    xg = np.asarray(x_grid, dtype=np.float64)
    x = xg[:, feature] if xg.ndim == 2 else xg.ravel()
    order = np.argsort(x, kind="stable")
    x = x[order]
    mean = np.asarray(prediction.mean, dtype=np.float64)[order]
    one_d = dataset.n_features == 1
    fig = go.Figure()
    _shade_no_data(fig, dataset, float(x[0]), float(x[-1]), feature)
    fig.add_trace(_band(x, mean, k * np.sqrt(np.asarray(prediction.total, dtype=np.float64)[order]), f"Total ±{k:g}σ",
                        TOTAL_COLOR, 0.22))
    if split:
        fig.add_trace(_band(x, mean, k * np.sqrt(np.asarray(prediction.aleatoric, dtype=np.float64)[order]),
                            f"Aleatoric ±{k:g}σ", ALEATORIC_COLOR, 0.33))
        fig.add_trace(_band(x, mean, k * np.sqrt(np.asarray(prediction.epistemic, dtype=np.float64)[order]),
                            f"Epistemic ±{k:g}σ", EPISTEMIC_COLOR, 0.22, hatch=True))
    if members and len(prediction.member_means) > MAX_MEMBER_LINES:
        # more lines than any ensemble has: an MC-dropout run's stochastic passes (each row gets its
        # own masks, so a pass is no smooth curve); the bands already show their spread
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=TOTAL_COLOR, width=1.6),
                                 name=f"{len(prediction.member_means)} stochastic passes (not drawn)"))
    elif members:
        mm = np.asarray(prediction.member_means, dtype=np.float64)
        idx = list(getattr(prediction, "members", range(len(mm))))
        for row, i in zip(mm, idx):
            fig.add_trace(go.Scatter(x=x, y=row[order], name=f"Member {i + 1}", mode="lines", showlegend=False,
                                     legendgroup="members", opacity=0.8, line=dict(color=member_color(i), width=1.6),
                                     hovertemplate=f"Member {i + 1}: %{{y:.3g}}<extra></extra>"))
        fig.add_trace(go.Scatter(x=[None], y=[None], name=f"Member means ({len(mm)})", mode="lines",
                                 legendgroup="members", line=dict(color=TOTAL_COLOR, width=1.6)))
    if one_d and dataset.true_fn is not None:
        fig.add_trace(go.Scatter(x=x, y=np.asarray(dataset.true_fn(x)), name="True function", mode="lines",
                                 line=dict(color=TRUE_FN_COLOR, width=2.5, dash="dash"), hoverinfo="skip"))
    sd = np.sqrt(np.asarray(prediction.total, dtype=np.float64)[order])
    fig.add_trace(go.Scatter(x=x, y=mean, name="Ensemble mean", mode="lines", line=dict(color=ENSEMBLE_COLOR, width=3.5),
                             customdata=sd, hovertemplate="x %{x:.3g}<br>mean %{y:.3g} ± %{customdata:.3g} (1σ)"
                             "<extra>Ensemble</extra>"))
    xtr = np.asarray(dataset.x_train, dtype=np.float64)[:, feature]
    ytr = np.asarray(dataset.y_train, dtype=np.float64)
    fig.add_trace(go.Scatter(x=xtr, y=ytr, name="Training data" if one_d else "Training data (other features vary)",
                             mode="markers", opacity=1.0 if one_d else 0.35,
                             marker=dict(size=7 if compact else 10, color="white", symbol="circle",
                                         line=dict(color=ENSEMBLE_COLOR, width=2)),
                             hovertemplate="x %{x:.3g}<br>y %{y:.3g}<extra>train</extra>"))
    # Frame the data and the prediction; a band that explodes far from the data
    # (or a true function that runs away) may leave the frame, the mean does not.
    lo, hi = bands_y_range(ytr, mean, sd, k)
    fig.update_xaxes(title_text=dataset.feature_names[feature], range=[float(x[0]), float(x[-1])])
    fig.update_yaxes(title_text=_units(dataset.target_name, target_unit), range=[lo, hi])
    fig.update_layout(hovermode="x" if not compact else False)
    return _finish(fig, title=title, uirevision=uirevision, height=height or (300 if compact else 540),
                   compact=compact)


# ------------------------------------------------- 2-D classification maps
def confidence_image(probs: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """RGB image: the predicted class's colour, faded to white as confidence falls to chance."""
    c = probs.shape[1]
    label = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    strength = np.clip((conf - 1.0 / c) / (1.0 - 1.0 / c), 0, 1) if c > 1 else np.ones_like(conf)
    rgb = np.array([[int(class_color(k)[i:i + 2], 16) for i in (1, 3, 5)] for k in range(c)], dtype=np.float64)
    img = 255.0 * (1 - 0.85 * strength[:, None]) + rgb[label] * 0.85 * strength[:, None]
    return img.reshape(*shape, 3).round().astype(np.uint8)


def class_maps(dataset: Any, grid: Any, prediction: Any, *, compact: bool = False, show_test: bool = False,
               height: int | None = None, uirevision: Any = "class_maps") -> go.Figure:
    """2-D classification: predicted class & confidence, total entropy and mutual information over the plane.

    Three panels with shared axes and the training data overlaid (class
    colour + symbol): (1) the predicted class, faded to white where the
    ensemble is unsure; (2) total predictive entropy (nats); (3) mutual
    information between prediction and member (epistemic, nats).
    ``compact`` draws only panel (1), small, for the live preview.

    Args:
        dataset: the 2-feature :class:`~ensemble_core.data.Dataset`.
        grid: the :class:`Grid` from :func:`input_grid` (or an ``[n*n, 2]`` square grid).
        prediction: a :class:`~ensemble_core.predict.ClassificationPrediction` on ``grid``.
    """
    if not isinstance(grid, Grid):
        g = np.asarray(grid, dtype=np.float64)
        n = int(round(np.sqrt(len(g))))
        grid = Grid(g, np.unique(g[:, 0]), np.unique(g[:, 1]), (n, n))
    xs, ys = np.asarray(grid.xs), np.asarray(grid.ys)
    probs = np.asarray(prediction.probs, dtype=np.float64)
    panels = ["Predicted class (faded = unsure)"] if compact else [
        "Predicted class (faded = unsure)", "Total uncertainty: entropy", "Epistemic: mutual information"]
    fig = make_subplots(rows=1, cols=len(panels), shared_yaxes=True, horizontal_spacing=0.08,
                        subplot_titles=None if compact else panels)
    dx, dy = float(xs[1] - xs[0]), float(ys[1] - ys[0])
    fig.add_trace(go.Image(z=confidence_image(probs, grid.shape), x0=float(xs[0]), dx=dx, y0=float(ys[0]), dy=dy,
                           name="Predicted class", customdata=np.stack([probs.argmax(1), probs.max(1)], 1)
                           .reshape(*grid.shape, 2), hovertemplate="x %{x:.2f}, y %{y:.2f}<br>class %{customdata[0]}"
                           ", p = %{customdata[1]:.2f}<extra></extra>"), row=1, col=1)
    if not compact:
        hi = float(np.log(probs.shape[1]))
        for col, values, name, cx in ((2, prediction.total, "Entropy", 0.635), (3, prediction.epistemic, "MI", 1.0)):
            z = np.asarray(values, dtype=np.float64).reshape(grid.shape)
            fig.add_trace(go.Heatmap(x=xs, y=ys, z=z, name=name, colorscale=SEQUENTIAL, zmin=0,
                                     zmax=hi if col == 2 else max(float(z.max()), 1e-3),
                                     colorbar=dict(title=dict(text="nats", side="top"), x=cx + 0.01, len=0.85,
                                                   thickness=14, tickfont=dict(size=13)),
                                     hovertemplate=f"x %{{x:.2f}}, y %{{y:.2f}}<br>{name} %{{z:.3f}} nats<extra></extra>"),
                          row=1, col=col)
    x, y = np.asarray(dataset.x_train), np.asarray(dataset.y_train).astype(int)
    if show_test and dataset.x_test is not None and len(dataset.x_test):
        x, y = np.asarray(dataset.x_test), np.asarray(dataset.y_test).astype(int)
    for col in range(1, len(panels) + 1):
        for c in np.unique(y):
            m = y == c
            fig.add_trace(go.Scatter(x=x[m, 0], y=x[m, 1], mode="markers", name=_class_name(dataset, c),
                                     legendgroup=f"class{c}", showlegend=col == 1,
                                     marker=dict(size=6 if compact else 8, color=class_color(c),
                                                 symbol=CLASS_SYMBOLS[c % len(CLASS_SYMBOLS)],
                                                 line=dict(color="white", width=1.2)),
                                     hovertemplate=f"{_class_name(dataset, c)}<extra></extra>"), row=1, col=col)
    fig.update_xaxes(range=[float(xs[0]) - dx / 2, float(xs[-1]) + dx / 2], title_text=dataset.feature_names[0],
                     showgrid=False, matches="x", constrain="domain")
    fig.update_yaxes(range=[float(ys[0]) - dy / 2, float(ys[-1]) + dy / 2], autorange=False, showgrid=False)
    fig.update_yaxes(title_text=dataset.feature_names[1], row=1, col=1)
    fig.update_yaxes(scaleanchor=False)
    fig.update_annotations(font_size=17)
    fig = _finish(fig, title=None, uirevision=uirevision, height=height or (320 if compact else 480),
                  legend_below=False, compact=compact)
    if compact:
        return fig
    return fig.update_layout(margin=dict(t=50), legend=LEGEND_BELOW)


# --------------------------------------------------------- more features
def _reg_arrays(y: Any, prediction: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64).ravel()
    mean = np.asarray(prediction.mean, dtype=np.float64).ravel()
    sd = np.sqrt(np.maximum(np.asarray(prediction.total, dtype=np.float64).ravel(), 0))
    if not len(y) == len(mean) == len(sd):
        raise ValueError(f"y and prediction must have the same length; got {len(y)} and {len(mean)}")
    return y, mean, sd


def pred_vs_actual(y: Any, prediction: Any, *, target_name: str = "target", target_unit: str | None = None,
                   height: int | None = 480, uirevision: Any = "pred_vs_actual") -> go.Figure:
    """Predicted mean against the observed value, each with its ±2σ interval, and the ``y = x`` line."""
    y, mean, sd = _reg_arrays(y, prediction)
    inside = np.abs(y - mean) <= 2 * sd
    lo, hi = _range(np.concatenate([y, mean]), 0.06)
    fig = go.Figure(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="Perfect prediction",
                               line=dict(color=TOTAL_COLOR, width=2, dash="dash"), hoverinfo="skip"))
    for mask, name, color, sym in ((inside, "Inside its ±2σ interval", GOOD_COLOR, "circle"),
                                   (~inside, "Outside its ±2σ interval", BAD_COLOR, "x")):
        fig.add_trace(go.Scatter(x=y[mask], y=mean[mask], mode="markers", name=f"{name} ({mask.sum()})",
                                 error_y=dict(type="data", array=2 * sd[mask], color=_rgba(color, 0.35), thickness=1.5,
                                              width=0),
                                 marker=dict(size=8, color=color, symbol=sym, line=dict(color="white", width=0.5)),
                                 hovertemplate="observed %{x:.3g}<br>predicted %{y:.3g}<extra></extra>"))
    fig.update_xaxes(title_text=_units(f"Observed {target_name}", target_unit), range=[lo, hi])
    fig.update_yaxes(title_text=_units(f"Predicted {target_name} (±2σ)", target_unit))
    return _finish(fig, title=None, uirevision=uirevision, height=height)


def intervals_by_uncertainty(y: Any, prediction: Any, *, target_unit: str | None = None, height: int | None = 440,
                             uirevision: Any = "intervals") -> go.Figure:
    """Test points ordered by predicted σ: residual ``y - mean`` against the ±2σ interval (centred on 0).

    A useful uncertainty makes the interval grow where residuals grow; about
    95% of points should fall inside a calibrated ±2σ band.
    """
    y, mean, sd = _reg_arrays(y, prediction)
    order = np.argsort(sd, kind="stable")
    r, s = (y - mean)[order], sd[order]
    rank = np.arange(1, len(y) + 1)
    inside = np.abs(r) <= 2 * s
    fig = go.Figure(_band(rank.astype(float), np.zeros(len(s)), 2 * s, "Predicted ±2σ interval", EPISTEMIC_COLOR, 0.2))
    for mask, name, color, sym in ((inside, "Inside", GOOD_COLOR, "circle"), (~inside, "Outside", BAD_COLOR, "x")):
        fig.add_trace(go.Scatter(x=rank[mask], y=r[mask], mode="markers", name=f"{name} ({mask.sum()})",
                                 marker=dict(size=8, color=color, symbol=sym),
                                 hovertemplate="rank %{x}<br>residual %{y:.3g}<extra></extra>"))
    share = inside.mean() if len(y) else float("nan")
    fig.update_xaxes(title_text="Test points, ordered by predicted σ (low → high)")
    fig.update_yaxes(title_text=_units("Observed − predicted", target_unit), zeroline=True, zerolinecolor="#9AA3AF")
    return _finish(fig, title=f"{share:.0%} of test points inside ±2σ (≈95% if calibrated)",
                   uirevision=uirevision, height=height)


def error_vs_uncertainty(y: Any, prediction: Any, *, target_unit: str | None = None, n_bins: int = 8,
                         height: int | None = 440, uirevision: Any = "error_vs_unc") -> go.Figure:
    """Absolute error against predicted σ, with bin averages and the calibrated expectation ``E|e| = σ√(2/π)``."""
    y, mean, sd = _reg_arrays(y, prediction)
    err = np.abs(y - mean)
    fig = go.Figure(go.Scatter(x=sd, y=err, mode="markers", name="Test point", opacity=0.55,
                               marker=dict(size=7, color=EPISTEMIC_COLOR),
                               hovertemplate="σ %{x:.3g}<br>|error| %{y:.3g}<extra></extra>"))
    smax = float(sd.max()) if len(sd) else 1.0
    fig.add_trace(go.Scatter(x=[0, smax], y=[0, smax * np.sqrt(2 / np.pi)], mode="lines",
                             name="Expected if calibrated (0.8σ)", line=dict(color=TOTAL_COLOR, dash="dash", width=2)))
    if len(sd) >= 2 * n_bins:
        edges = np.quantile(sd, np.linspace(0, 1, n_bins + 1))
        idx = np.clip(np.searchsorted(edges, sd, side="right") - 1, 0, n_bins - 1)
        bx = [sd[idx == b].mean() for b in range(n_bins) if np.any(idx == b)]
        by = [err[idx == b].mean() for b in range(n_bins) if np.any(idx == b)]
        fig.add_trace(go.Scatter(x=bx, y=by, mode="lines+markers", name="Mean |error| per bin",
                                 line=dict(color=ENSEMBLE_COLOR, width=3), marker=dict(size=10)))
    fig.update_xaxes(title_text=_units("Predicted σ", target_unit), rangemode="tozero")
    fig.update_yaxes(title_text=_units("|Observed − predicted|", target_unit), rangemode="tozero")
    return _finish(fig, title=None, uirevision=uirevision, height=height)


def rejection_figure(y: Any, prediction: Any, *, height: int | None = 420, uirevision: Any = "rejection") -> go.Figure:
    """Error when only the most certain fraction of test points is kept (regression RMSE, or classification accuracy).

    If the uncertainty is informative, the curve improves as uncertain points are set aside.
    """
    if hasattr(prediction, "probs"):
        probs = np.asarray(prediction.probs)
        score = (probs.argmax(1) == np.asarray(y)).astype(float)
        order = np.argsort(np.asarray(prediction.total), kind="stable")
        vals = np.cumsum(score[order]) / np.arange(1, len(score) + 1)
        ytitle, fmt = "Accuracy on kept points", ".0%"
    else:
        yy, mean, sd = _reg_arrays(y, prediction)
        order = np.argsort(sd, kind="stable")
        vals = np.sqrt(np.cumsum(((yy - mean) ** 2)[order]) / np.arange(1, len(yy) + 1))
        ytitle, fmt = "RMSE on kept points", None
    frac = np.arange(1, len(vals) + 1) / max(len(vals), 1)
    fig = go.Figure(go.Scatter(x=frac, y=vals, mode="lines", name="Keep the most certain first",
                               line=dict(color=ENSEMBLE_COLOR, width=3)))
    if len(vals):
        fig.add_hline(y=float(vals[-1]), line=dict(color=TOTAL_COLOR, dash="dash"),
                      annotation=dict(text="all points", font=dict(size=14, color=TOTAL_COLOR)))
    fig.update_xaxes(title_text="Fraction of test points kept", tickformat=".0%", range=[0, 1])
    fig.update_yaxes(title_text=ytitle, tickformat=fmt)
    return _finish(fig, title=None, uirevision=uirevision, height=height)


def entropy_by_correctness(y: Any, prediction: Any, *, which: str = "total", height: int | None = 420,
                           uirevision: Any = "entropy_hist") -> go.Figure:
    """Histogram of predictive entropy (or mutual information) for correct vs wrong test predictions."""
    probs = np.asarray(prediction.probs)
    correct = probs.argmax(1) == np.asarray(y)
    vals = np.asarray(getattr(prediction, which), dtype=np.float64)
    fig = go.Figure()
    for mask, name, color in ((correct, "Correct", GOOD_COLOR), (~correct, "Wrong", BAD_COLOR)):
        fig.add_trace(go.Histogram(x=vals[mask], name=f"{name} ({mask.sum()})", marker=dict(color=color), opacity=0.7,
                                   nbinsx=25, histnorm="probability"))
    fig.update_layout(barmode="overlay")
    label = "Total entropy" if which == "total" else ("Mutual information" if which == "epistemic" else "Entropy")
    fig.update_xaxes(title_text=f"{label} (nats)")
    fig.update_yaxes(title_text="Share of test points", tickformat=".0%")
    return _finish(fig, title=None, uirevision=uirevision, height=height)


def prob_slice_figure(dataset: Any, x_grid: Any, prediction: Any, *, feature: int = 0, height: int | None = 440,
                      uirevision: Any = "prob_slice") -> go.Figure:
    """Classification along a 1-D slice: each class's ensemble probability, the members' range, and the MI.

    For each class (its colour), a thick line is the ensemble probability and a
    shaded band spans the members' lowest to highest probability (their
    disagreement); the dotted black line is the mutual information (nats,
    right axis).

    Args:
        dataset: the :class:`~ensemble_core.data.Dataset` (feature and class names).
        x_grid: the slice's :class:`Grid` (see :func:`slice_grid`) or ``[N, d]`` inputs.
        prediction: a :class:`~ensemble_core.predict.ClassificationPrediction` on ``x_grid``.
        feature: the input column that varies along the slice.
    """
    xg = np.asarray(x_grid, dtype=np.float64)
    x = xg[:, feature] if xg.ndim == 2 else xg.ravel()
    order = np.argsort(x, kind="stable")
    x = x[order]
    probs = np.asarray(prediction.probs, dtype=np.float64)[order]
    mp = np.asarray(prediction.member_probs, dtype=np.float64)[:, order]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for c in range(probs.shape[1]):
        name = _class_name(dataset, c)
        lo, hi = mp[:, :, c].min(axis=0), mp[:, :, c].max(axis=0)
        fig.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([hi, lo[::-1]]), fill="toself",
                                 fillcolor=_rgba(class_color(c), 0.2), line=dict(width=0), hoverinfo="skip",
                                 name=f"{name}: member range", legendgroup=f"class{c}", showlegend=False))
        fig.add_trace(go.Scatter(x=x, y=probs[:, c], mode="lines", name=f"P({name})", legendgroup=f"class{c}",
                                 line=dict(color=class_color(c), width=3.5),
                                 hovertemplate=f"P({name}) %{{y:.2f}}<extra></extra>"), secondary_y=False)
    fig.add_trace(go.Scatter(x=x, y=np.asarray(prediction.epistemic, dtype=np.float64)[order], mode="lines",
                             name="Mutual information (right axis)", line=dict(color=ENSEMBLE_COLOR, width=2.5, dash="dot"),
                             hovertemplate="MI %{y:.3f} nats<extra></extra>"), secondary_y=True)
    fig.update_xaxes(title_text=dataset.feature_names[feature], range=[float(x[0]), float(x[-1])])
    fig.update_yaxes(title_text="Probability (band: members' range)", range=[0, 1.02], secondary_y=False)
    fig.update_yaxes(title_text="Mutual information (nats)", rangemode="tozero", showgrid=False, secondary_y=True)
    return _finish(fig, title=None, uirevision=uirevision, height=height)


# --------------------------------------------------------------- calibration
def reliability_figure(bin_conf: Any, bin_acc: Any, bin_count: Any, ece: float, *, bin_edges: Any = None,
                       height: int | None = 500, uirevision: Any = "reliability") -> go.Figure:
    """Reliability diagram: accuracy per confidence bin against the diagonal, with the ECE, and bin counts below.

    Args:
        bin_conf, bin_acc, bin_count: per-bin mean confidence, accuracy and count
            (``metrics.reliability_bins``; empty bins may hold NaN).
        ece: expected calibration error, shown in the title.
        bin_edges: ``[B + 1]`` edges (default: ``B`` equal bins over ``[0, 1]``).
    """
    conf, acc = np.asarray(bin_conf, dtype=np.float64), np.asarray(bin_acc, dtype=np.float64)
    count = np.asarray(bin_count, dtype=np.float64)
    edges = np.linspace(0, 1, len(conf) + 1) if bin_edges is None else np.asarray(bin_edges, dtype=np.float64)
    centre, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    filled = count > 0
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.05)
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="Perfect calibration",
                             line=dict(color=TOTAL_COLOR, dash="dash", width=2)), row=1, col=1)
    fig.add_trace(go.Bar(x=centre[filled], y=acc[filled], width=width[filled] * 0.92, name="Accuracy in bin",
                         marker=dict(color=_rgba(GOOD_COLOR, 0.8), line=dict(color=GOOD_COLOR, width=1)),
                         hovertemplate="confidence bin %{x:.2f}<br>accuracy %{y:.2f}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=centre[filled], y=conf[filled], mode="markers", name="Mean confidence in bin",
                             marker=dict(symbol="line-ew", size=22, line=dict(color=BAD_COLOR, width=3)),
                             hovertemplate="mean confidence %{y:.2f}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=centre, y=count, width=width * 0.92, name="Test points per bin", showlegend=False,
                         marker=dict(color=TOTAL_COLOR), hovertemplate="%{y} points<extra></extra>"), row=2, col=1)
    fig.update_xaxes(range=[0, 1], row=1, col=1)
    fig.update_xaxes(range=[0, 1], title_text="Confidence (top-class probability)", row=2, col=1)
    fig.update_yaxes(range=[0, 1.02], title_text="Accuracy", row=1, col=1)
    fig.update_yaxes(title_text="Count", row=2, col=1, rangemode="tozero")
    return _finish(fig, title=f"Reliability diagram — ECE = {ece:.3f}", uirevision=uirevision, height=height)


def calibration_figure(expected: Any, observed: Any, area: float, *, height: int | None = 460,
                       uirevision: Any = "calibration") -> go.Figure:
    """Regression calibration curve: observed vs expected coverage of central intervals, miscalibration area shaded."""
    e, o = np.asarray(expected, dtype=np.float64), np.asarray(observed, dtype=np.float64)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=np.concatenate([e, e[::-1]]), y=np.concatenate([o, e[::-1]]), fill="toself",
                             name=f"Miscalibration area = {area:.3f}", fillcolor=_rgba(ALEATORIC_COLOR, 0.35),
                             line=dict(width=0), hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="Perfect calibration",
                             line=dict(color=TOTAL_COLOR, dash="dash", width=2)))
    fig.add_trace(go.Scatter(x=e, y=o, mode="lines", name="Ensemble", line=dict(color=ENSEMBLE_COLOR, width=3.5),
                             hovertemplate="nominal %{x:.0%}<br>observed %{y:.0%}<extra></extra>"))
    for text, x, y in (("under-confident<br>(intervals too wide)", 0.25, 0.85),
                       ("over-confident<br>(intervals too narrow)", 0.75, 0.15)):
        fig.add_annotation(text=text, x=x, y=y, showarrow=False, font=dict(size=14, color=TOTAL_COLOR))
    fig.update_xaxes(title_text="Expected coverage of the central interval", range=[0, 1], tickformat=".0%",
                     constrain="domain")
    fig.update_yaxes(title_text="Observed coverage (test)", range=[0, 1], tickformat=".0%",
                     scaleanchor="x", scaleratio=1, constrain="domain")
    return _finish(fig, title=None, uirevision=uirevision, height=height)


def coverage_figure(levels: Sequence[float], observed: Sequence[float], *, height: int | None = 380,
                    uirevision: Any = "coverage") -> go.Figure:
    """Observed coverage of the central 50/90/95% (or any) intervals against their nominal level."""
    lv, ob = np.asarray(levels, dtype=np.float64), np.asarray(observed, dtype=np.float64)
    labels = [f"{lev:.0%}" for lev in lv]
    fig = go.Figure(go.Bar(x=labels, y=ob, name="Observed coverage", marker=dict(color=GOOD_COLOR),
                           text=[f"{v:.0%}" for v in ob], textposition="inside", insidetextanchor="middle",
                           textfont=dict(size=18, color="white")))
    fig.add_trace(go.Scatter(x=labels, y=lv, mode="markers", name="Target (nominal)",
                             marker=dict(symbol="line-ew", size=60, line=dict(color=BAD_COLOR, width=4))))
    fig.update_xaxes(title_text="Central interval (nominal level)", type="category")
    fig.update_yaxes(title_text="Share of test points inside", range=[0, 1.05], tickformat=".0%")
    return _finish(fig, title=None, uirevision=uirevision, height=height)


# ---------------------------------------------------------- ensemble size
def size_curve_figure(ms: Sequence[int], values: Sequence[float], metric: str = "NLL", *,
                      member_values: Sequence[float] | None = None, member_ids: Sequence[int] | None = None,
                      current: int | None = None,
                      height: int | None = 420, uirevision: Any = "size_curve") -> go.Figure:
    """Test metric of the ensemble of the first ``M`` members, against ``M``.

    Args:
        ms, values: ensemble sizes and the metric of each.
        metric: the metric's label (y-axis).
        member_values: each member alone (drawn at ``M = 1`` in member colours):
            shows that single members scatter while the ensemble improves.
        member_ids: the member index of each of ``member_values`` (default ``0..``), for their colours.
        current: highlight this ``M`` (the slider's value).
    """
    fig = go.Figure()
    if member_values is not None:
        mv = list(member_values)
        ids = list(member_ids) if member_ids is not None else list(range(len(mv)))
        fig.add_trace(go.Scatter(x=[0.8] * len(mv), y=_clean(mv), mode="markers", name="Each member alone",
                                 marker=dict(size=11, color=[member_color(i) for i in ids],
                                             line=dict(color="white", width=1)),
                                 customdata=[i + 1 for i in ids],
                                 hovertemplate="Member %{customdata}: %{y:.4g}<extra></extra>"))
    fig.add_trace(go.Scatter(x=list(ms), y=_clean(values), mode="lines+markers", name="Ensemble of first M",
                             line=dict(color=ENSEMBLE_COLOR, width=3.5), marker=dict(size=9),
                             hovertemplate="M = %{x}<br>" + metric + " %{y:.4g}<extra></extra>"))
    if current is not None and current in list(ms):
        v = list(values)[list(ms).index(current)]
        fig.add_trace(go.Scatter(x=[current], y=_clean([v]), mode="markers", name=f"M = {current} (slider)",
                                 marker=dict(size=20, color="rgba(0,0,0,0)", line=dict(color=BAD_COLOR, width=3.5))))
    fig.update_xaxes(title_text="Ensemble size M", dtick=1 if len(ms) <= 20 else None, rangemode="tozero")
    fig.update_yaxes(title_text=f"Test {metric}", tickformat=".3~g")
    return _finish(fig, title=None, uirevision=uirevision, height=height)


def members_vs_ensemble_style(df: pd.DataFrame, *, ensemble_label: str = "Ensemble",
                              lower_is_better: Sequence[str] = ("NLL", "RMSE", "Brier", "ECE", "MAE", "CRPS"),
                              digits: int = 3) -> Any:
    """A pandas ``Styler`` for the members-vs-ensemble table: the ensemble row bold and tinted, each column's best value blue.

    Coverage and accuracy columns are shown as percentages; coverage has no
    "best" (closest to nominal is best, not largest).

    ``df``'s index (or first column) holds the row names; the row named
    ``ensemble_label`` is the ensemble.
    """
    def row_style(row: pd.Series) -> list[str]:
        on = str(row.name) == ensemble_label
        return ["font-weight: 700; background-color: #DCEBF7" if on else ""] * len(row)

    def best(col: pd.Series) -> list[str]:
        vals = pd.to_numeric(col, errors="coerce")
        if vals.isna().all():
            return [""] * len(col)
        if str(col.name).startswith("Coverage"):  # best = closest to the nominal level, not the largest
            return [""] * len(col)
        target = vals.min() if any(str(col.name).startswith(k) for k in lower_is_better) else vals.max()
        return ["color: #0060A0; text-decoration: underline" if v == target else "" for v in vals]

    num = df.select_dtypes("number").columns
    def fmt(v: float) -> str:
        if not np.isfinite(v):
            return "—"
        return f"{v:.1f}" if abs(v) >= 100 else f"{v:.{digits}f}" if abs(v) >= 0.01 or v == 0 else f"{v:.2e}"

    pct = [c for c in num if str(c).startswith(("Coverage", "Accuracy"))]
    styler = df.style.apply(row_style, axis=1).apply(best, subset=list(num))
    styler = styler.format(fmt, subset=[c for c in num if c not in pct]).format("{:.1%}", subset=pct)
    return styler.set_properties(**{"font-size": "1.05rem"})
