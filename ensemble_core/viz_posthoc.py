"""Plotly figures of the post-hoc views: recalibration before/after, and known unknowns (data in, figure out)."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import metrics
from .viz import (
    ALEATORIC_COLOR,
    BAD_COLOR,
    ENSEMBLE_COLOR,
    EPISTEMIC_COLOR,
    GOOD_COLOR,
    TOTAL_COLOR,
    _finish,
    _rgba,
)

__all__ = ["recal_curves_figure", "reliability_before_after", "entropy_histograms", "abstain_figure"]

#: Display name and colour of each recalibration (colour-blind safe palette of :mod:`viz`).
METHODS = {
    "before": ("Before (ensemble as trained)", ENSEMBLE_COLOR),
    "variance": ("Variance scaling", EPISTEMIC_COLOR),
    "isotonic": ("Isotonic", ALEATORIC_COLOR),
    "conformal": ("Split-conformal", "#009E73"),
    "temperature": ("Temperature scaling", EPISTEMIC_COLOR),
}


def recal_curves_figure(levels: Any, scores: dict[str, dict[str, Any]], *, height: int | None = 480) -> go.Figure:
    """Observed vs expected coverage on the test split, one line per method (``recalibration.score`` output)."""
    lv = np.asarray(levels, dtype=np.float64)
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="Perfect calibration",
                               line=dict(color=TOTAL_COLOR, dash="dash", width=2)))
    for name, s in scores.items():
        label, color = METHODS[name]
        fig.add_trace(go.Scatter(x=lv, y=s["curve"], mode="lines", name=f"{label} · area {s['miscalibration_area']:.3f}",
                                 line=dict(color=color, width=4 if name == "before" else 3,
                                           dash="dot" if name == "before" else "solid"),
                                 hovertemplate="nominal %{x:.0%}<br>observed %{y:.0%}<extra>" + label + "</extra>"))
    fig.update_xaxes(title_text="Expected coverage of the central interval", range=[0, 1], tickformat=".0%",
                     constrain="domain")
    fig.update_yaxes(title_text="Observed coverage (test split)", range=[0, 1], tickformat=".0%",
                     scaleanchor="x", scaleratio=1, constrain="domain")
    return _finish(fig, title=None, uirevision="recal_curves", height=height)


def reliability_before_after(y: Any, probs: dict[str, np.ndarray], eces: dict[str, float], *, n_bins: int = 10,
                             height: int | None = 480) -> go.Figure:
    """Accuracy against confidence per bin, before and after temperature scaling (test split)."""
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="Perfect calibration",
                               line=dict(color=TOTAL_COLOR, dash="dash", width=2)))
    for name, p in probs.items():
        label, color = METHODS[name]
        b = metrics.reliability_bins(y, p, n_bins)
        ok = b.count > 0
        fig.add_trace(go.Scatter(x=b.confidence[ok], y=b.accuracy[ok], mode="lines+markers",
                                 name=f"{label} · ECE {eces[name]:.3f}",
                                 marker=dict(size=np.clip(6 + 3 * np.sqrt(b.count[ok]), 8, 26), color=color),
                                 line=dict(color=color, width=3, dash="dot" if name == "before" else "solid"),
                                 customdata=b.count[ok],
                                 hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>%{customdata} points"
                                               "<extra>" + label + "</extra>"))
    fig.update_xaxes(title_text="Confidence (top-class probability), per bin", range=[0, 1.02], constrain="domain")
    fig.update_yaxes(title_text="Accuracy in the bin (test split)", range=[0, 1.02], scaleanchor="x", scaleratio=1,
                     constrain="domain")
    return _finish(fig, title=None, uirevision="recal_reliability", height=height)


def entropy_histograms(ku: Any, *, n_classes: int, height: int | None = 420) -> go.Figure:
    """Seen vs unseen classes: entropy of one network, entropy of the ensemble, the ensemble's mutual information.

    Args:
        ku: an :class:`~ensemble_core.ood.KnownUnknowns`.
        n_classes: number of outputs (the entropy's maximum is ``log n_classes``).
    """
    panels = (("One network: entropy", ku.entropy_single, ku.auroc_entropy_single),
              (f"Ensemble of {ku.n_members}: entropy", ku.entropy_ensemble, ku.auroc_entropy_ensemble),
              (f"Ensemble of {ku.n_members}: mutual information", ku.mi_ensemble, ku.auroc_mi_ensemble))
    fig = make_subplots(rows=1, cols=3, shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[f"{t}<br><sub>AUROC {a:.3f}</sub>" for t, _, a in panels])
    hmax = float(np.log(max(n_classes, 2)))
    for col, (_, values, _) in enumerate(panels, start=1):
        top = hmax if col < 3 else max(float(np.max(values)), 1e-3) * 1.05
        bins = dict(start=0.0, end=top, size=top / 24)
        for mask, name, color in ((ku.seen, "Seen classes", GOOD_COLOR), (~ku.seen, "Unseen (held-out) classes",
                                                                            BAD_COLOR)):
            fig.add_trace(go.Histogram(x=values[mask], xbins=bins, histnorm="probability", name=name,
                                       marker=dict(color=_rgba(color, 0.6), line=dict(color=color, width=1)),
                                       legendgroup=name, showlegend=col == 1,
                                       hovertemplate="%{x}<br>%{y:.0%} of " + name.lower() + "<extra></extra>"),
                          row=1, col=col)
        fig.update_xaxes(title_text="nats", range=[0, top], row=1, col=col)
    fig.update_layout(barmode="overlay")
    fig.update_yaxes(title_text="Share of test inputs", tickformat=".0%", row=1, col=1)
    fig.update_annotations(font=dict(size=15))
    return _finish(fig, title=None, uirevision="ood_hist", height=height)


def abstain_figure(ku: Any, *, height: int | None = 420) -> go.Figure:
    """Abstain when unsure: accuracy on the answered inputs, and the share of unseen inputs still answered."""
    fig = go.Figure()
    for curve, label, color in ((ku.abstain_single, "One network", TOTAL_COLOR),
                                (ku.abstain_ensemble, f"Ensemble of {ku.n_members}", ENSEMBLE_COLOR)):
        t = curve["thresholds"]
        fig.add_trace(go.Scatter(x=t, y=curve["accuracy"], mode="lines", name=f"{label}: accuracy when it answers",
                                 line=dict(color=color, width=3.5),
                                 customdata=np.c_[curve["answered"]],
                                 hovertemplate="threshold %{x:.2f}<br>accuracy %{y:.1%}<br>answers %{customdata[0]:.0%}"
                                               " of inputs<extra>" + label + "</extra>"))
        fig.add_trace(go.Scatter(x=t, y=curve["answered_unseen"], mode="lines",
                                 name=f"{label}: unseen inputs it still answers",
                                 line=dict(color=color, width=2.5, dash="dash"),
                                 hovertemplate="threshold %{x:.2f}<br>%{y:.0%} of unseen inputs answered"
                                               "<extra>" + label + "</extra>"))
    fig.update_xaxes(title_text="Confidence threshold (answer only if the top probability reaches it)", range=[0, 1])
    fig.update_yaxes(title_text="Share", range=[0, 1.02], tickformat=".0%")
    return _finish(fig, title=None, uirevision="ood_abstain", height=height)
