"""The process-wide training pool and who owns its jobs: session identity, prewarm, this session's job."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

import streamlit as st

from dashboard import live_plot
from dashboard.st_compat import session
from ensemble_core.jobs import Job, JobPool

log = logging.getLogger(__name__)


#: owner -> Streamlit session id, so the pool can ask whether a user's browser is still connected.
_SESSIONS: dict[str, str] = {}


#: Past this many entries, a new session first drops the entries of sessions that are gone.
SESSIONS_PRUNE_AT = 256


def prune_sessions(is_active: Callable[[str], bool], table: dict[str, str] | None = None) -> int:
    """Drop the owners whose Streamlit session ``is_active`` no longer reports; returns how many.

    A session that reconnects registers again on its next script run (:func:`owner`), and the
    pool falls back to its heartbeat for an owner it cannot look up, so dropping is always safe.
    """
    table = _SESSIONS if table is None else table
    gone = [key for key, sid in list(table.items()) if not is_active(sid)]
    for key in gone:
        table.pop(key, None)
    return len(gone)


def _connected(owner_key: str) -> bool | None:
    """Whether the browser session of ``owner_key`` is connected (``None``: unknown, use the heartbeat)."""
    session_id = _SESSIONS.get(owner_key.split(":", 1)[0])
    return None if session_id is None else session.is_connected(session_id)


@st.cache_resource(show_spinner=False)
def pool() -> JobPool:
    """The process-wide training pool, shared by every browser session.

    Its reaper frees the jobs of sessions that disconnected (a closed tab) a
    minute ago; a connected session keeps its jobs even when its polling is
    starved by a busy server.
    """
    return JobPool(alive=_connected)


_PREWARM = threading.Event()


def prewarm() -> None:
    """Create the job pool (and so start its worker processes) in the background, once per server.

    Called after the first page has been sent, so a server's first visitor does
    not wait for it, and the first **Train** click finds warm workers instead of
    paying for their start (a few seconds of importing torch).  The live
    charts' gzipped Plotly library is prepared then too.
    """
    if _PREWARM.is_set():
        return
    _PREWARM.set()

    def work() -> None:
        time.sleep(1.0)  # let the first page reach the browser first
        try:
            pool()
            from ensemble_core import metrics, predict, viz  # noqa: F401 - the first run's charts and scores
            live_plot.ensure_assets()
        except Exception:  # noqa: BLE001 - only an optimisation: the first run creates it otherwise
            log.exception("pre-warming the job pool failed")

    threading.Thread(target=work, name="jobpool-prewarm", daemon=True).start()


def owner() -> str:
    """A random id for this browser session (the pool's owner key)."""
    if "ui_owner" not in st.session_state:
        st.session_state["ui_owner"] = uuid.uuid4().hex
    key = st.session_state["ui_owner"]
    sid = session.session_id()
    if sid is not None and _SESSIONS.get(key) != sid:
        checker = session.connected_checker() if len(_SESSIONS) >= SESSIONS_PRUNE_AT else None
        if checker is not None:  # a long-lived server: forget the tabs closed long ago
            prune_sessions(checker)
        _SESSIONS[key] = sid
    return key


def current_job() -> Job | None:
    """This session's latest job (``None`` if none, or forgotten by the pool)."""
    job_id = st.session_state.get("job_id")
    return pool().get(job_id, owner()) if job_id else None  # no pool (nor torch) before the first run


def sync_job() -> Job | None:
    """Heartbeat the pool and, once this session's job has ended, publish its run.

    Sets ``run`` and ``run_dataset`` exactly once per finished or stopped job.
    """
    job = current_job()
    if job is not None:
        pool().touch(owner())
    if job is not None and not job.active and job.result is not None \
            and st.session_state.get("ui_collected") != job.id:
        st.session_state["run"], st.session_state["run_dataset"] = job.result, job.dataset
        st.session_state["ui_collected"] = job.id
    return job
