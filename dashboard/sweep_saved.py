"""The Sweep page's saved and shared sweeps: the owner's list, the share box, the read-only shared view.

* **Saved.**  As each trial ends and when the sweep ends, its results go to the
  run store as a sweep (:func:`dashboard.sweep_live.persist`,
  ``RunStore.save_sweep``); :func:`saved_list` lists this browser's, newest
  first, and opens one read-only, shares it or deletes it (with confirmation).
* **Shared.**  ``?sweep=<token>`` opens a shared sweep read-only
  (:func:`shared_view`); the owner makes and revokes the link (:func:`share_box`).

A store problem, a damaged record or a revoked link gives a message, never a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import chrome, identity, saved
from dashboard.sweep_figures import METRIC_LABELS
from dashboard.sweep_view import OPENED_KEY, SHARED_KEY, SHARED_MSG_KEY, SWEEP_PARAM, SweepResults, results

log = logging.getLogger(__name__)


def _summary(rec: Any) -> str:
    return f"{saved.when(rec.created)} · {rec.label or 'sweep'} · {rec.n_done} of {rec.n_trials} done"


def saved_list(*, running_id: str | None = None) -> None:
    """"Your saved sweeps": newest first; open one read-only, share it, delete it (with confirmation)."""
    s = saved.store()
    if s is None or not hasattr(s, "list_sweeps"):
        return
    owner = identity.browser_id()
    try:
        records = s.list_sweeps(owner, limit=100)
    except Exception:  # noqa: BLE001 - a store problem: say it, no traceback
        log.exception("listing sweeps failed")
        records = []
    st.subheader("Your saved sweeps", anchor=False)
    if not getattr(s, "available", True):
        st.caption(f":material/warning: Sweeps are not being kept: {chrome.esc(s.why or 'the store cannot be written')}.")
    if not records:
        st.caption("Every sweep you run is kept here, newest first, as its trials finish.")
        return
    rows = [{"when": saved.when(r.created), "swept": r.label or "—", "ranked by": METRIC_LABELS.get(r.metric, r.metric),
             "trials": f"{r.n_done} of {r.n_trials} done", "status": r.status,
             "link": "shared" if r.shared else ""} for r in records]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="sweep_saved_list",
                 placeholder=chrome.MISSING)
    ids = [r.sweep_id for r in records]
    by_id = {r.sweep_id: r for r in records}
    opened = st.session_state.get(OPENED_KEY)
    c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
    pick = c1.selectbox("Saved sweep", ids, key="sweep_list_pick", format_func=lambda i: _summary(by_id[i]),
                        index=ids.index(opened) if opened in ids else 0)
    if c2.button("Open", icon=":material/folder_open:", key="sweep_list_open", width="stretch"):
        st.session_state[OPENED_KEY] = pick
        st.rerun()
    confirm = st.session_state.get("ui_sweep_confirm_delete") == pick
    if c3.button("Really delete?" if confirm else "Delete", icon=":material/delete:", key="sweep_list_delete",
                 width="stretch", type="primary" if confirm else "secondary", disabled=pick == running_id,
                 help="The trials' runs stay on the Runs page." if pick != running_id
                 else "A running sweep is deleted once it has ended."):
        if confirm:
            try:
                s.delete_sweep(pick, owner)
            except Exception as exc:  # noqa: BLE001
                st.error(f"The sweep could not be deleted: {chrome.esc(exc)}", icon=":material/error:")
            st.session_state.pop("ui_sweep_confirm_delete", None)
            if st.session_state.get(OPENED_KEY) == pick:
                st.session_state.pop(OPENED_KEY, None)
            st.rerun()
        st.session_state["ui_sweep_confirm_delete"] = pick
        st.rerun()
    if confirm:
        st.caption(":material/warning: Click **Really delete?** to delete this sweep (its share link stops working).")
    if opened in by_id:
        try:
            rec, summary, _ = s.load_sweep(opened, owner)
            res = SweepResults.from_dict(summary)
        except Exception as exc:  # noqa: BLE001 - StoreError (damaged, gone) or a summary we cannot read
            st.warning(f"This saved sweep cannot be opened: {chrome.esc(exc)}", icon=":material/link_off:")
            return
        with st.container(border=True, key="sweep_saved_view"):
            h1, h2, h3 = st.columns([4, 1.3, 0.8], vertical_alignment="center")
            h1.markdown(f"#### Saved sweep of {saved.when(rec.created)}")
            with h2:
                share_box(rec)
            h3.button("Close", icon=":material/close:", key="sweep_saved_close", width="stretch",
                      on_click=lambda: st.session_state.pop(OPENED_KEY, None))
            st.caption(f"On {chrome.esc(res.dataset)} · {len(res.trials)} trials · read-only.")
            results(res, key="sweep_saved", live_open=False)


def sweep_url(token: str) -> str:
    """The read-only link of a shared sweep: the app's address with ``/sweep?sweep=<token>``."""
    base = (st.context.url or "").split("?", 1)[0].split("#", 1)[0]
    for page in ("uncertainty", "runs", "train", "data", "lessons", "compare", "home", "sweep"):
        if base.endswith("/" + page):
            base = base[: -len(page)]
    return f"{base.rstrip('/')}/sweep?{SWEEP_PARAM}={token}"


