"""Uncertainty: what the latest run knows, what it does not, and whether it says so honestly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, chrome, exports, links, ood_view, recalibration_view, replay, routing, saved
from ensemble_core import metrics, viz
from ensemble_core.predict import ensemble_size_curve, member_metrics, predict

routing.route_through_app()  # a deep link on a fresh server goes through app.py

run = st.session_state.get("run")
ds = st.session_state.get("run_dataset")

st.header("Uncertainty", anchor=False)
saved.result_banner()  # a result link: "a shared result, trained on ..." (or why it cannot be opened)
if run is None or ds is None:
    st.info("**No run yet — go to Train.** Train an ensemble first; its uncertainty is explored here.",
            icon=":material/model_training:")
    try:
        st.page_link("pages/train.py", label="Go to Train", icon=":material/arrow_forward:")
    except Exception:  # noqa: BLE001 - the page runs outside the app's router (tests)
        st.markdown("Open **Train** in the sidebar.")
    with st.expander("Or import a run you exported earlier", icon=":material/upload:"):
        exports.run_import()
    links.stop()


def eval_split() -> tuple[np.ndarray, np.ndarray, str]:
    """The held-out split to score on: test, else validation, else training (said on screen)."""
    for name in ("test", "val", "train"):
        x, y = getattr(ds, f"x_{name}"), getattr(ds, f"y_{name}")
        if x is not None and len(x):
            return x, y, {"val": "validation"}.get(name, name)
    raise ValueError("the data set has no rows")


healthy = list(run.healthy)
reg = run.task == "regression"
if not healthy:
    st.error("Every member of this run diverged, so there is nothing to predict with. "
             "Try a smaller learning rate on the Train page.", icon=":material/error:")
    links.stop()

x_eval, y_eval, split_name = eval_split()
status = "stopped early" if run.stopped else "finished"
st.caption(f"{chrome.esc(ds.name)} · {len(healthy)} healthy members of {len(run.members)} · "
           f"{run.epochs_done} epochs ({status}) · scored on the {split_name} split ({len(y_eval)} rows)")
if split_name == "train":
    st.warning("No held-out rows: the scores below are on the training data and look better than they are.")

# ------------------------------------------------------------ ensemble size
n_max = len(healthy)
if n_max > 1:
    if st.session_state.get("unc_m", n_max) > n_max:
        st.session_state["unc_m"] = n_max
    m = st.slider("Ensemble size M (the first M members — no retraining)", 1, n_max, n_max, key="unc_m",
                  help="Every chart on this page uses the ensemble of the first M members.")
else:
    m = 1
members = healthy[:m]
pred_eval = predict(run, x_eval, members=members)

# ------------------------------------------------------------- main views
if reg and ds.n_features == 1:
    st.subheader("Where is the model unsure?", anchor=False)
    c1, c2 = st.columns(2)
    split = c1.toggle("Split into aleatoric and epistemic", value=True, key="unc_split")
    show_members = c2.toggle("Show each member's mean", value=True, key="unc_members")
    grid = viz.input_grid(ds)
    charts.show(viz.bands_figure(ds, grid, predict(run, grid.x, members=members), split=split, members=show_members),
          "unc_bands")
    st.caption("**Orange** (aleatoric) is the noise the members expect in the data; **hatched blue** (epistemic) "
               "is where they disagree. Away from the training data (grey) the members diverge and the "
               "epistemic band must widen.")
elif not reg and ds.n_features == 2:
    st.subheader("Where is the model unsure?", anchor=False)
    grid = viz.input_grid(ds)
    charts.show(viz.class_maps(ds, grid, predict(run, grid.x, members=members)), "unc_maps")
    st.caption("Left: the predicted class, faded where the ensemble is unsure. Middle: total entropy, high on "
               "every class boundary. Right: mutual information — high only where the *members disagree*, "
               "typically away from the data.")
elif reg:
    st.subheader("Predictions and their intervals", anchor=False)
    tabs = st.tabs(["Predicted vs actual", "Intervals by uncertainty", "Error vs uncertainty", "1-D slice"])
    with tabs[0]:
        charts.show(viz.pred_vs_actual(y_eval, pred_eval, target_name=ds.target_name), "unc_pva")
        st.caption("Points near the dashed line are accurate; a good ensemble gives long bars exactly to the "
                   "points that miss (orange crosses are outside their ±2σ interval).")
    with tabs[1]:
        charts.show(viz.intervals_by_uncertainty(y_eval, pred_eval), "unc_intervals")
        st.caption("Test points sorted by predicted σ. If the uncertainty is meaningful, residuals spread out "
                   "as the band widens, and about 95% of points stay inside it.")
    with tabs[2]:
        charts.show(viz.error_vs_uncertainty(y_eval, pred_eval), "unc_err")
        st.caption("Larger predicted σ should come with larger errors: the black bin averages should follow "
                   "the dashed line.")
    with tabs[3]:
        names = list(ds.feature_names)
        feat = st.selectbox("Feature to vary (the others stay at their training median)", range(len(names)),
                            format_func=lambda i: names[i], key="unc_slice_feature")
        sgrid = viz.slice_grid(ds, feat)
        charts.show(viz.bands_figure(ds, sgrid, predict(run, sgrid.x, members=members), feature=feat), "unc_slice")
        st.caption("A cut through input space. The faint points are training rows whose *other* features "
                   "vary, so they need not sit on the curve; watch the bands grow beyond them.")
else:
    st.subheader("Does the uncertainty flag the mistakes?", anchor=False)
    tabs = st.tabs(["Uncertainty of right and wrong", "Keep the most certain", "1-D slice"])
    with tabs[0]:
        charts.show(viz.entropy_by_correctness(y_eval, pred_eval), "unc_entropy")
        st.caption("Wrong predictions should sit to the right: higher predictive entropy.")
    with tabs[1]:
        charts.show(viz.rejection_figure(y_eval, pred_eval), "unc_reject")
        st.caption("Keep only the most certain predictions: accuracy should rise as uncertain ones are set aside.")
    with tabs[2]:
        names = list(ds.feature_names)
        feat = st.selectbox("Feature to vary (the others stay at their training median)", range(len(names)),
                            format_func=lambda i: names[i], key="unc_slice_feature")
        sgrid = viz.slice_grid(ds, feat)
        charts.show(viz.prob_slice_figure(ds, sgrid, predict(run, sgrid.x, members=members), feature=feat), "unc_slice")
        st.caption("Class probabilities along one feature. Where the shaded member ranges are wide the members "
                   "disagree, and the mutual information (dotted) rises.")

# -------------------------------------------------------------- calibration
st.subheader("Is it honest? Calibration", anchor=False)
if reg:
    var = np.maximum(pred_eval.total, 1e-12)
    expected, observed = metrics.calibration_curve(y_eval, pred_eval.mean, var)
    area = metrics.miscalibration_area(y_eval, pred_eval.mean, var)
    levels = (0.5, 0.9, 0.95)
    cover = [metrics.interval_coverage(y_eval, pred_eval.mean, var, lv) for lv in levels]
    c1, c2 = st.columns([3, 2])
    with c1:
        charts.show(viz.calibration_figure(expected, observed, area), "unc_calibration")
        st.caption("For each nominal level, the share of points inside the central interval. On the diagonal "
                   "the intervals mean what they say; below it the ensemble is over-confident.")
    with c2:
        charts.show(viz.coverage_figure(levels, cover), "unc_coverage")
        st.caption("Bars should reach their orange target marks.")
else:
    bins = metrics.reliability_bins(y_eval, pred_eval.probs)
    ece = metrics.ece(y_eval, pred_eval.probs)
    charts.show(viz.reliability_figure(bins.confidence, bins.accuracy, bins.count, ece,
                                 bin_edges=np.append(bins.lower, bins.upper[-1])), "unc_reliability")
    st.caption("When the ensemble says 80% it should be right 80% of the time: bars on the diagonal. "
               "ECE is the count-weighted gap between bars and their red confidence marks.")

recalibration_view.show(run, ds, members)  # fitted on validation, scored on test; kept with the run
ood_view.show(run, ds, members)  # known unknowns: classes held out on the Data page

# ------------------------------------------------------- members vs ensemble
st.subheader("Every member against the ensemble", anchor=False)
COLUMNS = ({"nll": "NLL", "rmse": "RMSE", "mae": "MAE", "crps": "CRPS", "coverage_95": "Coverage 95%",
            "miscalibration_area": "Miscalibration area"} if reg else
           {"nll": "NLL", "accuracy": "Accuracy", "brier": "Brier", "ece": "ECE"})
rows = member_metrics(run, x_eval, y_eval)
table = pd.DataFrame(rows)
table.index = [f"Member {r['index'] + 1}" if r["index"] is not None else "Ensemble" for r in rows]
table = table[list(COLUMNS)].rename(columns=COLUMNS)
st.table(viz.members_vs_ensemble_style(table, lower_is_better=("NLL", "RMSE", "MAE", "CRPS", "Brier", "ECE",
                                                               "Miscalibration")))
better = int((table.loc[table.index != "Ensemble", "NLL"] > table.loc["Ensemble", "NLL"]).sum())
st.caption(f"The ensemble (all {len(healthy)} healthy members, highlighted) has a lower NLL than {better} of "
           f"{len(healthy)} members on their own; the best value of each column is in blue.")

# ----------------------------------------------------------- size curve
st.subheader("How many members do you need?", anchor=False)
curve = ensemble_size_curve(run, x_eval, y_eval, "nll")
charts.show(viz.size_curve_figure([c[0] for c in curve], [c[1] for c in curve], "NLL",
                            member_values=list(table.loc[table.index != "Ensemble", "NLL"]),
                            member_ids=[r["index"] for r in rows if r["index"] is not None], current=m),
      "unc_size_curve")
best = min(curve, key=lambda c: c[1])
st.caption(f"NLL of the ensemble of the first M members (coloured dots: each member alone). Here it goes from "
           f"{curve[0][1]:.3g} with one member to {curve[-1][1]:.3g} with {curve[-1][0]} (best: M = {best[0]}); "
           "typically most of the gain comes from the first few members.")

# ------------------------------------------------------------------ replay
replay.show_replay(run, ds, "unc_replay")  # every epoch again, in the browser, from the recorded previews

# ------------------------------------------------------------- take it away
st.subheader("Export and share", anchor=False)
st.caption("The run as one zip (settings, history, metrics, weights), or a standalone HTML report for people "
           "without the lab. Every chart above also has a camera icon (PNG or SVG, chosen in the Share box).")
exports.run_exports(run, ds)
saved.share_result_box()  # a read-only link to this stored run (and revoke)
with st.expander("Import a run", icon=":material/upload:"):
    st.caption("A run exported from this lab. Its data are remade from its settings (an uploaded CSV must be "
               "loaded on the Data page first); it then replaces the run shown here.")
    exports.run_import()
