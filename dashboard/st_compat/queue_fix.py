"""A fix for a Streamlit 1.67 server bug that froze pages under a classroom's load.

The bug (``streamlit.runtime.forward_msg_queue.ForwardMsgQueue.clear``)
-----------------------------------------------------------------------
When a script run starts, the server drops the messages of the previous run
that it has not sent to the browser yet (they would be redrawn anyway).  For a
*fragment* run it drops only the deltas of the fragments that are about to
run, so it asks ``msg.delta.fragment_id in fragment_ids_this_run``.

Streamlit sends an element that the browser already holds (same content, e.g.
a live chart between two refreshes of its data) as a small *reference*
message (``ref_hash``) instead of the element.  A reference message carries no
delta, so the check reads the empty default delta, finds no fragment id, and
**keeps** it, while the fragment's other deltas around it are dropped.  The
browser then receives the reference at a delta path whose parents or
siblings never arrived, and its element tree no longer matches the server's:
``Bad delta path index 3 (should be between [0, 1])``, ``Cannot set a node
at a delta path`` or ``'setIn' cannot be called on an ElementNode``, after
which that page's live view never refreshes again.

It needs a busy server (messages still unsent when the next run starts); the
classroom load test (``benchmarks/load_classroom.py``, N = 20) reproduces it
(``docs/decisions.md``).

The fix
-------
:func:`install` remembers which fragment each reference message was made for
(at the moment Streamlit makes it, where the element's delta still says so),
and makes a fragment run's clear drop those references along with the
fragment's other deltas.  Everything else about the queue is unchanged.  It
patches Streamlit only at the version it was written and tested for.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

import streamlit

from dashboard.st_compat import supported

#: The Streamlit versions whose queue this fix was written and tested for.
FIXED_VERSIONS = ("1.67.0",)
#: How many reference messages' fragments are remembered (oldest forgotten first;
#: a message waits in the queue for well under a second, so this is ample).
REMEMBER = 20_000

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_ref_fragment: OrderedDict[tuple[str, tuple[int, ...]], str] = OrderedDict()
_installed: bool | None = None  # None: not tried yet; False: this Streamlit is not a fixed version
#: Streamlit's own functions that :func:`install` wrapped (for tests and for the record).
originals: dict[str, Any] = {}


def fragment_of_reference(msg: Any) -> str | None:
    """The fragment id the reference message ``msg`` was made for (``None``: none or unknown)."""
    if msg.WhichOneof("type") != "ref_hash":
        return None
    with _lock:
        return _ref_fragment.get((msg.ref_hash, tuple(msg.metadata.delta_path)))


def _remember(msg: Any, ref: Any) -> None:
    if ref is msg or not msg.HasField("delta") or not msg.delta.fragment_id:
        return
    key = (ref.ref_hash, tuple(ref.metadata.delta_path))
    with _lock:
        _ref_fragment[key] = msg.delta.fragment_id
        _ref_fragment.move_to_end(key)
        while len(_ref_fragment) > REMEMBER:
            _ref_fragment.popitem(last=False)


def install() -> bool:
    """Patch Streamlit's message queue (once per process); ``False`` when this Streamlit is not a fixed version."""
    global _installed
    with _lock:  # two first visitors may run app.py at once: patch once, never wrap the wrapper
        if _installed is not None:
            return _installed
        if streamlit.__version__ not in FIXED_VERSIONS or not supported("queue_fix"):
            _log.warning("st_compat.queue_fix: Streamlit %s is not %s; the ref_hash queue fix is not applied",
                         streamlit.__version__, FIXED_VERSIONS)
            _installed = False
            return False
        from streamlit.runtime import forward_msg_queue
        from streamlit.runtime.scriptrunner_utils import script_run_context

        make_reference = originals["create_reference_msg"] = script_run_context.create_reference_msg
        clear = originals["clear"] = forward_msg_queue.ForwardMsgQueue.clear

        def create_reference_msg(msg: Any) -> Any:
            ref = make_reference(msg)
            _remember(msg, ref)
            return ref

        def clear_queue(self: Any, retain_lifecycle_msgs: bool = False,
                        fragment_ids_this_run: list[str] | None = None) -> None:
            if retain_lifecycle_msgs and fragment_ids_this_run:
                running = set(fragment_ids_this_run)
                self._queue = [m for m in self._queue if fragment_of_reference(m) not in running]
            clear(self, retain_lifecycle_msgs, fragment_ids_this_run)

        script_run_context.create_reference_msg = create_reference_msg
        forward_msg_queue.ForwardMsgQueue.clear = clear_queue
        _installed = True
        return True
