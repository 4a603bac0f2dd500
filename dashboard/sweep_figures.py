"""The Sweep page's figures, built from a sweep's trials (plain data in, ``go.Figure`` out).

A metric-against-each-setting row (:func:`metric_figure`), a parallel-coordinates
chart (:func:`parcoords_figure`) and small multiples of every trial's
validation-NLL curve (:func:`curves_figure`).  A trial is anything with
``index``, ``params``, ``metrics``, ``status`` and ``curve()`` (a live
:class:`~ensemble_core.sweeps.TrialState` or a saved
:class:`~dashboard.sweep_view.TrialView`), so live, saved and shared sweeps draw alike.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.settings import SWEEPABLE
from ensemble_core.sweeps import higher_is_better
from ensemble_core.viz import BAD_COLOR, GOOD_COLOR, PALETTE, TEMPLATE

#: How the metrics are named on the page.
METRIC_LABELS = {"test_nll": "Test NLL", "val_nll": "Validation NLL", "test_rmse": "Test RMSE",
                 "val_rmse": "Validation RMSE", "test_accuracy": "Test accuracy", "val_accuracy": "Validation accuracy",
                 "test_ece": "Test calibration error", "val_ece": "Validation calibration error"}
#: Settings drawn on a log axis.
LOG_AXES = {"optim.lr", "optim.weight_decay", "strategy.adversarial_eps", "optim.batch_size"}


def label(path: str) -> str:
    """A swept setting's name on the page."""
    return SWEEPABLE[path][0] if path in SWEEPABLE else path


def _value(v: Any) -> float | None:
    return None if v is None or not isinstance(v, (int, float)) or not math.isfinite(v) else float(v)


def _layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(template=TEMPLATE, height=height, margin=dict(l=70, r=30, t=50, b=60), showlegend=False)
    return fig


def metric_figure(trials: list[Any], paths: tuple[str, ...], metric: str) -> go.Figure | None:
    """One panel per swept setting: the metric of every scored trial against that setting's value; best ringed."""
    scored = [t for t in trials if _value(t.metrics.get(metric)) is not None]
    if not scored:
        return None
    best = min([t for t in scored if t.status == "done"] or scored, key=lambda t: -t.metrics[metric] if higher_is_better(metric) else t.metrics[metric])
    fig = make_subplots(rows=1, cols=len(paths), shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=[label(p) for p in paths])
    for j, p in enumerate(paths, start=1):
        xs = [t.params[p] for t in scored]
        numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
        fig.add_trace(go.Scatter(
            x=xs, y=[t.metrics[metric] for t in scored], mode="markers",
            marker=dict(size=[17 if t is best else 11 for t in scored],
                        color=[BAD_COLOR if t is best else GOOD_COLOR for t in scored],
                        line=dict(width=[2 if t is best else 0 for t in scored], color="#1B2430"), opacity=0.85),
            text=[f"trial {t.index + 1}" for t in scored],
            hovertemplate="%{text}<br>" + label(p) + " %{x}<br>" + METRIC_LABELS[metric] + " %{y:.4g}<extra></extra>"),
            row=1, col=j)
        if numeric and p in LOG_AXES and min(xs) > 0:
            ticks = sorted(set(xs)) if len(set(xs)) <= 8 else None  # label the values tried, not the decades' 2..9
            fig.update_xaxes(type="log", row=1, col=j, tickvals=ticks,
                             ticktext=None if ticks is None else [f"{v:g}" for v in ticks])
        elif not numeric:
            fig.update_xaxes(type="category", row=1, col=j)
        elif len(set(xs)) <= 8:  # ticks at the values tried (no 1.2, 1.4 between member counts)
            ticks = sorted(set(xs))
            fig.update_xaxes(row=1, col=j, tickvals=ticks, ticktext=[f"{v:g}" for v in ticks])
    fig.update_yaxes(title_text=METRIC_LABELS[metric], row=1, col=1)
    return _layout(fig, 340)


