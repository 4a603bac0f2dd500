"""Every use of Streamlit's private internals, in one place, gated on a supported version range.

Each module here wraps one internal and degrades to Streamlit's public
behaviour when the installed Streamlit is outside :data:`SUPPORTED` (or the
internal is missing): the dashboard then works as plain Streamlit does, only
without that improvement.  ``tests/test_st_compat.py`` has a test per use that
fails loudly when the installed Streamlit leaves the range or an internal moved.

| module | internal | what it buys |
|---|---|---|
| :mod:`.routing` | ``PagesManager.uses_pages_directory`` | deep links on a fresh server go through ``app.py``'s router |
| :mod:`.session` | ``get_script_run_ctx``, ``Runtime.is_active_session`` | the pool knows which browser sessions are still connected |
| :mod:`.push` | ``ForwardMsg.auto_rerun``, ``AppSession.request_rerun`` | a fragment retimes itself; a run's start and end reach its page at once |
| :mod:`.queue_fix` | ``ForwardMsgQueue.clear``, ``create_reference_msg`` | the 1.67 queue bug that froze live views under load |
| :mod:`.startup` | ``delta_generator._use_warning_has_been_displayed`` | skips a slow REPL check on the first visitor's page |
| :mod:`.history` | the frontend's ``history.pushState`` calls, ``ScriptRunContext.is_history_navigation`` | one browser-history entry per page visit; Back restores that page's setup |
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import streamlit
from packaging.specifiers import SpecifierSet
from packaging.version import Version

#: The Streamlit versions whose internals this folder was written and tested against.  It must contain the
#: version ``requirements.txt`` pins (a test checks); widen it only after running ``tests/test_st_compat.py``.
SUPPORTED = SpecifierSet(">=1.67.0,<1.68")
#: The installed Streamlit.
INSTALLED = Version(streamlit.__version__)

_log = logging.getLogger(__name__)
_warned: set[str] = set()


def supported(use: str) -> bool:
    """Whether the internal ``use`` (a module name here) may be used: the installed Streamlit is in range.

    Outside the range it logs once per use which behaviour falls back to public Streamlit.
    """
    if INSTALLED in SUPPORTED:
        return True
    if use not in _warned:
        _warned.add(use)
        _log.warning("st_compat.%s: Streamlit %s is outside %s; falling back to public behaviour",
                     use, INSTALLED, SUPPORTED)
    return False


def pinned_streamlit(requirements: Path | None = None) -> Version | None:
    """The Streamlit version ``requirements.txt`` pins with ``==`` (``None`` if it pins none)."""
    path = requirements or Path(__file__).resolve().parents[2] / "requirements.txt"
    match = re.search(r"^streamlit\s*==\s*([0-9][^\s#;]*)", path.read_text(), flags=re.MULTILINE)
    return Version(match.group(1)) if match else None
