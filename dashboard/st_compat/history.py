"""One browser-history entry per page visit, and Back/Forward that restore a page's setup.

Streamlit 1.67's frontend (``static/js/index.*.js``) adds a history entry for
every change of the URL:

* ``handlePageInfoChanged``: each write to ``st.query_params`` (one message per
  key set or deleted) calls ``history.pushState``; only while it handles a
  Back/Forward (``historyNavigationEpoch``) does it call ``replaceState``;
* ``onUpdatePageUrl`` (after a ``navigation`` message, in React's commit): a
  page change pushes ``/<page>?<query>``, so it may come before *or after* the
  new page's first query writes.

The dashboard keeps its whole setup in the URL (``links.sync_link``): entering
a page rebuilds its parameters one key at a time, and every setting changed
writes them again, so four page visits left 10 to 15 entries and Back took
three or four presses per page.

:func:`install` mounts a small script (a ``st.components.v2`` component runs in
the app's own document, hidden) that wraps ``history.pushState`` once per tab:

* a push for the page the address already shows **replaces** the entry (a
  setting changed: the entry keeps the newest setup of that visit);
* a push for another page (its path, or its ``page`` query parameter when the
  query comes first) **pushes** one entry, at that page's path;
* a push that drops the ``page`` parameter the address has is a page's
  parameters being rebuilt one key at a time: it is left out (the complete URL
  follows in the same run), so the previous page's entry keeps its own setup.

The script arrives with the session's first script run, after Streamlit has
already handled that run's URL writes, so the link code writes the URL only once
:func:`ready` (the URL is then still the link the session was opened with).

Back and Forward then move page by page; Streamlit reruns the page with that
entry's query (``rerunScript.isHistoryNavigation``), and :func:`restoring`
tells the link code to apply it (a URL the session wrote itself is otherwise
ignored as stale).

Outside the supported range nothing is mounted, :func:`ready` is always
``True`` and :func:`restoring` ``False``: plain Streamlit, one entry per URL change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from dashboard.st_compat import supported

#: Key of the hidden element that carries the script (``theme.BASE_CSS`` hides ``.st-key-<KEY>``).
KEY = "del_history_guard"
#: How long after its first mount the guard is taken to be in the browser.  The element goes out early
#: in the run; the browser loads Streamlit's component code and then the script (tens of milliseconds
#: on a LAN).  A rerun the script asks for (``st.rerun``) follows at once and must wait too.
SETTLE_S = 1.0
_SINCE = "del_history_since"
_LOCK = threading.Lock()
_mount: Callable[..., Any] | None = None

# Runs in the app's document (components v2 are not iframes); the wrapper is installed once per tab and
# only its page list is refreshed afterwards.  ``window.__delHistory`` counts what it did (for tests).
_JS = """
export default function (component) {
  const cfg = component.data || {};
  const w = window;
  if (w.__delHistory) { w.__delHistory.cfg = cfg; return; }
  const h = w.history;
  const push = h.pushState.bind(h);
  const replace = h.replaceState.bind(h);
  const guard = { cfg, pushed: 0, replaced: 0, skipped: 0 };
  w.__delHistory = guard;
  const pages = () => String(guard.cfg.pages || '').split(',').filter(Boolean);
  // '/base/data' -> ['/base/', 'data']; '/base/' -> ['/base/', '']
  const split = (path) => {
    const i = path.lastIndexOf('/');
    const last = path.slice(i + 1);
    return pages().includes(last) ? [path.slice(0, i + 1), last] : [path.endsWith('/') ? path : path + '/', ''];
  };
  const named = (url) => {
    const p = url.searchParams.get(guard.cfg.param || 'page');
    return p && pages().includes(p) ? p : null;
  };
  const pageOf = (url) => named(url) || split(url.pathname)[1] || guard.cfg.home;
  h.pushState = function (state, title, url) {
    let next, here;
    try {
      here = new URL(w.location.href);
      next = new URL(url, here);
    } catch (err) {
      return push(state, title, url);
    }
    if (url == null || next.origin !== here.origin) return push(state, title, url);
    const param = guard.cfg.param || 'page';
    if (next.pathname === here.pathname && here.searchParams.has(param) && !next.searchParams.has(param)) {
      guard.skipped += 1;
      return undefined;
    }
    const page = pageOf(next);
    if (page === pageOf(here)) {
      guard.replaced += 1;
      return replace(state, title, next.href);
    }
    next.pathname = split(here.pathname)[0] + (page === guard.cfg.home ? '' : page);
    guard.pushed += 1;
    return push(state, title, next.href);
  };
}
"""


def _component() -> Callable[..., Any]:
    global _mount
    with _LOCK:
        if _mount is None:
            _mount = st.components.v2.component("deep_ensemble_lab.history", js=_JS, isolate_styles=False)
    return _mount


def install(pages: Sequence[str], home: str = "home", param: str = "page") -> bool:
    """Mount the history guard (call on every full run, before the URL is first written); whether it was.

    Args:
        pages: the url paths of the app's pages (``"data"``, ...), home included.
        home: the url path of the default page (served at the app's root).
        param: the query parameter that names the page in the dashboard's links.
    """
    if not supported("history"):
        return False
    # Only strings: a list in a component's data makes Streamlit import pandas to test whether it is a
    # data frame (0.8 s of the first visitor's first page).
    _component()(key=KEY, data={"pages": ",".join(pages), "home": home, "param": param})
    st.session_state.setdefault(_SINCE, time.monotonic())
    return True


def ready() -> bool:
    """Whether the URL may be written without adding history entries: the guard is in this browser.

    ``False`` for :data:`SETTLE_S` after its first mount (the session's first run and a rerun it asks
    for): the URL then is still the link that was just opened.  Always ``True`` outside the supported range
    and without a browser (``AppTest``).
    """
    from streamlit import runtime

    if not supported("history") or not runtime.exists() or type(runtime.get_instance()) is not runtime.Runtime:
        return True  # no server, or AppTest's stand-in for one: no browser, no history to guard
    since = st.session_state.get(_SINCE)
    return since is not None and time.monotonic() - since >= SETTLE_S


def restoring() -> bool:
    """Whether this script run was started by the browser's Back or Forward button.

    Streamlit 1.67 marks such a rerun (``ScriptRunContext.is_history_navigation``);
    its query is the one of the history entry the viewer went back to.
    ``False`` outside the supported range or outside a script run.
    """
    if not supported("history"):
        return False
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    ctx = get_script_run_ctx()
    return bool(getattr(ctx, "is_history_navigation", False)) if ctx is not None else False

