"""Skip Streamlit's once-per-process REPL check (``delta_generator._use_warning_has_been_displayed``).

Streamlit checks, on the first element of the process, whether it runs in a
REPL; the check (``inspect.stack()``, which reads the source of every frame)
delays the first visitor's page.  This app always runs under ``streamlit run``,
so the check is marked done.
"""

from __future__ import annotations

from dashboard.st_compat import supported


def skip_repl_check() -> bool:
    """Mark the REPL check done; ``False`` (nothing changed) outside the supported range."""
    if not supported("startup"):
        return False
    import streamlit.delta_generator as dg

    if not hasattr(dg, "_use_warning_has_been_displayed"):
        return False
    dg._use_warning_has_been_displayed = True
    return True
