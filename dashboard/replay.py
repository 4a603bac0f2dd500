"""The replay of a finished run: a play button and an epoch slider that redraw every chart in the browser.

One Plotly figure holds the whole replay: the ensemble's bands (1-D regression)
or its class, entropy and mutual-information maps (2-D classification) on top,
and below them the members' training losses and the validation curves up to
the epoch, and the learning rate with a "now" marker and the snapshots taken so
far.  Every recorded preview (:attr:`ensemble_core.run.Run.replay`, about 50 per
run) is one Plotly *frame*; the slider and the play button animate between
frames in the browser, so scrubbing costs the server nothing (no rerun, no
message).  A run without previews (a lesson's panel, an old export) replays its
curves only, at about 50 evenly spaced epochs.

Payload: the frames carry the curves up to their epoch thinned to
:data:`CURVE_POINTS` points per member, values rounded to 4 significant digits
(maps to 3 decimals of a nat; the class map as a small PNG), so a default run's
replay is a few hundred kB (``docs/decisions.md``).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard import live_plot
from ensemble_core import viz
from ensemble_core.run import REPLAY_FRAMES, Run

__all__ = ["BAND_POINTS", "CURVE_POINTS", "replay_spec", "show_replay"]

#: Most points per member curve in one frame (the full run keeps every epoch in its history).
CURVE_POINTS = 100
#: Most points of a band or member curve (the 200-point preview grid, every second point).
BAND_POINTS = 100
#: Milliseconds per frame while playing (50 frames: about 6 s).
FRAME_MS = 120


def _r(values: Any, digits: int = 4) -> list[float | None]:
    """Values rounded to ``digits`` significant digits (``None`` for non-finite ones): a smaller payload."""
    a = np.asarray(values, dtype=np.float64).ravel()
    out = []
    for v in a.tolist():
        out.append(float(f"{v:.{digits}g}") if np.isfinite(v) else None)
    return out


def _thin(n: int, most: int = CURVE_POINTS) -> np.ndarray:
    """Indices of at most ``most`` of ``n`` items, evenly spaced, the last kept."""
    return np.unique(np.linspace(0, n - 1, most).astype(int)) if n > most else np.arange(n)


def _png(rgb: np.ndarray) -> str:
    """An ``[h, w, 3]`` uint8 image as a PNG data URI (row 0 at the bottom of the plot, as ``go.Image`` draws it)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _frame_epochs(run: Run, epochs_done: int) -> list[int]:
    """The epochs the replay can show: the recorded previews', else about 50 evenly spaced ones."""
    if run.replay:
        return [int(f.epoch) for f in run.replay]
    return sorted({int(e) for e in np.linspace(1, max(1, epochs_done), min(REPLAY_FRAMES, max(1, epochs_done)))})


