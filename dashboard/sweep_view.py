"""The Sweep page's pieces: the sweep from the settings, its charts, and its live results view.

Figures are built from a :class:`~ensemble_core.sweeps.SweepRun`'s trials (plain
data in, ``go.Figure`` out): a metric-against-each-setting row, a
parallel-coordinates chart (``go.Parcoords``) and small multiples of every
trial's validation-NLL curve.  :func:`results` draws them with the results
table, best first, and an "Open in Train" button per trial, live while the
sweep runs (a fragment refreshing about once a second) and once more when it
ends.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from dashboard import charts, chrome, pool, saved, state
from dashboard.settings import SWEEPABLE, Settings
from ensemble_core.config import ConfigError
from ensemble_core.data import Dataset
from ensemble_core.sweeps import (
    SweepRun,
    SweepSpec,
    TrialState,
    higher_is_better,
    parse_range,
    parse_values,
)
from ensemble_core.viz import BAD_COLOR, GOOD_COLOR, PALETTE, TEMPLATE

KEY = "sweep_run"  # session key of this browser session's SweepRun

#: How the metrics are named on the page.
METRIC_LABELS = {"test_nll": "Test NLL", "val_nll": "Validation NLL", "test_rmse": "Test RMSE",
                 "val_rmse": "Validation RMSE", "test_accuracy": "Test accuracy", "val_accuracy": "Validation accuracy",
                 "test_ece": "Test calibration error", "val_ece": "Validation calibration error"}
#: Settings drawn on a log axis.
LOG_AXES = {"optim.lr", "optim.weight_decay", "strategy.adversarial_eps", "optim.batch_size"}


def metrics_for(task: str) -> list[str]:
    """The ranking metrics that fit ``task``."""
    drop = "accuracy" if task == "regression" else "rmse"
    return [m for m in METRIC_LABELS if not m.endswith(drop)]


def label(path: str) -> str:
    """A swept setting's name on the page."""
    return SWEEPABLE[path][0] if path in SWEEPABLE else path


def build_spec(s: Settings, task: str) -> SweepSpec:
    """The sweep the page's settings describe, on the Train page's config.

    Raises:
        ConfigError: a value or range that does not parse or is invalid (the message names the setting).
    """
    sw, base = s.sweep, s.config
    metric = sw.metric if sw.metric in metrics_for(task) else "test_nll"
    if sw.mode == "grid":
        grid = []
        for p in sw.params:
            try:
                grid.append((p, parse_values(base, p, s.get(f"sweep.values.{p}"))))
            except ConfigError as exc:
                raise ConfigError(f"{label(p)}: {str(exc).split(': ', 1)[-1]}") from None
        return SweepSpec(base, grid=tuple(grid), metric=metric)
    ranges = []
    for p in sw.params:
        try:
            ranges.append((p, parse_range(base, p, s.get(f"sweep.ranges.{p}"))))
        except ConfigError as exc:
            raise ConfigError(f"{label(p)}: {str(exc).split(': ', 1)[-1]}") from None
    return SweepSpec(base, ranges=tuple(ranges), n_random=sw.n, metric=metric)


# ------------------------------------------------------------------ figures
def _value(v: Any) -> float | None:
    return None if v is None or not isinstance(v, (int, float)) or not math.isfinite(v) else float(v)


def _layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(template=TEMPLATE, height=height, margin=dict(l=70, r=30, t=50, b=60), showlegend=False)
    return fig


def metric_figure(trials: list[TrialState], paths: tuple[str, ...], metric: str) -> go.Figure | None:
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
    fig.update_yaxes(title_text=METRIC_LABELS[metric], row=1, col=1)
    return _layout(fig, 340)


