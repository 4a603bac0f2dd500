"""Routing every page through ``app.py``'s router (see :mod:`dashboard.st_compat.routing`)."""

from __future__ import annotations

import threading
from typing import Any

import streamlit as st

from dashboard.st_compat.routing import leave_pages_directory_mode
from dashboard.state import init_state


def route_through_app() -> None:
    """Make the router in ``app.py`` handle the very first script runs of the process too.

    Because the pages live in ``pages/``, Streamlit starts in its legacy
    multipage mode (every file of ``pages/`` routed directly, ``app.py``
    bypassed on a deep link such as ``/data``) until ``st.navigation`` runs
    once.  Each page calls this first.  Outside the router, the first visitor
    leaves that mode and reruns through ``app.py``; a visitor racing with them
    (the mode already left), or a page run on its own (AppTest), gets the shared
    state filled in so the page still works.  It must not run at import time: a
    rerun raised mid-import leaves a module half-imported for others.
    """
    if getattr(_ROUTED, "active", False):
        return
    if leave_pages_directory_mode():
        st.rerun()
    init_state()


class _Routed(threading.local):
    """Per script thread: is ``app.py``'s router running the current page?"""

    active = False


_ROUTED = _Routed()


def run_page(page: Any) -> None:
    """Run the page ``st.navigation`` picked, marked as routed (see :func:`route_through_app`)."""
    _ROUTED.active = True
    try:
        page.run()
    finally:
        _ROUTED.active = False
