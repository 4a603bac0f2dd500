"""Runs: every run this browser trained, kept on the server — find, open, rename, star, delete, compare."""

from __future__ import annotations

import logging

import streamlit as st

from dashboard import charts, chrome, identity, links, routing, runs_view, saved
from dashboard.runs_view import COMPARE_MAX, PAGE_ROWS, SORTS, control

routing.route_through_app()  # a deep link on a fresh server goes through app.py

log = logging.getLogger(__name__)
ss = st.session_state

st.title("Runs")
st.caption("Every run you finish, stop or see fail on Train, Lessons and Compare is kept here. They belong to this "
           "browser (a cookie): another browser or a private window does not see them.")
store, owner = saved.store(), identity.browser_id()
why = saved.why_not_kept()
if why:
    st.warning(f"**Runs are not being kept:** {chrome.esc(why)}. Training still works; export a run from the "
               "Uncertainty page to keep it.", icon=":material/cloud_off:")
if store is None:
    links.stop()
for line in store.pruned_notice(owner):
    st.info(chrome.esc(line), icon=":material/auto_delete:")
keep = getattr(store, "max_runs_per_owner", None)
st.caption(f":material/info: Retention: the newest {keep or 'few hundred'} runs of each browser are kept; beyond "
           "that, or when the server's disk space for runs is used up, the oldest unstarred runs are removed first. "
           "Star a run to keep it.")

every = store.list(owner)
if not every:
    chrome.empty_state("**No runs yet.** Train an ensemble and it appears here when it ends.", "pages/train.py",
                       "Go to Train")
    links.stop()

# ------------------------------------------------------------ find
v = runs_view.view()
c1, c2, c3, c4, c5 = st.columns([2.2, 1.6, 1.2, 1.1, 0.9])
with c1:
    control(st.text_input, "search", "Search", key="runs_search", placeholder="label, data, strategy")
with c2:
    datasets = sorted({r.dataset for r in every})
    control(st.selectbox, "dataset", "Data set", ["", *datasets], key="runs_dataset",
            format_func=lambda d: d or "All data sets")
with c3:
    strategies = sorted({r.strategy for r in every})
    control(st.selectbox, "strategy", "Strategy", ["", *strategies], key="runs_strategy",
            format_func=lambda s: s or "All strategies")
with c4:
    control(st.selectbox, "sort", "Sort by", list(SORTS), key="runs_sort")
with c5:
    control(st.toggle, "descending", "Descending", key="runs_desc")
found = runs_view.sort_records(store.list(owner, search=v.search.strip(), dataset=v.dataset or None, strategy=v.strategy or None),
                               v.sort, v.descending)
