"""After a run: did validation NLL rise clearly past its best? (issue 18 part 6)

:func:`show` draws one message (a warning with the numbers and what to do when
the NLL rose, a caption otherwise) and, folded, the validation curve with its
best epoch marked (:func:`ensemble_core.viz.val_figure` with ``mark_best``).
The judgement is :func:`ensemble_core.overfit.overfitting`, a pure function.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from ensemble_core import viz
from ensemble_core.overfit import overfitting


def show(run: Any, key: str = "overfit") -> None:
    """The overfitting note and the marked validation curve of a finished ``run`` (nothing without validation)."""
    keep = bool(run.config.optim.keep_best)
    note = overfitting(run.history, keep_best=keep)
    if note is None:
        return
    if note.rose:
        st.warning(note.message, icon=":material/trending_up:")
    else:
        st.caption(note.message)
    with st.expander("Validation NLL: where it was best", expanded=note.rose and not keep):
        member_best = [m.epoch for m in run.members] if keep else None
        fig = viz.val_figure(list(run.history), run.config.optim.epochs, run.task, height=320, mark_best=True,
                             member_best=member_best, uirevision=key)
        st.plotly_chart(fig, key=f"{key}_val", config={"displayModeBar": False})
        st.caption("Star: the epoch with the lowest validation NLL. "
                   + ("Triangles: the epoch whose weights each member kept." if keep else
                      "Turn on *Keep each member's best-validation weights* (Training tab) to end each member "
                      "at its own best epoch."))
