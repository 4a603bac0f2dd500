"""Sweep: train the Train page's setup with 1-3 settings varied, and see which values work best."""

from __future__ import annotations

import logging
import os

import streamlit as st

from dashboard import chrome, links, pool, routing, state, sweep_view
from dashboard.settings import SWEEPABLE
from ensemble_core.config import ConfigError
from ensemble_core.jobs import EXECUTOR_ENV, LimitError, Limits
from ensemble_core.sweeps import SweepRun, plan

routing.route_through_app()  # a deep link on a fresh server goes through app.py

log = logging.getLogger(__name__)
ss = st.session_state
KEY = sweep_view.KEY

if ss.pop("ui_sweep_goto_train", False):  # "Open in Train" loaded a trial's settings
    st.switch_page("pages/train.py")

st.title("Hyperparameter sweep")
s, ds = state.settings(), ss["dataset"]
st.caption(f"Train the Train page's setup on **{chrome.esc(ds.name)}** many times, with one to three settings "
           "varied, and rank the trials. Each trial is an ordinary run in the class queue, one at a time per "
           "person; finished trials are kept on the Runs page.")
sweep: SweepRun | None = ss.get(KEY)
running = sweep is not None and sweep.active

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

# ------------------------------------------------------------ cost check, Start / Stop
checked, problem = None, None
try:
    checked = plan(sweep_view.build_spec(s, ds.task), ds, Limits())  # the pool's limits, before it exists
except (ConfigError, LimitError) as exc:
    problem = str(exc)
if problem:
    st.error(f"**This sweep cannot start:** {chrome.esc(problem)}", icon=":material/block:")
else:
    n = len(checked.configs)
    where = "on the Ray cluster" if os.environ.get(EXECUTOR_ENV) == "ray" else "on the server's worker processes"
    st.markdown(f":material/calculate: **{n} trial{'s' if n != 1 else ''}** · about "
                f"{chrome.duration(checked.total_cpu_seconds)} of computing in all · trained {where}, "
                "one at a time for you in the class queue")


def start() -> None:
    """Start the checked sweep (a callback: the page then runs once with it running)."""
    csv_bytes, p = ss.get("csv_bytes"), pool.pool()
    ss[KEY] = SweepRun(checked, ds, p, sweep_view.owner_user(), parallel=max(1, p.max_active_per_user - 1),
                       on_change=lambda sw: sweep_view.save_trials(sw, csv_bytes))


b1, b2, _ = st.columns([1, 1, 3])
b1.button("Start the sweep", type="primary", icon=":material/play_arrow:", key="sweep_start", on_click=start,
          disabled=problem is not None or running)
b2.button("Stop the sweep", icon=":material/stop:", key="sweep_stop", disabled=not running,
          on_click=lambda: ss[KEY].stop())

# ------------------------------------------------------------ results
if sweep is None:
    st.info("Choose what to sweep above, then **Start the sweep**. The results table, the charts and every "
            "trial's validation curve fill in as the trials finish.", icon=":material/tune:")
    links.stop()


@st.fragment(run_every=1.0)
def live() -> None:
    """The results, redrawn about once a second while the sweep runs; a full rerun when it ends."""
    current = ss.get(KEY)
    if current is None:
        return
    if not current.active:  # ended since the page ran: the whole page shows the final results
        st.rerun()
    with st.container(key="sweep_live"):
        sweep_view.results(current, ds, live=True)


if running:
    live()
else:
    sweep_view.results(sweep, ds)
    st.download_button("Download the results (JSON)", sweep_view.sweep_json(sweep, ds.task), "sweep.json",
                       "application/json", icon=":material/download:", key="sweep_download")