pages = max(1, -(-len(found) // PAGE_ROWS))
v.page = min(max(1, v.page), pages)
shown = found[(v.page - 1) * PAGE_ROWS: v.page * PAGE_ROWS]
st.markdown(f"**{len(found)}** of {len(every)} runs" + (f" · page {v.page} of {pages}" if pages > 1 else ""))
st.dataframe(runs_view.shown_table(shown), hide_index=True, width="stretch", key="runs_table", placeholder=chrome.MISSING,
             column_config={"test NLL": st.column_config.NumberColumn(format="%.4g"),
                            "RMSE": st.column_config.NumberColumn(format="%.4g"),
                            "accuracy": st.column_config.NumberColumn(format="%.3f"),
                            "seconds": st.column_config.NumberColumn(format="%.1f"),
                            "★": st.column_config.TextColumn(width="small")})
if pages > 1:
    control(st.number_input, "page", "Table page", 1, pages, step=1, key="runs_page")

# ------------------------------------------------------------ one run
st.subheader("One run", anchor=False)
if not shown:
    st.info("No run matches. Clear the search or the filters.", icon=":material/search_off:")
    links.stop()
by_id = {r.run_id: r for r in found}
pick = st.selectbox("Run", [r.run_id for r in shown], format_func=lambda i: runs_view.name(by_id[i]),
                    key="runs_pick")
rec = by_id[pick]
if rec.damaged:
    st.error(f"**This run is damaged** and cannot be opened: {chrome.esc(rec.damaged)}. You can delete it.",
             icon=":material/broken_image:")
elif rec.status == "failed":
    st.warning(f"**This run failed:** {chrome.esc(rec.error or 'no reason was recorded')}", icon=":material/error:")
b1, b2, b3, b4 = st.columns(4)
if b1.button("Open", type="primary", icon=":material/open_in_new:", key="runs_open", width="stretch",
             disabled=bool(rec.damaged) or rec.status == "failed",
             help="Make it the current run: the Uncertainty page, the exports and the report show it."):
    try:
        run, dataset = store.load(pick, owner)
    except Exception as exc:  # noqa: BLE001 - StoreError (damaged, gone): a message, no traceback
        st.error(f"This run cannot be opened: {chrome.esc(exc)}", icon=":material/error:")
    else:
        if dataset is None:
            st.error("This run's data could not be rebuilt, so it cannot be explored.", icon=":material/error:")
        else:
            ss["run"], ss["run_dataset"] = run, dataset
            saved.note_saved(pick, run)
            ss["runs_opened"] = pick
if ss.get("runs_opened") == pick and saved.current_run_id() == pick:
    st.success(f"**{chrome.esc(runs_view.name(rec))}** is the current run.", icon=":material/check_circle:")
    chrome.link("pages/uncertainty.py", "Explore it on the Uncertainty page", ":material/ssid_chart:")
if b2.button("Unstar" if rec.starred else "Star", icon=":material/star:", key="runs_star", width="stretch",
             help="Starred runs are removed last when space runs out."):
    store.star(pick, owner, not rec.starred)
    st.rerun()
with b3.popover("Rename", icon=":material/edit:", width="stretch"):
    label = st.text_input("Label", value=rec.label, max_chars=120, key=f"runs_label_{pick}")
    if st.button("Save the label", key="runs_rename"):
        store.rename(pick, owner, label.strip())
        st.rerun()
if b4.button("Delete", icon=":material/delete:", key="runs_delete", width="stretch"):
    ss["runs_confirm"] = pick
if ss.get("runs_confirm") == pick:
    with st.container(border=True):
        st.markdown(f"**Delete {chrome.esc(runs_view.name(rec))}?** Its files and any result link to it go too. "
                    "This cannot be undone.")
        d1, d2, _ = st.columns([1, 1, 3])
        if d1.button("Delete it", type="primary", key="runs_delete_yes"):
            store.delete(pick, owner)
            ss.pop("runs_confirm", None)
            st.rerun()
        if d2.button("Cancel", key="runs_delete_no"):
            ss.pop("runs_confirm", None)
            st.rerun()

# ------------------------------------------------------------ compare
st.subheader("Compare runs side by side", anchor=False)
usable = [r.run_id for r in found if not r.damaged and r.status != "failed"]
picked = st.multiselect(f"Pick 2 to {COMPARE_MAX} runs", usable, format_func=lambda i: runs_view.name(by_id[i]),
                        max_selections=COMPARE_MAX, key="runs_compare")
if len(picked) < 2:
    st.caption("The comparison shows their test metrics (best marked), validation curves and predictions.")
    links.stop()
records, loaded = [by_id[i] for i in picked], []
for r in records:
    try:
        loaded.append(store.load(r.run_id, owner))
    except Exception as exc:  # noqa: BLE001 - a run damaged since it was listed
        st.error(f"**{chrome.esc(runs_view.name(r))}** cannot be opened: {chrome.esc(exc)}", icon=":material/error:")
        links.stop()
labels = [runs_view.short_name(r, i) for i, r in enumerate(records)]
rows, best = runs_view.compare_table(records, labels)
st.dataframe(runs_view.style_best(rows), hide_index=True, width="stretch", key="runs_compare_table",
             placeholder=chrome.MISSING)
st.markdown(" · ".join(f"Best {col}: **{chrome.esc(lab)}**" for col, lab in best.items()))
tasks = {r.task for r in records}
if len(tasks) > 1:
    st.info("These runs mix regression and classification, so only their table is compared.", icon=":material/info:")
    links.stop()
runs = [run for run, _ in loaded]
st.markdown("**Validation curves** (one colour per run)")
charts.show(runs_view.overlaid_validation(runs, labels, tasks.pop()), "runs_compare_val")
first = loaded[0][0].config.data
same = [i for i, (run, ds) in enumerate(loaded) if ds is not None and run.config.data == first]
if len(same) < len(loaded):
    st.caption("Only the runs trained on the same data as the first are drawn below (predictions need shared axes).")
if len(same) >= 2 or (len(same) == 1 and len(loaded) == 1):
    try:
        figures = runs_view.prediction_figures([runs[i] for i in same], loaded[same[0]][1], [labels[i] for i in same])
    except Exception:  # noqa: BLE001 - never a traceback on screen
        log.exception("comparing runs' predictions failed")
        figures = []
        st.error("Their predictions could not be drawn.", icon=":material/error:")
    for key, caption, fig in figures:
        st.markdown(f"**{caption.replace('strategy', 'run')}**")
        charts.show(fig, f"runs_{key}")
