"""The Sweep page's pieces: the sweep from the settings, its charts, its live, saved and shared views.

Figures are built from a sweep's trials (plain data in, ``go.Figure`` out): a
metric-against-each-setting row, a parallel-coordinates chart (``go.Parcoords``)
and small multiples of every trial's validation-NLL curve.  :func:`results`
draws them with the results table, best first, and "Open in Train", from a
:class:`SweepResults` -- a plain snapshot of a sweep that is either taken from a
live :class:`~ensemble_core.sweeps.SweepRun` (:func:`snapshot`) or read back from
the run store (:meth:`SweepResults.from_dict`), so a live, a saved and a shared
sweep look the same.

Lasting sweeps:

* **Re-attach.**  A started sweep is kept in a process-wide registry keyed by the
  browser's identity (:func:`register`, :func:`live_entry`; one sweep per
  browser, forgotten :data:`FORGET_AFTER_S` after it ends, at most
  :data:`MAX_LIVE` browsers), so a reload, a reopened tab or a second tab of the
  same browser shows it live and can stop it; another browser never sees it.
* **Saved.**  As each trial ends and when the sweep ends, its results go to the
  run store as a sweep (:func:`persist`, ``RunStore.save_sweep``); the page
  lists them (:func:`saved_list`).
* **Shared.**  ``?sweep=<token>`` opens a shared sweep read-only
  (:func:`shared_view`); the owner makes and revokes the link (:func:`share_box`).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from dashboard import charts, chrome, identity, pool, saved, state
from dashboard.settings import EXECUTORS, SWEEPABLE, Settings
from ensemble_core.config import ConfigError, RunConfig
from ensemble_core.data import DataError
from ensemble_core.sweeps import (
    MAX_SETTINGS,
    MAX_TRIALS,
    METRICS,
    SweepRun,
    SweepSpec,
    higher_is_better,
    parse_range,
    parse_values,
)
from ensemble_core.viz import BAD_COLOR, GOOD_COLOR, PALETTE, TEMPLATE

log = logging.getLogger(__name__)

KEY = "sweep_run"  # session key of this browser session's SweepRun
#: Query parameter of a shared sweep's link (``?sweep=<token>``).
SWEEP_PARAM = "sweep"
#: Session key of the shared sweep this session opened from a link (its token), and of the link's problem.
SHARED_KEY, SHARED_MSG_KEY = "ui_sweep_shared", "ui_sweep_link_msg"
#: Session key of the saved sweep opened from "Your saved sweeps" (its id).
OPENED_KEY = "ui_sweep_opened"
#: A finished sweep stays re-attachable this long (seconds) after it ends; it is in the saved list anyway.
FORGET_AFTER_S = 900.0
#: Most browsers with a sweep in the registry (the oldest ended ones are forgotten first).
MAX_LIVE = 512
#: Most points of one trial's saved validation curve (longer curves are thinned evenly, the last kept).
MAX_CURVE_POINTS = 300

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


# ------------------------------------------------------------------ results as plain data
@dataclass(frozen=True)
class TrialView:
    """One trial of a :class:`SweepResults` (the figures read it like a live trial)."""

    index: int
    params: dict[str, Any]
    status: str
    metrics: dict[str, float]
    seconds: float | None = None
    error: str | None = None
    points: tuple[tuple[int, float], ...] = ()

    def curve(self) -> list[tuple[int, float]]:
        """The validation-NLL curve: ``(epoch, value)`` pairs."""
        return list(self.points)


def _finite(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _thin(curve: list[tuple[int, float]], most: int = MAX_CURVE_POINTS) -> tuple[tuple[int, float], ...]:
    if len(curve) <= most:
        return tuple(curve)
    step = len(curve) / most
    picked = [curve[int(i * step)] for i in range(most - 1)] + [curve[-1]]
    return tuple(picked)


@dataclass(frozen=True)
class SweepResults:
    """A sweep's results as plain data: what the page draws, what the run store keeps, what a link shows.

    Attributes:
        spec: the sweep's spec (``SweepSpec.to_dict()``: base config, grid/ranges, metric, seed).
        metric: what the trials are ranked by.
        paths: the swept settings.
        task: the data's task.
        dataset: the data's name.
        trials: every trial, in trial order.
        status: ``"running"``, ``"done"`` or ``"stopped"``.
        created: when the sweep started (unix seconds).
        executor: where it trained (``"process"`` or ``"ray"``).
    """

    spec: dict[str, Any]
    metric: str
    paths: tuple[str, ...]
    task: str
    dataset: str
    trials: tuple[TrialView, ...]
    status: str = "done"
    created: float = field(default_factory=time.time)
    executor: str = "process"

    @property
    def active(self) -> bool:
        """Whether the sweep was still running when this was taken."""
        return self.status == "running"

    def ranked(self) -> list[TrialView]:
        """Done trials best first, then stopped ones best first, then the rest in order (as ``SweepRun.ranked``)."""
        m = self.metric

        def by_metric(status: str) -> list[TrialView]:
            out = [t for t in self.trials if t.status == status and _finite(t.metrics.get(m)) is not None]
            return sorted(out, key=lambda t: -t.metrics[m] if higher_is_better(m) else t.metrics[m])

        head = by_metric("done") + by_metric("stopped")
        return head + [t for t in self.trials if t not in head]

    def best(self) -> TrialView | None:
        """The best done trial (``None`` before one has a score)."""
        ranked = self.ranked()
        return ranked[0] if ranked and ranked[0].status == "done" and self.metric in ranked[0].metrics else None

    def counts(self) -> dict[str, int]:
        """How many trials are in each status."""
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.status] = out.get(t.status, 0) + 1
        return out

    def trial_config(self, t: TrialView) -> RunConfig:
        """The full config trial ``t`` trained with (the spec's base with its settings); ConfigError if invalid."""
        return RunConfig.from_dict(self.spec.get("base", {})).replace(**t.params)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``RunStore.save_sweep`` (also carries the store record's summary keys)."""
        best = self.best()
        return {"version": 1, "spec": self.spec, "metric": self.metric, "paths": list(self.paths),
                "task": self.task, "dataset": self.dataset, "status": self.status, "created": self.created,
                "executor": self.executor, "n_trials": len(self.trials),
                "n_done": sum(t.status == "done" for t in self.trials),
                "label": ", ".join(label(p) for p in self.paths),
                "best": None if best is None else best.index,
                "trials": [{"index": t.index, "params": t.params, "status": t.status, "metrics": t.metrics,
                            "seconds": t.seconds, "error": t.error, "curve": [list(p) for p in t.points]}
                           for t in self.trials]}

    @classmethod
    def from_dict(cls, d: Any) -> SweepResults:
        """Read back :meth:`to_dict`'s output, checked and bounded.

        Raises:
            ValueError: anything that is not a sweep this page saved (the message says what).
        """
        if not isinstance(d, dict):
            raise ValueError("the saved sweep is not a JSON object")
        metric, paths, raw = d.get("metric"), d.get("paths"), d.get("trials")
        if metric not in METRICS:
            raise ValueError(f"the saved sweep ranks by an unknown metric {metric!r}")
        if not isinstance(paths, list) or not 1 <= len(paths) <= MAX_SETTINGS or \
                not all(isinstance(p, str) and len(p) <= 64 for p in paths):
            raise ValueError("the saved sweep does not name its swept settings")
        if not isinstance(raw, list) or len(raw) > MAX_TRIALS:
            raise ValueError("the saved sweep's trials are missing or too many")
        trials = []
        for i, t in enumerate(raw):
            if not isinstance(t, dict) or not isinstance(t.get("params"), dict) or \
                    any(p not in t["params"] for p in paths):
                raise ValueError(f"trial {i + 1} of the saved sweep is incomplete")
            metrics = t.get("metrics") if isinstance(t.get("metrics"), dict) else {}
            curve = t.get("curve") if isinstance(t.get("curve"), list) else []
            points = tuple((int(p[0]), float(p[1])) for p in curve[: 4 * MAX_CURVE_POINTS]
                           if isinstance(p, list) and len(p) == 2 and _finite(p[0]) is not None
                           and _finite(p[1]) is not None)
            trials.append(TrialView(
                index=int(t["index"]) if isinstance(t.get("index"), int) else i, params=dict(t["params"]),
                status=str(t.get("status", "done"))[:16],
                metrics={k: float(v) for k, v in metrics.items() if k in METRICS and _finite(v) is not None},
                seconds=_finite(t.get("seconds")), error=str(t["error"])[:500] if t.get("error") else None,
                points=points))
        spec = d.get("spec") if isinstance(d.get("spec"), dict) else {}
        status = d.get("status") if d.get("status") in ("running", "done", "stopped") else "done"
        return cls(spec=spec, metric=metric, paths=tuple(paths), task=str(d.get("task", ""))[:32],
                   dataset=str(d.get("dataset", ""))[:200], trials=tuple(trials), status=status,
                   created=_finite(d.get("created")) or 0.0,
                   executor=d.get("executor") if d.get("executor") in EXECUTORS else "process")


def snapshot(sweep: SweepRun, task: str, dataset: str, *, created: float | None = None,
             executor: str = "process") -> SweepResults:
    """The live sweep's results now, as plain data (each trial's curve thinned to :data:`MAX_CURVE_POINTS`)."""
    spec = sweep.plan.spec
    trials = []
    for t in list(sweep.trials):
        trials.append(TrialView(index=t.index, params=dict(t.params), status=t.status,
                                metrics={k: v for k, v in dict(t.metrics).items() if _finite(v) is not None},
                                seconds=_finite(t.seconds), error=t.error, points=_thin(t.curve())))
    status = "running" if sweep.active else "stopped" if sweep.stopped else "done"
    return SweepResults(spec=spec.to_dict(), metric=spec.metric, paths=spec.paths, task=task, dataset=dataset,
                        trials=tuple(trials), status=status,
                        created=time.time() if created is None else created, executor=executor)


# ------------------------------------------------------------------ tables
def _fmt_value(v: Any) -> Any:
    """A swept setting's value for the table: floats to 4 significant digits (no 0.0010000000001)."""
    return float(f"{v:.4g}") if isinstance(v, float) else v


def table_rows(res: SweepResults | SweepRun) -> list[dict[str, Any]]:
    """The results table: one row per trial, best first (scored trials, then the others in order)."""
    if isinstance(res, SweepRun):
        metric, paths = res.plan.spec.metric, res.plan.spec.paths
    else:
        metric, paths = res.metric, res.paths
    rows = []
    for rank, t in enumerate(res.ranked(), start=1):
        row: dict[str, Any] = {"rank": rank if t.status == "done" and metric in t.metrics else None,
                               "trial": t.index + 1, "status": t.status}
        row.update({label(p): _fmt_value(t.params[p]) for p in paths})
        row[METRIC_LABELS[metric]] = t.metrics.get(metric)
        for m in ("test_nll", "test_rmse", "test_accuracy"):
            if m != metric and m in t.metrics:
                row[METRIC_LABELS[m]] = t.metrics[m]
        row["seconds"] = t.seconds
        rows.append(row)
    return rows


def sweep_json(res: SweepResults) -> str:
    """The sweep as the CLI's ``--json`` prints it, plus its spec (the page's download)."""
    second = "test_rmse" if res.task == "regression" else "test_accuracy"

    def one(t: TrialView) -> dict[str, Any]:
        out: dict[str, Any] = {"params": dict(t.params)}
        for key in ("test_nll", second):
            out[key] = t.metrics.get(key)
        out["seconds"] = None if t.seconds is None else round(float(t.seconds), 3)
        out["status"] = t.status
        if t.error:
            out["error"] = t.error
        return out

    best = res.best()
    return json.dumps({"spec": res.spec, "trials": [one(t) for t in res.trials],
                       "best": None if best is None else one(best)}, indent=2, default=str)


# ------------------------------------------------------------------ the views
def _open_in_train(params: dict[str, Any]) -> None:
    """The owner's live sweep: load the trial's settings into this session's Train page."""
    try:
        state.settings().apply(dict(params))
    except ConfigError as exc:
        state.note("sweep_open", f"Could not open that trial: {exc}")
        return
    st.session_state["ui_sweep_goto_train"] = True


def _open_config(cfg_dict: dict[str, Any], params: dict[str, Any]) -> None:
    """A saved or shared sweep: make the trial's whole config (base + its settings) the visitor's own.

    Its data come too when they can be rebuilt from their spec; an uploaded CSV cannot travel, so the
    visitor's current data are kept then (and the page says so).
    """
    s = state.settings()
    try:
        cfg = RunConfig.from_dict(cfg_dict).replace(**params)
    except ConfigError as exc:
        state.note("sweep_open", f"Could not open that trial: {exc}")
        return
    msg = None
    if cfg.data != s.config.data:
        if cfg.data.source == "csv":
            cfg, msg = cfg.replace(data=s.config.data), ("This sweep trained on an uploaded CSV file, which a "
                                                          "link cannot carry; its training settings were loaded "
                                                          "onto your current data.")
        else:
            try:
                state.load_data(cfg.data)
            except DataError:
                cfg, msg = cfg.replace(data=s.config.data), ("This sweep's data could not be made here; its "
                                                              "training settings were loaded onto your data.")
    s.config = cfg
    s.remembered[cfg.data.source] = cfg.data
    if msg:
        st.session_state["ui_share_msg"] = msg  # shown at the top of the Train page (links.link_warning)
    st.session_state["ui_sweep_goto_train"] = True


def results(res: SweepResults, *, live: bool = False, key: str = "sweep", can_open: bool = True,
            live_open: bool = True) -> None:
    """The results view: progress, table best first, the charts, Open in Train.

    ``live`` (the page's fragment while the sweep runs): the charts update in place
    (:func:`dashboard.live_plot.live_chart`), keeping the viewer's zoom.  ``key`` prefixes the widget
    keys (one view per key on a page).  ``live_open``: "Open in Train" applies the trial's settings to
    the session's config (the owner's live sweep); otherwise the trial's whole stored config is loaded.
    """
    if st.session_state.pop("ui_sweep_goto_train", False):  # "Open in Train" clicked inside the live view
        st.switch_page("pages/train.py")
    metric, paths = res.metric, res.paths
    counts = res.counts()
    n = len(res.trials)
    ended = sum(counts.get(k, 0) for k in ("done", "stopped", "failed", "skipped"))
    if res.active and live:
        running = counts.get("running", 0)
        st.progress(ended / max(n, 1), text=f"**{ended} of {n} trials** ended · {running} training · "
                                            f"{counts.get('queued', 0) + counts.get('pending', 0)} waiting")
    elif res.active:
        st.info(f"This sweep was still running when it was saved: {ended} of {n} trials had ended.",
                icon=":material/hourglass:")
    else:
        what = "stopped" if res.status == "stopped" else "finished"
        st.success(f"Sweep {what}: {counts.get('done', 0)} of {n} trials done"
                   + (f", {counts.get('stopped', 0)} stopped early" if counts.get("stopped") else "")
                   + (f", {counts.get('skipped', 0)} not run" if counts.get("skipped") else "")
                   + (f", {counts.get('failed', 0)} failed" if counts.get("failed") else "") + ".",
                   icon=":material/done_all:")
    best = res.best()
    if best is not None:
        shown = ", ".join(f"{label(p)} = {_fmt_value(best.params[p])}" for p in paths)
        better = "higher" if higher_is_better(metric) else "lower"
        st.markdown(f":material/trophy: **{'Best so far' if res.active else 'Best'}:** trial {best.index + 1} "
                    f"({chrome.esc(shown)}): {METRIC_LABELS[metric]} **{best.metrics[metric]:.4g}** "
                    f"({better} is better)")
    rows = table_rows(res)
    swept = {label(p) for p in paths}
    cfg = [c for c in rows[0] if c not in ("rank", "trial", "status") and c not in swept] if rows else []
    table = pd.DataFrame(rows)
    for c in cfg:
        table[c] = pd.to_numeric(table[c], errors="coerce")
    if "rank" in table:
        table["rank"] = table["rank"].astype("Int64")
    # (st.dataframe ignores a Styler's number formats, so the formats are column settings; a trial
    # without a score yet shows Streamlit's faint empty-cell marker)
    formats = {c: st.column_config.NumberColumn(format="%.4g") for c in cfg}
    formats["seconds"] = st.column_config.NumberColumn("seconds", format="%.1f")
    st.dataframe(table, hide_index=True, width="stretch", key=f"{key}_table", column_config=formats)
    for t in res.trials:
        if t.status == "failed" and t.error:
            st.warning(f"Trial {t.index + 1}: {chrome.esc(t.error)}", icon=":material/warning:")
    scored = [t for t in res.trials if metric in t.metrics]
    if scored and can_open:
        by_index = {t.index: t for t in res.trials}
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        pick = c1.selectbox("Trial to open", [t.index for t in res.ranked() if t in scored],
                            key=f"{key}_pick_{len(scored)}",  # back to the best when a trial ends
                            format_func=lambda i: f"#{i + 1}: " + ", ".join(
                                f"{label(p)} {_fmt_value(by_index[i].params[p])}" for p in paths)
                            + f" ({METRIC_LABELS[metric]} {by_index[i].metrics[metric]:.4g})")
        chosen = by_index[pick]
        if live_open:
            c2.button("Open in Train", icon=":material/open_in_new:", key=f"{key}_open", on_click=_open_in_train,
                      args=(chosen.params,), help="Load this trial's settings into the Train page.")
        else:
            c2.button("Open in Train", icon=":material/open_in_new:", key=f"{key}_open", on_click=_open_config,
                      args=(res.spec.get("base", {}), chosen.params),
                      help="Load this trial's settings (and its data) into your own Train page.")
        state.show_notes("sweep_open")
    st.subheader(f"{METRIC_LABELS[metric]} against each setting", anchor=False)
    if scored:
        _show(metric_figure(list(res.trials), paths, metric), f"{key}_chart_metric", live)
    else:
        st.caption("The chart appears when the first trial ends.")
    if len(scored) >= 2:
        st.subheader("Parallel coordinates", anchor=False)
        st.caption("One line per trial through its settings and its score; drag along an axis to filter.")
        _show(parcoords_figure(list(res.trials), paths, metric), f"{key}_chart_parcoords", live)
    st.subheader("Validation curves", anchor=False)
    fig = curves_figure(list(res.trials), paths)
    if fig is not None:
        _show(fig, f"{key}_chart_curves", live)
    else:
        st.caption("Each trial's validation curve appears here as it trains.")


def _show(fig: go.Figure | None, key: str, live: bool) -> None:
    if live:
        charts.show_in_place(fig, key)
    else:
        charts.show(fig, key)


# ------------------------------------------------------------------ the live registry (re-attach)
@dataclass
class LiveSweep:
    """A browser's running (or just ended) sweep, as the registry keeps it.

    Attributes:
        sweep: the sweep.
        owner: the browser's token (the run store's owner).
        task, dataset: the data's task and name.
        csv_bytes: the uploaded CSV the trials trained on (saved with their runs), or ``None``.
        created: when it started (unix seconds).
        executor: where it trains.
        sweep_id: its id in the run store once saved (``None``: not (yet) kept).
        run_ids: the store's run id of each trial once saved.
        saved_state: what was last saved (``(ended trials, status)``), so a save happens only on a change.
    """

    sweep: SweepRun
    owner: str
    task: str
    dataset: str
    csv_bytes: bytes | None = None
    created: float = field(default_factory=time.time)
    executor: str = "process"
    sweep_id: str | None = None
    run_ids: dict[int, str | None] = field(default_factory=dict)
    saved_state: tuple[int, str] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def results(self) -> SweepResults:
        """The sweep's results now (:func:`snapshot`)."""
        return snapshot(self.sweep, self.task, self.dataset, created=self.created, executor=self.executor)


_LIVE: dict[str, LiveSweep] = {}
_LIVE_LOCK = threading.Lock()


def _expired(entry: LiveSweep, now: float) -> bool:
    end = entry.sweep.finished_at
    return end is not None and not entry.sweep.active and now - end > FORGET_AFTER_S


def register(entry: LiveSweep) -> None:
    """Make ``entry`` its browser's sweep (replacing an ended one; one sweep per browser); any thread.

    Bounded: expired entries are dropped, and past :data:`MAX_LIVE` browsers the longest-ended ones.
    """
    now = time.monotonic()
    with _LIVE_LOCK:
        old = _LIVE.get(entry.owner)
        _LIVE[entry.owner] = entry
        for k in [k for k, e in _LIVE.items() if _expired(e, now)]:
            del _LIVE[k]
        if len(_LIVE) > MAX_LIVE:
            ended = sorted((e.sweep.finished_at or now, k) for k, e in _LIVE.items()
                           if not e.sweep.active and k != entry.owner)
            for _, k in ended[: len(_LIVE) - MAX_LIVE]:
                del _LIVE[k]
    if old is not None and old is not entry and old.sweep.active:
        old.sweep.stop()  # one sweep per browser: a new one ends the previous


def live_entry(owner: str) -> LiveSweep | None:
    """The browser ``owner``'s sweep while it runs and :data:`FORGET_AFTER_S` after it ended (else ``None``)."""
    with _LIVE_LOCK:
        entry = _LIVE.get(owner)
        if entry is not None and _expired(entry, time.monotonic()):
            del _LIVE[owner]
            return None
    return entry


def live_count() -> int:
    """How many browsers have a sweep in the registry (for tests and the bound)."""
    with _LIVE_LOCK:
        return len(_LIVE)


def current() -> LiveSweep | None:
    """This browser's sweep (a reload, a reopened or a second tab re-attaches); mirrors it into the session."""
    entry = live_entry(identity.browser_id())
    if entry is not None:
        st.session_state[KEY] = entry.sweep
    return entry


# ------------------------------------------------------------------ executor
def ray_ok() -> bool:
    """Whether Ray can be used on this server (``ensemble_core.ray_executor.ray_available``)."""
    try:
        from ensemble_core.ray_executor import ray_available
    except ImportError:
        return False
    try:
        return bool(ray_available())
    except Exception:  # noqa: BLE001 - a broken install means no Ray
        return False


def executor_control(key: str, *, disabled: bool = False) -> str:
    """"Train on": a view of ``Settings.executor``, drawn only where Ray is available; returns the executor.

    Without Ray the runs train on the worker processes and nothing is drawn.
    """
    s = state.settings()
    ok = ray_ok()
    if ok:
        state.bind(st.radio, "executor", "Train on", list(EXECUTORS), key=key, horizontal=True,
                   format_func=EXECUTORS.get, disabled=disabled,
                   to_widget=lambda v: v or s.effective_executor(ok), convert=lambda v: v or s.effective_executor(ok),
                   help="This server's worker processes, or the Ray cluster (a local Ray the app starts, or the "
                        "cluster at RAY_ADDRESS). The same seeds give the same results on either.")
    return s.effective_executor(ok)


def programs_line(checked: Any) -> str:
    """How the plan trains: ``"12 trials in 3 batched programs"``, ``"6 trials in 4 programs (4 batched)"``
    or ``"12 trials"`` (one program each)."""
    n = len(checked.configs)
    text = f"**{n} trial{'s' if n != 1 else ''}**"
    programs = getattr(checked, "programs", None)
    try:
        sizes = [len(p) for p in programs] if programs is not None else []
    except TypeError:
        sizes = []
    k, batched = len(sizes), sum(s for s in sizes if s > 1)
    if 0 < k < n:
        if batched == n:
            text += f" in **{k} batched program{'s' if k != 1 else ''}**"
        else:
            text += f" in **{k} programs** ({batched} trials batched together)"
    return text


# ------------------------------------------------------------------ starting, saving
def start(checked: Any, ds: Any, csv_bytes: bytes | None, executor: str) -> LiveSweep:
    """Start ``checked`` for this browser through the pool (on ``executor`` when the core takes it); registers it.

    Raises:
        whatever ``SweepRun`` raises (the page shows it).
    """
    p = pool.pool()
    user = owner_user()
    entry_box: list[LiveSweep] = []

    def changed(sw: SweepRun) -> None:
        if entry_box:
            persist(entry_box[0])

    sweep = SweepRun(checked, ds, p, user, parallel=max(1, p.max_active_per_user - 1), on_change=changed,
                     executor=executor)
    entry = LiveSweep(sweep, user, ds.task, ds.name, csv_bytes, executor=executor)
    entry_box.append(entry)
    register(entry)
    persist(entry)  # listed at once, as running
    return entry


def persist(entry: LiveSweep) -> str | None:
    """Save the sweep's results (and its ended trials' runs) to the run store when they changed; any thread.

    Never raises: a store that cannot be written leaves the sweep unsaved (logged).
    """
    s = saved.store()
    if s is None or not getattr(s, "available", False) or not hasattr(s, "save_sweep"):
        return None
    with entry.lock:
        sweep = entry.sweep
        for t in list(sweep.trials):
            if t.index not in entry.run_ids and t.job is not None and not t.job.active:
                entry.run_ids[t.index] = saved.save_job(t.job, "sweep", entry.csv_bytes)
        res = entry.results()
        ended = sum(t.status in ("done", "stopped", "failed", "skipped") for t in res.trials)
        mark = (ended, res.status)
        if mark == entry.saved_state:
            return entry.sweep_id
        try:
            entry.sweep_id = s.save_sweep(entry.owner, res.to_dict(), sweep_id=entry.sweep_id,
                                          run_ids=[entry.run_ids.get(t.index) for t in res.trials])
            entry.saved_state = mark
        except Exception:  # noqa: BLE001 - StoreUnavailable / StoreError: the sweep is just not kept
            log.exception("saving a sweep failed")
        return entry.sweep_id


def save_trials(sweep: SweepRun, csv_bytes: bytes | None) -> None:
    """Every ended trial's run goes to the run store (the Runs page), once each (any thread)."""
    for t in sweep.trials:
        if t.job is not None and not t.job.active:
            saved.save_job(t.job, "sweep", csv_bytes)


def owner_user() -> str:
    """The browser's user key, whose quota the sweep's trials use (registers this tab for liveness)."""
    return pool.owner("sweep").split(":", 1)[0]


# ------------------------------------------------------------------ saved sweeps
def _summary(rec: Any) -> str:
    return f"{saved.when(rec.created)} · {rec.label or 'sweep'} · {rec.n_done} of {rec.n_trials} done"


def saved_list(*, running_id: str | None = None) -> None:
    """"Your saved sweeps": newest first; open one read-only, share it, delete it (with confirmation)."""
    s = saved.store()
    if s is None or not hasattr(s, "list_sweeps"):
        return
    owner = identity.browser_id()
    try:
        records = s.list_sweeps(owner, limit=100)
    except Exception:  # noqa: BLE001 - a store problem: say it, no traceback
        log.exception("listing sweeps failed")
        records = []
    st.subheader("Your saved sweeps", anchor=False)
    if not getattr(s, "available", True):
        st.caption(f":material/warning: Sweeps are not being kept: {chrome.esc(s.why or 'the store cannot be written')}.")
    if not records:
        st.caption("Every sweep you run is kept here, newest first, as its trials finish.")
        return
    rows = [{"when": saved.when(r.created), "swept": r.label or "—", "ranked by": METRIC_LABELS.get(r.metric, r.metric),
             "trials": f"{r.n_done} of {r.n_trials} done", "status": r.status,
             "link": "shared" if r.shared else ""} for r in records]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="sweep_saved_list")
    ids = [r.sweep_id for r in records]
    by_id = {r.sweep_id: r for r in records}
    opened = st.session_state.get(OPENED_KEY)
    c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
    pick = c1.selectbox("Saved sweep", ids, key="sweep_list_pick", format_func=lambda i: _summary(by_id[i]),
                        index=ids.index(opened) if opened in ids else 0)
    if c2.button("Open", icon=":material/folder_open:", key="sweep_list_open", width="stretch"):
        st.session_state[OPENED_KEY] = pick
        st.rerun()
    confirm = st.session_state.get("ui_sweep_confirm_delete") == pick
    if c3.button("Really delete?" if confirm else "Delete", icon=":material/delete:", key="sweep_list_delete",
                 width="stretch", type="primary" if confirm else "secondary", disabled=pick == running_id,
                 help="The trials' runs stay on the Runs page." if pick != running_id
                 else "A running sweep is deleted once it has ended."):
        if confirm:
            try:
                s.delete_sweep(pick, owner)
            except Exception as exc:  # noqa: BLE001
                st.error(f"The sweep could not be deleted: {chrome.esc(exc)}", icon=":material/error:")
            st.session_state.pop("ui_sweep_confirm_delete", None)
            if st.session_state.get(OPENED_KEY) == pick:
                st.session_state.pop(OPENED_KEY, None)
            st.rerun()
        st.session_state["ui_sweep_confirm_delete"] = pick
        st.rerun()
    if confirm:
        st.caption(":material/warning: Click **Really delete?** to delete this sweep (its share link stops working).")
    if opened in by_id:
        try:
            rec, summary, _ = s.load_sweep(opened, owner)
            res = SweepResults.from_dict(summary)
        except Exception as exc:  # noqa: BLE001 - StoreError (damaged, gone) or a summary we cannot read
            st.warning(f"This saved sweep cannot be opened: {chrome.esc(exc)}", icon=":material/link_off:")
            return
        with st.container(border=True, key="sweep_saved_view"):
            h1, h2, h3 = st.columns([4, 1.3, 0.8], vertical_alignment="center")
            h1.markdown(f"#### Saved sweep of {saved.when(rec.created)}")
            with h2:
                share_box(rec)
            h3.button("Close", icon=":material/close:", key="sweep_saved_close", width="stretch",
                      on_click=lambda: st.session_state.pop(OPENED_KEY, None))
            st.caption(f"On {chrome.esc(res.dataset)} · {len(res.trials)} trials · read-only.")
            results(res, key="sweep_saved", live_open=False)


def sweep_url(token: str) -> str:
    """The read-only link of a shared sweep: the app's address with ``/sweep?sweep=<token>``."""
    base = (st.context.url or "").split("?", 1)[0].split("#", 1)[0]
    for page in ("uncertainty", "runs", "train", "data", "lessons", "compare", "home", "sweep"):
        if base.endswith("/" + page):
            base = base[: -len(page)]
    return f"{base.rstrip('/')}/sweep?{SWEEP_PARAM}={token}"


def share_box(rec: Any, where: str = "saved", width: str = "stretch") -> None:
    """"Share this sweep": a read-only link to the owner's saved sweep ``rec``; revoke it.

    ``where`` tells the page's copies of the box apart (widget keys): the ended sweep's and the opened saved one's.
    """
    s = saved.store()
    if s is None:
        return
    owner = identity.browser_id()
    with st.popover("Share this sweep", icon=":material/share:", width=width):
        st.markdown("**A read-only link to this sweep.** Whoever has it sees its results table, the charts and "
                    "each trial's curve, and can open a trial in their own Train page. Nothing is retrained.")
        try:
            if rec.shared:  # the store gives the link's token again while it is not revoked
                st.code(sweep_url(s.share_sweep(rec.sweep_id, owner)), language=None, wrap_lines=True)
                st.caption("Anyone with the link can open it. Revoke it to close it for everyone.")
                if st.button("Revoke the link", icon=":material/link_off:", key=f"sweep_revoke_{where}"):
                    s.revoke_sweep(rec.sweep_id, owner)
                    st.rerun()
            elif st.button("Make a link", icon=":material/link:", key=f"sweep_share_{where}", type="primary"):
                s.share_sweep(rec.sweep_id, owner)
                st.rerun()
        except Exception as exc:  # noqa: BLE001 - StoreError / StoreUnavailable: say it, no traceback
            st.error(f"The link could not be changed: {chrome.esc(exc)}", icon=":material/error:")


def record_of(sweep_id: str | None) -> Any | None:
    """This browser's saved-sweep record ``sweep_id`` (``None``: not saved, or the store cannot say)."""
    s = saved.store()
    if sweep_id is None or s is None or not hasattr(s, "list_sweeps"):
        return None
    try:
        return next((r for r in s.list_sweeps(identity.browser_id()) if r.sweep_id == sweep_id), None)
    except Exception:  # noqa: BLE001
        return None


# ------------------------------------------------------------------ shared sweeps (?sweep=<token>)
def shared_view(token: str) -> None:
    """The read-only view of a shared sweep: a banner, the results best first, the charts; no Start/Stop.

    A revoked, unknown or malformed token gets a clear message (never a traceback).
    """
    s = saved.store()
    res = None
    problem = None
    if s is None or not hasattr(s, "open_shared_sweep"):
        problem = "shared sweeps cannot be opened on this server"
    elif not identity.valid_token(token):
        problem = "the link is not complete (check that it was copied whole)"
    else:
        try:
            rec, summary = s.open_shared_sweep(token)
            res = SweepResults.from_dict(summary)
        except Exception as exc:  # noqa: BLE001 - StoreError (revoked, unknown, damaged), a bad summary
            problem = str(exc) or "it was revoked or never existed"
    c1, c2 = st.columns([5, 1], vertical_alignment="center")
    if res is None:
        c1.warning(f"**This sweep link cannot be opened:** {chrome.esc(problem)}.", icon=":material/link_off:")
    else:
        c1.info(f"**A shared sweep, run {saved.when(rec.created)}** (read-only) · on {chrome.esc(res.dataset)} · "
                f"{len(res.trials)} trials, ranked by {METRIC_LABELS[res.metric]}. Nothing is retrained to show it; "
                "**Open in Train** loads a trial's settings into your own Train page.", icon=":material/share:")
    c2.button("Your own sweeps", icon=":material/arrow_back:", key="sweep_shared_close", width="stretch",
              on_click=close_shared)
    if res is not None:
        results(res, key="sweep_shared", live_open=False)


def close_shared() -> None:
    """Leave the shared view (the session's own Sweep page again)."""
    st.session_state.pop(SHARED_KEY, None)
    st.session_state.pop(SHARED_MSG_KEY, None)
    try:
        del st.query_params[SWEEP_PARAM]
    except KeyError:
        pass
