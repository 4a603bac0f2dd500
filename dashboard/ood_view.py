"""Known unknowns: the Data page's "hold classes out" control and the Uncertainty page's view of a run trained so."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from dashboard import charts
from ensemble_core import ood, viz_posthoc
from ensemble_core.predict import predict


def held_out_control(bind: Callable[..., Any], ds: Any) -> None:
    """A multiselect of the classes to leave out of training (a view of ``data.held_out``), classification only.

    Args:
        bind: the Data page's binder (``state.bind`` that reloads the data after a change).
        ds: the data on screen (its class names label the options).
    """
    if ds.task != "classification" or not ds.class_names:
        return
    names = list(ds.class_names)
    with st.expander("Known unknowns: hold classes out of training", icon=":material/visibility_off:",
                     expanded=bool(ds.held_out)):
        bind(st.multiselect, "data.held_out", "Classes the ensemble never sees in training", list(range(len(names))),
             key="data_held_out", format_func=lambda c: names[c] if 0 <= c < len(names) else str(c),
             convert=lambda v: tuple(sorted(int(c) for c in v)), to_widget=list,
             help="Their rows leave the training and validation splits and stay in the test split. The Uncertainty "
                  "page then shows whether the uncertainty flags them (the paper's Section 3.5).")


def show(run: Any, ds: Any, members: list[int]) -> None:
    """The known-unknowns view of a classification run; a hint when no class was held out."""
    if run.task != "classification":
        return
    held = tuple(getattr(run.config.data, "held_out", ()) or ())
    st.subheader("Does it know what it has never seen? Known unknowns", anchor=False)
    if not held:
        st.caption(":material/visibility_off: Hold some classes out of training on the **Data** page (*Known "
                   "unknowns*), train again, and this section shows whether the uncertainty flags inputs of the "
                   "unseen classes.")
        return
    try:
        ens = predict(run, ds.x_test, members=members)
        one = predict(run, ds.x_test, members=members[:1])
        ku = ood.known_unknowns(one, ens, ds.y_test, held)
    except ValueError as exc:
        st.info(f"This view needs test rows of both seen and held-out classes: {exc}", icon=":material/info:")
        return
    names = list(ds.class_names or [])
    shown = ", ".join(names[c] if c < len(names) else str(c) for c in held)
    st.caption(f"Trained without class{'es' if len(held) > 1 else ''} **{shown}**; the test split has "
               f"{int(ku.seen.sum())} inputs of seen and {int((~ku.seen).sum())} of unseen classes.")
    m = st.columns(4)
    m[0].metric("AUROC, entropy — one network", f"{ku.auroc_entropy_single:.3f}")
    m[1].metric(f"AUROC, entropy — ensemble of {ku.n_members}", f"{ku.auroc_entropy_ensemble:.3f}",
                delta=f"{ku.auroc_entropy_ensemble - ku.auroc_entropy_single:+.3f} vs one network")
    m[2].metric("AUROC, mutual information", f"{ku.auroc_mi_ensemble:.3f}")
    m[3].metric("Accuracy on seen classes", f"{ku.accuracy_seen_ensemble:.1%}")
    charts.show(viz_posthoc.entropy_histograms(ku, n_classes=len(names) or 2), "unc_ood_hist")
    st.caption("Blue: test inputs of classes seen in training; orange: of held-out classes. The more the orange "
               "sits to the right of the blue, the better the score flags the unseen. AUROC is the chance that a "
               "random unseen input scores higher than a random seen one (0.5 = chance, 1 = perfect).")
    charts.show(viz_posthoc.abstain_figure(ku), "unc_ood_abstain")
    st.caption("Abstain when unsure: answer only if the top probability reaches the threshold. Solid: accuracy on "
               "the answered inputs (an unseen input answered is always wrong); dashed: the share of unseen inputs "
               "still answered — lower is better.")
