"""Compare: the strategy race. Same data, same seeds, same compute budget; who gives the best uncertainty?"""

from __future__ import annotations

import logging

import streamlit as st

from dashboard import charts, chrome, live, pool, routing, saved, sequences, state
from ensemble_core.race import (
    STRATEGIES,
    STRATEGY_LABELS,
    BudgetError,
    RunSequence,
    describe_budget,
    losses_figure,
    race_base,
    race_configs,
    race_figures,
    race_table,
)

routing.route_through_app()  # a deep link on a fresh server goes through app.py

log = logging.getLogger(__name__)
ss = st.session_state
SEQ = "compare_seq"
KIND = "compare"  # its kind in the browser's registry of live sequences (dashboard/sequences.py)
HELP = {
    "independent": "M networks from different random seeds (the deep-ensembles recipe).",
    "bootstrap": "M networks, each on its own bootstrap resample of the training data (bagging).",
    "snapshot": "One network, M cosine learning-rate cycles, a snapshot at the end of each (Huang et al.).",
    "single": "One network trained for the whole budget: what you get without an ensemble.",
    "mc_dropout": "One network with dropout trained for the whole budget; T random dropout masks at prediction "
                  "act as members (Gal & Ghahramani).",
}


def owner() -> str:
    """Race runs use their own pool owner, so they do not take the Train page's slot."""
    return pool.owner("compare")


def reattach() -> None:
    """Take this browser's registered race (a reload, another tab, a newer one started elsewhere).

    A running race's choices (strategies, members, budget) also become this tab's, so the controls
    above its live view describe it.
    """
    entry = sequences.adopt(KIND)
    if entry is None:
        return
    ss[SEQ] = entry.seq
    if not entry.seq.done:
        c = state.settings().compare
        c.strategies, c.members, c.budget = entry.meta["strategies"], entry.meta["members"], entry.meta["budget"]


def plan() -> tuple[list, list[str]] | None:
    """The race controls; returns ``(configs, strategies)`` at equal budget, or ``None`` after showing why not.

    A classroom link's hidden controls apply: ``strategy.kind`` hides the strategy picker,
    ``strategy.members`` the ensemble size and ``optim.epochs`` the budget (their values are kept).
    """
    s = state.settings()
    base = s.config
    m_default = min(max(base.strategy.ensemble_size, 2), 10)
    c1, c2, c3 = st.columns([3, 1, 1.3])
    picked = list(s.compare.strategies)
    if s.visible("strategy.kind"):
        with c1:
            picked = list(state.bind(st.multiselect, "compare.strategies", "Strategies", list(STRATEGIES),
                                     format_func=STRATEGY_LABELS.get, key="compare_strategies", convert=tuple,
                                     to_widget=list, help=" ".join(f"**{STRATEGY_LABELS[k]}**: {h}"
                                                                   for k, h in HELP.items())))
    m = s.compare.members or m_default
    if s.visible("strategy.members"):
        with c2:
            state.bind(st.number_input, "compare.members", "Members M", key="compare_members", step=1,
                       rng=state.Range(2, 10, integer=True), to_widget=lambda v: v or m_default,
                       help="Ensemble size of every strategy (members, or snapshots); 2 to 10.")
        m = s.compare.members or m_default
    budget = s.compare.budget or m * race_base(base, m).optim.epochs
    if s.visible("optim.epochs"):
        with c3:
            state.bind(st.number_input, "compare.budget", "Budget (member-epochs)", key="compare_budget", step=m,
                       rng=state.Range(1, 20_000, integer=True), to_widget=lambda v: v or budget,
                       help="Compute per strategy: members × epochs (1 to 20,000). Every strategy gets exactly "
                            "this much.")
        budget = s.compare.budget or budget
    try:
        configs = race_configs(race_base(base, m), picked, int(budget))
    except BudgetError as exc:
        st.error(f"**Not a fair race:** {chrome.esc(exc)}", icon=":material/balance:")
        return None
    st.markdown("  \n".join(f":material/balance: **{STRATEGY_LABELS[k]}** · {describe_budget(c)}"
                            for k, c in zip(picked, configs)))
    return configs, picked


