"""A bare Streamlit page with the Train page's journey and none of its content: the browsers' floor.

The classroom benchmark (``benchmarks/load_classroom.py``) runs the same class against this page
to measure what Streamlit's frontend alone costs each student's browser: the click's full rerun,
one refresh of a live fragment while the "run" is going, the full rerun at its end, and a result
of a line and two metrics.  No charts, no settings, no training: a run "ends" 1.5 s after the
click.  Whatever the dashboard's browsers spend beyond this is the cost of its content.
"""

from __future__ import annotations

import time

import streamlit as st

RUN_S = 1.5  # seconds a "run" takes
POLL_S = 2.0  # the live fragment's refresh while it runs (the Train page's, with others queued)

ss = st.session_state


def _start() -> None:
    ss["started"] = time.monotonic()
    ss["shown"] = False


st.title("Train")
st.button("Train", type="primary", on_click=_start)
started = ss.get("started")
if started is not None:
    running = time.monotonic() - started < RUN_S

    @st.fragment(run_every=POLL_S if running else None)
    def live() -> None:
        if not ss["shown"] and time.monotonic() - started >= RUN_S:
            ss["shown"] = True
            st.rerun()  # as the Train page: one full rerun shows the result
        if ss["shown"]:
            st.success(f"**Done:** 5 member(s) after 300 of 300 epochs in {RUN_S:.2f} s.")
            cols = st.columns(3)
            cols[0].metric("Test NLL", "1.234")
            cols[1].metric("Test RMSE", "3.45")
        else:
            st.info("Training…")

    live()
