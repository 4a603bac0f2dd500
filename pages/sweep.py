"""Sweep: train the Train page's setup with 1-3 settings varied, and see which values work best.

The browser's sweep lives in a process-wide registry (``dashboard/sweep_live.py``): a reload, a reopened
tab or a second tab of the same browser shows it live and can stop it.  Its results are saved as a sweep
in the run store ("Your saved sweeps"), and ``?sweep=<token>`` shows a shared one read-only.
"""

from __future__ import annotations

import logging

import streamlit as st

from dashboard import chrome, executors, links, routing, state, sweep_live, sweep_saved, sweep_view
from dashboard.settings import EXECUTORS, SWEEPABLE
from ensemble_core.config import ConfigError
from ensemble_core.jobs import LimitError, Limits
from ensemble_core.sweeps import plan

routing.route_through_app()  # a deep link on a fresh server goes through app.py

log = logging.getLogger(__name__)
ss = st.session_state
KEY = sweep_view.KEY

if ss.pop("ui_sweep_goto_train", False):  # "Open in Train" loaded a trial's settings
    st.switch_page("pages/train.py")

# ------------------------------------------------------------ a shared sweep's link: read-only, nothing else
shared = ss.get(sweep_view.SHARED_KEY)
if shared:
    st.title("Hyperparameter sweep")
    sweep_saved.shared_view(shared)
    links.stop()

st.title("Hyperparameter sweep")
s, ds = state.settings(), ss["dataset"]
st.caption(f"Train the Train page's setup on **{chrome.esc(ds.name)}** many times, with one to three settings "
           "varied, and rank the trials. Each trial is an ordinary run in the class queue; finished trials are "
           "kept on the Runs page, and the sweep itself under **Your saved sweeps** below.")
entry = sweep_live.current()  # this browser's sweep: a reload or another tab re-attaches to it
running = entry is not None and entry.sweep.active

# ------------------------------------------------------------ what to sweep
c1, c2, c3 = st.columns([1.2, 2.6, 1.4])
with c1:
    state.bind(st.segmented_control, "sweep.mode", "Trials", ["grid", "random"], key="sweep_mode",
               format_func={"grid": "Grid", "random": "Random"}.get, convert=lambda v: v or s.sweep.mode,
               disabled=running, help="Grid: every combination of the values. Random: N draws from the ranges "
                                      "(log ranges draw evenly across decades).")
with c2:
    state.bind(st.multiselect, "sweep.params", "Settings to sweep (up to 3)", list(SWEEPABLE), key="sweep_params",
               format_func=sweep_view.label, max_selections=3, convert=tuple, to_widget=list, disabled=running)
with c3:
    metrics = sweep_view.metrics_for(ds.task)
    state.bind(st.selectbox, "sweep.metric", "Rank by", metrics, key="sweep_metric",
               format_func=sweep_view.METRIC_LABELS.get, disabled=running,
               to_widget=lambda v: v if v in metrics else "test_nll")
grid = s.sweep.mode == "grid"
cols = st.columns(len(s.sweep.params) + (0 if grid else 1))
for col, p in zip(cols, s.sweep.params):
    with col:
        kind = "values" if grid else "ranges"
        state.bind(st.text_input, f"sweep.{kind}.{p}", f"{sweep_view.label(p)}: {'values' if grid else 'range'}",
                   key=f"sweep_{kind}_{p}", disabled=running,
                   help="Comma-separated values, e.g. 0.001, 0.01" if grid
                   else "LO:HI, or LO:HI:log to draw evenly across decades, e.g. 1e-4:1e-1:log")
if not grid:
    with cols[-1]:
        state.bind(st.number_input, "sweep.n", "Random trials", key="sweep_n", step=1, disabled=running,
                   rng=state.Range(1, 48, integer=True), help="How many trials to draw (1 to 48).")
executor = executors.executor_control("sweep_executor", disabled=running)

# ------------------------------------------------------------ cost check, Start / Stop
checked, problem = None, None
try:
    checked = plan(sweep_view.build_spec(s, ds.task), ds, Limits())  # the pool's limits, before it exists
except (ConfigError, LimitError) as exc:
    problem = str(exc)
if problem:
    st.error(f"**This sweep cannot start:** {chrome.esc(problem)}", icon=":material/block:")
else:
    st.markdown(f":material/calculate: {sweep_view.programs_line(checked)} · about "
                f"{chrome.duration(checked.total_cpu_seconds)} of computing in all · trained on "
                f"{EXECUTORS[executor]}, a few at a time for you in the class queue")


def start() -> None:
    """Start the sweep the settings describe now (a callback: the page then runs once with it running).

    Planned again here: a value typed and not yet sent (the click's blur sends it in the same rerun, its
    on_change first) must not start the previous run's plan while the box shows the new values.
    """
    s_now, ds_now = state.settings(), ss["dataset"]
    try:
        now = plan(sweep_view.build_spec(s_now, ds_now.task), ds_now, Limits())
    except (ConfigError, LimitError) as exc:
        ss["ui_sweep_refused"] = str(exc)
        return
    try:
        started = sweep_live.start(now, ds_now, ss.get("csv_bytes"), s_now.effective_executor(executors.ray_ok()))
    except Exception as exc:  # noqa: BLE001 - e.g. Ray cannot start: say it, no traceback
        log.exception("starting a sweep failed")
        ss["ui_sweep_refused"] = str(exc) or type(exc).__name__
        return
    ss[KEY] = started.sweep
    ss.pop(sweep_view.OPENED_KEY, None)


def stop() -> None:
    """End this browser's sweep (from any of its tabs); finished trials are kept."""
    current = sweep_live.current()
    if current is not None:
        current.sweep.stop()


b1, b2, b3 = st.columns([1, 1, 3])
b1.button("Start the sweep", type="primary", icon=":material/play_arrow:", key="sweep_start", on_click=start,
          disabled=problem is not None or running)
b2.button("Stop the sweep", icon=":material/stop:", key="sweep_stop", disabled=not running, on_click=stop)
refused = ss.pop("ui_sweep_refused", None)
if refused:
    st.error(f"**The sweep could not start:** {chrome.esc(refused)}", icon=":material/error:")

# ------------------------------------------------------------ results
if entry is None:
    st.info("Choose what to sweep above, then **Start the sweep**. The results table, the charts and every "
            "trial's validation curve fill in as the trials finish.", icon=":material/tune:")
else:
    if not running:
        sweep_live.persist(entry)  # (idempotent) the ended sweep is saved before its Share box asks the store
        record = sweep_saved.record_of(entry.sweep_id)
        if record is not None:
            with b3:  # the ended sweep's own share link
                sweep_saved.share_box(record, "live", width="content")

    @st.fragment(run_every=1.0)
    def live() -> None:
        """The results, redrawn about once a second while the sweep runs; a full rerun when it ends."""
        current = sweep_live.current()
        if current is None:
            return
        if not current.sweep.active:  # ended since the page ran: the whole page shows the final results
            st.rerun()
        with st.container(key="sweep_live"):
            if current.sweep.notice:
                st.caption(f":material/hourglass: {chrome.esc(current.sweep.notice)}")
            sweep_view.results(current.results(), live=True)

    if running:
        live()
    else:
        res = entry.results()
        sweep_view.results(res)
        st.download_button("Download the results (JSON)", sweep_view.sweep_json(res), "sweep.json",
                           "application/json", icon=":material/download:", key="sweep_download")

st.divider()
sweep_saved.saved_list(running_id=entry.sweep_id if running and entry is not None else None)
