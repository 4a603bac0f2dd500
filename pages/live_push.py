"""Server push for the live views: a fragment that sets its own refresh, a session rerun from any thread.

Streamlit reruns a page only when its browser asks (a click, a fragment's
``run_every`` timer).  A training run's start and end happen in the job pool's
threads, so a page used to learn of them on its next poll, seconds later on a
busy classroom server; and a fragment's timer kept the pace chosen at the last
full run.  Both helpers below use Streamlit 1.67 internals (as
:mod:`pages.streamlit_fixes` does); where those differ they do nothing and the
pages' polling carries on.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import streamlit as st

from ensemble_core.jobs import Job

log = logging.getLogger(__name__)


def _fragment_run() -> tuple[Any, str | None]:
    """The script run context and the id of the fragment running now (``None`` outside a fragment)."""
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState, get_script_run_ctx

        ctx = get_script_run_ctx(suppress_warning=True)
        return ctx, getattr(ThreadState.get(), "fragment_id", None) if ctx is not None else None
    except (ImportError, RuntimeError):  # another Streamlit's internals, or no script thread
        return None, None


def retime_fragment(seconds: float) -> bool:
    """From inside a fragment's run: refresh that fragment every ``seconds`` from now on.

    ``st.fragment(run_every=...)`` sends the browser the interval of its timer
    when the fragment is declared, that is, only on a full run; a new
    interval for the same fragment replaces the timer (Streamlit 1.67's
    ``handleAutoRerun``).  Sending one from the fragment's own run lets a live
    view set its pace from the job's state on each refresh without a full
    rerun.  Returns whether it was sent (``False`` outside a fragment run).
    """
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    ctx, fragment_id = _fragment_run()
    if not fragment_id:
        return False
    msg = ForwardMsg()
    msg.auto_rerun.interval = float(seconds)
    msg.auto_rerun.fragment_id = fragment_id
    ctx.enqueue(msg)
    return True


_PUSH_FAILED = threading.Event()


def push_rerun(session_id: str, fragment_id: str | None = None) -> bool:
    """Rerun the browser session ``session_id`` now, from any thread: the page, or only its fragment ``fragment_id``.

    A server push: the session's browser receives the new elements without
    having asked.  It goes through Streamlit's own rerun-on-save path
    (``AppSession.request_rerun`` with the session's last client state, on the
    server's event loop), so the session stays on its page with its widget
    values.  Returns whether the rerun was requested (``False``: no such
    connected session, no server runtime as under AppTest, or another
    Streamlit's internals).
    """
    try:
        from streamlit import runtime
        from streamlit.proto.ClientState_pb2 import ClientState

        if not runtime.exists():
            return False
        info = runtime.get_instance()._session_mgr.get_active_session_info(session_id)
        if info is None:
            return False
        session = info.session

        def rerun() -> None:  # on the event loop, where the session's client state is kept
            state = ClientState()
            state.CopyFrom(session._client_state)
            state.fragment_id, state.is_auto_rerun = fragment_id or "", bool(fragment_id)
            session.request_rerun(state)

        session._event_loop.call_soon_threadsafe(rerun)
        return True
    except (ImportError, AttributeError, RuntimeError):
        if not _PUSH_FAILED.is_set():  # once per server: the pages' polling carries on without it
            _PUSH_FAILED.set()
            log.warning("cannot push a rerun to a session on this Streamlit; pages find out on their next poll",
                        exc_info=True)
        return False


class SessionWaker:
    """A job's ``on_change``: rerun the session that started the job the moment it starts or ends.

    Without it a page learns of its run's start and end on its next poll,
    which on a busy classroom server is seconds away.  At the end the session
    gets a full rerun (the result on the page and in the sidebar); at the
    start, a rerun of the live view only (:attr:`fragment_id`, which the view
    records on each of its runs), which then refreshes at a running run's pace.
    The page's polling stays as the fallback.
    """

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.fragment_id: str | None = None

    def __call__(self, job: Job) -> None:
        if job.status == "running":
            if self.fragment_id:
                push_rerun(self.session_id, self.fragment_id)
        elif not job.active:
            push_rerun(self.session_id)

    @staticmethod
    def attach() -> SessionWaker | None:
        """A waker for this script run's session (``None`` outside one), kept in ``ui_waker``."""
        ctx, _ = _fragment_run()
        if ctx is None:
            return None
        waker = st.session_state.get("ui_waker")
        if not isinstance(waker, SessionWaker) or waker.session_id != ctx.session_id:
            waker = st.session_state["ui_waker"] = SessionWaker(ctx.session_id)
        return waker

    @staticmethod
    def follow() -> None:
        """From the live view's fragment: record its id, so that a run's start reruns just it."""
        waker = st.session_state.get("ui_waker")
        _, fragment_id = _fragment_run()
        if isinstance(waker, SessionWaker) and fragment_id:
            waker.fragment_id = fragment_id
