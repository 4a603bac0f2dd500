"""Specs (plain JSON data) of the Train page's live charts: built once per settings, patched with each refresh's data.

Plotly validates every property of a ``go.Figure`` in pure Python, holding the
GIL; the live charts of :func:`dashboard.live.job_charts` instead copy a spec
built before the job started (:func:`live_bases`) and patch in only the arrays
that changed (:func:`_series_spec`, :func:`_lr_spec`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import numpy as np
import streamlit as st

from dashboard import live_plot
from dashboard.charts import _settings_key, figure, lr_figure
from ensemble_core import viz
from ensemble_core.config import RunConfig
from ensemble_core.data import Dataset


def live_bases(cfg: RunConfig, ds: Dataset) -> dict[str, dict]:
    """Specs (plain JSON data) of the live charts built once, before a job starts (their data are filled in live).

    Plotly validates every property of a ``go.Figure`` in pure Python, holding
    the GIL; the live charts patch the data of these specs instead.  The bases
    depend on the settings but not the seed, so they are shared by every
    session of the server (read-only): a class that trains the same settings
    builds them once, not once per student.
    """
    return _shared_bases(_settings_key(cfg, ds.task, ds.n_train), cfg, ds)


@st.cache_resource(max_entries=32, show_spinner=False)
def _shared_bases(key: str, _cfg: RunConfig, _ds: Dataset) -> dict[str, dict]:
    """:func:`live_bases` for the settings ``key`` (the arguments with a leading ``_`` are not hashed)."""
    n, out = _cfg.optim.epochs, {}
    for slot, name, kwargs in (("train_loss_fig", "loss_figure", {"metric": "loss", "height": 340}),
                               ("train_acc_fig", "loss_figure", {"metric": "accuracy", "height": 300}),
                               ("train_val_fig", "val_figure", {"height": 280})):
        if slot == "train_acc_fig" and _ds.task != "classification":
            continue
        args = ([], n, _ds.task) if name == "val_figure" else ([], n)
        extra = {} if name == "val_figure" else {"n_members": _cfg.strategy.members, "task": _ds.task}
        fig = figure(name, *args, **kwargs, **extra)
        if fig is not None:
            out[slot] = live_plot.to_spec(fig.update_layout(uirevision=slot))
    fig = lr_figure(_cfg, _ds.n_train, 1)  # with a "now" line, which the live chart moves (any schedule)
    if fig is not None:
        out["train_lr_live"] = live_plot.to_spec(fig.update_layout(uirevision="train_lr_live"))
    return out


def _finite(v: Any) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


#: Most points per trace of a live curve (longer histories are thinned evenly, the last epoch kept):
#: redrawing many thousands of points a second would cost the viewer's browser more than the run costs
#: the server.  (1000: a curve keeps visibly growing point by point for the first 1000 epochs.)
LIVE_POINTS = 1000


def _series_spec(base: dict, rows: list, values: Callable[[Any], list], most: int | None = LIVE_POINTS) -> dict | None:
    """``base`` with trace ``j``'s ``x`` = epochs and ``y`` = ``values(row)[j]`` (None when missing).

    At most ``most`` points per trace (``None``: every row, for a finished run).
    """
    if most is not None and len(rows) > most:
        rows = [rows[i] for i in np.unique(np.linspace(0, len(rows) - 1, most).astype(int))]
    data = [dict(t) for t in base["data"]]
    x = [int(e.epoch) for e in rows]
    for j, trace in enumerate(data):
        trace["x"] = x
        trace["y"] = [_finite(v[j]) if v is not None and j < len(v) else None for v in map(values, rows)]
    layout = dict(base["layout"])
    if rows:  # the base's "Waiting for the first epoch…" note stays until there is data
        layout["annotations"] = [a for a in layout.get("annotations", ()) if "Waiting" not in str(a.get("text", ""))]
        _clip_spikes(data, layout)
    return {"data": data, "layout": layout}


def _clip_spikes(data: list[dict], layout: dict) -> None:
    """Give each y-axis of a live chart a range that a few spikes (a restart) cannot flatten.

    The same rule as the finished charts (:func:`ensemble_core.viz.robust_range`), with the same note
    of how many values lie off the scale; an axis without spikes keeps the base's own range.
    """
    curves: dict[tuple[str, str], list] = {}
    for trace in data:
        curves.setdefault((trace.get("xaxis", "x"), trace.get("yaxis", "y")), []).append(trace["y"])
    for (xa, ya), ys in curves.items():
        r = viz.series_range(ys)
        if r is None:
            continue
        key = "yaxis" + ya[1:]
        layout[key] = {**layout.get(key, {}), "range": [r[0], r[1]], "autorange": False}
        layout["annotations"] = [*layout.get("annotations", ()), viz.spike_note(r[2], r[3], f"{xa} domain",
                                                                                  f"{ya} domain")]


def _lr_spec(base: dict, cfg: RunConfig, n_train: int, steps: int) -> dict | None:
    """``base`` (built with a 'now' line) with the line moved to ``steps`` and the snapshots split."""
    from ensemble_core import schedules

    sched = schedules.LrSchedule(cfg, n_train)  # the few steps it needs, never the list of every step
    spe, total = sched.steps_per_epoch, sched.total
    snaps = np.asarray([s - 1 for s in schedules.snapshot_steps(cfg, n_train)], dtype=int)
    layout = dict(base["layout"])
    shapes, notes = [dict(x) for x in layout.get("shapes", ())], [dict(x) for x in layout.get("annotations", ())]
    now = [a for a in notes if a.get("text") == "now"]
    if len(shapes) != 1 or len(now) != 1:
        return None
    xn = (min(steps, total) or 1) / spe
    shapes[0]["x0"] = shapes[0]["x1"] = now[0]["x"] = xn
    layout["shapes"], layout["annotations"] = shapes, notes
    data = [dict(t) for t in base["data"]]
    for trace in data:
        name = trace.get("name", "")
        if name.startswith("Snapshot"):
            sel = snaps[(snaps <= steps - 1) == (name == "Snapshot taken")]
            trace["x"], trace["y"] = ((sel + 1) / spe).tolist(), sched.at(sel).tolist()
    return {"data": data, "layout": layout}


def _typed(values: np.ndarray) -> dict[str, str]:
    """A float64 or uint8 array as Plotly's JSON encodes it (a typed-array spec, see :func:`live_plot.to_spec`)."""
    v = np.ascontiguousarray(values)
    out = {"dtype": {"float64": "f8", "uint8": "u1"}[str(v.dtype)], "bdata": base64.b64encode(v).decode("ascii")}
    if v.ndim > 1:
        out["shape"] = str(v.shape)[1:-1]
    return out


