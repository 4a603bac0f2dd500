"""The Uncertainty page's recalibration section: fitted on the validation split, scored on the test split.

The fitted recalibration is kept in the session next to the run (``run_recalibration``: the run's
``id`` and the :class:`~ensemble_core.recalibration.Recalibration`), so the run's exports carry it
(``recalibration.json``, see :mod:`dashboard.exports`) and an imported run brings its own back.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts
from ensemble_core import recalibration as recal_core
from ensemble_core import viz_posthoc
from ensemble_core.predict import VAR_FLOOR, predict

KEY = "run_recalibration"


def current(run: Any) -> recal_core.Recalibration | None:
    """The recalibration kept with ``run`` in this session, if any."""
    kept = st.session_state.get(KEY)
    return kept[1] if kept is not None and kept[0] == id(run) else None


def keep(run: Any, recal: recal_core.Recalibration | None) -> None:
    """Keep ``recal`` with ``run`` (it replaces the one kept for an earlier run)."""
    st.session_state[KEY] = None if recal is None else (id(run), recal)


def _floored(pred: Any, run: Any) -> Any:
    if hasattr(pred, "probs"):
        return pred
    return dataclasses.replace(pred, total=np.maximum(pred.total, VAR_FLOOR * float(run.y_std) ** 2))


def _fitted(run: Any, ds: Any, members: list[int]) -> recal_core.Recalibration:
    kept = current(run)
    if kept is not None and list(kept.members) == list(members):
        return kept  # the run's own (also one imported with it)
    recal = recal_core.fit(_floored(predict(run, ds.x_val, members=members), run), ds.y_val)
    keep(run, recal)
    return recal


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "—"
    if math.isinf(v):
        return "∞"
    return f"{v:.1%}" if pct else f"{v:.3g}"


def show(run: Any, ds: Any, members: list[int]) -> None:
    """Draw the section for ``run``'s ensemble of ``members`` (needs validation and test rows)."""
    st.subheader("Can it be made honest? Recalibration", anchor=False)
    if len(ds.y_val) < 2 or len(ds.y_test) < 1:
        st.info("Recalibration is fitted on the validation split and scored on the test split: give both a "
                "share on the Data page (at least 2 validation rows).", icon=":material/tune:")
        return
    try:
        recal = _fitted(run, ds, members)
        scores = recal_core.score(recal, _floored(predict(run, ds.x_test, members=members), run), ds.y_test)
    except ValueError as exc:
        st.info(f"Recalibration cannot be fitted on these data: {exc}", icon=":material/info:")
        return
    st.caption(f"Fitted on the {recal.n_val} validation rows, scored on the {len(ds.y_test)} test rows; kept with "
               "the run and included in its zip (`recalibration.json`).")
    if run.task == "regression":
        _regression(recal, scores)
    else:
        _classification(recal, scores, ds.y_test, bool(getattr(ds, "held_out", ())))


def _regression(recal: recal_core.Recalibration, scores: dict[str, dict[str, Any]]) -> None:
    c1, c2 = st.columns([3, 2], gap="medium")
    with c1:
        charts.show(viz_posthoc.recal_curves_figure(recal_core.LEVELS, scores), "unc_recal_curves")
    names = {"before": "Before", "variance": f"Variance × {recal.std_ratio ** 2:.3g}", "isotonic": "Isotonic",
             "conformal": "Split-conformal"}
    table = pd.DataFrame({
        "NLL": [_fmt(s["nll"]) for s in scores.values()],
        "Miscal. area": [_fmt(s["miscalibration_area"]) for s in scores.values()],
        "Sharpness": [_fmt(s["sharpness"]) for s in scores.values()],
        "Cover 90%": [_fmt(s["coverage_90"], True) for s in scores.values()],
        "Cover 95%": [_fmt(s["coverage_95"], True) for s in scores.values()],
    }, index=[names[k] for k in scores])
    with c2:
        st.caption("**Variance scaling** multiplies every variance by one factor (the closed form that maximises "
                   "the validation likelihood). **Isotonic** bends the nominal levels (uncertainty-toolbox's "
                   "recalibration). **Split-conformal** takes the validation rows' normalised errors |y − μ|/σ and "
                   "guarantees at least the nominal coverage on new rows like them. Sharpness: the RMS half-width "
                   "of the 68 % interval (σ for a Gaussian); smaller is sharper. Isotonic and conformal intervals "
                   "are not Gaussian, so they have no NLL.")
    st.table(table)


def _classification(recal: recal_core.Recalibration, scores: dict[str, dict[str, Any]], y: Any,
                    held_out: bool = False) -> None:
    c1, c2 = st.columns([3, 2], gap="medium")
    with c1:
        charts.show(viz_posthoc.reliability_before_after(y, {k: s["probs"] for k, s in scores.items()},
                                                         {k: s["ece"] for k, s in scores.items()}),
                    "unc_recal_reliability")
    t = float(recal.temperature or 1.0)
    table = pd.DataFrame({
        "NLL": [_fmt(s["nll"]) for s in scores.values()],
        "ECE": [_fmt(s["ece"]) for s in scores.values()],
        "Accuracy": [_fmt(s["accuracy"], True) for s in scores.values()],
        "Mean confidence": [_fmt(s["confidence"], True) for s in scores.values()],
    }, index=["Before", f"Temperature T = {t:.3g}"])
    with c2:
        st.table(table)
        if held_out:
            st.warning("Classes were held out of training, so the validation split has only seen classes: the "
                       "temperature fitted there cannot fix the test split's unseen ones. Recalibration assumes "
                       "new data like the validation data.", icon=":material/warning:")
        verdict = ("softens over-confident probabilities" if t > 1.05 else
                   "sharpens under-confident probabilities" if t < 0.95 else "barely changes the probabilities")
        st.caption(f"**Temperature scaling** divides the log of the ensemble's probabilities by T (fitted to the "
                   f"validation NLL); here T = {t:.3g} {verdict}. The predicted class, and so the accuracy, never "
                   "changes. Points on the diagonal: confidence means what it says.")