def parcoords_figure(trials: list[Any], paths: tuple[str, ...], metric: str) -> go.Figure | None:
    """Parallel coordinates: one axis per swept setting and the metric; lines coloured by the metric."""
    scored = [t for t in trials if _value(t.metrics.get(metric)) is not None]
    if len(scored) < 2:
        return None
    dims = []
    for p in paths:
        xs = [t.params[p] for t in scored]
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs):
            tried = sorted(set(xs))
            if p in LOG_AXES and min(xs) > 0:
                vals = [math.log10(x) for x in xs]
                dim = dict(label=f"log₁₀ {label(p)}", values=vals, tickformat=".3~g")
                if len(tried) <= 8:  # ticks at the values tried, labelled with the values themselves
                    dim.update(label=f"{label(p)} (log scale)", tickvals=[math.log10(v) for v in tried],
                               ticktext=[f"{v:g}" for v in tried])
            else:
                dim = dict(label=label(p), values=[float(x) for x in xs], tickformat=".4~g")
                if len(tried) <= 8:
                    dim.update(tickvals=[float(v) for v in tried], ticktext=[f"{v:g}" for v in tried])
            dims.append(dim)
        else:
            cats = sorted({str(x) for x in xs})
            dims.append(dict(label=label(p), values=[cats.index(str(x)) for x in xs],
                             tickvals=list(range(len(cats))), ticktext=cats))
    ys = [t.metrics[metric] for t in scored]
    dims.append(dict(label=METRIC_LABELS[metric], values=ys, tickformat=".4~g"))
    scale = "Cividis" if higher_is_better(metric) else "Cividis_r"  # bright = good
    fig = go.Figure(go.Parcoords(line=dict(color=ys, colorscale=scale, showscale=True,
                                           colorbar=dict(title=dict(text=METRIC_LABELS[metric], side="right"))),
                                 dimensions=dims, labelfont=dict(size=15), tickfont=dict(size=13)))
    fig = _layout(fig, 360)
    fig.update_layout(margin=dict(l=80, r=150, t=70, b=30))
    fig.update_traces(line_colorbar_x=1.08, selector=dict(type="parcoords"))
    return fig


def panel_title(t: Any, paths: tuple[str, ...], all_params: list[dict[str, Any]], width: int = 34) -> str:
    """A small multiple's title: ``#3 Members M 4, Epochs 300``, naming only the settings that vary across
    the trials, broken onto a second line when longer than ``width`` characters (panels are narrow)."""
    varying = [p for p in paths if len({repr(q.get(p)) for q in all_params}) > 1] or list(paths)
    parts = [f"{label(p)} {t.params[p]:g}" if isinstance(t.params[p], float) else f"{label(p)} {t.params[p]}"
             for p in varying]
    text = f"#{t.index + 1} " + ", ".join(parts)
    if len(text) > width and len(parts) > 1:
        text = f"#{t.index + 1} " + ", ".join(parts[:-1]) + ",<br>" + parts[-1]
    return text


def curves_figure(trials: list[Any], paths: tuple[str, ...], cols: int = 4) -> go.Figure | None:
    """Small multiples: each trial's validation NLL per epoch, one panel per trial, on a shared y-axis."""
    shown = [t for t in trials if t.status != "skipped"]
    if not shown:
        return None
    rows = -(-len(shown) // cols)
    titles = [panel_title(t, paths, [x.params for x in trials]) for t in shown]
    fig = make_subplots(rows=rows, cols=cols, shared_xaxes="all", shared_yaxes="all", subplot_titles=titles,
                        vertical_spacing=min(0.12, 0.5 / rows), horizontal_spacing=0.03)
    for i, t in enumerate(shown):
        curve = t.curve()
        color = PALETTE[t.index % len(PALETTE)]
        fig.add_trace(go.Scatter(x=[e for e, _ in curve], y=[v for _, v in curve], mode="lines",
                                 line=dict(color=color, width=2), name=f"trial {t.index + 1}",
                                 hovertemplate="epoch %{x}<br>val NLL %{y:.4g}<extra></extra>"),
                      row=i // cols + 1, col=i % cols + 1)
    fig.update_annotations(font_size=12)
    values = [v for t in shown for _, v in t.curve()]
    if values:  # one scale for all; a rare spike of one trial does not flatten every panel
        lo, hi = min(values), float(np.quantile(values, 0.98))
        pad = 0.05 * (hi - lo or 1.0)
        fig.update_yaxes(range=[lo - pad, hi + pad])
    fig.update_yaxes(title_text="val NLL", row=1, col=1)
    return _layout(fig, 70 + 170 * rows)