def replay_spec(run: Run, dataset: Any, *, height: int = 780) -> dict | None:
    """The run's replay as one animated figure's plain JSON data (frames, a slider and a play button).

    The frames are plain data (no ``go.Frame``: validating ~50 frames of
    thousands of numbers would cost the server seconds); ``None`` without epochs.

    Args:
        run: a finished (or stopped) run; its history and recorded previews are drawn.
        dataset: the data it trained on (training points and true function of the maps and bands).
        height: the figure's height in pixels.

    Returns:
        ``{"data", "layout", "frames"}``; it opens at the last frame (the finished run).  Each frame is
        named by its epoch and redraws the traces listed in its ``traces``.
    """
    epochs = [e for e in run.history if getattr(e, "kind", None) == "epoch"]
    if not epochs:
        return None
    n_epochs, reg = int(run.config.optim.epochs), run.task == "regression"
    snaps = [e for e in run.history if getattr(e, "kind", None) == "snapshot"]
    frames_at = _frame_epochs(run, len(epochs))
    maps = bool(run.replay) and run.replay_x is not None
    grid = np.asarray(run.replay_x) if maps else None
    one_d = maps and reg and grid.shape[1] == 1
    two_d = maps and not reg and grid.shape[1] == 2
    if one_d or not two_d:
        specs = [[{"colspan": 3}, None, None], [{}, {}, {}]]
        titles = ["", "Loss per member", "Validation NLL", "Learning rate"]
    else:
        specs = [[{}, {}, {}], [{}, {}, {}]]
        titles = ["Predicted class (faded = unsure)", "Entropy (total)", "Mutual information (epistemic)",
                  "Loss per member", "Validation NLL", "Learning rate"]
    if two_d:  # square maps in a third of the width each: a lower top row
        height = int(height * 0.82)
    fig = make_subplots(rows=2, cols=3, specs=specs, subplot_titles=titles,
                        row_heights=[0.48, 0.52] if two_d else [0.58, 0.42],
                        vertical_spacing=0.1, horizontal_spacing=0.08)
    if not (one_d or two_d):
        fig.add_annotation(text="No previews were recorded for this run: its curves replay below.",
                           xref="x domain", yref="y domain", x=0.5, y=0.5, showarrow=False, font=dict(size=15))
    dynamic: list[int] = []  # indices of the traces each frame redraws, in order
    parts: list[Any] = []  # per dynamic trace: a function frame-index -> trace dict

    def add(trace: Any, row: int, col: int, make: Any = None, secondary_y: bool = False) -> None:
        fig.add_trace(trace, row=row, col=col, secondary_y=secondary_y)
        if make is not None:
            dynamic.append(len(fig.data) - 1)
            kind = trace.type
            parts.append(lambda e: {"type": kind, **make(e)})

    frames_pred = {int(f.epoch): f.prediction for f in run.replay} if maps else {}

    # ---------------------------------------------------------------- the prediction
    if one_d:
        x = grid[:, 0]
        order = np.argsort(x, kind="stable")
        order = order[_thin(len(order), BAND_POINTS)]
        xs = x[order]
        poly_x = _r(np.concatenate([xs, xs[::-1]]))
        xtr, ytr = np.asarray(dataset.x_train)[:, 0], np.asarray(dataset.y_train)
        width = max((len(f.prediction.member_means) for f in run.replay), default=0)
        lo_hi: list[float] = [float(ytr.min()), float(ytr.max())]
        for f in run.replay:
            m = np.asarray(f.prediction.mean, dtype=np.float64)
            lo_hi += [float(np.nanmin(m)), float(np.nanmax(m))]
        span = lo_hi[1] - lo_hi[0] or 1.0
        y_range = [min(lo_hi) - 0.5 * span, max(lo_hi) + 0.5 * span]

        def band(name: str, attr: str, color: str, alpha: float) -> Any:
            def make(e: int) -> dict:
                p = frames_pred[e]
                mean = np.asarray(p.mean, dtype=np.float64)[order]
                half = 2 * np.sqrt(np.maximum(np.asarray(getattr(p, attr), dtype=np.float64)[order], 0))
                return {"y": _r(np.concatenate([mean + half, (mean - half)[::-1]]))}
            rgba = viz._rgba(color, alpha)
            return go.Scatter(x=poly_x, y=[], name=name, fill="toself", fillcolor=rgba, mode="lines",
                              line=dict(width=0, color=rgba), hoverinfo="skip"), make

        for name, attr, color, alpha in (("Total ±2σ", "total", viz.TOTAL_COLOR, 0.22),
                                         ("Aleatoric ±2σ", "aleatoric", viz.ALEATORIC_COLOR, 0.33),
                                         ("Epistemic ±2σ", "epistemic", viz.EPISTEMIC_COLOR, 0.3)):
            trace, make = band(name, attr, color, alpha)
            add(trace, 1, 1, make)
        for j in range(width):
            def member(e: int, j: int = j) -> dict:
                mm = frames_pred[e].member_means
                return {"y": _r(np.asarray(mm[j], dtype=np.float64)[order])} if j < len(mm) \
                    else {"y": [None] * len(xs)}
            add(go.Scatter(x=_r(xs), y=[], mode="lines", name=f"Member {j + 1}", showlegend=j == 0,
                           legendgroup="members", line=dict(color=viz.member_color(j), width=1.3), opacity=0.75,
                           hoverinfo="skip"), 1, 1, member)
        if dataset.true_fn is not None and dataset.n_features == 1:
            add(go.Scatter(x=_r(xs), y=_r(dataset.true_fn(xs)), name="True function", mode="lines",
                           line=dict(color=viz.TRUE_FN_COLOR, width=2.2, dash="dash"), hoverinfo="skip"), 1, 1)
        add(go.Scatter(x=_r(xs), y=[], name="Ensemble mean", mode="lines", line=dict(color=viz.ENSEMBLE_COLOR, width=3)),
            1, 1, lambda e: {"y": _r(np.asarray(frames_pred[e].mean, dtype=np.float64)[order])})
        add(go.Scatter(x=xtr, y=ytr, name="Training data", mode="markers",
                       marker=dict(size=8, color="white", line=dict(color=viz.ENSEMBLE_COLOR, width=2))), 1, 1)
        fig.update_xaxes(range=[float(xs[0]), float(xs[-1])], title_text=dataset.feature_names[0], row=1, col=1)
        fig.update_yaxes(range=y_range, title_text=dataset.target_name, row=1, col=1)
    elif two_d:
        xs, ys = np.unique(grid[:, 0]), np.unique(grid[:, 1])
        shape = (len(ys), len(xs))
        dx, dy = float(xs[1] - xs[0]), float(ys[1] - ys[0])
        n_classes = max(run.n_classes, 2)
        mi_max = max(float(np.nanmax(f.prediction.epistemic)) for f in run.replay) or 1e-3
        add(go.Image(source=None, x0=float(xs[0]), dx=dx, y0=float(ys[0]), dy=dy, name="Predicted class",
                     hoverinfo="skip"), 1, 1,
            lambda e: {"source": _png(viz.confidence_image(np.asarray(frames_pred[e].probs, np.float64), shape)),
                       "x0": float(xs[0]), "dx": dx, "y0": float(ys[0]), "dy": dy})
        for col, attr, zmax, name in ((2, "total", float(np.log(n_classes)), "Entropy"), (3, "epistemic", mi_max, "MI")):
            add(go.Heatmap(x=_r(xs), y=_r(ys), z=None, zmin=0, zmax=zmax, colorscale=viz.SEQUENTIAL, name=name,
                           colorbar=dict(title=dict(text="nats", side="top"), thickness=10, len=0.45, y=0.79,
                                         x=fig.layout[f"xaxis{col}"].domain[1] + 0.004, xpad=2,
                                         tickfont=dict(size=10)),
                           hovertemplate=f"{name} %{{z:.3f}} nats<extra></extra>"), 1, col,
                lambda e, attr=attr: {"z": [[round(float(v), 3) for v in row] for row in
                                            np.asarray(getattr(frames_pred[e], attr), np.float64).reshape(shape)]})
        xtr, ytr = np.asarray(dataset.x_train), np.asarray(dataset.y_train).astype(int)
        for col in (1, 2, 3):
            for c in np.unique(ytr):
                m = ytr == c
                add(go.Scatter(x=xtr[m, 0], y=xtr[m, 1], mode="markers", name=viz._class_name(dataset, c),
                               legendgroup=f"class{c}", showlegend=col == 1, hoverinfo="skip",
                               marker=dict(size=6, color=viz.class_color(c), line=dict(color="white", width=1),
                                           symbol=viz.CLASS_SYMBOLS[c % len(viz.CLASS_SYMBOLS)])), 1, col)
            fig.update_xaxes(range=[float(xs[0]) - dx / 2, float(xs[-1]) + dx / 2], showgrid=False, row=1, col=col,
                             title_text=dataset.feature_names[0], constrain="domain")
            fig.update_yaxes(range=[float(ys[0]) - dy / 2, float(ys[-1]) + dy / 2], showgrid=False, row=1, col=col,
                             autorange=False, scaleanchor="x" if col == 1 else f"x{col}", constrain="domain")
        fig.update_yaxes(title_text=dataset.feature_names[1], row=1, col=1)

    # ---------------------------------------------------------------- the curves
    ep = np.asarray([int(e.epoch) for e in epochs])
    losses = np.asarray([[np.nan if v is None else v for v in e.train_loss] for e in epochs], dtype=np.float64)

    def upto(e: int) -> np.ndarray:
        k = int(np.searchsorted(ep, e, side="right"))
        return np.arange(k)[_thin(k)] if k else np.arange(0)

    for j in range(losses.shape[1]):
        add(go.Scatter(x=[], y=[], mode="lines", name=f"Member {j + 1} loss", showlegend=False,
                       line=dict(color=viz.member_color(j), width=1.6)), 2, 1,
            lambda e, j=j: {"x": ep[upto(e)].tolist(), "y": _r(losses[upto(e), j])})
    finite = losses[np.isfinite(losses)]
    if finite.size:
        lo, hi = float(np.percentile(finite, 1)), float(np.percentile(finite, 99))
        pad = 0.08 * (hi - lo or 1.0)
        fig.update_yaxes(range=[lo - pad, hi + pad], row=2, col=1)
    fig.update_xaxes(range=[1, max(2, n_epochs)], row=2, col=1)
    if all(e.val for e in epochs):
        nll = np.asarray([e.val.get("nll", np.nan) for e in epochs], dtype=np.float64)
        add(go.Scatter(x=[], y=[], mode="lines", name="Validation NLL", line=dict(color=viz.ENSEMBLE_COLOR, width=2.2)),
            2, 2, lambda e: {"x": ep[upto(e)].tolist(), "y": _r(nll[upto(e)])})
        ok = nll[np.isfinite(nll)]
        if ok.size:
            lo, hi = float(np.percentile(ok, 1)), float(np.percentile(ok, 98))
            pad = 0.08 * (hi - lo or 1.0)
            fig.update_yaxes(range=[lo - pad, hi + pad], row=2, col=2)
    fig.update_xaxes(range=[1, max(2, n_epochs)], row=2, col=2)

    # ---------------------------------------------------------------- the learning rate
    lrs = np.asarray(run.lr_trace, dtype=np.float64)
    spe = max(1, max((len(e.lrs) for e in epochs), default=1))
    if len(lrs):
        idx = _thin(len(lrs), 2000)
        add(go.Scatter(x=_r((idx + 1) / spe, 6), y=_r(lrs[idx]), mode="lines", name="Learning rate",
                       line=dict(color=viz.TOTAL_COLOR, width=1.6), showlegend=False), 2, 3)
        top_lr = float(np.nanmax(lrs)) * 1.05 or 1.0
        add(go.Scatter(x=[], y=[], mode="lines", name="now", line=dict(color=viz.ALEATORIC_COLOR, width=2.5),
                       showlegend=False, hoverinfo="skip"), 2, 3,
            lambda e: {"x": [e, e], "y": [0, top_lr]})
        if snaps:
            sx = np.asarray([s.step / spe for s in snaps])
            sy = lrs[np.clip(np.asarray([s.step - 1 for s in snaps]), 0, len(lrs) - 1)]
            se = np.asarray([s.epoch for s in snaps])
            add(go.Scatter(x=_r(sx, 6), y=_r(sy), mode="markers", name="Snapshot (to come)", showlegend=False,
                           marker=dict(symbol="star-open", size=12, color=viz.EPISTEMIC_COLOR)), 2, 3)
            add(go.Scatter(x=[], y=[], mode="markers", name="Snapshot taken", showlegend=False,
                           marker=dict(symbol="star", size=14, color=viz.EPISTEMIC_COLOR)), 2, 3,
                lambda e: {"x": _r(sx[se <= e], 6), "y": _r(sy[se <= e])})
        fig.update_xaxes(range=[0, max(1.0, len(lrs) / spe) * 1.02], row=2, col=3)
        fig.update_yaxes(range=[0, top_lr], row=2, col=3)

    # ---------------------------------------------------------------- frames, slider, play
    def caption(e: int) -> str:
        text = f"Epoch {e} of {n_epochs}"
        if frames_pred.get(e) is not None:
            k = len(frames_pred[e].members)
            text += f" · {k} member{'s' if k != 1 else ''} in the ensemble"
        if snaps:
            taken = sum(1 for s in snaps if s.epoch <= e)
            text += f" · {taken} of {len(snaps)} snapshots taken"
        return text

    frames = [{"name": str(e), "data": [make(e) for make in parts], "traces": dynamic,
               "layout": {"title": {"text": caption(e)}}} for e in frames_at]
    anim = {"mode": "immediate", "frame": {"duration": 0, "redraw": True}, "transition": {"duration": 0}}
    every = max(1, len(frames_at) // 8)  # a label every few steps: 50 labels would overlap
    steps = [{"label": str(e) if (i % every == 0 or i == len(frames_at) - 1) else "", "method": "animate",
              "args": [[str(e)], anim]} for i, e in enumerate(frames_at)]
    fig.update_annotations(font_size=14)
    fig.update_xaxes(title_font_size=13, tickfont_size=12)
    fig.update_yaxes(tickfont_size=12)
    fig.update_layout(
        title=dict(text=caption(frames_at[-1]), x=0.01, y=0.99, yanchor="top", font=dict(size=18)),
        height=height, template="plotly_white", margin=dict(t=92, b=80, l=56, r=24),
        legend=dict(orientation="h", y=1.015, yanchor="bottom", x=0, font=dict(size=12)), uirevision="replay",
        sliders=[{"active": len(frames) - 1, "x": 0.3, "len": 0.7, "y": 0, "yanchor": "top", "pad": {"t": 36},
                  "currentvalue": {"visible": False}, "font": {"size": 11}, "steps": steps}],
        updatemenus=[{"type": "buttons", "direction": "left", "x": 0.0, "y": 0, "xanchor": "left",
                      "yanchor": "top", "pad": {"t": 28, "r": 8}, "showactive": False,
                      "buttons": [{"label": "▶ Play", "method": "animate",
                                   "args": [[str(e) for e in frames_at],
                                            {"mode": "immediate", "fromcurrent": False,
                                             "frame": {"duration": FRAME_MS, "redraw": True},
                                             "transition": {"duration": 0}}]},
                                  {"label": "❚❚", "method": "animate", "args": [[None], anim]}]}])
    spec = live_plot.to_spec(fig)
    for i, d in zip(dynamic, frames[-1]["data"]):  # the figure opens at the last frame: the finished run
        spec["data"][i].update(d)
    spec["frames"] = frames
    return spec


def show_replay(run: Run, dataset: Any, key: str) -> None:
    """The replay of ``run`` under a heading, drawn as the in-place chart ``key`` (nothing without epochs).

    The spec is built once per run and session (``ui_replay``); it is drawn with
    :func:`dashboard.live_plot.live_chart`, whose element passes the frames to
    Plotly, and which sends nothing back to the server: scrubbing costs no rerun.
    """
    import streamlit as st

    from dashboard import charts

    memo = st.session_state.get("ui_replay")
    if memo is None or memo[0] is not run:
        memo = st.session_state["ui_replay"] = (run, replay_spec(run, dataset))
    if memo[1] is None:
        return
    st.markdown("#### Replay the training")
    st.caption("Press **▶ Play** or drag the epoch slider: the curves, the learning-rate marker and the ensemble's "
               "prediction redraw at that epoch, in your browser (the server does nothing)."
               + (" Each star is a snapshot joining the ensemble." if run.config.strategy.kind == "snapshot" else ""))
    live_plot.live_chart(memo[1], key, charts.plotly_config(key))