def parcoords_figure(trials: list[TrialState], paths: tuple[str, ...], metric: str) -> go.Figure | None:
    """Parallel coordinates: one axis per swept setting and the metric; lines coloured by the metric."""
    scored = [t for t in trials if _value(t.metrics.get(metric)) is not None]
    if len(scored) < 2:
        return None
    dims = []
    for p in paths:
        xs = [t.params[p] for t in scored]
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs):
            if p in LOG_AXES and min(xs) > 0:
                vals = [math.log10(x) for x in xs]
                dims.append(dict(label=f"log₁₀ {label(p)}", values=vals))
            else:
                dims.append(dict(label=label(p), values=[float(x) for x in xs]))
        else:
            cats = sorted({str(x) for x in xs})
            dims.append(dict(label=label(p), values=[cats.index(str(x)) for x in xs],
                             tickvals=list(range(len(cats))), ticktext=cats))
    ys = [t.metrics[metric] for t in scored]
    dims.append(dict(label=METRIC_LABELS[metric], values=ys))
    scale = "Cividis" if higher_is_better(metric) else "Cividis_r"  # bright = good
    fig = go.Figure(go.Parcoords(line=dict(color=ys, colorscale=scale, showscale=True,
                                           colorbar=dict(title=dict(text=METRIC_LABELS[metric], side="right"))),
                                 dimensions=dims, labelfont=dict(size=15), tickfont=dict(size=13)))
    fig = _layout(fig, 360)
    fig.update_layout(margin=dict(l=80, r=150, t=70, b=30))
    fig.update_traces(line_colorbar_x=1.08, selector=dict(type="parcoords"))
    return fig


