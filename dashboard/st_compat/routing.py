"""Leave Streamlit's legacy ``pages/``-directory mode (``PagesManager.uses_pages_directory``).

Because the page scripts live in ``pages/``, Streamlit starts in its legacy
multipage mode (every file of ``pages/`` routed directly, ``app.py`` bypassed
on a deep link such as ``/data``) until ``st.navigation`` runs once.
"""

from __future__ import annotations

from dashboard.st_compat import supported


def in_pages_directory_mode() -> bool:
    """Whether Streamlit still routes ``pages/`` files directly (``False`` outside the supported range)."""
    if not supported("routing"):
        return False
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:
        return False
    return bool(getattr(PagesManager, "uses_pages_directory", False))


def leave_pages_directory_mode() -> bool:
    """Switch the legacy mode off for the process; whether it was on (the caller then reruns through the router)."""
    if not in_pages_directory_mode():
        return False
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False
    return True