def share_box(rec: Any, where: str = "saved", width: str = "stretch") -> None:
    """"Share this sweep": a read-only link to the owner's saved sweep ``rec``; revoke it.

    ``where`` tells the page's copies of the box apart (widget keys): the ended sweep's and the opened saved one's.
    """
    s = saved.store()
    if s is None:
        return
    owner = identity.browser_id()
    with st.popover("Share this sweep", icon=":material/share:", width=width):
        st.markdown("**A read-only link to this sweep.** Whoever has it sees its results table, the charts and "
                    "each trial's curve, and can open a trial in their own Train page. Nothing is retrained.")
        try:
            if rec.shared:  # the store gives the link's token again while it is not revoked
                st.code(sweep_url(s.share_sweep(rec.sweep_id, owner)), language=None, wrap_lines=True)
                st.caption("Anyone with the link can open it. Revoke it to close it for everyone.")
                if st.button("Revoke the link", icon=":material/link_off:", key=f"sweep_revoke_{where}"):
                    s.revoke_sweep(rec.sweep_id, owner)
                    st.rerun()
            elif st.button("Make a link", icon=":material/link:", key=f"sweep_share_{where}", type="primary"):
                s.share_sweep(rec.sweep_id, owner)
                st.rerun()
        except Exception as exc:  # noqa: BLE001 - StoreError / StoreUnavailable: say it, no traceback
            st.error(f"The link could not be changed: {chrome.esc(exc)}", icon=":material/error:")


def record_of(sweep_id: str | None) -> Any | None:
    """This browser's saved-sweep record ``sweep_id`` (``None``: not saved, or the store cannot say)."""
    s = saved.store()
    if sweep_id is None or s is None or not hasattr(s, "list_sweeps"):
        return None
    try:
        return next((r for r in s.list_sweeps(identity.browser_id()) if r.sweep_id == sweep_id), None)
    except Exception:  # noqa: BLE001
        return None


# ------------------------------------------------------------------ shared sweeps (?sweep=<token>)
def shared_view(token: str) -> None:
    """The read-only view of a shared sweep: a banner, the results best first, the charts; no Start/Stop.

    A revoked, unknown or malformed token gets a clear message (never a traceback).
    """
    s = saved.store()
    res = None
    problem = None
    if s is None or not hasattr(s, "open_shared_sweep"):
        problem = "shared sweeps cannot be opened on this server"
    elif not identity.valid_token(token):
        problem = "the link is not complete (check that it was copied whole)"
    else:
        try:
            rec, summary = s.open_shared_sweep(token)
            res = SweepResults.from_dict(summary)
        except Exception as exc:  # noqa: BLE001 - StoreError (revoked, unknown, damaged), a bad summary
            problem = str(exc) or "it was revoked or never existed"
    c1, c2 = st.columns([5, 1], vertical_alignment="center")
    if res is None:
        c1.warning(f"**This sweep link cannot be opened:** {chrome.esc(problem)}.", icon=":material/link_off:")
    else:
        c1.info(f"**A shared sweep, run {saved.when(rec.created)}** (read-only) · on {chrome.esc(res.dataset)} · "
                f"{len(res.trials)} trials, ranked by {METRIC_LABELS[res.metric]}. Nothing is retrained to show it; "
                "**Open in Train** loads a trial's settings into your own Train page.", icon=":material/share:")
    c2.button("Your own sweeps", icon=":material/arrow_back:", key="sweep_shared_close", width="stretch",
              on_click=close_shared)
    if res is not None:
        results(res, key="sweep_shared", live_open=False)


def close_shared() -> None:
    """Leave the shared view (the session's own Sweep page again)."""
    st.session_state.pop(SHARED_KEY, None)
    st.session_state.pop(SHARED_MSG_KEY, None)
    try:
        del st.query_params[SWEEP_PARAM]
    except KeyError:
        pass
