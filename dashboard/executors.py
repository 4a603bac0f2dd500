"""Where runs train: this server's worker processes or a Ray cluster ("Train on", ``Settings.executor``).

Used by the Train and the Sweep pages; without Ray installed nothing is drawn and runs use the processes.
"""

from __future__ import annotations

import streamlit as st

from dashboard import state
from dashboard.settings import EXECUTORS


def ray_ok() -> bool:
    """Whether Ray can be used on this server (``ensemble_core.ray_executor.ray_available``)."""
    try:
        from ensemble_core.ray_executor import ray_available
    except ImportError:
        return False
    try:
        return bool(ray_available())
    except Exception:  # noqa: BLE001 - a broken install means no Ray
        return False


def executor_control(key: str, *, disabled: bool = False) -> str:
    """"Train on": a view of ``Settings.executor``, drawn only where Ray is available; returns the executor.

    Without Ray the runs train on the worker processes and nothing is drawn.
    """
    s = state.settings()
    ok = ray_ok()
    if ok:
        state.bind(st.radio, "executor", "Train on", list(EXECUTORS), key=key, horizontal=True,
                   format_func=EXECUTORS.get, disabled=disabled,
                   to_widget=lambda v: v or s.effective_executor(ok), convert=lambda v: v or s.effective_executor(ok),
                   help="This server's worker processes, or the Ray cluster (a local Ray the app starts, or the "
                        "cluster at RAY_ADDRESS). The same seeds give the same results on either.")
    return s.effective_executor(ok)
