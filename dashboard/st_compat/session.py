"""Which browser session a script run belongs to, and whether a session is still connected."""

from __future__ import annotations

from typing import Any

from dashboard.st_compat import supported


def script_run() -> tuple[Any, str | None]:
    """The current script run context and the id of the fragment running now.

    ``(None, None)`` outside a script thread or outside the supported range;
    the fragment id is ``None`` outside a fragment run.
    """
    if not supported("session"):
        return None, None
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState, get_script_run_ctx

        ctx = get_script_run_ctx(suppress_warning=True)
        return ctx, getattr(ThreadState.get(), "fragment_id", None) if ctx is not None else None
    except (ImportError, RuntimeError, AttributeError):
        return None, None


def session_id() -> str | None:
    """This script run's browser session id (``None`` outside one)."""
    ctx, _ = script_run()
    return getattr(ctx, "session_id", None)


def is_connected(sid: str) -> bool | None:
    """Whether the browser session ``sid`` is connected; ``None`` when that cannot be known here."""
    if not supported("session"):
        return None
    try:
        from streamlit import runtime

        if not runtime.exists():
            return None
        return bool(runtime.get_instance().is_active_session(sid))
    except (ImportError, AttributeError, RuntimeError):
        return None


def connected_checker() -> Any | None:
    """``is_connected`` bound to the running server, for pruning tables of sessions (``None``: no server)."""
    if not supported("session"):
        return None
    try:
        from streamlit import runtime

        return runtime.get_instance().is_active_session if runtime.exists() else None
    except (ImportError, AttributeError, RuntimeError):
        return None