def _f8(values: np.ndarray) -> dict[str, str]:
    """``values`` as float64, encoded like Plotly (:func:`_typed`)."""
    return _typed(np.asarray(values, dtype=np.float64))


def bands_spec(base: dict, ds: Dataset, grid: Any, prediction: Any) -> dict | None:
    """The live prediction of a 1-D regression job: ``base`` with ``prediction``'s arrays patched in.

    ``base`` is a spec of ``viz.bands_figure(ds, grid, p, compact=True)`` for this job's data and
    grid and any prediction ``p`` of the same members (built once per job); the result equals the
    spec of that figure built for ``prediction`` (the bands, member lines, ensemble mean and its
    hover values, the y-axis range), without building a ``go.Figure``.  ``base`` is not changed.
    ``None`` when ``base`` does not fit (other members, a different set of traces) or the prediction
    has non-finite values: the caller then builds the figure.
    """
    mean0 = np.asarray(prediction.mean, dtype=np.float64)
    variances = [np.asarray(getattr(prediction, a), dtype=np.float64) for a in ("total", "aleatoric", "epistemic")]
    mm = np.asarray(prediction.member_means, dtype=np.float64)
    if not all(np.isfinite(v).all() for v in (mean0, *variances, mm)):
        return None
    xg = np.asarray(grid, dtype=np.float64)
    order = np.argsort(xg[:, 0] if xg.ndim == 2 else xg.ravel(), kind="stable")
    mean = mean0[order]
    drawn = len(mm) <= viz.MAX_MEMBER_LINES
    rows = {f"Member {i + 1}": r for r, i in enumerate(getattr(prediction, "members", range(len(mm))))} if drawn else {}
    data, k, seen = [dict(t) for t in base["data"]], None, set()
    for trace in data:
        name = str(trace.get("name", ""))
        band = next((j for j, b in enumerate(("Total ±", "Aleatoric ±", "Epistemic ±")) if name.startswith(b)), None)
        if band is not None:
            k = float(name.split("±")[1].rstrip("σ"))
            half = k * np.sqrt(variances[band][order])
            trace["y"] = _f8(np.concatenate([mean + half, (mean - half)[::-1]]))
        elif name.startswith("Member ") and not name.startswith("Member means"):
            if name not in rows:
                return None
            trace["y"], seen = _f8(mm[rows[name]][order]), seen | {name}
        elif name == "Ensemble mean":
            trace["y"], trace["customdata"] = _f8(mean), _f8(np.sqrt(variances[0][order]))
            seen.add(name)
    wanted = f"Member means ({len(mm)})" if drawn else f"{len(mm)} stochastic passes (not drawn)"
    if k is None or seen != {*rows, "Ensemble mean"} or not any(t.get("name") == wanted for t in data):
        return None
    sd = np.sqrt(variances[0][order])
    ytr = np.asarray(ds.y_train, dtype=np.float64)
    lo, hi = viz.bands_y_range(ytr, mean, sd, k)
    layout = dict(base["layout"])
    layout["yaxis"] = {**layout.get("yaxis", {}), "range": [lo, hi]}
    return {"data": data, "layout": layout}


def class_map_spec(base: dict, grid: Any, prediction: Any) -> dict | None:
    """The live prediction of a 2-D classification job: ``base`` with ``prediction``'s class map patched in.

    ``base`` is a spec of ``viz.class_maps(ds, grid, p, compact=True)`` for this job's data and
    ``grid`` (a :class:`~ensemble_core.viz.Grid`) and any prediction ``p`` with as many classes; the
    result equals the spec of that figure built for ``prediction`` (the map's colours and hover
    values), without building a ``go.Figure``.  ``base`` is not changed.  ``None`` when ``base`` does
    not fit or the probabilities are not finite: the caller then builds the figure.
    """
    probs = np.asarray(prediction.probs, dtype=np.float64)
    data = [dict(t) for t in base["data"]]
    if (not isinstance(grid, viz.Grid) or not data or data[0].get("type") != "image" or probs.ndim != 2
            or len(probs) != int(np.prod(grid.shape)) or not np.isfinite(probs).all()):
        return None
    # the colours of viz.class_maps' own map (tests/test_live_bands.py holds the two equal)
    data[0]["z"] = _typed(viz.confidence_image(probs, grid.shape))
    data[0]["customdata"] = _f8(np.stack([probs.argmax(1), probs.max(1)], 1).reshape(*grid.shape, 2))
    return {"data": data, "layout": base["layout"]}
