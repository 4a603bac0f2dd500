"""Who this browser is: a random token kept in a cookie, the key of its runs and its live jobs.

There are no accounts.  Each browser gets a random token of 192 bits
(:data:`TOKEN_BYTES`), kept in the cookie :data:`COOKIE` (``SameSite=Strict``,
``Path=/``, :data:`MAX_AGE_S`).  Every tab, reload and reopened tab of that
browser sends it when its session connects, so they all share the browser's
runs (the run store's ``owner``) and its live jobs (the pool's owner keys
``"<token>:<part>"``, see :func:`owner_key`); another browser never has it.

How it is kept: Streamlit gives a script the cookies of the session's first
request (``st.context.cookies``) but no way to set a response header, so the
cookie cannot be ``HttpOnly``.  A session that arrives without a valid cookie
gets a new token from the server at once (its first script run already knows
it: no round trip) and a tiny script (a hidden ``st.components.v2``
component, which runs in the app's own document) writes it into the cookie;
the next reload sends it.  ``docs/decisions.md`` says why a cookie rather than
local storage.

The server never trusts a cookie it did not make the shape of: anything but
exactly :data:`TOKEN_LEN` URL-safe characters is ignored and replaced by a new
token (:func:`valid_token`).
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable
from typing import Any

import streamlit as st

#: The cookie that carries the browser's token.
COOKIE = "del_browser"
#: Random bytes in a token (192 bits; ``secrets.token_urlsafe`` turns them into :data:`TOKEN_LEN` characters).
TOKEN_BYTES = 24
#: Characters of a token.
TOKEN_LEN = 32
#: How long the browser keeps the cookie: 400 days, the most Chromium accepts.
MAX_AGE_S = 400 * 24 * 3600
#: Key of the hidden element whose script writes the cookie.
KEY = "del_identity"
#: Session-state key of this session's token.
STATE_KEY = "ui_browser"

_TOKEN_RE = re.compile(rf"[A-Za-z0-9_-]{{{TOKEN_LEN}}}")
_LOCK = threading.Lock()
_mount: Callable[..., Any] | None = None

# Runs in the app's document.  Writes the cookie the server chose for this session; Secure on https.
_JS = """
export default function (component) {
  const d = component.data || {};
  if (!d.token || !d.name) return;
  const secure = window.location.protocol === 'https:' ? '; Secure' : '';
  document.cookie = `${d.name}=${d.token}; Max-Age=${d.max_age}; Path=/; SameSite=Strict${secure}`;
}
"""
_CSS = f".st-key-{KEY} {{ display: none; }}"


def new_token() -> str:
    """A fresh browser token: :data:`TOKEN_BYTES` random bytes, URL-safe, :data:`TOKEN_LEN` characters."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def valid_token(value: object) -> bool:
    """Whether ``value`` has exactly the shape of a token this server makes (nothing else is trusted)."""
    return isinstance(value, str) and _TOKEN_RE.fullmatch(value) is not None


def _cookie() -> str | None:
    """The token cookie the session connected with, or ``None`` (absent, malformed, or no browser)."""
    try:
        value = st.context.cookies.get(COOKIE)
    except Exception:  # noqa: BLE001 - no client context (a bare script run): no cookie
        return None
    return value if valid_token(value) else None


def _component() -> Callable[..., Any]:
    global _mount
    with _LOCK:
        if _mount is None:
            _mount = st.components.v2.component("deep_ensemble_lab.identity", js=_JS, css=_CSS,
                                                isolate_styles=False)
    return _mount


def browser_id() -> str:
    """This browser's token (the run store's owner), fixed for the session.

    The session's cookie when it is valid; otherwise a new token, which
    :func:`keep` writes into the browser's cookie.
    """
    ss = st.session_state
    token = ss.get(STATE_KEY)
    if not valid_token(token):
        cookie = _cookie()
        token = ss[STATE_KEY] = cookie or new_token()
        ss["ui_browser_new"] = cookie is None
    return token


def keep() -> None:
    """Call on every full run (``app.py``): a session that came without the cookie writes it into the browser."""
    token = browser_id()
    if st.session_state.get("ui_browser_new"):
        _component()(key=KEY, data={"token": token, "name": COOKIE, "max_age": str(MAX_AGE_S)})


def owner_key(part: str) -> str:
    """The job pool's owner key of this browser's ``part`` (``"train"``, ``"lessons"``, ``"compare"``).

    ``"<token>:<part>"``: the pool's user (``jobs.user_of``) is the browser, so its quota counts the
    browser, and every tab of the browser finds the same jobs.
    """
    if ":" in part or not part:
        raise ValueError(f"a part names one page's jobs, without ':'; got {part!r}")
    return f"{browser_id()}:{part}"
