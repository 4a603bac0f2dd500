"""The Sweep page's lasting sweeps: started for a browser, re-attached after a reload, saved as they go.

* **Re-attach.**  A started sweep is kept in a process-wide registry keyed by the
  browser's identity (:func:`register`, :func:`live_entry`; one sweep per
  browser, forgotten :data:`FORGET_AFTER_S` after it ends, at most
  :data:`MAX_LIVE` browsers), so a reload, a reopened tab or a second tab of the
  same browser shows it live and can stop it; another browser never sees it.
* **Saved.**  As each trial ends and when the sweep ends, its results go to the
  run store as a sweep (:func:`persist`, ``RunStore.save_sweep``).

The results view of a sweep is :mod:`dashboard.sweep_view`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from dashboard import identity, pool, saved
from dashboard.sweep_view import KEY, SweepResults, snapshot
from ensemble_core.sweeps import SweepRun

log = logging.getLogger(__name__)

#: A finished sweep stays re-attachable this long (seconds) after it ends; it is in the saved list anyway.
FORGET_AFTER_S = 900.0
#: Most browsers with a sweep in the registry (the oldest ended ones are forgotten first).
MAX_LIVE = 512


# ------------------------------------------------------------------ the live registry (re-attach)
@dataclass
class LiveSweep:
    """A browser's running (or just ended) sweep, as the registry keeps it.

    Attributes:
        sweep: the sweep.
        owner: the browser's token (the run store's owner).
        task, dataset: the data's task and name.
        csv_bytes: the uploaded CSV the trials trained on (saved with their runs), or ``None``.
        created: when it started (unix seconds).
        executor: where it trains.
        sweep_id: its id in the run store once saved (``None``: not (yet) kept).
        run_ids: the store's run id of each trial once saved.
        saved_state: what was last saved (``(ended trials, status)``), so a save happens only on a change.
    """

    sweep: SweepRun
    owner: str
    task: str
    dataset: str
    csv_bytes: bytes | None = None
    created: float = field(default_factory=time.time)
    executor: str = "process"
    sweep_id: str | None = None
    run_ids: dict[int, str | None] = field(default_factory=dict)
    saved_state: tuple[int, str] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def results(self) -> SweepResults:
        """The sweep's results now (:func:`snapshot`)."""
        return snapshot(self.sweep, self.task, self.dataset, created=self.created, executor=self.executor)


_LIVE: dict[str, LiveSweep] = {}
_LIVE_LOCK = threading.Lock()


def _expired(entry: LiveSweep, now: float) -> bool:
    end = entry.sweep.finished_at
    return end is not None and not entry.sweep.active and now - end > FORGET_AFTER_S


def register(entry: LiveSweep) -> None:
    """Make ``entry`` its browser's sweep (replacing an ended one; one sweep per browser); any thread.

    Bounded: expired entries are dropped, and past :data:`MAX_LIVE` browsers the longest-ended ones.
    """
    now = time.monotonic()
    with _LIVE_LOCK:
        old = _LIVE.get(entry.owner)
        _LIVE[entry.owner] = entry
        for k in [k for k, e in _LIVE.items() if _expired(e, now)]:
            del _LIVE[k]
        if len(_LIVE) > MAX_LIVE:
            ended = sorted((e.sweep.finished_at or now, k) for k, e in _LIVE.items()
                           if not e.sweep.active and k != entry.owner)
            for _, k in ended[: len(_LIVE) - MAX_LIVE]:
                del _LIVE[k]
    if old is not None and old is not entry and old.sweep.active:
        old.sweep.stop()  # one sweep per browser: a new one ends the previous


def live_entry(owner: str) -> LiveSweep | None:
    """The browser ``owner``'s sweep while it runs and :data:`FORGET_AFTER_S` after it ended (else ``None``)."""
    with _LIVE_LOCK:
        entry = _LIVE.get(owner)
        if entry is not None and _expired(entry, time.monotonic()):
            del _LIVE[owner]
            return None
    return entry


def live_count() -> int:
    """How many browsers have a sweep in the registry (for tests and the bound)."""
    with _LIVE_LOCK:
        return len(_LIVE)


def current() -> LiveSweep | None:
    """This browser's sweep (a reload, a reopened or a second tab re-attaches); mirrors it into the session."""
    entry = live_entry(identity.browser_id())
    if entry is not None:
        st.session_state[KEY] = entry.sweep
    return entry


# ------------------------------------------------------------------ starting, saving
def start(checked: Any, ds: Any, csv_bytes: bytes | None, executor: str) -> LiveSweep:
    """Start ``checked`` for this browser through the pool (on ``executor`` when the core takes it); registers it.

    Raises:
        whatever ``SweepRun`` raises (the page shows it).
    """
    p = pool.pool()
    user = owner_user()
    entry_box: list[LiveSweep] = []

    def changed(sw: SweepRun) -> None:
        if entry_box:
            persist(entry_box[0])

    sweep = SweepRun(checked, ds, p, user, parallel=max(1, p.max_active_per_user - 1), on_change=changed,
                     executor=executor)
    entry = LiveSweep(sweep, user, ds.task, ds.name, csv_bytes, executor=executor)
    entry_box.append(entry)
    register(entry)
    persist(entry)  # listed at once, as running
    return entry


def persist(entry: LiveSweep) -> str | None:
    """Save the sweep's results (and its ended trials' runs) to the run store when they changed; any thread.

    Never raises: a store that cannot be written leaves the sweep unsaved (logged).
    """
    s = saved.store()
    if s is None or not getattr(s, "available", False) or not hasattr(s, "save_sweep"):
        return None
    with entry.lock:
        sweep = entry.sweep
        for t in list(sweep.trials):
            if t.index not in entry.run_ids and t.job is not None and not t.job.active:
                entry.run_ids[t.index] = saved.save_job(t.job, "sweep", entry.csv_bytes)
        res = entry.results()
        ended = sum(t.status in ("done", "stopped", "failed", "skipped") for t in res.trials)
        mark = (ended, res.status)
        if mark == entry.saved_state:
            return entry.sweep_id
        try:
            entry.sweep_id = s.save_sweep(entry.owner, res.to_dict(), sweep_id=entry.sweep_id,
                                          run_ids=[entry.run_ids.get(t.index) for t in res.trials])
            entry.saved_state = mark
        except Exception:  # noqa: BLE001 - StoreUnavailable / StoreError: the sweep is just not kept
            log.exception("saving a sweep failed")
        return entry.sweep_id


def owner_user() -> str:
    """The browser's user key, whose quota the sweep's trials use (registers this tab for liveness)."""
    return pool.owner("sweep").split(":", 1)[0]
