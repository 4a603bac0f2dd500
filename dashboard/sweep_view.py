"""The Sweep page's pieces: the sweep from the settings, its results view, and a sweep that lasts.

:func:`results` draws a sweep's results table, best first, "Open in Train" and the
charts (:mod:`dashboard.sweep_figures`) from a :class:`SweepResults` -- a plain
snapshot of a sweep that is either taken from a live
:class:`~ensemble_core.sweeps.SweepRun` (:func:`snapshot`) or read back from the
run store (:meth:`SweepResults.from_dict`), so a live, a saved and a shared sweep
look the same.  The saved list and the shared view are :mod:`dashboard.sweep_saved`.

A sweep that lasts (re-attached after a reload, saved as it goes) is :mod:`dashboard.sweep_live`.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import charts, chrome, state
from dashboard.settings import EXECUTORS, Settings
from dashboard.sweep_figures import METRIC_LABELS, curves_figure, label, metric_figure, parcoords_figure
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

KEY = "sweep_run"  # session key of this browser session's SweepRun
#: Query parameter of a shared sweep's link (``?sweep=<token>``).
SWEEP_PARAM = "sweep"
#: Session key of the shared sweep this session opened from a link (its token), and of the link's problem.
SHARED_KEY, SHARED_MSG_KEY = "ui_sweep_shared", "ui_sweep_link_msg"
#: Session key of the saved sweep opened from "Your saved sweeps" (its id).
OPENED_KEY = "ui_sweep_opened"
#: Most points of one trial's saved validation curve (longer curves are thinned evenly, the last kept).
MAX_CURVE_POINTS = 300



def metrics_for(task: str) -> list[str]:
    """The ranking metrics that fit ``task``."""
    drop = "accuracy" if task == "regression" else "rmse"
    return [m for m in METRIC_LABELS if not m.endswith(drop)]


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
    # without a score yet shows a dash)
    formats = {c: st.column_config.NumberColumn(format="%.4g") for c in cfg}
    formats["seconds"] = st.column_config.NumberColumn("seconds", format="%.1f")
    st.dataframe(table, hide_index=True, width="stretch", key=f"{key}_table", column_config=formats,
                 placeholder=chrome.MISSING)
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


# ------------------------------------------------------------------ the plan
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
