"""The process-wide training pool and who owns its jobs: browser identity, prewarm, this browser's job.

A job's owner key is ``"<browser token>:<part>"`` (:func:`dashboard.identity.owner_key`): every tab and
reload of one browser finds the same jobs, so a reloaded Train page re-attaches to its live run
(:func:`current_job`).  Ended runs are saved to the run store (:mod:`dashboard.saved`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import streamlit as st

from dashboard import identity, live_plot
from dashboard.st_compat import session
from ensemble_core.jobs import Job, JobPool

log = logging.getLogger(__name__)


#: browser token -> its Streamlit session ids (its tabs), so the pool can ask whether a browser is still connected.
_SESSIONS: dict[str, set[str]] = {}
_SESSIONS_LOCK = threading.Lock()


#: Past this many entries, a new session first drops the entries of sessions that are gone.
SESSIONS_PRUNE_AT = 256


def prune_sessions(is_active: Callable[[str], bool], table: dict[str, set[str]] | None = None) -> int:
    """Drop the sessions that ``is_active`` no longer reports (and browsers left without any); returns how many.

    A session that reconnects registers again on its next script run (:func:`owner`), and the
    pool falls back to its heartbeat for an owner it cannot look up, so dropping is always safe.
    """
    table = _SESSIONS if table is None else table
    dropped = 0
    with _SESSIONS_LOCK:
        for key, sids in list(table.items()):
            gone = {sid for sid in sids if not is_active(sid)}
            dropped += len(gone)
            sids -= gone
            if not sids:
                table.pop(key, None)
    return dropped


def _connected(owner_key: str) -> bool | None:
    """Whether any tab of the browser of ``owner_key`` is connected (``None``: unknown, use the heartbeat)."""
    with _SESSIONS_LOCK:
        sids = list(_SESSIONS.get(owner_key.split(":", 1)[0], ()))
    if not sids:
        return None
    seen = [session.is_connected(sid) for sid in sids]
    return True if any(seen) else None if None in seen else False


@st.cache_resource(show_spinner=False)
def pool() -> JobPool:
    """The process-wide training pool, shared by every browser session.

    Its reaper frees the jobs of browsers whose every tab disconnected a
    minute ago (a reload reconnects within that minute and re-attaches); a
    connected session keeps its jobs even when its polling is starved by a
    busy server.
    """
    _MADE.set()
    return JobPool(alive=_connected)


_MADE = threading.Event()  # the pool exists (so there may be jobs to re-attach to)


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


def owner(part: str = "train") -> str:
    """The pool's owner key of this browser's ``part`` (``"<browser token>:<part>"``), registering this tab."""
    key = identity.owner_key(part)
    browser = key.split(":", 1)[0]
    sid = session.session_id()
    if sid is not None and sid not in _SESSIONS.get(browser, ()):
        checker = session.connected_checker() if len(_SESSIONS) >= SESSIONS_PRUNE_AT else None
        if checker is not None:  # a long-lived server: forget the tabs closed long ago
            prune_sessions(checker)
        with _SESSIONS_LOCK:
            _SESSIONS.setdefault(browser, set()).add(sid)
    return key


def reattach() -> Job | None:
    """A session without a Train job takes this browser's newest one still in the pool (a reload, a new tab).

    Once per session.  The live view then continues from the job's history (its chart bases are
    rebuilt), and the job's start/end pushes go to this session.  Returns the job re-attached to.
    """
    ss = st.session_state
    if ss.get("job_id") or ss.get("ui_reattach_done") or not _MADE.is_set():
        return None
    ss["ui_reattach_done"] = True
    jobs = pool().jobs_of(owner())
    if not jobs:
        return None
    job = jobs[-1]
    from dashboard import live, saved  # live imports this module

    try:
        bases = live.live_bases(job.config, job.dataset)
    except Exception:  # noqa: BLE001 - only an optimisation: the charts are then built from the events
        log.exception("live bases of re-attached job %s", job.id)
        bases = {}
    ss["job_id"], ss["ui_live"] = job.id, (job.id, bases)
    saved.follow(job, live.SessionWaker.attach())
    return job


def current_job() -> Job | None:
    """This browser's latest Train job (``None`` if none, or forgotten by the pool); re-attaches first."""
    job_id = st.session_state.get("job_id")
    if not job_id:
        return reattach()
    return pool().get(job_id, owner()) if job_id else None  # no pool (nor torch) before the first run


def sync_job() -> Job | None:
    """Heartbeat the pool and, once this session's job has ended, publish its run.

    Sets ``run`` and ``run_dataset`` exactly once per finished or stopped job, and makes sure it is in
    the run store (normally saved already when it ended, see :func:`dashboard.saved.on_end`).
    """
    job = current_job()
    if job is not None:
        pool().touch(owner())
    if job is not None and not job.active and job.result is not None \
            and st.session_state.get("ui_collected") != job.id:
        st.session_state["run"], st.session_state["run_dataset"] = job.result, job.dataset
        st.session_state["ui_collected"] = job.id
    if job is not None and not job.active and st.session_state.get("ui_saved_job") != job.id:
        from dashboard import saved

        st.session_state["ui_saved_job"] = job.id
        saved.save_job(job, "train", st.session_state.get("csv_bytes"))
    return job