def progress(seq: RunSequence) -> None:
    sequences.current(KIND)  # seen: a race some tab still watches is kept re-attachable
    job = seq.job(pool.pool(), owner())
    p = job.progress() if job is not None else None
    where = f" · {chrome.epoch_text(job)}" if job is not None else ""
    st.progress(min(1.0, (seq.index + (p.fraction if p else 0)) / len(seq.configs)),
                text=f"Racing {seq.index + 1} of {len(seq.configs)}: **{seq.labels[seq.index]}**{where} "
                     "(one at a time, so every strategy gets the same machine)")
    charts.show_in_place(losses_figure(seq.events(pool.pool(), owner()), seq.configs, seq.labels), "compare_live")


def results(seq: RunSequence) -> None:
    saved.save_sequence(seq, "compare")  # once per entry: every raced run goes to the Runs page
    for label, run, err in zip(seq.labels, seq.runs, seq.errors):
        if run is None and err:
            st.warning(f"**{label}:** {chrome.esc(err)}", icon=":material/warning:")
    done = [i for i, r in enumerate(seq.runs) if r is not None and r.healthy]
    if not done:
        return
    runs, labels = [seq.runs[i] for i in done], [seq.labels[i] for i in done]
    try:
        table = race_table(runs, seq.dataset, labels)
        figures = race_figures(runs, seq.dataset, labels)
    except Exception:  # noqa: BLE001 - never a traceback on screen
        log.exception("race results failed")
        st.error("The race's results could not be computed. Start it again.", icon=":material/error:")
        return
    st.subheader("Results on the test set")
    best = table.loc[table["test NLL"].idxmin(), "strategy"]
    st.markdown(f":material/trophy: Best test NLL: **{best}** (lower is better; equal budget for all).")
    chrome.results_table(table)
    st.caption("Time is wall-clock on a shared server. The engine trains all members of an ensemble in one batched "
               "program, so M members × E epochs take about as long as E epochs of one network, while a snapshot "
               "ensemble's epochs run one after another: equal compute budget, not equal waiting time.")
    charts.show(losses_figure([r.history for r in runs], [r.config for r in runs], labels), "compare_losses")
    for key, caption, fig in figures:
        st.markdown(f"**{caption}**")
        charts.show(fig, f"compare_{key}")


state.init_state()  # idempotent; covers a first visit that lands here before the router has run
st.title("Strategy race")
ds = ss["dataset"]
st.caption(f"Several ways to build an ensemble, on **{chrome.esc(ds.name)}** with the Train page's network and optimiser, "
           "the same seeds and the same compute budget. Change the data on the Data page.")
reattach()
planned = plan()
seq = ss.get(SEQ)
running = seq is not None and not seq.done
c1, c2 = st.columns([1, 4])
started = c1.button("Start the race", type="primary", icon=":material/flag:", key="compare_start",
                    disabled=planned is None or running)
with c2:
    live.pace_control("compare_pace", label_visibility="collapsed")
if started:
    configs, picked = planned
    seq = RunSequence(configs, ds, [STRATEGY_LABELS[k] for k in picked])
    seq.submit_options = {"pace": state.settings().effective_pace}
    ss[SEQ] = seq
    # every tab and reload of this browser follows it (a race running in another tab is stopped)
    c = state.settings().compare
    sequences.start(KIND, seq, lambda other: other.stop(pool.pool(), owner()), strategies=tuple(picked),
                    members=c.members, budget=c.budget, data=ds.name)
    seq.step(pool.pool(), owner())
    st.rerun()  # the page again, as it is while the race runs: Start disabled, the live view below
if seq is None:
    st.info("Set the race up above, then **Start the race**. The strategies train one after another on the "
            "server; the table and the predictions appear when all are done.", icon=":material/flag:")
elif running:
    sequences.reattached_caption(KIND, "race")
    live.live_sequence(SEQ, owner(), progress, "Stop the race", "compare_stop")
else:
    sequences.reattached_caption(KIND, "race")
    results(seq)
