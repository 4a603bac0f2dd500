"""This browser's live lesson and strategy race, for every tab and reload of the browser.

A lesson or race is a :class:`~ensemble_core.race.RunSequence` that a page steps on each refresh.  It
used to live only in the session that started it, so a reload lost its live view, its Stop button and
its results.  Now :func:`start` also registers it in the process-wide :data:`REGISTRY`, under the
browser token (:func:`dashboard.identity.browser_id`) and the page's kind (:data:`KINDS`), with what
the page needs to draw it (``meta``: the lesson id, the raced strategies, the data set's name).  A
session that does not follow the browser's registered sequence takes it (:func:`adopt`): the live view
continues where it is, Stop stops it for every tab, and when it ends every tab shows its results.

Bounds (:class:`Registry`): at most one sequence per browser and kind (starting a new one replaces and
stops the old one), a finished sequence is forgotten :data:`FINISHED_TTL_S` after its end, one that no
page looked at for :data:`IDLE_TTL_S` (every tab closed) is forgotten too, and at most
:data:`MAX_ENTRIES` are kept in all (the oldest finished ones go first).  Forgetting only drops the
registry's reference: a session that holds the sequence keeps it, and the pool's reaper frees the jobs
of a browser that has gone.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from dashboard import identity

#: The pages whose sequences are registered.
KINDS: tuple[str, ...] = ("lesson", "compare")
#: Seconds a finished sequence stays re-attachable after its end (a reload right after it still shows it).
FINISHED_TTL_S = 600.0
#: Seconds a sequence stays registered without any page looking at it (every tab of its browser closed).
IDLE_TTL_S = 1800.0
#: Most sequences kept in all (a classroom of 60 browsers x 2 kinds fits).
MAX_ENTRIES = 128


@dataclass
class Entry:
    """One registered sequence.

    Attributes:
        seq: the sequence (shared, thread-safe: every tab steps the same object).
        meta: what the page needs to draw it besides the sequence (read-only by convention).
        generation: increases with every registration in the process; a session follows the newest.
        started: wall-clock time of the start (unix seconds), for "started at" captions.
        seen: monotonic time a page last looked it up.
        ended: monotonic time it was first seen done (``None`` while it runs).
    """

    seq: Any
    meta: Mapping[str, Any]
    generation: int
    started: float
    seen: float
    ended: float | None = None


@dataclass
class Registry:
    """A thread-safe map ``(browser token, kind) -> Entry`` with the bounds of the module docstring.

    Pure Python (no Streamlit), so it is tested directly; ``clock`` is a monotonic clock.
    """

    finished_ttl_s: float = FINISHED_TTL_S
    idle_ttl_s: float = IDLE_TTL_S
    max_entries: int = MAX_ENTRIES
    clock: Callable[[], float] = time.monotonic
    _entries: dict[tuple[str, str], Entry] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _counter: Any = field(default_factory=lambda: itertools.count(1))

    def register(self, browser: str, kind: str, seq: Any, meta: Mapping[str, Any] | None = None) -> tuple[Entry, Entry | None]:
        """Register ``seq`` as the browser's ``kind`` sequence; returns ``(new entry, replaced entry or None)``.

        The caller stops the replaced sequence if it still runs (the registry never touches the pool).

        Raises:
            ValueError: an unknown ``kind`` or an empty ``browser``.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        if not browser:
            raise ValueError("a sequence needs the browser's token")
        with self._lock:
            now = self.clock()
            entry = Entry(seq, dict(meta or {}), next(self._counter), time.time(), now)
            old = self._entries.pop((browser, kind), None)
            self._entries[(browser, kind)] = entry
            self._prune(now)
            return entry, old

    def get(self, browser: str, kind: str) -> Entry | None:
        """The browser's registered ``kind`` sequence (``None``: none, or forgotten); marks it as seen."""
        with self._lock:
            now = self.clock()
            self._prune(now)
            entry = self._entries.get((browser, kind))
            if entry is not None:
                entry.seen = now
            return entry

    def forget(self, browser: str, kind: str) -> None:
        """Drop the browser's ``kind`` sequence (if any)."""
        with self._lock:
            self._entries.pop((browser, kind), None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _prune(self, now: float) -> None:
        """Apply the bounds (lock held): end times, the two ages, then the size cap, oldest finished first."""
        for key, e in list(self._entries.items()):
            if e.ended is None and getattr(e.seq, "done", False):
                e.ended = now
            if (e.ended is not None and now - e.ended > self.finished_ttl_s) or now - e.seen > self.idle_ttl_s:
                del self._entries[key]
        excess = len(self._entries) - self.max_entries
        if excess > 0:
            order = sorted(self._entries.items(), key=lambda kv: (kv[1].ended is None, kv[1].seen))
            for key, _ in order[:excess]:
                del self._entries[key]


#: The process-wide registry of every browser's live lesson and race.
REGISTRY = Registry()


def _gen_key(kind: str) -> str:
    return f"ui_seq_gen_{kind}"


def start(kind: str, seq: Any, stop_old: Callable[[Any], None], **meta: Any) -> Entry:
    """Register the sequence this session just started as the browser's ``kind`` sequence.

    The one it replaces (from this or another tab), if it is another object, goes to ``stop_old``
    (which stops it in the pool: at most one lesson and one race per browser).  This session then
    follows the new one (:func:`adopt` leaves it alone).
    """
    entry, old = REGISTRY.register(identity.browser_id(), kind, seq, meta)
    st.session_state[_gen_key(kind)] = st.session_state[f"ui_seq_own_{kind}"] = entry.generation
    if old is not None and old.seq is not seq and not old.seq.done:
        stop_old(old.seq)
    return entry


def adopt(kind: str) -> Entry | None:
    """The browser's registered ``kind`` sequence if this session should take it, else ``None``.

    A session takes a registered sequence newer than the one it follows: once after a reload or in
    a new tab (it follows none), and again when another tab started a newer one (which replaced
    this session's).  The caller puts ``entry.seq`` and its ``meta`` where the page keeps them.
    """
    entry = REGISTRY.get(identity.browser_id(), kind)
    mine = st.session_state.get(_gen_key(kind))
    if entry is None or (mine is not None and mine >= entry.generation):
        return None
    st.session_state[_gen_key(kind)] = entry.generation
    return entry


def current(kind: str) -> Entry | None:
    """The browser's registered ``kind`` sequence if this session follows it, else ``None``.

    Looking it up marks it as seen, so a live view calls it on every refresh (a sequence no page
    looks at for :data:`IDLE_TTL_S` is forgotten).
    """
    entry = REGISTRY.get(identity.browser_id(), kind)
    return entry if entry is not None and st.session_state.get(_gen_key(kind)) == entry.generation else None


def reattached_caption(kind: str, what: str) -> None:
    """Say, in a caption, that this tab shows a ``what`` started in another tab or before a reload."""
    entry = current(kind)
    if entry is None or st.session_state.get(f"ui_seq_own_{kind}") == entry.generation:
        return
    from dashboard.chrome import esc  # chrome imports the pool, which needs no sequences: no cycle either way

    data = f" on {esc(entry.meta['data'])}" if entry.meta.get("data") else ""
    st.caption(f":material/sync: Re-attached to the {what}{data} that this browser started at "
               f"{time.strftime('%H:%M:%S', time.localtime(entry.started))} (in another tab or before a reload).")
