"""The fix for Streamlit 1.67's message queue (dashboard/st_compat/queue_fix.py), on the queue itself."""

from __future__ import annotations

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime import forward_msg_queue
from streamlit.runtime.forward_msg_cache import populate_hash_if_needed
from streamlit.runtime.scriptrunner_utils import script_run_context

from dashboard.st_compat import queue_fix as streamlit_fixes


def _delta(path: list[int], fragment: str, body: str) -> ForwardMsg:
    """A new-element delta big enough for Streamlit to cache it (>= 10 kB), as the script sends it."""
    msg = ForwardMsg()
    msg.delta.new_element.markdown.body = body * 12_000
    if fragment:
        msg.delta.fragment_id = fragment
    msg.metadata.delta_path[:] = path
    populate_hash_if_needed(msg)
    assert msg.metadata.cacheable
    return msg


def _queue_of_a_busy_server() -> tuple[forward_msg_queue.ForwardMsgQueue, dict[str, ForwardMsg]]:
    """A full run's messages not yet sent when a fragment run starts: deltas and references, in and out of fragments."""
    if not streamlit_fixes.install():
        pytest.skip("the fix applies to Streamlit 1.67.0 only")
    msgs = {
        "outside": script_run_context.create_reference_msg(_delta([0, 0], "", "a")),
        "live_block": _delta([0, 1], "live", "b"),
        "live_ref": script_run_context.create_reference_msg(_delta([0, 3], "live", "c")),
        "other_ref": script_run_context.create_reference_msg(_delta([1, 4], "sidebar", "d")),
    }
    finished = ForwardMsg()
    finished.script_finished = ForwardMsg.FINISHED_SUCCESSFULLY
    msgs["finished"] = finished
    queue = forward_msg_queue.ForwardMsgQueue()
    for msg in msgs.values():
        queue.enqueue(msg)
    assert [m.WhichOneof("type") for m in (msgs["outside"], msgs["live_ref"], msgs["other_ref"])] == ["ref_hash"] * 3
    return queue, msgs


def _left(queue: forward_msg_queue.ForwardMsgQueue, msgs: dict[str, ForwardMsg]) -> list[str]:
    return [name for name, msg in msgs.items() if any(m is msg for m in queue._queue)]


def test_streamlit_keeps_a_fragments_reference_message_when_that_fragment_reruns() -> None:
    """The bug itself, with Streamlit's own clear: the fragment's delta is dropped, its reference kept.

    If this fails, Streamlit fixed it: drop dashboard/st_compat/queue_fix.py.
    """
    queue, msgs = _queue_of_a_busy_server()
    streamlit_fixes.originals["clear"](queue, retain_lifecycle_msgs=True, fragment_ids_this_run=["live"])
    assert _left(queue, msgs) == ["outside", "live_ref", "other_ref", "finished"]


def test_a_fragment_run_drops_that_fragments_reference_messages_too() -> None:
    queue, msgs = _queue_of_a_busy_server()
    queue.clear(retain_lifecycle_msgs=True, fragment_ids_this_run=["live"])
    assert _left(queue, msgs) == ["outside", "other_ref", "finished"]  # other fragments and the page: kept


def test_a_full_run_still_drops_every_unsent_delta() -> None:
    queue, msgs = _queue_of_a_busy_server()
    queue.clear(retain_lifecycle_msgs=True)
    assert _left(queue, msgs) == ["finished"]


def test_install_is_idempotent_and_keeps_streamlits_reference_messages() -> None:
    assert streamlit_fixes.install() and streamlit_fixes.install()
    msg = _delta([0, 2], "live", "e")
    ref = script_run_context.create_reference_msg(msg)
    assert ref.ref_hash == msg.hash and list(ref.metadata.delta_path) == [0, 2]
    assert streamlit_fixes.fragment_of_reference(ref) == "live"
    assert streamlit_fixes.fragment_of_reference(msg) is None  # not a reference
