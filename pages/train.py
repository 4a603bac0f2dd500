"""Train: configure the ensemble, see the learning-rate schedule, train in the background, watch it live."""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import charts, chrome, links, live, pool, routing
from dashboard.st_compat import push
from ensemble_core.config import ConfigError, LossSpec, ModelSpec, OptimSpec, RunConfig, StrategySpec
from ensemble_core.jobs import LimitError, check_limits

routing.route_through_app()  # a deep link on a fresh server goes through app.py

KINDS = {"independent": "Independent seeds", "bootstrap": "Bootstrap resamples", "snapshot": "Snapshot ensemble"}
LOSSES = {"nll": "Gaussian NLL (mean + variance)", "beta_nll": "β-NLL (Seitzer et al. 2022)",
          "mse": "MSE baseline (mean only)"}
LRS = [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
KEYS = {  # widget key -> config field
    "train_kind": "strategy.kind", "train_members": "strategy.members", "train_snapshots": "strategy.snapshots",
    "train_adv": "strategy.adversarial", "train_layers": "model.hidden_layers", "train_width": "model.width",
    "train_act": "model.activation", "train_loss": "loss.kind", "train_beta": "loss.beta",
    "train_var": "loss.variance", "train_opt": "optim.optimizer", "train_lr": "optim.lr",
    "train_lr_min": "optim.lr_min", "train_wd": "optim.weight_decay", "train_momentum": "optim.momentum",
    "train_batch": "optim.batch_size", "train_epochs": "optim.epochs", "train_schedule": "optim.schedule",
    "train_gran": "optim.granularity", "train_seed": "seed",
}
PER_STRATEGY = {  # sensible defaults applied when the strategy changes
    # Adam, not Huang et al.'s SGD at lr 0.1 (CIFAR ResNets): on these small problems SGD+momentum at 0.1
    # overshoots at every restart (cubic toy: 2 of 5 snapshots ran away, test RMSE 10.5 with the rest), while
    # Adam + cyclic cosine from 0.01 gives snapshots as good as independent members (RMSE 3.5 vs 4.3).
    "snapshot": {"train_opt": "adam", "train_schedule": "cyclic", "train_lr": 0.01, "train_lr_min": 0.0,
                 "train_members": 1, "train_snapshots": 5, "train_gran": "iteration"},
    "independent": {"train_opt": "adam", "train_schedule": "constant", "train_lr": 0.01, "train_members": 5},
}
PER_STRATEGY["bootstrap"] = PER_STRATEGY["independent"]


def _get(cfg: RunConfig, dotted: str):
    obj = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _on_kind() -> None:
    """A new strategy brings its defaults, except to controls a classroom link hid (they keep the link's value)."""
    defaults = PER_STRATEGY[st.session_state["train_kind"]]
    st.session_state.update({k: v for k, v in defaults.items() if links.visible(KEYS[k]) or k == "train_schedule"})


TABS = {"Ensemble": ("strategy", "seed"), "Network": ("model",), "Loss": ("loss",), "Optimiser": ("optim",)}


def _tabs() -> dict:
    """The settings tabs that have a visible control (a classroom link may hide whole sections)."""
    shown = [t for t, prefixes in TABS.items()
             if any(links.visible(d) for d in KEYS.values() if d.split(".")[0] in prefixes)]
    return dict(zip(shown, st.tabs(shown))) if shown else {}


def _w(control: str, widget, *args, **kwargs) -> None:
    """Draw a widget unless a classroom link hid its control (it then keeps the link's value)."""
    if links.visible(control):
        widget(*args, **kwargs)


def controls(task: str) -> None:
    ss = st.session_state
    for key, dotted in KEYS.items():
        ss.setdefault(key, _get(ss["config"], dotted))
    snap = ss["train_kind"] == "snapshot"
    tabs = _tabs()
    if not tabs:
        st.caption(":material/lock: The training settings are fixed by this link.")
    with tabs.get("Ensemble", st.empty()):
        _w("strategy.kind", st.selectbox, "Strategy", list(KINDS), format_func=KINDS.get, key="train_kind",
           on_change=_on_kind, help="Independent: different seeds. Bootstrap: each member also gets its own "
           "resample of the data. Snapshot: one cyclic-LR run, a snapshot per cycle (switches to the cyclic schedule, Adam from lr 0.01).")
        _w("strategy.members", st.slider, "Trajectories K" if snap else "Members M", 1, 20, key="train_members",
           help="Independently seeded networks. For snapshots, each trajectory gives S snapshots (K × S members).")
        if snap:
            _w("strategy.snapshots", st.slider, "Snapshots per trajectory S", 1, 20, key="train_snapshots",
               help="Cycles of the cyclic schedule; a snapshot of the weights is kept at the end of each.")
        _w("strategy.adversarial", st.toggle, "Adversarial training", key="train_adv",
           help="Also train on x' = x + ε·sign(∇ₓloss), ε = 1% of each input's range (the paper's option).")
        _w("seed", st.number_input, "Seed", 0, 2**31 - 1, key="train_seed", help="Same seed and settings, same result.")
    with tabs.get("Network", st.empty()):
        _w("model.hidden_layers", st.slider, "Hidden layers", 0, 8, key="train_layers", help="0 gives a linear model.")
        _w("model.width", st.select_slider, "Width (units per layer)", [8, 16, 32, 50, 64, 100, 128, 256, 512],
           key="train_width", help="Wider networks fit more complex functions but train more slowly.")
        _w("model.activation", st.selectbox, "Activation", ["relu", "tanh", "gelu", "silu"], key="train_act",
           help="The hidden non-linearity. ReLU extrapolates linearly, tanh flattens out.")
    with tabs.get("Loss", st.empty()):
        if task != "regression":
            if "Loss" in tabs:
                st.info("Classification members are trained with cross-entropy.", icon=":material/info:")
        else:
            _w("loss.kind", st.selectbox, "Regression loss", list(LOSSES), format_func=LOSSES.get, key="train_loss",
               help="NLL members predict a variance too (aleatoric uncertainty). The MSE baseline predicts "
                    "only a mean; its uncertainty is the members' disagreement alone.")
            if ss["train_loss"] == "beta_nll":
                _w("loss.beta", st.slider, "β", 0.0, 1.0, step=0.05, key="train_beta",
                   help="Weights each point's NLL by σ²ᵝ; β = 0 is plain NLL, β = 1 behaves like MSE for the mean.")
            if ss["train_loss"] != "mse":
                _w("loss.variance", st.radio, "Variance head", ["softplus", "logvar"], key="train_var",
                   horizontal=True, help="softplus(raw) + 1e-6 (the paper; gradients stay tame) or "
                   "exp(log-variance) (the seed code; can explode for large raw outputs).")
    with tabs.get("Optimiser", st.empty()):
        _w("optim.optimizer", st.selectbox, "Optimiser", ["adam", "sgd"], key="train_opt", format_func=str.upper,
           help="Adam adapts each step; SGD with momentum is what snapshot ensembles use.")
        _w("optim.lr", st.select_slider, "Learning rate", sorted(set(LRS) | {ss["train_lr"]}), key="train_lr",
           help="Initial (maximum) learning rate.")
        _w("optim.schedule", st.selectbox, "Schedule", ["constant", "cosine", "cyclic"], key="train_schedule",
           help="Cosine anneals once over the run; cyclic restarts once per snapshot (required for snapshots).")
        if ss["train_schedule"] != "constant":
            _w("optim.lr_min", st.number_input, "Minimum learning rate", 0.0, 100.0, format="%g", key="train_lr_min",
               help="Where the cosine ends (Huang et al. use 0; the seed code 1e-4).")
            _w("optim.granularity", st.radio, "Step the schedule per", ["iteration", "epoch"], key="train_gran",
               horizontal=True, help="Per mini-batch (Huang et al.) or once per epoch (the seed code).")
        c1, c2 = st.columns(2)
        _w("optim.epochs", c1.number_input, "Epochs", 1, 5000, key="train_epochs",
           help="Passes over the training data (all cycles).")
        _w("optim.batch_size", c2.select_slider, "Batch size", [8, 16, 32, 64, 128, 256, 512, 1024],
           key="train_batch", help="Rows per step; capped at the number of training rows.")
        _w("optim.weight_decay", st.select_slider, "Weight decay", [0.0, 1e-5, 1e-4, 1e-3, 1e-2], key="train_wd",
           help="L2 penalty on the weights.")
        if ss["train_opt"] == "sgd":
            _w("optim.momentum", st.slider, "Momentum", 0.0, 0.99, step=0.01, key="train_momentum",
               help="SGD momentum (0.9 is standard).")


def build_config() -> RunConfig:
    """The RunConfig the widgets describe (raises ConfigError naming the field)."""
    v = {dotted: st.session_state[key] for key, dotted in KEYS.items()}
    return RunConfig(
        data=st.session_state["data_spec"],
        model=ModelSpec(v["model.hidden_layers"], int(v["model.width"]), v["model.activation"]),
        loss=LossSpec(v["loss.kind"], float(v["loss.beta"]), v["loss.variance"]),
        strategy=StrategySpec(v["strategy.kind"], v["strategy.members"], v["strategy.snapshots"],
                              v["strategy.adversarial"]),
        optim=OptimSpec(v["optim.optimizer"], float(v["optim.lr"]), float(v["optim.lr_min"]),
                        float(v["optim.weight_decay"]), float(v["optim.momentum"]), int(v["optim.batch_size"]),
                        int(v["optim.epochs"]), v["optim.schedule"], v["optim.granularity"]),
        seed=int(v["seed"]))


def start() -> None:
    """The Train button's callback: submit the run before the script runs.

    Streamlit runs a callback before the rerun that the click causes, so that one
    full run already draws the run everywhere (the sidebar, Stop, the live view).
    """
    ss = st.session_state
    try:
        cfg = build_config()
    except ConfigError:  # the button is disabled then; the page shows the error
        return
    ds = ss["dataset"]
    grid = charts.preview_grid(ds)
    preview_x = None if grid is None else np.asarray(grid)
    bases = live.live_bases(cfg, ds)  # built before training starts, so the live charts stay cheap
    try:
        job = pool.pool().submit(cfg, ds, pool.owner(), preview_x=preview_x,
                               preview_every=max(1, cfg.optim.epochs // 25) if preview_x is not None else 0,
                               preview_min_s=live.CHART_S / 2,  # the chart shows at most one a second
                               on_change=live.SessionWaker.attach())  # its start and end reach the page at once
    except LimitError as exc:
        ss["train_refused"] = str(exc)
        return
    ss["config"], ss["job_id"], ss["ui_live"] = cfg, job.id, (job.id, bases)


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
    try:
        cfg = build_config()
    except ConfigError as exc:
        field, _, why = str(exc).partition(": ")
        label = next((k for k, d in KEYS.items() if d == field), field)
        st.error(f"**{chrome.esc(label.removeprefix('train_').replace('_', ' ').title())}** ({field}): {chrome.esc(why)}",
                 icon=":material/error:")
        cfg = None
    else:
        st.session_state["config"] = cfg

job = pool.current_job()
# The page follows the sidebar's view of the run (drawn first in this script run).  A run that ended
# since is then caught by the live view's own end-of-run rerun below, so the sidebar updates too.
polling = job is not None and st.session_state.get("ui_sidebar_active", job.active)
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
    seconds; between refreshes they are sent unchanged.
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
        return
    st.markdown("#### Learning-rate schedule")
    st.caption("Every optimiser step's learning rate for these settings (stars: snapshots).")
    if cfg is not None:
        charts.show(charts.lr_plan(cfg, ds.n_train), key="train_lr_plan", live=True)
    st.info("Press **Train** to start. Every member's loss will appear here as it learns.", icon=":material/info:")


with right, st.container(key=live.LIVE_KEY):
    limit = None
    if cfg is not None:
        try:
            check_limits(cfg, ds, pool.pool().limits)
        except LimitError as exc:
            limit = str(exc)
    b1, b2, _ = st.columns([1, 1, 2])
    b1.button("Train", type="primary", icon=":material/play_arrow:", disabled=polling or cfg is None or bool(limit),
              width="stretch", on_click=start, help="Start training in the background; the page stays usable.")
    b2.button("Stop", icon=":material/stop:", disabled=not polling, width="stretch", on_click=stop,
              help="End the run now and keep every member trained so far.")
    refused = st.session_state.pop("train_refused", None)
    if limit or refused:
        st.warning(limit or refused, icon=":material/block:")
    live_view()
