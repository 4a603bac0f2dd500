"""Train: configure the ensemble, see the learning-rate schedule, train in the background, watch it live."""

from __future__ import annotations

import streamlit as st

from dashboard import (
    charts,
    chrome,
    executors,
    links,
    live,
    overfit_view,
    pool,
    replay,
    routing,
    saved,
    state,
)
from dashboard.settings import CONTROL_RANGES, SNAPSHOT_RECIPE, Range, SettingError
from dashboard.st_compat import push
from ensemble_core import share
from ensemble_core.jobs import LimitError, check_limits

routing.route_through_app()  # a deep link on a fresh server goes through app.py

KINDS = {"independent": "Independent seeds", "bootstrap": "Bootstrap resamples", "snapshot": "Snapshot ensemble",
         "mc_dropout": "MC dropout"}
LOSSES = {"nll": "Gaussian NLL (mean + variance)", "beta_nll": "β-NLL (Seitzer et al. 2022)",
          "mse": "MSE baseline (mean only)"}
LRS = [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
WIDTHS = [8, 16, 32, 50, 64, 100, 128, 256, 512]
BATCHES = [8, 16, 32, 64, 128, 256, 512, 1024]
DECAYS = [0.0, 1e-5, 1e-4, 1e-3, 1e-2]
TABS = {"Ensemble": ("strategy", "seed"), "Network": ("model",), "Loss": ("loss",), "Optimiser": ("optim",)}
bind = state.bind


def _with(options: list, value) -> list:
    """``options`` plus ``value`` (a link may carry a value between the slider's stops), sorted."""
    return sorted(set(options) | {value})


def _tabs(s) -> dict:
    """The settings tabs that have a visible control (a classroom link may hide whole sections)."""
    shown = [t for t, prefixes in TABS.items()
             if any(s.visible(c) for c in share.CONTROLS if c.split(".")[0] in prefixes and c != "device")]
    return dict(zip(shown, st.tabs(shown))) if shown else {}


def _snapshot_recipe(s) -> None:
    """The one-click snapshot recipe, offered while a snapshot run differs from it (an explicit choice)."""
    if s.config.strategy.kind != "snapshot" or all(s.get(p) == v for p, v in SNAPSHOT_RECIPE.items()):
        return
    if st.button("Use the snapshot recipe", icon=":material/auto_fix_high:", key="train_recipe", type="tertiary",
                 help="Adam with a cyclic cosine from lr 0.01 to 0, stepped per iteration, 1 trajectory × 5 "
                      "snapshots: what works on these small problems (Huang et al.'s SGD at 0.1 overshoots here)."):
        try:
            s.apply({p: v for p, v in SNAPSHOT_RECIPE.items() if s.visible(p)})
        except SettingError as exc:
            state.note("train_recipe", str(exc))
        st.rerun()
    state.show_notes("train_recipe")


def controls(task: str) -> None:
    """Every training setting, each a view of the session's settings model."""
    s = state.settings()
    cfg = s.config
    snap = cfg.strategy.kind == "snapshot"
    tabs = _tabs(s)
    if not tabs:
        st.caption(":material/lock: The training settings are fixed by this link.")
    with tabs.get("Ensemble", st.empty()):
        bind(st.selectbox, "strategy.kind", "Strategy", list(KINDS), format_func=KINDS.get, key="train_kind",
             help="Independent: different seeds. Bootstrap: each member also gets its own resample of the data. "
                  "Snapshot: one cyclic-LR run, a snapshot per cycle (it needs the cyclic schedule). "
                  "MC dropout: networks trained with dropout; T random dropout masks at prediction act as members.")
        _snapshot_recipe(s)
        bind(st.slider, "strategy.members", "Trajectories K" if snap else "Members M", 1, 20, key="train_members",
             help="Independently seeded networks. For snapshots, each trajectory gives S snapshots (K × S members).")
        if snap:
            bind(st.slider, "strategy.snapshots", "Snapshots per trajectory S", 1, 20, key="train_snapshots",
                 help="Cycles of the cyclic schedule; a snapshot of the weights is kept at the end of each.")
        if cfg.strategy.kind == "mc_dropout":  # MC dropout's rate and stochastic passes (issue 18)
            bind(st.select_slider, "strategy.dropout", "Dropout rate p", _with((0.01, 0.05, 0.1, 0.2, 0.3, 0.5),
                 cfg.strategy.dropout), key="train_dropout",
                 help="Chance that a hidden unit is switched off, in training and in each pass at prediction.")
            bind(st.select_slider, "strategy.passes", "Stochastic passes T", _with((10, 20, 50, 100, 200, 500),
                 cfg.strategy.passes), key="train_passes",
                 help="Forward passes with fresh dropout masks at prediction; each is one member of the mixture.")
        bind(st.toggle, "strategy.adversarial", "Adversarial training", key="train_adv",
             help="Also train on x' = x + ε·sign(∇ₓloss), ε = 1% of each input's range (the paper's option).")
        bind(st.number_input, "seed", "Seed", key="train_seed", step=1, rng=Range(0, 2**31 - 1, integer=True),
             help="Same seed and settings, same result.")
    with tabs.get("Network", st.empty()):
        bind(st.slider, "model.hidden_layers", "Hidden layers", 0, 8, key="train_layers", help="0 gives a linear model.")
        bind(st.select_slider, "model.width", "Width (units per layer)", _with(WIDTHS, cfg.model.width),
             key="train_width", help="Wider networks fit more complex functions but train more slowly.")
        bind(st.selectbox, "model.activation", "Activation", ["relu", "tanh", "gelu", "silu"], key="train_act",
             help="The hidden non-linearity. ReLU extrapolates linearly, tanh flattens out.")
    with tabs.get("Loss", st.empty()):
        if task != "regression":
            if "Loss" in tabs:
                st.info("Classification members are trained with cross-entropy.", icon=":material/info:")
        else:
            bind(st.selectbox, "loss.kind", "Regression loss", list(LOSSES), format_func=LOSSES.get, key="train_loss",
                 help="NLL members predict a variance too (aleatoric uncertainty). The MSE baseline predicts "
                      "only a mean; its uncertainty is the members' disagreement alone.")
            if cfg.loss.kind == "beta_nll":
                bind(st.slider, "loss.beta", "β", 0.0, 1.0, step=0.05, key="train_beta",
                     help="Weights each point's NLL by σ²ᵝ; β = 0 is plain NLL, β = 1 behaves like MSE for the mean.")
            if cfg.loss.kind != "mse":
                bind(st.radio, "loss.variance", "Variance head", ["softplus", "logvar"], key="train_var",
                     horizontal=True, help="softplus(raw) + 1e-6 (the paper; gradients stay tame) or "
                     "exp(log-variance) (the seed code; can explode for large raw outputs).")
    with tabs.get("Optimiser", st.empty()):
        bind(st.selectbox, "optim.optimizer", "Optimiser", ["adam", "sgd"], key="train_opt", format_func=str.upper,
             help="Adam adapts each step; SGD with momentum is what snapshot ensembles use.")
        bind(st.select_slider, "optim.lr", "Learning rate", _with(LRS, cfg.optim.lr), key="train_lr",
             help="Initial (maximum) learning rate.")
        bind(st.selectbox, "optim.schedule", "Schedule", ["constant", "cosine", "cyclic"], key="train_schedule",
             help="Cosine anneals once over the run; cyclic restarts once per snapshot (required for snapshots).")
        if cfg.optim.schedule != "constant":
            bind(st.number_input, "optim.lr_min", "Minimum learning rate", format="%g", key="train_lr_min",
                 rng=Range(0.0, 100.0), help="Where the cosine ends (Huang et al. use 0; the seed code 1e-4).")
            bind(st.radio, "optim.granularity", "Step the schedule per", ["iteration", "epoch"], key="train_gran",
                 horizontal=True, help="Per mini-batch (Huang et al.) or once per epoch (the seed code).")
        c1, c2 = st.columns(2)
        with c1:
            bind(st.number_input, "optim.epochs", "Epochs", key="train_epochs", step=1, note_here=False,
                 rng=Range(1, 5000, integer=True), help="Passes over the training data (all cycles); 1 to 5000.")
        with c2:
            bind(st.select_slider, "optim.batch_size", "Batch size", _with(BATCHES, cfg.optim.batch_size),
                 key="train_batch", note_here=False, help="Rows per step; capped at the number of training rows.")
        state.show_notes("train_epochs")  # below the row: a narrow column would wrap it word by word
        state.show_notes("train_batch")
        bind(st.select_slider, "optim.weight_decay", "Weight decay", _with(DECAYS, cfg.optim.weight_decay),
             key="train_wd", help="L2 penalty on the weights.")
        bind(st.toggle, "optim.keep_best", "Keep each member's best-validation weights", key="train_keep_best",
             help="After every epoch, each member keeps its weights if its own validation NLL is its best so far "
                  "(early stopping per member). Off in the paper; needs a validation split.")
        if cfg.optim.optimizer == "sgd":
            momentum = CONTROL_RANGES["optim.momentum"][0]
            bind(st.slider, "optim.momentum", "Momentum", momentum.lo, momentum.hi, step=0.01, key="train_momentum",
                 help="SGD momentum (0.9 is standard).")


def start() -> None:
    """The Train button's callback: submit the run before the script runs.

    Streamlit runs a callback before the rerun that the click causes, so that one
    full run already draws the run everywhere (the sidebar, Stop, the live view).
    """
    ss = st.session_state
    cfg, ds = state.config(), ss["dataset"]
    bases = live.live_bases(cfg, ds)  # built before training starts, so the live charts stay cheap
    p = pool.pool()
    where = state.settings().effective_executor(executors.ray_ok())  # "Train on" (Settings.executor)
    try:  # ~50 previews (the live preview and the replay's frames), at the chosen pace
        job = p.submit(cfg, ds, pool.owner(), **live.submit_options(ds, cfg.optim.epochs,
                                                                    state.settings().effective_pace),
                       on_change=saved.on_end(live.SessionWaker.attach()), executor=where)  # start/end reach the page; saved at its end
    except LimitError as exc:
        ss["train_refused"] = str(exc)
        return
    ss["job_id"], ss["ui_live"] = job.id, (job.id, bases)


def stop() -> None:
    """The Stop button's callback: end the run; the members trained so far are kept."""
    job = pool.current_job()
    if job is not None:
        job.stop()


st.title("Train")
ds = st.session_state["dataset"]
st.caption(f"On **{chrome.esc(ds.name)}** ({ds.task}, {ds.n_train} training rows) — change it on the Data page.")
if links.presenting():  # the settings tucked away, the charts full width
    left, right = st.expander("Settings", icon=":material/tune:"), st.container()
else:
    left, right = st.columns([1, 2.2], gap="large")
with left:
    controls(ds.task)
    if not state.settings().hidden:  # a classroom link (hidden controls): the server's choice, not the students'
        executors.executor_control("train_executor")  # "Train on", drawn only where Ray is available
    cfg = state.config()

job = pool.current_job()
# The page follows the sidebar's view of the run (drawn first in this script run).  A run that ended
# since is then caught by the live view's own end-of-run rerun below, so the sidebar updates too.
# (the sidebar's view only when it saw this job: a page that re-attached after it follows the job itself)
polling = job is not None and (st.session_state.get("ui_sidebar_active", job.active)
                               if st.session_state.get("ui_sidebar_job", job.id) == job.id else job.active)
st.session_state.pop("ui_chart_upto", None)  # a full run draws the charts' newest data; polls are throttled


@st.fragment(run_every=live.poll_every(job) if polling else None)
def live_view() -> None:
    """Run status and charts in one fragment: one poller per page.

    Each refresh sets when the next one comes (``live.poll_every``): rarely far
    back in a queue; the run's start and end are pushed (``live.SessionWaker``).
    (Two fragments refreshing on their own timers raced with the full reruns in
    Streamlit's frontend under a classroom's load and could blank the page; so
    there is one timer, and one full rerun per run, when it ends.  Train and
    Stop live outside it and act in callbacks: a click is one full run, never a
    fragment run that restarts as a full one, which also blanked pages.)
    The charts' data refresh at most every ``live.live_every(live.CHART_S)``
    seconds (a watchable run's: see ``live.job_charts``); between refreshes they
    are sent unchanged.
    """
    job = pool.sync_job()
    if polling and (job is None or not job.active):
        st.rerun()  # finished: one full rerun shows the results everywhere and ends the polling
    if polling:
        push.retime_fragment(live.poll_every(job))  # the next refresh: the job's state sets the pace
        live.SessionWaker.follow()
    if job is not None:
        with st.container():  # one element whatever the status shows: the charts below keep their place
            chrome.job_status(job)
        if job.status == "queued":  # nothing to chart yet; a queued page's polls stay cheap
            st.caption("The live charts appear here as soon as your run starts.")
        else:
            live.job_charts(job)
            if not job.active and job.result is not None:  # validation NLL past its best? (issue 18)
                overfit_view.show(job.result, "train_overfit")
            if not job.active and job.result is not None:  # a finished run replays in the browser
                replay.show_replay(job.result, job.dataset, "train_replay")
        return
    st.markdown("#### Learning-rate schedule")
    st.caption("Every optimiser step's learning rate for these settings (stars: snapshots).")
    charts.show(charts.lr_plan(cfg, ds.n_train), key="train_lr_plan", live=True)
    st.info("Press **Train** to start. Every member's loss will appear here as it learns.", icon=":material/info:")


with right, st.container(key=live.LIVE_KEY):
    limit = None
    try:
        check_limits(cfg, ds, pool.pool().limits)
    except LimitError as exc:
        limit = str(exc)
    b1, b2, b3 = st.columns([1, 1, 2])
    b1.button("Train", type="primary", icon=":material/play_arrow:", disabled=polling or bool(limit),
              width="stretch", on_click=start, help="Start training in the background; the page stays usable.")
    b2.button("Stop", icon=":material/stop:", disabled=not polling, width="stretch", on_click=stop,
              help="End the run now and keep every member trained so far.")
    with b3:
        live.pace_control("train_pace", label_visibility="collapsed")
    refused = st.session_state.pop("train_refused", None)
    if limit or refused:
        st.warning(limit or refused, icon=":material/block:")
    live_view()
