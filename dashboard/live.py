"""Live views of running jobs: polling cadence, the Train page's live charts, lesson and race sequences, the push waker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from dashboard import live_plot
from dashboard.charts import figure, lr_figure, plotly_config, preview_grid, show
from dashboard.live_specs import LIVE_POINTS, _lr_spec, _series_spec, bands_spec, class_map_spec, live_bases  # noqa: F401 - live_bases: the pages' API
from dashboard.pool import pool
from dashboard.st_compat.push import push_rerun
from dashboard.st_compat.session import script_run
from ensemble_core.data import Dataset
from ensemble_core.jobs import Job

#: Seconds between redraws of the live views while a job is active (on an idle server).
POLL_S = 0.5


#: Seconds between redraws of the live charts (building Plotly figures is the costly part).
CHART_S = 1.0


#: Seconds between redraws of a watchable run's live view and its loss chart: ~45 asked for over its ~9 s.  A
#: refresh costs the server ~50 ms and the browser ~200 ms (Streamlit's re-render ~90 ms, each changed chart's
#: Plotly redraw ~30-80 ms), so ~35-40 land on a quiet machine (``benchmarks/bench_live_refresh.py``).
WATCH_S = 0.2


#: Seconds between data refreshes of a watchable run's other live charts (validation, accuracy, learning
#: rate, the live prediction): the loss chart takes new data on every refresh.  Each chart the browser
#: redraws costs it ~30-70 ms (Plotly) of a refresh; unchanged data are not redrawn.
SIDE_S = 0.6


#: What the pace control offers (``Settings.pace``).
PACE_LABELS = {"fast": "As fast as possible", "watchable": "Watchable (~9 s)"}


#: Seconds between refreshes of the sidebar's run status while a job is active.
SIDEBAR_POLL_S = 1.0


#: The slowest any live view refreshes, however busy the server is.
SLOWEST_S = 5.0


#: The fastest a running run's page redraws while other runs wait in the queue: each redraw costs the
#: server a script run and the browser a render, CPU that the queue's runs are waiting for.
WAITING_S = 2.0


#: The slowest a queued run's page refreshes its place in the line (its run's start and end are pushed).
QUEUED_SLOWEST_S = 15.0


#: Key of the container that holds a live view (the Train page's run, a lesson, a race).
LIVE_KEY = "live_view"


#: Stylesheet of the live views: the progress bar steps instead of easing, and the elements of the
#: live view (:data:`LIVE_KEY`) never fade while they are redrawn.  Restarted on every refresh, those
#: transitions would keep the browser compositing frames for the whole run, which a
#: software-rendered browser pays for on the CPU the training needs (``docs/decisions.md``).
LIVE_CSS = ("<style>[data-testid='stProgressBarTrack'] div { transition: none !important; } "
            f".st-key-{LIVE_KEY} [data-stale='true'] {{ opacity: 1 !important; transition: none !important; }}</style>")


def live_every(base: float, slowest: float = SLOWEST_S) -> float:
    """Refresh interval of a live view: ``base`` seconds, slower when the server is busy.

    Every refresh of every open browser costs the shared server (a script run)
    and the browser (a redraw).  With up to two active runs per core the views
    refresh at ``base``; beyond that the interval grows with the load (a class
    of 20 on 2 cores: 5 x), never beyond ``slowest``.  A fragment declared with
    it keeps the interval of its last full run; the Train page's live view
    asks again on every refresh (:func:`poll_every`).
    """
    stats = pool().stats()
    per_core = (stats["running"] + stats["queued"]) / max(1, stats["max_running"])
    return round(min(max(base, slowest), base * max(1.0, per_core / 2)), 2)


def paced(job: Job) -> bool:
    """Whether ``job`` runs at the watchable pace (its live views then redraw every :data:`WATCH_S`)."""
    return getattr(job, "pace_s", 0.0) > 0


def pace_control(key: str, **kwargs: Any) -> str:
    """The pace control (a view of ``Settings.pace``); returns the pace the next run gets.

    Until chosen, the pace follows presentation mode and classroom links (watchable), else fast.
    """
    from dashboard import state

    s = state.settings()
    state.bind(st.segmented_control, "pace", "Pace", list(PACE_LABELS), key=key, format_func=PACE_LABELS.get,
               to_widget=lambda v: v or s.effective_pace, convert=lambda v: v or s.effective_pace,
               help="Watchable: the same run, with the same result, spread over about 9 s so you can watch every "
                    "member learn (the server waits between epochs; it costs no extra computing).", **kwargs)
    return s.effective_pace


def submit_options(ds: Dataset, epochs: int, pace: str) -> dict[str, Any]:
    """The live-preview and pace arguments of :meth:`JobPool.submit` for a run of ``epochs`` on ``ds``.

    About :data:`~ensemble_core.run.REPLAY_FRAMES` previews per run (the replay's frames, and the live
    preview), on the page's preview grid when the data have one.
    """
    from ensemble_core.run import preview_every

    grid = preview_grid(ds)
    return {"preview_x": None if grid is None else np.asarray(grid),
            "preview_every": preview_every(epochs) if grid is not None else 0, "preview_min_s": 0.0, "pace": pace}


def poll_every(job: Job) -> float:
    """Seconds until the Train page's live view of ``job`` should refresh next.

    :func:`live_every` of :data:`POLL_S`; for a running job, no faster than
    :data:`WAITING_S` while other runs wait in the queue; for a queued job,
    half its expected wait (at most :data:`QUEUED_SLOWEST_S`): a class waiting
    in line has nothing to animate, and its polls would take CPU from the runs
    in front of it.  The polls only move the page's place in the line: the
    run's start and end reach the page at once (:class:`SessionWaker`).  The
    live view asks again on every refresh
    (:func:`dashboard.st_compat.push.retime_fragment`), so the polls quicken as
    the start nears and follow the server's load.
    """
    every = live_every(WATCH_S if paced(job) else POLL_S)
    if job.status != "queued":
        return max(every, WAITING_S) if pool().stats()["queued"] else every
    wait = pool().expected_wait(job)
    return round(min(QUEUED_SLOWEST_S, max(every, (wait or 0.0) / 2)), 2)


def live_sequence(seq_key: str, owner_key: str, body: Callable[[Any], None], stop_label: str, stop_key: str) -> None:
    """The live view of a :class:`~ensemble_core.race.RunSequence` (a lesson, a race).

    Each refresh advances the sequence in ``st.session_state[seq_key]`` (for
    ``owner_key``), draws ``body(seq)`` and a Stop button; when the sequence is
    done, one full rerun shows its results.
    """
    @st.fragment(run_every=live_every(CHART_S))
    def live() -> None:
        seq = st.session_state[seq_key]
        seq.step(pool(), owner_key)
        if seq.done:
            st.rerun()
        with st.container(key=LIVE_KEY):
            # Stop first: the same place in every refresh, so the browser keeps the same button (below a
            # body whose elements change between refreshes it was redrawn, and a click could be lost)
            if st.button(stop_label, icon=":material/stop:", key=stop_key):
                seq.stop(pool(), owner_key)
                st.rerun()
            body(seq)

    live()


def show_live(key: str, signature: tuple, build: Callable[[], dict | None]) -> None:
    """The live chart ``key`` (see :func:`show`), built by ``build`` only when ``signature`` changed.

    A live view polls more often than its charts' data refresh, and each poll
    must draw every chart again; with the same ``signature`` (the data the
    charts were drawn from) the chart's encoded payload from the previous poll
    is sent again, without building or encoding the figure.
    """
    memo = st.session_state.setdefault("ui_live_payloads", {})
    config = plotly_config(key)  # the download format can change between polls (Share box)
    signature = (signature, json.dumps(config, sort_keys=True))
    hit = memo.get(key)
    if hit is not None and hit[0] == signature:
        live_plot.live_chart_bytes(hit[1], key)
        return
    spec = build()
    if spec is None:
        memo.pop(key, None)
        show(None, key)
        return
    data = live_plot.payload(spec, config)
    memo[key] = (signature, data)
    live_plot.live_chart_bytes(data, key)


def _budgeted(slot: str, signature: tuple, build: Callable[[], go.Figure | None], *, force: bool,
              every: float = CHART_S) -> dict | None:
    """The figure for ``slot`` (as plain JSON data), rebuilt when its inputs changed, but at most ~10% of the time.

    A rebuild that took ``b`` seconds is not repeated for ``max(every, 10 b)`` seconds (the
    old figure is shown meanwhile) unless ``force`` (the run has ended).
    """
    cache = st.session_state.setdefault("ui_figs", {})
    hit = cache.get(slot)
    now = time.monotonic()
    if hit is not None and hit[0] == signature:
        return hit[1]
    if hit is not None and not force and hit[0][0] == signature[0] and now - hit[2] < max(every, 10 * hit[3]):
        return hit[1]
    fig = build()
    spec = None if fig is None else live_plot.to_spec(fig.update_layout(uirevision=slot))
    cache[slot] = (signature, spec, now, time.monotonic() - now)
    return spec


def _shown(group: str, job: Job, every: float, now: float) -> int:
    """How many of ``job``'s events the live charts of ``group`` are drawn from in this refresh.

    The count moves to the job's newest event at most every ``every`` seconds, less a quarter for the
    refresh timer's jitter (and always for a finished job); in between, the charts get the same data
    again, which the browser does not redraw.  (Without the quarter, a chart refreshed at its own
    interval skipped every refresh that came a few ms early: a watchable run's loss chart took new
    data on only about every other refresh.)  Kept in ``ui_chart_upto`` (a full run of the Train
    page clears it).
    """
    shown = st.session_state.get("ui_chart_upto")
    if not isinstance(shown, dict):
        shown = st.session_state["ui_chart_upto"] = {}
    hit = shown.get(group)  # (job id, events shown, when)
    if hit is None or hit[0] != job.id or not job.active or now - hit[2] >= 0.75 * every:
        hit = shown[group] = (job.id, len(job.events), now)
    return hit[1]


def job_charts(job: Job) -> None:
    """The live charts of a job, drawn from its event history.

    Loss, accuracy, validation and LR charts patch the data into specs built
    before the job started (:func:`live_bases`); the live prediction and any
    chart without a base are rebuilt by ``viz`` within a time budget.  In a
    watchable run the loss chart takes new data on every refresh
    (:data:`WATCH_S`) and the other charts every :data:`SIDE_S`; otherwise all
    of them every :data:`CHART_S` (each stretched by :func:`live_every`).
    """
    cfg, ds = job.config, job.dataset
    now = time.monotonic()
    main_s = live_every(WATCH_S if paced(job) else CHART_S)
    side_s = live_every(SIDE_S if paced(job) else CHART_S)
    force = not job.active
    most = LIVE_POINTS if job.active else None  # live curves are thinned; a finished run shows every epoch
    n, task, members = cfg.optim.epochs, ds.task, cfg.strategy.members
    saved = st.session_state.get("ui_live")
    bases = saved[1] if saved and saved[0] == job.id else {}
    views: dict[str, tuple] = {}

    def view(group: str, every: float) -> tuple:
        """(events, epoch events, the data's signature, the budget's signature, diverged) of ``group``."""
        if group not in views:
            shown = _shown(group, job, every, now)
            events = job.events[:shown]  # between refreshes the charts get the same data again (no redraw)
            epochs = [e for e in events if e.kind == "epoch"]
            diverged = any(e.kind == "diverged" for e in events)
            views[group] = (events, epochs, (job.id, shown, job.active), (job.id, len(epochs), diverged), diverged)
        return views[group]

    def chart(slot: str, group: str, every: float, fast: Callable[[dict, list], dict | None],
              slow: Callable[[list], go.Figure | None]) -> None:
        events, epochs, shown_sig, sig, diverged = view(group, every)

        def build() -> dict | None:
            spec = fast(bases[slot], epochs) if slot in bases and not diverged else None
            return spec if spec is not None else _budgeted(slot, sig, lambda: slow(events), force=force)
        show_live(slot, shown_sig, build)

    side_events, _, side_sig, _, _ = view("side", side_s)
    preview = next((e for e in reversed(side_events) if e.kind == "preview"), None)
    grid = preview_grid(ds)
    top = st.columns([3, 2] if grid is not None else [1])
    with top[0]:
        chart("train_loss_fig", "main", main_s, lambda b, ep: _series_spec(b, ep, lambda e: e.train_loss, most),
              lambda ev: figure("loss_figure", ev, n, metric="loss", n_members=members, height=340, task=task))
    if grid is not None:
        with top[1]:
            if preview is None:
                st.caption("The live prediction appears after the first few epochs.")
            else:
                show_live("train_preview", side_sig, lambda: _live_prediction(job, grid, preview, force, side_s))
                st.caption("Live prediction of the ensemble so far." if job.active
                           else f"The ensemble's prediction after epoch {preview.epoch}.")
    if task == "classification":
        chart("train_acc_fig", "side", side_s, lambda b, ep: _series_spec(b, ep, lambda e: e.train_acc, most),
              lambda ev: figure("loss_figure", ev, n, metric="accuracy", n_members=members, height=300))
    second = "rmse" if task == "regression" else "accuracy"
    chart("train_val_fig", "side", side_s,
          lambda b, ep: _series_spec(b, ep, lambda e: [e.val.get("nll"), e.val.get(second)], most)
          if all(e.val for e in ep) else None, lambda ev: figure("val_figure", ev, n, task, height=280))
    chart("train_lr_live", "side", side_s,
          lambda b, ep: _lr_spec(b, cfg, ds.n_train, _steps(ep)) if _steps(ep) else None,
          lambda ev: lr_figure(cfg, ds.n_train, _steps([e for e in ev if e.kind == "epoch"])))


def _live_prediction(job: Job, grid: Any, preview: Any, force: bool, every: float) -> dict | None:
    """The live prediction's spec for ``preview`` (a preview event of ``job``).

    The first spec built for the job (kept in ``ui_pred_base``) with the preview's arrays patched
    in (:func:`~dashboard.live_specs.bands_spec`, :func:`~dashboard.live_specs.class_map_spec`);
    built by ``viz`` within a time budget (:func:`_budgeted`) when there is no such spec yet or it
    does not fit.
    """
    ds = job.dataset
    regression = ds.task == "regression"
    saved = st.session_state.get("ui_pred_base")
    if saved and saved[0] == job.id:
        spec = (bands_spec(saved[1], ds, grid, preview.prediction) if regression
                else class_map_spec(saved[1], grid, preview.prediction))
        if spec is not None:
            return spec
    builder = "bands_figure" if regression else "class_maps"
    spec = _budgeted("train_preview", (job.id, preview.epoch),
                     lambda: figure(builder, ds, grid, preview.prediction, compact=True), force=force, every=every)
    if spec is not None:
        st.session_state["ui_pred_base"] = (job.id, spec)
    return spec


def _steps(epochs: list) -> int:
    """Optimiser steps taken in ``epochs`` (epoch events)."""
    return sum(len(e.lrs) for e in epochs)


class SessionWaker:
    """A job's ``on_change``: rerun the session that started the job the moment it starts or ends.

    Without it a page learns of its run's start and end on its next poll,
    which on a busy classroom server is seconds away.  At the end the session
    gets a full rerun (the result on the page and in the sidebar); at the
    start, a rerun of the live view only (:attr:`fragment_id`, which the view
    records on each of its runs), which then refreshes at a running run's pace.
    The page's polling stays as the fallback.
    """

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.fragment_id: str | None = None

    def __call__(self, job: Job) -> None:
        if job.status == "running":
            if self.fragment_id:
                push_rerun(self.session_id, self.fragment_id)
        elif not job.active:
            push_rerun(self.session_id)

    @staticmethod
    def attach() -> SessionWaker | None:
        """A waker for this script run's session (``None`` outside one), kept in ``ui_waker``."""
        ctx, _ = script_run()
        if ctx is None:
            return None
        waker = st.session_state.get("ui_waker")
        if not isinstance(waker, SessionWaker) or waker.session_id != ctx.session_id:
            waker = st.session_state["ui_waker"] = SessionWaker(ctx.session_id)
        return waker

    @staticmethod
    def follow() -> None:
        """From the live view's fragment: record its id, so that a run's start reruns just it."""
        waker = st.session_state.get("ui_waker")
        _, fragment_id = script_run()
        if isinstance(waker, SessionWaker) and fragment_id:
            waker.fragment_id = fragment_id