def curves_figure(trials: list[TrialState], paths: tuple[str, ...], cols: int = 4) -> go.Figure | None:
    """Small multiples: each trial's validation NLL per epoch, one panel per trial, on a shared y-axis."""
    shown = [t for t in trials if t.status != "skipped"]
    if not shown:
        return None
    rows = -(-len(shown) // cols)
    titles = [f"#{t.index + 1} " + ", ".join(f"{label(p)} {t.params[p]:g}" if isinstance(t.params[p], float)
                                             else f"{label(p)} {t.params[p]}" for p in paths) for t in shown]
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


# ------------------------------------------------------------------ tables
def table_rows(sweep: SweepRun) -> list[dict[str, Any]]:
    """The results table: one row per trial, best first (scored trials, then the others in order)."""
    metric = sweep.plan.spec.metric
    paths = sweep.plan.spec.paths
    rows = []
    for rank, t in enumerate(sweep.ranked(), start=1):
        row: dict[str, Any] = {"rank": rank if t.status == "done" and metric in t.metrics else None,
                               "trial": t.index + 1, "status": t.status}
        row.update({label(p): t.params[p] for p in paths})
        row[METRIC_LABELS[metric]] = t.metrics.get(metric)
        for m in ("test_nll", "test_rmse", "test_accuracy"):
            if m != metric and m in t.metrics:
                row[METRIC_LABELS[m]] = t.metrics[m]
        row["seconds"] = t.seconds
        rows.append(row)
    return rows


def sweep_json(sweep: SweepRun, task: str) -> str:
    """The sweep as the CLI's ``--json`` prints it, plus its spec (the page's download)."""
    from ensemble_core.sweeps import trial_json

    best = sweep.best()
    return json.dumps({"spec": sweep.plan.spec.to_dict(), "trials": [trial_json(t, task) for t in sweep.trials],
                       "best": None if best is None else trial_json(best, task)}, indent=2, default=str)


# ------------------------------------------------------------------ the live view
def _open_in_train(params: dict[str, Any]) -> None:
    try:
        state.settings().apply(dict(params))
    except ConfigError as exc:
        state.note("sweep_open", f"Could not open that trial: {exc}")
        return
    st.session_state["ui_sweep_goto_train"] = True


def results(sweep: SweepRun, ds: Dataset, *, live: bool = False) -> None:
    """The results view: progress, table best first, the charts, Open in Train.

    ``live`` (the page's fragment while the sweep runs): the charts update in place
    (:func:`dashboard.live_plot.live_chart`), keeping the viewer's zoom.
    """
    if st.session_state.pop("ui_sweep_goto_train", False):  # "Open in Train" clicked inside the live view
        st.switch_page("pages/train.py")
    spec = sweep.plan.spec
    metric, paths = spec.metric, spec.paths
    counts = sweep.counts()
    n = len(sweep.trials)
    ended = sum(counts.get(k, 0) for k in ("done", "stopped", "failed", "skipped"))
    if sweep.active:
        running = counts.get("running", 0)
        st.progress(ended / n, text=f"**{ended} of {n} trials** ended · {running} training · "
                                    f"{counts.get('queued', 0) + counts.get('pending', 0)} waiting")
        if sweep.notice:
            st.caption(f":material/hourglass: {chrome.esc(sweep.notice)}")
    else:
        what = "stopped" if sweep.stopped else "finished"
        st.success(f"Sweep {what}: {counts.get('done', 0)} of {n} trials done"
                   + (f", {counts.get('stopped', 0)} stopped early" if counts.get("stopped") else "")
                   + (f", {counts.get('skipped', 0)} not run" if counts.get("skipped") else "")
                   + (f", {counts.get('failed', 0)} failed" if counts.get("failed") else "") + ".",
                   icon=":material/done_all:")
    best = sweep.best()
    if best is not None:
        shown = ", ".join(f"{label(p)} = {best.params[p]}" for p in paths)
        better = "higher" if higher_is_better(metric) else "lower"
        st.markdown(f":material/trophy: **{'Best so far' if sweep.active else 'Best'}:** trial {best.index + 1} ({shown}): "
                    f"{METRIC_LABELS[metric]} **{best.metrics[metric]:.4g}** ({better} is better)")
    rows = table_rows(sweep)
    cfg = [c for c in rows[0] if c not in ("rank", "trial", "status") and c not in {label(p) for p in paths}] \
        if rows else []
    table = pd.DataFrame(rows)
    for c in cfg:
        table[c] = pd.to_numeric(table[c], errors="coerce")
    if "rank" in table:
        table["rank"] = table["rank"].astype("Int64")
    # (st.dataframe ignores a Styler's number formats, so the formats are column settings; a trial
    # without a score yet shows Streamlit's faint empty-cell marker)
    st.dataframe(table, hide_index=True, width="stretch", key="sweep_table",
                 column_config={c: st.column_config.NumberColumn(format="%.4g") for c in cfg})
    for t in sweep.trials:
        if t.status == "failed" and t.error:
            st.warning(f"Trial {t.index + 1}: {chrome.esc(t.error)}", icon=":material/warning:")
    scored = [t for t in sweep.trials if metric in t.metrics]
    if scored:
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        pick = c1.selectbox("Trial to open", [t.index for t in sweep.ranked() if t in scored], key=f"sweep_pick_{len(scored)}",  # back to the best when a trial ends
                            format_func=lambda i: f"#{i + 1}: " + ", ".join(
                                f"{label(p)} {sweep.trials[i].params[p]}" for p in paths)
                            + f" ({METRIC_LABELS[metric]} {sweep.trials[i].metrics[metric]:.4g})")
        c2.button("Open in Train", icon=":material/open_in_new:", key="sweep_open", on_click=_open_in_train,
                  args=(sweep.trials[pick].params,), help="Load this trial's settings into the Train page.")
        state.show_notes("sweep_open")
    st.subheader(f"{METRIC_LABELS[metric]} against each setting", anchor=False)
    if scored:
        _show(metric_figure(sweep.trials, paths, metric), "sweep_chart_metric", live)
    else:
        st.caption("The chart appears when the first trial ends.")
    if len(scored) >= 2:
        st.subheader("Parallel coordinates", anchor=False)
        st.caption("One line per trial through its settings and its score; drag along an axis to filter.")
        _show(parcoords_figure(sweep.trials, paths, metric), "sweep_chart_parcoords", live)
    st.subheader("Validation curves", anchor=False)
    fig = curves_figure(sweep.trials, paths)
    if fig is not None:
        _show(fig, "sweep_chart_curves", live)


def _show(fig: go.Figure | None, key: str, live: bool) -> None:
    if live:
        charts.show_in_place(fig, key)
    else:
        charts.show(fig, key)


def save_trials(sweep: SweepRun, csv_bytes: bytes | None) -> None:
    """Every ended trial's run goes to the run store (the Runs page), once each (any thread)."""
    for t in sweep.trials:
        if t.job is not None and not t.job.active:
            saved.save_job(t.job, "sweep", csv_bytes)


def owner_user() -> str:
    """The browser's user key, whose quota the sweep's trials use (registers this tab for liveness)."""
    return pool.owner("sweep").split(":", 1)[0]
