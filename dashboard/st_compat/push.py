"""Server push: a fragment that sets its own refresh (``ForwardMsg.auto_rerun``), a session rerun from any thread
(``AppSession.request_rerun``).

Streamlit reruns a page only when its browser asks (a click, a fragment's
``run_every`` timer).  Outside the supported range both helpers do nothing and
return ``False``: the pages' polling carries on.
"""

from __future__ import annotations

import logging
import threading

from dashboard.st_compat import supported
from dashboard.st_compat.session import script_run

log = logging.getLogger(__name__)


def retime_fragment(seconds: float) -> bool:
    """From inside a fragment's run: refresh that fragment every ``seconds`` from now on.

    ``st.fragment(run_every=...)`` sends the browser the interval of its timer
    when the fragment is declared, that is, only on a full run; a new
    interval for the same fragment replaces the timer (Streamlit 1.67's
    ``handleAutoRerun``).  Sending one from the fragment's own run lets a live
    view set its pace from the job's state on each refresh without a full
    rerun.  Returns whether it was sent (``False`` outside a fragment run).
    """
    ctx, fragment_id = script_run()
    if not fragment_id or not supported("push"):
        return False
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

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
    if not supported("push"):
        return False
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
